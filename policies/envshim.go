package policies

// envShim is the binary of a tiny Wasm module instantiated as "env" beside
// each Rego policy: OPA's compiled policies import their memory and their
// host functions from the one module "env", and wazero's host modules
// cannot export a memory. The shim defines the memory (minPages to
// maxPages: the policy's own minimum, wflow's cap) and re-exports the host
// functions, which it imports from regoHostModule.
func envShim(minPages, maxPages uint32) []byte {
	i32 := byte(0x7f)
	funcType := func(params, results int) []byte {
		b := []byte{0x60}
		b = append(b, uleb(uint32(params))...)
		for i := 0; i < params; i++ {
			b = append(b, i32)
		}
		b = append(b, uleb(uint32(results))...)
		for i := 0; i < results; i++ {
			b = append(b, i32)
		}
		return b
	}
	// One type per host function, in regoHostFunctions' order.
	var types, imports, exports []byte
	types = append(types, uleb(uint32(len(regoHostFunctions)))...)
	imports = append(imports, uleb(uint32(len(regoHostFunctions)))...)
	exports = append(exports, uleb(uint32(len(regoHostFunctions)+1))...)
	for i, f := range regoHostFunctions {
		types = append(types, funcType(f.params, f.results)...)
		imports = append(imports, name(regoHostModule)...)
		imports = append(imports, name(f.name)...)
		imports = append(imports, 0x00) // a function
		imports = append(imports, uleb(uint32(i))...)
		exports = append(exports, name(f.name)...)
		exports = append(exports, 0x00)
		exports = append(exports, uleb(uint32(i))...)
	}
	exports = append(exports, name("memory")...)
	exports = append(exports, 0x02, 0x00) // memory 0
	memory := []byte{0x01, 0x01}          // one memory, with a maximum
	memory = append(memory, uleb(minPages)...)
	memory = append(memory, uleb(maxPages)...)

	out := []byte{0x00, 'a', 's', 'm', 0x01, 0x00, 0x00, 0x00}
	for _, s := range []struct {
		id   byte
		body []byte
	}{{1, types}, {2, imports}, {5, memory}, {7, exports}} {
		out = append(out, s.id)
		out = append(out, uleb(uint32(len(s.body)))...)
		out = append(out, s.body...)
	}
	return out
}

// uleb is v in unsigned LEB128.
func uleb(v uint32) []byte {
	var b []byte
	for {
		c := byte(v & 0x7f)
		v >>= 7
		if v != 0 {
			c |= 0x80
		}
		b = append(b, c)
		if v == 0 {
			return b
		}
	}
}

// name is a Wasm name: its length, then its bytes.
func name(s string) []byte { return append(uleb(uint32(len(s))), s...) }

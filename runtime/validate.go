package runtime

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"

	"github.com/wflow/wflow/abi"
)

// Import is one function or memory a module imports, and whether wflow
// can provide it.
type Import struct {
	Module    string `json:"module"`
	Name      string `json:"name"`
	Kind      string `json:"kind"`                // "func" or "memory"
	Signature string `json:"signature,omitempty"` // "(i32,i32)->i32" for functions
	Problem   string `json:"problem,omitempty"`   // empty when wflow provides it
}

// Validation is what Validate found in a module.
type Validation struct {
	Imports  []Import `json:"imports"`
	Problems []string `json:"problems"` // one sentence each; empty when the module can run
	// Needs is the ABI revision the module needs, e.g. "ABI v1.2": that of
	// the newest host function it imports (abi.Signature.Since); a wflow
	// that speaks an older revision refuses the module, naming the function.
	Needs string `json:"needs"`
	// NeedsFor lists the imported host functions that revision added.
	NeedsFor []string `json:"needs_for,omitempty"`
}

// OK reports whether the module can run.
func (v Validation) OK() bool { return len(v.Problems) == 0 }

// Validate compiles the module and checks it against what wflow provides:
// it must be a WASI command (export _start) and import only WASI preview1
// functions and the functions of abi.ModuleName with their signatures. An
// error is returned only when the bytes are not a Wasm module at all.
func Validate(ctx context.Context, wasm []byte) (Validation, error) {
	r := wazero.NewRuntime(ctx)
	defer r.Close(ctx)
	compiled, err := r.CompileModule(ctx, wasm)
	if err != nil {
		return Validation{}, fmt.Errorf("not a valid Wasm module: %w", err)
	}
	defer compiled.Close(ctx)
	return CheckImports(ctx, r, compiled, WorkflowABI)
}

// HostABI describes the versioned host module a kind of module imports.
type HostABI struct {
	Name      string // "ABI v1", "policy ABI v1": how messages name it
	Module    string // the import module, e.g. abi.ModuleName
	Prefix    string // what every version's module name starts with
	Functions []abi.Signature
}

// Revision names the latest revision of the ABI, e.g. "ABI v1.2".
func (h HostABI) Revision() string {
	rev := 0
	for _, f := range h.Functions {
		rev = max(rev, f.Since)
	}
	return fmt.Sprintf("%s.%d", h.Name, rev)
}

// The host ABIs of workflow modules and of policy modules.
var (
	WorkflowABI = HostABI{Name: fmt.Sprintf("ABI v%d", abi.Version), Module: abi.ModuleName, Prefix: abi.ModulePrefix, Functions: abi.Functions}
	PolicyABI   = HostABI{Name: "policy ABI v1", Module: abi.PolicyModuleName, Prefix: abi.PolicyModulePrefix, Functions: abi.PolicyFunctions}
)

// CheckImports validates a module compiled in r against host: it must be a
// WASI command and import only WASI preview1 functions and host's
// functions, with their signatures.
func CheckImports(ctx context.Context, r wazero.Runtime, compiled wazero.CompiledModule, host HostABI) (Validation, error) {
	wasiFuncs, err := wasiFunctions(ctx, r)
	if err != nil {
		return Validation{}, err
	}
	wflowFuncs := map[string]abi.Signature{}
	for _, f := range host.Functions {
		wflowFuncs[f.Name] = f
	}

	var v Validation
	revision := 0
	for _, f := range compiled.ImportedFunctions() {
		mod, name, _ := f.Import()
		imp := Import{Module: mod, Name: name, Kind: "func", Signature: signature(f)}
		switch {
		case mod == wasi_snapshot_preview1.ModuleName:
			want, ok := wasiFuncs[name]
			if !ok {
				imp.Problem = fmt.Sprintf("unknown WASI function %s.%s", mod, name)
			} else if want != imp.Signature {
				imp.Problem = fmt.Sprintf("%s.%s has signature %s, WASI defines %s", mod, name, imp.Signature, want)
			}
		case mod == host.Module:
			sig, ok := wflowFuncs[name]
			want := "(" + strings.TrimSuffix(strings.Repeat("i32,", len(sig.Params)), ",") + ")->i32"
			switch {
			case !ok:
			case sig.Since > revision:
				revision, v.NeedsFor = sig.Since, []string{name}
			case sig.Since == revision:
				v.NeedsFor = append(v.NeedsFor, name)
			}
			if !ok {
				imp.Problem = fmt.Sprintf("unknown function %s.%s: %s has %s", mod, name, host.Name, knownNames(host.Functions))
			} else if want != imp.Signature {
				imp.Problem = fmt.Sprintf("%s.%s has signature %s, %s defines %s", mod, name, imp.Signature, host.Name, want)
			}
		case strings.HasPrefix(mod, host.Prefix):
			imp.Problem = fmt.Sprintf("the module imports ABI %q; this wflow speaks %q (%s)", mod, host.Module, host.Name)
		default:
			imp.Problem = fmt.Sprintf("unknown import module %q (wflow provides %q and %q)", mod, host.Module, wasi_snapshot_preview1.ModuleName)
		}
		v.Imports = append(v.Imports, imp)
	}
	for _, m := range compiled.ImportedMemories() {
		mod, name, _ := m.Import()
		v.Imports = append(v.Imports, Import{Module: mod, Name: name, Kind: "memory",
			Problem: fmt.Sprintf("imports memory %s.%s; wflow provides no memory, a module must define its own", mod, name)})
	}
	v.Needs = fmt.Sprintf("%s.%d", host.Name, revision)
	if revision == 0 {
		v.NeedsFor = nil // the functions every wflow of the version has
	}
	sort.Strings(v.NeedsFor)
	seen := map[string]bool{}
	for _, imp := range v.Imports {
		if imp.Problem != "" && !seen[imp.Problem] {
			seen[imp.Problem] = true
			v.Problems = append(v.Problems, imp.Problem)
		}
	}
	if _, ok := compiled.ExportedFunctions()["_start"]; !ok {
		v.Problems = append(v.Problems, "the module exports no _start function: build it as a WASI command (a program with main)")
	}
	return v, nil
}

// wasi holds the signatures of WASI preview1's functions: fixed for a
// wazero version, so worked out once per process, not for every module.
var wasi struct {
	once  sync.Once
	funcs map[string]string
	err   error
}

// wasiFunctions returns the signature of every WASI preview1 function wazero provides.
func wasiFunctions(ctx context.Context, r wazero.Runtime) (map[string]string, error) {
	wasi.once.Do(func() {
		compiled, err := wasi_snapshot_preview1.NewBuilder(r).Compile(ctx)
		if err != nil {
			wasi.err = fmt.Errorf("compile WASI module: %w", err)
			return
		}
		defer compiled.Close(ctx)
		wasi.funcs = map[string]string{}
		for name, f := range compiled.ExportedFunctions() {
			wasi.funcs[name] = signature(f)
		}
	})
	return wasi.funcs, wasi.err
}

func signature(f api.FunctionDefinition) string {
	names := func(ts []api.ValueType) string {
		s := make([]string, len(ts))
		for i, t := range ts {
			s[i] = api.ValueTypeName(t)
		}
		return strings.Join(s, ",")
	}
	return "(" + names(f.ParamTypes()) + ")->" + names(f.ResultTypes())
}

func knownNames(funcs []abi.Signature) string {
	names := make([]string, len(funcs))
	for i, f := range funcs {
		names[i] = f.Name
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}

package policies

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tidwall/gjson"

	"github.com/wflow/wflow/abi"
	"github.com/wflow/wflow/internal/clip"
	"github.com/wflow/wflow/runtime"
	"github.com/wflow/wflow/step"
)

// A Rego policy is what `opa build -t wasm` makes of Rego: a Wasm module
// with OPA's own ABI (docs/policies.md, Rego). wflow is its host: it gives
// the module its memory (env.memory, capped) and the functions it imports
// (env.opa_abort, env.opa_println, env.opa_builtin0..4), and evaluates it
// through an evaluation context set up call by call (OPA's Wasm ABI 1.0 and
// later), or with opa_eval (ABI 1.2) where the module has no context.

// regoHostModule is the host module the env shim (envShim) imports from.
const regoHostModule = "wflow_opa"

// regoHostFunctions are the functions a Rego policy may import from env,
// with their numbers of i32 parameters and results.
var regoHostFunctions = []struct {
	name            string
	params, results int
}{
	{"opa_abort", 1, 0}, {"opa_println", 1, 0},
	{"opa_builtin0", 2, 1}, {"opa_builtin1", 3, 1}, {"opa_builtin2", 4, 1}, {"opa_builtin3", 5, 1}, {"opa_builtin4", 6, 1},
}

// The entrypoints wflow evaluates (opa build -e ...), by convention.
const (
	EntrypointDecision = "wflow/decision" // an object: {allow, deny, patch, reason}
	EntrypointAllow    = "wflow/allow"    // true to allow
	EntrypointDeny     = "wflow/deny"     // a set of messages, each a reason to refuse
	EntrypointPatch    = "wflow/patch"    // an object merged into the step (JSON merge patch)
)

// The caps of what a Rego policy hands wflow.
const (
	maxRegoResult = 1 << 20  // one entrypoint's result, serialized
	maxBundleFile = 64 << 20 // policy.wasm or data.json in a bundle
)

// Rego is a policy compiled from Rego by `opa build -t wasm`. One module is
// compiled per policy; one instance of it answers every decision in turn,
// made again after a decision that failed.
//
// A decision evaluates by context where the module allows it (every
// module opa builds does): the request is parsed once and each entrypoint
// evaluated on it, on the heap as the last decision left it, so the
// caches OPA's Wasm keeps on its heap (the patterns glob.match and
// regex.match compile) outlive the decision. The heap goes back to just
// after the data when it has grown by regoHeapBudget (or a quarter of the
// room the memory cap leaves, if less), which empties those caches; a
// decision that runs out of memory on a heap earlier ones left is tried
// once more on a fresh one. A module without the context
// functions evaluates with opa_eval, which resets the heap (and empties
// the caches) every time.
type Rego struct {
	name     string
	cfg      WasmConfig
	runtime  wazero.Runtime
	cache    wazero.CompilationCache
	module   wazero.CompiledModule
	data     []byte // the base data document, JSON
	minPages uint32 // the memory the module asks for
	// byContext: decisions evaluate by context (contextABI's functions)
	// on a heap kept between them; else with opa_eval.
	byContext bool
	canFree   bool // the module exports opa_free

	mu          sync.Mutex
	inst        *regoInstance // nil until a decision needs one
	entrypoints map[string]int32
	builtins    map[int32]string
	call        *regoCall // the decision under way, for the host functions
	instances   int       // how many instances were made (for tests)
}

// opaExports are the numbers of i32 parameters and results of the
// functions of OPA's Wasm ABI that wflow calls.
var opaExports = map[string][2]int{
	"opa_eval": {7, 1}, "entrypoints": {0, 1}, "builtins": {0, 1}, "opa_json_dump": {1, 1}, "opa_json_parse": {2, 1},
	"opa_malloc": {1, 1}, "opa_free": {1, 0}, "opa_heap_ptr_get": {0, 1}, "opa_heap_ptr_set": {1, 0}, "opa_eval_ctx_new": {0, 1},
	"opa_eval_ctx_set_input": {2, 0}, "opa_eval_ctx_set_data": {2, 0}, "opa_eval_ctx_set_entrypoint": {2, 0},
	"eval": {1, 1}, "opa_eval_ctx_get_result": {1, 1},
}

// forceOpaEval makes every policy evaluate with opa_eval (for tests: opa
// builds modules that export both ways).
var forceOpaEval = false

// contextABI are the functions of an evaluation by context (OPA's Wasm ABI
// 1.0 and later).
var contextABI = []string{"opa_heap_ptr_set", "opa_eval_ctx_new", "opa_eval_ctx_set_input", "opa_eval_ctx_set_data",
	"opa_eval_ctx_set_entrypoint", "eval", "opa_eval_ctx_get_result"}

// regoInstance is an instantiated Rego policy with its data loaded.
type regoInstance struct {
	host, env, policy  api.Module
	dump, malloc, free api.Function
	parse, heapPtr     api.Function
	dataAddr           uint32
	heap               uint32 // where the heap starts after the data: each opa_eval, and each reset, go back here
	budget             uint32 // how far the heap may grow past heap before a reset (by context)
	// The functions of an evaluation, with opa_eval or by context.
	opaEval                                              api.Function
	heapSet, ctxNew, setInput, setData, setEntry, evalFn api.Function
	getResult                                            api.Function
}

// regoHeapBudget is how far a decision by context lets the heap grow before
// it goes back to just after the data: a few hundred decisions of a small
// policy (about 6 KiB each), so that the patterns compiled once serve
// them all, and the memory stays small (growing it copies it).
const regoHeapBudget = 1 << 20

// regoCall is what the host functions report about the decision under way.
type regoCall struct {
	failure     error // an abort or a built-in wflow does not provide
	outOfMemory bool  // the failure is an abort of the policy's allocator (opa_malloc), as at its memory cap
	printed     int   // bytes of opa_println passed on
	inBuiltin   bool  // a built-in is being answered (its arguments read from the guest)
}

// LoadRegoBundle loads what `opa build -t wasm` writes: a gzipped tar with
// /policy.wasm and, optionally, /data.json.
func LoadRegoBundle(ctx context.Context, name string, bundle []byte, cfg WasmConfig) (*Rego, error) {
	files, err := readBundle(bundle)
	if err != nil {
		return nil, fmt.Errorf("policy %s: %w", name, err)
	}
	wasm, ok := files["policy.wasm"]
	if !ok {
		return nil, fmt.Errorf("policy %s: the bundle has no /policy.wasm (build it with opa build -t wasm)", name)
	}
	return LoadRego(ctx, name, wasm, files["data.json"], cfg)
}

// readBundle reads the files of a bundle that wflow uses, capped.
func readBundle(bundle []byte) (map[string][]byte, error) {
	gz, err := gzip.NewReader(bytes.NewReader(bundle))
	if err != nil {
		return nil, fmt.Errorf("not a bundle (a gzipped tar): %w", err)
	}
	files := map[string][]byte{}
	tr := tar.NewReader(gz)
	for n := 0; ; n++ {
		h, err := tr.Next()
		if err == io.EOF {
			return files, nil
		}
		if err != nil {
			return nil, fmt.Errorf("the bundle: %w", err)
		}
		if n > 10_000 {
			return nil, errors.New("the bundle holds over 10,000 files")
		}
		rel := strings.TrimPrefix(path.Clean("/"+h.Name), "/")
		if h.Typeflag != tar.TypeReg || (rel != "policy.wasm" && rel != "data.json") {
			continue
		}
		if _, dup := files[rel]; dup {
			return nil, fmt.Errorf("the bundle holds /%s twice", rel)
		}
		b, err := io.ReadAll(io.LimitReader(tr, maxBundleFile+1))
		if err != nil {
			return nil, fmt.Errorf("the bundle's /%s: %w", rel, err)
		}
		if len(b) > maxBundleFile {
			return nil, fmt.Errorf("the bundle's /%s is over %d MiB", rel, maxBundleFile>>20)
		}
		files[rel] = b
	}
}

// IsRego reports whether wasm is a policy compiled from Rego rather than
// one of wflow's own ABI: it has the import entry of OPA's env.memory or
// env.opa_abort (module name, field name, kind), not merely those words
// somewhere in its data.
func IsRego(wasm []byte) bool {
	return bytes.Contains(wasm, []byte("\x03env\x09opa_abort\x00")) || bytes.Contains(wasm, []byte("\x03env\x06memory\x02"))
}

// LoadRego compiles a policy.wasm built by `opa build -t wasm`, checks its
// imports and exports, loads data (a JSON object; nil for {}) and finds
// its entrypoints. Close it when done.
func LoadRego(ctx context.Context, name string, wasm, data []byte, cfg WasmConfig) (_ *Rego, err error) {
	defer func() { // a backstop: whatever the module does, loading fails, never wflow
		if r := recover(); r != nil {
			err = fmt.Errorf("policy %s: it could not be loaded: %v", name, r)
		}
	}()
	cfg = cfg.withDefaults()
	if data == nil {
		data = []byte("{}")
	}
	if err := step.CheckJSON(data, abi.MaxJSONDepth); err != nil || !gjson.ParseBytes(data).IsObject() {
		return nil, fmt.Errorf("policy %s: its data is not a JSON object of at most %d levels", name, abi.MaxJSONDepth)
	}
	p := &Rego{name: name, cfg: cfg, data: data}
	rc := wazero.NewRuntimeConfig().WithMemoryLimitPages(cfg.MemoryLimitMiB * 16).WithCloseOnContextDone(true)
	if cache, err := wazero.NewCompilationCacheWithDir(runtime.CompilationCacheDir(cfg.CacheDir)); err == nil {
		p.cache = cache
		rc = rc.WithCompilationCache(cache)
	}
	p.runtime = wazero.NewRuntimeWithConfig(ctx, rc)
	fail := func(err error) (*Rego, error) {
		p.Close(ctx)
		return nil, fmt.Errorf("policy %s: %w", name, err)
	}
	if p.module, err = p.runtime.CompileModule(ctx, wasm); err != nil {
		return fail(fmt.Errorf("not a valid Wasm module: %v", err))
	}
	if err := p.checkModule(); err != nil {
		return fail(err)
	}
	if err := p.hostFunctions(ctx); err != nil {
		return fail(err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	inst, err := p.instance(ctx)
	if err != nil {
		return fail(err)
	}
	tctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	if p.entrypoints, err = readNames(tctx, inst, "entrypoints"); err != nil {
		return fail(p.explain(tctx, err, "listing its entrypoints"))
	}
	builtins, err := readNames(tctx, inst, "builtins")
	if err != nil {
		return fail(p.explain(tctx, err, "listing its built-ins"))
	}
	p.builtins = map[int32]string{}
	for n, id := range builtins {
		p.builtins[id] = n
	}
	if p.byContext { // the first decision starts on a fresh heap, without the lists
		if _, err := inst.heapSet.Call(tctx, uint64(inst.heap)); err != nil {
			return fail(p.explain(tctx, err, "starting"))
		}
	}
	if _, ok := p.entrypoints[EntrypointDecision]; !ok {
		if _, ok := p.entrypoints[EntrypointDeny]; !ok {
			if _, ok := p.entrypoints[EntrypointAllow]; !ok {
				return fail(fmt.Errorf("the policy has none of the entrypoints %s, %s or %s (opa build -t wasm -e %s ...); it has %s",
					EntrypointDecision, EntrypointDeny, EntrypointAllow, EntrypointDecision, strings.Join(slices.Sorted(mapKeys(p.entrypoints)), ", ")))
			}
		}
	}
	return p, nil
}

func mapKeys[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// checkModule checks that the module imports only what OPA's ABI has, as
// OPA defines it, and exports what wflow calls.
func (p *Rego) checkModule() error {
	want := map[string]int{}
	for _, f := range regoHostFunctions {
		want[f.name] = f.params
	}
	var problems []string
	for _, f := range p.module.ImportedFunctions() {
		mod, fn, _ := f.Import()
		params, ok := want[fn]
		switch {
		case mod != "env" || !ok:
			problems = append(problems, fmt.Sprintf("it imports %s.%s, which is not in OPA's Wasm ABI", clip.String(mod, 64), clip.String(fn, 64)))
		case len(f.ParamTypes()) != params || !allI32(f.ParamTypes()) || !allI32(f.ResultTypes()):
			problems = append(problems, fmt.Sprintf("it imports env.%s with a signature other than OPA's", fn))
		}
	}
	mems := p.module.ImportedMemories()
	for _, m := range mems {
		if mod, n, _ := m.Import(); mod != "env" || n != "memory" {
			problems = append(problems, fmt.Sprintf("it imports the memory %s.%s; OPA's is env.memory", clip.String(mod, 64), clip.String(n, 64)))
		}
	}
	if len(mems) != 1 {
		problems = append(problems, "it does not import env.memory: not a policy built by opa build -t wasm")
	} else {
		p.minPages = mems[0].Min()
	}
	exports := p.module.ExportedFunctions()
	need := []string{"entrypoints", "builtins", "opa_json_dump", "opa_json_parse", "opa_malloc", "opa_heap_ptr_get"}
	p.byContext = !forceOpaEval
	for _, fn := range contextABI {
		if _, ok := exports[fn]; !ok {
			p.byContext = false
		}
	}
	if p.byContext {
		need = append(need, contextABI...)
	} else {
		need = append(need, "opa_eval") // ABI 1.2
	}
	if _, ok := exports["opa_free"]; ok {
		p.canFree = true
		need = append(need, "opa_free")
	}
	for _, fn := range need {
		f, ok := exports[fn]
		sig := opaExports[fn]
		switch {
		case !ok:
			problems = append(problems, fmt.Sprintf("it does not export %s, which OPA's Wasm ABI has", fn))
		case len(f.ParamTypes()) != sig[0] || len(f.ResultTypes()) != sig[1] || !allI32(f.ParamTypes()) || !allI32(f.ResultTypes()):
			problems = append(problems, fmt.Sprintf("it exports %s with a signature other than OPA's (%d i32 parameters, %d i32 results)", fn, sig[0], sig[1]))
		}
	}
	if len(problems) > 0 {
		return &runtime.InvalidModuleError{Problems: problems}
	}
	return nil
}

func allI32(ts []api.ValueType) bool {
	for _, t := range ts {
		if t != api.ValueTypeI32 {
			return false
		}
	}
	return true
}

// hostFunctions instantiates the module of the functions the env shim
// re-exports to the policy.
func (p *Rego) hostFunctions(ctx context.Context) error {
	b := p.runtime.NewHostModuleBuilder(regoHostModule)
	i32 := api.ValueTypeI32
	b.NewFunctionBuilder().WithGoModuleFunction(api.GoModuleFunc(func(ctx context.Context, mod api.Module, stack []uint64) {
		msg := cString(mod.Memory(), uint32(stack[0]), 4096)
		if strings.Contains(msg, "malloc") {
			if p.call != nil {
				p.call.outOfMemory = true
			}
			msg += fmt.Sprintf(" (out of memory: the policy's memory is capped at %d MiB)", p.cfg.MemoryLimitMiB)
		}
		p.fail(fmt.Errorf("the policy aborted: %s", msg))
		panic(errRegoAbort)
	}), []api.ValueType{i32}, nil).Export("opa_abort")
	b.NewFunctionBuilder().WithGoModuleFunction(api.GoModuleFunc(func(ctx context.Context, mod api.Module, stack []uint64) {
		p.println(cString(mod.Memory(), uint32(stack[0]), 4096))
	}), []api.ValueType{i32}, nil).Export("opa_println")
	for n := 0; n <= 4; n++ {
		params := make([]api.ValueType, n+2)
		for i := range params {
			params[i] = i32
		}
		b.NewFunctionBuilder().WithGoModuleFunction(api.GoModuleFunc(func(ctx context.Context, mod api.Module, stack []uint64) {
			stack[0] = uint64(p.builtin(ctx, mod, int32(stack[0]), stack[2:2+n]))
		}), params, []api.ValueType{i32}).Export(fmt.Sprintf("opa_builtin%d", n))
	}
	_, err := b.Instantiate(ctx)
	return err
}

// errRegoAbort unwinds a policy that called opa_abort or an unprovided
// built-in; the reason is in the call's failure.
var errRegoAbort = errors.New("rego policy aborted")

func (p *Rego) fail(err error) {
	if p.call != nil && p.call.failure == nil {
		p.call.failure = err
	}
}

func (p *Rego) println(msg string) {
	if p.cfg.Stderr == nil || p.call == nil || p.call.printed > stderrCap {
		return
	}
	line := "[" + p.name + "] " + msg + "\n"
	p.call.printed += len(line)
	p.cfg.Stderr.Write([]byte(line))
}

// builtin answers a built-in function the policy calls out to (those its
// Wasm does not carry): wflow provides regoBuiltins; any other refuses the
// step, naming it.
func (p *Rego) builtin(ctx context.Context, mod api.Module, id int32, args []uint64) uint32 {
	name, ok := p.builtins[id]
	if !ok {
		name = fmt.Sprintf("number %d", id)
	}
	impl, ok := regoBuiltins[name]
	if name == builtinPrint {
		impl, ok = p.print, true
	}
	if p.call != nil && p.call.inBuiltin {
		p.fail(fmt.Errorf("the policy called the built-in %s while wflow was reading another built-in's arguments, which OPA's Wasm never does", clip.String(name, 64)))
		panic(errRegoAbort)
	}
	if !ok || p.inst == nil || p.call == nil {
		p.fail(fmt.Errorf("the policy calls the built-in %s, which wflow does not provide to Rego policies (docs/policies.md lists those it does)", clip.String(name, 64)))
		panic(errRegoAbort)
	}
	inst := p.inst
	p.call.inBuiltin = true
	defer func() { p.call.inBuiltin = false }()
	values := make([]gjson.Result, len(args))
	for i, a := range args {
		res, err := inst.dump.Call(ctx, a)
		if err != nil {
			p.fail(fmt.Errorf("the built-in %s: its argument %d: %v", name, i+1, err))
			panic(errRegoAbort)
		}
		b, ok := cBytes(inst.policy.Memory(), uint32(res[0]), maxRegoResult)
		if !ok || step.CheckJSON(b, abi.MaxJSONDepth) != nil {
			p.fail(fmt.Errorf("the built-in %s: its argument %d is not JSON of at most %d KiB", name, i+1, maxRegoResult>>10))
			panic(errRegoAbort)
		}
		values[i] = gjson.ParseBytes(b)
	}
	out, err := impl(values)
	if err == nil {
		var addr uint32
		if addr, err = inst.jsonValue(ctx, out); err == nil {
			return addr
		}
	}
	p.fail(fmt.Errorf("the built-in %s: %v", name, err))
	panic(errRegoAbort)
}

// builtinPrint is the built-in that Rego's print() calls, in a module
// built with opa build --wasm-include-print.
const builtinPrint = "internal.print"

// print is Rego's print(a, b, ...): its argument is an array with a set
// of values for each operand (empty where the operand is undefined). As
// OPA does, it prints a line for each combination of values, separated by
// spaces: strings as they are, other values as JSON, "<undefined>" for an
// undefined operand. Lines go where opa_println's do, within the same cap.
func (p *Rego) print(args []gjson.Result) ([]byte, error) {
	if len(args) != 1 || !args[0].IsArray() {
		return nil, errors.New("wants an array of operands")
	}
	operands := args[0].Array()
	words := make([]string, len(operands))
	var line func(i int) bool // false once the cap is reached
	line = func(i int) bool {
		if p.call == nil || p.call.printed > stderrCap {
			return false
		}
		if i == len(operands) {
			p.println(strings.Join(words, " "))
			return true
		}
		values := operands[i].Array()
		if len(values) == 0 {
			words[i] = "<undefined>"
			return line(i + 1)
		}
		for _, v := range values {
			if words[i] = v.Raw; v.Type == gjson.String {
				words[i] = v.String()
			}
			if !line(i + 1) {
				return false
			}
		}
		return true
	}
	line(0)
	return []byte("true"), nil
}

// jsonValue parses JSON into a value in the policy's memory.
func (i *regoInstance) jsonValue(ctx context.Context, b []byte) (uint32, error) {
	addr, err := i.call1(ctx, i.malloc, uint64(len(b)))
	if err != nil {
		return 0, err
	}
	if !i.policy.Memory().Write(addr, b) {
		return 0, errRegoNoRoom
	}
	v, err := i.call1(ctx, i.parse, uint64(addr), uint64(len(b)))
	if err == nil && v == 0 {
		err = errRegoNotParsed
	}
	return v, err
}

// What jsonValue says of JSON the policy could not take.
var (
	errRegoNoRoom    = errors.New("it does not fit in the policy's memory")
	errRegoNotParsed = errors.New("opa_json_parse could not parse it")
	// errRegoEvalFailed: eval returned other than 0.
	errRegoEvalFailed = errors.New("its eval returned an error")
)

// instance returns the policy's instance, instantiating it (its env, its
// data) when there is none. p.mu is held.
func (p *Rego) instance(ctx context.Context) (*regoInstance, error) {
	if p.inst != nil {
		return p.inst, nil
	}
	p.instances++
	ctx, cancel := context.WithTimeout(ctx, p.cfg.Timeout)
	defer cancel()
	maxPages := p.cfg.MemoryLimitMiB * 16
	if p.minPages > maxPages {
		return nil, fmt.Errorf("the policy needs %d MiB of memory at start, over its cap of %d MiB", p.minPages/16, p.cfg.MemoryLimitMiB)
	}
	inst := &regoInstance{}
	shim, err := p.runtime.CompileModule(ctx, envShim(p.minPages, maxPages))
	if err != nil {
		return nil, fmt.Errorf("its memory: %w", err)
	}
	if inst.env, err = p.runtime.InstantiateModule(ctx, shim, wazero.NewModuleConfig().WithName("env")); err != nil {
		return nil, fmt.Errorf("its memory: %w", err)
	}
	p.call = &regoCall{}
	defer func() { p.call = nil }()
	inst.policy, err = p.runtime.InstantiateModule(ctx, p.module, wazero.NewModuleConfig().WithName("").WithStartFunctions())
	if err != nil {
		inst.close(ctx)
		return nil, p.explain(ctx, err, "starting")
	}
	fn := inst.policy.ExportedFunction
	inst.dump, inst.malloc, inst.parse, inst.heapPtr = fn("opa_json_dump"), fn("opa_malloc"), fn("opa_json_parse"), fn("opa_heap_ptr_get")
	if p.canFree {
		inst.free = fn("opa_free")
	}
	if p.byContext {
		inst.heapSet, inst.ctxNew, inst.setInput, inst.setData = fn("opa_heap_ptr_set"), fn("opa_eval_ctx_new"), fn("opa_eval_ctx_set_input"), fn("opa_eval_ctx_set_data")
		inst.setEntry, inst.evalFn, inst.getResult = fn("opa_eval_ctx_set_entrypoint"), fn("eval"), fn("opa_eval_ctx_get_result")
	} else {
		inst.opaEval = fn("opa_eval")
	}
	if inst.dataAddr, err = inst.jsonValue(ctx, p.data); err != nil {
		inst.close(ctx)
		return nil, p.explain(ctx, err, "loading its data")
	}
	if inst.heap, err = inst.call1(ctx, inst.heapPtr); err != nil {
		inst.close(ctx)
		return nil, p.explain(ctx, err, "starting")
	}
	if room := uint64(maxPages)*65536 - uint64(inst.heap); uint64(inst.heap) < uint64(maxPages)*65536 {
		inst.budget = uint32(min(room/4, regoHeapBudget))
	}
	p.inst = inst
	return inst, nil
}

// call1 calls fn and returns its one result.
func (i *regoInstance) call1(ctx context.Context, fn api.Function, args ...uint64) (uint32, error) {
	res, err := fn.Call(ctx, args...)
	if err != nil {
		return 0, err
	}
	if len(res) == 0 {
		return 0, nil
	}
	return uint32(res[0]), nil
}

func (i *regoInstance) close(ctx context.Context) {
	ctx = context.WithoutCancel(ctx)
	for _, m := range []api.Module{i.policy, i.env} {
		if m != nil {
			m.Close(ctx)
		}
	}
}

// explain turns a failed call into the reason a decision failed.
func (p *Rego) explain(ctx context.Context, err error, doing string) error {
	switch {
	case p.call != nil && p.call.failure != nil:
		return p.call.failure
	case ctx.Err() != nil:
		return fmt.Errorf("the policy ran past its time limit of %s", p.cfg.Timeout)
	case errors.Is(err, errRegoNoRoom) || errors.Is(err, errRegoNotParsed) || errors.Is(err, errRegoEvalFailed):
		return fmt.Errorf("the policy failed %s: %v", doing, err)
	}
	return fmt.Errorf("the policy trapped %s: %s", doing, runtime.TrapMessage(err))
}

// readNames reads what an export like "entrypoints" returns: a JSON
// object of names to numbers.
func readNames(ctx context.Context, inst *regoInstance, export string) (map[string]int32, error) {
	res, err := inst.policy.ExportedFunction(export).Call(ctx)
	if err != nil {
		return nil, fmt.Errorf("%s: %v", export, err)
	}
	res, err = inst.policy.ExportedFunction("opa_json_dump").Call(ctx, res[0])
	if err != nil {
		return nil, fmt.Errorf("%s: %v", export, err)
	}
	b, ok := cBytes(inst.policy.Memory(), uint32(res[0]), maxRegoResult)
	if !ok || step.CheckJSON(b, abi.MaxJSONDepth) != nil {
		return nil, fmt.Errorf("%s: not JSON of at most %d bytes", export, maxRegoResult)
	}
	out := map[string]int32{}
	if err := json.Unmarshal(b, &out); err != nil {
		return nil, fmt.Errorf("%s: %v", export, err)
	}
	return out, nil
}

// cBytes reads the NUL-terminated string at addr, at most max bytes.
func cBytes(mem api.Memory, addr, max uint32) ([]byte, bool) {
	var out []byte
	for uint32(len(out)) <= max {
		chunk, ok := mem.Read(addr+uint32(len(out)), min(4096, mem.Size()-min(mem.Size(), addr+uint32(len(out)))))
		if !ok || len(chunk) == 0 {
			return nil, false
		}
		if i := bytes.IndexByte(chunk, 0); i >= 0 {
			return append(out, chunk[:i]...), uint32(len(out)+i) <= max
		}
		out = append(out, chunk...)
	}
	return nil, false
}

func cString(mem api.Memory, addr, max uint32) string {
	b, _ := cBytes(mem, addr, max)
	return strings.ToValidUTF8(string(b), "?")
}

// Unprovided lists the built-ins the policy may call out for that wflow
// does not provide: calling one refuses the step (wflow policy test warns
// of them).
func (p *Rego) Unprovided() []string {
	var names []string
	for _, n := range p.builtins {
		if _, ok := regoBuiltins[n]; !ok && n != builtinPrint {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	return names
}

// Name implements Policy: "rego:" and the name given to LoadRego.
func (p *Rego) Name() string { return "rego:" + p.name }

// Close releases the policy.
func (p *Rego) Close(ctx context.Context) error {
	ctx = context.WithoutCancel(ctx)
	err := p.runtime.Close(ctx)
	if p.cache != nil {
		p.cache.Close(ctx)
	}
	return err
}

// Decide implements Policy: it evaluates the policy's entrypoints on the
// request, the same input document wflow's own policies get, and maps what
// they give to a verdict (docs/policies.md, Rego). An abort, a trap, a
// time-out, a built-in wflow does not provide, or a result of the wrong
// shape is an error: the chain refuses the step.
func (p *Rego) Decide(ctx context.Context, req Request) (v Verdict, err error) {
	input, err := inputDocument(req)
	if err != nil {
		return Verdict{}, err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	defer func() { // a backstop: whatever the module does, a decision fails, never wflow
		if r := recover(); r != nil {
			if p.inst != nil {
				p.inst.close(ctx)
				p.inst = nil
			}
			v, err = Verdict{}, fmt.Errorf("the policy could not be evaluated: %v", r)
		}
	}()
	evaluate := func() (map[string]gjson.Result, bool, error) {
		ctx, cancel := context.WithTimeout(ctx, p.cfg.Timeout) // the instance, when one is made, and every entrypoint
		defer cancel()
		return p.evaluate(ctx, input)
	}
	results, retry, err := evaluate()
	if retry { // out of memory on a heap earlier decisions left: once more, on a fresh one, with a time limit of its own
		results, _, err = evaluate()
	}
	if err != nil {
		return Verdict{}, err
	}
	return regoVerdict(req.Step, results)
}

// regoEntrypoints are the entrypoints a decision evaluates, in order.
var regoEntrypoints = []string{EntrypointDecision, EntrypointDeny, EntrypointAllow, EntrypointPatch}

// evaluate evaluates the policy's entrypoints on input and returns their
// results; an undefined one's result does not Exist. A failed evaluation
// drops the instance: the next starts a new one. retry says that it failed
// for memory on a heap that earlier decisions had left, so that a fresh
// one could succeed.
func (p *Rego) evaluate(ctx context.Context, input []byte) (_ map[string]gjson.Result, retry bool, _ error) {
	inst, err := p.instance(ctx)
	if err != nil {
		return nil, false, err
	}
	p.call = &regoCall{}
	defer func() { p.call = nil }()
	fresh := true
	fail := func(err error) (map[string]gjson.Result, bool, error) {
		inst.close(ctx)
		p.inst = nil
		return nil, p.call.outOfMemory && !fresh, err
	}
	var inputValue uint32
	if p.byContext {
		if fresh, err = inst.resetIfGrown(ctx); err != nil {
			return fail(p.explain(ctx, err, "resetting its heap"))
		}
		if inputValue, err = inst.jsonValue(ctx, input); err != nil {
			return fail(p.explain(ctx, err, "reading the request"))
		}
	}
	results := map[string]gjson.Result{}
	for _, ep := range regoEntrypoints {
		id, ok := p.entrypoints[ep]
		if !ok {
			continue
		}
		var addr uint32
		if p.byContext {
			addr, err = inst.evalByContext(ctx, id, inputValue)
		} else {
			addr, err = p.opaEval(ctx, inst, id, input)
		}
		if err != nil {
			return fail(p.explain(ctx, err, "evaluating"))
		}
		r, err := inst.result(ctx, addr)
		if err != nil {
			return fail(err)
		}
		results[ep] = r
	}
	return results, false, nil
}

// resetIfGrown puts the heap back to just after the data when it has grown
// past its budget. fresh says that the heap holds nothing of an earlier
// decision.
func (i *regoInstance) resetIfGrown(ctx context.Context) (fresh bool, err error) {
	ptr, err := i.call1(ctx, i.heapPtr)
	if err != nil || ptr <= i.heap {
		return true, err
	}
	if ptr-i.heap < i.budget {
		return false, nil
	}
	_, err = i.heapSet.Call(ctx, uint64(i.heap))
	return true, err
}

// opaEval is one evaluation with opa_eval (OPA's Wasm ABI 1.2): the input
// written just after the data, the heap reset to after it. It returns the
// address of the serialized result set.
func (p *Rego) opaEval(ctx context.Context, inst *regoInstance, entrypoint int32, input []byte) (uint32, error) {
	mem := inst.policy.Memory()
	end := (uint64(inst.heap) + uint64(len(input)) + 7) &^ 7 // the heap after the input, aligned
	if end > uint64(mem.Size()) {
		if _, ok := mem.Grow(uint32((end - uint64(mem.Size()) + 65535) / 65536)); !ok {
			return 0, fmt.Errorf("the request (%d bytes) does not fit in the policy's memory cap of %d MiB", len(input), p.cfg.MemoryLimitMiB)
		}
	}
	if !mem.Write(inst.heap, input) {
		return 0, errors.New("the request does not fit in the policy's memory")
	}
	return inst.call1(ctx, inst.opaEval, 0, uint64(uint32(entrypoint)), uint64(inst.dataAddr), uint64(inst.heap), uint64(len(input)), end, 0)
}

// evalByContext is one evaluation by context: an evaluation context set up
// with the parsed input and the data, evaluated, its result set
// serialized. It returns the address of the serialized result set.
func (i *regoInstance) evalByContext(ctx context.Context, entrypoint int32, input uint32) (uint32, error) {
	c, err := i.call1(ctx, i.ctxNew)
	for _, set := range []struct {
		fn  api.Function
		arg uint32
	}{{i.setInput, input}, {i.setData, i.dataAddr}, {i.setEntry, uint32(entrypoint)}} {
		if err == nil {
			_, err = set.fn.Call(ctx, uint64(c), uint64(set.arg))
		}
	}
	if err == nil {
		var failed uint32
		if failed, err = i.call1(ctx, i.evalFn, uint64(c)); err == nil && failed != 0 {
			err = errRegoEvalFailed // opa_eval aborts on it
		}
	}
	var result uint32
	if err == nil {
		result, err = i.call1(ctx, i.getResult, uint64(c))
	}
	if err != nil {
		return 0, err
	}
	return i.call1(ctx, i.dump, uint64(result))
}

// result reads the serialized result set at addr, then frees it: the
// entrypoint's result, or one that does not Exist when it is undefined.
func (i *regoInstance) result(ctx context.Context, addr uint32) (gjson.Result, error) {
	out, ok := cBytes(i.policy.Memory(), addr, maxRegoResult)
	if !ok || step.CheckJSON(out, abi.MaxJSONDepth) != nil {
		return gjson.Result{}, fmt.Errorf("the policy's result is not JSON of at most %d KiB", maxRegoResult>>10)
	}
	if i.free != nil {
		if _, err := i.free.Call(ctx, uint64(addr)); err != nil {
			return gjson.Result{}, fmt.Errorf("the policy trapped freeing its result: %s", runtime.TrapMessage(err))
		}
	}
	set := gjson.ParseBytes(out)
	if !set.IsArray() {
		return gjson.Result{}, errors.New("the policy's result is not a result set")
	}
	rows := set.Array()
	if len(rows) == 0 {
		return gjson.Result{}, nil // undefined
	}
	var result gjson.Result
	err := step.Fields(rows[0], "the result", func(k string, v gjson.Result) error {
		if k != "result" {
			return errors.New("another field")
		}
		result = v
		return nil
	})
	if len(rows) > 1 || err != nil || !result.Exists() {
		return gjson.Result{}, errors.New("the policy's result set is not one {\"result\": ...}")
	}
	return result, nil
}

// regoVerdict maps the entrypoints' results to a verdict:
//   - any message in deny (wflow/deny, or decision.deny) refuses the step,
//     the messages, sorted, its reason;
//   - wflow/allow and decision.allow, where the policy has them, must each
//     be true: false or undefined refuses;
//   - a patch (wflow/patch, or decision.patch; not both) that changes the step amends
//     it (RFC 7386 merge into the step's JSON, then the same checks as any
//     amended step);
//   - else the step is allowed. wflow/decision, where the policy has it,
//     must be defined.
func regoVerdict(st step.Step, results map[string]gjson.Result) (Verdict, error) {
	var deny []string
	allow, hasAllow := gjson.Result{}, false
	patch, reason := gjson.Result{}, ""
	if d, ok := results[EntrypointDecision]; ok {
		if !d.Exists() {
			return Verdict{}, fmt.Errorf("the policy's %s is undefined for this step", EntrypointDecision)
		}
		if !d.IsObject() {
			return Verdict{}, fmt.Errorf("the policy's %s is not an object of allow, deny, patch and reason", EntrypointDecision)
		}
		err := step.Fields(d, "the policy's "+EntrypointDecision, func(k string, v gjson.Result) error {
			var err error
			switch k {
			case "allow":
				allow, hasAllow = v, true
			case "deny":
				deny, err = messages(v, EntrypointDecision+".deny")
			case "patch":
				patch = v
			case "reason":
				if v.Type != gjson.String {
					err = fmt.Errorf("the policy's %s.reason is not a string", EntrypointDecision)
				}
				reason = v.String()
			default:
				err = fmt.Errorf("the policy's %s has a field %q; it may have allow, deny, patch and reason", EntrypointDecision, clip.String(k, 64))
			}
			return err
		})
		if err != nil { // step.Fields words its own errors for steps
			return Verdict{}, errors.New(strings.TrimPrefix(err.Error(), "invalid step: "))
		}
	}
	if d, ok := results[EntrypointDeny]; ok && d.Exists() {
		more, err := messages(d, EntrypointDeny)
		if err != nil {
			return Verdict{}, err
		}
		deny = append(deny, more...)
	}
	notAllowed := hasAllow && allow.Type != gjson.True // decision.allow
	if a, ok := results[EntrypointAllow]; ok {
		notAllowed = notAllowed || a.Type != gjson.True
	}
	if p, ok := results[EntrypointPatch]; ok && p.Exists() {
		if patch.Exists() {
			return Verdict{}, fmt.Errorf("the policy has both %s and %s.patch: give one", EntrypointPatch, EntrypointDecision)
		}
		patch = p
	}
	if len(deny) > 0 {
		sort.Strings(deny)
		return Verdict{Verdict: step.VerdictDeny, Reason: clip.String(strings.Join(slices.Compact(deny), "; "), 4096)}, nil
	}
	if notAllowed {
		why := "the policy does not allow the step (its allow is not true)"
		if reason != "" {
			why = reason
		}
		return Verdict{Verdict: step.VerdictDeny, Reason: clip.String(why, 4096)}, nil
	}
	if patch.Exists() {
		if !patch.IsObject() {
			return Verdict{}, errors.New("the policy's patch is not an object")
		}
		if len(patch.Map()) > 0 {
			before, err := step.MarshalJSON(st, false)
			if err != nil {
				return Verdict{}, err
			}
			after, err := mergePatch(before, []byte(patch.Raw))
			if err != nil {
				return Verdict{}, err
			}
			s, err := step.ParseStep(after)
			if err != nil {
				return Verdict{}, fmt.Errorf("the step as the policy's patch leaves it is not valid: %v", err)
			}
			if reason == "" {
				reason = "amended by the policy's patch"
			}
			return Verdict{Verdict: step.VerdictAmend, Reason: clip.String(reason, 4096), Step: &s}, nil
		}
	}
	return Verdict{Verdict: step.VerdictAllow, Reason: clip.String(reason, 4096)}, nil
}

// messages reads a set of deny messages (a JSON array of strings).
func messages(v gjson.Result, what string) ([]string, error) {
	if !v.IsArray() {
		return nil, fmt.Errorf("the policy's %s is not a set of messages", what)
	}
	var out []string
	for _, m := range v.Array() {
		if m.Type != gjson.String {
			return nil, fmt.Errorf("the policy's %s holds %s, not a message", what, clip.String(m.Raw, 64))
		}
		out = append(out, m.String())
	}
	return out, nil
}

// mergePatch applies an RFC 7386 JSON merge patch to a JSON object: each
// field of the patch replaces the target's, objects merged the same way,
// null removing the field.
func mergePatch(target, patch []byte) ([]byte, error) {
	var t, p any
	if err := json.Unmarshal(target, &t); err != nil {
		return nil, err
	}
	if err := json.Unmarshal(patch, &p); err != nil {
		return nil, err
	}
	return json.Marshal(merge(t, p))
}

func merge(target, patch any) any {
	pm, ok := patch.(map[string]any)
	if !ok {
		return patch
	}
	tm, ok := target.(map[string]any)
	if !ok {
		tm = map[string]any{}
	}
	for k, v := range pm {
		if v == nil {
			delete(tm, k)
		} else {
			tm[k] = merge(tm[k], v)
		}
	}
	return tm
}

// Loaded is a policy loaded from a file: close it when done.
type Loaded interface {
	Policy
	Close(ctx context.Context) error
}

// Load loads the policy in a file's bytes, whichever kind it is: an OPA
// bundle (a gzipped tar from `opa build -t wasm`), a policy.wasm built from
// Rego (with data, its base data document: a JSON object, or nil), or a
// module of wflow's own policy ABI. usedData says whether data went to the
// policy (only a bare Rego policy.wasm takes it).
func Load(ctx context.Context, name string, b, data []byte, cfg WasmConfig) (p Loaded, usedData bool, err error) {
	switch {
	case bytes.HasPrefix(b, []byte{0x1f, 0x8b}):
		p, err = LoadRegoBundle(ctx, name, b, cfg)
		return p, false, err
	case IsRego(b):
		p, err = LoadRego(ctx, name, b, data, cfg)
		return p, true, err
	}
	p, err = LoadWasm(ctx, name, b, cfg)
	return p, false, err
}

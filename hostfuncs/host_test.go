package hostfuncs

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/sys"

	"github.com/wflow/wflow/abi"
	"github.com/wflow/wflow/containers"
	"github.com/wflow/wflow/internal/testenv"
	"github.com/wflow/wflow/step"
)

func TestMain(m *testing.M) { os.Exit(testenv.MainWithLeakCheck(m)) }

// fakeRunner finishes a step at once, or when the test closes the step's
// gate, or when the run is cancelled. It records how many ran at once.
type fakeRunner struct {
	mu         sync.Mutex
	gates      map[string]chan struct{}
	running    int
	maxRunning int
	calls      int
	started    chan string // when set, gets each step's name as it starts
}

func (f *fakeRunner) gate(name string) chan struct{} {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.gates == nil {
		f.gates = map[string]chan struct{}{}
	}
	if f.gates[name] == nil {
		f.gates[name] = make(chan struct{})
	}
	return f.gates[name]
}

func (f *fakeRunner) Run(ctx context.Context, handle uint32, st step.Step, live containers.Live) step.ExecResult {
	f.mu.Lock()
	f.calls++
	f.running++
	if f.running > f.maxRunning {
		f.maxRunning = f.running
	}
	gate, started := f.gates[st.Name], f.started
	f.mu.Unlock()
	if started != nil {
		started <- st.Name
	}
	defer func() { f.mu.Lock(); f.running--; f.mu.Unlock() }()
	res := step.ExecResult{Step: st.Name, Image: st.Image, Stdout: "ran " + st.Name, Commands: []step.CommandResult{}}
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			res.ReturnCode, res.ErrorKind, res.Error = 1, step.ErrorKindCancelled, "cancelled"
		}
	}
	return res
}

const memSize = 65536 // the probe's one page

// probe is the abi_probe.wat module with a Host behind it.
type probe struct {
	t      *testing.T
	host   *Host
	runner *fakeRunner
	mod    api.Module
}

func newProbe(t *testing.T, cfg Config) *probe {
	t.Helper()
	wasm := testenv.Wat(t, "testdata/abi_probe.wat")
	ctx := context.Background()
	r := wazero.NewRuntime(ctx)
	t.Cleanup(func() { r.Close(ctx) })
	fr := &fakeRunner{}
	if cfg.Runner == nil {
		cfg.Runner = fr
	}
	h := New(ctx, cfg)
	t.Cleanup(h.Shutdown)
	if err := h.Instantiate(ctx, r); err != nil {
		t.Fatal(err)
	}
	mod, err := r.Instantiate(ctx, wasm)
	if err != nil {
		t.Fatal(err)
	}
	return &probe{t: t, host: h, runner: fr, mod: mod}
}

func (p *probe) call(name string, args ...uint32) abi.Errno {
	p.t.Helper()
	params := make([]uint64, len(args))
	for i, a := range args {
		params[i] = api.EncodeU32(a)
	}
	res, err := p.mod.ExportedFunction(name).Call(context.Background(), params...)
	if err != nil {
		p.t.Fatalf("%s%v trapped: %v", name, args, err)
	}
	return abi.Errno(api.DecodeU32(res[0]))
}

func (p *probe) write(off uint32, b []byte) {
	if !p.mod.Memory().Write(off, b) {
		p.t.Fatalf("write at %d", off)
	}
}

func (p *probe) read(off, n uint32) []byte {
	b, ok := p.mod.Memory().Read(off, n)
	if !ok {
		p.t.Fatalf("read at %d", off)
	}
	return append([]byte(nil), b...)
}

func (p *probe) u32(off uint32) uint32 { return binary.LittleEndian.Uint32(p.read(off, 4)) }

// lastError reads error_get's message through the probe's memory.
func (p *probe) lastError() map[string]any {
	p.t.Helper()
	const buf, lenPtr = 40000, 39996
	if e := p.call(abi.FuncErrorGet, buf, 20000, lenPtr); e != abi.OK {
		p.t.Fatalf("error_get: %v", e)
	}
	var m map[string]any
	if err := json.Unmarshal(p.read(buf, p.u32(lenPtr)), &m); err != nil {
		p.t.Fatal(err)
	}
	return m
}

// expect checks an errno and that error_get describes it.
func (p *probe) expect(got, want abi.Errno, function, msg string) {
	p.t.Helper()
	if got != want {
		p.t.Fatalf("errno %v, want %v (%v)", got, want, p.lastError())
	}
	if want == abi.OK {
		return
	}
	e := p.lastError()
	if e["name"] != want.String() || e["errno"] != float64(want) || e["function"] != function || !strings.Contains(e["message"].(string), msg) {
		p.t.Errorf("error_get = %v, want %s from %s mentioning %q", e, want, function, msg)
	}
}

const validSpec = `{"name":"s","image":"busybox","commands":["true"]}`

func TestParamsGetBufferProtocol(t *testing.T) {
	params := []byte(`{"greeting":"hello"}`)
	n := uint32(len(params))
	p := newProbe(t, Config{Params: params})
	cases := []struct {
		name           string
		buf, cap, lenP uint32
		want           abi.Errno
		msg            string
	}{
		{"fits exactly", 100, n, 0, abi.OK, ""},
		{"too small by one", 100, n - 1, 0, abi.ErrBufferTooSmall, "the answer is"},
		{"zero capacity", 100, 0, 0, abi.ErrBufferTooSmall, "the answer is"},
		{"len_ptr at the last 4 bytes", 100, n, memSize - 4, abi.OK, ""},
		{"len_ptr one past", 100, n, memSize - 3, abi.ErrFault, "len_ptr"},
		{"len_ptr far out", 100, n, 0xFFFFFFFF, abi.ErrFault, "len_ptr"},
		{"buffer ends at the memory's end", memSize - n, n, 0, abi.OK, ""},
		{"buffer one past", memSize - n + 1, n, 0, abi.ErrFault, "buffer"},
		{"buffer wraps around 4 GiB", 0xFFFFFFF0, 0xFFFFFFFF, 0, abi.ErrFault, "buffer"},
		{"huge capacity, answer fits", 100, 0xFFFFFFFF, 0, abi.OK, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p.t = t
			p.write(c.buf%memSize, make([]byte, min(int(n), int(memSize-c.buf%memSize))))
			p.write(0, []byte{0xAA, 0xAA, 0xAA, 0xAA})
			got := p.call(abi.FuncParamsGet, c.buf, c.cap, c.lenP)
			p.expect(got, c.want, abi.FuncParamsGet, c.msg)
			switch got {
			case abi.OK:
				if p.u32(c.lenP) != n || string(p.read(c.buf, n)) != string(params) {
					t.Errorf("answer %q (len %d)", p.read(c.buf, n), p.u32(c.lenP))
				}
			case abi.ErrBufferTooSmall:
				if p.u32(c.lenP) != n {
					t.Errorf("len_ptr = %d, want the size needed %d", p.u32(c.lenP), n)
				}
				if p.read(c.buf, 1)[0] != 0 {
					t.Error("the buffer was written although it was too small")
				}
			case abi.ErrFault:
				if c.lenP == 0 && p.u32(0) != 0xAAAAAAAA {
					t.Error("len_ptr was written although the call failed")
				}
			}
		})
	}
}

func TestStepSubmitHostileInput(t *testing.T) {
	cases := []struct {
		name                string
		spec                string
		ptr, len, handlePtr uint32
		want                abi.Errno
		msg                 string
	}{
		{"valid", validSpec, 0, 0, 60000, abi.OK, ""},
		{"spec out of bounds", validSpec, memSize - 10, 0, 60000, abi.ErrFault, "step spec"},
		{"spec wraps around 4 GiB", validSpec, 0xFFFFFFF0, 0x20, 60000, abi.ErrFault, "step spec"},
		{"length one over the cap", validSpec, 0, abi.MaxStepSpecLen + 1, 60000, abi.ErrTooLarge, "at most"},
		{"length near 4 GiB", validSpec, 0, 0xFFFFFFFF, 60000, abi.ErrTooLarge, "at most"},
		{"handle_ptr out of bounds", validSpec, 0, 0, memSize - 3, abi.ErrFault, "handle_ptr"},
		{"empty", "", 0, 0, 60000, abi.ErrInvalidJSON, "syntax"},
		{"invalid JSON", `{"name":"s",`, 0, 0, 60000, abi.ErrInvalidJSON, "syntax"},
		{"invalid UTF-8", "{\"name\":\"\xc3\x28\"}", 0, 0, 60000, abi.ErrInvalidJSON, "UTF-8"},
		{"deeply nested", strings.Repeat("[", 10000) + strings.Repeat("]", 10000), 0, 0, 60000, abi.ErrInvalidJSON, "deeper"},
		{"not a step", `{"name":"s"}`, 0, 0, 60000, abi.ErrInvalidStep, "image"},
		{"unknown field", `{"name":"s","image":"b","commands":["x"],"mounts":["/:/host"]}`, 0, 0, 60000, abi.ErrInvalidStep, `"mounts"`},
		{"unknown variable", `{"name":"s","image":"b","commands":["echo $HOME"]}`, 0, 0, 60000, abi.ErrInvalidStep, "unknown variable $HOME"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := newProbe(t, Config{})
			p.write(0, []byte(c.spec))
			n := c.len
			if n == 0 {
				n = uint32(len(c.spec))
			}
			got := p.call(abi.FuncStepSubmit, c.ptr, n, c.handlePtr)
			p.expect(got, c.want, abi.FuncStepSubmit, c.msg)
			if got == abi.OK {
				if h := p.u32(c.handlePtr); h != 1 {
					t.Errorf("handle %d, want 1", h)
				}
				return
			}
			p.host.Shutdown()
			if p.runner.calls != 0 {
				t.Errorf("a refused submit started %d step(s)", p.runner.calls)
			}
		})
	}
}

func TestVarsAreSubstituted(t *testing.T) {
	var got step.Step
	runner := stepRecorder(func(s step.Step) { got = s })
	p := newProbe(t, Config{Runner: runner, Vars: map[string]string{"python": "python3"}})
	p.write(0, []byte(`{"name":"s","image":"b","commands":[["$python","-c","print(1)"],"echo $$HOME"]}`))
	p.expect(p.call(abi.FuncStepRun, 0, 79, 60000), abi.OK, "", "")
	if got.Commands[0].Argv[0] != "python3" || got.Commands[1].Shell != "echo $HOME" {
		t.Errorf("ran %+v", got.Commands)
	}
}

type stepRecorder func(step.Step)

func (f stepRecorder) Run(_ context.Context, h uint32, s step.Step, _ containers.Live) step.ExecResult {
	f(s)
	return step.ExecResult{Step: s.Name}
}

// submit submits a step named name and returns its handle.
func (p *probe) submit(name string) uint32 {
	p.t.Helper()
	spec := `{"name":"` + name + `","image":"b","commands":["true"]}`
	p.write(0, []byte(spec))
	p.expect(p.call(abi.FuncStepSubmit, 0, uint32(len(spec)), 60000), abi.OK, "", "")
	return p.u32(60000)
}

// result reads a handle's ExecResult.
func (p *probe) result(h uint32) step.ExecResult {
	p.t.Helper()
	p.expect(p.call(abi.FuncStepResult, h, 10000, 20000, 9996), abi.OK, "", "")
	var r step.ExecResult
	if err := json.Unmarshal(p.read(10000, p.u32(9996)), &r); err != nil {
		p.t.Fatal(err)
	}
	return r
}

// wait calls step_wait on the handles and returns the ready one.
func (p *probe) wait(handles ...uint32) uint32 {
	p.t.Helper()
	for i, h := range handles {
		p.write(5000+uint32(4*i), binary.LittleEndian.AppendUint32(nil, h))
	}
	p.expect(p.call(abi.FuncStepWait, 5000, uint32(len(handles)), 4996), abi.OK, "", "")
	return p.u32(4996)
}

func TestWaitReturnsResultsInTheOrderTheyLand(t *testing.T) {
	p := newProbe(t, Config{Parallel: 3})
	for _, n := range []string{"a", "b", "c"} {
		p.runner.gate(n)
	}
	a, b, c := p.submit("a"), p.submit("b"), p.submit("c")

	// Pending: neither finished nor readable.
	p.expect(p.call(abi.FuncStepResult, a, 10000, 20000, 9996), abi.ErrPending, abi.FuncStepResult, "has not finished")

	close(p.runner.gate("b"))
	if got := p.wait(a, b, c); got != b {
		t.Fatalf("wait = %d, want b=%d", got, b)
	}
	close(p.runner.gate("c"))
	close(p.runner.gate("a"))
	// Give a time to finish after c, then both are done: c landed first.
	deadline := time.Now().Add(5 * time.Second)
	for len(p.host.Results()) < 3 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	first := p.host.Results()[1].Handle
	if got := p.wait(a, c); got != first {
		t.Errorf("wait = %d, want the one that finished first, %d", got, first)
	}
	if r := p.result(b); r.Step != "b" || r.Handle != b || r.Stdout != "ran b" {
		t.Errorf("result %+v", r)
	}
	// A read result frees its handle.
	p.expect(p.call(abi.FuncStepResult, b, 10000, 20000, 9996), abi.ErrUnknownHandle, abi.FuncStepResult, "not open")
	p.write(5000, binary.LittleEndian.AppendUint32(nil, b))
	p.expect(p.call(abi.FuncStepWait, 5000, 1, 4996), abi.ErrUnknownHandle, abi.FuncStepWait, "handle 2")
}

func TestStepResultBufferTooSmallKeepsTheHandle(t *testing.T) {
	p := newProbe(t, Config{})
	h := p.submit("s")
	p.wait(h)
	p.expect(p.call(abi.FuncStepResult, h, 10000, 10, 9996), abi.ErrBufferTooSmall, abi.FuncStepResult, "the answer is")
	need := p.u32(9996)
	if need <= 10 {
		t.Fatalf("needed %d", need)
	}
	if r := p.result(h); r.Step != "s" {
		t.Errorf("result %+v", r)
	}
}

func TestStepWaitHostileInput(t *testing.T) {
	p := newProbe(t, Config{})
	h := p.submit("s")
	p.write(5000, binary.LittleEndian.AppendUint32(nil, h))
	p.write(6000, binary.LittleEndian.AppendUint32(nil, 999))
	p.write(7000, binary.LittleEndian.AppendUint32(nil, 0))
	cases := []struct {
		name             string
		ptr, count, rptr uint32
		want             abi.Errno
		msg              string
	}{
		{"zero handles", 5000, 0, 4996, abi.ErrInvalidArgument, "0"},
		{"too many handles", 5000, abi.MaxWaitHandles + 1, 4996, abi.ErrTooLarge, "at most"},
		{"count near 4 GiB", 5000, 0xFFFFFFFF, 4996, abi.ErrTooLarge, "at most"},
		{"handles out of bounds", memSize - 4, 2, 4996, abi.ErrFault, "handles"},
		{"ready_ptr out of bounds", 5000, 1, memSize - 2, abi.ErrFault, "ready_ptr"},
		{"never issued", 6000, 1, 4996, abi.ErrUnknownHandle, "handle 999"},
		{"handle zero", 7000, 1, 4996, abi.ErrUnknownHandle, "handle 0"},
		{"valid", 5000, 1, 4996, abi.OK, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p.t = t
			p.expect(p.call(abi.FuncStepWait, c.ptr, c.count, c.rptr), c.want, abi.FuncStepWait, c.msg)
		})
	}
	p.t = t
	p.expect(p.call(abi.FuncStepResult, 12345, 10000, 100, 9996), abi.ErrUnknownHandle, abi.FuncStepResult, "handle 12345")
	p.expect(p.call(abi.FuncStepResult, h, 10000, 100, memSize-1), abi.ErrFault, abi.FuncStepResult, "len_ptr")
}

func TestLogAndOutput(t *testing.T) {
	obs := &logRecorder{}
	p := newProbe(t, Config{Observer: obs})
	p.write(0, []byte("hello\xffworld\n"))
	p.expect(p.call(abi.FuncLogWrite, abi.LogWarn, 0, 12), abi.OK, "", "")
	if len(obs.lines) != 1 || obs.lines[0] != "2:hello\uFFFDworld" {
		t.Errorf("logged %q", obs.lines)
	}
	p.expect(p.call(abi.FuncLogWrite, 4, 0, 5), abi.ErrInvalidArgument, abi.FuncLogWrite, "log level 4")
	p.expect(p.call(abi.FuncLogWrite, 1, 0, abi.MaxLogLen+1), abi.ErrTooLarge, abi.FuncLogWrite, "at most")
	p.expect(p.call(abi.FuncLogWrite, 1, memSize-4, 5), abi.ErrFault, abi.FuncLogWrite, "log message")

	p.write(0, []byte(`{"answer":42}`))
	p.expect(p.call(abi.FuncOutputSet, 0, 13), abi.OK, "", "")
	if string(p.host.Output()) != `{"answer":42}` {
		t.Errorf("output %s", p.host.Output())
	}
	p.expect(p.call(abi.FuncOutputSet, 0, 12), abi.ErrInvalidJSON, abi.FuncOutputSet, "syntax")
	p.expect(p.call(abi.FuncOutputSet, 0, abi.MaxOutputLen+1), abi.ErrTooLarge, abi.FuncOutputSet, "at most")
	p.expect(p.call(abi.FuncOutputSet, 0xFFFFFFFF, 2), abi.ErrFault, abi.FuncOutputSet, "output")
	if string(p.host.Output()) != `{"answer":42}` {
		t.Errorf("a refused output_set changed the output: %s", p.host.Output())
	}
}

type logRecorder struct {
	nopObserver
	lines []string
}

func (l *logRecorder) Log(level int, msg string) {
	l.lines = append(l.lines, string(rune('0'+level))+":"+msg)
}

func TestErrorGetDoesNotOverwriteTheLastError(t *testing.T) {
	p := newProbe(t, Config{})
	p.call(abi.FuncLogWrite, 9, 0, 0)
	if e := p.call(abi.FuncErrorGet, 40000, 4, 39996); e != abi.ErrBufferTooSmall {
		t.Fatalf("error_get with a 4-byte buffer: %v", e)
	}
	if e := p.lastError(); e["name"] != "invalid_argument" {
		t.Errorf("error_get = %v, want the log_write error", e)
	}
	if e := p.call(abi.FuncErrorGet, 40000, 100, memSize); e != abi.ErrFault {
		t.Errorf("error_get with len_ptr out of bounds: %v", e)
	}
}

func TestNoMemory(t *testing.T) {
	wasm := testenv.Wat(t, "testdata/no_memory.wat")
	ctx := context.Background()
	r := hostRuntime(t)
	mod, err := r.Instantiate(ctx, wasm)
	if err != nil {
		t.Fatal(err)
	}
	res, err := mod.ExportedFunction("log_write").Call(ctx, 1, 0, 1)
	if err != nil || abi.Errno(res[0]) != abi.ErrFault {
		t.Errorf("log_write without memory = %v, %v", res, err)
	}
}

func TestOpenHandleLimit(t *testing.T) {
	p := newProbe(t, Config{Parallel: 64})
	spec := []byte(validSpec)
	p.write(0, spec)
	for i := 0; i < abi.MaxOpenHandles; i++ {
		if e := p.call(abi.FuncStepSubmit, 0, uint32(len(spec)), 60000); e != abi.OK {
			t.Fatalf("submit %d: %v", i, e)
		}
	}
	p.expect(p.call(abi.FuncStepSubmit, 0, uint32(len(spec)), 60000), abi.ErrLimit, abi.FuncStepSubmit, "handles are open")
	// Reading one result frees a slot.
	p.wait(1)
	p.result(1)
	p.expect(p.call(abi.FuncStepSubmit, 0, uint32(len(spec)), 60000), abi.OK, "", "")
}

func TestParallelLimitAndShutdown(t *testing.T) {
	p := newProbe(t, Config{Parallel: 2})
	p.runner.started = make(chan string, 4)
	for _, n := range []string{"a", "b", "c", "d"} {
		p.runner.gate(n)
		p.submit(n)
	}
	// Slots go in submission order: a and b run (in either order), c and d wait.
	got := map[string]bool{}
	for len(got) < 2 {
		select {
		case name := <-p.runner.started:
			got[name] = true
		case <-time.After(10 * time.Second):
			t.Fatalf("only %v started", got)
		}
	}
	if !got["a"] || !got["b"] {
		t.Fatalf("%v started, want a and b", got)
	}
	p.host.Shutdown() // cancels the two running and the two waiting for a slot
	if p.runner.maxRunning != 2 || p.runner.calls != 2 {
		t.Errorf("max running %d, calls %d; want 2 and 2", p.runner.maxRunning, p.runner.calls)
	}
	results := p.host.Results()
	if len(results) != 4 {
		t.Fatalf("%d results", len(results))
	}
	for _, r := range results {
		if r.ErrorKind != step.ErrorKindCancelled {
			t.Errorf("result %+v: want cancelled", r)
		}
	}
	p.write(0, []byte(validSpec))
	p.expect(p.call(abi.FuncStepSubmit, 0, uint32(len(validSpec)), 60000), abi.ErrCancelled, abi.FuncStepSubmit, "cancelled")
}

func TestBudget(t *testing.T) {
	t.Run("max steps ends the module", func(t *testing.T) {
		p := newProbe(t, Config{Budget: Budget{MaxSteps: 2}})
		p.submit("a")
		p.submit("b")
		p.write(0, []byte(validSpec))
		_, err := p.mod.ExportedFunction(abi.FuncStepSubmit).Call(context.Background(), 0, uint64(len(validSpec)), 60000)
		var exit *sys.ExitError
		if !errors.As(err, &exit) || exit.ExitCode() != ExitLimit {
			t.Fatalf("third submit: %v, want the module ended with %d", err, ExitLimit)
		}
		if o := p.host.Overrun(); !strings.Contains(o, "more than 2 steps (--max-steps)") {
			t.Errorf("overrun %q", o)
		}
	})
	t.Run("max result bytes ends the module", func(t *testing.T) {
		p := newProbe(t, Config{Params: []byte(`{"k":"0123456789"}`), Budget: Budget{MaxResultBytes: 30}})
		if e := p.call(abi.FuncParamsGet, 100, 100, 0); e != abi.OK {
			t.Fatal(e)
		}
		// A too-small buffer costs nothing: only answers delivered count.
		if e := p.call(abi.FuncParamsGet, 100, 1, 0); e != abi.ErrBufferTooSmall {
			t.Fatal(e)
		}
		_, err := p.mod.ExportedFunction(abi.FuncParamsGet).Call(context.Background(), 100, 100, 0)
		var exit *sys.ExitError
		if !errors.As(err, &exit) || !strings.Contains(p.host.Overrun(), "--max-result-bytes") {
			t.Fatalf("second read: %v, overrun %q", err, p.host.Overrun())
		}
	})
	t.Run("max handles is backpressure", func(t *testing.T) {
		p := newProbe(t, Config{Budget: Budget{MaxHandles: 2}})
		h := p.submit("a")
		p.submit("b")
		p.write(0, []byte(validSpec))
		p.expect(p.call(abi.FuncStepSubmit, 0, uint32(len(validSpec)), 60000), abi.ErrLimit, abi.FuncStepSubmit, "--max-handles")
		p.wait(h)
		p.result(h)
		p.submit("c")
		if p.host.Overrun() != "" {
			t.Errorf("overrun %q", p.host.Overrun())
		}
	})
}

// TestFunctionsAreDocumented: every host function of both ABIs has its
// heading, with its parameters as abi declares them, in the docs.
func TestFunctionsAreDocumented(t *testing.T) {
	for doc, sigs := range map[string][]abi.Signature{"../docs/abi.md": abi.Functions, "../docs/policies.md": abi.PolicyFunctions} {
		b, err := os.ReadFile(doc)
		if err != nil {
			t.Fatal(err)
		}
		for _, sig := range sigs {
			want := "`" + sig.Name + "(" + strings.Join(sig.Params, ", ") + ") -> errno`"
			if !strings.Contains(string(b), "### "+want) && !strings.Contains(string(b), ", "+want) {
				t.Errorf("%s has no heading %s", doc, want)
			}
		}
	}
}

// TestHostExportsTheABI: the host module exports exactly abi.Functions,
// each with its parameters: a function declared in abi without a handler
// (or the reverse) fails here, not in a guest's run.
func TestHostExportsTheABI(t *testing.T) {
	r := hostRuntime(t)
	exports := r.Module(abi.ModuleName).ExportedFunctionDefinitions()
	if len(exports) != len(abi.Functions) {
		t.Errorf("the host exports %d functions, abi.Functions declares %d", len(exports), len(abi.Functions))
	}
	for _, sig := range abi.Functions {
		def, ok := exports[sig.Name]
		if !ok {
			t.Errorf("%s is declared in abi.Functions but not exported", sig.Name)
			continue
		}
		if strings.Join(def.ParamNames(), ",") != strings.Join(sig.Params, ",") || len(def.ResultTypes()) != 1 {
			t.Errorf("%s exported as (%v) with %d results, declared (%v)", sig.Name, def.ParamNames(), len(def.ResultTypes()), sig.Params)
		}
	}
}

// hostRuntime is a wazero runtime with a Host on a fake runner instantiated
// in it, both released when the test ends.
func hostRuntime(t testing.TB) wazero.Runtime {
	t.Helper()
	ctx := context.Background()
	r := wazero.NewRuntime(ctx)
	t.Cleanup(func() { r.Close(ctx) })
	h := New(ctx, Config{Runner: &fakeRunner{}})
	t.Cleanup(h.Shutdown)
	if err := h.Instantiate(ctx, r); err != nil {
		t.Fatal(err)
	}
	return r
}

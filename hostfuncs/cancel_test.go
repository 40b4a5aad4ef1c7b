package hostfuncs

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/wflow/wflow/abi"
	"github.com/wflow/wflow/containers"
	"github.com/wflow/wflow/secrets"
	"github.com/wflow/wflow/step"
)

// runnerFunc is a StepRunner of one function.
type runnerFunc func(ctx context.Context, st step.Step) step.ExecResult

func (f runnerFunc) Run(ctx context.Context, _ uint32, st step.Step, _ containers.Live) step.ExecResult {
	return f(ctx, st)
}

// waitTimeout calls step_wait_timeout on the handles and returns its errno
// and the ready handle.
func (p *probe) waitTimeout(ms uint32, handles ...uint32) (abi.Errno, uint32) {
	p.t.Helper()
	for i, h := range handles {
		p.write(5000+uint32(4*i), binary.LittleEndian.AppendUint32(nil, h))
	}
	p.write(4996, []byte{0, 0, 0, 0})
	e := p.call(abi.FuncStepWaitTimeout, 5000, uint32(len(handles)), ms, 4996)
	return e, p.u32(4996)
}

func TestStepWaitTimeout(t *testing.T) {
	p := newProbe(t, Config{Parallel: 2})
	p.runner.gate("slow")
	slow := p.submit("slow")

	start := time.Now()
	e, ready := p.waitTimeout(150, slow)
	p.expect(e, abi.ErrTimeout, abi.FuncStepWaitTimeout, "within 150 ms")
	if waited := time.Since(start); waited < 150*time.Millisecond {
		t.Errorf("timed out after %v, before its 150 ms", waited)
	}
	if ready != 0 {
		t.Errorf("ready_ptr written on a timeout: %d", ready)
	}
	// Timeout 0 polls: pending steps time out at once, a finished one is returned.
	if e, _ := p.waitTimeout(0, slow); e != abi.ErrTimeout {
		t.Fatalf("poll of a pending step: %v", e)
	}
	done := p.submit("fast")
	p.wait(done) // finished
	if e, ready := p.waitTimeout(0, slow, done); e != abi.OK || ready != done {
		t.Fatalf("poll with a finished step: %v, ready %d; want ok, %d", e, ready, done)
	}
	// The timed-out handle is still open and its step still runs.
	close(p.runner.gate("slow"))
	if e, ready := p.waitTimeout(10_000, slow); e != abi.OK || ready != slow {
		t.Fatalf("wait after the gate opened: %v, ready %d", e, ready)
	}
	if r := p.result(slow); r.Stdout != "ran slow" || r.ErrorKind != "" {
		t.Errorf("result %+v", r)
	}
	// Hostile input fails as step_wait's does, naming this function.
	p.expect(p.call(abi.FuncStepWaitTimeout, 5000, 0, 10, 4996), abi.ErrInvalidArgument, abi.FuncStepWaitTimeout, "handles_count is 0")
	p.expect(p.call(abi.FuncStepWaitTimeout, 5000, abi.MaxWaitHandles+1, 10, 4996), abi.ErrTooLarge, abi.FuncStepWaitTimeout, "at most")
	p.expect(p.call(abi.FuncStepWaitTimeout, memSize-4, 2, 10, 4996), abi.ErrFault, abi.FuncStepWaitTimeout, "handles")
	p.expect(p.call(abi.FuncStepWaitTimeout, 5000, 1, 10, memSize-2), abi.ErrFault, abi.FuncStepWaitTimeout, "ready_ptr")
	p.write(6000, binary.LittleEndian.AppendUint32(nil, 999))
	p.expect(p.call(abi.FuncStepWaitTimeout, 6000, 1, 10, 4996), abi.ErrUnknownHandle, abi.FuncStepWaitTimeout, "handle 999")
}

func TestStepCancel(t *testing.T) {
	p := newProbe(t, Config{Parallel: 1})
	p.runner.started = make(chan string, 4)
	for _, n := range []string{"running", "queued", "other"} {
		p.runner.gate(n)
	}
	running, queued, other := p.submit("running"), p.submit("queued"), p.submit("other")
	if got := <-p.runner.started; got != "running" {
		t.Fatalf("%s started first", got)
	}

	// A queued step: it never starts; its slot goes to the next in line.
	p.expect(p.call(abi.FuncStepCancel, queued), abi.OK, "", "")
	if got := p.wait(queued); got != queued {
		t.Fatalf("wait = %d", got)
	}
	r := p.result(queued)
	if r.ErrorKind != step.ErrorKindCancelled || !strings.Contains(r.Error, "step_cancel") || !strings.Contains(r.Error, "before it started") || r.Handle != queued {
		t.Errorf("queued step's result %+v", r)
	}
	if r.Started.IsZero() || r.Finished.Before(r.Started) {
		t.Errorf("queued step's times %v %v", r.Started, r.Finished)
	}

	// A running step: its context ends with the module as the cause.
	p.expect(p.call(abi.FuncStepCancel, running), abi.OK, "", "")
	p.expect(p.call(abi.FuncStepCancel, running), abi.OK, "", "") // twice is harmless
	if got := p.wait(running); got != running {
		t.Fatalf("wait = %d", got)
	}
	if r := p.result(running); r.ErrorKind != step.ErrorKindCancelled {
		t.Errorf("running step's result %+v", r)
	}
	// The next queued step got the slot; the cancelled one never ran.
	if got := <-p.runner.started; got != "other" {
		t.Fatalf("%s started next, want other", got)
	}
	close(p.runner.gate("other"))
	p.wait(other)
	// A finished step keeps its result.
	p.expect(p.call(abi.FuncStepCancel, other), abi.OK, "", "")
	if r := p.result(other); r.ErrorKind != "" || r.Stdout != "ran other" {
		t.Errorf("a finished step cancelled: %+v", r)
	}
	if p.runner.calls != 2 {
		t.Errorf("the runner ran %d steps, want 2 (the queued one never)", p.runner.calls)
	}
	// A handle read, or never issued, is unknown.
	p.expect(p.call(abi.FuncStepCancel, queued), abi.ErrUnknownHandle, abi.FuncStepCancel, "handle 2")
	p.expect(p.call(abi.FuncStepCancel, 0), abi.ErrUnknownHandle, abi.FuncStepCancel, "handle 0")
}

// TestStepCancelCause: the runner sees who cancelled the step.
func TestStepCancelCause(t *testing.T) {
	started, got := make(chan struct{}), make(chan string, 1)
	p := newProbe(t, Config{Runner: runnerFunc(func(ctx context.Context, st step.Step) step.ExecResult {
		close(started)
		<-ctx.Done()
		got <- step.CancelledBy(ctx)
		return step.ExecResult{Step: st.Name, ReturnCode: 1, ErrorKind: step.ErrorKindCancelled}
	})})
	h := p.submit("s")
	<-started
	p.expect(p.call(abi.FuncStepCancel, h), abi.OK, "", "")
	if why := <-got; !strings.Contains(why, "the module cancelled the step") {
		t.Errorf("the runner was told %q", why)
	}
}

// TestResultsAreMasked: whatever a runner returns, the host masks the
// run's secrets in the result before anything records, prints or hands it
// to the module (a notebook's failed cell comes after the runner's own
// masking).
func TestResultsAreMasked(t *testing.T) {
	const value = "hunter2-value"
	set, err := secrets.Parse([]string{"pw=env:PW"}, func(string) (string, bool) { return value, true }, secrets.ReadFile)
	if err != nil {
		t.Fatal(err)
	}
	p := newProbe(t, Config{Secrets: set, Runner: runnerFunc(func(_ context.Context, st step.Step) step.ExecResult {
		return step.ExecResult{Step: st.Name, ReturnCode: 1, ErrorKind: step.ErrorKindCell, Error: "ValueError: " + value,
			Stdout: value, Attempts: []step.Attempt{{Error: value}},
			Notebook: &step.NotebookInfo{FailedCell: &step.FailedCell{EName: "ValueError", EValue: "bad " + value}, Warnings: []string{value}}}
	})})
	h := p.submit("s")
	p.wait(h)
	p.expect(p.call(abi.FuncStepResult, h, 10000, 20000, 9996), abi.OK, "", "")
	answer := string(p.read(10000, p.u32(9996)))
	recorded, _ := json.Marshal(p.host.Results())
	for what, text := range map[string]string{"the answer": answer, "the recorded result": string(recorded)} {
		if strings.Contains(text, value) || !strings.Contains(text, `"evalue":"bad ***"`) {
			t.Errorf("%s is not masked: %s", what, text)
		}
	}
}

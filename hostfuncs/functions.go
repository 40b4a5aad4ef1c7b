package hostfuncs

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/wflow/wflow/abi"
	"github.com/wflow/wflow/containers"
	"github.com/wflow/wflow/internal/guestmem"
	"github.com/wflow/wflow/journal"
	"github.com/wflow/wflow/notebooks"
	"github.com/wflow/wflow/step"
)

// params_get(buf_ptr, buf_cap, len_ptr) -> errno
func (h *Host) paramsGet(_ context.Context, mem guestmem.Memory, a []uint32) *guestmem.Error {
	err := h.answer(mem, a[0], a[1], a[2], h.cfg.Params)
	h.note(func(c *journal.Call) {
		if c.Ans != nil && c.Ans.Data != nil {
			c.Ans.Data, c.Ans.Ref = nil, journal.RefParams // the journal's header holds them
		}
	})
	return err
}

// answer is mem.answer within the module's budget of returned bytes.
func (h *Host) answer(mem guestmem.Memory, bufPtr, bufCap, lenPtr uint32, data []byte) *guestmem.Error {
	h.mu.Lock()
	over := h.returned+int64(len(data)) > h.cfg.Budget.MaxResultBytes
	h.mu.Unlock()
	if over && uint32(len(data)) <= bufCap {
		return guestmem.OverBudget("the module read more than %d bytes of answers from the host (--max-result-bytes)", h.cfg.Budget.MaxResultBytes)
	}
	err := mem.Answer(bufPtr, bufCap, lenPtr, data)
	if err == nil || err.Errno == abi.ErrBufferTooSmall {
		h.noteAnswer(data, err == nil)
	}
	if err != nil {
		return err
	}
	h.mu.Lock()
	h.returned += int64(len(data))
	h.mu.Unlock()
	return nil
}

// parser turns a spec into the task that runs it.
type parser func(spec []byte) (*task, error)

// containerStep parses a container step spec.
func (h *Host) containerStep(spec []byte) (*task, error) {
	s, err := step.ParseStep(spec)
	if err == nil {
		s, err = step.ExpandVars(s, h.cfg.Vars)
	}
	if err == nil {
		err = h.checkSecrets(s.Name, s.Secrets)
	}
	if err != nil {
		return nil, err
	}
	return &task{step: s, run: func(ctx context.Context, handle uint32, live containers.Live) step.ExecResult {
		return h.cfg.Runner.Run(ctx, handle, s, live)
	}}, nil
}

// notebookStep parses a notebook step spec.
func (h *Host) notebookStep(spec []byte) (*task, error) {
	if h.cfg.Notebooks == nil {
		return nil, errNoNotebooks
	}
	nb, err := notebooks.ParseStep(spec)
	if err == nil {
		err = h.checkSecrets(nb.Name, nb.Secrets)
	}
	if err != nil {
		return nil, err
	}
	return &task{step: step.Step{Name: nb.Name, Image: "notebook " + nb.Notebook}, run: func(ctx context.Context, handle uint32, live containers.Live) step.ExecResult {
		return h.cfg.Notebooks.Run(ctx, handle, nb, live)
	}}, nil
}

// notebookBuildSpec parses a notebook build spec.
func (h *Host) notebookBuildSpec(spec []byte) (*task, error) {
	if h.cfg.Notebooks == nil {
		return nil, errNoNotebooks
	}
	b, err := notebooks.ParseBuild(spec)
	if err != nil {
		return nil, err
	}
	return &task{step: step.Step{Name: b.Name, Image: "notebook image build"}, run: func(ctx context.Context, handle uint32, live containers.Live) step.ExecResult {
		return h.cfg.Notebooks.Build(ctx, handle, b, live)
	}}, nil
}

var errNoNotebooks = errors.New("this host runs no notebook steps")

// checkSecrets refuses a step that names a secret the run was not given.
func (h *Host) checkSecrets(stepName string, refs map[string]string) error {
	for _, k := range slices.Sorted(maps.Keys(refs)) {
		if _, err := h.cfg.Secrets.Value(refs[k]); err != nil {
			return fmt.Errorf("%w: step %s: secrets: %s: %v", step.ErrInvalidStep, stepName, k, err)
		}
	}
	return nil
}

// step_submit(spec_ptr, spec_len, handle_ptr) -> errno
func (h *Host) stepSubmit(ctx context.Context, mem guestmem.Memory, a []uint32) *guestmem.Error {
	return h.start(ctx, mem, a, h.containerStep, false)
}

// step_run(spec_ptr, spec_len, handle_ptr) -> errno
func (h *Host) stepRun(ctx context.Context, mem guestmem.Memory, a []uint32) *guestmem.Error {
	return h.start(ctx, mem, a, h.containerStep, true)
}

// notebook_submit(spec_ptr, spec_len, handle_ptr) -> errno
func (h *Host) notebookSubmit(ctx context.Context, mem guestmem.Memory, a []uint32) *guestmem.Error {
	return h.start(ctx, mem, a, h.notebookStep, false)
}

// notebook_run(spec_ptr, spec_len, handle_ptr) -> errno
func (h *Host) notebookRun(ctx context.Context, mem guestmem.Memory, a []uint32) *guestmem.Error {
	return h.start(ctx, mem, a, h.notebookStep, true)
}

// notebook_build(spec_ptr, spec_len, handle_ptr) -> errno
func (h *Host) notebookBuild(ctx context.Context, mem guestmem.Memory, a []uint32) *guestmem.Error {
	return h.start(ctx, mem, a, h.notebookBuildSpec, true)
}

// start submits the spec at (a[0], a[1]), writes its handle at a[2] and,
// when wait is set, blocks until it has finished. The handle is written
// before waiting: even if the wait is cancelled, the guest learns it.
func (h *Host) start(ctx context.Context, mem guestmem.Memory, a []uint32, parse parser, wait bool) *guestmem.Error {
	t, err := h.submit(mem, a[0], a[1], a[2], parse)
	if err != nil {
		return err
	}
	mem.WriteU32("handle_ptr", a[2], t.handle) // checked by submit
	h.note(func(c *journal.Call) { answered(c).Handle, c.Step = u32(t.handle), t.step.Name })
	if wait {
		if _, err := h.waitAny(ctx, []uint32{t.handle}, -1); err != nil {
			return err
		}
	}
	return nil
}

// submit reads and checks a spec and starts its task in the background.
// Nothing starts unless the spec is valid and handle_ptr is writable, so no
// step is ever started whose handle the guest cannot learn.
func (h *Host) submit(mem guestmem.Memory, specPtr, specLen, handlePtr uint32, parse parser) (*task, *guestmem.Error) {
	spec, err := mem.Read("step spec", specPtr, specLen, abi.MaxStepSpecLen)
	if err != nil {
		return nil, err
	}
	h.note(func(c *journal.Call) { c.Req.Spec = journal.Bytes(spec).Ptr() })
	if err := mem.CheckWritable("handle_ptr", handlePtr, 4); err != nil {
		return nil, err
	}
	t, perr := parse(spec)
	if err := specError("step spec", perr); err != nil {
		return nil, err
	}
	if h.ctx.Err() != nil {
		return nil, guestmem.Fail(abi.ErrCancelled, "the run is being cancelled")
	}

	h.mu.Lock()
	if h.started >= h.cfg.Budget.MaxSteps {
		h.mu.Unlock()
		return nil, guestmem.OverBudget("the module submitted more than %d steps (--max-steps)", h.cfg.Budget.MaxSteps)
	}
	if len(h.tasks) >= h.cfg.Budget.MaxHandles {
		h.mu.Unlock()
		return nil, guestmem.Fail(abi.ErrLimit, "%d handles are open, at most %d (--max-handles): read the results of finished steps with step_result to free them", len(h.tasks), h.cfg.Budget.MaxHandles)
	}
	h.started++
	h.next++
	t.handle = h.next
	t.ctx, t.cancel = context.WithCancelCause(h.ctx)
	t.slot = h.slots.take() // in submission order, so steps start in that order
	t.submitted = time.Now().UTC()
	h.tasks[t.handle] = t
	h.wg.Add(1)
	h.mu.Unlock()

	go h.execute(t)
	return t, nil
}

// execute runs a task once its slot is granted and records its result.
func (h *Host) execute(t *task) {
	defer h.wg.Done()
	defer t.cancel(nil)
	var res step.ExecResult
	granted := false
	select {
	case <-t.slot.granted:
		granted = true
	case <-t.ctx.Done():
	}
	if granted && t.ctx.Err() == nil {
		h.cfg.Observer.StepStarted(t.handle, t.step)
		res = t.run(t.ctx, t.handle, h.cfg.Observer.StepOutput(t.handle, t.step))
		h.slots.release()
	} else {
		// Cancelled first, by the run or the module (a slot granted as it
		// was cancelled is given back): no step starts after that.
		h.slots.withdraw(t.slot)
		why := "the run ended before the step started"
		if h.ctx.Err() == nil {
			why = step.CancelledBy(t.ctx) + " before it started"
		}
		now := time.Now().UTC()
		res = step.ExecResult{
			Step: t.step.Name, Handle: t.handle, Image: t.step.Image, ReturnCode: 1,
			ErrorKind: step.ErrorKindCancelled, Error: why,
			Started: now, Finished: now, Commands: []step.CommandResult{},
		}
	}
	res.Handle, res.Submitted = t.handle, t.submitted
	if !h.cfg.Secrets.Empty() {
		// The runner masks what it can as it streams; this catches what
		// comes after it (a notebook's failed cell, read from the output
		// notebook), before anything records or prints the result.
		res = res.MapText(h.cfg.Secrets.String)
	}
	b, err := step.MarshalJSON(res, false)
	if err != nil { // cannot happen for this type; keep a valid answer anyway
		b = []byte(`{"step":"` + t.step.Name + `","returncode":1,"error":"result encoding failed"}`)
	}
	h.cfg.Observer.StepFinished(res)

	h.mu.Lock()
	h.finished++
	t.done, t.seq, t.json, t.kept = true, h.finished, b, res.ForReport()
	h.execDone(t)
	h.results = append(h.results, t.kept)
	close(h.changed)
	h.changed = make(chan struct{})
	h.mu.Unlock()
}

// step_wait(handles_ptr, handles_count, ready_ptr) -> errno
func (h *Host) stepWait(ctx context.Context, mem guestmem.Memory, a []uint32) *guestmem.Error {
	return h.wait(ctx, mem, a[0], a[1], a[2], -1)
}

// step_wait_timeout(handles_ptr, handles_count, timeout_ms, ready_ptr) -> errno
func (h *Host) stepWaitTimeout(ctx context.Context, mem guestmem.Memory, a []uint32) *guestmem.Error {
	h.note(func(c *journal.Call) { c.Req.Timeout = u32(a[2]) })
	return h.wait(ctx, mem, a[0], a[1], a[3], time.Duration(a[2])*time.Millisecond)
}

// wait reads handles_count handles at ptr, waits for one of them at most
// timeout (none when negative) and writes the one that finished at readyPtr.
func (h *Host) wait(ctx context.Context, mem guestmem.Memory, ptr, count, readyPtr uint32, timeout time.Duration) *guestmem.Error {
	if count == 0 {
		return guestmem.Fail(abi.ErrInvalidArgument, "handles_count is 0")
	}
	if count > abi.MaxWaitHandles {
		return guestmem.Fail(abi.ErrTooLarge, "handles_count is %d, at most %d", count, abi.MaxWaitHandles)
	}
	raw, err := mem.Read("handles", ptr, count*4, abi.MaxWaitHandles*4)
	if err != nil {
		return err
	}
	if err := mem.CheckWritable("ready_ptr", readyPtr, 4); err != nil {
		return err
	}
	handles := make([]uint32, count)
	for i := range handles {
		handles[i] = uint32(raw[4*i]) | uint32(raw[4*i+1])<<8 | uint32(raw[4*i+2])<<16 | uint32(raw[4*i+3])<<24
	}
	h.note(func(c *journal.Call) { c.Req.Handles = handles })
	ready, err := h.waitAny(ctx, handles, timeout)
	if err != nil {
		return err
	}
	mem.WriteU32("ready_ptr", readyPtr, ready)
	h.note(func(c *journal.Call) { answered(c).Ready = u32(ready) })
	return nil
}

// waitAny blocks until one of the handles has finished and returns the one
// that finished first. Every handle must be open. A timeout that is not
// negative gives up after that long with abi.ErrTimeout (0: at once, when
// none has finished).
func (h *Host) waitAny(ctx context.Context, handles []uint32, timeout time.Duration) (uint32, *guestmem.Error) {
	var expired <-chan time.Time
	if timeout >= 0 {
		timer := time.NewTimer(timeout)
		defer timer.Stop()
		expired = timer.C
	}
	for {
		h.mu.Lock()
		var best *task
		for _, hd := range handles {
			t, ok := h.tasks[hd]
			if !ok {
				h.mu.Unlock()
				return 0, unknownHandle(hd)
			}
			if t.done && (best == nil || t.seq < best.seq) {
				best = t
			}
		}
		changed := h.changed
		h.mu.Unlock()
		if best != nil {
			return best.handle, nil
		}
		select {
		case <-changed:
		case <-expired:
			return 0, guestmem.Fail(abi.ErrTimeout, "none of the %d steps waited for finished within %d ms", len(handles), timeout.Milliseconds())
		case <-ctx.Done():
			return 0, guestmem.Fail(abi.ErrCancelled, "the run is being cancelled")
		case <-h.ctx.Done():
			return 0, guestmem.Fail(abi.ErrCancelled, "the run is being cancelled")
		}
	}
}

// step_cancel(handle) -> errno
func (h *Host) stepCancel(_ context.Context, _ guestmem.Memory, a []uint32) *guestmem.Error {
	handle := a[0]
	h.note(func(c *journal.Call) { c.Req.Handle = u32(handle) })
	h.mu.Lock()
	t, ok := h.tasks[handle]
	h.mu.Unlock()
	if !ok {
		return unknownHandle(handle)
	}
	// Ends the step's context: a queued step never starts, a running one
	// has its containers removed; either way it finishes soon with
	// error_kind cancelled. A finished step keeps its result.
	t.cancel(step.ErrCancelledByModule)
	return nil
}

// step_result(handle, buf_ptr, buf_cap, len_ptr) -> errno
func (h *Host) stepResult(_ context.Context, mem guestmem.Memory, a []uint32) *guestmem.Error {
	handle, bufPtr, bufCap, lenPtr := a[0], a[1], a[2], a[3]
	h.note(func(c *journal.Call) { c.Req.Handle = u32(handle) })
	if err := mem.CheckWritable("len_ptr", lenPtr, 4); err != nil {
		return err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	t, ok := h.tasks[handle]
	if !ok {
		return unknownHandle(handle)
	}
	if !t.done {
		return guestmem.Fail(abi.ErrPending, "step %s (handle %d) has not finished; step_wait for it first", t.step.Name, handle)
	}
	h.mu.Unlock()
	err := h.answer(mem, bufPtr, bufCap, lenPtr, t.json)
	if err == nil {
		h.noteResult(t.kept, t.json)
	}
	h.mu.Lock()
	if err != nil {
		return err
	}
	delete(h.tasks, handle)
	return nil
}

func unknownHandle(hd uint32) *guestmem.Error {
	return guestmem.Fail(abi.ErrUnknownHandle, "handle %d is not open: it was never issued or its result was already read", hd)
}

// log_write(level, msg_ptr, msg_len) -> errno
func (h *Host) logWrite(_ context.Context, mem guestmem.Memory, a []uint32) *guestmem.Error {
	level := a[0]
	h.note(func(c *journal.Call) { c.Req.Level = u32(level) })
	if level > abi.LogError {
		return guestmem.Fail(abi.ErrInvalidArgument, "log level %d: use 0 (debug) to 3 (error)", level)
	}
	msg, err := mem.Read("log message", a[1], a[2], abi.MaxLogLen)
	if err != nil {
		return err
	}
	h.note(func(c *journal.Call) { c.Req.Msg = journal.Bytes(msg).Ptr() })
	text := strings.ToValidUTF8(strings.TrimRight(string(msg), "\n"), "\uFFFD")
	h.cfg.Observer.Log(int(level), text)
	return nil
}

// output_set(json_ptr, json_len) -> errno
func (h *Host) outputSet(_ context.Context, mem guestmem.Memory, a []uint32) *guestmem.Error {
	b, err := mem.Read("output", a[0], a[1], abi.MaxOutputLen)
	if err != nil {
		return err
	}
	h.note(func(c *journal.Call) { c.Req.JSON = journal.Bytes(b).Ptr() })
	if err := step.CheckJSON(b, abi.MaxJSONDepth); err != nil {
		return guestmem.Fail(abi.ErrInvalidJSON, "output: %v", err)
	}
	h.mu.Lock()
	h.output = b
	h.mu.Unlock()
	return nil
}

// error_get(buf_ptr, buf_cap, len_ptr) -> errno
func (h *Host) errorGet(_ context.Context, mem guestmem.Memory, a []uint32) *guestmem.Error {
	h.mu.Lock()
	msg := h.lastErr
	h.mu.Unlock()
	return h.answer(mem, a[0], a[1], a[2], msg)
}

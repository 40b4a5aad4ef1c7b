package replay

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"slices"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/sys"

	"github.com/wflow/wflow/abi"
	"github.com/wflow/wflow/containers"
	"github.com/wflow/wflow/internal/guestmem"
	"github.com/wflow/wflow/journal"
	"github.com/wflow/wflow/step"
)

// exitStopped ends a module the replay stopped: it diverged, or it went
// past the end of a journal cut short by a crash.
const exitStopped = 126

// Host is the wflow_v1 host module of a replay: it answers every call from
// a calls journal, in order, after checking that the module asks what it
// asked in the run. It runs no step and calls into nothing.
type Host struct {
	rec     *journal.Recorded
	results map[uint32]step.ExecResult // the run's results journal, by handle
	root    *os.Root                   // the run directory, for stream files

	next     int         // index of the next recorded call
	div      *Divergence // the first divergence, or nil
	broken   error       // the journal cannot answer (a stream file changed): no divergence, an error
	pastEnd  bool        // the module went past a journal that ends before the module did
	answered int         // calls answered
}

// NewHost returns a replay host for rec, whose results by reference come
// from results and the stream files of the run directory root.
func NewHost(rec *journal.Recorded, results map[uint32]step.ExecResult, root *os.Root) *Host {
	return &Host{rec: rec, results: results, root: root}
}

// Instantiate defines the host module abi.ModuleName in r: every function
// of abi.Functions, each answered from the journal.
func (h *Host) Instantiate(ctx context.Context, r wazero.Runtime) error {
	b := r.NewHostModuleBuilder(abi.ModuleName)
	for _, sig := range abi.Functions {
		guestmem.Export(b, sig.Name, sig.Params, h.handler(sig.Name), h.failed)
	}
	_, err := b.Instantiate(ctx)
	return err
}

// failed ends the module for a recorded call that ended it (over its
// budget) and for a divergence.
func (h *Host) failed(ctx context.Context, mod api.Module, _ string, err *guestmem.Error) {
	if err.Fatal {
		code := uint32(exitStopped)
		if h.div == nil && !h.pastEnd {
			code = 125 // hostfuncs.ExitLimit: the run ended the module here too
		}
		mod.CloseWithExitCode(ctx, code)
		panic(sys.NewExitError(code))
	}
}

// stop ends the module at this call: a divergence or the end of a cut journal.
func stop() *guestmem.Error { return &guestmem.Error{Errno: abi.ErrCancelled, Fatal: true} }

// request is what a call asked, read from the module as the real host reads it.
type request struct {
	req journal.Request
	err *guestmem.Error // the read failed: the real host answered with this errno
}

// read reads the request of a call to fn, with the reads (and caps) of
// package hostfuncs, in the same order.
func read(fn string, mem guestmem.Memory, a []uint32) request {
	var r request
	switch fn {
	case abi.FuncServiceStart:
		spec, err := mem.Read("service spec", a[0], a[1], abi.MaxStepSpecLen)
		if err != nil {
			r.err = err
			break
		}
		r.req.Spec = journal.Bytes(spec).Ptr()
		r.err = mem.CheckWritable("service_ptr", a[2], 4)
	case abi.FuncServiceExec:
		r.req.Handle = u32(a[0])
		spec, err := mem.Read("step spec", a[1], a[2], abi.MaxStepSpecLen)
		if err != nil {
			r.err = err
			break
		}
		r.req.Spec = journal.Bytes(spec).Ptr()
		r.err = mem.CheckWritable("handle_ptr", a[3], 4)
	case abi.FuncStepSubmit, abi.FuncStepRun, abi.FuncNotebookSubmit, abi.FuncNotebookRun, abi.FuncNotebookBuild:
		spec, err := mem.Read("step spec", a[0], a[1], abi.MaxStepSpecLen)
		if err != nil {
			r.err = err
			break
		}
		r.req.Spec = journal.Bytes(spec).Ptr()
		r.err = mem.CheckWritable("handle_ptr", a[2], 4)
	case abi.FuncStepWait, abi.FuncStepWaitTimeout:
		count, readyPtr := a[1], a[2]
		if fn == abi.FuncStepWaitTimeout {
			r.req.Timeout, readyPtr = u32(a[2]), a[3]
		}
		switch {
		case count == 0:
			r.err = guestmem.Fail(abi.ErrInvalidArgument, "handles_count is 0")
		case count > abi.MaxWaitHandles:
			r.err = guestmem.Fail(abi.ErrTooLarge, "handles_count is %d, at most %d", count, abi.MaxWaitHandles)
		default:
			raw, err := mem.Read("handles", a[0], count*4, abi.MaxWaitHandles*4)
			if err == nil {
				err = mem.CheckWritable("ready_ptr", readyPtr, 4)
			}
			if err != nil {
				r.err = err
				break
			}
			for i := uint32(0); i < count; i++ {
				r.req.Handles = append(r.req.Handles, uint32(raw[4*i])|uint32(raw[4*i+1])<<8|uint32(raw[4*i+2])<<16|uint32(raw[4*i+3])<<24)
			}
		}
	case abi.FuncStepResult, abi.FuncStepCancel, abi.FuncServiceStop:
		r.req.Handle = u32(a[0])
	case abi.FuncLogWrite:
		r.req.Level = u32(a[0])
		if a[0] > abi.LogError {
			r.err = guestmem.Fail(abi.ErrInvalidArgument, "log level %d", a[0])
			break
		}
		msg, err := mem.Read("log message", a[1], a[2], abi.MaxLogLen)
		if err != nil {
			r.err = err
			break
		}
		r.req.Msg = journal.Bytes(msg).Ptr()
	case abi.FuncOutputSet:
		b, err := mem.Read("output", a[0], a[1], abi.MaxOutputLen)
		if err != nil {
			r.err = err
			break
		}
		r.req.JSON = journal.Bytes(b).Ptr()
	}
	return r
}

func u32(v uint32) *uint32 { return &v }

// bufferCall reports whether fn answers through the buffer protocol.
func bufferCall(fn string) bool {
	return fn == abi.FuncParamsGet || fn == abi.FuncStepResult || fn == abi.FuncErrorGet
}

// handler answers calls to fn from the journal.
func (h *Host) handler(fn string) guestmem.Handler {
	return func(_ context.Context, mem guestmem.Memory, a []uint32) *guestmem.Error {
		if h.div != nil || h.pastEnd || h.broken != nil {
			return stop()
		}
		n := int64(h.answered) + 1
		now := read(fn, mem, a)
		if h.next >= len(h.rec.Calls) {
			if !ended(h.rec) {
				h.pastEnd = true // the journal stops here: its prefix replayed
				return stop()
			}
			h.diverge(n, fn, nil, now, "the run's module made no call here: it ended after %d calls", len(h.rec.Calls))
			return stop()
		}
		was := h.rec.Calls[h.next]
		if d := compare(was, fn, now); d != "" {
			h.diverge(n, fn, &was, now, "%s", d)
			return stop()
		}
		if now.err != nil {
			// The real host failed reading the request the same way.
			h.next++
			h.answered++
			return now.err
		}
		if bufferCall(fn) {
			return h.answerBuffer(n, was, mem, a)
		}
		h.next++
		h.answered++
		if was.Errno != 0 {
			return &guestmem.Error{Errno: abi.Errno(was.Errno), Msg: was.Error, Fatal: was.Fatal}
		}
		switch fn {
		case abi.FuncServiceExec:
			if was.Ans == nil || was.Ans.Handle == nil {
				h.diverge(n, fn, &was, now, "the journal holds no handle for this call")
				return stop()
			}
			mem.WriteU32("handle_ptr", a[3], *was.Ans.Handle)
		case abi.FuncStepSubmit, abi.FuncStepRun, abi.FuncNotebookSubmit, abi.FuncNotebookRun, abi.FuncNotebookBuild, abi.FuncServiceStart:
			if was.Ans == nil || was.Ans.Handle == nil {
				h.diverge(n, fn, &was, now, "the journal holds no handle for this call")
				return stop()
			}
			mem.WriteU32("handle_ptr", a[2], *was.Ans.Handle)
		case abi.FuncStepWait:
			if was.Ans == nil || was.Ans.Ready == nil {
				h.diverge(n, fn, &was, now, "the journal holds no ready handle for this call")
				return stop()
			}
			mem.WriteU32("ready_ptr", a[2], *was.Ans.Ready)
		case abi.FuncStepWaitTimeout:
			if was.Ans == nil || was.Ans.Ready == nil {
				h.diverge(n, fn, &was, now, "the journal holds no ready handle for this call")
				return stop()
			}
			mem.WriteU32("ready_ptr", a[3], *was.Ans.Ready)
		}
		return nil
	}
}

// compare says how a call differs from the recorded one, "" when it does not.
func compare(was journal.Call, fn string, now request) string {
	if was.Fn != fn {
		return fmt.Sprintf("the run's module called %s here", was.Fn)
	}
	r, n := was.Req, now.req
	switch {
	case !sameBytes(r.Spec, n.Spec):
		return "the step spec differs"
	case !slices.Equal(r.Handles, n.Handles):
		return fmt.Sprintf("it waits for handles %v; the run's module waited for %v", n.Handles, r.Handles)
	case !sameU32(r.Timeout, n.Timeout):
		return "its wait has another timeout"
	case !sameU32(r.Handle, n.Handle):
		return "it names another handle"
	case !sameU32(r.Level, n.Level) || !sameExact(r.Msg, n.Msg):
		return "the log line differs"
	case !sameBytes(r.JSON, n.JSON):
		return "the output differs"
	case now.err != nil && uint32(now.err.Errno) != was.Errno:
		return fmt.Sprintf("the host could not read the request (%s); in the run it could", now.err.Errno)
	}
	return ""
}

func sameBytes(a, b *journal.Bytes) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	if bytes.Equal(*a, *b) {
		return true
	}
	var ca, cb bytes.Buffer // the same JSON but for white space is the same request
	return json.Compact(&ca, *a) == nil && json.Compact(&cb, *b) == nil && bytes.Equal(ca.Bytes(), cb.Bytes())
}

// sameExact compares bytes as they are (a log line is text, not JSON).
func sameExact(a, b *journal.Bytes) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	return bytes.Equal(*a, *b)
}

func sameU32(a, b *uint32) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	return *a == *b
}

// answerBuffer answers a buffer call (params_get, step_result, error_get)
// with the recorded answer through the module's buffer now. A module whose
// buffer size differs from the run's is not diverging: a call that was too
// small in the run and fits now also answers the call the run retried
// with; one that fit in the run and is too small now is asked again, and
// the same record answers that.
func (h *Host) answerBuffer(n int64, was journal.Call, mem guestmem.Memory, a []uint32) *guestmem.Error {
	if was.Fn == abi.FuncStepResult {
		a = a[1:] // (handle, buf_ptr, buf_cap, len_ptr)
	}
	tooSmall := uint32(abi.ErrBufferTooSmall)
	if was.Errno != 0 && was.Errno != tooSmall {
		h.next++
		h.answered++
		return &guestmem.Error{Errno: abi.Errno(was.Errno), Msg: was.Error, Fatal: was.Fatal}
	}
	ans, retry := was.Ans, 0
	if was.Errno == tooSmall && h.next+1 < len(h.rec.Calls) {
		if again := h.rec.Calls[h.next+1]; again.Errno == 0 && compare(again, was.Fn, request{req: was.Req}) == "" {
			ans, retry = again.Ans, 1
		}
	}
	data, known, msg := h.data(was, ans)
	if msg != "" {
		h.broken = fmt.Errorf("call %d (%s): %s", n, was.Fn, msg)
		return stop()
	}
	if !known && a[1] >= uint32(len(data)) {
		// Only the size is known (the run ended before the module asked
		// again): a buffer that fits it asks past the end of the journal.
		if h.next+1 == len(h.rec.Calls) && !ended(h.rec) {
			h.pastEnd = true
			return stop()
		}
		h.diverge(n, was.Fn, &was, request{}, "the journal holds only the size of this answer")
		return stop()
	}
	gerr := mem.Answer(a[0], a[1], a[2], data)
	h.answered++
	switch {
	case gerr == nil && was.Errno == tooSmall:
		h.next += 1 + retry
	case gerr == nil, gerr.Errno == abi.ErrBufferTooSmall && was.Errno == tooSmall:
		h.next++
	case gerr.Errno == abi.ErrBufferTooSmall:
		// Too small now, not in the run: the module asks again.
	default:
		h.diverge(n, was.Fn, &was, request{err: gerr}, "the answer could not be written (%s); in the run it could", gerr.Errno)
		return stop()
	}
	return gerr
}

// data returns the bytes of a recorded buffer answer, checked against its
// digest; known is false when the journal holds only their size (data is
// then that many zeros). msg says why the journal cannot answer.
func (h *Host) data(was journal.Call, ans *journal.Answer) (data []byte, known bool, msg string) {
	if ans == nil || ans.Len == nil {
		return nil, false, "the journal holds no answer for this call"
	}
	switch {
	case ans.Data != nil:
		data = *ans.Data
	case ans.Ref == journal.RefParams:
		data = h.rec.Header.Params
	case ans.Ref == journal.RefResult && was.Req.Handle != nil:
		res, ok := h.results[*was.Req.Handle]
		if !ok {
			return nil, false, fmt.Sprintf("the results journal holds no result of handle %d", *was.Req.Handle)
		}
		b, err := step.MarshalJSON(containers.AsTheModuleGotIt(h.root, res), false)
		if err != nil {
			return nil, false, err.Error()
		}
		data = b
	default:
		return make([]byte, *ans.Len), false, ""
	}
	if journal.Digest(data) != ans.SHA256 {
		return nil, false, "the answer the journal gives back is not the one the module got (a step's stream files changed since the run?)"
	}
	return data, true, ""
}

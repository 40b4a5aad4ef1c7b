package hostfuncs

import (
	"bytes"
	"context"
	"os"

	"github.com/wflow/wflow/containers"
	"github.com/wflow/wflow/internal/guestmem"
	"github.com/wflow/wflow/journal"
	"github.com/wflow/wflow/step"
)

// recorded wraps a handler so that each call is appended to the calls
// journal: what the handler read and answered (noted on h.cur as it goes),
// then its errno.
func (h *Host) recorded(name string, fn guestmem.Handler) guestmem.Handler {
	return func(ctx context.Context, mem guestmem.Memory, a []uint32) *guestmem.Error {
		c := &journal.Call{Fn: name}
		h.cur = c
		err := fn(ctx, mem, a)
		h.cur = nil
		if err != nil {
			c.Errno, c.Error, c.Fatal = uint32(err.Errno), err.Msg, err.Fatal
		}
		h.maskCall(c)
		h.cfg.Calls.Call(*c)
		return err
	}
}

// maskCall masks the run's secrets in what the module sent: wflow never
// gives a module a value, but a module may read one a step wrote into the
// run directory, and the journal must not keep it. (A replay of such a
// call, which has no secrets to mask, differs from the record there.)
func (h *Host) maskCall(c *journal.Call) {
	if h.cfg.Secrets.Empty() {
		return
	}
	for _, b := range []*journal.Bytes{c.Req.Spec, c.Req.Msg, c.Req.JSON} {
		if b != nil {
			*b = h.cfg.Secrets.Bytes(*b)
		}
	}
	c.Error = h.cfg.Secrets.String(c.Error)
	if c.Ans != nil && c.Ans.Data != nil {
		// An error_get answer may quote what the module sent. (A replay
		// then finds the answer changed: the run gave the module more.)
		*c.Ans.Data = h.cfg.Secrets.Bytes(*c.Ans.Data)
	}
}

// note lets f fill in the call being recorded, if any.
func (h *Host) note(f func(c *journal.Call)) {
	if h.cur != nil {
		f(h.cur)
	}
}

// answered returns the call's answer, made if need be.
func answered(c *journal.Call) *journal.Answer {
	if c.Ans == nil {
		c.Ans = &journal.Answer{}
	}
	return c.Ans
}

// noteAnswer records a buffer answer: its length and digest, and its bytes
// when it was written (a call whose buffer was too small is asked again).
func (h *Host) noteAnswer(data []byte, written bool) {
	h.note(func(c *journal.Call) {
		a := answered(c)
		n := uint32(len(data))
		a.Len, a.SHA256 = &n, journal.Digest(data)
		if written {
			a.Data = journal.Bytes(data).Ptr()
		}
	})
}

// noteResult records step_result's answer by reference when the results
// journal and the step's stream files give it back byte for byte, which
// keeps the calls journal from holding each result twice.
func (h *Host) noteResult(kept step.ExecResult, data []byte) {
	h.note(func(c *journal.Call) {
		if c.Ans == nil || c.Ans.Data == nil || h.cfg.RunDir == "" {
			return
		}
		got := kept
		if kept.StdoutTruncated || kept.StderrTruncated {
			// A stream the journal cut: read again as a replay will.
			root, err := os.OpenRoot(h.cfg.RunDir)
			if err != nil {
				return
			}
			defer root.Close()
			got = containers.AsTheModuleGotIt(root, kept)
		}
		again, err := step.MarshalJSON(got, false)
		if err == nil && bytes.Equal(again, data) {
			c.Ans.Data, c.Ans.Ref = nil, journal.RefResult
		}
	})
}

func u32(v uint32) *uint32 { return &v }

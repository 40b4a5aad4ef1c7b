package wflow

import (
	"context"
	"fmt"
	"math"
	"runtime"
	"time"
	"unsafe"

	"github.com/wflow/wflow/abi"
)

// Cancel cancels a submitted step: a queued step never starts, a running
// one has its containers stopped and removed (an exec: its processes are
// killed; its service runs on). It returns at once; the step
// finishes soon after with ErrorCancelled (a step that finished before the
// cancel reached it keeps its result), and its result is read as any other,
// with Wait or WaitAny. Needs ABI v1.2.
func Cancel(h Handle) error {
	if errno := stepCancel(uint32(h)); errno != 0 {
		return lastError(abi.FuncStepCancel, errno)
	}
	return nil
}

// pollEvery is how often WaitAny looks at its context between waits in the
// host. In wasip1 nothing else of the module runs while it waits there, so
// a cancel from another of its goroutines is seen at the next look; each
// look is one more host call (and one more line of the calls journal).
const pollEvery = time.Second

// WaitAny is Wait bounded by ctx: it returns the result of the first of the
// handles' steps to finish, or ctx's error (context.DeadlineExceeded,
// context.Canceled) when ctx ends first; the handles then stay open, their
// steps still running (Cancel them, or wait again). The host waits
// (step_wait_timeout) until ctx's deadline, a second at a time, so a
// cancel of ctx by another goroutine of the module is seen within a
// second. Needs ABI v1.2 unless ctx.Done() is nil (context.Background()).
func WaitAny(ctx context.Context, handles ...Handle) (ExecResult, error) {
	if ctx.Done() == nil {
		return Wait(handles...)
	}
	if len(handles) == 0 {
		return ExecResult{}, fmt.Errorf("wflow: WaitAny needs at least one handle")
	}
	hs := make([]uint32, len(handles))
	for i, h := range handles {
		hs[i] = uint32(h)
	}
	for {
		runtime.Gosched() // let the module's goroutines that may cancel ctx run
		if err := ctx.Err(); err != nil {
			return ExecResult{}, err
		}
		wait := pollEvery
		if deadline, ok := ctx.Deadline(); ok {
			left := time.Until(deadline)
			if left <= 0 {
				return ExecResult{}, context.DeadlineExceeded
			}
			wait = min(wait, left)
		}
		ms := uint32(math.MaxUint32)
		if wait < time.Duration(math.MaxUint32)*time.Millisecond {
			ms = uint32((wait + time.Millisecond - 1) / time.Millisecond) // never wake before the deadline
		}
		var ready uint32
		errno := stepWaitTimeout(unsafe.Pointer(&hs[0]), uint32(len(hs)), ms, unsafe.Pointer(&ready))
		runtime.KeepAlive(hs)
		switch abi.Errno(errno) {
		case abi.OK:
			return result(Handle(ready))
		case abi.ErrTimeout:
			continue // the deadline (or the next look at ctx) has come
		default:
			return ExecResult{}, lastError(abi.FuncStepWaitTimeout, errno)
		}
	}
}

// StepError is the error of a group whose step failed: the first step that
// did not run its commands to a zero exit.
type StepError struct {
	Result ExecResult
}

// Error names the step and how it failed.
func (e *StepError) Error() string {
	if e.Result.Error != "" {
		return fmt.Sprintf("wflow: step %s failed: %s", e.Result.Step, e.Result.Error)
	}
	return fmt.Sprintf("wflow: step %s failed: exit code %d", e.Result.Step, e.Result.ReturnCode)
}

package step

import (
	"context"
	"errors"
)

// ErrCancelledByModule is the cause (context.Cause) of a step's context
// when the module cancelled the step with step_cancel; any other end of a
// step's context is the run's.
var ErrCancelledByModule = errors.New("the module cancelled the step (step_cancel)")

// CancelledBy names who cancelled the step whose context ctx has ended, for
// the Error of its ExecResult: the module (step_cancel) or the run.
func CancelledBy(ctx context.Context) string {
	if errors.Is(context.Cause(ctx), ErrCancelledByModule) {
		return "the module cancelled the step (step_cancel)"
	}
	return "the run was cancelled"
}

package step

import (
	"context"
	"errors"
)

// ErrCancelledByModule is the cause (context.Cause) of a step's context
// when the module cancelled the step with step_cancel; any other end of a
// step's context is the run's.
var ErrCancelledByModule = errors.New("the module cancelled the step (step_cancel)")

// ErrServiceStopped is the cause of an exec's context when its service was
// stopped (service_stop) while it ran.
var ErrServiceStopped = errors.New("its service was stopped (service_stop)")

// CancelledBy names who cancelled the step whose context ctx has ended, for
// the Error of its ExecResult: the module (step_cancel) or the run.
func CancelledBy(ctx context.Context) string {
	switch cause := context.Cause(ctx); {
	case errors.Is(cause, ErrCancelledByModule):
		return "the module cancelled the step (step_cancel)"
	case errors.Is(cause, ErrServiceStopped):
		return "the module stopped the step's service (service_stop)"
	}
	return "the run was cancelled"
}

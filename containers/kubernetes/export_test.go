package kubernetes

import (
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/wflow/wflow/containers"
)

// ForSpecs is an engine that only makes Job specs, with no cluster.
func ForSpecs(namespace string, opts Options) *Engine {
	return &Engine{namespace: namespace, opts: opts, policies: map[string]string{}, pulls: map[string]containers.PullPolicy{}}
}

// JobSpec is jobSpec for tests.
func (e *Engine) JobSpec(spec containers.ContainerSpec, id string, pull corev1.PullPolicy) (*batchv1.Job, error) {
	return e.jobSpec(spec, id, pull)
}

// SetDeadlineGrace sets the time past a step's timeout at which the Job
// controller ends it, and returns a function that restores it.
func SetDeadlineGrace(d time.Duration) func() {
	old := deadlineGrace
	deadlineGrace = d
	return func() { deadlineGrace = old }
}

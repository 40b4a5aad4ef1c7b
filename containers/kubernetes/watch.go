package kubernetes

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/wflow/wflow/containers"
)

// podWatch follows the pods of one Job (by its labelJob) from before the
// Job exists: a list, then a watch from the list's resource version, again
// after the watch ends (the API server ends every watch after a while) or
// fails. Only the goroutine of Run reads it.
type podWatch struct {
	e      *Engine
	id     string
	cancel context.CancelFunc
	events <-chan podEvent
	done   <-chan struct{}

	pods map[string]*corev1.Pod // what the watch said last, by name
	gone map[string]bool        // pods deleted
}

// podEvent is one change the watch saw, or, with listed set, a fresh list
// of every pod there is (a pod not in it is gone).
type podEvent struct {
	pod     *corev1.Pod
	deleted bool
	listed  []corev1.Pod
	err     error // the list failed (RBAC, say): the wait fails with it
}

// watchPod starts following the pods labelled labelJob=id. The first list
// is done before it returns, so that an error (no right to watch pods)
// fails the step before its Job is made.
func (e *Engine) watchPod(ctx context.Context, id string) (*podWatch, error) {
	ctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	selector := labelJob + "=" + id
	lctx, lcancel := context.WithTimeout(ctx, controlTimeout)
	list := &corev1.PodList{}
	err := e.api.pods(e.namespace).list(lctx, metav1.ListOptions{LabelSelector: selector}, list)
	lcancel()
	if err != nil {
		cancel()
		return nil, fmt.Errorf("list pods: %w", explain(err))
	}
	events := make(chan podEvent, 16)
	done := make(chan struct{})
	w := &podWatch{e: e, id: id, cancel: cancel, events: events, done: done, pods: map[string]*corev1.Pod{}, gone: map[string]bool{}}
	go func() {
		defer close(done)
		rv := list.ResourceVersion
		delay := 100 * time.Millisecond
		failures := 0
		for ctx.Err() == nil {
			if rv == "" {
				lctx, lcancel := context.WithTimeout(ctx, controlTimeout)
				list := &corev1.PodList{}
				err := e.api.pods(e.namespace).list(lctx, metav1.ListOptions{LabelSelector: selector}, list)
				lcancel()
				if err != nil {
					// An API server restarting answers errors for a while:
					// only a refusal, or failures that go on, fail the step.
					if failures++; apierrors.IsForbidden(err) || failures > 10 {
						if !send(ctx, events, podEvent{err: fmt.Errorf("list pods: %w", explain(err))}) {
							return
						}
					}
					if !sleep(ctx, &delay) {
						return
					}
					continue
				}
				failures = 0
				if !send(ctx, events, podEvent{listed: list.Items}) {
					return
				}
				rv = list.ResourceVersion
			}
			rv = w.follow(ctx, selector, rv, events)
			if rv == "" && !sleep(ctx, &delay) {
				return
			}
		}
	}()
	return w, nil
}

// follow watches from rv until the watch ends and returns the last
// resource version seen, or "" when the watch must start from a new list
// (it failed, or rv is too old).
func (w *podWatch) follow(ctx context.Context, selector, rv string, events chan<- podEvent) string {
	wi, err := w.e.api.pods(w.e.namespace).watch(ctx, metav1.ListOptions{
		LabelSelector: selector, ResourceVersion: rv, AllowWatchBookmarks: true})
	if err != nil {
		return ""
	}
	defer wi.Stop()
	for {
		select {
		case ev, ok := <-wi.ResultChan():
			if !ok {
				return rv
			}
			switch ev.Type {
			case watch.Error:
				return ""
			case watch.Bookmark:
				if p, ok := ev.Object.(*corev1.Pod); ok {
					rv = p.ResourceVersion
				}
			case watch.Added, watch.Modified, watch.Deleted:
				p, ok := ev.Object.(*corev1.Pod)
				if !ok {
					return ""
				}
				rv = p.ResourceVersion
				if !send(ctx, events, podEvent{pod: p, deleted: ev.Type == watch.Deleted}) {
					return rv
				}
			}
		case <-ctx.Done():
			return rv
		}
	}
}

func send(ctx context.Context, ch chan<- podEvent, ev podEvent) bool {
	select {
	case ch <- ev:
		return true
	case <-ctx.Done():
		return false
	}
}

// sleep waits *delay, doubled up to 2 s for the next time; false when ctx
// ended first.
func sleep(ctx context.Context, delay *time.Duration) bool {
	select {
	case <-time.After(*delay):
		if *delay < 2*time.Second {
			*delay *= 2
		}
		return true
	case <-ctx.Done():
		return false
	}
}

func (w *podWatch) stop() {
	w.cancel()
	<-w.done
}

// apply records ev.
func (w *podWatch) apply(ev podEvent) {
	switch {
	case ev.listed != nil || (ev.pod == nil && ev.err == nil):
		seen := map[string]bool{}
		for i := range ev.listed {
			p := &ev.listed[i]
			seen[p.Name] = true
			w.pods[p.Name] = p
		}
		for name := range w.pods {
			if !seen[name] {
				delete(w.pods, name)
				w.gone[name] = true
			}
		}
	case ev.pod != nil && ev.deleted:
		delete(w.pods, ev.pod.Name)
		w.gone[ev.pod.Name] = true
	case ev.pod != nil:
		if !w.gone[ev.pod.Name] {
			w.pods[ev.pod.Name] = ev.pod
		}
	}
}

// names returns the pods of the Job: those the watch knows, and those a
// list finds now (one made since, not yet seen).
func (w *podWatch) names() []string {
	var names []string
	for name := range w.pods {
		names = append(names, name)
	}
	ctx, cancel := context.WithTimeout(context.Background(), controlTimeout)
	defer cancel()
	list := &corev1.PodList{}
	if err := w.e.api.pods(w.e.namespace).list(ctx, metav1.ListOptions{LabelSelector: labelJob + "=" + w.id}, list); err != nil {
		return names
	}
	for _, p := range list.Items {
		if _, ok := w.pods[p.Name]; !ok && !w.gone[p.Name] {
			w.pods[p.Name] = &p
			names = append(names, p.Name)
		}
	}
	return names
}

// untilGone waits until every pod of the Job known is deleted.
func (w *podWatch) untilGone(ctx context.Context) error {
	for len(w.pods) > 0 {
		select {
		case ev := <-w.events:
			w.apply(ev)
		case <-ctx.Done():
			var left []string
			for name := range w.pods {
				left = append(left, name)
			}
			return fmt.Errorf("%s: %w", strings.Join(left, ", "), ctx.Err())
		}
	}
	return nil
}

// waitingFatal are the reasons of a waiting container that will not start
// without someone changing something; the image ones wrap
// containers.ErrImageUnavailable.
var waitingFatal = map[string]bool{
	"ErrImageNeverPull":          true,
	"ImagePullBackOff":           true,
	"InvalidImageName":           true,
	"CreateContainerConfigError": true,
	"CreateContainerError":       true,
	"RunContainerError":          true,
}

// untilEnded waits until the step's container has ended and returns its
// pod and terminated state. running is called once with the pod's name
// when its container has started (running or already ended), for its log
// to be followed. It fails when ctx ends, when the pod is deleted or
// fails without its container ending (the Job's deadline, an eviction),
// when the container cannot start, and when no node takes the pod, or
// the cluster makes no pod, within unschedulable.
func (w *podWatch) untilEnded(ctx context.Context, job *batchv1.Job, running func(pod string)) (*corev1.Pod, *corev1.ContainerStateTerminated, error) {
	created := time.Now()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	started := ""
	var pendingSince time.Time
	for {
		select {
		case ev := <-w.events:
			if ev.err != nil {
				return nil, nil, ev.err
			}
			w.apply(ev)
		case <-tick.C:
		case <-ctx.Done():
			return nil, nil, ctx.Err()
		}
		if len(w.pods) == 0 {
			if len(w.gone) > 0 {
				return nil, nil, w.lost(ctx, job, "its pod was deleted before its container ended")
			}
			if time.Since(created) > unschedulable {
				return nil, nil, w.lost(ctx, job, fmt.Sprintf("the cluster made no pod for it in %s", unschedulable))
			}
			if time.Since(created) > refusedAfter {
				if why := w.refused(ctx, job); why != "" {
					return nil, nil, fmt.Errorf("Job %s: the cluster refuses its pod: %s", job.Name, why)
				}
			}
			continue
		}
		for _, pod := range w.pods {
			state, _ := podState(pod)
			if started == "" && (state.Running != nil || state.Terminated != nil) {
				started = pod.Name
				running(pod.Name)
			}
			// A pod that someone deletes (the Job controller past the
			// Job's deadline, wflow gc) or that the node evicts may show
			// its container terminated (137) in the same update: that is
			// no exit of the step's own.
			if pod.DeletionTimestamp == nil && pod.Status.Reason == "" {
				if t := state.Terminated; t != nil {
					return pod, t, nil
				}
			}
			if pod.Status.Reason != "" && pod.DeletionTimestamp == nil {
				return nil, nil, w.lost(ctx, job, strings.TrimSpace(fmt.Sprintf("its pod %s ended (%s): %s %s",
					pod.Name, pod.Status.Phase, pod.Status.Reason, pod.Status.Message)))
			}
			if pod.DeletionTimestamp != nil {
				return nil, nil, w.lost(ctx, job, fmt.Sprintf("its pod %s was deleted while its container ran", pod.Name))
			}
			if pod.Status.Phase == corev1.PodFailed || pod.Status.Phase == corev1.PodSucceeded {
				return nil, nil, w.lost(ctx, job, strings.TrimSuffix(fmt.Sprintf("its pod %s ended (%s) before its container did: %s",
					pod.Name, pod.Status.Phase, strings.TrimSpace(pod.Status.Reason+" "+pod.Status.Message)), ": "))
			}
			if wait := state.Waiting; wait != nil && waitingFatal[wait.Reason] {
				err := fmt.Errorf("its container cannot start: %s: %s", wait.Reason, wait.Message)
				if strings.Contains(wait.Reason, "Image") {
					err = fmt.Errorf("%w: image %s: %s: %s", containers.ErrImageUnavailable, pod.Spec.Containers[0].Image, wait.Reason, wait.Message)
				}
				return nil, nil, err
			}
			if reason := unscheduled(pod); reason != "" {
				if pendingSince.IsZero() {
					pendingSince = time.Now()
				} else if time.Since(pendingSince) > unschedulable {
					return nil, nil, fmt.Errorf("no node takes its pod after %s: %s", unschedulable, reason)
				}
			}
		}
	}
}

// unscheduled returns the scheduler's reason when the pod has no node, or
// "".
func unscheduled(pod *corev1.Pod) string {
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionFalse {
			return strings.TrimSpace(c.Reason + ": " + c.Message)
		}
	}
	return ""
}

// refusedAfter is how long a Job may have no pod before its events are
// read, every second, for a refusal that will not go away.
const refusedAfter = 2 * time.Second

// refused returns the message of the Job's FailedCreate event when its
// pod was refused for what retries cannot change (the namespace's Pod
// Security level), or "".
func (w *podWatch) refused(ctx context.Context, job *batchv1.Job) string {
	lctx, cancel := context.WithTimeout(ctx, controlTimeout)
	defer cancel()
	events := &corev1.EventList{}
	if err := w.e.api.events(w.e.namespace).list(lctx, metav1.ListOptions{
		FieldSelector: "involvedObject.kind=Job,involvedObject.name=" + job.Name + ",reason=FailedCreate"}, events); err != nil {
		return ""
	}
	for _, ev := range events.Items {
		if strings.Contains(ev.Message, "violates PodSecurity") {
			return ev.Message
		}
	}
	return ""
}

// explainFor is how long a step whose pod went wrong waits for its Job to
// say why.
const explainFor = 5 * time.Second

// lost returns the error of a step whose container's end is unknown,
// with what the Job says (its deadline, a refused pod) when it says it.
func (w *podWatch) lost(ctx context.Context, job *batchv1.Job, what string) error {
	gctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), controlTimeout)
	defer cancel()
	// The Job controller deletes the pods of a Job past its deadline
	// before it says so in the Job's status: it is given explainFor.
	for deadline := time.Now().Add(explainFor); ; {
		j := &batchv1.Job{}
		err := w.e.api.jobs(w.e.namespace).get(gctx, job.Name, j)
		if err == nil {
			if why := jobFailure(j); why != "" {
				return fmt.Errorf("Job %s failed: %s; %s", job.Name, why, what)
			}
		}
		if apierrors.IsNotFound(err) || (err == nil && j.DeletionTimestamp != nil) {
			return fmt.Errorf("Job %s was deleted by someone else (wflow gc?); %s", job.Name, what)
		}
		if time.Now().After(deadline) {
			break
		}
		select {
		case <-time.After(250 * time.Millisecond):
		case <-gctx.Done():
		}
	}
	// The Job controller says why it made no pod in an event.
	events := &corev1.EventList{}
	if err := w.e.api.events(w.e.namespace).list(gctx, metav1.ListOptions{
		FieldSelector: "involvedObject.kind=Job,involvedObject.name=" + job.Name}, events); err == nil {
		for i := len(events.Items) - 1; i >= 0; i-- {
			if ev := events.Items[i]; ev.Type == corev1.EventTypeWarning {
				return fmt.Errorf("Job %s: %s; %s: %s", job.Name, what, ev.Reason, ev.Message)
			}
		}
	}
	return errors.New("Job " + job.Name + ": " + what)
}

package kubernetes

import (
	"context"
	"fmt"
	"io"

	corev1 "k8s.io/api/core/v1"
)

// follower copies a step's log to out: followed from when its container
// starts, then, once it has ended, the rest. A kubelet ends a followed log
// when the container ends; a stream that ends any other way (a broken
// connection, a node that never ends it, as kwok's) is read again without
// following, and only the bytes not yet written are written.
type follower struct {
	e   *Engine
	out io.Writer

	n      int64 // bytes written to out
	cancel context.CancelFunc
	done   chan error // the follow's end: nil when the stream ended by itself
}

// start follows pod's log, from its first byte.
func (f *follower) start(pod string) {
	ctx, cancel := context.WithCancel(context.Background())
	f.cancel, f.done = cancel, make(chan error, 1)
	go func() {
		rc, err := f.e.cs.CoreV1().Pods(f.e.namespace).GetLogs(pod, &corev1.PodLogOptions{Container: containerName, Follow: true}).Stream(ctx)
		if err != nil {
			f.done <- err
			return
		}
		defer rc.Close()
		_, err = io.Copy(f, rc)
		f.done <- err
	}()
}

func (f *follower) Write(p []byte) (int, error) {
	n, err := f.out.Write(p)
	f.n += int64(n)
	return n, err
}

// stop ends the follow, if it runs, and waits for it.
func (f *follower) stop() {
	if f.cancel != nil {
		f.cancel()
		<-f.done
		f.cancel = nil
	}
}

// finish writes the rest of the ended container's log. A follow that has
// ended by itself has written it all; otherwise it is stopped at once and
// the log read again, skipping what was written. (A kubelet ends a
// followed log within seconds of the container's end, checking every 5 s
// when the log is quiet; kwok never does: one more read is faster.)
func (f *follower) finish(ctx context.Context, pod *corev1.Pod) error {
	if f.cancel != nil {
		select {
		case err := <-f.done:
			f.cancel()
			f.cancel = nil
			if err == nil {
				return nil
			}
		default:
			f.stop()
		}
	}
	rc, err := f.e.cs.CoreV1().Pods(f.e.namespace).GetLogs(pod.Name, &corev1.PodLogOptions{Container: containerName}).Stream(ctx)
	if err != nil {
		return fmt.Errorf("read the log of pod %s: %w", pod.Name, explain(err))
	}
	defer rc.Close()
	if _, err := io.Copy(&skipping{w: f, n: f.n}, rc); err != nil {
		return fmt.Errorf("read the log of pod %s: %w", pod.Name, err)
	}
	return nil
}

// skipping writes to w what comes after its first n bytes.
type skipping struct {
	w io.Writer
	n int64
}

func (s *skipping) Write(p []byte) (int, error) {
	all := len(p)
	if s.n >= int64(len(p)) {
		s.n -= int64(len(p))
		return all, nil
	}
	p = p[s.n:]
	s.n = 0
	if _, err := s.w.Write(p); err != nil {
		return 0, err
	}
	return all, nil
}

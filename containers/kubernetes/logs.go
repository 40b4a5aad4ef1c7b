package kubernetes

import (
	"bytes"
	"context"
	"fmt"
	"io"

	corev1 "k8s.io/api/core/v1"
)

// follower copies a step's log to out: followed from when its container
// starts, then, once it has ended, the rest, from the log read again
// without following. A followed log need not end with the container (a
// kubelet notices a quiet log's end within 5 s; kwok never does), and a
// stream that ends early (a broken connection) is no sign that all was
// read: the re-read is what says so. Only the bytes not yet written are
// written, found by position, or, when the node has rotated the log
// meanwhile, after the last bytes written.
type follower struct {
	e    *Engine
	out  io.Writer
	errw io.Writer // where a log wflow could not line up is said

	n      int64  // bytes written to out
	tail   []byte // the last bytes written, up to tailSize
	cancel context.CancelFunc
	done   chan struct{}
}

// tailSize is how much of what was written the follower keeps to find its
// place in a rotated log.
const tailSize = 4096

// rereadLimit bounds the re-read log held in memory (a node rotates a
// container's log at 10 MiB by default).
const rereadLimit = 64 << 20

// start follows pod's log, from its first byte.
func (f *follower) start(pod string) {
	ctx, cancel := context.WithCancel(context.Background())
	f.cancel, f.done = cancel, make(chan struct{})
	go func() {
		defer close(f.done)
		rc, err := f.e.api.pods(f.e.namespace).logs(ctx, pod, &corev1.PodLogOptions{Container: containerName, Follow: true})
		if err != nil {
			return
		}
		defer rc.Close()
		io.Copy(f, rc)
	}()
}

func (f *follower) Write(p []byte) (int, error) {
	n, err := f.out.Write(p)
	f.n += int64(n)
	f.tail = append(f.tail, p[:n]...)
	if len(f.tail) > tailSize {
		f.tail = append(f.tail[:0], f.tail[len(f.tail)-tailSize:]...)
	}
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

// finish stops the follow and writes the rest of the ended container's
// log.
func (f *follower) finish(ctx context.Context, pod *corev1.Pod) error {
	f.stop()
	rc, err := f.e.api.pods(f.e.namespace).logs(ctx, pod.Name, &corev1.PodLogOptions{Container: containerName})
	if err != nil {
		return fmt.Errorf("read the log of pod %s: %w", pod.Name, explain(err))
	}
	defer rc.Close()
	var log bytes.Buffer
	if _, err := io.Copy(&log, io.LimitReader(rc, rereadLimit+1)); err != nil {
		return fmt.Errorf("read the log of pod %s: %w", pod.Name, err)
	}
	if log.Len() > rereadLimit {
		fmt.Fprintf(f.errw, "wflow: the log of pod %s is over %d MiB: wflow kept what it followed, and its end may be missing\n", pod.Name, rereadLimit>>20)
		return nil
	}
	rest, ok := f.after(log.Bytes())
	if !ok {
		fmt.Fprintf(f.errw, "wflow: the node rotated the log of pod %s while wflow read it: some of the step's output before what follows may be missing\n", pod.Name)
	}
	_, err = f.Write(rest)
	return err
}

// after returns what log holds past what was written: past the same
// position when the bytes before it are the ones written last; else (the
// node rotated the log: its start is gone) past the last place those
// bytes are, or past the longest end of them the log begins with. ok is
// false when the log holds none of them: then it is all new, and what
// came between may be lost.
func (f *follower) after(log []byte) (rest []byte, ok bool) {
	if f.n == 0 {
		return log, true
	}
	if int64(len(log)) >= f.n && bytes.Equal(log[f.n-int64(len(f.tail)):f.n], f.tail) {
		return log[f.n:], true
	}
	if i := bytes.LastIndex(log, f.tail); i >= 0 {
		return log[i+len(f.tail):], true
	}
	for k := len(f.tail) - 1; k >= minOverlap; k-- {
		if bytes.HasPrefix(log, f.tail[len(f.tail)-k:]) {
			return log[k:], true
		}
	}
	return log, false
}

// minOverlap is the fewest bytes taken to line up a rotated log.
const minOverlap = 64

package main

import (
	"bytes"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/wflow/wflow/abi"
	"github.com/wflow/wflow/containers"
)

// maxLineLen is the longest line the console prints in one piece; a longer
// line without a newline is printed in parts rather than buffered.
const maxLineLen = 16 << 10

// console prints a run's live log: every line prefixed with its step. It
// implements hostfuncs.Observer.
type console struct {
	mu  sync.Mutex
	out io.Writer

	open map[uint32][]*lineWriter // a step's writers, flushed when it finishes
}

func newConsole(out io.Writer) *console {
	return &console{out: out, open: map[uint32][]*lineWriter{}}
}

func (c *console) printf(format string, args ...any) {
	c.mu.Lock()
	defer c.mu.Unlock()
	fmt.Fprintf(c.out, format, args...)
}

func (c *console) StepStarted(handle uint32, step containers.Step) {
	c.printf("[%s] started (handle %d, image %s)\n", step.Name, handle, step.Image)
}

func (c *console) StepOutput(handle uint32, step containers.Step) containers.Live {
	stdout := &lineWriter{c: c, prefix: "[" + step.Name + "] "}
	stderr := &lineWriter{c: c, prefix: "[" + step.Name + " stderr] "}
	c.mu.Lock()
	c.open[handle] = []*lineWriter{stdout, stderr}
	c.mu.Unlock()
	return containers.Live{Stdout: stdout, Stderr: stderr}
}

func (c *console) StepFinished(res containers.Result) {
	c.mu.Lock()
	writers := c.open[res.Handle]
	delete(c.open, res.Handle)
	c.mu.Unlock()
	for _, w := range writers {
		w.flush()
	}
	d := time.Duration(res.DurationMS) * time.Millisecond
	switch {
	case res.Error != "":
		c.printf("[%s] error (%s) after %s: %s\n", res.Step, res.ErrorKind, d, res.Error)
	default:
		c.printf("[%s] exited %d after %s\n", res.Step, res.ReturnCode, d)
	}
}

var levelNames = [...]string{abi.LogDebug: "debug", abi.LogInfo: "info", abi.LogWarn: "warn", abi.LogError: "error"}

func (c *console) Log(level int, msg string) {
	prefix := "[workflow] "
	if level != abi.LogInfo && level >= 0 && level < len(levelNames) {
		prefix = "[workflow " + levelNames[level] + "] "
	}
	for _, line := range bytes.Split([]byte(msg), []byte("\n")) {
		c.printf("%s%s\n", prefix, line)
	}
}

// lineWriter turns a byte stream into prefixed lines on the console.
type lineWriter struct {
	c      *console
	prefix string
	mu     sync.Mutex
	buf    []byte
}

func (w *lineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := len(p)
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			w.buf = append(w.buf, p...)
			if len(w.buf) >= maxLineLen {
				w.emit(w.buf)
				w.buf = w.buf[:0]
			}
			break
		}
		w.buf = append(w.buf, p[:i]...)
		w.emit(w.buf)
		w.buf = w.buf[:0]
		p = p[i+1:]
	}
	return n, nil
}

func (w *lineWriter) flush() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.buf) > 0 {
		w.emit(w.buf)
		w.buf = w.buf[:0]
	}
}

func (w *lineWriter) emit(line []byte) {
	w.c.mu.Lock()
	defer w.c.mu.Unlock()
	w.c.out.Write([]byte(w.prefix))
	w.c.out.Write(line)
	w.c.out.Write([]byte{'\n'})
}

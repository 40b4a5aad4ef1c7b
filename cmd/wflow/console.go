package main

import (
	"bufio"
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

// flushEvery is how long console output may wait in the buffer: live
// enough for a person, and a step printing millions of lines costs a write
// per buffer, not per line.
const flushEvery = 100 * time.Millisecond

// console prints a run's live log: every line prefixed with its step. It
// implements hostfuncs.Observer. Output is buffered and flushed every
// flushEvery; Close flushes the rest.
type console struct {
	mu   sync.Mutex
	out  *bufio.Writer
	stop chan struct{}
	done chan struct{}

	open map[uint32][]*lineWriter // a step's writers, flushed when it finishes
}

func newConsole(out io.Writer) *console {
	c := &console{out: bufio.NewWriterSize(out, 64<<10), stop: make(chan struct{}), done: make(chan struct{}), open: map[uint32][]*lineWriter{}}
	go c.flusher()
	return c
}

func (c *console) flusher() {
	defer close(c.done)
	t := time.NewTicker(flushEvery)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			c.mu.Lock()
			c.out.Flush()
			c.mu.Unlock()
		case <-c.stop:
			return
		}
	}
}

// Close stops the flusher and writes out what is buffered. Call it before
// writing to the console's writer directly again.
func (c *console) Close() {
	select {
	case <-c.stop:
		return // already closed
	default:
	}
	close(c.stop)
	<-c.done
	c.mu.Lock()
	c.out.Flush()
	c.mu.Unlock()
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
	w.c.out.WriteString(w.prefix)
	w.c.out.Write(line)
	w.c.out.WriteByte('\n')
}

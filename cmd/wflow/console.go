package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/wflow/wflow/abi"
	"github.com/wflow/wflow/containers"
	"github.com/wflow/wflow/internal/clip"
	"github.com/wflow/wflow/internal/termsafe"
	"github.com/wflow/wflow/journal"
	"github.com/wflow/wflow/report"
	"github.com/wflow/wflow/secrets"
	"github.com/wflow/wflow/step"
)

// maxLineLen is the longest line the console prints in one piece; a longer
// line without a newline is printed in parts rather than buffered.
const maxLineLen = 16 << 10

// flushEvery is how long console output may wait in the buffer: live
// enough for a person, and a step printing millions of lines costs a write
// per buffer, not per line. The live status line is redrawn as often.
const flushEvery = 100 * time.Millisecond

// console is what `wflow run` prints: in text, every line prefixed with its
// step, a summary table at the end and, on a terminal, a live status line
// of the running steps; with --json, one JSON event per line instead. It
// implements hostfuncs.Observer. Output is buffered and flushed every
// flushEvery; Close flushes the rest.
type console struct {
	mu      sync.Mutex
	out     *bufio.Writer
	json    bool
	explain bool         // say why the step cache missed (--explain)
	mask    *secrets.Set // the run's secrets, masked in every line (nil: none)
	status  bool         // draw the live status line (a terminal, not --json)
	shown   bool         // the status line is on the screen now
	stop    chan struct{}
	done    chan struct{}

	running map[uint32]runningStep
	open    map[uint32][]*lineWriter // a step's writers, flushed when it finishes
	// moduleLog gets the module's own lines, as shown (nil: none).
	moduleLog *journal.ModuleLog
}

// setModuleLog makes the console copy the module's lines to log, or stop
// (nil).
func (c *console) setModuleLog(log *journal.ModuleLog) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.moduleLog = log
}

type runningStep struct {
	name  string
	since time.Time
}

func newConsole(out io.Writer, asJSON bool) *console {
	c := &console{
		out: bufio.NewWriterSize(out, 64<<10), json: asJSON, status: !asJSON && isTerminal(out),
		stop: make(chan struct{}), done: make(chan struct{}),
		running: map[uint32]runningStep{}, open: map[uint32][]*lineWriter{},
	}
	go c.flusher()
	return c
}

// isTerminal reports whether w is a character device (a terminal).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

func (c *console) flusher() {
	defer close(c.done)
	t := time.NewTicker(flushEvery)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			c.mu.Lock()
			c.drawStatus()
			c.out.Flush()
			c.mu.Unlock()
		case <-c.stop:
			return
		}
	}
}

// drawStatus redraws the live status line; c.mu is held.
func (c *console) drawStatus() {
	if !c.status {
		return
	}
	c.clearStatus()
	if len(c.running) == 0 {
		return
	}
	handles := make([]uint32, 0, len(c.running))
	for h := range c.running {
		handles = append(handles, h)
	}
	sort.Slice(handles, func(i, j int) bool { return handles[i] < handles[j] })
	parts := make([]string, 0, len(handles))
	for _, h := range handles {
		s := c.running[h]
		parts = append(parts, fmt.Sprintf("%s %.1fs", s.name, time.Since(s.since).Seconds()))
	}
	line := "running: " + strings.Join(parts, ", ")
	line = clip.String(line, 197)
	c.out.WriteString(line)
	c.shown = true
}

// clearStatus erases the status line so a log line can take its place.
func (c *console) clearStatus() {
	if c.shown {
		c.out.WriteString("\r\x1b[K")
		c.shown = false
	}
}

// Close stops the flusher and writes out what is buffered.
func (c *console) Close() {
	select {
	case <-c.stop:
		return // already closed
	default:
	}
	close(c.stop)
	<-c.done
	c.mu.Lock()
	c.clearStatus()
	c.out.Flush()
	c.mu.Unlock()
}

// event writes one JSON event (--json); c.mu is held.
func (c *console) event(fields map[string]any) {
	fields["time"] = time.Now().UTC().Format(time.RFC3339Nano)
	b, _ := step.MarshalJSON(fields, false)
	c.out.Write(b)
	c.out.WriteByte('\n')
}

// textf writes a text line; c.mu is held. Its arguments may come from
// steps, the module or policies, so what a terminal would act on is shown
// escaped (termsafe); the format itself is wflow's.
func (c *console) textf(format string, args ...any) {
	c.clearStatus()
	for i, a := range args {
		if s, ok := a.(string); ok {
			args[i] = termsafe.Escape(s)
		}
	}
	fmt.Fprintf(c.out, format, args...)
}

// notice is a line of wflow's own (orphans removed, ...).
func (c *console) notice(format string, args ...any) {
	c.mu.Lock()
	defer c.mu.Unlock()
	msg := fmt.Sprintf(format, args...)
	if c.json {
		c.event(map[string]any{"event": "notice", "message": msg})
		return
	}
	c.textf("wflow: %s\n", msg)
}

func (c *console) runStarted(runID, rundir string, engine containers.EngineInfo) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.json {
		c.event(map[string]any{"event": "run_started", "run_id": runID, "rundir": rundir, "engine": engine})
		return
	}
	c.textf("wflow: run %s in %s on %s\n", runID, rundir, strings.TrimSpace(engine.Name+" "+engine.Version))
}

// runFinished prints the end of a run: the summary table, the outcome and
// the report's path; with --json, a run_finished event.
func (c *console) runFinished(rep report.Report, path string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.json {
		ev := map[string]any{"event": "run_finished", "run_id": rep.RunID, "status": rep.Status,
			"exit_code": rep.ExitCode, "steps": len(rep.Steps), "report": path, "trace": filepath.Join(rep.RunDir, rep.Trace),
			"html": filepath.Join(rep.RunDir, rep.HTML)}
		if rep.Message != "" { // as in the report: absent when the workflow succeeded
			ev["message"] = rep.Message
		}
		c.event(ev)
		return
	}
	c.clearStatus()
	c.status = false
	fmt.Fprintln(c.out)
	report.Summary(c.out, rep.Steps)
	fmt.Fprintf(c.out, "\nworkflow %s", rep.Status)
	if rep.Message != "" {
		fmt.Fprintf(c.out, ": %s", termsafe.Escape(rep.Message))
	}
	fmt.Fprintf(c.out, "\nreport: %s\nhtml:   %s\ntrace:  %s\n", path, filepath.Join(rep.RunDir, rep.HTML), filepath.Join(rep.RunDir, rep.Trace))
}

// StepStarted implements hostfuncs.Observer.
func (c *console) StepStarted(handle uint32, st step.Step) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.running[handle] = runningStep{name: st.Name, since: time.Now()}
	if c.json {
		c.event(map[string]any{"event": "step_started", "handle": handle, "step": st.Name, "image": st.Image})
		return
	}
	c.textf("[%s] started (handle %d, image %s)\n", st.Name, handle, st.Image)
}

// StepOutput implements hostfuncs.Observer.
func (c *console) StepOutput(handle uint32, st step.Step) containers.Live {
	stdout := &lineWriter{c: c, source: st.Name, handle: handle, stream: "stdout"}
	stderr := &lineWriter{c: c, source: st.Name, handle: handle, stream: "stderr"}
	c.mu.Lock()
	c.open[handle] = []*lineWriter{stdout, stderr}
	c.mu.Unlock()
	return containers.Live{Stdout: stdout, Stderr: stderr}
}

// StepFinished implements hostfuncs.Observer.
func (c *console) StepFinished(res step.ExecResult) {
	c.mu.Lock()
	writers := c.open[res.Handle]
	delete(c.open, res.Handle)
	c.mu.Unlock()
	for _, w := range writers {
		w.flush()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.running, res.Handle)
	if c.json {
		c.event(map[string]any{"event": "step_finished", "handle": res.Handle, "step": res.Step, "result": res})
		return
	}
	if res.Notebook != nil {
		for _, w := range res.Notebook.Warnings {
			c.textf("[%s] warning: %s\n", res.Step, w)
		}
	}
	d := time.Duration(res.DurationMS) * time.Millisecond
	if c.explain && res.CacheMiss != "" {
		c.textf("[%s] cache miss: %s\n", res.Step, res.CacheMiss)
	}
	switch {
	case res.Cached:
		c.textf("[%s] cached: exited %d in run %s; outputs restored\n", res.Step, res.ReturnCode, res.CachedFrom)
	case res.Resumed:
		c.textf("[%s] resumed: exited %d in run %s; not run again\n", res.Step, res.ReturnCode, res.ResumedFrom)
	case res.Error != "":
		c.textf("[%s] error (%s) after %s: %s\n", res.Step, res.ErrorKind, d, res.Error)
	default:
		c.textf("[%s] exited %d after %s\n", res.Step, res.ReturnCode, d)
	}
}

var levelNames = [...]string{abi.LogDebug: "debug", abi.LogInfo: "info", abi.LogWarn: "warn", abi.LogError: "error"}

// Log implements hostfuncs.Observer.
func (c *console) Log(level int, msg string) {
	msg = c.mask.String(msg)
	name := "info"
	if level >= 0 && level < len(levelNames) {
		name = levelNames[level]
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, line := range strings.Split(msg, "\n") {
		c.moduleLog.Line(name, line)
	}
	if c.json {
		c.event(map[string]any{"event": "log", "level": name, "message": msg})
		return
	}
	prefix := "[workflow] "
	if name != "info" {
		prefix = "[workflow " + name + "] "
	}
	for _, line := range strings.Split(msg, "\n") {
		c.textf("%s%s\n", prefix, line)
	}
}

// guestOutput returns the writers of the module's own stdout and stderr.
func (c *console) guestOutput() (stdout, stderr *lineWriter) {
	return &lineWriter{c: c, source: "workflow", stream: "stdout"}, &lineWriter{c: c, source: "workflow", stream: "stderr"}
}

// lineWriter turns a byte stream into lines on the console: prefixed with
// their step in text, output events with --json.
type lineWriter struct {
	c      *console
	source string // a step's name, or "workflow" for the module itself
	handle uint32 // the step's handle; 0 for the module
	stream string // "stdout" or "stderr"
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
	c := w.c
	c.mu.Lock()
	defer c.mu.Unlock()
	if w.handle == 0 && w.source == "workflow" {
		c.moduleLog.Line(w.stream, string(line))
	}
	if c.json {
		ev := map[string]any{"event": "output", "source": w.source, "stream": w.stream, "line": string(line)}
		if w.handle != 0 {
			ev["handle"] = w.handle
		}
		c.event(ev)
		return
	}
	c.clearStatus()
	c.out.WriteByte('[')
	c.out.WriteString(w.source)
	if w.source == "workflow" || w.stream == "stderr" {
		c.out.WriteByte(' ')
		c.out.WriteString(w.stream)
	}
	c.out.WriteString("] ")
	c.out.WriteString(termsafe.Escape(string(line)))
	c.out.WriteByte('\n')
}

package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/wflow/wflow/history"
	"github.com/wflow/wflow/internal/termsafe"
	"github.com/wflow/wflow/journal"
	"github.com/wflow/wflow/rundir"
	"github.com/wflow/wflow/step"
)

// errNoStep is wrapped when wflow logs finds no step of the name or handle.
var errNoStep = errors.New("no such step")

// logChunk caps one read of a log file.
const logChunk = 4 << 20

// logPrinter prints a run's logs from its files, once or following them.
type logPrinter struct {
	run            history.Run
	stdout, stderr io.Writer
	// escapeOut, escapeErr: stdout, stderr is a terminal: what steps and
	// the module wrote is escaped there.
	escapeOut, escapeErr bool
	offsets              map[string]int64 // how much of each file has been printed
	shown                map[uint32]bool  // steps whose finish line is printed
	headed               map[string]bool  // output files whose header line is printed
	// The run's results, read as its journal grows: a poll reads what is
	// new, not the whole journal.
	tail *journal.Tail
	// stepResults are the results of the steps wflow logs RUN STEP prints.
	stepResults map[uint32]step.ExecResult
}

// newResults returns the results the run's journal gained since the last
// call, in time order; of two with a handle, the later in the journal.
func (l *logPrinter) newResults() ([]step.ExecResult, error) {
	if l.tail == nil {
		l.tail = journal.NewTail(l.run.Dir, l.run.ID)
	}
	res, err := l.tail.Next()
	byHandle := make(map[uint32]int, len(res))
	out := res[:0]
	for _, r := range res {
		if i, ok := byHandle[r.Handle]; ok {
			out[i] = r
			continue
		}
		byHandle[r.Handle] = len(out)
		out = append(out, r)
	}
	history.SortResults(out)
	return out, err
}

// logLine is one line of the merged module log.
type logLine struct {
	at   time.Time
	text string
}

// moduleLog prints the module's log and a line per finished step, in time
// order; following, until the run ends.
func (l *logPrinter) moduleLog(ctx context.Context, follow bool) error {
	l.shown = map[uint32]bool{}
	for {
		running := follow && history.Running(l.run)
		if err := l.moduleLogOnce(!running); err != nil {
			return err
		}
		if !running {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(followEvery):
		}
	}
}

func (l *logPrinter) moduleLogOnce(final bool) error {
	results, err := l.newResults()
	if err != nil {
		return err
	}
	var finished []logLine // the steps' lines not printed yet, in time order
	for _, r := range results {
		if !l.shown[r.Handle] {
			l.shown[r.Handle] = true
			finished = append(finished, logLine{at: r.Finished, text: "[" + r.Step + "] " + finishText(r)})
		}
	}
	sort.SliceStable(finished, func(i, j int) bool { return finished[i].at.Before(finished[j].at) })
	show := func(ln logLine) {
		l.write(l.stdout, []byte(ln.at.Local().Format("15:04:05.000")+" "+ln.text+"\n"), l.escapeOut)
	}
	err = l.eachNewLine(journal.ModuleLogPath(l.run.ID), final, func(line string) {
		ml := moduleLine(line)
		for len(finished) > 0 && !ml.at.IsZero() && !finished[0].at.After(ml.at) {
			show(finished[0])
			finished = finished[1:]
		}
		show(ml)
	})
	for _, ln := range finished {
		show(ln)
	}
	return err
}

// maxLogLine caps a line of the module log as wflow logs prints it: a log
// that is not wflow's may have lines of any length.
const maxLogLine = 64 << 10

// eachNewLine calls fn with each whole line appended to a run directory
// file since the last call (and, when final, a last line without its
// newline), reading a line at a time: a file of any size costs a line of
// memory. A line over maxLogLine is cut.
func (l *logPrinter) eachNewLine(rel string, final bool, fn func(string)) error {
	f, err := rundir.OpenIn(l.run.Dir, rel)
	if err != nil {
		if errors.Is(err, rundir.ErrNotRegular) {
			return err
		}
		return nil // not there (yet): nothing to print
	}
	defer f.Close()
	r := bufio.NewReaderSize(io.NewSectionReader(f, l.offsets[rel], 1<<62), maxLogLine)
	for {
		line, err := r.ReadSlice('\n')
		switch {
		case err == bufio.ErrBufferFull:
			fn(strings.ToValidUTF8(string(line), "") + " [line cut]")
			l.offsets[rel] += int64(len(line))
			for err == bufio.ErrBufferFull { // skip the rest of it
				line, err = r.ReadSlice('\n')
				l.offsets[rel] += int64(len(line))
			}
			if err != nil && err != io.EOF {
				return err
			}
		case err == io.EOF:
			if final && len(line) > 0 {
				l.offsets[rel] += int64(len(line))
				fn(string(line))
			}
			return nil
		case err != nil:
			return err
		default:
			l.offsets[rel] += int64(len(line))
			fn(string(line[:len(line)-1]))
		}
	}
}

// moduleLine reads a module log line, "<time> <stream> <text>", into the
// console's form: "[workflow] text", "[workflow warn] text".
func moduleLine(line string) logLine {
	stamp, rest, _ := strings.Cut(line, " ")
	stream, text, _ := strings.Cut(rest, " ")
	at, err := time.Parse(journal.TimeFormat, stamp)
	if err != nil {
		return logLine{text: line}
	}
	prefix := "[workflow " + stream + "] "
	switch stream {
	case "info", "stdout":
		prefix = "[workflow] "
	case "wflow":
		prefix = ""
	}
	return logLine{at: at, text: prefix + text}
}

// finishText says how a step ended, as the console does.
func finishText(r step.ExecResult) string {
	d := (time.Duration(r.DurationMS) * time.Millisecond).String()
	switch {
	case r.Cached:
		return "cached (from run " + r.CachedFrom + ")"
	case r.Resumed:
		return "resumed (from run " + r.ResumedFrom + ")"
	case r.Error != "":
		return fmt.Sprintf("error (%s) after %s: %s", r.ErrorKind, d, firstLine(r.Error))
	}
	return fmt.Sprintf("exited %d after %s", r.ReturnCode, d)
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	return s
}

// stepLog prints the output of the steps STEP names (a name, or a handle:
// 3 or #3): each attempt's stdout to stdout and stderr to stderr.
// Following, it prints their output as they write it, until every step of
// that name that started has finished, and one has (a handle: that step),
// or the run ends.
func (l *logPrinter) stepLog(ctx context.Context, which string, follow bool) error {
	name, handle := which, uint32(0)
	if h, err := strconv.ParseUint(strings.TrimPrefix(which, "#"), 10, 32); err == nil && h > 0 {
		name, handle = "", uint32(h)
	}
	for {
		running := follow && history.Running(l.run)
		done, found, err := l.stepLogOnce(name, handle, running)
		if err != nil {
			return err
		}
		if !running || done {
			if !found {
				return fmt.Errorf("%w: run %s has no step %q (wflow show %s lists them)", errNoStep, l.run.ID, which, l.run.ID)
			}
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(followEvery):
		}
	}
}

// stepLogOnce prints what is new in the output files of the steps named:
// of the finished ones as their results name them, of the running ones
// (live) as their folders hold them. done: each that started has finished.
func (l *logPrinter) stepLogOnce(name string, handle uint32, live bool) (done, found bool, err error) {
	fresh, err := l.newResults()
	if err != nil {
		return false, false, err
	}
	if l.stepResults == nil {
		l.stepResults = map[uint32]step.ExecResult{}
	}
	for _, r := range fresh {
		if (name != "" && r.Step == name) || (name == "" && r.Handle == handle) {
			l.stepResults[r.Handle] = r
		}
	}
	results := slices.Collect(maps.Values(l.stepResults))
	history.SortResults(results)
	if !live && len(results) == 0 {
		if rep, err := history.Load(l.run); err == nil {
			results = rep.Steps
		}
	}
	finished := map[string]bool{} // step folders of finished steps
	var files []outputFiles
	for _, r := range results {
		if (name != "" && r.Step != name) || (name == "" && r.Handle != handle) {
			continue
		}
		found = true
		if len(r.Attempts) > 0 {
			for _, a := range r.Attempts {
				files = append(files, outputFiles{a.StdoutFile, a.StderrFile,
					fmt.Sprintf("%s #%d, attempt %d of %d: %s", r.Step, r.Handle, a.Attempt, len(r.Attempts), endText(a.ReturnCode, a.ErrorKind))})
			}
		} else {
			files = append(files, outputFiles{r.StdoutFile, r.StderrFile, fmt.Sprintf("%s #%d: %s", r.Step, r.Handle, endText(r.ReturnCode, r.ErrorKind))})
		}
		for _, f := range files {
			finished[filepath.Dir(f.stdout)] = true
		}
	}
	running := 0
	if live {
		for _, dir := range history.LiveStepFolders(l.run, name, handle) {
			if finished[dir] {
				continue
			}
			found = true
			running++
			files = append(files, outputFiles{filepath.Join(dir, "stdout"), filepath.Join(dir, "stderr"), filepath.Base(dir) + ": running"})
		}
	}
	seen := map[string]bool{}
	for _, f := range files {
		if f.stdout == "" || seen[f.stdout] {
			continue
		}
		seen[f.stdout] = true
		// As tail does for several files: a line on stdout before each
		// step's or attempt's output, once.
		if len(files) > 1 && !l.headed[f.stdout] {
			l.headed[f.stdout] = true
			fmt.Fprintf(l.stdout, "==> %s <==\n", termsafe.Escape(f.label))
		}
		for i, w := range []io.Writer{l.stdout, l.stderr} {
			if err := l.copyNew(w, []string{f.stdout, f.stderr}[i], true); err != nil {
				return false, found, err
			}
		}
	}
	// A step's attempt folders come one after another: a finished step
	// whose folder is live again is not done.
	return found && running == 0 && len(finished) > 0, found, nil
}

// outputFiles are one step's or attempt's output files, and what it was.
type outputFiles struct {
	stdout, stderr, label string
}

// endText is how an attempt ended, in a few words.
func endText(code int, kind string) string {
	if kind != "" {
		return fmt.Sprintf("%s, exit %d", kind, code)
	}
	if code != 0 {
		return fmt.Sprintf("failed, exit %d", code)
	}
	return "ok"
}

// copyNew copies to w what was appended to a run directory file since the
// last call, a chunk at a time; escaped (on a terminal) when escape.
func (l *logPrinter) copyNew(w io.Writer, rel string, escape bool) error {
	for {
		b, err := rundir.ReadFrom(l.run.Dir, rel, l.offsets[rel], logChunk)
		if err != nil {
			if errors.Is(err, rundir.ErrNotRegular) {
				return err
			}
			return nil // not there yet, or gone: nothing to print
		}
		l.offsets[rel] += int64(len(b))
		l.write(w, b, escape && l.escapes(w))
		if len(b) < logChunk {
			return nil
		}
	}
}

// escapes reports whether w, stdout or stderr, is a terminal.
func (l *logPrinter) escapes(w io.Writer) bool {
	if w == l.stderr {
		return l.escapeErr
	}
	return l.escapeOut
}

// write writes what a step or the module wrote; escaped, each line
// (termsafe), when escape.
func (l *logPrinter) write(w io.Writer, b []byte, escape bool) {
	if len(b) == 0 {
		return
	}
	if escape {
		lines := strings.Split(string(b), "\n")
		for i, line := range lines {
			lines[i] = termsafe.Escape(line)
		}
		b = []byte(strings.Join(lines, "\n"))
	}
	w.Write(b)
}

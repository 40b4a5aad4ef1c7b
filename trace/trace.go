// Package trace writes a run's trace file, .wflow/runs/<id>/trace.tsv: one
// tab-separated line per finished step, written as it finishes, with the
// columns Nextflow's -with-trace users know (docs/cli.md). A spreadsheet, awk
// or pandas reads it; the run report (report.json) has everything else.
package trace

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/wflow/wflow/journal"
	"github.com/wflow/wflow/rundir"
	"github.com/wflow/wflow/step"
)

// Columns are the trace's columns, its first line.
var Columns = []string{"name", "handle", "status", "exit", "submit", "start", "complete", "duration", "realtime", "peak_rss", "%cpu", "image", "cached"}

// Statuses of a line, as Nextflow names them.
const (
	StatusCompleted = "COMPLETED" // every command ran and exited 0
	StatusFailed    = "FAILED"    // a command exited non-zero, or the step could not run
	StatusAborted   = "ABORTED"   // cancelled: by the module (step_cancel) or the run's end
	StatusCached    = "CACHED"    // answered from the step cache or an earlier attempt (--resume); nothing ran
)

// Path is where run runID's trace lies, relative to the run directory.
func Path(runID string) string {
	return filepath.Join(journal.RunsDir, runID, "trace.tsv")
}

// TimeFormat is how the trace writes times: UTC, to the millisecond.
const TimeFormat = journal.TimeFormat

// Line is the trace line of a result, without its newline. Missing values
// (no peak memory or CPU measured, a time not known) are "-".
func Line(res step.ExecResult) string {
	status := StatusCompleted
	switch {
	case res.Cached || res.Resumed:
		status = StatusCached
	case res.ErrorKind == step.ErrorKindCancelled:
		status = StatusAborted
	case !res.OK():
		status = StatusFailed
	}
	cached := "false"
	if res.Cached || res.Resumed {
		cached = "true"
	}
	fields := []string{
		clean(res.Step), strconv.FormatUint(uint64(res.Handle), 10), status, strconv.Itoa(res.ReturnCode),
		stamp(res.Submitted), stamp(res.Started), stamp(res.Finished),
		span(res.Submitted, res.Finished), span(res.Started, res.Finished),
		peakMemory(res.Resources), cpuShare(res),
		clean(res.Image), cached,
	}
	return strings.Join(fields, "\t")
}

// peakMemory is the step's peak memory as Nextflow writes it: "58.1 MB"
// (units of 1024).
func peakMemory(r *step.Resources) string {
	if r == nil {
		return "-"
	}
	if r.PeakMemoryBytes < 1024 {
		return strconv.FormatInt(r.PeakMemoryBytes, 10) + " B"
	}
	size, unit := float64(r.PeakMemoryBytes)/1024, "KB"
	for _, bigger := range []string{"MB", "GB", "TB"} {
		if size < 1024 {
			break
		}
		size, unit = size/1024, bigger
	}
	return strconv.FormatFloat(size, 'f', 1, 64) + " " + unit
}

// cpuShare is the step's CPU time over its running time, as Nextflow's
// %cpu: "98.5%"; over 100% when it kept more than one core busy.
func cpuShare(res step.ExecResult) string {
	real := res.Finished.Sub(res.Started).Milliseconds()
	if res.Resources == nil || real <= 0 {
		return "-"
	}
	return strconv.FormatFloat(float64(res.Resources.CPUMS)*100/float64(real), 'f', 1, 64) + "%"
}

func stamp(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(TimeFormat)
}

// span is to - from in milliseconds, "-" when either is unknown.
func span(from, to time.Time) string {
	if from.IsZero() || to.IsZero() || to.Before(from) {
		return "-"
	}
	return strconv.FormatInt(to.Sub(from).Milliseconds(), 10) + "ms"
}

// clean keeps a field on its line and in its column.
func clean(s string) string {
	if s == "" {
		return "-"
	}
	return strings.Map(func(r rune) rune {
		if r == '\t' || r == '\n' || r == '\r' {
			return ' '
		}
		return r
	}, s)
}

// Writer appends a run's trace lines as its steps finish. A write error
// stops it (Close returns the first); the report has every result anyway.
type Writer struct {
	mu  sync.Mutex
	f   *os.File
	err error
}

// Create creates run runID's trace in a run directory, with its header.
func Create(runDir, runID string) (*Writer, error) {
	f, err := rundir.CreateFile(runDir, Path(runID), os.O_APPEND|os.O_EXCL)
	if err != nil {
		return nil, fmt.Errorf("trace: %w", err)
	}
	w := &Writer{f: f}
	_, w.err = f.WriteString(strings.Join(Columns, "\t") + "\n")
	return w, nil
}

// Append writes a result's line.
func (w *Writer) Append(res step.ExecResult) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err == nil {
		_, w.err = w.f.WriteString(Line(res) + "\n")
	}
}

// Close closes the trace and returns the first error writing it.
func (w *Writer) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.f.Close(); w.err == nil {
		w.err = err
	}
	return w.err
}

// Package report writes a run's report: a JSON file in the run directory with
// every step's ExecResult, the run's timing, outcome and the module's output.
// Its schema is documented in docs/cli.md.
package report

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/wflow/wflow/internal/clip"
	"github.com/wflow/wflow/internal/termsafe"
	"github.com/wflow/wflow/rundir"
	"github.com/wflow/wflow/step"
)

// Path is where the report lies, relative to the run directory.
var Path = filepath.Join(rundir.Records, "report.json")

// Report is the run report.
type Report struct {
	WflowVersion string            `json:"wflow_version"`
	ABI          string            `json:"abi"`
	RunID        string            `json:"run_id"`
	Module       string            `json:"module"`
	ModuleSHA256 string            `json:"module_sha256"`
	RunDir       string            `json:"rundir"`
	Params       json.RawMessage   `json:"params"`
	Started      time.Time         `json:"started"`
	Finished     time.Time         `json:"finished"`
	DurationMS   int64             `json:"duration_ms"`
	Status       string            `json:"status"`    // runtime.Status*
	ExitCode     uint32            `json:"exit_code"` // the module's exit code
	Message      string            `json:"message,omitempty"`
	Output       json.RawMessage   `json:"output"`    // what the module set with output_set, or null
	Steps        []step.ExecResult `json:"steps"`     // in the order they finished
	Decisions    []step.Decision   `json:"decisions"` // every policy decision, in the order taken: the audit trail
	Journal      string            `json:"journal"`   // this run's journal of results, relative to the run directory
}

// Write writes the report into the run directory atomically (a temporary
// file renamed into place) and returns its path.
func Write(runDir string, r Report) (string, error) {
	if r.Steps == nil {
		r.Steps = []step.ExecResult{}
	}
	if r.Decisions == nil {
		r.Decisions = []step.Decision{}
	}
	if len(r.Output) == 0 {
		r.Output = json.RawMessage("null")
	}
	if len(r.Params) == 0 {
		r.Params = json.RawMessage("{}")
	}
	b, err := step.MarshalJSON(r, true)
	if err != nil {
		return "", fmt.Errorf("report: %w", err)
	}
	if err := rundir.WriteFile(runDir, Path, append(b, '\n')); err != nil {
		return "", fmt.Errorf("report: %w", err)
	}
	return filepath.Join(runDir, Path), nil
}

// Summary writes the table printed at the end of a run: one row per step.
func Summary(w io.Writer, steps []step.ExecResult) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "STEP\tHANDLE\tEXIT\tDURATION\tRESULT")
	for _, s := range steps {
		result := "ok"
		switch {
		case s.Cached:
			result = "cached"
		case s.Error != "":
			result = s.ErrorKind + ": " + termsafe.Escape(firstLine(s.Error))
		case s.ReturnCode != 0:
			result = "failed"
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%s\n", s.Step, s.Handle, s.ReturnCode,
			(time.Duration(s.DurationMS) * time.Millisecond).String(), result)
	}
	tw.Flush()
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	return clip.String(s, 100)
}

// JournalPath is where the results of run runID are appended as they land,
// one JSON line per step, relative to the run directory: what survives a
// crash of wflow before the report is written. Each run (each `wflow run`,
// also in a reused --rundir) has its own.
func JournalPath(runID string) string {
	return filepath.Join(rundir.Records, "runs", runID, "results.jsonl")
}

// Journal appends results to a run's journal. Each line is written with
// one write call and synced, so a crash loses at most the line being written.
type Journal struct {
	mu    sync.Mutex
	f     *os.File
	runID []byte // the JSON of the run's id, which starts every line
	err   error  // the first write error; later results are not written
}

// OpenJournal creates the journal of run runID in a run directory; it must
// not exist yet.
func OpenJournal(runDir, runID string) (*Journal, error) {
	f, err := rundir.CreateFile(runDir, JournalPath(runID), os.O_APPEND|os.O_EXCL)
	if err != nil {
		return nil, fmt.Errorf("journal: %w", err)
	}
	id, _ := json.Marshal(runID)
	return &Journal{f: f, runID: id}, nil
}

// Append writes one result as a line: the result's JSON object with the
// run's id first, {"run_id": "...", "step": ...}.
func (j *Journal) Append(res step.ExecResult) {
	b, err := step.MarshalJSON(res.ForReport(), false)
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.err != nil {
		return
	}
	if err == nil {
		line := make([]byte, 0, len(b)+len(j.runID)+12)
		line = append(line, `{"run_id":`...)
		line = append(line, j.runID...)
		line = append(line, ',')
		line = append(line, b[1:]...)
		_, err = j.f.Write(append(line, '\n'))
	}
	if err == nil {
		err = j.f.Sync()
	}
	j.err = err
}

// Close closes the journal and returns the first error writing it.
func (j *Journal) Close() error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if err := j.f.Close(); j.err == nil {
		j.err = err
	}
	return j.err
}

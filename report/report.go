// Package report writes a run's report: a JSON file in the run directory with
// every step's ExecResult, the run's timing, outcome and the module's output,
// and the summary table printed at the end of a run. Its schema is
// documented in docs/cli.md.
package report

import (
	"encoding/json"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/wflow/wflow/containers"
	"github.com/wflow/wflow/internal/clip"
	"github.com/wflow/wflow/internal/termsafe"
	"github.com/wflow/wflow/rundir"
	"github.com/wflow/wflow/step"
)

// Path is where the report lies, relative to the run directory.
var Path = filepath.Join(rundir.Records, "report.json")

// Report is the run report.
type Report struct {
	WflowVersion string `json:"wflow_version"`
	ABI          string `json:"abi"`
	RunID        string `json:"run_id"`
	Module       string `json:"module"`
	ModuleSHA256 string `json:"module_sha256"`
	RunDir       string `json:"rundir"`
	// Engine names the container engine of the steps and its version.
	Engine     containers.EngineInfo `json:"engine"`
	Params     json.RawMessage       `json:"params"`
	Started    time.Time             `json:"started"`
	Finished   time.Time             `json:"finished"`
	DurationMS int64                 `json:"duration_ms"`
	Status     string                `json:"status"`    // runtime.Status*
	ExitCode   uint32                `json:"exit_code"` // the module's exit code
	Message    string                `json:"message,omitempty"`
	Output     json.RawMessage       `json:"output"`    // what the module set with output_set, or null
	Steps      []step.ExecResult     `json:"steps"`     // in the order they finished
	Decisions  []step.Decision       `json:"decisions"` // every policy decision, in the order taken: the audit trail
	Journal    string                `json:"journal"`   // this run's journal of results, relative to the run directory
	Trace      string                `json:"trace"`     // this run's trace.tsv (a line per step), relative to the run directory
	// Resumes lists the earlier runs of the run directory whose results
	// could answer this run's steps (`wflow run --resume`).
	Resumes []string `json:"resumes,omitempty"`
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
		case s.Resumed:
			result = "resumed"
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

// Package report writes a run's report: a JSON file in the run directory with
// every step's ExecResult, the run's timing, outcome and the module's output,
// and the summary table printed at the end of a run. Its schema is
// documented in docs/cli.md.
package report

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/tidwall/gjson"

	"github.com/wflow/wflow/containers"
	"github.com/wflow/wflow/internal/clip"
	"github.com/wflow/wflow/internal/termsafe"
	"github.com/wflow/wflow/journal"
	"github.com/wflow/wflow/rundir"
	"github.com/wflow/wflow/step"
)

// Path is where the report of the run directory's latest run lies,
// relative to the run directory.
var Path = filepath.Join(rundir.Records, "report.json")

// RunPath is where run runID's own report lies, relative to the run
// directory: the same as Path when it is the latest, and kept when a later
// run (--resume) writes Path again.
func RunPath(runID string) string { return filepath.Join(journal.RunsDir, runID, "report.json") }

// HTMLPath is where run runID's HTML report lies, relative to the run
// directory.
func HTMLPath(runID string) string { return filepath.Join(journal.RunsDir, runID, "report.html") }

// MaxBytes caps a report read back (wflow show, wflow report): a run of
// 10,000 steps with full output tails writes about 100 MiB.
const MaxBytes = 256 << 20

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
	Output     json.RawMessage       `json:"output"`     // what the module set with output_set, or null
	Steps      []step.ExecResult     `json:"steps"`      // in the order they finished
	Decisions  []step.Decision       `json:"decisions"`  // every policy decision, in the order taken: the audit trail
	Journal    string                `json:"journal"`    // this run's journal of results, relative to the run directory
	Trace      string                `json:"trace"`      // this run's trace.tsv (a line per step), relative to the run directory
	ModuleLog  string                `json:"module_log"` // what the module printed and logged, relative to the run directory
	HTML       string                `json:"html"`       // this run's HTML report, relative to the run directory
	// Resumes lists the earlier runs of the run directory whose results
	// could answer this run's steps (`wflow run --resume`).
	Resumes []string `json:"resumes,omitempty"`
}

// Write writes the report into the run directory atomically (a temporary
// file renamed into place), as the latest run's (Path) and as the run's own
// (RunPath), and returns the first's path.
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
	b = append(b, '\n')
	for _, rel := range []string{RunPath(r.RunID), Path} {
		if err := rundir.WriteFile(runDir, rel, b); err != nil {
			return "", fmt.Errorf("report: %w", err)
		}
	}
	return filepath.Join(runDir, Path), nil
}

// Read reads run runID's report from the run directory.
func Read(runDir, runID string) (Report, error) {
	var r Report
	b, rel, err := readJSON(runDir, runID)
	if err != nil {
		return r, err
	}
	if err := json.Unmarshal(b, &r); err != nil {
		return r, fmt.Errorf("report: %s: %w", rel, err)
	}
	return r, nil
}

// readJSON reads run runID's report: its own (RunPath), or, for a run of
// a wflow that wrote only the latest run's (Path), that one when it is
// this run's. A missing report is an error wrapping fs.ErrNotExist.
func readJSON(runDir, runID string) ([]byte, string, error) {
	b, err := rundir.ReadFile(runDir, RunPath(runID), MaxBytes)
	if err == nil {
		return b, RunPath(runID), nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, RunPath(runID), fmt.Errorf("report: %w", err)
	}
	latest, lerr := rundir.ReadFile(runDir, Path, MaxBytes)
	if lerr == nil && gjson.GetBytes(latest, "run_id").String() == runID {
		return latest, Path, nil
	}
	return nil, RunPath(runID), fmt.Errorf("report: %w", err)
}

// RunSummary is the top of a run's report, for lists of runs.
type RunSummary struct {
	Module     string
	Status     string
	ExitCode   uint32
	Started    time.Time
	Finished   time.Time
	DurationMS int64
	Steps      int // steps that finished
	Failed     int // of those, not ok (refused, failed, cancelled)
}

// ReadSummary reads the top of run runID's report, and counts its steps.
func ReadSummary(runDir, runID string) (RunSummary, error) {
	b, rel, err := readJSON(runDir, runID)
	if err != nil {
		return RunSummary{}, err
	}
	if !gjson.ValidBytes(b) {
		return RunSummary{}, fmt.Errorf("report: %s: not JSON", rel)
	}
	top := gjson.GetManyBytes(b, "module", "status", "exit_code", "started", "finished", "duration_ms", "steps")
	s := RunSummary{Module: top[0].String(), Status: top[1].String(), ExitCode: uint32(top[2].Uint()),
		Started: top[3].Time(), Finished: top[4].Time(), DurationMS: top[5].Int()}
	top[6].ForEach(func(_, st gjson.Result) bool {
		s.Steps++
		if st.Get("returncode").Int() != 0 || st.Get("error").String() != "" {
			s.Failed++
		}
		return true
	})
	return s, nil
}

// moduleLogTail is how much of the module's log the HTML report shows.
const moduleLogTail = 64 << 10

// WriteHTMLFile writes the run's HTML report to HTMLPath in the run
// directory, with the end of the module's log and links to the run
// directory's files, and returns its path.
func WriteHTMLFile(runDir string, r Report) (string, error) {
	p := PageOf(runDir, r, "../../..")
	var b bytes.Buffer
	if err := WriteHTML(&b, p); err != nil {
		return "", err
	}
	if err := rundir.WriteFile(runDir, HTMLPath(r.RunID), b.Bytes()); err != nil {
		return "", fmt.Errorf("report.html: %w", err)
	}
	return filepath.Join(runDir, HTMLPath(r.RunID)), nil
}

// PageOf is the HTML page of a report whose run directory is runDir, the
// page's links to it starting with base.
func PageOf(runDir string, r Report, base string) Page {
	p := Page{Report: r, Base: base}
	if r.ModuleLog != "" {
		tail, cut, err := rundir.ReadTail(runDir, r.ModuleLog, moduleLogTail)
		if err == nil {
			if cut { // start on a whole line
				if i := bytes.IndexByte(tail, '\n'); i >= 0 {
					tail = tail[i+1:]
				}
			}
			p.ModuleLog, p.ModuleLogCut = strings.ToValidUTF8(string(tail), "\uFFFD"), cut
		} else {
			p.ModuleLog = fmt.Sprintf("(the module log could not be read: %v)", err)
		}
	}
	return p
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
			result = termsafe.Escape(s.ErrorKind) + ": " + termsafe.Escape(firstLine(s.Error))
		case s.ReturnCode != 0:
			result = "failed"
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%s\n", termsafe.Escape(s.Step), s.Handle, s.ReturnCode,
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

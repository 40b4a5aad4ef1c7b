// Package journal owns what a run writes as it goes, so that a crash of
// wflow loses at most the line being written: each run's info
// (.wflow/runs/<id>/run.json, written before the first step) and its
// journal of results (.wflow/runs/<id>/results.jsonl, one synced line per
// finished step). It also reads them back: Load is what `wflow run
// --resume` continues (docs/durability.md).
package journal

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/wflow/wflow/rundir"
	"github.com/wflow/wflow/step"
)

// RunsDir is the folder of every run's records, relative to the run
// directory: one folder per run id.
var RunsDir = filepath.Join(rundir.Records, "runs")

// Path is where the results of run runID are appended as they land, one
// JSON line per step, relative to the run directory. Each run (each `wflow
// run`, also in a reused --rundir) has its own.
func Path(runID string) string {
	return filepath.Join(RunsDir, runID, "results.jsonl")
}

// InfoPath is where run runID's Info lies, relative to the run directory.
func InfoPath(runID string) string {
	return filepath.Join(RunsDir, runID, "run.json")
}

// Info is what a run records of itself before its first step: what a
// resume compares with (the module and the parameters) and whether the run
// was itself a resume.
type Info struct {
	RunID        string          `json:"run_id"`
	Module       string          `json:"module"`
	ModuleSHA256 string          `json:"module_sha256"`
	Params       json.RawMessage `json:"params"`
	Started      time.Time       `json:"started"`
	// Resumes lists the earlier runs of the run directory whose results the
	// run may answer steps with (empty for a run that is no resume).
	Resumes []string `json:"resumes,omitempty"`
}

// WriteInfo writes a run's info into the run directory, atomically and
// synced.
func WriteInfo(runDir string, info Info) error {
	if len(info.Params) == 0 {
		info.Params = json.RawMessage("{}")
	}
	b, err := step.MarshalJSON(info, true)
	if err == nil {
		err = rundir.WriteFile(runDir, InfoPath(info.RunID), append(b, '\n'))
	}
	if err != nil {
		return fmt.Errorf("run info: %w", err)
	}
	return nil
}

// Journal appends results to a run's journal. Each line is written with
// one write call and synced, so a crash loses at most the line being written.
type Journal struct {
	mu    sync.Mutex
	f     *os.File
	runID []byte // the JSON of the run's id, which starts every line
	err   error  // the first write error; later results are not written
}

// Open creates the journal of run runID in a run directory; it must not
// exist yet.
func Open(runDir, runID string) (*Journal, error) {
	f, err := rundir.CreateFile(runDir, Path(runID), os.O_APPEND|os.O_EXCL)
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

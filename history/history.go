// Package history reads what runs left in their run directories, for
// `wflow runs`, `wflow show`, `wflow logs` and `wflow report`: which runs
// there are, how each ended (its own report), and, for a run still going or
// one whose wflow was killed, what its info and journal say so far. It
// only reads, through package rundir: a run directory's files are treated
// as hostile.
package history

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/wflow/wflow/containers"
	"github.com/wflow/wflow/journal"
	"github.com/wflow/wflow/report"
	"github.com/wflow/wflow/rundir"
	"github.com/wflow/wflow/step"
)

// Statuses of a run that has no report (beside those of runtime.Status*:
// succeeded, failed, trapped, timeout, limit, cancelled).
const (
	StatusRunning    = "running"    // a wflow process holds its run directory now
	StatusUnfinished = "unfinished" // its wflow ended without a report: killed, or the machine went down
)

// Run is one run, as its records tell.
type Run struct {
	ID         string    `json:"id"`
	Dir        string    `json:"rundir"` // its run directory, absolute
	Module     string    `json:"module"`
	Status     string    `json:"status"`
	ExitCode   *uint32   `json:"exit_code,omitempty"` // the module's; absent until the run has ended
	Started    time.Time `json:"started"`
	Finished   time.Time `json:"finished,omitzero"`
	DurationMS int64     `json:"duration_ms"` // to now for a running run
	Steps      int       `json:"steps"`       // finished so far
	Failed     int       `json:"failed"`      // of those, not ok (refused, failed, cancelled)
}

// MaxDirs caps the folders List looks through.
const MaxDirs = 100_000

// List returns the runs of the run directories named in paths, newest
// first. Each path is a run directory, or a folder of them (./runs, where
// `wflow run` puts them without --rundir). A folder that holds no runs is
// skipped; problems reading one are returned beside the runs found.
func List(paths []string) ([]Run, []error) {
	var runs []Run
	var errs []error
	seen := map[string]bool{}
	for _, p := range paths {
		dirs, err := runDirs(p)
		if err != nil {
			errs = append(errs, err)
		}
		for _, dir := range dirs {
			if seen[dir] {
				continue
			}
			seen[dir] = true
			found, err := inDir(dir)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", dir, err))
			}
			runs = append(runs, found...)
		}
	}
	sort.SliceStable(runs, func(i, j int) bool {
		if !runs[i].Started.Equal(runs[j].Started) {
			return runs[i].Started.After(runs[j].Started)
		}
		return runs[i].ID > runs[j].ID
	})
	return runs, errs
}

// runDirs is p itself when it is a run directory, else its subfolders
// that are.
func runDirs(p string) ([]string, error) {
	abs, err := filepath.Abs(p)
	if err != nil {
		return nil, err
	}
	if isRunDir(abs) {
		return []string{abs}, nil
	}
	f, err := os.Open(abs)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	entries, err := f.ReadDir(MaxDirs)
	if err != nil && len(entries) == 0 {
		return nil, fmt.Errorf("%s: %w", p, err)
	}
	var dirs []string
	for _, e := range entries {
		if d := filepath.Join(abs, e.Name()); e.IsDir() && isRunDir(d) {
			dirs = append(dirs, d)
		}
	}
	return dirs, nil
}

// isRunDir reports whether dir holds wflow's records of runs: a folder
// .wflow/runs, no link on the way.
func isRunDir(dir string) bool {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return false
	}
	defer root.Close()
	f, err := rundir.OpenFolder(root, journal.RunsDir, false)
	if err != nil {
		return false
	}
	f.Close()
	return true
}

// inDir returns the runs of one run directory.
func inDir(dir string) ([]Run, error) {
	infos, err := journal.Runs(dir)
	if err != nil {
		return nil, err
	}
	live := rundir.Locked(dir)
	var runs []Run
	for i, info := range infos {
		runs = append(runs, describe(dir, info, live && i == len(infos)-1))
	}
	return runs, nil
}

// describe is a run's line: from its report when it has one, else from
// its info and journal.
func describe(dir string, info journal.Info, newestAndLive bool) Run {
	run := Run{ID: info.RunID, Dir: dir, Module: info.Module, Started: info.Started}
	if rep, err := report.ReadSummary(dir, info.RunID); err == nil {
		run.Module, run.Status, run.Started, run.Finished = rep.Module, rep.Status, rep.Started, rep.Finished
		code := rep.ExitCode
		run.ExitCode, run.DurationMS = &code, rep.DurationMS
		run.Steps, run.Failed = rep.Steps, rep.Failed
		return run
	}
	run.Status = StatusUnfinished
	if newestAndLive {
		run.Status = StatusRunning
	}
	results, _ := Results(dir, info.RunID)
	run.Steps = len(results)
	for _, r := range results {
		if !r.OK() {
			run.Failed++
		}
		if r.Finished.After(run.Finished) {
			run.Finished = r.Finished
		}
	}
	switch {
	case run.Status == StatusRunning && !run.Started.IsZero():
		run.DurationMS = time.Since(run.Started).Milliseconds()
		run.Finished = time.Time{}
	case !run.Started.IsZero() && run.Finished.After(run.Started):
		run.DurationMS = run.Finished.Sub(run.Started).Milliseconds() // to its last step's end
	}
	return run
}

// Results returns a run's results from its journal, in the order they
// finished.
func Results(dir, runID string) ([]step.ExecResult, error) {
	byHandle, err := journal.Results(dir, runID)
	var out []step.ExecResult
	for _, r := range byHandle {
		out = append(out, r)
	}
	SortResults(out)
	return out, err
}

// SortResults sorts results by when they finished, then by handle.
func SortResults(rs []step.ExecResult) {
	sort.SliceStable(rs, func(i, j int) bool {
		if !rs[i].Finished.Equal(rs[j].Finished) {
			return rs[i].Finished.Before(rs[j].Finished)
		}
		return rs[i].Handle < rs[j].Handle
	})
}

// ErrNoRun is wrapped when Find finds no run.
var ErrNoRun = errors.New("no such run")

// Find resolves what a user names a run by: a run directory (its newest
// run), or a run id or the start of one, looked for in the run directories
// of paths (as List). An id that starts more than one run is an error
// naming them.
func Find(arg string, paths []string) (Run, error) {
	if arg == "" {
		return Run{}, fmt.Errorf("%w: give a run id or a run directory", ErrNoRun)
	}
	if abs, err := filepath.Abs(arg); err == nil && isRunDir(abs) {
		runs, err := inDir(abs)
		if err != nil {
			return Run{}, fmt.Errorf("%s: %w", arg, err)
		}
		if len(runs) == 0 {
			return Run{}, fmt.Errorf("%w: %s holds no run", ErrNoRun, arg)
		}
		return runs[len(runs)-1], nil
	}
	if strings.ContainsAny(arg, `/\`) {
		return Run{}, fmt.Errorf("%w: %s is not a run directory", ErrNoRun, arg)
	}
	runs, _ := List(paths)
	var match []Run
	for _, r := range runs {
		if r.ID == arg {
			return r, nil
		}
		if strings.HasPrefix(r.ID, arg) {
			match = append(match, r)
		}
	}
	switch len(match) {
	case 0:
		var missing []string
		for _, p := range paths {
			if _, err := os.Stat(p); err != nil {
				missing = append(missing, p)
			}
		}
		if len(missing) > 0 {
			return Run{}, fmt.Errorf("%w: %q: %s does not exist here (give the run directory, or --dir the folder of run directories)", ErrNoRun, arg, strings.Join(missing, ", "))
		}
		return Run{}, fmt.Errorf("%w: %q is no run id in %s (give the run directory, or --dir the folder of run directories)", ErrNoRun, arg, strings.Join(paths, ", "))
	case 1:
		return match[0], nil
	}
	ids := make([]string, 0, len(match))
	for _, r := range match[:min(len(match), 5)] {
		ids = append(ids, r.ID)
	}
	return Run{}, fmt.Errorf("%q starts %d run ids (%s): give more of it", arg, len(match), strings.Join(ids, ", "))
}

// Load returns a run's report: its own when it has one, else one made from
// its info and journal (Status running or unfinished; no output, and only
// the decisions of steps that finished).
func Load(run Run) (report.Report, error) {
	if rep, err := report.Read(run.Dir, run.ID); err == nil {
		return rep, nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return report.Report{}, err
	}
	rep := report.Report{RunID: run.ID, RunDir: run.Dir, Module: run.Module, Started: run.Started, Finished: run.Finished,
		DurationMS: run.DurationMS, Status: run.Status, Journal: journal.Path(run.ID), ModuleLog: journal.ModuleLogPath(run.ID)}
	infos, err := journal.Runs(run.Dir)
	if err == nil {
		for _, info := range infos {
			if info.RunID == run.ID {
				rep.Params, rep.ModuleSHA256, rep.Resumes = info.Params, info.ModuleSHA256, info.Resumes
			}
		}
	}
	rep.Steps, err = Results(run.Dir, run.ID)
	if err != nil {
		return rep, err
	}
	for _, s := range rep.Steps {
		rep.Decisions = append(rep.Decisions, s.Decisions...)
	}
	switch run.Status {
	case StatusUnfinished:
		rep.Message = "wflow ended without finishing this run (killed, or the machine went down): these are the results its journal kept; `wflow run --resume " + run.Dir + "` continues it"
	case StatusRunning:
		rep.Message = "the run is still going: these are the steps finished so far"
	}
	return rep, nil
}

// Running reports whether the run is the one a wflow process runs now.
func Running(run Run) bool {
	if !rundir.Locked(run.Dir) {
		return false
	}
	infos, err := journal.Runs(run.Dir)
	return err == nil && len(infos) > 0 && infos[len(infos)-1].RunID == run.ID
}

// stepFolder matches a step folder's name to a step, by name or (name "")
// by handle: "0007-name", or "0007-name-<run id>" for every run of a run
// directory but its first, each maybe with "-attempt<n>". others are the
// ids of the directory's other runs, whose folders a first run's must not
// be taken for.
func stepFolder(entry, name string, handle uint32, suffix string, others []string) bool {
	digits, rest, ok := strings.Cut(entry, "-")
	if !ok || len(digits) < 4 || strings.Trim(digits, "0123456789") != "" {
		return false
	}
	if j := strings.LastIndex(rest, "-attempt"); j >= 0 {
		if n := rest[j+len("-attempt"):]; n != "" && strings.Trim(n, "0123456789") == "" {
			rest = rest[:j]
		}
	}
	if suffix != "" {
		var had bool
		if rest, had = strings.CutSuffix(rest, "-"+suffix); !had {
			return false
		}
	} else {
		for _, id := range others {
			if strings.HasSuffix(rest, "-"+id) {
				return false
			}
		}
	}
	if name == "" {
		h, err := strconv.ParseUint(digits, 10, 32)
		return err == nil && uint32(h) == handle
	}
	return rest == name
}

// LiveStepFolders returns the step folders of a running run's steps named
// name, or (name "") of its step handle (relative to the run directory, in
// handle and attempt order): where their output goes while they run,
// before their results name the files.
func LiveStepFolders(run Run, name string, handle uint32) []string {
	suffix := run.ID
	var others []string
	infos, _ := journal.Runs(run.Dir)
	for i, info := range infos {
		if info.RunID != run.ID {
			others = append(others, info.RunID)
		} else if i == 0 {
			suffix = "" // the first run of a run directory names its folders without its id
		}
	}
	root, err := os.OpenRoot(run.Dir)
	if err != nil {
		return nil
	}
	defer root.Close()
	f, err := rundir.OpenFolder(root, containers.StepsDir, false) // no link followed, no FIFO opened
	if err != nil {
		return nil
	}
	defer f.Close()
	entries, _ := f.ReadDir(MaxDirs)
	var out []string
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		if stepFolder(e.Name(), name, handle, suffix, others) {
			out = append(out, filepath.Join(containers.StepsDir, e.Name()))
		}
	}
	slices.Sort(out)
	return out
}

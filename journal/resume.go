package journal

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"sort"
	"sync"

	"github.com/wflow/wflow/rundir"
	"github.com/wflow/wflow/step"
)

// Caps on what Load reads: the run directory is written by steps (not its
// records, which they see read-only, but a user may hand wflow any folder),
// so nothing in it may make wflow read without end.
const (
	MaxRuns         = 10_000    // earlier runs in a run directory
	MaxLine         = 16 << 20  // bytes of one journal line
	MaxJournalBytes = 1 << 30   // bytes of all the journals a resume reads
	MaxInfoBytes    = 16 << 20  // bytes of a run.json
	MaxRecords      = 1_000_000 // results a resume keeps
)

// Record is one result of an earlier run, as its journal holds it.
type Record struct {
	RunID  string
	Result step.ExecResult
}

// Resume is what `wflow run --resume` continues: the results of the earlier
// runs of a run directory that can answer a step again. It is safe for
// concurrent use.
type Resume struct {
	runs []Info // the chain, oldest first (see Load)

	mu      sync.Mutex
	waiting map[stepKey][]Record // by step name and key, oldest first
	left    int
	skipped int // lines that were not results (a torn last line, ...)
}

type stepKey struct{ name, key string }

// ErrNothingToResume is returned by Load for a run directory without a
// journal of an earlier run.
var ErrNothingToResume = errors.New("no earlier run to resume: the run directory has no journal (.wflow/runs/*/results.jsonl)")

// Load reads the earlier runs of a run directory and keeps the results that
// can answer a step again: each result that succeeded, has a key and ran
// (or came from the step cache) in one of the runs a resume continues. Those
// are the newest run and, when that run was itself a resume, the runs its
// info lists as continued: a plain `wflow run` in a reused run directory
// starts a new history. A result that was itself resumed is not kept twice:
// the run that ran it has it.
//
// A line of a journal that is not a whole result (the last line of a run
// that was killed while writing it, a line over MaxLine) is skipped.
func Load(runDir string) (*Resume, error) {
	root, err := os.OpenRoot(runDir)
	if err != nil {
		return nil, err
	}
	defer root.Close()
	runs, err := listRuns(root)
	if err != nil {
		return nil, err
	}
	if len(runs) == 0 {
		return nil, ErrNothingToResume
	}
	newest := runs[len(runs)-1]
	byID := map[string]Info{}
	for _, run := range runs {
		byID[run.RunID] = run
	}
	var chain []Info
	for _, id := range newest.Resumes {
		if run, ok := byID[id]; ok && id != newest.RunID {
			chain = append(chain, run)
			delete(byID, id) // listed twice, read once
		}
	}
	chain = append(chain, newest)
	r := &Resume{runs: chain, waiting: map[stepKey][]Record{}}
	budget := int64(MaxJournalBytes)
	for _, info := range chain {
		if err := r.read(root, info.RunID, &budget); err != nil {
			return nil, err
		}
	}
	return r, nil
}

// Runs returns the runs of a run directory, oldest first: those with a
// results journal or an info.
func Runs(runDir string) ([]Info, error) {
	root, err := os.OpenRoot(runDir)
	if err != nil {
		return nil, err
	}
	defer root.Close()
	return listRuns(root)
}

// HasCalls reports whether run runID of a run directory has a calls
// journal (a regular file).
func HasCalls(runDir, runID string) bool {
	root, err := os.OpenRoot(runDir)
	if err != nil {
		return false
	}
	defer root.Close()
	return isRegular(root, CallsPath(runID))
}

// HasIncompleteCalls reports whether run runID's calls journal could not be
// written whole (IncompleteCallsPath).
func HasIncompleteCalls(runDir, runID string) bool {
	root, err := os.OpenRoot(runDir)
	if err != nil {
		return false
	}
	defer root.Close()
	return isRegular(root, IncompleteCallsPath(runID))
}

// Newest returns the newest run of a run directory that has a journal, if
// there is one (it neither creates nor locks anything).
func Newest(runDir string) (Info, bool) {
	root, err := os.OpenRoot(runDir)
	if err != nil {
		return Info{}, false
	}
	defer root.Close()
	runs, err := listRuns(root)
	if err != nil || len(runs) == 0 {
		return Info{}, false
	}
	return runs[len(runs)-1], true
}

// listRuns returns the runs of the run directory that have a journal or an
// info (regular files: a link or a FIFO in their place is not read), oldest
// first: by the start their info records (a run without one, of an older
// wflow, by its id, which starts with its start time).
func listRuns(root *os.Root) ([]Info, error) {
	dir, err := root.Open(RunsDir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer dir.Close()
	entries, err := dir.ReadDir(MaxRuns + 1)
	if err != nil && err != io.EOF {
		return nil, err
	}
	if len(entries) > MaxRuns {
		return nil, fmt.Errorf("%s holds over %d runs", RunsDir, MaxRuns)
	}
	var runs []Info
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		id := e.Name()
		hasJournal, hasInfo := isRegular(root, Path(id)), isRegular(root, InfoPath(id))
		if !hasJournal && !hasInfo {
			continue
		}
		info := Info{RunID: id}
		if f, err := rundir.OpenRegular(root, InfoPath(id)); hasInfo && err == nil {
			b, err := rundir.ReadAll(f, InfoPath(id), MaxInfoBytes)
			f.Close()
			if err == nil && json.Unmarshal(b, &info) == nil {
				info.RunID = id
			} else {
				info = Info{RunID: id}
			}
		}
		runs = append(runs, info)
	}
	sort.SliceStable(runs, func(i, j int) bool {
		a, b := runs[i], runs[j]
		if !a.Started.IsZero() && !b.Started.IsZero() && !a.Started.Equal(b.Started) {
			return a.Started.Before(b.Started)
		}
		return a.RunID < b.RunID
	})
	return runs, nil
}

// isRegular reports whether rel is a regular file, not following a link.
func isRegular(root *os.Root, rel string) bool {
	info, err := root.Lstat(rel)
	return err == nil && info.Mode().IsRegular()
}

// read keeps the results of one run's journal that can answer a step. A
// run without one (killed before it opened it) has none.
func (r *Resume) read(root *os.Root, runID string, budget *int64) error {
	skipped, err := eachLine(root, Path(runID), budget, r.keep)
	r.skipped += skipped
	return err
}

// Results returns the results of run runID's journal by handle, as the
// journal keeps them (step.ExecResult.ForReport); lines that are not whole
// results are skipped.
func Results(runDir, runID string) (map[uint32]step.ExecResult, error) {
	root, err := os.OpenRoot(runDir)
	if err != nil {
		return nil, err
	}
	defer root.Close()
	out := map[uint32]step.ExecResult{}
	budget := int64(MaxJournalBytes)
	_, err = eachLine(root, Path(runID), &budget, func(line []byte) error {
		if res, ok := parseResult(line); ok {
			if len(out) >= MaxRecords {
				return fmt.Errorf("%s holds over %d results", Path(runID), MaxRecords)
			}
			out[res.Handle] = res.ExecResult
		}
		return nil
	})
	return out, err
}

// eachLine calls fn with each line of the journal rel (with its newline; a
// last line without one too), skipping lines over MaxLine, within budget
// bytes; a missing journal has no lines. It returns how many it skipped.
func eachLine(root *os.Root, rel string, budget *int64, fn func(line []byte) error) (skipped int, err error) {
	if !isRegular(root, rel) {
		return 0, nil
	}
	f, err := rundir.OpenRegular(root, rel)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	lines := bufio.NewReaderSize(io.LimitReader(f, *budget+1), 64<<10)
	var line []byte
	long := false // the line is over MaxLine: skipped
	for {
		chunk, err := lines.ReadSlice('\n')
		*budget -= int64(len(chunk))
		if *budget < 0 {
			return skipped, fmt.Errorf("the journals of the run directory hold over %d bytes", MaxJournalBytes)
		}
		if !long && len(line)+len(chunk) > MaxLine {
			long, line = true, line[:0]
		}
		if !long {
			line = append(line, chunk...)
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		if long {
			skipped++
			long = false
		}
		if err != nil && err != io.EOF {
			return skipped, fmt.Errorf("%s: %w", rel, err)
		}
		if len(line) > 0 {
			if err := fn(line); err != nil {
				return skipped, err
			}
		}
		line = line[:0]
		if err == io.EOF {
			return skipped, nil
		}
	}
}

// journalLine is a line of a results journal.
type journalLine struct {
	RunID string `json:"run_id"`
	step.ExecResult
}

// parseResult parses a whole line of a results journal.
func parseResult(line []byte) (journalLine, bool) {
	var rec journalLine
	ok := bytes.HasSuffix(line, []byte("\n")) && json.Unmarshal(line, &rec) == nil && rec.RunID != "" && rec.Step != ""
	return rec, ok
}

// keep adds a journal line's result, when it can answer a step.
func (r *Resume) keep(line []byte) error {
	rec, ok := parseResult(line)
	if !ok {
		r.skipped++
		return nil
	}
	res := rec.ExecResult
	if !res.OK() || res.Key == "" || res.Resumed {
		return nil
	}
	if r.left >= MaxRecords {
		return fmt.Errorf("the journals of the run directory hold over %d results", MaxRecords)
	}
	k := stepKey{res.Step, res.Key}
	r.waiting[k] = append(r.waiting[k], Record{RunID: rec.RunID, Result: res})
	r.left++
	return nil
}

// Take returns the oldest result left of a step with this name and key,
// and uses it up: a step the module runs twice is answered twice only if it
// ran twice before.
func (r *Resume) Take(name, key string) (Record, bool) {
	if key == "" {
		return Record{}, false
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	k := stepKey{name, key}
	list := r.waiting[k]
	if len(list) == 0 {
		return Record{}, false
	}
	rec := list[0]
	if len(list) == 1 {
		delete(r.waiting, k)
	} else {
		r.waiting[k] = list[1:]
	}
	r.left--
	return rec, true
}

// Runs returns the runs the resume continues, oldest first.
func (r *Resume) Runs() []Info { return r.runs }

// Last returns the newest of them.
func (r *Resume) Last() Info { return r.runs[len(r.runs)-1] }

// Left returns how many results can still answer a step.
func (r *Resume) Left() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.left
}

// Skipped returns how many journal lines were not whole results.
func (r *Resume) Skipped() int { return r.skipped }

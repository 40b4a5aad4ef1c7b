package replay

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/wflow/wflow/abi"
	"github.com/wflow/wflow/journal"
	"github.com/wflow/wflow/rundir"
	"github.com/wflow/wflow/runtime"
	"github.com/wflow/wflow/step"
)

// Config is what Run replays.
type Config struct {
	RunDir string // the run directory
	RunID  string // the run to replay; "" for the newest with a calls journal
	Module []byte // the module to run against the journal (the run's, or an edited one)
	// MemoryLimitMiB, Timeout and CacheDir are as for a run
	// (runtime.Config); Timeout 0 is none; MemoryLimitMiB 0 is the run's.
	MemoryLimitMiB uint32
	Timeout        time.Duration
	CacheDir       string
	// Stdout and Stderr receive the module's own output; nil discards it.
	Stdout, Stderr io.Writer
}

// Result is what a replay found.
type Result struct {
	RunID                string `json:"run_id"`
	ModuleSHA256         string `json:"module_sha256"`          // the module replayed
	RecordedModuleSHA256 string `json:"recorded_module_sha256"` // the run's module
	Calls                int    `json:"calls"`                  // calls the journal holds
	Matched              int    `json:"matched"`                // calls the module made the same, in order
	// Complete is false when the journal ends before the module did (the
	// run was killed, interrupted or timed out): its prefix was replayed.
	Complete   bool        `json:"complete"`
	Torn       bool        `json:"torn"` // the journal's last line was cut off, and dropped
	OK         bool        `json:"ok"`   // the module made the same calls, to the end of the journal
	Divergence *Divergence `json:"divergence,omitempty"`
	ExitCode   uint32      `json:"exit_code"` // the module's exit code in the replay
	// Continues says whether a resume of the run may use this module: it
	// made the same calls, or it first differs where the run's module
	// asked for a step that did not succeed (a resume runs that step
	// again, so no result of the run is used for a decision it does not
	// make).
	Continues bool `json:"continues"`
}

// ErrNoJournal is returned by Run for a run without a calls journal.
var ErrNoJournal = errors.New("no calls journal (.wflow/runs/<run>/calls.jsonl): the run was made by a wflow that did not record one")

// Run replays a run of a run directory: it runs the module with the run's
// clocks and random bytes, the run directory read-only, and a host that
// answers each wflow_v1 call from the run's calls journal after checking it
// is the call the run's module made. No engine is needed. The error is for
// what keeps the replay from running (no journal, an invalid module); a
// module that decides differently is a Result with a Divergence.
func Run(ctx context.Context, cfg Config) (Result, error) {
	id, err := pick(cfg.RunDir, cfg.RunID)
	if err != nil {
		return Result{}, err
	}
	rec, err := journal.ReadCalls(cfg.RunDir, id)
	if err != nil {
		return Result{}, err
	}
	if rec.Overflow {
		return Result{}, fmt.Errorf("run %s read more clock values or random bytes than its calls journal keeps (%d readings, %d MiB): it cannot be replayed exactly", id, journal.MaxClockReadings, journal.MaxRandomBytes>>20)
	}
	results, err := journal.Results(cfg.RunDir, id)
	if err != nil {
		return Result{}, err
	}
	root, err := os.OpenRoot(cfg.RunDir)
	if err != nil {
		return Result{}, err
	}
	defer root.Close()
	sum := sha256.Sum256(cfg.Module)
	res := Result{RunID: id, ModuleSHA256: hex.EncodeToString(sum[:]), RecordedModuleSHA256: rec.Header.ModuleSHA256,
		Calls: len(rec.Calls), Torn: rec.Torn}

	memory := cfg.MemoryLimitMiB
	if memory == 0 {
		memory = rec.Header.MemoryLimitMiB
	}
	if memory == 0 || memory > 4096 {
		memory = runtime.DefaultMemoryLimitMiB
	}
	mod, err := runtime.Compile(ctx, runtime.Config{
		RunDir:         cfg.RunDir,
		Records:        rundir.Records,
		MemoryLimitMiB: memory,
		Timeout:        cfg.Timeout,
		CacheDir:       cfg.CacheDir,
		Args:           rec.Header.Args,
		Stdout:         cfg.Stdout,
		Stderr:         cfg.Stderr,
		Pretend:        true,
	}, cfg.Module)
	if err != nil {
		return res, err
	}
	defer mod.Close(ctx)
	host := NewHost(rec, results, root)
	outcome, err := mod.Run(ctx, host, Replaying(rec, func() int { return host.answered }))
	if err != nil {
		return res, err
	}
	if host.broken != nil {
		return res, fmt.Errorf("the journal cannot give back what the run's module got at %w", host.broken)
	}
	res.ExitCode = outcome.ExitCode
	res.Matched = host.answered
	if host.div != nil {
		res.Matched = int(host.div.Call) - 1
	}
	res.Divergence = host.div
	switch {
	case host.div != nil:
	case host.pastEnd:
	case outcome.Status == runtime.StatusTimeout || outcome.Status == runtime.StatusCancelled:
		return res, fmt.Errorf("the replay did not finish: %s", outcome.Message)
	case host.next < len(rec.Calls):
		next := rec.Calls[host.next]
		res.Divergence = &Divergence{Call: int64(host.answered) + 1, Function: next.Fn, Step: next.Step, Recorded: &next,
			Reason: fmt.Sprintf("the module ended (%s) after %d calls; the run's module made %d", outcome.Status, host.answered, len(rec.Calls))}
	case ended(rec) && (outcome.ExitCode != rec.End.ExitCode || outcome.Status != rec.End.Status && rec.End.Status != runtime.StatusLimit):
		res.Divergence = &Divergence{Call: int64(host.answered) + 1, Function: "(exit)",
			Reason: fmt.Sprintf("the module ended %s with code %d (%s); the run's module ended %s with code %d", outcome.Status, outcome.ExitCode, outcome.Message, rec.End.Status, rec.End.ExitCode)}
	}
	res.Complete = ended(rec) && !host.pastEnd
	res.OK = res.Divergence == nil
	res.Continues = res.OK || replacesAFailure(res.Divergence, results)
	return res, nil
}

// replacesAFailure reports whether a divergence leaves the run's history
// as the module would have made it: at a call where the run's module
// submitted a step that did not succeed, or after the run's module ended
// (the module made the same calls, then more, or ended otherwise).
func replacesAFailure(d *Divergence, results map[uint32]step.ExecResult) bool {
	if d == nil {
		return false
	}
	if d.Recorded == nil || d.Function == "(exit)" {
		return true
	}
	switch d.Recorded.Fn {
	case abi.FuncStepSubmit, abi.FuncStepRun, abi.FuncNotebookSubmit, abi.FuncNotebookRun, abi.FuncNotebookBuild:
		if d.Recorded.Errno != 0 { // refused (an invalid spec, over --max-steps): it never ran
			return true
		}
		if d.Recorded.Ans == nil || d.Recorded.Ans.Handle == nil {
			return false
		}
		res, ok := results[*d.Recorded.Ans.Handle]
		return !ok || !res.OK()
	}
	return false
}

// ended reports whether the journal saw the module end by itself: not
// killed (the journal then stops at a crash), nor cut short by a timeout
// or an interrupt, after which the module would have gone on.
func ended(rec *journal.Recorded) bool {
	return rec.End != nil && rec.End.Status != runtime.StatusTimeout && rec.End.Status != runtime.StatusCancelled
}

// pick returns id, or the newest run of the run directory with a calls
// journal.
func pick(runDir, id string) (string, error) {
	if id != "" {
		if journal.HasIncompleteCalls(runDir, id) {
			return "", fmt.Errorf("run %s: %w", id, journal.ErrIncompleteCalls)
		}
		if !journal.HasCalls(runDir, id) {
			return "", fmt.Errorf("run %s: %w", id, ErrNoJournal)
		}
		return id, nil
	}
	runs, err := journal.Runs(runDir)
	if err != nil {
		return "", err
	}
	for i := len(runs) - 1; i >= 0; i-- {
		switch id := runs[i].RunID; {
		case journal.HasCalls(runDir, id):
			return id, nil
		case journal.HasIncompleteCalls(runDir, id):
			return "", fmt.Errorf("run %s: %w", id, journal.ErrIncompleteCalls)
		}
	}
	return "", ErrNoJournal
}

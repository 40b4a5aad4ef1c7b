package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/pflag"

	"github.com/wflow/wflow/internal/termsafe"
	"github.com/wflow/wflow/journal"
	"github.com/wflow/wflow/replay"
	"github.com/wflow/wflow/runtime"
)

const replayUsage = `Usage: wflow replay RUNDIR [MODULE.wasm] [flags]

Runs a workflow module again against the calls journal of a run in RUNDIR,
with no engine and no waiting: every call the module makes must be the call
the run's module made at that point (the same function, step spec, handles,
log line or output), and gets the answer it got then; the clocks and random
bytes are the run's, the run directory is read-only. MODULE.wasm defaults
to the run's module; give an edited one to check that it still decides the
same on that run.

Exit code 0 when the module made the same calls to the end of the journal
(for a run that was killed or interrupted, to where its journal stops);
1 at the first divergence, which is printed (call number, function, step,
both requests, the fields of the step spec that differ); 2 for bad usage or
an invalid module; 4 when the journal cannot be read.

Flags:
`

func replayCommand(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := pflag.NewFlagSet("wflow replay", pflag.ContinueOnError)
	fs.SortFlags = false
	runID := fs.String("run", "", "the run `ID` to replay (default: the newest run of RUNDIR with a calls journal)")
	asJSON := fs.Bool("json", false, "print the result as one JSON object")
	output := fs.Bool("show-output", false, "print the module's own stdout and stderr")
	timeout := fs.Duration("timeout", 10*time.Minute, "wall-clock limit of the replay (0: none)")
	memoryMiB := fs.Uint32("max-memory", 0, "memory limit of the module in MiB (default: the run's --max-memory)")
	cacheDir := fs.String("cache-dir", runtime.DefaultCacheDir(), "wflow's cache folder (compiled modules)")
	if code, done := parseFlags(fs, args, replayUsage, stdout, stderr); done {
		return code
	}
	if fs.NArg() < 1 || fs.NArg() > 2 {
		fmt.Fprintf(stderr, "wflow replay: want RUNDIR [MODULE.wasm], got %d arguments\n(see wflow replay --help)\n", fs.NArg())
		return exitUsage
	}
	runDir := fs.Arg(0)
	modulePath := fs.Arg(1)
	var wasm []byte
	if modulePath == "" {
		var err error
		if modulePath, wasm, err = recordedModule(runDir, *runID); err != nil {
			fmt.Fprintf(stderr, "wflow replay: %s\n", termsafe.Escape(err.Error()))
			if errors.Is(err, replay.ErrNoJournal) || errors.Is(err, journal.ErrIncompleteCalls) {
				return exitHostError
			}
			return exitUsage
		}
	} else {
		var err error
		if wasm, err = readInput(modulePath, maxModuleFile); err != nil {
			fmt.Fprintf(stderr, "wflow replay: %v\n", err)
			return exitUsage
		}
	}
	cfg := replay.Config{RunDir: runDir, RunID: *runID, Module: wasm, MemoryLimitMiB: *memoryMiB, Timeout: *timeout, CacheDir: *cacheDir}
	if *output {
		cfg.Stdout, cfg.Stderr = stderr, stderr
	}
	res, err := replay.Run(ctx, cfg)
	if err != nil {
		fmt.Fprintf(stderr, "wflow replay: %s\n", termsafe.Escape(err.Error()))
		var invalid *runtime.InvalidModuleError
		if errors.As(err, &invalid) {
			return exitUsage
		}
		return exitHostError
	}
	if *asJSON {
		b, _ := json.MarshalIndent(res, "", "  ")
		fmt.Fprintf(stdout, "%s\n", b)
	} else {
		writeReplay(stdout, res, modulePath)
	}
	if !res.OK {
		return exitFailed
	}
	return exitOK
}

// writeReplay prints a replay's result for a person.
func writeReplay(w io.Writer, res replay.Result, modulePath string) {
	module := "the run's module"
	if res.ModuleSHA256 != res.RecordedModuleSHA256 {
		module = fmt.Sprintf("%s (not the run's module: sha256 %.12s, the run's %.12s)", termsafe.Escape(modulePath), res.ModuleSHA256, termsafe.Escape(res.RecordedModuleSHA256))
	}
	fmt.Fprintf(w, "replay of run %s with %s\n", res.RunID, module)
	if res.Torn {
		fmt.Fprintln(w, "the journal's last line was cut off (a crash while writing it) and was dropped")
	}
	switch {
	case res.Divergence != nil:
		res.Divergence.WriteText(w)
		fmt.Fprintf(w, "%d of %d calls were the same before it\n", res.Matched, res.Calls)
	case res.Complete:
		fmt.Fprintf(w, "ok: the module made the same %d calls and exited %d, as in the run\n", res.Calls, res.ExitCode)
	default:
		fmt.Fprintf(w, "ok: the module made the same %d calls as far as the journal goes (the run did not finish)\n", res.Matched)
	}
}

// recordedModule is the module a run ran, as its run.json names it: a
// regular file (the path comes from the run directory, not the user) whose
// SHA-256 is the one the run recorded.
func recordedModule(runDir, runID string) (string, []byte, error) {
	runs, err := journal.Runs(runDir)
	if err != nil {
		return "", nil, fmt.Errorf("%s: %w", runDir, err)
	}
	for i := len(runs) - 1; i >= 0; i-- {
		r := runs[i]
		if runID == "" && journal.HasIncompleteCalls(runDir, r.RunID) && !journal.HasCalls(runDir, r.RunID) {
			return "", nil, fmt.Errorf("run %s: %w", r.RunID, journal.ErrIncompleteCalls)
		}
		if (runID == "" && journal.HasCalls(runDir, r.RunID)) || r.RunID == runID {
			if r.Module == "" || !filepath.IsAbs(r.Module) {
				return "", nil, fmt.Errorf("run %s does not name its module by an absolute path: give MODULE.wasm", r.RunID)
			}
			if info, err := os.Stat(r.Module); err != nil || !info.Mode().IsRegular() {
				return "", nil, fmt.Errorf("run %s ran %s, which is no longer a file: give MODULE.wasm", r.RunID, r.Module)
			}
			wasm, err := readInput(r.Module, maxModuleFile)
			if err != nil {
				return "", nil, err
			}
			if sum := sha256.Sum256(wasm); hex.EncodeToString(sum[:]) != r.ModuleSHA256 {
				return "", nil, fmt.Errorf("run %s ran %s, which has changed since: give MODULE.wasm (the edited one, or the one the run ran)", r.RunID, r.Module)
			}
			return r.Module, wasm, nil
		}
	}
	return "", nil, fmt.Errorf("%s: %w", runDir, replay.ErrNoJournal)
}

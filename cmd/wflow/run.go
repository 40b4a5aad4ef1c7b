package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/spf13/pflag"
	"github.com/tidwall/gjson"

	"github.com/wflow/wflow/abi"
	"github.com/wflow/wflow/containers"
	"github.com/wflow/wflow/containers/engines"
	"github.com/wflow/wflow/containers/kubernetes"
	"github.com/wflow/wflow/hostfuncs"
	"github.com/wflow/wflow/internal/termsafe"
	"github.com/wflow/wflow/journal"
	"github.com/wflow/wflow/notebooks"
	"github.com/wflow/wflow/policies"
	"github.com/wflow/wflow/replay"
	"github.com/wflow/wflow/report"
	"github.com/wflow/wflow/rundir"
	"github.com/wflow/wflow/runtime"
	"github.com/wflow/wflow/secrets"
	"github.com/wflow/wflow/step"
	"github.com/wflow/wflow/stepcache"
	"github.com/wflow/wflow/trace"
)

// runOptions are the flags of `wflow run`.
type runOptions struct {
	engine        string
	engineOptions engines.Options
	params        []string
	paramsFile    string
	rundir        string
	resume        string
	forceResume   bool
	env           []string
	vars          []string
	parallel      int
	json          bool
	pull          string
	network       string
	timeout       time.Duration
	memoryMiB     uint32
	cacheDir      string
	noCache       bool
	cacheStrict   bool
	explain       bool

	maxSteps       int
	maxResultBytes string
	maxHandles     int

	policies       []string
	policyData     string // --policy-data: the data document of Rego policy.wasm files
	allowImages    []string
	allowRegistry  []string
	maxStepTimeout time.Duration
	maxStepCPUs    float64
	maxStepMemory  string

	notebookBase       string
	notebookDockerfile string
	buildNetwork       string
	buildTimeout       time.Duration

	stepTimeout time.Duration
	cpus        float64
	memory      string
	pids        int64
	readOnly    bool
	user        string
	allowRoot   bool
	secrets     []string
}

func runFlags(o *runOptions) *pflag.FlagSet {
	fs := pflag.NewFlagSet("wflow run", pflag.ContinueOnError)
	fs.SortFlags = false
	fs.StringVar(&o.engine, "engine", "", "container engine of the steps: "+engineUsage+" (default: $WFLOW_ENGINE, else docker; docs/scale-out.md)")
	addKubernetesFlags(fs, &o.engineOptions, true)
	fs.StringArrayVarP(&o.params, "param", "p", nil, "workflow parameter `key=value` (a string; repeatable; wins over --params)")
	fs.StringVar(&o.paramsFile, "params", "", "JSON `file` with a parameter object (typed values)")
	fs.StringVar(&o.rundir, "rundir", "", "run directory, mounted into every step at "+abi.RunDirMountPoint+" (default: a new folder under ./runs/)")
	fs.StringVar(&o.resume, "resume", "", "run again in run directory `RUNDIR`: each step that succeeded in its last run (and the runs that one resumed), with the same key, answers from there without a container (docs/durability.md)")
	fs.BoolVar(&o.forceResume, "force-resume", false, "with --resume and another module than the run's: resume without replaying the module against the run's journal first")
	fs.StringArrayVar(&o.env, "env", nil, "default environment variable `K=V` of every step; a step's env wins (repeatable)")
	fs.StringArrayVar(&o.vars, "var", nil, "fixed variable `name=value` substituted for $name in commands (repeatable)")
	fs.StringArrayVar(&o.secrets, "secret", nil, "secret `NAME=env:VAR` or NAME=file:PATH that steps name in their \"secrets\"; masked as *** in all wflow prints and records (repeatable; docs/secrets.md)")
	fs.IntVar(&o.parallel, "parallel", 4, "steps running at once")
	fs.BoolVar(&o.json, "json", false, "print one JSON event per line (run_started, step_started, output, log, step_finished, notice, run_finished) instead of text")
	fs.StringVar(&o.pull, "pull", "missing", "when to pull step images: missing, always or never")
	fs.StringVar(&o.network, "network", "none", "network mode of steps (Docker's; on kubernetes none or bridge), and the only one besides none a step may ask for")
	fs.DurationVar(&o.stepTimeout, "step-timeout", 0, "default wall-clock limit of a step, e.g. 10m (0: none)")
	fs.Float64Var(&o.cpus, "cpus", 0, "default CPU cores of a step, e.g. 1.5 (0: no limit)")
	fs.StringVar(&o.memory, "memory", "", "default memory limit of a step, e.g. 512m (none: no limit)")
	fs.Int64Var(&o.pids, "pids", 4096, "default limit of processes in a step (0: no limit)")
	fs.BoolVar(&o.readOnly, "read-only", false, "give every step a read-only root filesystem (the run directory and /tmp stay writable)")
	fs.StringVar(&o.policyData, "policy-data", "", "`FILE.json`: the data document (data.json) of every --policy that is a bare Rego policy.wasm (a bundle carries its own)")
	fs.StringArrayVar(&o.policies, "policy", nil, "policy `FILE` every step must pass, after the built-ins (repeatable, in order): a Wasm module of wflow's policy ABI, or a Rego bundle or policy.wasm from opa build -t wasm")
	fs.StringArrayVar(&o.allowImages, "allow-image", nil, "allow only step images matching this glob, e.g. 'wflow-test/*' or '*@sha256:*' (repeatable)")
	fs.StringArrayVar(&o.allowRegistry, "allow-registry", nil, "registry `HOST` wflow may pull missing images from (docker.io, ghcr.io, localhost:5000; '*' for any; repeatable). Without it, or a matching --allow-image, nothing is pulled")
	fs.DurationVar(&o.maxStepTimeout, "max-step-timeout", 0, "refuse steps whose timeout is over this, or unset (0: no ceiling)")
	fs.Float64Var(&o.maxStepCPUs, "max-step-cpus", 0, "refuse steps whose cpus are over this, or unset (0: no ceiling)")
	fs.StringVar(&o.maxStepMemory, "max-step-memory", "", "refuse steps whose memory is over this, or unset, e.g. 2g")
	fs.StringVar(&o.notebookBase, "notebook-base", notebooks.DefaultBase, "base image of notebook images")
	fs.StringVar(&o.buildNetwork, "build-network", "", "network mode of notebook image builds (pip runs there; default: --network, so none)")
	fs.DurationVar(&o.buildTimeout, "build-timeout", notebooks.DefaultBuildTimeout, "wall-clock limit of a notebook image build")
	fs.StringVar(&o.notebookDockerfile, "notebook-dockerfile", "", "Dockerfile template `file` of notebook images (default: the built-in one, docs/notebooks.md)")
	fs.StringVar(&o.user, "user", fmt.Sprintf("%d:%d", os.Getuid(), os.Getgid()), "default user of steps, uid[:gid] or name[:group]")
	fs.BoolVar(&o.allowRoot, "allow-root", false, "let steps ask for root or a user name (by default a step may only ask for a numeric non-root uid:gid besides --user)")
	fs.DurationVar(&o.timeout, "timeout", 24*time.Hour, "wall-clock limit of the whole workflow (0: none)")
	fs.Uint32Var(&o.memoryMiB, "max-memory", runtime.DefaultMemoryLimitMiB, "memory limit of the workflow module in MiB")
	fs.IntVar(&o.maxSteps, "max-steps", hostfuncs.DefaultMaxSteps, "steps the module may submit; past it the module is ended")
	fs.StringVar(&o.maxResultBytes, "max-result-bytes", fmt.Sprintf("%dm", hostfuncs.DefaultMaxResultBytes>>20), "bytes of answers (results, parameters) the module may read; past it the module is ended")
	fs.IntVar(&o.maxHandles, "max-handles", abi.MaxOpenHandles, "handles the module may hold open; past it submits fail with errno limit")
	fs.StringVar(&o.cacheDir, "cache-dir", runtime.DefaultCacheDir(), "wflow's cache folder: compiled modules (wazero/) and the step cache (steps/)")
	fs.BoolVar(&o.noCache, "no-cache", false, "neither answer steps from the step cache nor store them (docs/durability.md)")
	fs.BoolVar(&o.cacheStrict, "cache-strict", false, "fail every step the step cache cannot answer (error kind cache_miss) instead of running it")
	fs.BoolVar(&o.explain, "explain", false, "say for every step that ran why the step cache did not answer it")
	return fs
}

const runUsage = `Usage: wflow run MODULE.wasm [flags]

Runs the workflow module: its main decides which steps run, in which order,
with what environment. Steps are containers on the local Docker engine, or
on the engine --engine names.
Exit code 0 only when the module exits 0.

Flags:
`

// runCommand is `wflow run`: it resolves what the flags and the module ask
// for (nothing touches Docker or the disk before all of it is checked),
// wires the run (engine, run directory, journal, host functions), runs the
// module and finishes (report, exit code).
func runCommand(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	var o runOptions
	fs := runFlags(&o)
	if code, done := parseFlags(fs, args, runUsage, stdout, stderr); done {
		return code
	}
	if fs.NArg() != 1 {
		fmt.Fprintf(stderr, "wflow run: want one MODULE.wasm, got %d arguments\n(see wflow run --help)\n", fs.NArg())
		return exitUsage
	}
	r := &workflowRun{o: &o, fs: fs, modulePath: fs.Arg(0), stderr: stderr}
	defer r.close()
	if code := r.resolve(ctx, stdout); code != exitOK {
		return code
	}
	if code := r.wire(ctx); code != exitOK {
		return code
	}
	return r.execute(ctx)
}

// workflowRun is one `wflow run` as it is resolved, wired and run.
type workflowRun struct {
	o          *runOptions
	fs         *pflag.FlagSet // the flags as given
	modulePath string
	stderr     io.Writer

	// resolve
	set      runSettings
	runID    string
	runDir   string
	con      *console
	guestOut *lineWriter
	// guestStdout and guestStderr are the module's stdout and stderr:
	// guestOut and guestErr behind the masking of the run's secrets.
	guestStdout, guestStderr io.Writer
	guestErr                 *lineWriter
	module                   *runtime.Module
	chain                    policies.Chain

	// wire
	engine    engines.Engine
	info      containers.EngineInfo // the engine's name and version, for the report
	prep      preparedRunDir
	keepGuard bool // the nosuid mount stays for wflow gc (a sweep did not finish)
	journal   *journal.Journal
	trace     *trace.Writer      // .wflow/runs/<id>/trace.tsv
	moduleLog *journal.ModuleLog // .wflow/runs/<id>/module.log
	calls     *journal.Calls     // every call of the module, its clocks and random bytes: what wflow replay reads
	resume    *journal.Resume    // the earlier runs --resume continues; nil without it
	stepDirs  containers.StepDirs
	audit     *policies.Audit
	host      *hostfuncs.Host

	closers []func() // run in reverse by close
}

// close releases what the run holds, last acquired first.
func (r *workflowRun) close() {
	for i := len(r.closers) - 1; i >= 0; i-- {
		r.closers[i]()
	}
}

// resolve checks the flags, reads the files they name, compiles the module
// and loads the policies: everything that can fail without Docker. Exit
// code exitOK means go on.
func (r *workflowRun) resolve(ctx context.Context, stdout io.Writer) int {
	var err error
	if r.set, err = r.o.resolve(r.modulePath); err != nil {
		fmt.Fprintf(r.stderr, "wflow run: %v\n", err)
		return exitUsage
	}
	r.runID = newRunID()
	if r.o.resume == "" && r.fs.Changed("resume") {
		fmt.Fprintf(r.stderr, "wflow run: --resume: give the run directory to resume\n")
		return exitUsage
	}
	if r.o.forceResume && r.o.resume == "" {
		fmt.Fprintf(r.stderr, "wflow run: --force-resume goes with --resume\n")
		return exitUsage
	}
	if r.runDir, err = r.o.runDirectory(r.runID); err != nil {
		fmt.Fprintf(r.stderr, "wflow run: %v\n", err)
		return exitUsage
	}
	r.con = newConsole(stdout, r.o.json)
	r.con.explain = r.o.explain
	r.con.mask = r.set.secrets
	r.closers = append(r.closers, func() { r.con.Close() })
	r.guestOut, r.guestErr = r.con.guestOutput()
	// The module's own output is masked as a stream (a value may straddle
	// two of the console's line pieces); steps' streams come masked.
	r.guestStdout, r.guestStderr = r.set.secrets.Writer(r.guestOut), r.set.secrets.Writer(r.guestErr)
	r.module, err = runtime.Compile(ctx, runtime.Config{
		RunDir:         r.runDir,
		Records:        rundir.Records,
		MemoryLimitMiB: r.o.memoryMiB,
		Timeout:        r.o.timeout,
		CacheDir:       r.o.cacheDir,
		Args:           r.moduleArgs(),
		Stdout:         r.guestStdout,
		Stderr:         r.guestStderr,
	}, r.set.wasm)
	if err != nil {
		if ctx.Err() != nil {
			return interruptedBeforeStart(r.stderr)
		}
		fmt.Fprintf(r.stderr, "wflow run: %s: %s\n", r.modulePath, termsafe.Escape(err.Error()))
		return exitUsage
	}
	r.closers = append(r.closers, func() { r.module.Close(ctx) })
	chain, closePolicies, err := r.o.policyChain(ctx, r.set.limits, engines.HasServices(r.set.engine))
	if err != nil {
		if ctx.Err() != nil {
			return interruptedBeforeStart(r.stderr)
		}
		fmt.Fprintf(r.stderr, "wflow run: %v\n", err)
		return exitUsage
	}
	r.chain = chain
	r.closers = append(r.closers, closePolicies)
	return exitOK
}

// wire connects to the engine, removes what dead wflow processes left,
// prepares and takes the run directory, opens the journal and sets up the
// steps' runners and the host functions.
func (r *workflowRun) wire(ctx context.Context) int {
	engine, err := engines.Open(ctx, r.set.engine, r.o.engineOptions)
	if err == nil && ctx.Err() != nil {
		engine.Close()
	}
	if ctx.Err() != nil {
		return interruptedBeforeStart(r.stderr) // a ping cut short is no missing daemon
	}
	if err != nil {
		fmt.Fprintf(r.stderr, "wflow run: %v\n", err)
		return exitNoEngine
	}
	if k, ok := engine.(*kubernetes.Engine); ok {
		if err := k.CheckRunDir(ctx, r.runDir); err != nil {
			engine.Close()
			if ctx.Err() != nil {
				return interruptedBeforeStart(r.stderr)
			}
			fmt.Fprintf(r.stderr, "wflow run: %v\n", err)
			if r.o.rundir == "" && r.o.resume == "" {
				fmt.Fprintf(r.stderr, "wflow run: (the run directory is ./runs/<id> without --rundir: give one inside --k8s-volume-root)\n")
			}
			return exitUsage
		}
	}
	r.engine = engine
	r.info = engine.Info(ctx)
	for _, gap := range r.info.Gaps {
		r.con.notice("engine %s: %s (docs/security.md)", r.info.Name, gap)
	}
	r.closers = append(r.closers, func() { engine.Close() })
	// Created only now, so that a run refused above leaves no empty folder;
	// made ready while the engine lists what dead processes left, and
	// mounted nosuid,nodev once the mounts they left are released (a run
	// that resumes one of them in its run directory releases its mount).
	ready := make(chan preparedRunDir, 1)
	go func() { ready <- prepareRunDir(r.runDir) }()
	left, err := removeLeftovers(ctx, engine, sweepBudget, func() { r.prep = <-ready }, r.runDir)
	for _, line := range left.lines(false) {
		r.con.notice("%s", line)
	}
	if err != nil {
		fmt.Fprintf(r.stderr, "wflow run: %v\n", err)
		if errors.Is(err, errOrphansLeft) && r.o.resume != "" {
			// A step the dead run left running could still be writing.
			fmt.Fprintf(r.stderr, "wflow run: --resume: not resuming while containers of a dead run may still run; try again, or run wflow gc\n")
			r.prep.unlock()
			return exitHostError
		}
	}
	if r.prep.err == nil {
		r.prep.guard(r.runDir)
	}
	r.closers = append(r.closers, r.prep.unlock, func() { // on an early return; the end of the run releases it first
		if !r.keepGuard {
			r.prep.unguard()
		}
	})
	if r.prep.err != nil {
		fmt.Fprintf(r.stderr, "wflow run: run directory: %v\n", r.prep.err)
		return exitHostError
	}
	if r.prep.guardErr != nil && os.Geteuid() == 0 {
		r.con.notice("the run directory is not mounted nosuid,nodev (%v); steps still run without capabilities and the setuid bits they leave are cleared at the end (docs/security.md)", r.prep.guardErr)
	}
	if code := r.record(ctx); code != exitOK {
		return code
	}

	r.audit = &policies.Audit{}
	cache, err := r.stepCache()
	if err != nil {
		fmt.Fprintf(r.stderr, "wflow run: %v\n", err)
		return exitHostError
	}
	steps := &policies.Runner{
		Next: &containers.Runner{
			Cache:     cache,
			Resume:    r.resume,
			Keys:      true,
			Engine:    engine,
			RunDir:    r.runDir,
			RunID:     r.runID,
			Env:       r.set.env,
			Pull:      r.set.pull,
			Defaults:  r.set.limits,
			AllowRoot: r.o.allowRoot,
			Pulls:     r.set.pulls,
			StepDirs:  r.stepDirs,
			Secrets:   r.set.secrets,
			Services:  engines.Services(engine),
		},
		Chain: r.chain,
		Info:  policies.RunInfo{RunID: r.runID, Module: filepath.Base(r.modulePath), Network: r.set.limits.Network},
		Audit: r.audit,
	}
	r.host = hostfuncs.New(ctx, hostfuncs.Config{
		Runner: steps,
		Notebooks: &notebooks.Runner{Engine: engine, Steps: steps, RunDir: r.runDir, StepDirs: r.stepDirs, Base: r.o.notebookBase, Template: r.set.nbTemplate,
			Pulls: r.set.pulls, Pull: r.set.pull, BuildLimits: r.set.buildLimits},
		Params:   r.set.params,
		Vars:     r.set.vars,
		Parallel: r.o.parallel,
		Observer: journaled{console: r.con, journal: r.journal, trace: r.trace},
		Budget:   r.set.budget,
		Calls:    r.calls,
		RunDir:   r.runDir,
		Secrets:  r.set.secrets,
	})
	return exitOK
}

// maskOutput masks the run's secrets in the module's output, should the
// module have read one (from a file a step wrote); output that masking
// would make invalid JSON is replaced by a string saying so.
func maskOutput(set *secrets.Set, output json.RawMessage) json.RawMessage {
	masked := set.Bytes(output)
	if bytes.Equal(masked, output) {
		return output
	}
	if !json.Valid(masked) {
		return json.RawMessage(`"(the output held a secret; masking it left no valid JSON)"`)
	}
	return masked
}

// runDirectory is the absolute path of the run's directory: --resume's,
// --rundir's or a new one under ./runs/.
func (o *runOptions) runDirectory(runID string) (string, error) {
	dir := o.rundir
	if o.resume != "" {
		resume, err := filepath.Abs(o.resume)
		if err != nil {
			return "", fmt.Errorf("--resume: %v", err)
		}
		if o.rundir != "" {
			if same, _ := filepath.Abs(o.rundir); same != resume {
				return "", fmt.Errorf("--resume %s and --rundir %s: a resume runs in the run directory it continues; give only --resume", o.resume, o.rundir)
			}
		}
		if info, err := os.Stat(resume); err != nil || !info.IsDir() {
			return "", fmt.Errorf("--resume %s: not a run directory", o.resume)
		}
		// Checked again, with the lock, by record; asked here so that a
		// folder that is no run directory is left as it was.
		if _, ok := journal.Newest(resume); !ok {
			return "", fmt.Errorf("--resume %s: %w", o.resume, journal.ErrNothingToResume)
		}
		dir = resume
	}
	if dir == "" {
		dir = filepath.Join("runs", runID)
	}
	dir, err := filepath.Abs(dir)
	if err != nil {
		return "", fmt.Errorf("run directory: %v", err)
	}
	return dir, nil
}

// record reads what a resume continues (the run directory is this run's
// by now), then writes the run's info and opens its journal, before any
// step runs.
func (r *workflowRun) record(ctx context.Context) int {
	module, _ := filepath.Abs(r.modulePath)
	info := journal.Info{RunID: r.runID, Module: module, ModuleSHA256: r.moduleSHA256(), Params: r.set.params, Started: time.Now().UTC()}
	if r.o.resume != "" {
		resume, err := journal.Load(r.runDir)
		if err != nil {
			fmt.Fprintf(r.stderr, "wflow run: --resume %s: %v\n", r.o.resume, err)
			if errors.Is(err, journal.ErrNothingToResume) {
				return exitUsage
			}
			return exitHostError
		}
		r.resume = resume
		for _, run := range resume.Runs() {
			info.Resumes = append(info.Resumes, run.RunID)
		}
		last := resume.Last()
		if last.ModuleSHA256 != "" && last.ModuleSHA256 != info.ModuleSHA256 {
			if code := r.checkEditedModule(ctx, last); code != exitOK {
				return code
			}
		}
		r.con.notice("resuming %s: %d step result(s) of run(s) %s can answer steps again", r.runDir, resume.Left(), strings.Join(info.Resumes, ", "))
		if len(last.Params) > 0 && !sameJSON(last.Params, info.Params) {
			r.con.notice("the parameters are not those of run %s: steps they change run again", last.RunID)
		}
		if n := resume.Skipped(); n > 0 {
			r.con.notice("%d journal line(s) of the earlier run(s) were not whole results (a run killed while writing one) and were skipped", n)
		}
	}
	last, reused := journal.Newest(r.runDir)
	if reused && r.o.resume == "" {
		r.con.notice("the run directory holds earlier runs (the last: %s); this run does not continue them (that is --resume), and a later --resume will continue this run, not them", last.RunID)
	}
	if _, err := os.Lstat(filepath.Join(r.runDir, containers.StepsDir)); reused || err == nil {
		r.stepDirs.Suffix = r.runID // the files of earlier runs stay as their journals name them
	}
	if err := journal.WriteInfo(r.runDir, info); err != nil {
		fmt.Fprintf(r.stderr, "wflow run: %v\n", err)
		return exitHostError
	}
	var err error
	if r.journal, err = journal.Open(r.runDir, r.runID); err != nil {
		fmt.Fprintf(r.stderr, "wflow run: %v\n", err)
		return exitHostError
	}
	if r.trace, err = trace.Create(r.runDir, r.runID); err != nil {
		fmt.Fprintf(r.stderr, "wflow run: %v\n", err)
		return exitHostError
	}
	if r.moduleLog, err = journal.OpenModuleLog(r.runDir, r.runID); err != nil {
		fmt.Fprintf(r.stderr, "wflow run: %v\n", err)
		return exitHostError
	}
	r.con.setModuleLog(r.moduleLog)
	r.calls, err = journal.OpenCalls(r.runDir, journal.CallsHeader{RunID: r.runID, ABI: abi.ModuleName,
		ModuleSHA256: info.ModuleSHA256, Args: r.moduleArgs(), Params: r.set.params, MemoryLimitMiB: r.o.memoryMiB})
	if err != nil {
		fmt.Fprintf(r.stderr, "wflow run: %v\n", err)
		return exitHostError
	}
	r.closers = append(r.closers, func() { r.calls.Close() })
	return exitOK
}

// moduleArgs is the module's argv.
func (r *workflowRun) moduleArgs() []string {
	return []string{filepath.Base(r.modulePath)}
}

// checkEditedModule is the guard of a resume with another module than the
// run it continues: the module is replayed against that run's calls
// journal, and the resume goes on only when it makes the same calls, or
// first differs where that run asked for a step that did not succeed
// (which the resume runs again anyway), or --force-resume says so.
func (r *workflowRun) checkEditedModule(ctx context.Context, last journal.Info) int {
	differs := fmt.Sprintf("the module is not the one run %s ran (sha256 %.12s, now %.12s)", last.RunID, last.ModuleSHA256, r.moduleSHA256())
	if r.o.forceResume {
		r.con.notice("%s; --force-resume: not checked", differs)
		return exitOK
	}
	if !journal.HasCalls(r.runDir, last.RunID) {
		why := "that run has no calls journal to replay it against"
		if journal.HasIncompleteCalls(r.runDir, last.RunID) {
			why = "that run could not write its calls journal whole, so it cannot be replayed against it"
		}
		fmt.Fprintf(r.stderr, "wflow run: --resume: %s, and %s: give --force-resume to resume anyway (each step is then answered only if its key is the same)\n", differs, why)
		return exitFailed
	}
	res, err := replay.Run(ctx, replay.Config{RunDir: r.runDir, RunID: last.RunID, Module: r.set.wasm,
		MemoryLimitMiB: r.o.memoryMiB, Timeout: replayGuardTimeout, CacheDir: r.o.cacheDir})
	switch {
	case err != nil:
		fmt.Fprintf(r.stderr, "wflow run: --resume: %s; replaying it against run %s failed: %v (--force-resume resumes anyway)\n", differs, last.RunID, err)
		return exitHostError
	case res.OK:
		r.con.notice("%s; it makes the same %d calls on that run's journal (wflow replay)", differs, res.Matched)
	case res.Continues:
		r.con.notice("%s; it makes the same %d calls on that run's journal, then asks for another step where that run's step did not succeed", differs, res.Matched)
	default:
		var b strings.Builder
		res.Divergence.WriteText(&b)
		fmt.Fprintf(r.stderr, "wflow run: --resume: %s, and it decides differently on that run's journal:\n%s%d of its %d calls were the same before it. Resuming would mix two histories: run it in a new run directory, or give --force-resume.\n",
			differs, b.String(), res.Matched, res.Calls)
		return exitFailed
	}
	return exitOK
}

// replayGuardTimeout caps the replay --resume makes of an edited module.
const replayGuardTimeout = 10 * time.Minute

// sameJSON reports whether two JSON texts are the same but for white space.
func sameJSON(a, b []byte) bool {
	var ca, cb bytes.Buffer
	return json.Compact(&ca, a) == nil && json.Compact(&cb, b) == nil && bytes.Equal(ca.Bytes(), cb.Bytes())
}

// moduleSHA256 is the hex SHA-256 of the module's bytes.
func (r *workflowRun) moduleSHA256() string {
	sum := sha256.Sum256(r.set.wasm)
	return hex.EncodeToString(sum[:])
}

// stepCache is the run's step cache, from --cache-dir, --no-cache and
// --cache-strict. A store that cannot be opened leaves the run without one
// (a notice says so), unless the run is strict.
func (r *workflowRun) stepCache() (*stepcache.Cache, error) {
	c := &stepcache.Cache{Mode: stepcache.On, RunID: r.runID, Warn: r.con.notice}
	switch {
	case r.o.noCache && r.o.cacheStrict:
		return nil, errors.New("--no-cache and --cache-strict contradict each other")
	case r.o.noCache:
		c.Mode = stepcache.Off
		return c, nil
	case r.o.cacheStrict:
		c.Mode = stepcache.Strict
	}
	if r.o.cacheDir == "" {
		if c.Mode == stepcache.Strict {
			return nil, errors.New("--cache-strict: no cache folder (give --cache-dir)")
		}
		c.Mode = stepcache.Off
		return c, nil
	}
	store, err := stepcache.Open(filepath.Join(r.o.cacheDir, "steps"))
	if err != nil {
		if c.Mode == stepcache.Strict {
			return nil, err
		}
		r.con.notice("%v; the run goes on without the step cache", err)
		c.Mode = stepcache.Off
		return c, nil
	}
	c.Store = store
	return c, nil
}

// execute runs the module, then finishes the run: the steps it left are
// stopped, the run directory swept and released, the report written; it
// returns the exit code.
func (r *workflowRun) execute(ctx context.Context) int {
	r.con.runStarted(r.runID, r.runDir, r.info)
	started := time.Now().UTC()
	outcome, runErr := r.module.Run(ctx, r.host, replay.Recording(r.calls))
	r.host.Shutdown() // cancels steps the module left running; removes their containers
	r.keepGuard = sweepRunDir(ctx, r.runDir, r.prep.guardErr == nil, r.con)
	if !r.keepGuard {
		if err := r.prep.unguard(); err != nil {
			r.con.notice("%v", err)
		}
		r.keepGuard = true // released: the closer has nothing left to do
	}
	secrets.Flush(r.guestStdout)
	secrets.Flush(r.guestStderr)
	r.guestOut.flush()
	r.guestErr.flush()
	finished := time.Now().UTC()
	if runErr != nil {
		outcome = runtime.Outcome{Status: runtime.StatusFailed, ExitCode: 1, Message: "wflow: " + runErr.Error()}
	}
	if overrun := r.host.Overrun(); overrun != "" {
		outcome = runtime.Outcome{Status: runtime.StatusLimit, ExitCode: hostfuncs.ExitLimit, Message: overrun}
	}
	return r.finish(outcome, runErr, started, finished)
}

// finish writes the journal's end and the report, prints the summary, and
// returns the exit code of the outcome.
func (r *workflowRun) finish(outcome runtime.Outcome, runErr error, started, finished time.Time) int {
	rep := report.Report{
		WflowVersion: wflowVersion(),
		ABI:          abi.ModuleName,
		RunID:        r.runID,
		Journal:      journal.Path(r.runID),
		Trace:        trace.Path(r.runID),
		ModuleLog:    journal.ModuleLogPath(r.runID),
		HTML:         report.HTMLPath(r.runID),
		Module:       r.modulePath,
		ModuleSHA256: r.moduleSHA256(),
		RunDir:       r.runDir,
		Engine:       r.info,
		Params:       r.set.params,
		Started:      started,
		Finished:     finished,
		DurationMS:   finished.Sub(started).Milliseconds(),
		Status:       outcome.Status,
		ExitCode:     outcome.ExitCode,
		Message:      outcome.Message,
		Output:       maskOutput(r.set.secrets, r.host.Output()),
		Steps:        r.host.Results(),
		Decisions:    r.audit.Decisions(),
	}
	if r.resume != nil {
		for _, run := range r.resume.Runs() {
			rep.Resumes = append(rep.Resumes, run.RunID)
		}
	}
	if err := r.journal.Close(); err != nil {
		fmt.Fprintf(r.stderr, "wflow run: %v (the report below has every result)\n", err)
	}
	if err := r.trace.Close(); err != nil {
		fmt.Fprintf(r.stderr, "wflow run: trace: %v (the report below has every result)\n", err)
	}
	r.con.setModuleLog(nil)
	if err := r.moduleLog.Close(); err != nil {
		r.con.notice("the module log could not be written (%v): the console had every line", err)
	}
	if runErr == nil {
		r.calls.End(journal.Ending{Status: outcome.Status, ExitCode: outcome.ExitCode})
	}
	if err := r.calls.Close(); err != nil {
		r.con.notice("the calls journal could not be written (%v): wflow replay cannot replay this run", err)
	} else if r.calls.Overflowed() {
		r.con.notice("the module read the clock or random bytes more often than a calls journal keeps (docs/durability.md, Replay): wflow replay cannot replay this run")
	}
	path, err := report.Write(r.runDir, rep)
	if err != nil {
		r.con.Close()
		fmt.Fprintf(r.stderr, "wflow run: %v\n", err)
		return exitHostError
	}
	if _, err := report.WriteHTMLFile(r.runDir, rep); err != nil {
		r.con.notice("%v (report.json has everything; `wflow report %s --html` tries again)", err, r.runID)
	}
	r.con.runFinished(rep, path)
	r.con.Close()

	switch {
	case runErr != nil:
		fmt.Fprintf(r.stderr, "wflow run: %v\n", runErr)
		return exitHostError
	case outcome.Status == runtime.StatusCancelled:
		return exitInterrupted
	case outcome.Status != runtime.StatusSucceeded:
		return exitFailed
	}
	return exitOK
}

// Budgets of the sweep of setuid bits at the end of a run: a run directory
// of a hundred thousand files takes a fraction of a second; a step can make
// one of any size, and the run must still end.
const (
	sweepBudget            = 2 * time.Second
	sweepBudgetInterrupted = 500 * time.Millisecond
)

// sweepRunDir clears the setuid bits steps left in the run directory, now
// that none runs, and says so. It reports whether the nosuid,nodev mount
// must stay: when guarded and the sweep did not finish in its budget, the
// run directory stays mounted until `wflow gc` finishes it.
func sweepRunDir(ctx context.Context, dir string, guarded bool, con *console) (keepGuard bool) {
	budget := sweepBudget
	if ctx.Err() != nil {
		budget = sweepBudgetInterrupted
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), budget)
	defer cancel()
	swept, err := rundir.Sweep(sctx, dir)
	if len(swept) > 0 {
		con.notice("cleared setuid/setgid bits a step left on %d file(s) of the run directory: %s", len(swept), strings.Join(firstN(swept, 5), ", "))
	}
	switch {
	case err == nil:
		return false
	case errors.Is(err, rundir.ErrIncomplete) && guarded:
		con.notice("%v; the run directory stays mounted nosuid,nodev until `wflow gc` finishes it", err)
		return true
	default:
		con.notice("%v; setuid files steps made may be left in the run directory", err)
		return false
	}
}

// interruptedBeforeStart is the end of a run interrupted (SIGINT, SIGTERM)
// while it was being set up: nothing ran, no run directory was made.
func interruptedBeforeStart(stderr io.Writer) int {
	fmt.Fprintln(stderr, "wflow run: interrupted before the run started; nothing ran")
	return exitInterrupted
}

// preparedRunDir is a run directory made ready for steps.
type preparedRunDir struct {
	unlock   func()       // lets another run use the directory
	unguard  func() error // releases the nosuid,nodev mount (a no-op without one)
	guardErr error        // why there is no such mount
	err      error        // the run directory or its records folder could not be made
}

// prepareRunDir makes the run directory (0700) and its records folder, and
// takes it for this run (one run at a time per directory).
func prepareRunDir(dir string) preparedRunDir {
	p := preparedRunDir{unlock: func() {}, unguard: func() error { return nil }}
	if p.err = rundir.Create(dir); p.err != nil {
		return p
	}
	if p.err = rundir.MakeRecords(dir); p.err != nil {
		return p
	}
	unlock, err := rundir.Lock(dir)
	if err != nil {
		p.err = err
		return p
	}
	p.unlock = unlock
	return p
}

// guard mounts the run directory nosuid,nodev where this process may
// (docs/security.md).
func (p *preparedRunDir) guard(dir string) {
	p.unguard, p.guardErr = rundir.Guard(dir, guardStateDir, processOwner())
}

// journaled is the console, with every finished step's result appended to
// the run's journal first, so results survive a crash of wflow.
type journaled struct {
	*console
	journal *journal.Journal
	trace   *trace.Writer
}

// StepFinished journals the result, adds its line to the trace, then
// prints it.
func (o journaled) StepFinished(res step.ExecResult) {
	o.journal.Append(res)
	o.trace.Append(res)
	o.console.StepFinished(res)
}

// runSettings is what the flags of `wflow run` resolve to, checked.
type runSettings struct {
	engine    string // a name engines.Open knows
	params    []byte
	env, vars map[string]string
	pull      containers.PullPolicy
	pulls     containers.Pulls
	// buildLimits confine notebook image builds: the run's network (or
	// --build-network), memory and CPUs, and --build-timeout.
	buildLimits step.Limits
	nbTemplate  string
	budget      hostfuncs.Budget
	limits      step.Limits
	wasm        []byte
	secrets     *secrets.Set // --secret; nil for none
}

// resolve checks every flag and reads the module and the files the flags
// name; an error is a usage error.
func (o *runOptions) resolve(modulePath string) (s runSettings, err error) {
	if s.engine, err = engines.Resolve(o.engine); err != nil {
		return s, err
	}
	if err = checkEngineOptions(s.engine, o.engineOptions, true); err != nil {
		return s, err
	}
	if s.params, err = buildParams(o.paramsFile, o.params); err != nil {
		return s, err
	}
	if s.env, err = keyValues("--env", o.env); err != nil {
		return s, err
	}
	if s.secrets, err = secrets.Parse(o.secrets, os.LookupEnv, secrets.ReadFile); err != nil {
		return s, err
	}
	if s.vars, err = keyValues("--var", o.vars); err != nil {
		return s, err
	}
	if s.pull, err = containers.ParsePullPolicy(o.pull); err != nil {
		return s, fmt.Errorf("--pull: %w", err)
	}
	for _, h := range o.allowRegistry {
		if h == "" || strings.ContainsAny(h, "/ ") {
			return s, fmt.Errorf("--allow-registry %q: give a registry host, like docker.io or localhost:5000", h)
		}
	}
	s.pulls = containers.Pulls{Registries: o.allowRegistry, Images: o.allowImages}
	if s.nbTemplate, err = readTemplate(o.notebookDockerfile); err != nil {
		return s, err
	}
	if s.budget, err = o.budget(); err != nil {
		return s, err
	}
	if s.limits, err = o.stepLimits(); err != nil {
		return s, err
	}
	s.buildLimits = step.Limits{Network: o.buildNetwork, Memory: s.limits.Memory, CPUs: s.limits.CPUs, Timeout: step.Duration(o.buildTimeout)}
	if s.buildLimits.Network == "" {
		s.buildLimits.Network = s.limits.Network
	}
	if o.buildTimeout <= 0 {
		return s, fmt.Errorf("--build-timeout %s: use a duration above 0", o.buildTimeout)
	}
	if err := s.buildLimits.Validate(); err != nil {
		return s, fmt.Errorf("--build-network: %v", err)
	}
	switch {
	case o.parallel < 1:
		return s, fmt.Errorf("--parallel must be at least 1")
	case o.timeout < 0:
		return s, fmt.Errorf("--timeout %s: use a duration of 0 (no limit) or more", o.timeout)
	case o.memoryMiB < 1 || o.memoryMiB > 4096:
		return s, fmt.Errorf("--max-memory %d: use 1 to 4096 MiB (a 32-bit module addresses 4 GiB at most)", o.memoryMiB)
	}
	s.wasm, err = readInput(modulePath, maxModuleFile)
	return s, err
}

// readTemplate reads and checks a --notebook-dockerfile template; "" means
// the built-in one.
func readTemplate(file string) (string, error) {
	if file == "" {
		return "", nil
	}
	b, err := readInput(file, maxSmallFile)
	if err != nil {
		return "", fmt.Errorf("--notebook-dockerfile: %w", err)
	}
	if _, err := notebooks.Template(string(b)); err != nil {
		return "", fmt.Errorf("--notebook-dockerfile %s: %w", file, err)
	}
	return string(b), nil
}

// budget turns the module-budget flags into the host's budget.
func (o *runOptions) budget() (hostfuncs.Budget, error) {
	b := hostfuncs.Budget{MaxSteps: o.maxSteps, MaxHandles: o.maxHandles}
	n, err := step.ParseMemory(o.maxResultBytes)
	if err != nil {
		return b, fmt.Errorf("--max-result-bytes: %v", err)
	}
	b.MaxResultBytes = n
	switch {
	case o.maxSteps < 1:
		return b, fmt.Errorf("--max-steps must be at least 1")
	case o.maxHandles < 1 || o.maxHandles > abi.MaxOpenHandles:
		return b, fmt.Errorf("--max-handles must lie between 1 and %d", abi.MaxOpenHandles)
	case n < 1<<20:
		return b, fmt.Errorf("--max-result-bytes must be at least 1m")
	}
	return b, nil
}

// policyChain builds the chain every step passes: the built-ins, then the
// --policy modules in order; the built-ins check an amended step again.
func (o *runOptions) policyChain(ctx context.Context, defaults step.Limits, runNetwork bool) (policies.Chain, func(), error) {
	if err := policies.ValidateImagePatterns(o.allowImages); err != nil {
		return policies.Chain{}, nil, err
	}
	ceil := policies.Ceilings{Defaults: defaults, Max: step.Limits{Timeout: step.Duration(o.maxStepTimeout), CPUs: o.maxStepCPUs}}
	if o.maxStepMemory != "" {
		m, err := step.ParseMemory(o.maxStepMemory)
		if err != nil {
			return policies.Chain{}, nil, fmt.Errorf("--max-step-memory: %v", err)
		}
		ceil.Max.Memory = m
	}
	builtins := []policies.Policy{policies.Network{Allowed: defaults.Network, RunNetwork: runNetwork}, ceil}
	if len(o.allowImages) > 0 {
		builtins = append(builtins, policies.Images{Patterns: o.allowImages})
	}
	chain := policies.Chain{Policies: builtins}
	var loaded []policies.Loaded
	closeAll := func() {
		for _, p := range loaded {
			p.Close(ctx)
		}
	}
	data, err := readPolicyData(o.policyData)
	if err != nil {
		return policies.Chain{}, nil, err
	}
	dataUsed := false
	for _, file := range o.policies {
		wasm, err := readInput(file, maxModuleFile)
		if err != nil {
			closeAll()
			return policies.Chain{}, nil, fmt.Errorf("--policy: %w", err)
		}
		p, used, err := policies.Load(ctx, filepath.Base(file), wasm, data, policies.WasmConfig{CacheDir: o.cacheDir})
		if err != nil {
			closeAll()
			return policies.Chain{}, nil, fmt.Errorf("--policy: %w", err)
		}
		dataUsed = dataUsed || used
		loaded = append(loaded, p)
		chain.Policies = append(chain.Policies, p)
	}
	if data != nil && !dataUsed {
		closeAll()
		return policies.Chain{}, nil, fmt.Errorf("--policy-data %s: no --policy is a bare Rego policy.wasm (a bundle carries its own data.json)", o.policyData)
	}
	return chain, closeAll, nil
}

// readPolicyData reads --policy-data: nil without it.
func readPolicyData(file string) ([]byte, error) {
	if file == "" {
		return nil, nil
	}
	b, err := readInput(file, maxSmallFile)
	if err != nil {
		return nil, fmt.Errorf("--policy-data: %w", err)
	}
	return b, nil
}

// stepLimits turns the step-limit flags into the runner's defaults.
func (o *runOptions) stepLimits() (step.Limits, error) {
	if o.network == containers.NetworkRun {
		return step.Limits{}, fmt.Errorf("--network run: the run's own network is there for every step that asks for it (\"network\": \"run\"); --network names what else a step may use")
	}
	l := step.Limits{
		Timeout:  step.Duration(o.stepTimeout),
		CPUs:     o.cpus,
		Pids:     o.pids,
		Network:  o.network,
		ReadOnly: o.readOnly,
		User:     o.user,
	}
	if o.memory != "" && o.memory != "none" {
		m, err := step.ParseMemory(o.memory)
		if err != nil {
			return l, fmt.Errorf("--memory: %v", err)
		}
		l.Memory = m
	}
	if err := l.Validate(); err != nil {
		return l, fmt.Errorf("step limits: %v", err)
	}
	return l, nil
}

// buildParams merges the --params file (a JSON object) with -p key=value
// pairs (strings, winning) into the JSON object params_get returns. The
// file's values reach the module byte for byte (2.0 stays 2.0, 1e-7 stays
// 1e-7); a key given twice in the file is an error.
func buildParams(file string, pairs []string) ([]byte, error) {
	params := map[string]string{}  // key -> raw JSON value
	rawKeys := map[string]string{} // key -> the file's JSON text of it
	if file != "" {
		b, err := readInput(file, maxSmallFile)
		if err != nil {
			return nil, fmt.Errorf("--params: %w", err)
		}
		if err := step.CheckJSON(b, abi.MaxJSONDepth); err != nil {
			return nil, fmt.Errorf("--params %s: %w", file, err)
		}
		obj := gjson.ParseBytes(b)
		if !obj.IsObject() {
			return nil, fmt.Errorf("--params %s: want a JSON object of parameters", file)
		}
		var dup string
		obj.ForEach(func(k, v gjson.Result) bool {
			if _, ok := params[k.String()]; ok {
				dup = k.String()
				return false
			}
			params[k.String()] = v.Raw
			rawKeys[k.String()] = k.Raw
			return true
		})
		if dup != "" {
			return nil, fmt.Errorf("--params %s: parameter %q is given twice", file, dup)
		}
	}
	kv, err := keyValues("-p", pairs)
	if err != nil {
		return nil, err
	}
	for k, v := range kv {
		params[k] = jsonText(v)
		delete(rawKeys, k)
	}
	keys := make([]string, 0, len(params))
	for k := range params {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var out bytes.Buffer
	out.WriteByte('{')
	for i, k := range keys {
		if i > 0 {
			out.WriteByte(',')
		}
		if raw, ok := rawKeys[k]; ok {
			out.WriteString(raw) // as the file writes it
		} else {
			out.WriteString(jsonText(k))
		}
		out.WriteByte(':')
		out.WriteString(params[k])
	}
	out.WriteByte('}')
	return out.Bytes(), nil
}

// jsonText is s as a JSON string, with no HTML escaping.
func jsonText(s string) string {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.Encode(s)
	return strings.TrimSuffix(b.String(), "\n")
}

// keyValues parses repeated key=value flags.
func keyValues(flag string, pairs []string) (map[string]string, error) {
	out := map[string]string{}
	for _, p := range pairs {
		k, v, ok := strings.Cut(p, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("%s %q: want key=value", flag, p)
		}
		out[k] = v
	}
	return out, nil
}

// newRunID returns a sortable, unique run id: UTC time plus random hex.
func newRunID() string {
	var b [3]byte
	rand.Read(b[:])
	return time.Now().UTC().Format("20060102-150405") + "-" + hex.EncodeToString(b[:])
}

// firstN returns at most n items of list, with "..." after them when it
// had more.
func firstN(list []string, n int) []string {
	if len(list) <= n {
		return list
	}
	return append(list[:n:n], "...")
}

// Package containers runs steps on an Engine with flowserv's DockerWorker
// semantics: each command in its own container, in order, stopping at the
// first non-zero exit, with one combined step.ExecResult; retries, output files,
// the pulls the run allows, the step's key, and asking an earlier attempt of
// the run (package journal, `wflow run --resume`) and the step cache
// (package stepcache) before the first container are its too. Engine is the interface every
// engine implements (containers/docker, the only package of wflow that
// imports the Docker SDK; containers/fakeengine for tests), and
// containers/enginetest is what they must pass.
package containers

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"time"

	"github.com/wflow/wflow/abi"
	"github.com/wflow/wflow/journal"
	"github.com/wflow/wflow/rundir"
	"github.com/wflow/wflow/secrets"
	"github.com/wflow/wflow/step"
	"github.com/wflow/wflow/stepcache"
)

// Labels every container wflow starts carries.
const (
	LabelRun    = "io.wflow.run"    // the run id
	LabelStep   = "io.wflow.step"   // the step name
	LabelHandle = "io.wflow.handle" // the step's handle in its run
	LabelPID    = "io.wflow.pid"    // the wflow process that started it
	// LabelNotebook marks the images wflow builds for notebook steps
	// (package notebooks); its value is the content hash.
	LabelNotebook = "io.wflow.notebook"
)

// NotebookImagePrefix is the repository of every notebook image wflow
// builds; the tag is the value of its LabelNotebook.
const NotebookImagePrefix = "wflow-notebook"

// PullPolicy says when an engine pulls a step's image.
type PullPolicy string

// Pull policies, as given to `wflow run --pull`.
const (
	PullMissing PullPolicy = "missing" // pull only when the image is not present (default)
	PullAlways  PullPolicy = "always"  // pull before every step
	PullNever   PullPolicy = "never"   // never pull; a missing image is an error
)

// ParsePullPolicy parses a --pull value; "" means PullMissing.
func ParsePullPolicy(s string) (PullPolicy, error) {
	switch p := PullPolicy(s); p {
	case "":
		return PullMissing, nil
	case PullMissing, PullAlways, PullNever:
		return p, nil
	}
	return "", fmt.Errorf("pull policy %q: use missing, always or never", s)
}

// ErrImageUnavailable is wrapped by Engine.EnsureImage when the image is not
// present and cannot be pulled.
var ErrImageUnavailable = errors.New("image unavailable")

// ErrNotRemoved is wrapped by Engine.Run when the container could not be
// removed at the end (the engine still busy removing it, say).
var ErrNotRemoved = errors.New("the container could not be removed")

// NotRemoved adds to err, an engine's Run error (nil when it ran well),
// that what it started could not be removed (rmErr), wrapping
// ErrNotRemoved; it returns err when rmErr is nil. Engines call it in the
// deferred removal of their Run.
func NotRemoved(err, rmErr error) error {
	if rmErr == nil {
		return err
	}
	rmErr = fmt.Errorf("%w (wflow gc removes it once this process has ended): %v", ErrNotRemoved, rmErr)
	if err == nil {
		return rmErr
	}
	return fmt.Errorf("%w; and %w", err, rmErr)
}

// ContainerSpec is one container of a step, as the Runner asks an Engine to run it.
type ContainerSpec struct {
	Image   string
	Args    []string
	Env     []string          // KEY=VALUE, sorted
	RunDir  string            // absolute host path bind-mounted at WorkDir
	WorkDir string            // the mount point, also the working directory
	Labels  map[string]string // LabelRun, LabelStep, ...
	// Records is a folder of RunDir (relative, e.g. rundir.Records) the
	// container may read but never write: an engine mounts it read-only at
	// the same place under WorkDir, so a step cannot forge wflow's records.
	Records     string
	step.Limits // merged with the run's defaults; Network is never ""
}

// Exit is how a container ended.
type Exit struct {
	Code      int  // the exit code of its process
	OOMKilled bool // the kernel's OOM killer killed it
	// Usage is what the container used, when the engine measured it.
	Usage *step.Resources
}

// Engine runs containers. It is the narrow interface the Runner needs; the
// Docker implementation is containers/docker.Engine.
type Engine interface {
	// EnsureImage makes the image available under the pull policy and returns
	// its id. It wraps ErrImageUnavailable when it cannot.
	EnsureImage(ctx context.Context, ref string, pull PullPolicy) (id string, err error)
	// Run creates and starts one container, streams its stdout and stderr
	// apart while it runs, waits for it and removes it on every path. err is
	// for engine failures and for ctx ending (then it wraps ctx.Err()).
	Run(ctx context.Context, spec ContainerSpec, stdout, stderr io.Writer) (Exit, error)
}

// EngineInfo names the engine a run uses, for `wflow version` and the run
// report.
type EngineInfo struct {
	Name    string `json:"name"`              // docker, podman or swarm
	Version string `json:"version,omitempty"` // the engine's own version, as it reports it
	API     string `json:"api,omitempty"`     // the API version wflow speaks with it
	Host    string `json:"host,omitempty"`    // where wflow reaches it (a socket URL)
	// Gaps says, a sentence each, where the engine isolates steps less than
	// docs/security.md promises (a swarm without no-new-privileges, say).
	Gaps []string `json:"gaps,omitempty"`
}

// Runner runs steps on an Engine for one workflow run. Its zero value is not
// usable: Engine, RunDir and RunID are required.
type Runner struct {
	Engine   Engine
	RunDir   string            // absolute path of the run directory
	RunID    string            // value of LabelRun
	Env      map[string]string // defaults under every step's env (`--env`)
	Pull     PullPolicy        // "" means PullMissing
	Defaults step.Limits       // the CLI's defaults under every step's limits; Network "" means "none"
	// Pulls says which images may be pulled; the zero value pulls none.
	Pulls Pulls
	// Cache is the run's step cache; nil for none.
	Cache *stepcache.Cache
	// Resume holds the results of the earlier attempts of the run that may
	// answer a step again (`wflow run --resume`); nil for none.
	Resume *journal.Resume
	// Keys makes every step's key (ExecResult.Key), which the journal keeps
	// for a later resume; a run with a Cache or a Resume makes them anyway.
	Keys bool
	// StepDirs names the folders of the steps' output files.
	StepDirs StepDirs
	// AllowRoot lets steps ask for root or a user name (`--allow-root`);
	// without it, only the default user or a numeric non-root uid:gid.
	AllowRoot bool
	// Services runs the run's services and their execs; nil when the
	// engine runs none (containers/engines.Services).
	Services ServiceEngine
	// Secrets are the run's secrets (--secret): put in the environment of
	// the steps that name them, and masked in every step's streams and
	// errors. nil for none.
	Secrets *secrets.Set
}

// Live receives a step's output while it runs, for the console. Either may be nil.
type Live struct {
	Stdout, Stderr io.Writer
}

// StepDirs names the folders of a run's step output files, relative to the
// run directory: .wflow/steps/0001-name, and 0001-name-attempt2 and so on
// for the later attempts of a retried step. A run in a run directory that
// an earlier run used (a reused --rundir, a resume) gives its id as Suffix
// (0001-name-<run-id>), so that its files never replace those an earlier
// run's journal names, whatever its steps are named.
type StepDirs struct {
	Suffix string
}

// StepsDir is the folder of every step folder, relative to the run
// directory.
var StepsDir = filepath.Join(rundir.Records, "steps")

// Dir is the folder of one attempt of a step.
func (d StepDirs) Dir(handle uint32, name string, attempt int) string {
	dir := fmt.Sprintf("%04d-%s", handle, name)
	if d.Suffix != "" {
		dir += "-" + d.Suffix
	}
	if attempt > 1 {
		dir += fmt.Sprintf("-attempt%d", attempt)
	}
	return filepath.Join(StepsDir, dir)
}

// stepFiles names the stream files of one step's attempts.
type stepFiles struct {
	dirs   StepDirs
	handle uint32
	name   string
}

func (f stepFiles) stdout(attempt int) string {
	return filepath.Join(f.dirs.Dir(f.handle, f.name, attempt), "stdout")
}

func (f stepFiles) stderr(attempt int) string {
	return filepath.Join(f.dirs.Dir(f.handle, f.name, attempt), "stderr")
}

// TimeoutExitCode is the return code of a step killed at its timeout, as
// timeout(1) reports it.
const TimeoutExitCode = 124

// Run runs the step's commands in order, each in its own container, and
// stops at the first non-zero exit code, which becomes the step's return
// code. A step with a retry policy runs again while its policy says so.
// Failures of the engine are reported in the step.ExecResult (Error and ErrorKind
// set), never as a panic or a lost result.
func (r *Runner) Run(ctx context.Context, handle uint32, st step.Step, live Live) step.ExecResult {
	res := step.ExecResult{Step: st.Name, Handle: handle, Image: st.Image, Started: time.Now().UTC(), Commands: []step.CommandResult{}}
	limits := st.Limits.Merge(r.Defaults)
	if limits.Network == "" {
		limits.Network = "none"
	}
	res.Limits = &limits
	// Which networks a step may ask for is the policies' rule
	// (policies.Network, first in every chain): the runner runs what they
	// admitted.

	var a attempt
	ran := false // the runner got as far as starting containers
	var look stepcache.Lookup
	var keyRoot *os.Root // the run directory, open while the key and the cache use it
	dirs := stepFiles{r.StepDirs, handle, st.Name}
	refuse := func(kind, msg string) {
		a = attempt{Attempt: step.Attempt{Attempt: 1, ReturnCode: 1, ErrorKind: kind, Error: msg,
			Started: res.Started, Finished: res.Started, Commands: []step.CommandResult{}}}
	}
	userErr := step.CheckUser(limits.User, r.Defaults.User, r.AllowRoot)
	secretErr := r.checkSecrets(st)
	switch {
	case userErr != nil:
		refuse(step.ErrorKindDenied, userErr.Error())
	case secretErr != nil:
		refuse(step.ErrorKindDenied, secretErr.Error())
	default:
		var id string
		var err error
		if st.ExecIn == "" {
			id, err = r.ensureImage(ctx, st.Image, st.LocalImage)
		} else {
			res.Service = st.ServiceName // its service's container has the image
		}
		res.ImageID = id
		if err != nil {
			a = attempt{Attempt: step.Attempt{Attempt: 1, ReturnCode: 1, Started: res.Started, Commands: []step.CommandResult{}}}
			kind := step.ErrorKindEngine
			if errors.Is(err, ErrImageUnavailable) {
				kind = step.ErrorKindImage
			}
			a.fail(ctx, kind, err)
			a.Finished = time.Now().UTC()
			break
		}
		if len(st.Secrets) > 0 && r.Cache != nil {
			// No key holds a secret's value, or a hash of it: a step that
			// uses secrets is never cached or resumed.
			look.Miss = "the step uses secrets, which are never cached"
		}
		if (r.Keys || r.Cache != nil || r.Resume != nil) && len(st.Secrets) == 0 && st.ExecIn == "" {
			root, err := os.OpenRoot(r.RunDir)
			if err != nil {
				refuse(step.ErrorKindIO, fmt.Sprintf("the run directory: %v", err))
				break
			}
			defer root.Close()
			keyRoot = root
			parts := once(r.parts(ctx, root, st, id, limits))
			p, keyErr := parts()
			if keyErr == nil {
				res.Key = p.Key()
			}
			// A step whose declared outputs are gone since runs again.
			if r.Resume != nil && outputsExist(root, st.Outputs) {
				if rec, ok := r.Resume.Take(st.Name, res.Key); ok {
					return r.resumed(root, res, rec)
				}
			}
			if r.Cache != nil {
				look = r.Cache.Lookup(st, parts, root, dirs.stdout(1), dirs.stderr(1))
				if look.Hit != nil {
					return r.cached(res, *look.Hit, dirs)
				}
				if keyErr != nil && look.Key == "" {
					// Whether or not the cache could have answered it, a
					// step without a key cannot be resumed either: say why.
					look.Miss = fmt.Sprintf("no key: %v", keyErr)
				}
				if r.Cache.Mode == stepcache.Strict {
					refuse(step.ErrorKindCacheMiss, "--cache-strict: the step is not in the step cache, so it did not run: "+look.Miss)
					break
				}
			}
		}
		ran = true
		for n := 1; ; n++ {
			a = r.attempt(ctx, handle, n, dirs, st, limits, live)
			if st.Retry == nil {
				break
			}
			res.Attempts = append(res.Attempts, a.Attempt)
			if n > st.Retry.Retries || !st.Retry.Matches(a.ReturnCode, a.ErrorKind) {
				break
			}
			select {
			case <-time.After(st.Retry.Delay(n)):
			case <-ctx.Done():
			}
			if ctx.Err() != nil {
				// Cancelled while it waited to run again: the step's
				// result says so; its attempts say how each run ended.
				a.ReturnCode, a.ErrorKind = 1, step.ErrorKindCancelled
				a.Error = step.CancelledBy(ctx) + " while the step waited to run again"
				break
			}
		}
	}

	a.Error = r.Secrets.String(a.Error)
	for i := range res.Attempts {
		res.Attempts[i].Error = r.Secrets.String(res.Attempts[i].Error)
	}
	res.ReturnCode, res.Error, res.ErrorKind = a.ReturnCode, a.Error, a.ErrorKind
	res.StdoutFile, res.StderrFile, res.Commands, res.Resources = a.StdoutFile, a.StderrFile, a.Commands, a.Resources
	res.Stdout, res.StdoutTruncated, res.Stderr, res.StderrTruncated = a.stdout, a.stdoutCut, a.stderr, a.stderrCut
	res.Finished = time.Now().UTC()
	res.DurationMS = res.Finished.Sub(res.Started).Milliseconds()
	res.CacheMiss = look.Miss
	if ran {
		res.Origin = step.OriginRan
	}
	if keyRoot != nil && r.Cache != nil {
		r.Cache.Save(ctx, st, look, res, r.parts(ctx, keyRoot, st, res.ImageID, limits), keyRoot)
	}
	return res
}

// outputsExist reports whether each of a step's declared outputs is in the
// run directory root (as a file, a folder or a link).
func outputsExist(root *os.Root, outputs []string) bool {
	for _, p := range outputs {
		if _, err := root.Lstat(filepath.FromSlash(p)); err != nil {
			return false
		}
	}
	return true
}

// once returns f, calling it at most once.
func once(f func() (stepcache.Parts, error)) func() (stepcache.Parts, error) {
	var p stepcache.Parts
	var err error
	done := false
	return func() (stepcache.Parts, error) {
		if !done {
			p, err = f()
			done = true
		}
		return p, err
	}
}

// parts returns what makes the step's key, for the step cache to call when
// it needs one.
func (r *Runner) parts(ctx context.Context, root *os.Root, st step.Step, imageID string, limits step.Limits) func() (stepcache.Parts, error) {
	return func() (stepcache.Parts, error) {
		return stepcache.PartsOf(ctx, root, st, imageID, r.env(st.Env), abi.RunDirMountPoint, limits)
	}
}

// cached is the result of a step the cache answered (its streams restored
// where the step's first attempt writes them): the stored result as this
// run's step (its name, handle, image reference and stream files), started
// and finished now.
func (r *Runner) cached(res, hit step.ExecResult, dirs stepFiles) step.ExecResult {
	hit.Step, hit.Handle, hit.Image, hit.ImageID, hit.Limits = res.Step, res.Handle, res.Image, res.ImageID, res.Limits
	hit.StdoutFile, hit.StderrFile = dirs.stdout(1), dirs.stderr(1)
	hit.Started, hit.Finished = res.Started, time.Now().UTC()
	hit.DurationMS = hit.Finished.Sub(hit.Started).Milliseconds()
	hit.Origin = step.OriginCached
	if hit.Commands == nil {
		hit.Commands = []step.CommandResult{}
	}
	return hit
}

// resumed is the result of a step an earlier attempt of the run answered:
// that attempt's result as this run's step (its name, handle, image
// reference; its stream files stay the earlier ones, which hold what it
// printed), started and finished now. The journal keeps only the tail of
// each stream (step.ReportText); the module gets as much as it got then,
// read again from the stream files.
func (r *Runner) resumed(root *os.Root, res step.ExecResult, rec journal.Record) step.ExecResult {
	was := rec.Result
	was.Step, was.Handle, was.Image, was.ImageID, was.Key, was.Limits = res.Step, res.Handle, res.Image, res.ImageID, res.Key, res.Limits
	was.Started, was.Finished = res.Started, time.Now().UTC()
	was.DurationMS = was.Finished.Sub(was.Started).Milliseconds()
	was.Resumed, was.ResumedFrom, was.Origin = true, rec.RunID, step.OriginResumed
	was.Cached, was.CachedFrom, was.CacheMiss, was.Decisions = false, "", "", nil
	was = AsTheModuleGotIt(root, was)
	if was.Commands == nil {
		was.Commands = []step.CommandResult{}
	}
	return was
}

// attempt is one step.Attempt plus the text of its streams.
type attempt struct {
	step.Attempt
	stdout, stderr       string
	stdoutCut, stderrCut bool
}

// fail ends the attempt with err; an err that is ctx ending makes it
// cancelled, naming who cancelled it (step.CancelledBy).
func (a *attempt) fail(ctx context.Context, kind string, err error) {
	a.ReturnCode, a.ErrorKind, a.Error = 1, kind, err.Error()
	// Whatever the engine's client made of it (an HTTP client reports a
	// context's cause, not context.Canceled), a failure once ctx ended is
	// the cancellation.
	if ctx.Err() != nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		a.ErrorKind = step.ErrorKindCancelled
		a.Error = step.CancelledBy(ctx) + " while the step ran; its container was removed"
		if errors.Is(err, ErrNotRemoved) {
			a.Error = step.CancelledBy(ctx) + " while the step ran; its container could not be removed yet (wflow gc removes it once this process has ended)"
		}
	}
}

func (r *Runner) ensureImage(ctx context.Context, ref string, local bool) (string, error) {
	pull := r.Pull
	if pull == "" {
		pull = PullMissing
	}
	if local {
		return r.Engine.EnsureImage(ctx, ref, PullNever)
	}
	if !r.Pulls.Allowed(ref) {
		id, err := r.Engine.EnsureImage(ctx, ref, PullNever)
		if errors.Is(err, ErrImageUnavailable) {
			return "", r.Pulls.Refusal(ref)
		}
		return id, err
	}
	return r.Engine.EnsureImage(ctx, ref, pull)
}

// attempt runs the step's commands once, under the step's timeout.
func (r *Runner) attempt(ctx context.Context, handle uint32, n int, dirs stepFiles, st step.Step, limits step.Limits, live Live) (a attempt) {
	a.Attempt = step.Attempt{Attempt: n, Started: time.Now().UTC(), Commands: []step.CommandResult{}}
	defer func() {
		a.Finished = time.Now().UTC()
		a.DurationMS = a.Finished.Sub(a.Started).Milliseconds()
	}()

	a.StdoutFile, a.StderrFile = dirs.stdout(n), dirs.stderr(n)
	stdout, err := NewOutput(r.RunDir, a.StdoutFile, live.Stdout)
	if err != nil {
		a.fail(ctx, step.ErrorKindIO, fmt.Errorf("step output file: %w", err))
		return a
	}
	stderr, err := NewOutput(r.RunDir, a.StderrFile, live.Stderr)
	if err != nil {
		stdout.Close()
		a.fail(ctx, step.ErrorKindIO, err)
		return a
	}
	defer func() {
		a.stdout, a.stdoutCut = stdout.Text()
		a.stderr, a.stderrCut = stderr.Text()
		if err := errors.Join(stdout.Close(), stderr.Close()); err != nil && a.Error == "" {
			a.fail(ctx, step.ErrorKindIO, fmt.Errorf("writing step output: %w", err))
		}
	}()

	runCtx := ctx
	if limits.Timeout > 0 {
		var cancel context.CancelFunc
		runCtx, cancel = context.WithTimeout(ctx, time.Duration(limits.Timeout))
		defer cancel()
	}
	env, err := r.stepEnv(st)
	if err != nil {
		a.fail(ctx, step.ErrorKindDenied, err)
		return a
	}
	spec := ContainerSpec{
		Image:   st.Image,
		Env:     env,
		RunDir:  r.RunDir,
		WorkDir: abi.RunDirMountPoint,
		Records: rundir.Records,
		Limits:  limits,
		Labels: map[string]string{
			LabelRun:    r.RunID,
			LabelStep:   st.Name,
			LabelHandle: strconv.FormatUint(uint64(handle), 10),
		},
	}
	for k, v := range ProcessLabels() {
		spec.Labels[k] = v
	}
	// Every step's streams are masked, not only those of steps that name a
	// secret: a step may print what another wrote into the run directory.
	maskedOut, maskedErr := r.Secrets.Writer(stdout), r.Secrets.Writer(stderr)
	for _, c := range st.Commands {
		spec.Args = c.Args()
		start := time.Now()
		var exit Exit
		var err error
		if st.ExecIn != "" {
			exit, err = r.exec(runCtx, st, spec, maskedOut, maskedErr)
		} else {
			exit, err = r.Engine.Run(runCtx, spec, maskedOut, maskedErr)
		}
		if ferr := errors.Join(secrets.Flush(maskedOut), secrets.Flush(maskedErr)); ferr != nil && err == nil {
			err = ferr
		}
		cr := step.CommandResult{Args: step.ResultArgs(spec.Args), ReturnCode: exit.Code, DurationMS: time.Since(start).Milliseconds()}
		a.Resources = a.Resources.Add(exit.Usage)
		switch {
		case err != nil && ctx.Err() == nil && runCtx.Err() != nil:
			cr.ReturnCode = TimeoutExitCode
			a.Commands = append(a.Commands, cr)
			a.ReturnCode, a.ErrorKind = TimeoutExitCode, step.ErrorKindTimeout
			a.Error = fmt.Sprintf("the step ran past its timeout of %s and was killed", time.Duration(limits.Timeout))
			return a
		case err != nil:
			cr.ReturnCode = 1
			a.Commands = append(a.Commands, cr)
			a.fail(ctx, step.ErrorKindEngine, err)
			return a
		}
		a.Commands = append(a.Commands, cr)
		if exit.OOMKilled {
			a.ReturnCode, a.ErrorKind = exit.Code, step.ErrorKindOOM
			a.Error = fmt.Sprintf("command %d was killed by the OOM killer at the step's memory limit of %d MiB", len(a.Commands), limits.Memory>>20)
			return a
		}
		if exit.Code != 0 {
			a.ReturnCode = exit.Code
			return a
		}
	}
	return a
}

// env merges the run's defaults with the step's env, the step winning.
// checkSecrets says which secret a step names that the run was not given.
func (r *Runner) checkSecrets(st step.Step) error {
	for _, k := range slices.Sorted(maps.Keys(st.Secrets)) {
		if name := st.Secrets[k]; !r.Secrets.Has(name) {
			_, err := r.Secrets.Value(name)
			return fmt.Errorf("secrets: %s: %w", k, err)
		}
	}
	return nil
}

// stepEnv is the environment of a step's containers: the run's --env, the
// step's env, and the values of the secrets it names, which win.
func (r *Runner) stepEnv(st step.Step) ([]string, error) {
	if len(st.Secrets) == 0 {
		return r.env(st.Env), nil
	}
	merged := make(map[string]string, len(st.Env)+len(st.Secrets))
	for k, v := range st.Env {
		merged[k] = v
	}
	for k, name := range st.Secrets {
		v, err := r.Secrets.Value(name)
		if err != nil {
			return nil, fmt.Errorf("secrets: %s: %w", k, err)
		}
		merged[k] = v
	}
	return r.env(merged), nil
}

func (r *Runner) env(step map[string]string) []string {
	merged := make(map[string]string, len(r.Env)+len(step))
	for k, v := range r.Env {
		merged[k] = v
	}
	for k, v := range step {
		merged[k] = v
	}
	out := make([]string, 0, len(merged))
	for k, v := range merged {
		out = append(out, k+"="+v)
	}
	sort.Strings(out)
	return out
}

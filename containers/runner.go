package containers

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"time"

	"github.com/wflow/wflow/abi"
)

// Labels every container wflow starts carries.
const (
	LabelRun    = "io.wflow.run"    // the run id
	LabelStep   = "io.wflow.step"   // the step name
	LabelHandle = "io.wflow.handle" // the step's handle in its run
	LabelPID    = "io.wflow.pid"    // the wflow process that started it
)

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

// ContainerSpec is one container of a step, as the Runner asks an Engine to run it.
type ContainerSpec struct {
	Image   string
	Args    []string
	Env     []string          // KEY=VALUE, sorted
	RunDir  string            // absolute host path bind-mounted at WorkDir
	WorkDir string            // the mount point, also the working directory
	Network string            // Docker network mode; "none" by default
	Labels  map[string]string // LabelRun, LabelStep, ...
}

// Engine runs containers. It is the narrow interface the Runner needs; the
// Docker implementation is containers/docker.Engine.
type Engine interface {
	// EnsureImage makes the image available under the pull policy and returns
	// its id. It wraps ErrImageUnavailable when it cannot.
	EnsureImage(ctx context.Context, ref string, pull PullPolicy) (id string, err error)
	// Run creates and starts one container, streams its stdout and stderr
	// apart while it runs, waits for it and removes it on every path. It
	// returns the exit code; err is for engine failures only.
	Run(ctx context.Context, spec ContainerSpec, stdout, stderr io.Writer) (exitCode int, err error)
}

// Runner runs steps on an Engine for one workflow run. Its zero value is not
// usable: Engine, RunDir and RunID are required.
type Runner struct {
	Engine  Engine
	RunDir  string            // absolute path of the run directory
	RunID   string            // value of LabelRun
	Env     map[string]string // defaults under every step's env (`--env`)
	Pull    PullPolicy        // "" means PullMissing
	Network string            // "" means "none"
}

// Live receives a step's output while it runs, for the console. Either may be nil.
type Live struct {
	Stdout, Stderr io.Writer
}

// StepDir is the folder of a step's output files, relative to the run directory.
func StepDir(handle uint32, name string) string {
	return filepath.Join(".wflow", "steps", fmt.Sprintf("%04d-%s", handle, name))
}

// Run runs the step's commands in order, each in its own container, and
// stops at the first non-zero exit code, which becomes the step's return
// code. Failures of the engine are reported in the Result (returncode 1 with
// Error and ErrorKind set), never as a panic or a lost result.
func (r *Runner) Run(ctx context.Context, handle uint32, step Step, live Live) (res Result) {
	res = Result{Step: step.Name, Handle: handle, Image: step.Image, Started: time.Now().UTC(), Commands: []CommandResult{}}
	defer func() {
		res.Finished = time.Now().UTC()
		res.DurationMS = res.Finished.Sub(res.Started).Milliseconds()
	}()
	fail := func(kind string, err error) Result {
		res.ReturnCode = 1
		res.ErrorKind = kind
		res.Error = err.Error()
		if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			res.ErrorKind = ErrorKindCancelled
			res.Error = "the run was cancelled while the step ran; its container was removed"
		}
		return res
	}

	dir := StepDir(handle, step.Name)
	if err := os.MkdirAll(filepath.Join(r.RunDir, dir), 0o755); err != nil {
		return fail(ErrorKindIO, fmt.Errorf("step output folder: %w", err))
	}
	res.StdoutFile = filepath.Join(dir, "stdout")
	res.StderrFile = filepath.Join(dir, "stderr")
	stdout, err := newStream(filepath.Join(r.RunDir, res.StdoutFile), abi.MaxStreamText, live.Stdout)
	if err != nil {
		return fail(ErrorKindIO, err)
	}
	stderr, err := newStream(filepath.Join(r.RunDir, res.StderrFile), abi.MaxStreamText, live.Stderr)
	if err != nil {
		stdout.close()
		return fail(ErrorKindIO, err)
	}
	defer func() {
		// Runs before the timing defer above: the Result gets the final text.
		res.Stdout, res.StdoutTruncated = stdout.tail.text()
		res.Stderr, res.StderrTruncated = stderr.tail.text()
		errOut, errErr := stdout.close(), stderr.close()
		if err := errors.Join(errOut, errErr); err != nil && res.Error == "" {
			res.ReturnCode, res.ErrorKind, res.Error = 1, ErrorKindIO, "writing step output: "+err.Error()
		}
	}()

	pull := r.Pull
	if pull == "" {
		pull = PullMissing
	}
	id, err := r.Engine.EnsureImage(ctx, step.Image, pull)
	if err != nil {
		if errors.Is(err, ErrImageUnavailable) {
			return fail(ErrorKindImage, err)
		}
		return fail(ErrorKindEngine, err)
	}
	res.ImageID = id

	spec := ContainerSpec{
		Image:   step.Image,
		Env:     r.env(step.Env),
		RunDir:  r.RunDir,
		WorkDir: abi.RunDirMountPoint,
		Network: r.Network,
		Labels: map[string]string{
			LabelRun:    r.RunID,
			LabelStep:   step.Name,
			LabelHandle: strconv.FormatUint(uint64(handle), 10),
			LabelPID:    strconv.Itoa(os.Getpid()),
		},
	}
	if spec.Network == "" {
		spec.Network = "none"
	}
	for _, c := range step.Commands {
		spec.Args = c.Args()
		start := time.Now()
		code, err := r.Engine.Run(ctx, spec, stdout, stderr)
		cr := CommandResult{Args: spec.Args, ReturnCode: code, DurationMS: time.Since(start).Milliseconds()}
		if err != nil {
			cr.ReturnCode = 1
			res.Commands = append(res.Commands, cr)
			return fail(ErrorKindEngine, err)
		}
		res.Commands = append(res.Commands, cr)
		if code != 0 {
			res.ReturnCode = code
			return res
		}
	}
	return res
}

// env merges the run's defaults with the step's env, the step winning.
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

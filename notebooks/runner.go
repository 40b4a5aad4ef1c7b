package notebooks

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"text/template"
	"time"

	"github.com/wflow/wflow/abi"
	"github.com/wflow/wflow/containers"
	"github.com/wflow/wflow/rundir"
	"github.com/wflow/wflow/step"
)

// Engine is what notebooks need of the container engine;
// containers/docker.Engine implements it.
type Engine interface {
	// ImageExists reports whether the image is present.
	ImageExists(ctx context.Context, ref string) (bool, error)
	// ImageID returns the ID of an image, or "" when it is not present.
	ImageID(ctx context.Context, ref string) (string, error)
	// BuildImage builds buildContext (a tar) as tag, streaming its log; its
	// RUN steps get the network, memory and CPUs of limits.
	BuildImage(ctx context.Context, tag string, buildContext io.Reader, labels map[string]string, limits step.Limits, log io.Writer) error
}

// StepRunner admits and runs the container step a notebook run becomes; in
// wflow, policies.Runner (the policy chain in front of containers.Runner).
// The step is admitted before its image is built, so a refused notebook step
// builds nothing.
type StepRunner interface {
	// Admit returns the step to run and the decisions about it, or the
	// result to report when it is refused.
	Admit(ctx context.Context, handle uint32, step step.Step) (step.Step, []step.Decision, *step.ExecResult)
	// RunAdmitted runs a step Admit let through.
	RunAdmitted(ctx context.Context, handle uint32, step step.Step, decisions []step.Decision, live containers.Live) step.ExecResult
	// AdmitBuild decides on an image build before it happens: it returns the
	// base image to build from (possibly amended), or the result to report
	// when the build is refused.
	AdmitBuild(ctx context.Context, handle uint32, name, base string, requirements []string) (string, []step.Decision, *step.ExecResult)
}

// Runner builds notebook images and runs notebooks for one run. Engine,
// Steps and RunDir are required; Base and Template default to DefaultBase
// and DefaultTemplate.
type Runner struct {
	Engine    Engine
	Steps     StepRunner
	RunDir    string
	Base      string // --notebook-base
	Template  string // --notebook-dockerfile's content
	NoLogFile bool   // keep build logs out of the run directory (wflow notebook build)
	// StepDirs names the step folders build logs go to, as the steps'
	// runner names them.
	StepDirs containers.StepDirs
	// Pulls says which base images the build may pull (the engine pulls a
	// missing FROM image); a missing base it does not allow fails the build.
	Pulls containers.Pulls
	Pull  containers.PullPolicy // --pull; never keeps the builder from pulling a missing base
	// BuildLimits confine image builds, which run untrusted code (pip, and
	// the build hooks of every package it installs): Network ("" is none),
	// Memory, CPUs, and Timeout (0 is DefaultBuildTimeout).
	BuildLimits step.Limits

	once     sync.Once
	tmpl     *template.Template
	tmplErr  error
	mu       sync.Mutex
	inflight map[string]*build // builds under way, by tag: concurrent steps share one
}

// build is one image build that several steps may wait on.
type build struct {
	done chan struct{}
	err  error
}

// DefaultBuildTimeout is how long an image build may run when the run does
// not say (--build-timeout).
const DefaultBuildTimeout = 30 * time.Minute

// LabelNotebook marks notebook images; its value is the content hash.
const LabelNotebook = containers.LabelNotebook

// Template parses a Dockerfile template, so the CLI can refuse a bad one
// before a run.
func Template(text string) (*template.Template, error) {
	t, err := template.New("Dockerfile").Option("missingkey=error").Parse(text)
	if err != nil {
		return nil, fmt.Errorf("notebook Dockerfile template: %w", err)
	}
	var probe bytes.Buffer
	if err := t.Execute(&probe, struct{ Base string }{"base"}); err != nil {
		return nil, fmt.Errorf("notebook Dockerfile template: %w", err)
	}
	return t, nil
}

func (r *Runner) template() (*template.Template, error) {
	r.once.Do(func() {
		text := r.Template
		if text == "" {
			text = DefaultTemplate
		}
		r.tmpl, r.tmplErr = Template(text)
	})
	return r.tmpl, r.tmplErr
}

// Build builds (or finds) the image of a set of requirements. Its Result
// names the image in Image and Notebook.Image; the build log is its stdout.
func (r *Runner) Build(ctx context.Context, handle uint32, b Build, live containers.Live) step.ExecResult {
	res := step.ExecResult{Step: b.Name, Handle: handle, Started: time.Now().UTC(), Commands: []step.CommandResult{}}
	var tag, logFile string
	var built bool
	var out logText
	bc, decisions, refused, err := r.admitted(ctx, handle, b.Name, b.Base, b.Requirements)
	if refused != nil {
		refused.Notebook = &step.NotebookInfo{Image: bc.tag}
		return finish(*refused)
	}
	if err == nil {
		tag = bc.tag
		built, logFile, out, err = r.ensure(ctx, handle, b.Name, bc, live)
	}
	res.Decisions = decisions
	res.Image = tag
	res.Notebook = &step.NotebookInfo{Image: tag, Built: built, BuildLogFile: logFile}
	res.Stdout, res.StdoutTruncated = out.text, out.cut
	res.StdoutFile = logFile
	if err != nil {
		res.ReturnCode = 1
		res.ErrorKind, res.Error = buildFailure(ctx, err)
	}
	return finish(res)
}

// Run runs a notebook step: the image first (built when missing), then
// papermill in it, with the parameters in a file (-f) so their JSON types
// survive. It reads the input notebook first, to refuse what papermill
// would fail on and warn about what it would do silently; when papermill
// fails, the Result says why, and names the failing cell as the user's
// notebook numbers it.
func (r *Runner) Run(ctx context.Context, handle uint32, s Step, live containers.Live) step.ExecResult {
	started := time.Now().UTC()
	info := &step.NotebookInfo{Notebook: s.Notebook, Output: s.Output}
	fail := func(kind string, err error, out logText, logFile string) step.ExecResult {
		msg := err.Error()
		if kind == step.ErrorKindBuild {
			kind, msg = buildFailure(ctx, err)
		}
		return finish(step.ExecResult{Step: s.Name, Handle: handle, Image: info.Image, ReturnCode: 1,
			ErrorKind: kind, Error: msg, Stdout: out.text, StdoutTruncated: out.cut,
			StdoutFile: logFile, Started: started, Commands: []step.CommandResult{}, Notebook: info})
	}
	in, kind, err := inspect(r.RunDir, s)
	if err != nil {
		return fail(kind, err, logText{}, "")
	}
	info.Warnings = in.warnings
	bc, buildDecisions, refused, err := r.admitted(ctx, handle, s.Name, s.Base, s.Requirements)
	info.Image = bc.tag
	if refused != nil {
		refused.Started, refused.Notebook = started, info
		return finish(*refused)
	}
	if err != nil {
		return fail(step.ErrorKindBuild, err, logText{}, "")
	}

	argv := []string{"papermill", papermillPath(s.Notebook), papermillPath(s.Output)}
	params, err := paramsDocument(s.Parameters)
	if err != nil {
		return fail(step.ErrorKindNotebook, err, logText{}, "")
	}
	if params != nil {
		// Named by its content, not the handle: the path is in the command,
		// so the step's cache key holds the parameters and nothing else.
		sum := sha256.Sum256(params)
		paramsFile := filepath.ToSlash(filepath.Join(rundir.Records, "notebooks", fmt.Sprintf("%s-%x.params.json", s.Name, sum)))
		if err := rundir.WriteFile(r.RunDir, filepath.FromSlash(paramsFile), params); err != nil {
			return fail(step.ErrorKindIO, fmt.Errorf("writing the parameters file: %w", err), logText{}, "")
		}
		argv = append(argv, "-f", papermillPath(paramsFile))
	}
	if s.Kernel != "" {
		argv = append(argv, "-k", s.Kernel)
	}
	env := map[string]string{"HOME": "/tmp"} // a kernel needs a writable home, whatever the user
	for k, v := range s.Env {
		env[k] = v
	}
	st := step.Step{
		Name:     s.Name,
		Image:    bc.tag,
		Env:      env,
		Secrets:  s.Secrets,
		Commands: []step.Command{{Argv: argv}},
		Limits:   s.Limits,
		Inputs:   withFirst(relRunDir(s.Notebook), s.Inputs),
		Outputs:  s.cachedOutputs(),
		Cache:    s.Cache,
	}
	// Policies first: a refused step builds nothing.
	final, decisions, refused := r.Steps.Admit(ctx, handle, st)
	decisions = append(buildDecisions, decisions...)
	if refused != nil {
		refused.Started, refused.Notebook, refused.Decisions = started, info, decisions
		return finish(*refused)
	}
	built, logFile, out, err := r.ensure(ctx, handle, s.Name, bc, live)
	info.Built, info.BuildLogFile = built, logFile
	if err != nil {
		// A failed build is the step's result: the log's tail, and no run.
		res := fail(step.ErrorKindBuild, err, out, logFile)
		res.Decisions = decisions
		return res
	}
	// wflow built this image on this engine: no registry has it, whatever --pull says.
	final.LocalImage = final.Image == bc.tag
	outRel := filepath.FromSlash(relRunDir(s.Output))
	before := stampOf(r.RunDir, outRel)
	res := r.Steps.RunAdmitted(ctx, handle, final, decisions, live)
	res.Started = started
	res.Notebook = info
	if res.ReturnCode != 0 && res.ErrorKind == "" {
		// An output this run did not write (papermill failed before it
		// wrote one) is an earlier run's: its failing cell is not this one.
		written := stampOf(r.RunDir, outRel)
		if cell := failedCell(r.RunDir, outRel, in); cell != nil && written.exists && written != before {
			info.FailedCell = cell
			res.ErrorKind, res.Error = step.ErrorKindCell, cellError(cell)
		} else {
			res.ErrorKind, res.Error = papermillFailure(res.ReturnCode, res.Stderr, in.kernel)
		}
	}
	return finish(res)
}

// cachedOutputs are the outputs the step cache stores for the step: none
// unless the step declares some (a notebook reads files it does not
// declare, so caching it unasked could answer it with stale results), and
// then the output notebook first.
func (s Step) cachedOutputs() []string {
	if len(s.Outputs) == 0 {
		return nil
	}
	return withFirst(relRunDir(s.Output), s.Outputs)
}

// withFirst returns p followed by the paths of list that are not p.
func withFirst(p string, list []string) []string {
	out := []string{p}
	for _, q := range list {
		if q != p {
			out = append(out, q)
		}
	}
	return out
}

// fileStamp tells a file's versions apart: papermill rewrites the output in
// place, which changes its modification time.
type fileStamp struct {
	exists      bool
	ino         uint64
	size        int64
	mtimeUnixNs int64
}

// stampOf is the stamp of rel in the run directory (not following a link
// in its last element).
func stampOf(runDir, rel string) fileStamp {
	root, err := os.OpenRoot(runDir)
	if err != nil {
		return fileStamp{}
	}
	defer root.Close()
	info, err := root.Lstat(rel)
	if err != nil {
		return fileStamp{}
	}
	st := fileStamp{exists: true, size: info.Size(), mtimeUnixNs: info.ModTime().UnixNano()}
	if sys, ok := info.Sys().(*syscall.Stat_t); ok {
		st.ino = sys.Ino
	}
	return st
}

// papermillPath is the path papermill is given for a path in the run
// directory. papermill formats its paths with the parameters (Python's
// str.format: "{name}" becomes a parameter's value), so braces are doubled
// to reach it as the user wrote them.
func papermillPath(p string) string {
	return strings.NewReplacer("{", "{{", "}", "}}").Replace(inRunDir(p))
}

func finish(res step.ExecResult) step.ExecResult {
	res.Finished = time.Now().UTC()
	res.DurationMS = res.Finished.Sub(res.Started).Milliseconds()
	return res
}

// inRunDir is the path the container sees for a path in the run directory.
func inRunDir(p string) string { return abi.RunDirMountPoint + "/" + relRunDir(p) }

// relRunDir is a path in the run directory relative to it.
func relRunDir(p string) string {
	return path.Clean(strings.TrimPrefix(p, abi.RunDirMountPoint+"/"))
}

// logText is the tail of a build log.
type logText struct {
	text string
	cut  bool
}

// base is the base image of a build: the step's, else the run's, else DefaultBase.
func (r *Runner) base(base string) string {
	switch {
	case base != "":
		return base
	case r.Base != "":
		return r.Base
	}
	return DefaultBase
}

// context makes the build context of an image for base and requirements;
// its tag names the image. The tag hashes the base image's ID when the
// engine has it, so a base rebuilt or pulled anew under the same name gives
// a new notebook image, not the stale one.
func (r *Runner) context(ctx context.Context, base string, reqs []string) (buildContext, error) {
	tmpl, err := r.template()
	if err != nil {
		return buildContext{}, err
	}
	base = r.base(base)
	baseID, err := r.Engine.ImageID(ctx, base)
	if err != nil {
		return buildContext{}, fmt.Errorf("inspect base image %s: %w", base, err)
	}
	bc, err := makeContext(tmpl, base, baseID, reqs, r.RunDir)
	bc.base = base
	return bc, err
}

// admitted returns the build context of the image for base and
// requirements. When that image is missing, the build is first put to the
// policies, which may refuse it (refused is then the result to report) or
// pin its base (the context is then the one of the amended base).
func (r *Runner) admitted(ctx context.Context, handle uint32, name, base string, reqs []string) (buildContext, []step.Decision, *step.ExecResult, error) {
	bc, err := r.context(ctx, base, reqs)
	if err != nil {
		return bc, nil, nil, err
	}
	exists, err := r.Engine.ImageExists(ctx, bc.tag)
	if err != nil {
		return bc, nil, nil, fmt.Errorf("inspect image %s: %w", bc.tag, err)
	}
	bc.exists = exists
	if exists || r.Steps == nil {
		return bc, nil, nil, nil
	}
	from := r.base(base)
	amended, decisions, refused := r.Steps.AdmitBuild(ctx, handle, name, from, reqs)
	if refused != nil || amended == from {
		return bc, decisions, refused, nil
	}
	bc, err = r.context(ctx, amended, reqs)
	return bc, decisions, nil, err
}

// buildFailure is the error kind and message of a build that failed with
// err: cancelled, naming who cancelled it, when ctx ended.
func buildFailure(ctx context.Context, err error) (kind, msg string) {
	if ctx.Err() != nil {
		return step.ErrorKindCancelled, step.CancelledBy(ctx) + " while its notebook image was built"
	}
	return step.ErrorKindBuild, err.Error()
}

// ensure builds the image of bc unless it exists. Concurrent steps asking
// for the same image share one build. logFile is set when this call built.
func (r *Runner) ensure(ctx context.Context, handle uint32, name string, bc buildContext, live containers.Live) (built bool, logFile string, out logText, err error) {
	if bc.exists {
		return false, "", out, nil // admitted just asked the engine
	}
	for {
		exists, err := r.Engine.ImageExists(ctx, bc.tag)
		if err != nil {
			return false, "", out, fmt.Errorf("inspect image %s: %w", bc.tag, err)
		}
		if exists {
			return false, "", out, nil
		}
		r.mu.Lock()
		if r.inflight == nil {
			r.inflight = map[string]*build{}
		}
		if b, ok := r.inflight[bc.tag]; ok {
			r.mu.Unlock()
			select { // another step builds it: wait, then look again
			case <-b.done:
			case <-ctx.Done():
				return false, "", out, ctx.Err()
			}
			continue
		}
		b := &build{done: make(chan struct{})}
		r.inflight[bc.tag] = b
		r.mu.Unlock()

		if !r.NoLogFile {
			logFile = filepath.ToSlash(filepath.Join(r.StepDirs.Dir(handle, name, 1), "build.log"))
		}
		b.err = r.build(ctx, bc.tag, bc, logFile, live, &out)
		r.mu.Lock()
		delete(r.inflight, bc.tag)
		r.mu.Unlock()
		close(b.done)
		return b.err == nil, logFile, out, b.err
	}
}

func (r *Runner) build(ctx context.Context, tag string, bc buildContext, logFile string, live containers.Live, out *logText) error {
	log, err := containers.NewOutput(r.RunDir, filepath.FromSlash(logFile), live.Stdout)
	if err != nil {
		return err
	}
	fmt.Fprintf(log, "building notebook image %s\n", tag)
	err = r.checkBase(ctx, bc.base)
	if err == nil {
		limits := r.BuildLimits
		if limits.Network == "" {
			limits.Network = "none"
		}
		timeout := time.Duration(limits.Timeout)
		if timeout == 0 {
			timeout = DefaultBuildTimeout
		}
		fmt.Fprintf(log, "build network %s, timeout %s\n", limits.Network, timeout)
		bctx, cancel := context.WithTimeout(ctx, timeout)
		err = r.Engine.BuildImage(bctx, tag, bytes.NewReader(bc.tar), map[string]string{LabelNotebook: tag[len(ImagePrefix)+1:]}, limits, log)
		if err != nil && ctx.Err() == nil && bctx.Err() != nil {
			err = fmt.Errorf("the build ran past its timeout of %s (--build-timeout)", timeout)
		} else if err != nil && limits.Network == "none" {
			err = fmt.Errorf("%w (the build ran without network: pass --build-network to give pip one)", err)
		}
		cancel()
	}
	if err != nil {
		fmt.Fprintf(log, "build failed: %v\n", err)
	}
	out.text, out.cut = log.Text()
	if cerr := log.Close(); err == nil && cerr != nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("building notebook image %s failed: %w", tag, err)
	}
	return nil
}

// checkBase refuses a build whose base image is missing and may not be
// pulled: the engine would pull it from the registry its name gives.
func (r *Runner) checkBase(ctx context.Context, base string) error {
	if r.Pull != containers.PullNever && r.Pulls.Allowed(base) {
		return nil
	}
	exists, err := r.Engine.ImageExists(ctx, base)
	switch {
	case err != nil:
		return fmt.Errorf("inspect base image %s: %w", base, err)
	case !exists:
		if r.Pull == containers.PullNever {
			return fmt.Errorf("base image %s is not present and --pull=never forbids pulling it", base)
		}
		return fmt.Errorf("base %w", r.Pulls.Refusal(base))
	}
	return nil
}

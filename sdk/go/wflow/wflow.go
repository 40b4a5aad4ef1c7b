// Package wflow is the Go guest SDK of wflow: typed helpers over the host
// ABI v1 (docs/abi.md) for workflow modules built with
//
//	GOOS=wasip1 GOARCH=wasm go build -o workflow.wasm .
//
// A workflow is an ordinary main package: it reads its parameters, runs
// steps (containers) blocking with Run or concurrently with Submit and Wait,
// logs, and sets its output. It ends the run by returning from main (success)
// or exiting non-zero (failure).
//
// Concurrency: a Go module built for wasip1 runs on one thread, and a
// blocking call (Run, RunNotebook, Wait) blocks all of it: other goroutines
// do not run until it returns, so three goroutines that each Run a
// one-second step take three seconds. To run steps concurrently, submit them
// first (Submit, SubmitNotebook, or a Group), then wait for them (Wait in a
// loop to react to each as it lands, WaitAll or Group.Wait for all): they
// run in the host, up to the run's --parallel at once, started in the order
// submitted.
//
// Cancellation and deadlines (ABI v1.2): Cancel stops one step, queued or
// running; WaitAny bounds a wait by a context.Context's deadline; a group
// made by NewGroup cancels the rest of its steps at the first failure or
// when its context ends. A module that calls none of them imports none of
// the v1.2 functions; one that also gives no step Secrets and no Network
// "run" runs on every v1 wflow.
//
// Parameters: Param returns one as a string; ParamInt, ParamFloat,
// ParamBool and ParamDuration convert a -p string or a typed --params value;
// Params decodes them all into a struct.
//
//	res, err := wflow.Run(wflow.Step{
//		Name:     "hello",
//		Image:    "busybox",
//		Commands: []wflow.Command{wflow.Shell("echo hello > greeting.txt")},
//	})
package wflow

import (
	"encoding/json"
	"fmt"
	"runtime"
	"time"
	"unsafe"

	"github.com/wflow/wflow/abi"
)

// Command is one command of a step: an argv list (Argv) run as is, or a
// string run with `sh -c` (Shell).
type Command struct {
	argv  []string
	shell string
}

// Argv is a command run as is, without a shell.
func Argv(args ...string) Command { return Command{argv: args} }

// Shell is a command run with `sh -c`, so pipes, && and redirections work.
func Shell(script string) Command { return Command{shell: script} }

// MarshalJSON writes a list for Argv and a string for Shell, as the step
// schema wants.
func (c Command) MarshalJSON() ([]byte, error) {
	if c.argv != nil {
		return json.Marshal(c.argv)
	}
	return json.Marshal(c.shell)
}

// Step is a container step: its commands run one after another, each in its
// own container of Image, with the run directory as working directory; the
// step stops at the first command that exits non-zero. Zero limits mean the
// run's defaults (docs/limits.md).
type Step struct {
	Name     string
	Image    string
	Commands []Command
	Env      map[string]string
	// Secrets puts secrets of the run (wflow run --secret NAME=...) in the
	// step's environment: variable name to secret name. The module never
	// sees the values; wflow masks them as *** in all it prints and records
	// (docs/secrets.md). ABI v1.2.
	Secrets map[string]string

	Timeout  time.Duration // wall clock of all its commands
	CPUs     float64       // CPU cores
	Memory   string        // memory limit, e.g. "512m"
	Pids     int64         // processes at once
	Network  string        // "none", the run's --network mode, or "run": the run's own network, where its services are (ABI v1.2)
	ReadOnly bool          // read-only root filesystem
	User     string        // uid[:gid] or name[:group]
	Retry    *Retry        // run again on failure

	// The step cache (docs/durability.md): Inputs are paths in the run
	// directory whose content is part of the step's key; Outputs the paths
	// it writes, stored and restored by the cache (a step without outputs
	// is never answered from it); NoCache keeps the step out of it.
	Inputs  []string
	Outputs []string
	NoCache bool
}

// Retry is a step's retry policy: up to Retries more runs, waiting Initial,
// then Initial*Factor, ... at most Max between them (zero values: 1s, 2,
// 1m; Initial: NoDelay retries at once). Without OnExitCodes and
// OnErrorKinds, a non-zero exit and the error kinds engine, timeout and oom
// retry; other error kinds never do.
type Retry struct {
	Retries      int
	Initial      time.Duration // 0 means the default 1s; NoDelay means none
	Factor       float64
	Max          time.Duration
	OnExitCodes  []int
	OnErrorKinds []string
}

// stepSpec is the JSON form of a Step (docs/abi.md).
type stepSpec struct {
	Name     string            `json:"name"`
	Image    string            `json:"image"`
	Commands []Command         `json:"commands"`
	Env      map[string]string `json:"env,omitempty"`
	Secrets  map[string]string `json:"secrets,omitempty"`
	Timeout  string            `json:"timeout,omitempty"`
	CPUs     float64           `json:"cpus,omitempty"`
	Memory   string            `json:"memory,omitempty"`
	Pids     int64             `json:"pids,omitempty"`
	Network  string            `json:"network,omitempty"`
	ReadOnly bool              `json:"read_only,omitempty"`
	User     string            `json:"user,omitempty"`
	Retry    *retrySpec        `json:"retry,omitempty"`
	Inputs   []string          `json:"inputs,omitempty"`
	Outputs  []string          `json:"outputs,omitempty"`
	Cache    *bool             `json:"cache,omitempty"`
}

type retrySpec struct {
	Retries      int      `json:"retries"`
	Initial      string   `json:"initial,omitempty"`
	Factor       float64  `json:"factor,omitempty"`
	Max          string   `json:"max,omitempty"`
	OnExitCodes  []int    `json:"on_exit_codes,omitempty"`
	OnErrorKinds []string `json:"on_error_kinds,omitempty"`
}

// NoDelay as Retry.Initial retries at once (a zero Initial means the
// default delay, 1s).
const NoDelay time.Duration = -1

func duration(d time.Duration) string {
	if d == 0 {
		return ""
	}
	return d.String()
}

// retryDelay writes Retry.Initial: NoDelay as "0s".
func retryDelay(d time.Duration) string {
	if d == NoDelay {
		return "0s"
	}
	return duration(d)
}

// MarshalJSON writes the step spec of docs/abi.md.
func (s Step) MarshalJSON() ([]byte, error) {
	spec := stepSpec{Name: s.Name, Image: s.Image, Commands: s.Commands, Env: s.Env, Secrets: s.Secrets, Timeout: duration(s.Timeout),
		CPUs: s.CPUs, Memory: s.Memory, Pids: s.Pids, Network: s.Network, ReadOnly: s.ReadOnly, User: s.User,
		Inputs: s.Inputs, Outputs: s.Outputs}
	if s.NoCache {
		off := false
		spec.Cache = &off
	}
	if r := s.Retry; r != nil {
		spec.Retry = &retrySpec{Retries: r.Retries, Initial: retryDelay(r.Initial), Factor: r.Factor, Max: duration(r.Max),
			OnExitCodes: r.OnExitCodes, OnErrorKinds: r.OnErrorKinds}
	}
	return json.Marshal(spec)
}

// Error kinds of an ExecResult whose commands did not run to their exit
// (docs/abi.md).
const (
	ErrorTimeout   = abi.ErrorKindTimeout   // killed at its timeout (returncode 124)
	ErrorOOM       = abi.ErrorKindOOM       // killed by the OOM killer at its memory limit
	ErrorImage     = abi.ErrorKindImage     // the image is missing and could not be pulled
	ErrorEngine    = abi.ErrorKindEngine    // the container engine failed
	ErrorCancelled = abi.ErrorKindCancelled // the module cancelled it (Cancel), or the run ended first
	ErrorIO        = abi.ErrorKindIO        // the output files could not be written
	ErrorDenied    = abi.ErrorKindDenied    // refused before it ran: by a policy (builtin:network for a network the run does not allow), or a user the run does not allow
	ErrorBuild     = abi.ErrorKindBuild     // the notebook image could not be built
	ErrorCell      = abi.ErrorKindCell      // a notebook cell raised
	ErrorKernel    = abi.ErrorKindKernel    // a notebook's kernel: none named, not in the image, or it died
	ErrorNotebook  = abi.ErrorKindNotebook  // papermill could not run the notebook (missing, no output folder, ...)
	ErrorCacheMiss = abi.ErrorKindCacheMiss // --cache-strict: not in the step cache, so it did not run
)

// ErrorNetwork is an error kind no step gets.
//
// Deprecated: a step asking for a network the run does not allow is refused
// by the policy builtin:network, with ErrorDenied.
const ErrorNetwork = "network"

// Attempt is one run of a step with a retry policy.
type Attempt struct {
	Attempt    int             `json:"attempt"`
	ReturnCode int             `json:"returncode"`
	Error      string          `json:"error"`
	ErrorKind  string          `json:"error_kind"`
	StdoutFile string          `json:"stdout_file"`
	StderrFile string          `json:"stderr_file"`
	Started    time.Time       `json:"started"`
	Finished   time.Time       `json:"finished"`
	DurationMS int64           `json:"duration_ms"`
	Commands   []CommandResult `json:"commands"`
	Resources  *Resources      `json:"resources"` // what its containers used; nil when not measured
}

// Resources is what a step's containers used, as the engine measured them
// (docs/reports.md).
type Resources struct {
	PeakMemoryBytes int64 `json:"peak_memory_bytes"` // the most memory one of them used at once
	CPUMS           int64 `json:"cpu_ms"`            // CPU time of them all, user and system
}

// Limits are the limits a step ran under; a zero field is no limit.
type Limits struct {
	Timeout  Duration `json:"timeout,omitempty"`
	CPUs     float64  `json:"cpus,omitempty"`
	Memory   int64    `json:"memory,omitempty"` // bytes
	Pids     int64    `json:"pids,omitempty"`
	Network  string   `json:"network,omitempty"`
	ReadOnly bool     `json:"read_only,omitempty"`
	User     string   `json:"user,omitempty"`
}

// Duration is a time.Duration written in JSON as Go writes it, "1m30s".
type Duration time.Duration

// MarshalJSON writes d as "1m30s".
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// UnmarshalJSON reads "1m30s".
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	v, err := time.ParseDuration(s)
	*d = Duration(v)
	return err
}

// CommandResult is the outcome of one command of a step.
type CommandResult struct {
	Args       []string `json:"args"`
	ReturnCode int      `json:"returncode"`
	DurationMS int64    `json:"duration_ms"`
}

// ExecResult is a finished step's result. Stdout and Stderr hold at most the
// last 64 KiB of each stream; StdoutFile and StderrFile (relative to the run
// directory, which the module sees as its working directory) hold all of it.
type ExecResult struct {
	Step            string          `json:"step"`
	Handle          Handle          `json:"handle"`
	ReturnCode      int             `json:"returncode"`
	Stdout          string          `json:"stdout"`
	Stderr          string          `json:"stderr"`
	StdoutTruncated bool            `json:"stdout_truncated"`
	StderrTruncated bool            `json:"stderr_truncated"`
	StdoutFile      string          `json:"stdout_file"`
	StderrFile      string          `json:"stderr_file"`
	Error           string          `json:"error"`
	ErrorKind       string          `json:"error_kind"`
	Image           string          `json:"image"`
	ImageID         string          `json:"image_id"`
	Submitted       time.Time       `json:"submitted"` // when the module submitted it; Started is when it got its slot
	Started         time.Time       `json:"started"`
	Finished        time.Time       `json:"finished"`
	DurationMS      int64           `json:"duration_ms"`
	Commands        []CommandResult `json:"commands"`
	Resources       *Resources      `json:"resources"`   // what its containers used; nil when not measured
	Limits          *Limits         `json:"limits"`      // the limits it ran under, the run's defaults and the policies' amendments applied
	Attempts        []Attempt       `json:"attempts"`    // with a retry policy: every run
	Decisions       []Decision      `json:"decisions"`   // what each policy decided
	Notebook        *NotebookInfo   `json:"notebook"`    // notebook steps and builds
	Key             string          `json:"key"`         // the step's cache key (docs/durability.md)
	Cached          bool            `json:"cached"`      // answered from the step cache; no container ran
	CachedFrom      string          `json:"cached_from"` // the run that stored the cached result
	CacheMiss       string          `json:"cache_miss"`  // why the step was not answered from the cache
	// Resumed: answered from an earlier attempt of this run directory
	// (wflow run --resume); no container ran.
	Resumed     bool   `json:"resumed"`
	ResumedFrom string `json:"resumed_from"` // the earlier run that ran it
	Origin      string `json:"origin"`       // "ran", "cached" or "resumed"; "" when refused before it ran
	Service     string `json:"service"`      // the service whose container ran it (Service.Exec)
}

// Decision is what one policy decided about a step (docs/policies.md).
type Decision struct {
	Policy  string `json:"policy"`
	Step    string `json:"step"`   // the step decided on
	Handle  Handle `json:"handle"` // its handle
	Verdict string `json:"verdict"`
	Reason  string `json:"reason"`
	Changes []struct {
		Field  string          `json:"field"`
		Before json.RawMessage `json:"before"`
		After  json.RawMessage `json:"after"`
	} `json:"changes"`
}

// OK reports whether every command of the step ran and exited zero.
func (r ExecResult) OK() bool { return r.ReturnCode == 0 && r.Error == "" }

// Handle names a submitted step until its result has been read.
type Handle uint32

// Error is a failed host call: its errno and the host's message.
type Error struct {
	Errno    abi.Errno `json:"errno"`
	Name     string    `json:"name"`
	Function string    `json:"function"`
	Message  string    `json:"message"`
}

// Error names the function, the errno and the host's message.
func (e *Error) Error() string {
	return fmt.Sprintf("wflow: %s: %s: %s", e.Function, e.Name, e.Message)
}

// lastError builds the Error of a call that returned errno.
func lastError(function string, errno uint32) error {
	e := &Error{Errno: abi.Errno(errno), Name: abi.Errno(errno).String(), Function: function}
	if b, err := readBuffer(errorGet); err == nil {
		json.Unmarshal(b, e)
	}
	return e
}

// readBuffer calls a host function that follows the buffer protocol: when
// the answer is larger than the buffer, it learns the size and calls again.
func readBuffer(call func(buf unsafe.Pointer, bufCap uint32, lenPtr unsafe.Pointer) uint32) ([]byte, error) {
	buf := make([]byte, 4096)
	for {
		var n uint32
		errno := call(unsafe.Pointer(&buf[0]), uint32(len(buf)), unsafe.Pointer(&n))
		runtime.KeepAlive(buf)
		switch abi.Errno(errno) {
		case abi.OK:
			return buf[:n], nil
		case abi.ErrBufferTooSmall:
			buf = make([]byte, n+1)
		default:
			return nil, &Error{Errno: abi.Errno(errno), Name: abi.Errno(errno).String()}
		}
	}
}

// ptr returns the address of b's first byte, or nil for an empty slice.
func ptr(b []byte) unsafe.Pointer {
	if len(b) == 0 {
		return nil
	}
	return unsafe.Pointer(&b[0])
}

// Params decodes the run's parameters (a JSON object: -p key=value pairs as
// strings, --params file values as typed) into v.
func Params(v any) error {
	b, err := readBuffer(paramsGet)
	if err != nil {
		return lastError(abi.FuncParamsGet, uint32(err.(*Error).Errno))
	}
	return json.Unmarshal(b, v)
}

// Param returns one parameter as a string ("" when it is missing); numbers
// and other JSON values are returned in their JSON text.
func Param(name string) string {
	var all map[string]json.RawMessage
	if Params(&all) != nil {
		return ""
	}
	raw, ok := all[name]
	if !ok {
		return ""
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	return string(raw)
}

// Submit starts a step in the background and returns its handle at once.
// Steps run concurrently up to the run's --parallel.
func Submit(s Step) (Handle, error) {
	return submit(abi.FuncStepSubmit, stepSubmit, s)
}

// Run runs a step and returns its result once it has finished. A step that
// exits non-zero is not an error: check ExecResult.OK.
func Run(s Step) (ExecResult, error) {
	return call(abi.FuncStepRun, stepRun, s)
}

// Wait blocks until one of the handles' steps has finished and returns its
// result (whose Handle says which); the handle is then freed. WaitAny is
// Wait with a deadline. Among steps
// already finished, the one that finished first is returned, so calling Wait
// in a loop sees results in the order they landed.
func Wait(handles ...Handle) (ExecResult, error) {
	if len(handles) == 0 {
		return ExecResult{}, fmt.Errorf("wflow: Wait needs at least one handle")
	}
	hs := make([]uint32, len(handles))
	for i, h := range handles {
		hs[i] = uint32(h)
	}
	var ready uint32
	errno := stepWait(unsafe.Pointer(&hs[0]), uint32(len(hs)), unsafe.Pointer(&ready))
	runtime.KeepAlive(hs)
	if errno != 0 {
		return ExecResult{}, lastError(abi.FuncStepWait, errno)
	}
	return result(Handle(ready))
}

// result reads a finished step's result and frees its handle.
func result(h Handle) (ExecResult, error) {
	b, err := readBuffer(func(buf unsafe.Pointer, bufCap uint32, lenPtr unsafe.Pointer) uint32 {
		return stepResult(uint32(h), buf, bufCap, lenPtr)
	})
	if err != nil {
		return ExecResult{}, lastError(abi.FuncStepResult, uint32(err.(*Error).Errno))
	}
	var r ExecResult
	if err := json.Unmarshal(b, &r); err != nil {
		return ExecResult{}, fmt.Errorf("wflow: decode result of handle %d: %w", h, err)
	}
	return r, nil
}

// Log writes an info line to the run's log.
func Log(format string, args ...any) { logAt(abi.LogInfo, format, args...) }

// Warn writes a warning line to the run's log.
func Warn(format string, args ...any) { logAt(abi.LogWarn, format, args...) }

func logAt(level uint32, format string, args ...any) {
	msg := []byte(fmt.Sprintf(format, args...))
	if len(msg) > abi.MaxLogLen {
		msg = msg[:abi.MaxLogLen]
	}
	logWrite(level, ptr(msg), uint32(len(msg)))
	runtime.KeepAlive(msg)
}

// SetOutput sets the workflow's output, recorded in the run report as JSON.
// A later call replaces an earlier one.
func SetOutput(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	errno := outputSet(ptr(b), uint32(len(b)))
	runtime.KeepAlive(b)
	if errno != 0 {
		return lastError(abi.FuncOutputSet, errno)
	}
	return nil
}

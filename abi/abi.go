// Package abi holds the names, return codes and limits of wflow's host ABI,
// the contract between the wflow host and every workflow module.
//
// It is imported by the host (package hostfuncs) and by the Go guest SDK, so it
// depends on nothing but the standard library. docs/abi.md documents every
// function; this package is the single source of the numbers in that document.
package abi

// Version is the ABI version this package describes.
const Version = 1

// ModuleName is the Wasm import module a guest imports the host functions
// from. It carries the version: a module built for another version imports
// another name and is rejected before it runs.
const ModuleName = "wflow_v1"

// ModulePrefix is the prefix every versioned wflow import module starts with.
const ModulePrefix = "wflow_v"

// Revision is the latest minor revision of ABI v1: each revision only adds
// functions (Signature.Since), so a module needs the revision of the newest
// function it imports, and runs on every wflow that speaks it or a later one.
const Revision = 2

// Names of the host functions in ModuleName. Every function takes and returns
// i32 values only; the result is an Errno.
const (
	// FuncParamsGet copies the run's parameters (a JSON object) into a guest buffer.
	// (buf_ptr, buf_cap, len_ptr) -> errno
	FuncParamsGet = "params_get"
	// FuncStepSubmit validates a step spec and starts it in the background.
	// (spec_ptr, spec_len, handle_ptr) -> errno
	FuncStepSubmit = "step_submit"
	// FuncStepRun validates a step spec, runs it and returns once it has finished.
	// (spec_ptr, spec_len, handle_ptr) -> errno
	FuncStepRun = "step_run"
	// FuncStepWait blocks until one of the given handles has finished.
	// (handles_ptr, handles_count, ready_ptr) -> errno
	FuncStepWait = "step_wait"
	// FuncStepResult copies a finished step's ExecResult JSON into a guest buffer
	// and frees the handle. (handle, buf_ptr, buf_cap, len_ptr) -> errno
	FuncStepResult = "step_result"
	// FuncLogWrite writes one log line of the workflow. (level, msg_ptr, msg_len) -> errno
	FuncLogWrite = "log_write"
	// FuncOutputSet sets the workflow's output (a JSON value) for the run report.
	// (json_ptr, json_len) -> errno
	FuncOutputSet = "output_set"
	// FuncErrorGet copies the JSON error message of the last failed call.
	// (buf_ptr, buf_cap, len_ptr) -> errno
	FuncErrorGet = "error_get"
	// FuncNotebookSubmit validates a notebook step spec and starts it (its
	// image built when missing) in the background.
	// (spec_ptr, spec_len, handle_ptr) -> errno
	FuncNotebookSubmit = "notebook_submit"
	// FuncNotebookRun is FuncNotebookSubmit, returning once the notebook ran.
	// (spec_ptr, spec_len, handle_ptr) -> errno
	FuncNotebookRun = "notebook_run"
	// FuncNotebookBuild builds (or finds) a notebook image, returning once done.
	// (spec_ptr, spec_len, handle_ptr) -> errno
	FuncNotebookBuild = "notebook_build"
	// FuncStepCancel cancels a queued or running step; returns at once, and
	// the handle becomes ready once its containers are removed. (handle) -> errno
	FuncStepCancel = "step_cancel"
	// FuncStepWaitTimeout is FuncStepWait giving up with ErrTimeout after
	// timeout_ms milliseconds. (handles_ptr, handles_count, timeout_ms, ready_ptr) -> errno
	FuncStepWaitTimeout = "step_wait_timeout"
	// FuncServiceStart starts a service (a long-lived container on the
	// run's network) and returns once it is ready, with its service id.
	// (spec_ptr, spec_len, service_ptr) -> errno
	FuncServiceStart = "service_start"
	// FuncServiceExec runs an exec spec's commands in a service's
	// container, in the background, like FuncStepSubmit.
	// (service, spec_ptr, spec_len, handle_ptr) -> errno
	FuncServiceExec = "service_exec"
	// FuncServiceStop stops a service and removes its container, returning
	// once it is gone. (service) -> errno
	FuncServiceStop = "service_stop"
)

// Signature declares a host function: its name, its parameters' names and
// the ABI revision that added it. Every parameter and the single result are
// i32. The host exports each function from its Signature, `wflow validate`
// checks imports against it, and docs/abi.md's headings are checked against
// it.
type Signature struct {
	Name   string
	Params []string
	Since  int // the minor revision of the ABI that added it (v1.Since)
}

// Functions lists every host function of this ABI version.
var Functions = []Signature{
	{FuncParamsGet, []string{"buf_ptr", "buf_cap", "len_ptr"}, 0},
	{FuncStepSubmit, []string{"spec_ptr", "spec_len", "handle_ptr"}, 0},
	{FuncStepRun, []string{"spec_ptr", "spec_len", "handle_ptr"}, 0},
	{FuncStepWait, []string{"handles_ptr", "handles_count", "ready_ptr"}, 0},
	{FuncStepResult, []string{"handle", "buf_ptr", "buf_cap", "len_ptr"}, 0},
	{FuncLogWrite, []string{"level", "msg_ptr", "msg_len"}, 0},
	{FuncOutputSet, []string{"json_ptr", "json_len"}, 0},
	{FuncErrorGet, []string{"buf_ptr", "buf_cap", "len_ptr"}, 0},
	{FuncNotebookSubmit, []string{"spec_ptr", "spec_len", "handle_ptr"}, 1},
	{FuncNotebookRun, []string{"spec_ptr", "spec_len", "handle_ptr"}, 1},
	{FuncNotebookBuild, []string{"spec_ptr", "spec_len", "handle_ptr"}, 1},
	{FuncStepCancel, []string{"handle"}, 2},
	{FuncStepWaitTimeout, []string{"handles_ptr", "handles_count", "timeout_ms", "ready_ptr"}, 2},
	{FuncServiceStart, []string{"spec_ptr", "spec_len", "service_ptr"}, 2},
	{FuncServiceExec, []string{"service", "spec_ptr", "spec_len", "handle_ptr"}, 2},
	{FuncServiceStop, []string{"service"}, 2},
}

// Lookup returns the signature of the function name in sigs.
func Lookup(sigs []Signature, name string) (Signature, bool) {
	for _, s := range sigs {
		if s.Name == name {
			return s, true
		}
	}
	return Signature{}, false
}

// Errno is the result of every host function: zero on success, otherwise the
// kind of failure. The details are in the JSON message FuncErrorGet returns.
type Errno uint32

// Return codes. Their values never change within an ABI version.
const (
	// OK: the call succeeded.
	OK Errno = 0
	// ErrFault: a pointer and length do not lie inside the guest's memory.
	ErrFault Errno = 1
	// ErrTooLarge: an input length is over its documented cap.
	ErrTooLarge Errno = 2
	// ErrInvalidJSON: an input is not valid UTF-8 JSON, or nests too deeply.
	ErrInvalidJSON Errno = 3
	// ErrInvalidStep: a step spec is JSON but breaks the step schema.
	ErrInvalidStep Errno = 4
	// ErrBufferTooSmall: the guest's buffer cannot hold the answer; the size
	// needed was written to len_ptr and nothing was consumed.
	ErrBufferTooSmall Errno = 5
	// ErrUnknownHandle: the handle was never issued, or was already freed.
	ErrUnknownHandle Errno = 6
	// ErrPending: the step of the handle has not finished yet.
	ErrPending Errno = 7
	// ErrLimit: a run-wide limit was reached (for example open handles).
	ErrLimit Errno = 8
	// ErrInvalidArgument: a scalar argument is out of range (log level, count).
	ErrInvalidArgument Errno = 9
	// ErrCancelled: the run is being cancelled; the guest should exit.
	ErrCancelled Errno = 10
	// ErrTimeout: FuncStepWaitTimeout's timeout passed before any of its
	// steps finished; nothing was consumed. (ABI v1.2)
	ErrTimeout Errno = 11
	// ErrServiceFailed: FuncServiceStart could not start the service, or
	// it was not ready in time, or a policy refused it; its container is
	// removed, and the message says why. (ABI v1.2)
	ErrServiceFailed Errno = 12
)

var errnoNames = [...]string{
	OK:                 "ok",
	ErrFault:           "fault",
	ErrTooLarge:        "too_large",
	ErrInvalidJSON:     "invalid_json",
	ErrInvalidStep:     "invalid_step",
	ErrBufferTooSmall:  "buffer_too_small",
	ErrUnknownHandle:   "unknown_handle",
	ErrPending:         "pending",
	ErrLimit:           "limit",
	ErrInvalidArgument: "invalid_argument",
	ErrCancelled:       "cancelled",
	ErrTimeout:         "timeout",
	ErrServiceFailed:   "service_failed",
}

// String returns the errno's stable snake_case name, as used in error JSON.
func (e Errno) String() string {
	if int(e) < len(errnoNames) {
		return errnoNames[e]
	}
	return "unknown"
}

// Log levels for FuncLogWrite.
const (
	LogDebug = 0
	LogInfo  = 1
	LogWarn  = 2
	LogError = 3
)

// Limits on what a guest may pass in one call. Inputs over a cap fail with
// ErrTooLarge before the host reads them.
const (
	MaxStepSpecLen   = 1 << 20 // bytes of one step spec
	MaxOutputLen     = 1 << 20 // bytes of the workflow output JSON
	MaxLogLen        = 64 << 10
	MaxWaitHandles   = 4096     // handles in one step_wait call
	MaxOpenHandles   = 4096     // handles issued and not yet freed
	MaxJSONDepth     = 64       // nesting of arrays and objects in any JSON input
	MaxStreamText    = 64 << 10 // bytes of stdout and of stderr kept in an ExecResult
	MaxCommands      = 256      // commands in one step
	MaxArgs          = 4096     // arguments in one argv command
	MaxEnv           = 1024     // entries of a step's env
	MaxStepNameLen   = 63
	MaxImageRefLen   = 512
	MaxStringLen     = 256 << 10 // bytes of any one string in a step spec
	MaxStepPaths     = 256       // entries of a step's inputs, and of its outputs
	MaxServices      = 64        // services running at once in a run
	InvalidHandle    = 0         // never issued
	RunDirMountPoint = "/wflow"  // where the run directory is seen, by steps and by the module
)

// The policy ABI (docs/policies.md): a policy is a WASI command that reads
// the request with FuncPolicyInputGet and answers with FuncPolicyDecide.
const (
	// PolicyModuleName is the import module of policy host functions; it
	// carries the policy ABI's version.
	PolicyModuleName = "wflow_policy_v1"
	// PolicyModulePrefix starts every versioned policy import module.
	PolicyModulePrefix = "wflow_policy_v"
	// FuncPolicyInputGet copies the request (JSON) into a guest buffer.
	// (buf_ptr, buf_cap, len_ptr) -> errno
	FuncPolicyInputGet = "input_get"
	// FuncPolicyDecide records the decision (JSON); once per run of the policy.
	// (json_ptr, json_len) -> errno
	FuncPolicyDecide = "decide"
	// MaxDecisionLen caps the bytes of a decision.
	MaxDecisionLen = 1 << 20
)

// PolicyFunctions lists every host function of the policy ABI.
var PolicyFunctions = []Signature{
	{FuncPolicyInputGet, []string{"buf_ptr", "buf_cap", "len_ptr"}, 0},
	{FuncPolicyDecide, []string{"json_ptr", "json_len"}, 0},
}

// Error kinds: an ExecResult's error_kind, set when a step did not run its
// commands to their exit (docs/abi.md). A step whose command exits non-zero
// has none. The host and the SDKs take them from here.
const (
	ErrorKindImage     = "image"      // the image is missing and could not be pulled
	ErrorKindEngine    = "engine"     // the container engine failed
	ErrorKindCancelled = "cancelled"  // the module cancelled the step (step_cancel), or the run was cancelled, while it ran or waited
	ErrorKindIO        = "io"         // the step's output files could not be written
	ErrorKindTimeout   = "timeout"    // the step ran past its timeout and was killed
	ErrorKindOOM       = "oom"        // a command was killed by the OOM killer at the step's memory limit
	ErrorKindDenied    = "denied"     // refused before it ran: a policy (builtin:network among them), or a user the run does not allow
	ErrorKindBuild     = "build"      // a notebook image could not be built; nothing ran
	ErrorKindCell      = "cell"       // a notebook cell raised; notebook.failed_cell says which
	ErrorKindKernel    = "kernel"     // a notebook's kernel: none named, not in the image, or it died
	ErrorKindNotebook  = "notebook"   // papermill could not run the notebook: missing, not a notebook, no output folder, usage
	ErrorKindCacheMiss = "cache_miss" // --cache-strict: the step was not in the step cache, so it did not run
)

// ErrorKinds lists every error kind of this ABI version.
var ErrorKinds = []string{
	ErrorKindImage, ErrorKindEngine, ErrorKindCancelled, ErrorKindIO, ErrorKindTimeout, ErrorKindOOM,
	ErrorKindDenied, ErrorKindBuild, ErrorKindCell, ErrorKindKernel, ErrorKindNotebook, ErrorKindCacheMiss,
}

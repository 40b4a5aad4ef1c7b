// Package hostfuncs implements wflow's host ABI (import module "wflow_v1",
// documented in docs/abi.md) on top of a StepRunner.
//
// The guest owns its memory: every function reads (ptr, len) arguments and
// writes only into buffers the guest passes, and no host function ever calls
// back into the guest, so guests whose runtime is not re-entrant (standard Go)
// work. Failures are an abi.Errno plus a JSON message from error_get; no guest
// input makes the host panic.
package hostfuncs

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/sys"

	"github.com/wflow/wflow/abi"
	"github.com/wflow/wflow/containers"
	"github.com/wflow/wflow/internal/guestmem"
	"github.com/wflow/wflow/journal"
	"github.com/wflow/wflow/notebooks"
	"github.com/wflow/wflow/secrets"
	"github.com/wflow/wflow/step"
)

// StepRunner runs one step to completion. containers.Runner implements it.
type StepRunner interface {
	Run(ctx context.Context, handle uint32, step step.Step, live containers.Live) step.ExecResult
}

// Observer is told what the run does, for the console and the run report.
// Its methods are called from several goroutines and must not block long.
type Observer interface {
	// StepStarted is called when a step got its run slot and is about to
	// run: its containers start, or the step cache or a resume answers it.
	StepStarted(handle uint32, step step.Step)
	// StepOutput returns where the step's output goes while it runs.
	StepOutput(handle uint32, step step.Step) containers.Live
	// StepFinished is called once per step with its result.
	StepFinished(res step.ExecResult)
	// Log is a log line of the workflow module.
	Log(level int, msg string)
}

// NotebookRunner builds notebook images and runs notebook steps;
// notebooks.Runner implements it.
type NotebookRunner interface {
	Run(ctx context.Context, handle uint32, step notebooks.Step, live containers.Live) step.ExecResult
	Build(ctx context.Context, handle uint32, build notebooks.Build, live containers.Live) step.ExecResult
}

// Config configures a Host. Runner is required; the zero value of every
// other field means its default.
type Config struct {
	Runner    StepRunner
	Params    []byte            // the run's parameters, a JSON object; nil means {}
	Vars      map[string]string // fixed variables substituted into commands
	Parallel  int               // steps running at once; 0 means 4
	Observer  Observer          // nil means nobody listens
	Budget    Budget            // host-call budget of the module
	Notebooks NotebookRunner    // nil: notebook functions fail with errno invalid_argument
	// Calls, when not nil, records every call the module makes, for
	// `wflow replay`; RunDir is then the run directory, whose stream files
	// a result's answer may be recorded by reference to.
	Calls  *journal.Calls
	RunDir string
	// Secrets are the run's secrets: a step naming one the run was not
	// given is refused at submit (invalid_step). nil for none.
	Secrets *secrets.Set
}

// Budget caps what one module may ask of the host over its whole run. A
// module over MaxSteps or MaxResultBytes is ended; over MaxHandles, its
// submit fails with abi.ErrLimit until it reads results. Zero fields mean
// the defaults below.
type Budget struct {
	MaxSteps       int   // steps submitted; default DefaultMaxSteps
	MaxResultBytes int64 // bytes of answers copied into the module; default DefaultMaxResultBytes
	MaxHandles     int   // handles open at once; default abi.MaxOpenHandles
}

// Defaults of Budget.
const (
	DefaultMaxSteps       = 10000
	DefaultMaxResultBytes = 1 << 30
)

// ExitLimit is the exit code of a module ended for going over its budget.
const ExitLimit = 125

// Host is the state behind one module instance's host functions: its
// handles, its last error and its output. Create one per run with New.
type Host struct {
	cfg    Config
	ctx    context.Context // cancelled by Shutdown: stops every step
	cancel context.CancelFunc
	slots  *slots // one per step allowed to run, granted in submission order
	wg     sync.WaitGroup

	mu       sync.Mutex
	tasks    map[uint32]*task
	running  map[uint32]*service // services started (or starting) and not stopped
	next     uint32              // last handle issued
	finished uint64              // completion counter
	changed  chan struct{}       // closed and replaced whenever a step finishes
	results  []step.ExecResult
	output   json.RawMessage
	lastErr  []byte
	started  int    // steps submitted
	returned int64  // bytes of answers copied into the module
	overrun  string // why the module was ended for its budget, or ""

	// cur is the call being recorded (Config.Calls): set and read only by
	// the module's goroutine, which makes one call at a time.
	cur *journal.Call
}

// task is one submitted piece of work: a container step, a notebook step
// or a notebook build.
type task struct {
	handle uint32
	step   step.Step // what the observer is told: the step, or a stand-in naming the notebook
	run    func(ctx context.Context, handle uint32, live containers.Live) step.ExecResult
	slot   *ticket // its request for a run slot
	// submitted is when the module submitted it: the result's Submitted.
	submitted time.Time
	// ctx is the task's own context, below the Host's: step_cancel ends it
	// with the cause step.ErrCancelledByModule.
	ctx    context.Context
	cancel context.CancelCauseFunc
	done   bool
	seq    uint64          // completion order, valid when done
	json   []byte          // the ExecResult, valid when done
	kept   step.ExecResult // the ExecResult as the journal keeps it, valid when done
}

// New returns a Host. Steps run under ctx; Shutdown cancels them.
func New(ctx context.Context, cfg Config) *Host {
	if cfg.Parallel <= 0 {
		cfg.Parallel = 4
	}
	if cfg.Params == nil {
		cfg.Params = []byte("{}")
	}
	if cfg.Observer == nil {
		cfg.Observer = nopObserver{}
	}
	if cfg.Budget.MaxSteps <= 0 {
		cfg.Budget.MaxSteps = DefaultMaxSteps
	}
	if cfg.Budget.MaxResultBytes <= 0 {
		cfg.Budget.MaxResultBytes = DefaultMaxResultBytes
	}
	if cfg.Budget.MaxHandles <= 0 {
		cfg.Budget.MaxHandles = abi.MaxOpenHandles
	}
	ctx, cancel := context.WithCancel(ctx)
	return &Host{
		cfg:     cfg,
		ctx:     ctx,
		cancel:  cancel,
		slots:   newSlots(cfg.Parallel),
		tasks:   map[uint32]*task{},
		running: map[uint32]*service{},
		changed: make(chan struct{}),
		lastErr: errorJSON("", nil),
	}
}

// Instantiate defines the host module abi.ModuleName in r.
func (h *Host) Instantiate(ctx context.Context, r wazero.Runtime) error {
	b := r.NewHostModuleBuilder(abi.ModuleName)
	for _, f := range []struct {
		name string
		fn   guestmem.Handler
	}{
		{abi.FuncParamsGet, h.paramsGet},
		{abi.FuncStepSubmit, h.stepSubmit},
		{abi.FuncStepRun, h.stepRun},
		{abi.FuncStepWait, h.stepWait},
		{abi.FuncStepResult, h.stepResult},
		{abi.FuncLogWrite, h.logWrite},
		{abi.FuncOutputSet, h.outputSet},
		{abi.FuncErrorGet, h.errorGet},
		{abi.FuncNotebookSubmit, h.notebookSubmit},
		{abi.FuncNotebookRun, h.notebookRun},
		{abi.FuncNotebookBuild, h.notebookBuild},
		{abi.FuncStepCancel, h.stepCancel},
		{abi.FuncStepWaitTimeout, h.stepWaitTimeout},
		{abi.FuncServiceStart, h.serviceStart},
		{abi.FuncServiceExec, h.serviceExec},
		{abi.FuncServiceStop, h.serviceStop},
	} {
		sig, ok := abi.Lookup(abi.Functions, f.name)
		if !ok {
			panic("hostfuncs: " + f.name + " is not in abi.Functions") // a bug here, not guest input
		}
		fn := f.fn
		if h.cfg.Calls != nil {
			fn = h.recorded(f.name, fn)
		}
		guestmem.Export(b, f.name, sig.Params, fn, h.failed)
	}
	_, err := b.Instantiate(ctx)
	return err
}

// failed records a failed call's message for error_get and, for a call
// over the module's budget, ends the module.
func (h *Host) failed(ctx context.Context, mod api.Module, name string, err *guestmem.Error) {
	if err.Fatal {
		h.mu.Lock()
		h.overrun = err.Msg
		h.mu.Unlock()
		// End the module now, as proc_exit does: no guest code runs after this call.
		mod.CloseWithExitCode(ctx, ExitLimit)
		panic(sys.NewExitError(ExitLimit))
	}
	// error_get's own failures (a small buffer) must not replace the
	// message the guest is trying to read.
	if name != abi.FuncErrorGet {
		h.mu.Lock()
		h.lastErr = errorJSON(name, err)
		h.mu.Unlock()
	}
}

// errorJSON is the message error_get returns: {"errno", "name", "function", "message"}.
func errorJSON(function string, err *guestmem.Error) []byte {
	msg := struct {
		Errno    uint32 `json:"errno"`
		Name     string `json:"name"`
		Function string `json:"function,omitempty"`
		Message  string `json:"message"`
	}{Name: abi.OK.String()}
	if err != nil {
		msg.Errno, msg.Name, msg.Function, msg.Message = uint32(err.Errno), err.Errno.String(), function, strings.ToValidUTF8(err.Msg, "\uFFFD")
	}
	b, _ := json.Marshal(msg)
	return b
}

// Overrun returns why the module was ended for going over its budget
// (naming the limit and its flag), or "" when it was not.
func (h *Host) Overrun() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.overrun
}

// Results returns the results of every finished step, in the order they
// finished, as the run report keeps them (step.ExecResult.ForReport).
func (h *Host) Results() []step.ExecResult {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]step.ExecResult(nil), h.results...)
}

// Output returns the JSON the module set with output_set, or nil.
func (h *Host) Output() json.RawMessage {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.output
}

// Shutdown cancels every step still running or waiting for a slot, and
// stops every service, and returns once each has finished (their
// containers removed). Call it when
// the module has exited, whatever the way.
func (h *Host) Shutdown() {
	h.cancel()
	h.wg.Wait()
	h.stopAll()
}

type nopObserver struct{}

func (nopObserver) StepStarted(uint32, step.Step) {}
func (nopObserver) StepOutput(uint32, step.Step) containers.Live {
	return containers.Live{}
}
func (nopObserver) StepFinished(step.ExecResult) {}
func (nopObserver) Log(int, string)              {}

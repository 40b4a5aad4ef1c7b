// Package step is the schema of wflow's steps, the contract of the host
// ABI's JSON (docs/abi.md): the step spec (Step, Command, Limits, Retry),
// its strict parsing (ParseStep, CheckJSON, Fields), validation and
// variables (ExpandVars), and what comes back (ExecResult, with its
// attempts, policy decisions and notebook additions). It runs nothing:
// containers runs steps, policies decide on them, notebooks builds on them.
package step

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/wflow/wflow/abi"
	"github.com/wflow/wflow/internal/clip"
)

// Command is one command of a step. A command given as a JSON list is an argv
// run as is; a command given as a JSON string is run with `sh -c`.
type Command struct {
	Argv  []string // set when the spec gave a list
	Shell string   // set when the spec gave a string (Argv is nil then)
}

// Args returns the argv the container runs.
func (c Command) Args() []string {
	if c.Argv != nil {
		return c.Argv
	}
	return []string{"sh", "-c", c.Shell}
}

// MarshalJSON writes the command back in the form it was given.
func (c Command) MarshalJSON() ([]byte, error) {
	if c.Argv != nil {
		return json.Marshal(c.Argv)
	}
	return json.Marshal(c.Shell)
}

// Step is one container step: commands run one after another in containers of
// the same image, env and mounts.
type Step struct {
	Name     string            `json:"name"`
	Image    string            `json:"image"`
	Commands []Command         `json:"commands"`
	Env      map[string]string `json:"env,omitempty"`
	// Secrets puts secrets of the run (--secret) in the step's environment:
	// variable name to secret name. The spec, and so the module, the
	// policies and the records, hold only the names (package secrets).
	Secrets map[string]string `json:"secrets,omitempty"`
	Limits                    // timeout, cpus, memory, pids, network, read_only, user
	Retry   *Retry            `json:"retry,omitempty"`
	// Inputs are paths in the run directory (relative to it, cleaned) whose
	// content is part of the step's cache key; Outputs are the paths it
	// writes, which the step cache stores and restores. Cache false keeps
	// the step out of the cache (nil means true). docs/durability.md.
	Inputs  []string `json:"inputs,omitempty"`
	Outputs []string `json:"outputs,omitempty"`
	Cache   *bool    `json:"cache,omitempty"`
	// LocalImage says the image was built by wflow on this engine (a
	// notebook image): it is never pulled, whatever --pull says. Not part of
	// the spec: a module or a policy cannot set it.
	LocalImage bool `json:"-"`
	// ExecIn is the container of the service whose commands these are
	// (service_exec): they run there, with exec, not in containers of
	// Image. Set by the host, never by a spec; ServiceName names it.
	ExecIn      string `json:"-"`
	ServiceName string `json:"-"`
}

// Error kinds of an ExecResult whose step could not run to completion (the
// ABI's, abi.ErrorKinds). A step whose command exits non-zero has no error
// kind: that is an ordinary result.
const (
	ErrorKindImage     = abi.ErrorKindImage
	ErrorKindEngine    = abi.ErrorKindEngine
	ErrorKindCancelled = abi.ErrorKindCancelled
	ErrorKindIO        = abi.ErrorKindIO
	ErrorKindTimeout   = abi.ErrorKindTimeout
	ErrorKindOOM       = abi.ErrorKindOOM
	ErrorKindDenied    = abi.ErrorKindDenied
	ErrorKindBuild     = abi.ErrorKindBuild
	ErrorKindCell      = abi.ErrorKindCell
	ErrorKindKernel    = abi.ErrorKindKernel
	ErrorKindNotebook  = abi.ErrorKindNotebook
	ErrorKindCacheMiss = abi.ErrorKindCacheMiss
)

// FailedCell is the cell of a notebook run that raised, found in the output
// notebook as papermill finds it, and placed in the input notebook.
type FailedCell struct {
	Index          int    `json:"index"`              // 0-based, in the input notebook (the user's); -1 for the injected parameters cell
	ID             string `json:"id,omitempty"`       // the cell's id in the input notebook (nbformat 4.5)
	Injected       bool   `json:"injected,omitempty"` // the cell papermill injected with the parameters raised
	OutputIndex    int    `json:"output_index"`       // 0-based, in the output notebook (which holds the injected cell and papermill's two error markers)
	ExecutionCount int    `json:"execution_count"`    // as Jupyter numbers it (In [n]), 0 when unknown
	EName          string `json:"ename"`              // the exception's class, e.g. "ValueError"
	EValue         string `json:"evalue"`             // its message
}

// NotebookInfo is what a notebook step or build adds to its ExecResult.
type NotebookInfo struct {
	Notebook     string      `json:"notebook,omitempty"`       // the input, in the run directory
	Output       string      `json:"output,omitempty"`         // the executed notebook, in the run directory
	Image        string      `json:"image"`                    // the notebook image, wflow-notebook:<hash>
	Built        bool        `json:"built"`                    // this step built the image (else it existed)
	BuildLogFile string      `json:"build_log_file,omitempty"` // the build's log, when it built
	FailedCell   *FailedCell `json:"failed_cell,omitempty"`
	// Warnings are what papermill would do silently that the user should
	// know: parameters injected at the top, parameters the notebook does not
	// assign. The console shows them too.
	Warnings []string `json:"warnings,omitempty"`
}

// Verdicts of a policy decision.
const (
	VerdictAllow = "allow"
	VerdictDeny  = "deny"
	VerdictAmend = "amend"
)

// Change is one field of a step a policy amended, with its JSON before and
// after (null when absent).
type Change struct {
	Field  string          `json:"field"`
	Before json.RawMessage `json:"before"`
	After  json.RawMessage `json:"after"`
}

// Decision is what one policy decided about one step: the audit record kept
// in the step's result and in the run report.
type Decision struct {
	Policy  string   `json:"policy"`
	Step    string   `json:"step"`
	Handle  uint32   `json:"handle"`
	Verdict string   `json:"verdict"`
	Reason  string   `json:"reason,omitempty"`
	Changes []Change `json:"changes,omitempty"`
}

// MaxArgsText is how many bytes of a command's argv a result keeps. The
// module wrote the argv (up to abi.MaxStepSpecLen) and knows it; a result,
// kept per attempt in the run report, must not carry it whole: a 1 MB argv
// retried 100 times made a 105 MB report.
const MaxArgsText = 4 << 10

// ResultArgs returns args as a result keeps them: whole up to MaxArgsText
// bytes, else cut there, the last argument kept marking how much was cut.
func ResultArgs(args []string) []string {
	total := 0
	for i, a := range args {
		if total+len(a) <= MaxArgsText {
			total += len(a)
			continue
		}
		rest := 0
		for _, b := range args[i:] {
			rest += len(b)
		}
		keep := MaxArgsText - total
		out := append(append([]string(nil), args[:i]...), clip.String(a, keep))
		return append(out, fmt.Sprintf("[%d more bytes of arguments not kept]", rest-keep))
	}
	return args
}

// CommandResult is the outcome of one command of a step.
type CommandResult struct {
	Args       []string `json:"args"`
	ReturnCode int      `json:"returncode"`
	DurationMS int64    `json:"duration_ms"`
}

// Attempt is one run of a step's commands; a step with a retry policy has
// one per try, in order.
type Attempt struct {
	Attempt    int             `json:"attempt"` // 1 for the first
	ReturnCode int             `json:"returncode"`
	Error      string          `json:"error,omitempty"`
	ErrorKind  string          `json:"error_kind,omitempty"`
	StdoutFile string          `json:"stdout_file,omitempty"`
	StderrFile string          `json:"stderr_file,omitempty"`
	Started    time.Time       `json:"started"`
	Finished   time.Time       `json:"finished"`
	DurationMS int64           `json:"duration_ms"`
	Commands   []CommandResult `json:"commands"`
	Resources  *Resources      `json:"resources,omitempty"` // what its containers used; nil when the engine measured nothing
}

// Resources is what a step's containers used, as the engine measured them
// while they ran (docs/reports.md says how each engine measures).
type Resources struct {
	// PeakMemoryBytes is the most memory one of the containers used at
	// once, as its cgroup counts memory.
	PeakMemoryBytes int64 `json:"peak_memory_bytes"`
	// CPUMS is the CPU time, user and system, of all the containers, in
	// milliseconds.
	CPUMS int64 `json:"cpu_ms"`
}

// Add folds another container's use into r: the larger peak, the sum of
// CPU time. Either may be nil; the result is nil only when both are.
func (r *Resources) Add(o *Resources) *Resources {
	switch {
	case o == nil:
		return r
	case r == nil:
		c := *o
		return &c
	}
	return &Resources{PeakMemoryBytes: max(r.PeakMemoryBytes, o.PeakMemoryBytes), CPUMS: r.CPUMS + o.CPUMS}
}

// ExecResult is a step's result: what the module receives and the run report
// records. Its JSON form is documented in docs/abi.md.
type ExecResult struct {
	Step            string          `json:"step"`
	Handle          uint32          `json:"handle"`
	ReturnCode      int             `json:"returncode"`
	Stdout          string          `json:"stdout"`
	Stderr          string          `json:"stderr"`
	StdoutTruncated bool            `json:"stdout_truncated"`
	StderrTruncated bool            `json:"stderr_truncated"`
	StdoutFile      string          `json:"stdout_file,omitempty"`
	StderrFile      string          `json:"stderr_file,omitempty"`
	Error           string          `json:"error,omitempty"`
	ErrorKind       string          `json:"error_kind,omitempty"`
	Image           string          `json:"image"`
	ImageID         string          `json:"image_id,omitempty"`
	Submitted       time.Time       `json:"submitted,omitzero"` // when the module submitted it (it may wait for a --parallel slot until Started)
	Started         time.Time       `json:"started"`
	Finished        time.Time       `json:"finished"`
	DurationMS      int64           `json:"duration_ms"`
	Commands        []CommandResult `json:"commands"`
	Resources       *Resources      `json:"resources,omitempty"` // what the containers of the attempt it reports used; nil when not measured
	Limits          *Limits         `json:"limits,omitempty"`    // the limits it ran under: its own, the run's defaults under them, as the policies left them
	Attempts        []Attempt       `json:"attempts,omitempty"`  // every try, when the step has a retry policy
	Decisions       []Decision      `json:"decisions,omitempty"` // what each policy decided, in order
	Notebook        *NotebookInfo   `json:"notebook,omitempty"`  // for notebook steps and builds
	// The step cache (docs/durability.md): the step's key; Cached when the
	// result (and the step's outputs) came from the cache, CachedFrom the
	// run that stored it; CacheMiss why a step with a key was not answered
	// from the cache.
	Key        string `json:"key,omitempty"`
	Cached     bool   `json:"cached,omitempty"`
	CachedFrom string `json:"cached_from,omitempty"`
	CacheMiss  string `json:"cache_miss,omitempty"`
	// Resume (`wflow run --resume`): Resumed when the result came from an
	// earlier attempt of the same run directory, ResumedFrom that run.
	Resumed     bool   `json:"resumed,omitempty"`
	ResumedFrom string `json:"resumed_from,omitempty"`
	// Origin says where the result came from: OriginRan, OriginCached or
	// OriginResumed; "" for a step that never got as far as its containers
	// (refused, its image missing, a --cache-strict miss).
	Origin string `json:"origin,omitempty"`
	// Service names the service whose container ran the commands (an exec,
	// service_exec); "" for a step's own containers.
	Service string `json:"service,omitempty"`
}

// Origins of a result (ExecResult.Origin).
const (
	OriginRan     = "ran"     // its containers ran in this run
	OriginCached  = "cached"  // the step cache answered it
	OriginResumed = "resumed" // an earlier attempt of the run directory answered it
)

// Cacheable reports whether the step cache may store the step: it declares
// outputs and does not opt out.
func (s Step) Cacheable() bool { return len(s.Outputs) > 0 && (s.Cache == nil || *s.Cache) }

// OK reports whether every command ran and exited zero.
func (r ExecResult) OK() bool { return r.ReturnCode == 0 && r.Error == "" }

// ReportText is how much of each stream a run report keeps per step; the
// module gets up to abi.MaxStreamText, and the files hold everything.
const ReportText = 4 << 10

// ForReport returns the result as the run report keeps it: stdout and
// stderr cut to their last ReportText bytes, so that a run of thousands of
// steps keeps a bounded record in memory and on disk.
func (r ExecResult) ForReport() ExecResult {
	cut := func(s string, truncated bool) (string, bool) {
		if len(s) <= ReportText {
			return s, truncated
		}
		return clip.Tail(s, ReportText), true
	}
	r.Stdout, r.StdoutTruncated = cut(r.Stdout, r.StdoutTruncated)
	r.Stderr, r.StderrTruncated = cut(r.Stderr, r.StderrTruncated)
	return r
}

// Errors returned by ParseStep and Expand, matched with errors.Is.
var (
	// ErrInvalidJSON: the spec is not valid UTF-8 JSON or nests too deeply.
	ErrInvalidJSON = errors.New("invalid JSON")
	// ErrInvalidStep: the spec is JSON but not a valid step.
	ErrInvalidStep = errors.New("invalid step")
)

func invalidStep(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalidStep, fmt.Sprintf(format, args...))
}

// MapText returns the result with f applied to every text a step's
// processes could have written into it: its streams, its errors (and each
// attempt's), a failed notebook cell's exception and the notebook's
// warnings. The host masks the run's secrets with it (package secrets).
func (r ExecResult) MapText(f func(string) string) ExecResult {
	r.Stdout, r.Stderr, r.Error = f(r.Stdout), f(r.Stderr), f(r.Error)
	if r.Attempts != nil {
		attempts := make([]Attempt, len(r.Attempts))
		for i, a := range r.Attempts {
			a.Error = f(a.Error)
			attempts[i] = a
		}
		r.Attempts = attempts
	}
	if r.Notebook != nil {
		nb := *r.Notebook
		if nb.FailedCell != nil {
			cell := *nb.FailedCell
			cell.EName, cell.EValue = f(cell.EName), f(cell.EValue)
			nb.FailedCell = &cell
		}
		if nb.Warnings != nil {
			warnings := make([]string, len(nb.Warnings))
			for i, w := range nb.Warnings {
				warnings[i] = f(w)
			}
			nb.Warnings = warnings
		}
		r.Notebook = &nb
	}
	return r
}

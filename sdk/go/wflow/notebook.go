package wflow

import (
	"encoding/json"
	"runtime"
	"strconv"
	"strings"
	"time"
	"unsafe"

	"github.com/wflow/wflow/abi"
)

// Notebook is a notebook step: wflow builds (or reuses) an image with
// papermill and Requirements on Base, runs Notebook in it with Parameters,
// and writes the executed notebook to Output (default x.out.ipynb). Paths are
// in the run directory. Parameters keep their JSON types; for a float that
// happens to be whole, use Float(2) so it does not arrive as the integer 2.
type Notebook struct {
	Name         string
	Notebook     string
	Output       string
	Parameters   map[string]any
	Requirements []string // pip requirement lines; "./pkg" is a local package in the run directory
	Base         string   // base image; default the run's --notebook-base
	Kernel       string   // the Jupyter kernel (papermill -k); default the notebook's kernelspec
	Env          map[string]string
	Secrets      map[string]string // as a Step's: variable name to secret name (ABI v1.2)
	Timeout      time.Duration
	Memory       string
	CPUs         float64
}

// Float is a float parameter that stays a float even when it is whole
// (Go's JSON writes float64(2) as 2).
type Float float64

// MarshalJSON writes the number with a decimal point.
func (f Float) MarshalJSON() ([]byte, error) {
	s := strconv.FormatFloat(float64(f), 'g', -1, 64)
	if !strings.ContainsAny(s, ".eEnN") {
		s += ".0"
	}
	return []byte(s), nil
}

// MarshalJSON writes the notebook step spec of docs/abi.md.
func (n Notebook) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		Name         string            `json:"name"`
		Notebook     string            `json:"notebook"`
		Output       string            `json:"output,omitempty"`
		Parameters   map[string]any    `json:"parameters,omitempty"`
		Requirements []string          `json:"requirements,omitempty"`
		Base         string            `json:"base,omitempty"`
		Kernel       string            `json:"kernel,omitempty"`
		Env          map[string]string `json:"env,omitempty"`
		Secrets      map[string]string `json:"secrets,omitempty"`
		Timeout      string            `json:"timeout,omitempty"`
		Memory       string            `json:"memory,omitempty"`
		CPUs         float64           `json:"cpus,omitempty"`
	}{n.Name, n.Notebook, n.Output, n.Parameters, n.Requirements, n.Base, n.Kernel, n.Env, n.Secrets, duration(n.Timeout), n.Memory, n.CPUs})
}

// FailedCell is the notebook cell that raised, placed in the input notebook.
type FailedCell struct {
	Index          int    `json:"index"`        // in the input notebook; -1 for the injected parameters cell
	ID             string `json:"id"`           // the cell's id in the input notebook (nbformat 4.5)
	Injected       bool   `json:"injected"`     // the injected parameters cell raised
	OutputIndex    int    `json:"output_index"` // in the output notebook
	ExecutionCount int    `json:"execution_count"`
	EName          string `json:"ename"`
	EValue         string `json:"evalue"`
}

// NotebookInfo is what a notebook step or build adds to its ExecResult.
type NotebookInfo struct {
	Notebook     string      `json:"notebook"`
	Output       string      `json:"output"`
	Image        string      `json:"image"`
	Built        bool        `json:"built"`
	BuildLogFile string      `json:"build_log_file"`
	FailedCell   *FailedCell `json:"failed_cell"`
	Warnings     []string    `json:"warnings"` // what papermill would have done silently
}

// RunNotebook runs a notebook step and returns its result once it has
// finished. A failing cell is not an error: ExecResult.Notebook.FailedCell
// names it.
func RunNotebook(n Notebook) (ExecResult, error) {
	return call(abi.FuncNotebookRun, notebookRun, n)
}

// SubmitNotebook starts a notebook step in the background; Wait for it.
func SubmitNotebook(n Notebook) (Handle, error) {
	return submit(abi.FuncNotebookSubmit, notebookSubmit, n)
}

// BuildNotebookImage builds (or finds) the image notebook steps with these
// requirements run in; the result's Image names it, Notebook.Built says
// whether it was built now, and Stdout holds the build log's tail.
func BuildNotebookImage(name, base string, requirements []string) (ExecResult, error) {
	return call(abi.FuncNotebookBuild, notebookBuild, struct {
		Name         string   `json:"name"`
		Base         string   `json:"base,omitempty"`
		Requirements []string `json:"requirements,omitempty"`
	}{name, base, requirements})
}

// submit calls a host function that takes a spec (v as JSON) and gives a
// handle: step_submit, step_run, notebook_*.
func submit(name string, fn func(unsafe.Pointer, uint32, unsafe.Pointer) uint32, v any) (Handle, error) {
	spec, err := json.Marshal(v)
	if err != nil {
		return 0, err
	}
	var h uint32
	errno := fn(ptr(spec), uint32(len(spec)), unsafe.Pointer(&h))
	runtime.KeepAlive(spec)
	if errno != 0 {
		return 0, lastError(name, errno)
	}
	return Handle(h), nil
}

// call runs a blocking host function taking a spec and returning a handle,
// and reads the handle's result.
func call(name string, fn func(unsafe.Pointer, uint32, unsafe.Pointer) uint32, v any) (ExecResult, error) {
	h, err := submit(name, fn, v)
	if err != nil {
		return ExecResult{}, err
	}
	return result(h)
}

package notebooks

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"github.com/tidwall/gjson"

	"github.com/wflow/wflow/internal/clip"
	"github.com/wflow/wflow/rundir"
	"github.com/wflow/wflow/step"
)

// Tags papermill gives the cells it adds.
const (
	tagParameters = "parameters"               // the user's cell of defaults
	tagInjected   = "injected-parameters"      // the cell papermill injects
	tagErrorCell  = "papermill-error-cell-tag" // papermill's two markers of a failed run
)

// input is what wflow reads of a notebook before it runs it: enough to
// refuse what papermill would fail on, warn about what it would do
// silently, and find a failing cell in the user's own notebook.
type input struct {
	kernel   string // the kernel papermill will start
	language string // metadata.kernelspec.language, or metadata.language_info.name
	cells    []inputCell
	injected bool // the notebook already has an injected parameters cell (an output of papermill)
	warnings []string
}

// inputCell is what wflow keeps of a cell of the input notebook.
type inputCell struct {
	id     string // nbformat 4.5; "" when it has none
	marker bool   // an error marker of an earlier papermill run, which papermill drops
}

// position is the index in the input notebook of the n-th cell papermill
// keeps (its error markers are dropped), or -1.
func (in input) position(n int) int {
	for i, c := range in.cells {
		if !c.marker {
			if n == 0 {
				return i
			}
			n--
		}
	}
	return -1
}

// Caps of what wflow reads of a notebook: steps write the run directory,
// and may have made a notebook any size or shape.
const (
	maxNotebookRead  = 64 << 20 // bytes
	maxNotebookDepth = 512      // JSON nesting (outputs may hold JSON data)
	maxCells         = 100_000
)

// errNotNotebook is what readNotebook says of JSON it will not read.
var errNotNotebook = errors.New("not a Jupyter notebook (JSON with a list of cells)")

// readNotebook reads a notebook of the run directory within the caps,
// checking its nesting before anything parses it.
func readNotebook(runDir, rel string) ([]byte, error) {
	b, err := rundir.ReadFile(runDir, rel, maxNotebookRead)
	if err != nil {
		return nil, err
	}
	if err := step.CheckJSON(b, maxNotebookDepth); err != nil || !gjson.GetBytes(b, "cells").IsArray() {
		return nil, errNotNotebook
	}
	return b, nil
}

// inspect reads the step's input notebook from the run directory and checks
// what papermill needs: a notebook, a kernel name, the output's folder. Its
// errors are the step's result, with error kind "notebook" or "kernel".
func inspect(runDir string, s Step) (input, string, error) {
	var in input
	rel := filepath.FromSlash(relRunDir(s.Notebook))
	b, err := readNotebook(runDir, rel)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return in, step.ErrorKindNotebook, fmt.Errorf("notebook %s is not in the run directory", relRunDir(s.Notebook))
	case errors.Is(err, errNotNotebook):
		return in, step.ErrorKindNotebook, fmt.Errorf("notebook %s is %v, nested at most %d deep", relRunDir(s.Notebook), err, maxNotebookDepth)
	case err != nil:
		return in, step.ErrorKindNotebook, fmt.Errorf("notebook %s: %v", relRunDir(s.Notebook), err)
	}
	if n := gjson.GetBytes(b, "cells.#").Int(); n > maxCells {
		return in, step.ErrorKindNotebook, fmt.Errorf("notebook %s has %d cells, more than the %d wflow reads", relRunDir(s.Notebook), n, maxCells)
	}
	if v := gjson.GetBytes(b, "nbformat"); v.Exists() && v.Int() != 4 {
		return in, step.ErrorKindNotebook, fmt.Errorf("notebook %s is nbformat %d; papermill runs nbformat 4 notebooks", relRunDir(s.Notebook), v.Int())
	}
	if out := path.Dir(relRunDir(s.Output)); out != "." {
		info, err := statIn(runDir, filepath.FromSlash(out))
		if err != nil || !info.IsDir() {
			return in, step.ErrorKindNotebook, fmt.Errorf("the output's folder %s is not a folder in the run directory (papermill does not create it)", out)
		}
	}
	meta := gjson.GetBytes(b, "metadata")
	in.kernel = s.Kernel
	if in.kernel == "" {
		in.kernel = meta.Get("kernelspec.name").String()
	}
	if in.kernel == "" {
		return in, step.ErrorKindKernel, fmt.Errorf("notebook %s names no kernel (metadata.kernelspec.name) and the step gives none (\"kernel\")", relRunDir(s.Notebook))
	}
	in.language = meta.Get("kernelspec.language").String()
	if in.language == "" {
		in.language = meta.Get("language_info.name").String()
	}

	var paramsCell gjson.Result
	gjson.GetBytes(b, "cells").ForEach(func(_, cell gjson.Result) bool {
		in.cells = append(in.cells, inputCell{id: clip.String(cell.Get("id").String(), 500), marker: hasTag(cell, tagErrorCell)})
		if hasTag(cell, tagInjected) {
			in.injected = true
		}
		if hasTag(cell, tagParameters) && !paramsCell.Exists() {
			paramsCell = cell
		}
		return true
	})
	in.warnings = paramWarnings(s.Parameters, paramsCell, in)
	return in, "", nil
}

// statIn stats rel inside dir without following a link out of it.
func statIn(dir, rel string) (os.FileInfo, error) {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, err
	}
	defer root.Close()
	return root.Stat(rel)
}

// hasTag reports whether a cell's metadata.tags holds tag.
func hasTag(cell gjson.Result, tag string) bool {
	found := false
	cell.Get("metadata.tags").ForEach(func(_, t gjson.Result) bool {
		found = t.Type == gjson.String && t.Str == tag
		return !found
	})
	return found
}

// assigned matches a line of a Python parameters cell that assigns a name,
// as papermill's Python translator reads it.
var assigned = regexp.MustCompile(`^(\w+)\s*(:[^=]*)?=[^=]`)

// paramWarnings says what papermill does silently with the parameters: with
// no cell tagged "parameters" it injects them at the top, where the
// notebook's own assignments overwrite them; a name the parameters cell
// does not assign is one the notebook may never read (papermill logs
// "Passed unknown parameter").
func paramWarnings(params []byte, paramsCell gjson.Result, in input) []string {
	var names []string
	gjson.ParseBytes(params).ForEach(func(k, _ gjson.Result) bool {
		names = append(names, k.String())
		return true
	})
	if len(names) == 0 {
		return nil
	}
	sort.Strings(names)
	if !paramsCell.Exists() {
		if in.injected {
			return nil // papermill replaces the injected cell, where it is
		}
		return []string{fmt.Sprintf("the notebook has no cell tagged %q: papermill injects the parameters (%s) as its first cell, so the notebook's own assignments of them win", tagParameters, nameList(names))}
	}
	if in.language != "" && in.language != "python" {
		return nil // only Python cells are read for names
	}
	known := map[string]bool{}
	var source strings.Builder
	if src := paramsCell.Get("source"); src.IsArray() {
		src.ForEach(func(_, line gjson.Result) bool { source.WriteString(line.String()); return true })
	} else {
		source.WriteString(src.String())
	}
	for _, line := range strings.Split(source.String(), "\n") {
		if m := assigned.FindStringSubmatch(line + "\n"); m != nil {
			known[m[1]] = true
		}
	}
	var unknown []string
	for _, n := range names {
		if !known[n] {
			unknown = append(unknown, n)
		}
	}
	if len(unknown) == 0 {
		return nil
	}
	return []string{fmt.Sprintf("the notebook's parameters cell does not assign %s: papermill passes them anyway (\"Passed unknown parameter\"), and the notebook may never read them", nameList(unknown))}
}

// nameList joins parameter names for a warning: the first 20, each cut to
// 64 bytes, and how many more there are.
func nameList(names []string) string {
	const most = 20
	shown := make([]string, 0, min(len(names), most))
	for _, n := range names[:min(len(names), most)] {
		shown = append(shown, clip.String(n, 64))
	}
	s := strings.Join(shown, ", ")
	if len(names) > most {
		s += fmt.Sprintf(" and %d more", len(names)-most)
	}
	return s
}

// failedCell reads the output notebook and returns the cell papermill
// failed on, as papermill finds it: the first with an error output other
// than SystemExit(0), or marked as raised. Index and ID place it in the
// input notebook (in): by its id when the input has it (ids survive
// papermill), else by counting the cells papermill kept (its injected cell
// and error markers are not the user's). nil when the output names no
// failing cell.
func failedCell(runDir, outRel string, in input) *step.FailedCell {
	b, err := readNotebook(runDir, outRel)
	if err != nil {
		return nil
	}
	var found *step.FailedCell
	kept := 0 // the output's cells so far that stand for input cells
	gjson.GetBytes(b, "cells").ForEach(func(i, cell gjson.Result) bool {
		if i.Int() > maxCells+3 {
			return false
		}
		if hasTag(cell, tagErrorCell) {
			return true
		}
		isNewInjection := hasTag(cell, tagInjected) && !in.injected
		exited := false
		var raised *step.FailedCell
		cell.Get("outputs").ForEach(func(_, o gjson.Result) bool {
			if o.Get("output_type").String() != "error" {
				return true
			}
			ename, evalue := o.Get("ename").String(), o.Get("evalue").String()
			if ename == "SystemExit" && (evalue == "" || evalue == "0") {
				exited = true
				return true
			}
			raised = &step.FailedCell{EName: clip.String(ename, 500), EValue: clip.String(evalue, 500)}
			return false
		})
		if raised == nil && !exited && cell.Get("metadata.papermill.exception").Bool() {
			raised = &step.FailedCell{EName: "CellExecutionError"}
		}
		if raised == nil {
			if !isNewInjection {
				kept++
			}
			return true
		}
		raised.OutputIndex = int(i.Int())
		raised.ExecutionCount = int(cell.Get("execution_count").Int())
		raised.Index = -1
		if isNewInjection {
			raised.Injected = true
		} else {
			if id := cell.Get("id").String(); id != "" {
				for j, c := range in.cells {
					if c.id == id && !c.marker {
						raised.Index = j
						break
					}
				}
			}
			if raised.Index < 0 {
				raised.Index = in.position(kept)
			}
			if raised.Index >= 0 {
				raised.ID = in.cells[raised.Index].id
			}
		}
		found = raised
		return false
	})
	return found
}

// cellError is the step's error for a failing cell: where it is in the
// user's notebook, and what it raised.
func cellError(c *step.FailedCell) string {
	where := fmt.Sprintf("cell %d", c.Index)
	switch {
	case c.Injected:
		where = "the injected parameters cell"
	case c.Index < 0:
		where = fmt.Sprintf("cell %d of the output notebook", c.OutputIndex)
	case c.ID != "":
		where += fmt.Sprintf(" (id %q)", c.ID)
	}
	if c.ExecutionCount > 0 {
		where += fmt.Sprintf(", In [%d],", c.ExecutionCount)
	}
	msg := fmt.Sprintf("%s raised %s", where, c.EName)
	if c.EValue != "" {
		msg += ": " + c.EValue
	}
	return msg
}

// papermillFailure says why papermill exited rc without a failing cell,
// from its exit code and the last line of its traceback on stderr (a
// Python program's last words: "ExceptionClass: message").
func papermillFailure(rc int, stderr, kernel string) (kind, msg string) {
	last := lastException(stderr)
	switch {
	case rc == 2 && strings.Contains(stderr, "Usage: papermill"):
		return step.ErrorKindNotebook, "papermill refused its command line: " + lastLine(stderr)
	case rc == 138:
		return step.ErrorKindKernel, fmt.Sprintf("the notebook's kernel %s died (papermill exit 138); out of memory is the usual cause", kernel)
	case strings.Contains(last, "NoSuchKernel"):
		return step.ErrorKindKernel, fmt.Sprintf("the image has no kernel named %s (the notebook's kernelspec, or the step's \"kernel\"): add its package to the requirements (ipykernel for python3) or name another kernel", kernel)
	case strings.Contains(last, "No kernel name found"):
		return step.ErrorKindKernel, "the notebook names no kernel (metadata.kernelspec.name) and the step gives none (\"kernel\")"
	case last != "":
		return step.ErrorKindNotebook, fmt.Sprintf("papermill failed (exit %d): %s", rc, last)
	}
	return step.ErrorKindNotebook, fmt.Sprintf("papermill failed (exit %d) and printed no error; see the step's stderr", rc)
}

// lastException is the last line of the last Python traceback in text.
func lastException(text string) string {
	i := strings.LastIndex(text, "Traceback (most recent call last):")
	if i < 0 {
		return ""
	}
	var last string
	for _, line := range strings.Split(text[i:], "\n")[1:] {
		if line != "" && line[0] != ' ' && line[0] != '\t' {
			last = line
		}
	}
	return clip.String(last, 500)
}

// lastLine is text's last non-empty line.
func lastLine(text string) string {
	lines := strings.Split(strings.TrimRight(text, "\n"), "\n")
	return clip.String(lines[len(lines)-1], 500)
}

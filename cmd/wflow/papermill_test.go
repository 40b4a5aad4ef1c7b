package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wflow/wflow/internal/testenv"
	"github.com/wflow/wflow/report"
)

// nbCell is a code cell of a test notebook: its id, tags and source.
type nbCell struct{ id, tags, source string }

// writeNotebook writes an nbformat 4.5 notebook of code cells into dir;
// kernel "" leaves out the kernelspec.
func writeNotebook(t *testing.T, dir, name, kernel string, cells ...nbCell) {
	t.Helper()
	list := []map[string]any{}
	for _, c := range cells {
		tags := []string{}
		if c.tags != "" {
			tags = strings.Split(c.tags, ",")
		}
		list = append(list, map[string]any{"cell_type": "code", "id": c.id, "source": c.source,
			"metadata": map[string]any{"tags": tags}, "outputs": []any{}, "execution_count": nil})
	}
	meta := map[string]any{}
	if kernel != "" {
		meta["kernelspec"] = map[string]any{"name": kernel, "language": "python", "display_name": "Python 3"}
	}
	b, _ := json.Marshal(map[string]any{"nbformat": 4, "nbformat_minor": 5, "metadata": meta, "cells": list})
	if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, name)), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// outputNotebook is what the tests read of an output notebook.
type outputNotebook struct {
	Metadata struct {
		Papermill struct {
			Parameters map[string]any `json:"parameters"`
		} `json:"papermill"`
	} `json:"metadata"`
	Cells []struct {
		ID       string `json:"id"`
		Metadata struct {
			Tags      []string `json:"tags"`
			Papermill struct {
				Status string `json:"status"`
			} `json:"papermill"`
		} `json:"metadata"`
		Source         any `json:"source"`
		ExecutionCount *int
	} `json:"cells"`
}

func readNotebook(t *testing.T, path string) outputNotebook {
	t.Helper()
	var nb outputNotebook
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &nb); err != nil {
		t.Fatal(err)
	}
	return nb
}

// tagsOf lists each cell's first tag ("-" for none).
func (nb outputNotebook) tagsOf() string {
	var tags []string
	for _, c := range nb.Cells {
		tag := "-"
		if len(c.Metadata.Tags) > 0 {
			tag = c.Metadata.Tags[0]
		}
		tags = append(tags, tag)
	}
	return strings.Join(tags, " ")
}

// nbResult is what the tests read of a notebook step's ExecResult.
type nbResult struct {
	ReturnCode int    `json:"returncode"`
	Error      string `json:"error"`
	ErrorKind  string `json:"error_kind"`
	Errno      int    `json:"errno"`
	Notebook   struct {
		FailedCell *struct {
			Index          int    `json:"index"`
			ID             string `json:"id"`
			OutputIndex    int    `json:"output_index"`
			ExecutionCount int    `json:"execution_count"`
			EName          string `json:"ename"`
			EValue         string `json:"evalue"`
		} `json:"failed_cell"`
		Warnings []string `json:"warnings"`
	} `json:"notebook"`
}

// runNotebooks runs notebook step specs, one after another, in rundir and
// returns their results by step name.
func runNotebooks(t *testing.T, rundir string, extra []string, specs ...string) (map[string]nbResult, string) {
	t.Helper()
	args := append([]string{"run", testenv.GoGuest(t, "./testdata/guests/rawspecs"), "--rundir", rundir,
		"-p", "specs=[" + strings.Join(specs, ",") + "]"}, testenv.NotebookFlags()...)
	code, stdout, stderr := wflow(t, append(args, extra...)...)
	if code != exitOK {
		t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
	}
	var results []json.RawMessage
	if err := json.Unmarshal(readReport(t, rundir).Output, &results); err != nil {
		t.Fatal(err)
	}
	out := map[string]nbResult{}
	for i, raw := range results {
		var r nbResult
		json.Unmarshal(raw, &r)
		var name struct{ Step string }
		json.Unmarshal(raw, &name)
		if name.Step == "" {
			name.Step = specs[i]
		}
		out[name.Step] = r
	}
	return out, stdout
}

// TestPapermillFidelity runs notebooks through papermill (the test image's
// stand-in, which mirrors papermill 2.6: docs/notebooks.md) and checks what
// a notebook user sees: the output notebook as papermill leaves it, and the
// step's result naming the cell in the user's own notebook.
func TestPapermillFidelity(t *testing.T) {
	testenv.Python(t)
	dir := t.TempDir()
	const record = `import json
json.dump({k: [type(v).__name__, v] for k, v in [("a", a), ("b", b)]}, open(out, "w"))`
	writeNotebook(t, dir, "fail.ipynb", "python3",
		nbCell{"intro", "", "x = 0"},
		nbCell{"params", "parameters", "fail = False"},
		nbCell{"work", "", "y = 1"},
		nbCell{"check", "", "if fail:\n    raise ValueError('asked to fail')"})
	writeNotebook(t, dir, "untagged.ipynb", "python3",
		nbCell{"own", "", "a = 'own'\nb = 'own'\nout = 'untagged.json'"},
		nbCell{"rec", "", record})
	writeNotebook(t, dir, "types.ipynb", "python3",
		nbCell{"p", "parameters", "a = 0\nb = ''\nout = 'types.json'"},
		nbCell{"rec", "", record})
	writeNotebook(t, dir, "exit.ipynb", "python3",
		nbCell{"a", "", "import sys\nopen('exit-ran', 'w').close()\nsys.exit(0)"},
		nbCell{"b", "", "open('after-exit-ran', 'w').close()"})
	writeNotebook(t, dir, "nokernel.ipynb", "", nbCell{"a", "", "open('nokernel-ran', 'w').close()"})
	writeNotebook(t, dir, "py9.ipynb", "python9", nbCell{"a", "", "x = 1"})
	writeNotebook(t, dir, "br{x}/a{b}.ipynb", "python3", nbCell{"p", "parameters", "x = 0"}, nbCell{"boom", "", "1/0"})
	// nbformat cannot read it: papermill fails before it writes its output.
	os.WriteFile(filepath.Join(dir, "unreadable.ipynb"), []byte(`{"nbformat":4,"nbformat_minor":5,"metadata":{"kernelspec":{"name":"python3"}},"cells":[{"cell_type":"code","id":"x","metadata":{},"source":"","outputs":5}]}`), 0o644)

	res, stdout := runNotebooks(t, dir, []string{"--pull", "always"},
		`{"name":"fail","notebook":"fail.ipynb","parameters":{"fail":true}}`,
		`{"name":"rerun","notebook":"fail.out.ipynb","output":"rerun.out.ipynb","parameters":{"fail":false}}`,
		`{"name":"noparams","notebook":"fail.ipynb","output":"noparams.out.ipynb"}`,
		`{"name":"untagged","notebook":"untagged.ipynb","parameters":{"a":"param","b":"param"}}`,
		`{"name":"types","notebook":"types.ipynb","parameters":{"a":1e-7,"b":"\ud83c\udf89 \u2028"}}`,
		`{"name":"exit","notebook":"exit.ipynb"}`,
		`{"name":"nokernel","notebook":"nokernel.ipynb"}`,
		`{"name":"kernel-field","notebook":"nokernel.ipynb","output":"kf.out.ipynb","kernel":"python3"}`,
		`{"name":"py9","notebook":"py9.ipynb"}`,
		`{"name":"nofolder","notebook":"fail.ipynb","output":"missing/fail.out.ipynb"}`,
		`{"name":"braces","notebook":"br{x}/a{b}.ipynb","output":"br{x}/o{b}.ipynb","parameters":{"x":1}}`,
		`{"name":"stale","notebook":"unreadable.ipynb","output":"fail.out.ipynb"}`,
	)

	// A failing cell: papermill's two markers, the cell named as the user's notebook numbers it.
	fail := res["fail"]
	if c := fail.Notebook.FailedCell; fail.ErrorKind != "cell" || c == nil || c.Index != 3 || c.ID != "check" || c.OutputIndex != 6 ||
		c.EName != "ValueError" || c.EValue != "asked to fail" || !strings.HasPrefix(fail.Error, `cell 3 (id "check"), In [5], raised ValueError`) {
		t.Errorf("failing cell: %+v %+v", fail, c)
	}
	if got := readNotebook(t, filepath.Join(dir, "fail.out.ipynb")).tagsOf(); got != "papermill-error-cell-tag - parameters injected-parameters - papermill-error-cell-tag -" {
		t.Errorf("output of a failing run: cells tagged %s", got)
	}
	// A re-run of that output: the injected cell replaced, the markers gone.
	if r := res["rerun"]; r.ReturnCode != 0 || r.Error != "" {
		t.Errorf("re-run: %+v", r)
	}
	if got := readNotebook(t, filepath.Join(dir, "rerun.out.ipynb")).tagsOf(); got != "- parameters injected-parameters - -" {
		t.Errorf("re-run output: cells tagged %s", got)
	}
	// No parameters: no injected cell.
	nb := readNotebook(t, filepath.Join(dir, "noparams.out.ipynb"))
	if got := nb.tagsOf(); res["noparams"].ReturnCode != 0 || got != "- parameters - -" || len(nb.Metadata.Papermill.Parameters) != 0 {
		t.Errorf("no parameters: %+v, cells tagged %s, parameters %v", res["noparams"], got, nb.Metadata.Papermill.Parameters)
	}
	// No cell tagged parameters: injected first, overwritten, and wflow says so.
	var values map[string][2]any
	b, _ := os.ReadFile(filepath.Join(dir, "untagged.json"))
	json.Unmarshal(b, &values)
	if u := res["untagged"]; u.ReturnCode != 0 || len(u.Notebook.Warnings) != 1 || !strings.Contains(u.Notebook.Warnings[0], `no cell tagged "parameters"`) ||
		values["a"][1] != "own" || !strings.Contains(stdout, `[untagged] warning: the notebook has no cell tagged "parameters"`) {
		t.Errorf("untagged: %+v, values %v", u, values)
	}
	// Types: 1e-7 arrives as a float, a character outside the BMP as itself.
	b, _ = os.ReadFile(filepath.Join(dir, "types.json"))
	values = nil
	json.Unmarshal(b, &values)
	if values["a"][0] != "float" || values["a"][1] != 1e-7 || values["b"][0] != "str" || values["b"][1] != "🎉 \u2028" {
		t.Errorf("types: %+v (%s)", res["types"], b)
	}
	// sys.exit(0) ends the notebook with success; the cells after it do not run.
	if _, err := os.Stat(filepath.Join(dir, "after-exit-ran")); res["exit"].ReturnCode != 0 || res["exit"].Error != "" || err == nil {
		t.Errorf("sys.exit(0): %+v, later cell ran: %v", res["exit"], err == nil)
	}
	// Kernels: none named; named by the step; not in the image.
	if r := res["nokernel"]; r.ErrorKind != "kernel" || !strings.Contains(r.Error, "names no kernel") {
		t.Errorf("no kernelspec: %+v", r)
	}
	if r := res["kernel-field"]; r.ReturnCode != 0 || r.Error != "" {
		t.Errorf("kernel field: %+v", r)
	}
	if r := res["py9"]; r.ErrorKind != "kernel" || !strings.Contains(r.Error, "no kernel named python9") {
		t.Errorf("missing kernel: %+v", r)
	}
	if r := res["nofolder"]; r.ErrorKind != "notebook" || !strings.Contains(r.Error, "folder missing") {
		t.Errorf("missing output folder: %+v", r)
	}
	// Braces in paths reach papermill as written (it formats paths with the parameters).
	if r := res["braces"]; r.ErrorKind != "cell" || r.Notebook.FailedCell == nil || r.Notebook.FailedCell.ID != "boom" || r.Notebook.FailedCell.EName != "ZeroDivisionError" {
		t.Errorf("braces: %+v", r)
	}
	if _, err := os.Stat(filepath.Join(dir, "br{x}", "o{b}.ipynb")); err != nil {
		t.Errorf("braces: %v", err)
	}
	// papermill failed before writing its output: the output left by the
	// step "fail" does not make this a failing cell.
	if r := res["stale"]; r.ErrorKind != "notebook" || r.Notebook.FailedCell != nil || !strings.Contains(r.Error, "TypeError") {
		t.Errorf("stale output: %+v", r)
	}
}

// TestNotebookStepsAreCachedWhenTheyDeclareOutputs: a notebook step that
// declares outputs is answered from the step cache in another run
// directory (the output notebook and its declared output restored, no
// container created); a changed parameter misses, and says so; a notebook
// step without outputs always runs.
func TestNotebookStepsAreCachedWhenTheyDeclareOutputs(t *testing.T) {
	e := testenv.Python(t)
	cacheDir := t.TempDir()
	specs := func(n int) []string {
		return []string{
			fmt.Sprintf(`{"name":"nb","notebook":"nb.ipynb","parameters":{"n":%d},"outputs":["n.txt"]}`, n),
			`{"name":"plain","notebook":"plain.ipynb","parameters":{"n":0}}`,
		}
	}
	run := func(n int) (string, map[string]nbResult, int) {
		dir := t.TempDir()
		writeNotebook(t, dir, "nb.ipynb", "python3",
			nbCell{"p", "parameters", "n = 0"},
			nbCell{"w", "", "open('n.txt', 'w').write(str(n * 2))"})
		writeNotebook(t, dir, "plain.ipynb", "python3", nbCell{"p", "parameters", "n = 1"})
		start := time.Now()
		res, _ := runNotebooks(t, dir, []string{"--cache-dir", cacheDir}, specs(n)...)
		created, err := e.Created(context.Background(), start, time.Now(), "io.wflow.step=nb")
		if err != nil {
			t.Fatal(err)
		}
		if plain, err := e.Created(context.Background(), start, time.Now(), "io.wflow.step=plain"); err != nil || plain != 1 {
			t.Errorf("the step without outputs ran %d times, want 1 (%v)", plain, err)
		}
		return dir, res, created
	}
	_, first, created := run(21)
	if first["nb"].ReturnCode != 0 || created != 1 {
		t.Fatalf("first run: %+v, %d containers", first["nb"], created)
	}
	dir, second, created := run(21)
	var raw struct {
		Cached    bool   `json:"cached"`
		CacheMiss string `json:"cache_miss"`
	}
	b, _ := os.ReadFile(filepath.Join(dir, report.Path))
	var rep struct{ Steps []json.RawMessage }
	json.Unmarshal(b, &rep)
	for _, s := range rep.Steps {
		var which struct{ Step string }
		json.Unmarshal(s, &which)
		if which.Step == "nb" {
			json.Unmarshal(s, &raw)
		}
	}
	if !raw.Cached || created != 0 || second["nb"].ReturnCode != 0 {
		t.Errorf("second run: cached %t, %d containers for nb", raw.Cached, created)
	}
	if got := fileText(t, dir, "n.txt"); got != "42" {
		t.Errorf("restored n.txt = %q", got)
	}
	if nb := readNotebook(t, filepath.Join(dir, "nb.out.ipynb")); len(nb.Cells) == 0 {
		t.Error("the output notebook was not restored")
	}
	_, third, created := run(5)
	if created != 1 || third["nb"].ReturnCode != 0 {
		t.Errorf("a changed parameter: %d containers, %+v", created, third["nb"])
	}
}

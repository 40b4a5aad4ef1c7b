package notebooks

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tidwall/gjson"

	"github.com/wflow/wflow/step"
)

func TestParamsDocument(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{`{}`, ``},
		{``, ``},
		{`{"a":1,"b":-2,"c":12345678901234567890}`, `{"a": 1, "b": -2, "c": 12345678901234567890}`},
		// YAML 1.1 reads 1e-7 and 1e3 as strings: a dot and a signed exponent make them floats.
		{`{"a":1e-7,"b":1e-07,"c":1e+21,"d":1e3,"e":1E3,"f":2.5e-3,"g":2.0,"h":-0.0}`,
			`{"a": 1.0e-7, "b": 1.0e-07, "c": 1.0e+21, "d": 1.0e+3, "e": 1.0E+3, "f": 2.5e-3, "g": 2.0, "h": -0.0}`},
		// A surrogate pair becomes its character, written as UTF-8.
		{`{"s":"\ud83c\udf89","t":"é\u00e9"}`, `{"s": "🎉", "t": "éé"}`},
		{`{"s":"a\"b\\c\/d\n\t\r\u0001\u007f\u0085\u2028\ufeff"}`, `{"s": "a\"b\\c/d\n\t\r\u0001\u007f\u0085\u2028\ufeff"}`},
		{`{"n":null,"t":true,"f":false,"l":[1,"x",[]],"o":{"k":{"z":1.5}}}`, `{"n": null, "t": true, "f": false, "l": [1, "x", []], "o": {"k": {"z": 1.5}}}`},
	} {
		got, err := paramsDocument([]byte(c.in))
		if err != nil {
			t.Errorf("%s: %v", c.in, err)
			continue
		}
		if want := c.want; want != "" {
			want += "\n"
			if string(got) != want {
				t.Errorf("%s:\n got %s\nwant %s", c.in, got, want)
			}
			// It must stay JSON, holding the same values.
			var a, b any
			if json.Unmarshal(got, &a) != nil || json.Unmarshal([]byte(c.in), &b) != nil {
				t.Errorf("%s: not JSON: %s", c.in, got)
			}
		} else if got != nil {
			t.Errorf("%s: %q, want no document", c.in, got)
		}
	}
	long := strings.Repeat("k", 1000)
	for _, in := range []string{`{"s":"\ud83c"}`, `{"s":"\udf89"}`, `{"s":"\ud83cx"}`, `{"l":["\ud800\u0041"]}`, `{"a":1,"a":1}`, `[1]`,
		// Names papermill would write as code, or PyYAML would not read as a key.
		`{"x = \"hi\"; print(1); y":1}`, `{"":1}`, `{"class":1}`, `{"True":1}`, `{"a\nb":1}`, `{"1x":1}`, `{"a-b":1}`,
		`{"cfg":{"` + long + `":1}}`, `{"cfg":{"` + strings.Repeat("\u0001", 170) + `":1}}`} {
		if _, err := paramsDocument([]byte(in)); err == nil {
			t.Errorf("%s: no error", in)
		}
	}
}

// notebook writes a notebook of cells (source, id, tags) as nbformat 4.5.
func notebook(t *testing.T, dir, name string, kernel string, cells ...[3]string) {
	t.Helper()
	var list []map[string]any
	for _, c := range cells {
		tags := []string{}
		if c[2] != "" {
			tags = strings.Split(c[2], ",")
		}
		list = append(list, map[string]any{"cell_type": "code", "id": c[1], "source": c[0], "metadata": map[string]any{"tags": tags}, "outputs": []any{}})
	}
	meta := map[string]any{}
	if kernel != "" {
		meta["kernelspec"] = map[string]any{"name": kernel, "language": "python"}
	}
	b, _ := json.Marshal(map[string]any{"nbformat": 4, "nbformat_minor": 5, "metadata": meta, "cells": list})
	if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestInspect(t *testing.T) {
	dir := t.TempDir()
	notebook(t, dir, "a.ipynb", "python3", [3]string{"x = 1\ny: int = 2\nz == 3", "p", "parameters"}, [3]string{"print(x)", "w", ""})
	notebook(t, dir, "untagged.ipynb", "python3", [3]string{"x = 1", "p", ""})
	notebook(t, dir, "nokernel.ipynb", "", [3]string{"x = 1", "p", ""})
	os.WriteFile(filepath.Join(dir, "text.ipynb"), []byte("hello"), 0o644)
	os.Mkdir(filepath.Join(dir, "out"), 0o755)
	st := func(nb, out, kernel, params string) Step {
		return Step{Name: "s", Notebook: nb, Output: out, Kernel: kernel, Parameters: []byte(params)}
	}
	in, _, err := inspect(dir, st("a.ipynb", "out/a.ipynb", "", `{"x":2,"y":3}`))
	if err != nil || in.kernel != "python3" || len(in.warnings) != 0 || len(in.cells) != 2 || in.cells[0].id != "p" || in.cells[1].id != "w" {
		t.Errorf("a.ipynb: %+v %v", in, err)
	}
	in, _, _ = inspect(dir, st("a.ipynb", "a.out.ipynb", "ir", `{"x":2,"z":3,"q":1}`))
	if in.kernel != "ir" || len(in.warnings) != 1 || !strings.Contains(in.warnings[0], "does not assign q, z") {
		t.Errorf("unknown parameters: %+v", in)
	}
	in, _, _ = inspect(dir, st("untagged.ipynb", "u.out.ipynb", "", `{"x":2}`))
	if len(in.warnings) != 1 || !strings.Contains(in.warnings[0], `no cell tagged "parameters"`) {
		t.Errorf("untagged: %+v", in)
	}
	if in, _, _ = inspect(dir, st("untagged.ipynb", "u.out.ipynb", "", ``)); len(in.warnings) != 0 {
		t.Errorf("untagged, no parameters: %+v", in)
	}
	for _, c := range []struct {
		st         Step
		kind, want string
	}{
		{st("missing.ipynb", "m.out.ipynb", "", ""), step.ErrorKindNotebook, "not in the run directory"},
		{st("text.ipynb", "t.out.ipynb", "", ""), step.ErrorKindNotebook, "not a Jupyter notebook"},
		{st("a.ipynb", "nope/a.ipynb", "", ""), step.ErrorKindNotebook, "folder nope"},
		{st("a.ipynb", "text.ipynb/a.ipynb", "", ""), step.ErrorKindNotebook, "folder text.ipynb"},
		{st("nokernel.ipynb", "n.out.ipynb", "", ""), step.ErrorKindKernel, "names no kernel"},
	} {
		if _, kind, err := inspect(dir, c.st); err == nil || kind != c.kind || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s -> %s: %v (%s), want %s %q", c.st.Notebook, c.st.Output, err, kind, c.kind, c.want)
		}
	}
	if _, _, err := inspect(dir, st("nokernel.ipynb", "n.out.ipynb", "python3", "")); err != nil {
		t.Errorf("a kernel from the step: %v", err)
	}
}

// errorCell is a cell of an output notebook as papermill leaves it.
func errorCell(id, ename, evalue string, tags ...string) map[string]any {
	outputs := []any{}
	if ename != "" {
		outputs = append(outputs, map[string]any{"output_type": "error", "ename": ename, "evalue": evalue, "traceback": []string{}})
	}
	if tags == nil {
		tags = []string{}
	}
	return map[string]any{"cell_type": "code", "id": id, "execution_count": 7, "source": "", "outputs": outputs,
		"metadata": map[string]any{"tags": tags, "papermill": map[string]any{"exception": ename != "" && ename != "SystemExit"}}}
}

func marker(id string) map[string]any {
	return map[string]any{"cell_type": "markdown", "id": id, "source": "", "metadata": map[string]any{"tags": []string{tagErrorCell}}}
}

func TestFailedCell(t *testing.T) {
	dir := t.TempDir()
	write := func(cells ...map[string]any) {
		b, _ := json.Marshal(map[string]any{"nbformat": 4, "nbformat_minor": 5, "metadata": map[string]any{}, "cells": cells})
		os.WriteFile(filepath.Join(dir, "out.ipynb"), b, 0o644)
	}
	cells := func(ids ...string) []inputCell {
		var cs []inputCell
		for _, id := range ids {
			cs = append(cs, inputCell{id: strings.TrimPrefix(id, "marker:"), marker: strings.HasPrefix(id, "marker:")})
		}
		return cs
	}
	plain := input{cells: cells("intro", "params", "work", "check")}
	noIDs := input{cells: cells("", "", "", "")}
	rerun := input{cells: cells("marker:m1", "intro", "params", "inj", "marker:m2", "work", "check"), injected: true}
	// An earlier failure's markers, no ids: papermill drops the markers, so they are not counted.
	staleNoIDs := input{cells: cells("marker:", "", "", "marker:", "")}
	dupIDs := input{cells: cells("dup", "dup", "x")}
	for _, c := range []struct {
		name  string
		in    input
		cells []map[string]any
		want  step.FailedCell // Index -2: no failing cell
	}{
		{"papermill 2.6: a marker on top and before the cell, the injected cell after params", plain,
			[]map[string]any{marker("m1"), errorCell("intro", "", ""), errorCell("params", "", "", "parameters"),
				errorCell("x1", "", "", tagInjected), marker("m2"), errorCell("work", "", ""), errorCell("check", "ValueError", "boom")},
			step.FailedCell{Index: 3, ID: "check", OutputIndex: 6, ExecutionCount: 7, EName: "ValueError", EValue: "boom"}},
		{"ids papermill made up (an nbformat 4.4 input): counted", noIDs,
			[]map[string]any{marker("m1"), errorCell("r1", "", ""), errorCell("r2", "", "", "parameters"),
				errorCell("x1", "", "", tagInjected), marker("m2"), errorCell("r3", "", ""), errorCell("r4", "KeyError", "'k'")},
			step.FailedCell{Index: 3, OutputIndex: 6, ExecutionCount: 7, EName: "KeyError", EValue: "'k'"}},
		{"a re-run of an output: its injected cell replaced, old markers gone", rerun,
			[]map[string]any{marker("n1"), errorCell("intro", "", ""), errorCell("params", "", "", "parameters"),
				errorCell("inj2", "", "", tagInjected), marker("n2"), errorCell("work", "NameError", "x")},
			step.FailedCell{Index: 5, ID: "work", OutputIndex: 5, ExecutionCount: 7, EName: "NameError", EValue: "x"}},
		{"the injected cell raised", plain,
			[]map[string]any{marker("m1"), errorCell("intro", "", ""), errorCell("params", "", "", "parameters"),
				marker("m2"), errorCell("x1", "SyntaxError", "bad", tagInjected)},
			step.FailedCell{Index: -1, Injected: true, OutputIndex: 4, ExecutionCount: 7, EName: "SyntaxError", EValue: "bad"}},
		{"old markers in an input without ids", staleNoIDs,
			[]map[string]any{errorCell("r1", "", ""), errorCell("r2", "", ""), errorCell("r3", "ValueError", "boom in cell 4")},
			step.FailedCell{Index: 4, OutputIndex: 2, ExecutionCount: 7, EName: "ValueError", EValue: "boom in cell 4"}},
		{"a repeated id: the first", dupIDs,
			[]map[string]any{errorCell("dup", "ValueError", "boom in cell 0"), errorCell("dup", "", ""), errorCell("x", "", "")},
			step.FailedCell{Index: 0, ID: "dup", OutputIndex: 0, ExecutionCount: 7, EName: "ValueError", EValue: "boom in cell 0"}},
		{"SystemExit(0) is not a failure", plain,
			[]map[string]any{errorCell("intro", "SystemExit", "0"), errorCell("params", "", "")},
			step.FailedCell{Index: -2}},
	} {
		write(c.cells...)
		got := failedCell(dir, "out.ipynb", c.in)
		switch {
		case c.want.Index == -2 && got != nil:
			t.Errorf("%s: %+v, want none", c.name, *got)
		case c.want.Index != -2 && (got == nil || *got != c.want):
			t.Errorf("%s: %+v, want %+v", c.name, got, c.want)
		}
	}
	if msg := cellError(&step.FailedCell{Index: 3, ID: "check", ExecutionCount: 4, EName: "ValueError", EValue: "boom"}); msg != `cell 3 (id "check"), In [4], raised ValueError: boom` {
		t.Errorf("message %q", msg)
	}
}

func TestPapermillFailure(t *testing.T) {
	tb := func(last string) string {
		return "Input Notebook: x\nTraceback (most recent call last):\n  File \"/usr/bin/papermill\", line 8, in <module>\n    sys.exit(papermill())\n" + last + "\n"
	}
	for _, c := range []struct {
		rc           int
		stderr, kind string
		want         string
	}{
		{1, tb("jupyter_client.kernelspec.NoSuchKernel: No such kernel named python9"), "kernel", "no kernel named py9"},
		{1, tb("ValueError: No kernel name found in notebook and no override provided."), "kernel", "names no kernel"},
		{138, "Traceback (most recent call last):\nnbclient.exceptions.DeadKernelError: Kernel died\n", "kernel", "died"},
		{2, "Usage: papermill [OPTIONS] NOTEBOOK_PATH [OUTPUT_PATH]\nTry 'papermill -h' for help.\n\nError: No such option: --bad\n", "notebook", "No such option: --bad"},
		{1, tb("FileNotFoundError: output folder /wflow/x doesn't exist."), "notebook", "output folder /wflow/x doesn't exist."},
		{1, tb("papermill.exceptions.PapermillMissingParameterException: Missing parameter 'a'"), "notebook", "Missing parameter 'a'"},
		{1, "", "notebook", "printed no error"},
	} {
		kind, msg := papermillFailure(c.rc, c.stderr, "py9")
		if kind != c.kind || !strings.Contains(msg, c.want) {
			t.Errorf("exit %d %q: %s %q, want %s %q", c.rc, c.stderr, kind, msg, c.kind, c.want)
		}
	}
}

func TestWarningsAndErrorsAreBounded(t *testing.T) {
	var names []string
	params := "{"
	for i := 0; i < 500; i++ {
		name := fmt.Sprintf("p%03d_%s", i, strings.Repeat("x", 100))
		names = append(names, name)
		if i > 0 {
			params += ","
		}
		params += fmt.Sprintf("%q:1", name)
	}
	params += "}"
	w := paramWarnings([]byte(params), gjson.Result{}, input{})
	if len(w) != 1 || len(w[0]) > 3000 || !strings.Contains(w[0], "and 480 more") {
		t.Errorf("warning of %d bytes: %.200s", len(w[0]), w[0])
	}
	dir := t.TempDir()
	cell := errorCell("c", "E", strings.Repeat("v", 1<<20))
	b, _ := json.Marshal(map[string]any{"nbformat": 4, "cells": []any{cell}})
	os.WriteFile(filepath.Join(dir, "out.ipynb"), b, 0o644)
	if c := failedCell(dir, "out.ipynb", input{cells: []inputCell{{id: "c"}}}); c == nil || len(c.EValue) > 600 {
		t.Errorf("failed cell %v", c != nil)
	}
}

// TestHostileNotebooks: notebooks a step wrote are read within caps: a
// nesting that would overflow a recursive parser's stack, or millions of
// cells, is refused, not parsed.
func TestHostileNotebooks(t *testing.T) {
	dir := t.TempDir()
	deep := `{"nbformat":4,"metadata":{"kernelspec":{"name":"python3"}},"cells":` + strings.Repeat("[", 12<<20)
	os.WriteFile(filepath.Join(dir, "deep.ipynb"), []byte(deep), 0o644)
	many := `{"nbformat":4,"metadata":{"kernelspec":{"name":"python3"}},"cells":[` + strings.Repeat("{},", maxCells) + "{}]}"
	os.WriteFile(filepath.Join(dir, "many.ipynb"), []byte(many), 0o644)
	for _, c := range []struct{ name, want string }{{"deep.ipynb", "nested at most"}, {"many.ipynb", "more than the 100000"}} {
		_, kind, err := inspect(dir, Step{Name: "s", Notebook: c.name, Output: "o.ipynb"})
		if kind != step.ErrorKindNotebook || err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %s %v, want %q", c.name, kind, err, c.want)
		}
	}
	// An output notebook as deep: no failing cell, no crash.
	if c := failedCell(dir, "deep.ipynb", input{}); c != nil {
		t.Errorf("deep output: %+v", c)
	}
}

package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wflow/wflow/internal/testenv"
)

type notebookRun struct {
	ReturnCode int    `json:"returncode"`
	Built      bool   `json:"built"`
	Image      string `json:"image"`
	Error      string `json:"error"`
	FailedCell *struct {
		Index          int    `json:"index"`
		ID             string `json:"id"`
		ExecutionCount int    `json:"execution_count"`
		EName          string `json:"ename"`
		EValue         string `json:"evalue"`
	} `json:"failed_cell"`
	Written struct {
		Greeting string            `json:"greeting"`
		Types    map[string]string `json:"types"`
		Values   map[string]any    `json:"values"`
	} `json:"written"`
}

// TestNotebookExample runs examples/notebook-params: two runs of a
// parameterized notebook with typed parameters and a local package, the
// second reusing the image the first built, and a third whose cell fails.
func TestNotebookExample(t *testing.T) {
	e := testenv.Python(t)
	module := testenv.GoGuest(t, "./examples/notebook-params")
	rundir := t.TempDir()
	args := append([]string{"run", module, "--rundir", rundir, "-p", "fail=yes"}, testenv.NotebookFlags()...)

	// Remove the image the example's inputs hash to, so that the first run builds it.
	probe := filepath.Join(t.TempDir(), "probe")
	if code, stdout, stderr := wflow(t, append([]string{"run", module, "--rundir", probe}, testenv.NotebookFlags()...)...); code != exitOK {
		t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
	}
	var before map[string]notebookRun
	json.Unmarshal(readReport(t, probe).Output, &before)
	if err := e.RemoveImage(context.Background(), before["analysis-first"].Image); err != nil {
		t.Fatal(err)
	}

	code, stdout, stderr := wflow(t, args...)
	if code != exitOK {
		t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
	}
	replaysTheSame(t, rundir) // the module writes its notebook into the run directory: a replay pretends to
	var out map[string]notebookRun
	if err := json.Unmarshal(readReport(t, rundir).Output, &out); err != nil {
		t.Fatal(err)
	}
	first, second, failed := out["analysis-first"], out["analysis-second"], out["analysis-fail"]
	if !first.Built || second.Built || failed.Built || first.Image != second.Image || first.Image == "" {
		t.Errorf("builds: first %v %s, second %v %s, third %v: want one build, then reuse", first.Built, first.Image, second.Built, second.Image, failed.Built)
	}
	wantTypes := map[string]string{"code": "str", "count": "int", "ratio": "float", "flag": "bool", "items": "list", "nested": "dict", "name": "str"}
	for k, v := range wantTypes {
		if first.Written.Types[k] != v {
			t.Errorf("parameter %s arrived as %s, want %s (types %v)", k, first.Written.Types[k], v, first.Written.Types)
		}
	}
	if first.Written.Values["code"] != "1" || second.Written.Values["code"] != "007" || first.Written.Greeting != "hello Ada hello Ada" || second.Written.Greeting != "hello Grace" {
		t.Errorf("values: first %v, second %v", first.Written, second.Written)
	}
	nested, _ := json.Marshal(first.Written.Values["nested"])
	items, _ := json.Marshal(first.Written.Values["items"])
	if string(nested) != `{"a":{"b":[1,2]}}` || string(items) != `[1,"two",3.5]` {
		t.Errorf("nested %s, items %s", nested, items)
	}
	// The failing cell is the one the user sees in their notebook: cell 3, id "check".
	if c := failed.FailedCell; failed.ReturnCode == 0 || c == nil || c.Index != 3 || c.ID != "check" || c.EName != "ValueError" || c.EValue != "asked to fail by the workflow" ||
		!strings.HasPrefix(failed.Error, `cell 3 (id "check")`) {
		t.Errorf("failing run: %+v %+v", failed, c)
	}
	for _, f := range []string{"analysis-first.out.ipynb", "analysis-second.out.ipynb", "analysis.out.ipynb"} {
		b, err := os.ReadFile(filepath.Join(rundir, f))
		if err != nil || !strings.Contains(string(b), `"papermill"`) || !strings.Contains(string(b), "injected-parameters") {
			t.Errorf("output notebook %s: %v", f, err)
		}
	}
}

func TestNotebookBuildFailureIsAResult(t *testing.T) {
	testenv.Python(t)
	rundir := t.TempDir()
	code, stdout, stderr := wflow(t, append([]string{"run", testenv.GoGuest(t, "./testdata/guests/nbfail"), "--rundir", rundir}, testenv.NotebookFlags()...)...)
	if code != exitOK {
		t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
	}
	var out struct {
		ReturnCode int    `json:"returncode"`
		Kind       string `json:"kind"`
		Error      string `json:"error"`
		Commands   int    `json:"commands"`
		Log        string `json:"log"`
	}
	json.Unmarshal(readReport(t, rundir).Output, &out)
	if out.ReturnCode != 1 || out.Kind != "build" || out.Commands != 0 || !strings.Contains(out.Log, "no-such-package-wflow-test") || !strings.Contains(out.Error, "building notebook image") {
		t.Errorf("result %+v", out)
	}
}

func TestNotebookBuildCommand(t *testing.T) {
	e := testenv.Python(t)
	dir := t.TempDir()
	pkg := filepath.Join(dir, "pkgs", "wflowdemo")
	src := filepath.Join(testenv.Root(), "examples", "notebook-params", "files", "pkgs", "wflowdemo")
	os.MkdirAll(filepath.Join(pkg, "wflowdemo"), 0o755)
	for _, f := range []string{"pyproject.toml", "wflowdemo/__init__.py"} {
		b, _ := os.ReadFile(filepath.Join(src, f))
		b = append(b, []byte("\n# "+t.Name()+"\n")...) // a package of its own: an image of its own
		os.WriteFile(filepath.Join(pkg, f), b, 0o644)
	}
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp) // the build context is made in memory: nothing may land here
	args := append([]string{"notebook", "build", "-r", "./pkgs/wflowdemo", "--context", dir}, testenv.NotebookFlags()...)
	code, stdout, stderr := wflow(t, args...)
	if code != exitOK || !strings.Contains(stdout, "built wflow-notebook:") {
		t.Fatalf("first build: exit %d\n%s\n%s", code, stdout, stderr)
	}
	tag := strings.TrimSpace(stdout[strings.LastIndex(stdout, "built ")+len("built "):])
	t.Cleanup(func() { e.RemoveImage(context.Background(), tag) })
	code, stdout, _ = wflow(t, args...)
	if code != exitOK || !strings.Contains(stdout, tag+" exists: nothing to build") {
		t.Errorf("second build: exit %d\n%s", code, stdout)
	}
	if left, _ := os.ReadDir(tmp); len(left) != 0 {
		t.Errorf("the builds left %d entries in TMPDIR", len(left))
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("the build wrote into the context folder: %d entries", len(entries))
	}
	code, _, stderr = wflow(t, append([]string{"notebook", "build", "-r", "no-such-package-wflow-test==1.0"}, testenv.NotebookFlags()...)...)
	if code != exitFailed || !strings.Contains(stderr, "building notebook image") {
		t.Errorf("failing build: exit %d\n%s", code, stderr)
	}
}

// TestRefusedNotebookBuildsNothing: policies decide before a notebook's
// image is built. The nbfail guest's requirement cannot be installed, so a
// build would fail with error kind "build"; refused first, it says "denied".
func TestRefusedNotebookBuildsNothing(t *testing.T) {
	testenv.Python(t)
	rundir := t.TempDir()
	args := append([]string{"run", testenv.GoGuest(t, "./testdata/guests/nbfail"), "--rundir", rundir, "--allow-image", "wflow-test/*"}, testenv.NotebookFlags()...)
	code, stdout, stderr := wflow(t, args...)
	if code != exitOK {
		t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
	}
	var out struct {
		Kind, Error, Log string
		Built            bool
	}
	json.Unmarshal(readReport(t, rundir).Output, &out)
	if out.Kind != "denied" || !strings.Contains(out.Error, `image "wflow-notebook:`) || out.Log != "" || out.Built {
		t.Errorf("result %+v: want a refusal and no build", out)
	}
	if strings.Contains(stdout, "building notebook image") {
		t.Errorf("a refused notebook step started a build:\n%s", stdout)
	}
}

func TestCNotebookHelpers(t *testing.T) {
	testenv.Python(t)
	rundir := t.TempDir()
	code, stdout, stderr := wflow(t, append([]string{"run", testenv.CGuest(t, "testdata/guests/c-notebook/main.c"), "--rundir", rundir}, testenv.NotebookFlags()...)...)
	if code != exitOK {
		t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
	}
	if out := readReport(t, rundir).Output; string(out) != `{"build_rc":0,"run_rc":0,"result":"42"}` {
		t.Errorf("output %s", out)
	}
}

// TestNotebookBuildsPassThePolicies: the base image of a notebook build is
// put to the policies before anything is built, so --allow-image covers it.
func TestNotebookBuildsPassThePolicies(t *testing.T) {
	testenv.Python(t)
	guest := testenv.GoGuest(t, "./testdata/guests/nbbase")
	allow := []string{"--allow-image", "wflow-test/*", "--allow-image", "wflow-notebook:*"}
	rundir := t.TempDir()
	args := append(append([]string{"run", guest, "--rundir", rundir, "-p", "base=evil/miner:1"}, allow...), testenv.NotebookFlags()...)
	code, stdout, stderr := wflow(t, args...)
	if code != exitOK {
		t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
	}
	var out struct {
		Kind, Error string
		Decisions   []string
	}
	json.Unmarshal(readReport(t, rundir).Output, &out)
	if out.Kind != "denied" || !strings.Contains(out.Error, `image "evil/miner:1" matches none`) || strings.Contains(stdout, "building notebook image") {
		t.Errorf("result %+v\n%s", out, stdout)
	}
	// The audit trail records the build request.
	var rep struct {
		Decisions []struct{ Policy, Verdict string } `json:"decisions"`
	}
	b, _ := os.ReadFile(filepath.Join(rundir, ".wflow", "report.json"))
	json.Unmarshal(b, &rep)
	if len(rep.Decisions) == 0 || rep.Decisions[len(rep.Decisions)-1].Verdict != "deny" {
		t.Errorf("audit trail %+v", rep.Decisions)
	}
}

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wflow/wflow/containers"

	"github.com/wflow/wflow/internal/testenv"
	"github.com/wflow/wflow/report"
)

func TestMain(m *testing.M) { os.Exit(testenv.MainWithLeakCheck(m)) }

// wflow runs the CLI in-process and returns its exit code and output.
func wflow(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	code := run(ctx, args, &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

// readReport reads the run report of a run directory.
func readReport(t *testing.T, rundir string) report.Report {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(rundir, report.Path))
	if err != nil {
		t.Fatal(err)
	}
	var r report.Report
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatal(err)
	}
	r.Output, r.Params = compact(t, r.Output), compact(t, r.Params)
	return r
}

func compact(t *testing.T, raw json.RawMessage) json.RawMessage {
	var b bytes.Buffer
	if err := json.Compact(&b, raw); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// watFile compiles a .wat fixture and returns the path of the module.
func watFile(t *testing.T, fixture string) string {
	p := filepath.Join(t.TempDir(), "m.wasm")
	if err := os.WriteFile(p, testenv.Wat(t, fixture), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestUsageAndExitCodes(t *testing.T) {
	bad := watFile(t, "testdata/hostile/wrong_version.wat")
	good := watFile(t, "testdata/hello.wat")
	twice := filepath.Join(t.TempDir(), "twice.json")
	empty := t.TempDir() // a folder --resume must leave as it was
	t.Cleanup(func() {
		if entries, _ := os.ReadDir(empty); len(entries) != 0 {
			t.Errorf("a refused --resume left %d file(s) in the folder it was given", len(entries))
		}
	})
	os.WriteFile(twice, []byte(`{"a":1,"a":2}`), 0o644)
	cases := []struct {
		name   string
		args   []string
		code   int
		stdout string
		stderr string
	}{
		{"no command", nil, exitUsage, "", "Usage:"},
		{"unknown command", []string{"frobnicate"}, exitUsage, "", `unknown command "frobnicate"`},
		{"help", []string{"help"}, exitOK, "wflow run MODULE.wasm", ""},
		{"version", []string{"version"}, exitOK, "(ABI wflow_v1, revision v1.2)", ""},
		{"run help", []string{"run", "--help"}, exitOK, "--parallel", ""},
		{"validate help", []string{"validate", "-h"}, exitOK, "--json", ""},
		{"run no module", []string{"run"}, exitUsage, "", "want one MODULE.wasm"},
		{"run unknown flag", []string{"run", good, "--frob"}, exitUsage, "", "unknown flag: --frob"},
		{"run bad param", []string{"run", good, "-p", "novalue"}, exitUsage, "", `-p "novalue": want key=value`},
		{"run bad env", []string{"run", good, "--env", "=x"}, exitUsage, "", "--env"},
		{"run bad pull", []string{"run", good, "--pull", "sometimes"}, exitUsage, "", "use missing, always or never"},
		{"run bad parallel", []string{"run", good, "--parallel", "0"}, exitUsage, "", "--parallel"},
		{"run params from a device", []string{"run", good, "--params", "/dev/zero"}, exitUsage, "", "over 16 MiB"},
		{"policy test step from a device", []string{"policy", "test", good, "--step", "/dev/zero"}, exitUsage, "", "over 16 MiB"},
		{"run negative timeout", []string{"run", good, "--timeout", "-1s"}, exitUsage, "", "--timeout -1s"},
		{"run negative step timeout", []string{"run", good, "--step-timeout", "-1s"}, exitUsage, "", "timeout -1s: use a duration between 0"},
		{"run zero max-memory", []string{"run", good, "--max-memory", "0"}, exitUsage, "", "--max-memory 0"},
		{"run huge max-memory", []string{"run", good, "--max-memory", "5000"}, exitUsage, "", "use 1 to 4096 MiB"},
		{"run missing module", []string{"run", "/nonexistent.wasm"}, exitUsage, "", "no such file"},
		{"run params with a key twice", []string{"run", good, "--params", twice}, exitUsage, "", `parameter "a" is given twice`},
		{"run missing params file", []string{"run", good, "--params", "/nonexistent.json"}, exitUsage, "", "--params"},
		{"run wrong ABI", []string{"run", bad, "--rundir", t.TempDir()}, exitUsage, "", `imports ABI "wflow_v2"`},
		{"run resume nothing", []string{"run", good, "--resume", empty}, exitUsage, "", "no earlier run to resume"},
		{"run resume empty", []string{"run", good, "--resume", ""}, exitUsage, "", "--resume: give the run directory"},
		{"run force-resume alone", []string{"run", good, "--force-resume"}, exitUsage, "", "--force-resume goes with --resume"},
		{"replay no journal", []string{"replay", empty}, exitHostError, "", "no calls journal"},
		{"run resume missing", []string{"run", good, "--resume", "/nonexistent"}, exitUsage, "", "not a run directory"},
		{"run resume and another rundir", []string{"run", good, "--resume", empty, "--rundir", t.TempDir()}, exitUsage, "", "give only --resume"},
		{"validate wrong ABI", []string{"validate", bad}, exitUsage, "wflow_v2", `this wflow speaks "wflow_v1"`},
		{"validate ok", []string{"validate", good}, exitOK, ": ok, needs ABI v1.0; this wflow speaks ABI v1.2", ""},
		{"validate json", []string{"validate", "--json", good}, exitOK, `"needs": "ABI v1.0"`, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, stdout, stderr := wflow(t, c.args...)
			if code != c.code || !strings.Contains(stdout, c.stdout) || !strings.Contains(stderr, c.stderr) {
				t.Errorf("exit %d (want %d)\nstdout: %s\nstderr: %s\nwant stdout ~ %q, stderr ~ %q", code, c.code, stdout, stderr, c.stdout, c.stderr)
			}
		})
	}
}

func TestNoDaemonIsOneLineAndExitCode3(t *testing.T) {
	t.Setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
	code, _, stderr := wflow(t, "run", watFile(t, "testdata/hello.wat"), "--rundir", t.TempDir())
	if code != exitNoEngine || strings.Count(strings.TrimSpace(stderr), "\n") != 0 || !strings.Contains(stderr, "docker engine unavailable") {
		t.Errorf("exit %d, stderr %q", code, stderr)
	}
}

func TestParamsReachTheModule(t *testing.T) {
	testenv.Docker(t)
	dir := t.TempDir()
	pf := filepath.Join(dir, "params.json")
	// Numbers reach the module as the file writes them (2.0 is not 2, 1e-7 not 1e-07).
	os.WriteFile(pf, []byte(`{"n":1,"s":"1","list":[1,2],"over":"file","f":2.0,"e":1e-7,"big":123456789012345678901234567890}`), 0o644)
	rundir := filepath.Join(dir, "run")
	code, stdout, stderr := wflow(t, "run", testenv.GoGuest(t, "./testdata/guests/echoparams"), "--rundir", rundir,
		"--params", pf, "-p", "over=flag", "-p", "extra=a=b")
	if code != exitOK {
		t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
	}
	r := readReport(t, rundir)
	want := `{"big":123456789012345678901234567890,"e":1e-7,"extra":"a=b","f":2.0,"list":[1,2],"n":1,"over":"flag","s":"1"}`
	if string(r.Output) != want || string(r.Params) != want {
		t.Errorf("output %s, params %s, want %s", r.Output, r.Params, want)
	}
}

func TestGoExampleRunsStepsInParallel(t *testing.T) {
	testenv.Docker(t)
	rundir := t.TempDir()
	code, stdout, stderr := wflow(t, "run", testenv.GoGuest(t, "./examples/go-pipeline"), "--rundir", rundir)
	if code != exitOK {
		t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
	}
	for _, want := range []string{"[count-words] 4\n", "[count-lines] 3\n", "[summarize] words=4 lines=3\n", "workflow succeeded", "report: " + filepath.Join(rundir, report.Path)} {
		if !strings.Contains(stdout, want) {
			t.Errorf("stdout lacks %q:\n%s", want, stdout)
		}
	}
	r := readReport(t, rundir)
	if r.Status != "succeeded" || r.ExitCode != 0 || r.ABI != "wflow_v1" || r.ModuleSHA256 == "" {
		t.Errorf("report %+v", r)
	}
	if string(r.Output) != `{"lines":"3","summary":"words=4 lines=3","words":"4"}` {
		t.Errorf("output %s", r.Output)
	}
	if len(r.Steps) != 3 || r.Steps[2].Step != "summarize" {
		t.Fatalf("steps %+v", r.Steps)
	}
	a, b := r.Steps[0], r.Steps[1]
	if !a.Started.Before(b.Finished) || !b.Started.Before(a.Finished) {
		t.Errorf("the two first steps did not overlap: %s-%s and %s-%s", a.Started, a.Finished, b.Started, b.Finished)
	}
	if s := r.Steps[2]; !s.Started.After(a.Finished) || !s.Started.After(b.Finished) {
		t.Errorf("summarize started before its inputs finished")
	}
	if b, _ := os.ReadFile(filepath.Join(rundir, "summary.txt")); string(b) != "words=4 lines=3\n" {
		t.Errorf("summary.txt = %q", b)
	}
	replaysTheSame(t, rundir)
}

func TestGoExampleStopsAtAFailingStep(t *testing.T) {
	testenv.Docker(t)
	rundir := t.TempDir()
	code, stdout, stderr := wflow(t, "run", testenv.GoGuest(t, "./examples/go-pipeline"), "--rundir", rundir, "-p", "fail=lines")
	if code != exitFailed {
		t.Fatalf("exit %d, want %d\n%s\n%s", code, exitFailed, stdout, stderr)
	}
	if !strings.Contains(stdout, "step count-lines failed with code 3: no input for count-lines") {
		t.Errorf("stdout:\n%s", stdout)
	}
	r := readReport(t, rundir)
	if r.Status != "failed" || r.ExitCode != 1 || len(r.Steps) != 2 {
		t.Fatalf("report status %s exit %d steps %d", r.Status, r.ExitCode, len(r.Steps))
	}
	for _, s := range r.Steps {
		if s.Step == "summarize" {
			t.Error("summarize ran after a failed step")
		}
		if s.Step == "count-lines" && (s.ReturnCode != 3 || s.Stderr != "no input for count-lines\n") {
			t.Errorf("count-lines %+v", s)
		}
	}
	replaysTheSame(t, rundir)
}

func TestCExampleBranchesOnTheResult(t *testing.T) {
	testenv.Docker(t)
	module := testenv.CGuest(t, "examples/c-branch/main.c")
	for _, c := range []struct {
		name, seed, output string
		steps              int
	}{
		{"generates missing data", "", `{"branch":"generated","lines":10}`, 3},
		{"uses present data", "a\nb\nc\n", `{"branch":"found","lines":3}`, 2},
	} {
		t.Run(c.name, func(t *testing.T) {
			rundir := t.TempDir()
			if c.seed != "" {
				os.WriteFile(filepath.Join(rundir, "data.csv"), []byte(c.seed), 0o644)
			}
			code, stdout, stderr := wflow(t, "run", module, "--rundir", rundir)
			if code != exitOK {
				t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
			}
			r := readReport(t, rundir)
			if string(r.Output) != c.output || len(r.Steps) != c.steps {
				t.Errorf("output %s, %d steps", r.Output, len(r.Steps))
			}
			replaysTheSame(t, rundir)
		})
	}
}

func TestFailingModulesEndTheRunWithAReport(t *testing.T) {
	testenv.Docker(t)
	cases := []struct {
		fixture string
		args    []string
		status  string
		code    uint32
	}{
		{"testdata/hostile/trap.wat", nil, "trapped", 1},
		{"testdata/hostile/exit_code.wat", nil, "failed", 7},
		{"testdata/hostile/loop.wat", []string{"--timeout", "500ms"}, "timeout", 1},
		{"testdata/hostile/grow_bomb.wat", []string{"--max-memory", "1"}, "failed", 3},
	}
	for _, c := range cases {
		t.Run(c.fixture, func(t *testing.T) {
			rundir := t.TempDir()
			code, stdout, stderr := wflow(t, append([]string{"run", watFile(t, c.fixture), "--rundir", rundir}, c.args...)...)
			if code != exitFailed {
				t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
			}
			r := readReport(t, rundir)
			if r.Status != c.status || r.ExitCode != c.code || r.Message == "" {
				t.Errorf("report status %s exit %d message %q", r.Status, r.ExitCode, r.Message)
			}
		})
	}
}

func TestStepsLeftRunningAreCancelledWhenTheModuleExits(t *testing.T) {
	e := testenv.Docker(t)
	rundir := t.TempDir()
	start := time.Now()
	code, stdout, stderr := wflow(t, "run", testenv.GoGuest(t, "./testdata/guests/abandon"), "--rundir", rundir)
	if code != exitOK {
		t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
	}
	if time.Since(start) > 60*time.Second {
		t.Errorf("took %s: the abandoned step was waited for", time.Since(start))
	}
	r := readReport(t, rundir)
	if len(r.Steps) != 1 || r.Steps[0].ErrorKind != "cancelled" {
		t.Errorf("steps %+v", r.Steps)
	}
	ids, _ := e.Labelled(context.Background(), "io.wflow.run", r.RunID)
	if len(ids) != 0 {
		t.Errorf("containers remain: %v", ids)
	}
}

func TestGoGuestBuiltWithGo124(t *testing.T) {
	testenv.Docker(t)
	module := testenv.GoGuestWithToolchain(t, "examples/go-pipeline", "1.24.0")
	rundir := t.TempDir()
	code, stdout, stderr := wflow(t, "run", module, "--rundir", rundir)
	if code != exitOK {
		t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
	}
	if r := readReport(t, rundir); string(r.Output) != `{"lines":"3","summary":"words=4 lines=3","words":"4"}` {
		t.Errorf("output %s", r.Output)
	}
}

func TestReadmeExample(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join(testenv.Root(), "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	guest, err := os.ReadFile(filepath.Join(testenv.Root(), "testdata/guests/readme/main.go"))
	if err != nil {
		t.Fatal(err)
	}
	_, code, _ := strings.Cut(string(readme), "```go\n")
	code, _, _ = strings.Cut(code, "```")
	if !strings.HasSuffix(string(guest), code) {
		t.Fatal("README.md's Go example and testdata/guests/readme/main.go differ")
	}
	testenv.Docker(t)
	rundir := t.TempDir()
	exit, stdout, stderr := wflow(t, "run", testenv.GoGuest(t, "./testdata/guests/readme"), "--rundir", rundir)
	if exit != exitOK {
		t.Fatalf("exit %d\n%s\n%s", exit, stdout, stderr)
	}
	var out map[string]string
	if err := json.Unmarshal(readReport(t, rundir).Output, &out); err != nil || out["words"] != "4" || len(out["date"]) != len("2006-01-02") {
		t.Errorf("output %v, %v", out, err)
	}
}

func TestStepLimitsFromTheGoSDK(t *testing.T) {
	testenv.Docker(t)
	rundir := t.TempDir()
	code, stdout, stderr := wflow(t, "run", testenv.GoGuest(t, "./testdata/guests/limits"), "--rundir", rundir)
	if code != exitOK {
		t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
	}
	want := `{"flaky_attempts":2,"flaky_rc":0,"slow_kind":"timeout","slow_rc":124}`
	if r := readReport(t, rundir); string(r.Output) != want {
		t.Errorf("output %s, want %s", r.Output, want)
	}
}

func TestBadStepLimitFlags(t *testing.T) {
	good := watFile(t, "testdata/hello.wat")
	for _, c := range []struct {
		args []string
		msg  string
	}{
		{[]string{"--memory", "lots"}, "--memory"},
		{[]string{"--memory", "1m"}, "at least 6m"},
		{[]string{"--cpus", "-1"}, "cpus"},
		{[]string{"--user", "a b"}, "user"},
		{[]string{"--max-steps", "0"}, "--max-steps"},
		{[]string{"--max-handles", "5000"}, "--max-handles"},
		{[]string{"--max-result-bytes", "1k"}, "at least 1m"},
	} {
		code, _, stderr := wflow(t, append([]string{"run", good, "--rundir", t.TempDir()}, c.args...)...)
		if code != exitUsage || !strings.Contains(stderr, c.msg) {
			t.Errorf("%v: exit %d, stderr %q", c.args, code, stderr)
		}
	}
}

func TestAssemblyScriptExample(t *testing.T) {
	testenv.Docker(t)
	module := testenv.ASGuest(t)
	rundir := t.TempDir()
	code, stdout, stderr := wflow(t, "run", module, "--rundir", rundir)
	if code != exitOK {
		t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
	}
	if out := readReport(t, rundir).Output; string(out) != `{"language":"AssemblyScript","step_ok":true}` {
		t.Errorf("output %s", out)
	}
	replaysTheSame(t, rundir)
}

func TestRustExample(t *testing.T) {
	testenv.Docker(t)
	module := testenv.RustGuest(t, "examples/rust/main.rs")
	rundir := t.TempDir()
	code, stdout, stderr := wflow(t, "run", module, "--rundir", rundir)
	if code != exitOK {
		t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
	}
	if out := readReport(t, rundir).Output; string(out) != `{"language":"Rust","steps_ok":2,"cancelled":1}` {
		t.Errorf("output %s", out)
	}
	replaysTheSame(t, rundir)
}

// TestRelativePathsInEveryLanguage: the run directory is the working
// directory of a module in Go ($PWD), C and Rust (wasi-libc, whose working
// directory is /): relative paths read and write the run directory.
func TestRelativePathsInEveryLanguage(t *testing.T) {
	for _, c := range []struct {
		lang, out string
		module    func() string
	}{
		{"rust", "sub/out-rust.txt", func() string { return testenv.RustGuest(t, "testdata/guests/relpaths/main.rs") }},
		{"c", "sub/out-c.txt", func() string { return testenv.CGuest(t, "testdata/guests/relpaths/main.c") }},
	} {
		t.Run(c.lang, func(t *testing.T) {
			module := c.module()
			rundir := t.TempDir()
			os.WriteFile(filepath.Join(rundir, "in.txt"), []byte("hello\n"), 0o644)
			code, stdout, stderr := wflow(t, "run", module, "--rundir", rundir)
			if code != exitOK {
				t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
			}
			b, err := os.ReadFile(filepath.Join(rundir, c.out))
			if want := map[string]string{"rust": "hello|hello", "c": "hello\n"}[c.lang]; err != nil || string(b) != want {
				t.Errorf("%s: %q %v, want %q", c.out, b, err, want)
			}
		})
	}
}

// TestCParams: wflow_param of sdk/c/wflow.h reads top-level string
// parameters, decoding escapes, and skips nested objects that hold a key of
// the same name.
func TestCParams(t *testing.T) {
	module := testenv.CGuest(t, "testdata/guests/cparams/main.c")
	dir := t.TempDir()
	pf := filepath.Join(dir, "params.json")
	os.WriteFile(pf, []byte(`{"aa_nested": {"image": "wrong", "x": [1, {"image": "wrong2"}, "]}"]}, "a": "x\u00e9\ud83c\udf89\/y", "num": 3}`), 0o644)
	rundir := filepath.Join(dir, "run")
	code, stdout, stderr := wflow(t, "run", module, "--rundir", rundir, "--params", pf, "-p", "image=wflow-test/busybox")
	if code != exitOK {
		t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
	}
	if out := string(readReport(t, rundir).Output); out != `{"a":"xé🎉/y","image":"wflow-test/busybox","num_null":true,"missing_null":true}` {
		t.Errorf("output %s", out)
	}
}

// TestCountKinds: wflow gc names what it removed by kind, containers first.
func TestCountKinds(t *testing.T) {
	for _, c := range []struct {
		removed []containers.Labelled
		want    string
	}{
		{nil, "0 container(s)"},
		{[]containers.Labelled{{ID: "a"}, {ID: "b"}}, "2 container(s)"},
		{[]containers.Labelled{{ID: "s", Kind: "swarm service"}, {ID: "n", Kind: "network"}}, "1 swarm service(s), 1 network(s)"},
		{[]containers.Labelled{{ID: "n", Kind: "network"}, {ID: "c"}, {ID: "s", Kind: "swarm service"}}, "1 container(s), 1 network(s), 1 swarm service(s)"},
	} {
		if got := countKinds(c.removed); got != c.want {
			t.Errorf("countKinds(%v) = %q, want %q", c.removed, got, c.want)
		}
	}
}

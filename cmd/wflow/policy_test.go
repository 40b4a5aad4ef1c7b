package main

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wflow/wflow/internal/testenv"
)

// memprobe runs the memprobe guest with extra flags and returns the report
// and the guest's output.
func memprobe(t *testing.T, args ...string) (int, map[string]string, []byte) {
	t.Helper()
	rundir := t.TempDir()
	code, stdout, stderr := wflow(t, append([]string{"run", testenv.GoGuest(t, "./testdata/guests/memprobe"), "--rundir", rundir}, args...)...)
	if code != exitOK {
		t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
	}
	b, err := os.ReadFile(filepath.Join(rundir, ".wflow", "report.json"))
	if err != nil {
		t.Fatal(err)
	}
	var out map[string]string
	json.Unmarshal(readReport(t, rundir).Output, &out)
	return code, out, b
}

func TestPolicyAmendChangesWhatRuns(t *testing.T) {
	testenv.Docker(t)
	// The Rego version amends the same step the same way.
	_, out, _ := memprobe(t, "--policy", testenv.RegoBundle(t, "examples/policies/require-memory-rego/policy.rego", "wflow/decision"))
	if out["limit"] != "268435456" {
		t.Errorf("with the Rego policy, the container's memory limit is %q, want the 256m the policy added", out["limit"])
	}
	policy := testenv.GoGuest(t, "./examples/policies/require-memory")
	_, out, raw := memprobe(t, "--policy", policy)
	if out["limit"] != "268435456" {
		t.Errorf("the container's memory limit is %q, want the 256m the policy added", out["limit"])
	}
	var rep struct {
		Steps []struct {
			Decisions []json.RawMessage `json:"decisions"`
		} `json:"steps"`
		Decisions []struct {
			Policy, Step, Verdict string
			Changes               []struct{ Field string }
		} `json:"decisions"`
	}
	if err := json.Unmarshal(raw, &rep); err != nil {
		t.Fatal(err)
	}
	// The audit trail: the built-ins, the policy's amendment, then every policy again on the final step.
	var got []string
	for _, d := range rep.Decisions {
		got = append(got, d.Policy+" "+d.Verdict)
	}
	wantTrail := "builtin:network allow|builtin:ceilings allow|wasm:examples_policies_require-memory.wasm amend|" +
		"builtin:network (recheck of the final step) allow|builtin:ceilings (recheck of the final step) allow|" +
		"wasm:examples_policies_require-memory.wasm (recheck of the final step) allow"
	if strings.Join(got, "|") != wantTrail {
		t.Errorf("audit trail\n%s\nwant\n%s", strings.Join(got, "|"), wantTrail)
	}
	if d := rep.Decisions[2]; d.Step != "probe" || len(d.Changes) != 1 || d.Changes[0].Field != "memory" {
		t.Errorf("amendment %+v", d)
	}
	if len(rep.Steps) != 1 || len(rep.Steps[0].Decisions) != 6 {
		t.Errorf("the ExecResult does not carry the decisions: %+v", rep.Steps)
	}
}

func TestPolicyDenyNeverReachesTheEngine(t *testing.T) {
	e := testenv.Docker(t)
	for _, c := range []struct {
		name    string
		args    []string
		created int
	}{
		{"allowed", nil, 1},
		{"refused by --allow-image", []string{"--allow-image", "approved/*"}, 0},
		{"allowed by --allow-image and a C policy", []string{"--allow-image", "wflow-test/*", "--policy", testenv.CGuest(t, "examples/policies/image-allowlist/main.c")}, 1},
		{"allowed by a Rego policy", []string{"--policy", testenv.RegoBundle(t, "examples/policies/image-allowlist-rego/policy.rego", "wflow/deny")}, 1},
		{"refused by a Rego policy", []string{"--policy", testenv.RegoBundle(t, "testdata/policies/rego/unsupported-builtin.rego", "wflow/deny")}, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			start := time.Now()
			rundir := t.TempDir()
			code, stdout, stderr := wflow(t, append([]string{"run", testenv.GoGuest(t, "./testdata/guests/memprobe"), "--rundir", rundir}, c.args...)...)
			if code != exitOK {
				t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
			}
			r := readReport(t, rundir)
			n, err := e.Created(context.Background(), start, time.Now(), "io.wflow.run="+r.RunID)
			if err != nil {
				t.Fatal(err)
			}
			if n != c.created {
				t.Errorf("the engine created %d container(s) for the run, want %d", n, c.created)
			}
			var out map[string]string
			json.Unmarshal(r.Output, &out)
			switch {
			case c.created > 0:
			case strings.Contains(c.name, "Rego"):
				if out["kind"] != "denied" || !strings.Contains(out["error"], "refused by policy rego:unsupported-builtin.tar.gz: the policy failed, so the step is refused: the policy calls the built-in semver.is_valid") {
					t.Errorf("the module saw %v", out)
				}
			case out["kind"] != "denied" || !strings.Contains(out["error"], `refused by policy builtin:allow-image: image "wflow-test/busybox" matches none of --allow-image approved/*`):
				t.Errorf("the module saw %v", out)
			}
		})
	}
}

func TestPolicyOrder(t *testing.T) {
	testenv.Docker(t)
	amend := testenv.GoGuest(t, "./examples/policies/require-memory")
	require := testenv.GoGuest(t, "./testdata/guests/deny-without-memory")
	_, out, _ := memprobe(t, "--policy", amend, "--policy", require)
	if out["kind"] != "" || out["limit"] != "268435456" {
		t.Errorf("amend then require: %v, want the step to run with 256m", out)
	}
	_, out, _ = memprobe(t, "--policy", require, "--policy", amend)
	if out["kind"] != "denied" || !strings.Contains(out["error"], "has no memory limit") {
		t.Errorf("require then amend: %v, want a refusal", out)
	}
}

func TestPolicyTestCommand(t *testing.T) {
	dir := t.TempDir()
	step := filepath.Join(dir, "step.json")
	os.WriteFile(step, []byte(`{"name":"a","image":"evil/miner","commands":["true"]}`), 0o644)
	goPolicy := testenv.GoGuest(t, "./examples/policies/require-memory")
	cPolicy := testenv.CGuest(t, "examples/policies/image-allowlist/main.c")
	cases := []struct {
		args []string
		code int
		out  string
	}{
		{[]string{"policy", "test", goPolicy, "--step", step}, exitOK, `"verdict": "amend"`},
		{[]string{"policy", "test", cPolicy, "--step", step}, exitFailed, `image evil/miner is not on the allow-list`},
		{[]string{"policy", "test", cPolicy}, exitUsage, ""},
		{[]string{"policy", "test", "--help"}, exitOK, "Usage: wflow policy test"},
		{[]string{"policy", "test", watFile(t, "testdata/hello.wat"), "--step", step}, exitUsage, ""},
	}
	for _, c := range cases {
		code, stdout, stderr := wflow(t, c.args...)
		if code != c.code || !strings.Contains(stdout, c.out) {
			t.Errorf("%v: exit %d (want %d)\n%s\n%s", c.args, code, c.code, stdout, stderr)
		}
	}
}

// TestExamplePoliciesAgreeAcrossLanguages runs the Go, C and Rego versions
// of each example policy on the same steps through `wflow policy test` (the
// Rego compiled by opa build -t wasm, the bundle given as it is).
func TestExamplePoliciesAgreeAcrossLanguages(t *testing.T) {
	dir := t.TempDir()
	steps := map[string]string{
		"ok":        `{"name":"a","image":"wflow-test/busybox","commands":["true"]}`,
		"bad-image": `{"name":"a","image":"evil/miner","commands":["true"]}`,
		"memory":    `{"name":"a","image":"wflow-test/busybox","commands":["true"],"memory":"64m"}`,
	}
	for name, spec := range steps {
		os.WriteFile(filepath.Join(dir, name+".json"), []byte(spec), 0o644)
	}
	pairs := []struct {
		name  string
		goPkg string
		cFile string
		rego  string // and its entrypoint
		entry string
		want  map[string]string // step -> verdict
	}{
		{"image allow-list", "./examples/policies/image-allowlist-go", "examples/policies/image-allowlist/main.c",
			"examples/policies/image-allowlist-rego/policy.rego", "wflow/deny",
			map[string]string{"ok": "allow", "bad-image": "deny", "memory": "allow"}},
		{"require memory", "./examples/policies/require-memory", "examples/policies/require-memory-c/main.c",
			"examples/policies/require-memory-rego/policy.rego", "wflow/decision",
			map[string]string{"ok": "amend", "bad-image": "amend", "memory": "allow"}},
	}
	for _, p := range pairs {
		for _, module := range []string{testenv.GoGuest(t, p.goPkg), testenv.CGuest(t, p.cFile), testenv.RegoBundle(t, p.rego, p.entry)} {
			for step, verdict := range p.want {
				_, stdout, stderr := wflow(t, "policy", "test", module, "--step", filepath.Join(dir, step+".json"))
				var d struct {
					Verdict string
					Changes []struct {
						Field string
						After json.RawMessage
					}
				}
				if err := json.Unmarshal([]byte(stdout), &d); err != nil || d.Verdict != verdict {
					t.Errorf("%s (%s) on %s: %q, want %s\n%s", p.name, filepath.Base(module), step, d.Verdict, verdict, stderr)
				}
				if verdict == "amend" && (len(d.Changes) != 1 || d.Changes[0].Field != "memory" || string(d.Changes[0].After) != "268435456") {
					t.Errorf("%s (%s): changes %+v", p.name, filepath.Base(module), d.Changes)
				}
			}
		}
	}
}

// TestNetworkMustBeAllowed: a step asking for a network the run does not
// allow is refused by the policy builtin:network, with error kind
// "denied", before any container exists; with --network it runs.
func TestNetworkMustBeAllowed(t *testing.T) {
	testenv.Docker(t)
	guest := testenv.GoGuest(t, "./testdata/guests/rawspecs")
	spec := `-p=specs=[{"name":"net","image":"wflow-test/busybox","network":"bridge","commands":["ls /sys/class/net | grep -c eth0"]}]`
	for _, c := range []struct {
		flags          []string
		rc             int
		kind, contains string
	}{
		{nil, 1, "denied", `refused by policy builtin:network: network "bridge" is not allowed in this run (run with --network bridge to allow it)`},
		{[]string{"--network", "bridge"}, 0, "", ""},
	} {
		rundir := t.TempDir()
		code, stdout, stderr := wflow(t, append([]string{"run", guest, "--rundir", rundir, "-p", "fn=step", spec}, c.flags...)...)
		if code != exitOK {
			t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
		}
		var res []struct {
			ReturnCode int    `json:"returncode"`
			ErrorKind  string `json:"error_kind"`
			Error      string `json:"error"`
			Stdout     string `json:"stdout"`
			Commands   []any  `json:"commands"`
		}
		json.Unmarshal(readReport(t, rundir).Output, &res)
		if len(res) != 1 || res[0].ReturnCode != c.rc || res[0].ErrorKind != c.kind || !strings.Contains(res[0].Error, c.contains) ||
			(c.rc == 0) != (res[0].Stdout == "1\n") || (c.rc != 0) != (len(res[0].Commands) == 0) {
			t.Errorf("flags %v: %+v", c.flags, res)
		}
	}
}

// TestPolicyData: a bare Rego policy.wasm takes its data document from
// --policy-data; a bundle carries its own, and --policy-data with it is a
// usage error.
func TestPolicyData(t *testing.T) {
	bundle := testenv.RegoBundle(t, "testdata/policies/rego/data-images.rego", "wflow/deny")
	dir := t.TempDir()
	cmd := exec.Command("tar", "-xzf", bundle, "-C", dir, "/policy.wasm")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	wasm := filepath.Join(dir, "policy.wasm")
	stepFile := filepath.Join(dir, "step.json")
	os.WriteFile(stepFile, []byte(`{"name":"a","image":"wflow-test/busybox","commands":["true"]}`), 0o644)
	for _, c := range []struct {
		data    string
		code    int
		verdict string
	}{
		{`{"images": ["wflow-test/busybox"]}`, exitOK, "allow"},
		{`{"images": ["other/image"]}`, exitFailed, "deny"},
		{``, exitOK, "allow"}, // no data: data.images is undefined, so is the rule body, as opa eval says
	} {
		args := []string{"policy", "test", wasm, "--step", stepFile}
		if c.data != "" {
			data := filepath.Join(t.TempDir(), "data.json")
			os.WriteFile(data, []byte(c.data), 0o644)
			args = append(args, "--policy-data", data)
		}
		code, stdout, stderr := wflow(t, args...)
		if code != c.code || !strings.Contains(stdout, `"verdict": "`+c.verdict+`"`) {
			t.Errorf("data %s: exit %d\n%s\n%s", c.data, code, stdout, stderr)
		}
	}
	data := filepath.Join(dir, "data.json")
	os.WriteFile(data, []byte(`{}`), 0o644)
	if code, _, stderr := wflow(t, "policy", "test", bundle, "--step", stepFile, "--policy-data", data); code != exitUsage || !strings.Contains(stderr, "a bundle carries its own data.json") {
		t.Errorf("--policy-data with a bundle: exit %d, %s", code, stderr)
	}
}

// TestRegoPolicyRefusesThroughRun: the Rego allow-list, given to wflow run
// as the bundle opa build writes, refuses a step whose image is not on
// it, with its message, before the engine sees the image.
func TestRegoPolicyRefusesThroughRun(t *testing.T) {
	testenv.Docker(t)
	bundle := testenv.RegoBundle(t, "examples/policies/image-allowlist-rego/policy.rego", "wflow/deny")
	rundir := t.TempDir()
	code, stdout, stderr := wflow(t, "run", testenv.GoGuest(t, "./testdata/guests/rawspecs"), "--rundir", rundir, "--policy", bundle, "-p", "fn=step",
		`-p=specs=[{"name":"mine","image":"evil/miner","commands":["true"]},{"name":"ok","image":"wflow-test/busybox","commands":["echo allowed"]}]`)
	if code != exitOK {
		t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
	}
	var res []struct {
		ErrorKind string `json:"error_kind"`
		Error     string `json:"error"`
		Stdout    string `json:"stdout"`
	}
	json.Unmarshal(readReport(t, rundir).Output, &res)
	if len(res) != 2 || res[0].ErrorKind != "denied" || !strings.Contains(res[0].Error, "refused by policy rego:policy.tar.gz: image evil/miner is not on the allow-list") ||
		res[1].ErrorKind != "" || res[1].Stdout != "allowed\n" {
		t.Errorf("results %+v", res)
	}
}

// TestRegoPrintThroughPolicyTest: print() in a Rego policy built with
// --wasm-include-print shows on wflow policy test's standard error, and
// the policy decides as it would without it.
func TestRegoPrintThroughPolicyTest(t *testing.T) {
	bundle := testenv.RegoBundle(t, "testdata/policies/rego/print.rego", "wflow/deny", "--wasm-include-print")
	stepFile := filepath.Join(t.TempDir(), "step.json")
	os.WriteFile(stepFile, []byte(`{"name":"a","image":"bad","commands":["true"]}`), 0o644)
	code, stdout, stderr := wflow(t, "policy", "test", bundle, "--step", stepFile)
	if code != exitFailed || !strings.Contains(stdout, `"reason": "bad image"`) {
		t.Errorf("exit %d\n%s", code, stdout)
	}
	if !strings.Contains(stderr, "[print.tar.gz] image bad {\"n\":1} <undefined>\n[print.tar.gz] one of a\n") || strings.Contains(stderr, "warning") {
		t.Errorf("stderr:\n%s", stderr)
	}
}

package main

import (
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wflow/wflow/internal/testenv"
)

// The values of the test's secrets: a token, and a key of several lines.
const (
	testToken = "tok-7f3a9c1e-not-a-real-one"
	testKey   = "-----BEGIN TEST KEY-----\nMIIBOgIBAAJBAKj34GkxFhD90vcNLYLInFEX6Ppy1tPf9Cnzj4p4WGeKLs1Pt8Qu\n-----END TEST KEY-----"
)

// leaks returns every place in dir (each file, whatever its kind) that
// holds the token or a line of the key.
func leaks(t *testing.T, dir string) []string {
	t.Helper()
	var found []string
	filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !d.Type().IsRegular() {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			t.Errorf("read %s: %v", path, err)
			return nil
		}
		if what := leaked(b); what != "" {
			found = append(found, path+": "+what)
		}
		return nil
	})
	return found
}

// leaked says which secret text b holds, or "".
func leaked(b []byte) string {
	for _, s := range append([]string{testToken}, strings.Split(testKey, "\n")...) {
		if bytes.Contains(b, []byte(s)) {
			return s
		}
	}
	return ""
}

// TestSecretsAreMaskedEverywhere: steps print their secrets (whole, a byte
// per write, on stderr, once per attempt); a step hands one to the module
// through a file. Every file wflow wrote (the run directory, its records
// and journals, the step cache) and all it printed (text and --json) is
// searched for the values: only *** is there.
func TestSecretsAreMaskedEverywhere(t *testing.T) {
	testenv.Docker(t)
	guest := testenv.GoGuest(t, "./testdata/guests/secrets")
	t.Setenv("WFLOW_TEST_TOKEN", testToken)
	keyFile := filepath.Join(t.TempDir(), "key.pem")
	os.WriteFile(keyFile, []byte(testKey+"\n"), 0o600)

	for _, asJSON := range []bool{false, true} {
		rundir, cacheDir := t.TempDir(), t.TempDir()
		args := []string{"run", guest, "--rundir", rundir, "--cache-dir", cacheDir,
			"--secret", "token=env:WFLOW_TEST_TOKEN", "--secret", "key=file:" + keyFile}
		if asJSON {
			args = append(args, "--json")
		}
		code, stdout, stderr := wflow(t, args...)
		if code != exitOK {
			t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
		}
		if what := leaked([]byte(stdout + stderr)); what != "" {
			t.Errorf("the console shows %q:\n%s", what, stdout)
		}
		for _, l := range append(leaks(t, rundir), leaks(t, cacheDir)...) {
			t.Errorf("a file holds a secret: %s", l)
		}
		r := readReport(t, rundir)
		want := `{"failing":{"attempts":2,"code":3,"stdout":"***\n"},"leaked":"***",` +
			`"printer":{"ok":true,"stderr":"key: ***\n***","stdout":"token=***\n***\n"},` +
			`"unknown":"wflow: step_submit: invalid_step: invalid step: step unknown: secrets: X: no such secret \"missing\": the run has key, token (wflow run --secret NAME=env:VAR)"}`
		if string(r.Output) != want {
			t.Errorf("output\n%s\nwant\n%s", r.Output, want)
		}
		b, err := os.ReadFile(filepath.Join(rundir, r.Steps[0].StdoutFile))
		if err != nil || string(b) != "token=***\n***\n" {
			t.Errorf("the printer's stdout file: %q, %v", b, err)
		}
		if !strings.Contains(stdout, "read back: ***") {
			t.Errorf("the module's own output is not on the console:\n%s", stdout)
		}
		for _, s := range r.Steps {
			if s.Cached || s.Key != "" {
				t.Errorf("step %s uses secrets but has a key %q (cached %v)", s.Step, s.Key, s.Cached)
			}
		}
	}
}

// TestSecretsPolicy: the example policy secret-images gives each secret to
// the images it lists; policies see the secret names in the step.
func TestSecretsPolicy(t *testing.T) {
	testenv.Docker(t)
	guest := testenv.GoGuest(t, "./testdata/guests/secrets")
	policy := testenv.GoGuest(t, "./examples/policies/secret-images")
	t.Setenv("WFLOW_TEST_TOKEN", testToken)
	rundir := t.TempDir()
	code, stdout, stderr := wflow(t, "run", guest, "--rundir", rundir, "-p", "case=policy", "--policy", policy,
		"--secret", "deploy-token=env:WFLOW_TEST_TOKEN", "--secret", "db-password=env:WFLOW_TEST_TOKEN")
	if code != exitOK {
		t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
	}
	r := readReport(t, rundir)
	if want := `{"db-python":"ran","deploy-busybox":"ran","deploy-python":"denied"}`; string(r.Output) != want {
		t.Errorf("output %s, want %s", r.Output, want)
	}
	refused := false
	for _, d := range r.Decisions {
		if d.Step == "deploy-python" && d.Verdict == "deny" {
			refused = strings.Contains(d.Reason, "secret deploy-token (as $S) may not go to image wflow-test/python")
		}
	}
	if !refused {
		t.Errorf("no refusal of deploy-python naming the secret: %+v", r.Decisions)
	}
	if l := leaks(t, rundir); len(l) != 0 || leaked([]byte(stdout)) != "" {
		t.Errorf("secrets leaked: %v", l)
	}
}

// TestSecretFlags: a bad --secret is a usage error naming the flag, before
// anything runs.
func TestSecretFlags(t *testing.T) {
	module := watFile(t, "testdata/hello.wat")
	short := filepath.Join(t.TempDir(), "short")
	os.WriteFile(short, []byte("abc\n"), 0o600)
	t.Setenv("WFLOW_TEST_TOKEN", testToken)
	for _, c := range []struct{ flag, msg string }{
		{"token", "want NAME=env:VAR or NAME=file:PATH"},
		{"token=WFLOW_TEST_TOKEN", "the source must be env:VAR or file:PATH"},
		{"token=env:WFLOW_TEST_UNSET_VARIABLE", "WFLOW_TEST_UNSET_VARIABLE is not set"},
		{"token=file:/nonexistent/secret", "no such file"},
		{"token=file:" + short, "at least 4"},
		{"-x=env:WFLOW_TEST_TOKEN", "a secret's name"},
		{"token=" + testToken, "the source must be"}, // a value given by mistake is not echoed
		{testToken, "want NAME=env:VAR"},
	} {
		code, stdout, stderr := wflow(t, "run", module, "--rundir", t.TempDir(), "--secret", c.flag)
		if code != exitUsage || !strings.Contains(stderr, c.msg) || leaked([]byte(stdout+stderr)) != "" {
			t.Errorf("--secret %s: exit %d, %q; want %q", c.flag, code, stderr, c.msg)
		}
	}
}

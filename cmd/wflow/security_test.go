package main

// The security suite: each test is an attack from docs/security.md, made as
// a hostile module and its steps would make it, against the real engine.

import (
	"context"
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/wflow/wflow/internal/testenv"
	"github.com/wflow/wflow/step"
)

// attackOutput is what the stepas guest sets as its output.
type attackOutput struct {
	Result      step.ExecResult `json:"result"`
	SubmitError string          `json:"submit_error"`
	Opened      bool            `json:"opened"`
	OpenError   string          `json:"open_error"`
}

// runAttack runs the stepas guest with a step as user running script, then
// opening open from the module, and returns its output and the run directory.
func runAttack(t *testing.T, user, script, open string, flags ...string) (attackOutput, string) {
	t.Helper()
	rundir := filepath.Join(t.TempDir(), "run")
	args := append([]string{"run", testenv.GoGuest(t, "./testdata/guests/stepas"), "--rundir", rundir,
		"-p", "user=" + user, "-p", "script=" + script, "-p", "open=" + open}, flags...)
	code, stdout, stderr := wflow(t, args...)
	if code != exitOK {
		t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
	}
	var out attackOutput
	if err := json.Unmarshal(readReport(t, rundir).Output, &out); err != nil {
		t.Fatal(err)
	}
	return out, rundir
}

// A step, even one running as root, has no capabilities and cannot gain
// any: it cannot make a device node, give a file to root, or leave a setuid
// file that works on the host; and the module cannot open a device.
func TestStepsCannotLeavePrivilegesInTheRunDirectory(t *testing.T) {
	testenv.Docker(t)
	script := `grep -E '^(CapEff|NoNewPrivs)' /proc/self/status
grep ' /wflow ' /proc/self/mountinfo
mknod null c 1 3 2>/dev/null && echo MKNOD_OK || echo MKNOD_REFUSED
cp /bin/busybox suid && chmod 6755 suid
mkfifo fifo; true`
	// As root when the run allows it: the strongest step there is.
	out, rundir := runAttack(t, "0:0", script, "null", "--allow-root")
	stdout := out.Result.Stdout
	for _, want := range []string{"CapEff:\t0000000000000000", "NoNewPrivs:\t1", "MKNOD_REFUSED"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("step output lacks %q:\n%s%s", want, stdout, out.Result.Stderr)
		}
	}
	if os.Geteuid() == 0 && !regexpMatch(`/wflow \S*nosuid,nodev`, stdout) {
		t.Errorf("wflow runs as root, so the run directory should be mounted nosuid,nodev in the step:\n%s", stdout)
	}
	if out.Opened {
		t.Error("the module opened a device node the step made")
	}
	// After the run nothing in the run directory carries a privilege.
	filepath.WalkDir(rundir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := os.Lstat(p)
		if err != nil {
			return err
		}
		if m := info.Mode(); m&(fs.ModeSetuid|fs.ModeDevice|fs.ModeCharDevice) != 0 || m&fs.ModeSetgid != 0 && !m.IsDir() {
			t.Errorf("%s is %v after the run", p, m)
		}
		return nil
	})
	if _, err := os.Stat(filepath.Join(rundir, "suid")); err != nil {
		t.Errorf("the step's file should still be there, without its setuid bit: %v", err)
	}
}

// Root, a name (which the image may map to root) or group 0 in a step are
// the invoking user's to allow (--allow-root), never the module's.
func TestModuleCannotMakeAStepRoot(t *testing.T) {
	testenv.Docker(t)
	for _, user := range []string{"0", "0:0", "root", "root:root", "1000", "1000:0", "0:1000", "nobody"} {
		t.Run(user, func(t *testing.T) {
			out, _ := runAttack(t, user, "id", "", "--user", "1000:1000")
			if out.Result.ErrorKind != step.ErrorKindDenied || !strings.Contains(out.Result.Error, "--allow-root") {
				t.Errorf("user %q: %+v", user, out.Result)
			}
		})
	}
	// A numeric non-root user is the module's to choose; root with --allow-root.
	out, _ := runAttack(t, "1234:5678", "id -u; id -g", "", "--user", "1000:1000")
	if !out.Result.OK() || out.Result.Stdout != "1234\n5678\n" {
		t.Errorf("numeric user: %+v", out.Result)
	}
	out, _ = runAttack(t, "0:0", "id -u", "", "--user", "1000:1000", "--allow-root")
	if !out.Result.OK() || out.Result.Stdout != "0\n" {
		t.Errorf("root with --allow-root: %+v", out.Result)
	}
}

func regexpMatch(pattern, s string) bool { return regexp.MustCompile(pattern).MatchString(s) }

// A run directory whose path holds ':' (Docker's bind syntax separator)
// still mounts where it should.
func TestRunDirWithAColon(t *testing.T) {
	testenv.Docker(t)
	rundir := filepath.Join(t.TempDir(), "a:b", "run")
	code, stdout, stderr := wflow(t, "run", testenv.GoGuest(t, "./testdata/guests/stepas"), "--rundir", rundir,
		"-p", "script=echo hi > made.txt")
	if code != exitOK {
		t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
	}
	if b, err := os.ReadFile(filepath.Join(rundir, "made.txt")); string(b) != "hi\n" {
		t.Errorf("made.txt = %q, %v", b, err)
	}
}

// Escape sequences a step prints (window title, clipboard, concealed text)
// reach the text console escaped, the step's file byte for byte, and
// --json exactly.
func TestStepEscapeSequencesAreShownEscaped(t *testing.T) {
	testenv.Docker(t)
	script := `printf '\033]0;pwned\007\033]52;c;ZXZpbA==\007\033[8mhidden\033[0m\n'; printf 'err\033[2J\n' >&2`
	guest := testenv.GoGuest(t, "./testdata/guests/stepas")
	rundir := filepath.Join(t.TempDir(), "run")
	code, stdout, stderr := wflow(t, "run", guest, "--rundir", rundir, "-p", "script="+script)
	if code != exitOK {
		t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
	}
	if strings.ContainsRune(stdout, 0x1b) || strings.ContainsRune(stdout, 0x07) {
		t.Errorf("raw control characters reached the console:\n%q", stdout)
	}
	// Window title and clipboard shown escaped, the concealing style dropped.
	for _, want := range []string{`[attack] \x1b]0;pwned\x07\x1b]52;c;ZXZpbA==\x07hidden` + "\n", `[attack stderr] err\x1b[2J`} {
		if !strings.Contains(stdout, want) {
			t.Errorf("console lacks %s:\n%s", want, stdout)
		}
	}
	var out attackOutput
	json.Unmarshal(readReport(t, rundir).Output, &out)
	raw, err := os.ReadFile(filepath.Join(rundir, out.Result.StdoutFile))
	if err != nil || string(raw) != "\x1b]0;pwned\x07\x1b]52;c;ZXZpbA==\x07\x1b[8mhidden\x1b[0m\n" {
		t.Errorf("the step's stdout file should keep the bytes: %q, %v", raw, err)
	}
	code, stdout, _ = wflow(t, "run", guest, "--rundir", filepath.Join(t.TempDir(), "run"), "--json", "-p", "script="+script)
	if code != exitOK || !strings.Contains(stdout, `"line":"\u001b]0;pwned\u0007\u001b]52;c;ZXZpbA==\u0007\u001b[8mhidden\u001b[0m"`) {
		t.Errorf("--json should carry the exact line:\n%s", stdout)
	}
}

// An image the module names makes the daemon contact its registry only when
// the user allowed that registry (or image): a listener standing in for the
// module's registry counts the daemon's connections.
func TestModuleCannotMakeTheDaemonContactARegistry(t *testing.T) {
	testenv.Docker(t)
	registry, contacts := testenv.Knocks(t)
	image := registry + "/exfiltrated-run-data:latest"
	guest := testenv.GoGuest(t, "./testdata/guests/stepas")
	for _, pull := range []string{"missing", "always"} {
		rundir := filepath.Join(t.TempDir(), "run")
		code, stdout, stderr := wflow(t, "run", guest, "--rundir", rundir, "-p", "image="+image, "-p", "script=true", "--pull", pull)
		if code != exitOK {
			t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
		}
		var out attackOutput
		json.Unmarshal(readReport(t, rundir).Output, &out)
		if out.Result.ErrorKind != step.ErrorKindImage || !strings.Contains(out.Result.Error, "--allow-registry "+registry) {
			t.Errorf("--pull %s: %+v (submit: %s)", pull, out.Result, out.SubmitError)
		}
	}
	// A notebook's base image is pulled by the image build: the same rule.
	rundir := filepath.Join(t.TempDir(), "run")
	code, stdout, stderr := wflow(t, "run", testenv.GoGuest(t, "./testdata/guests/nbbase"), "--rundir", rundir, "-p", "base="+image)
	var nb struct{ Kind, Error string }
	json.Unmarshal(readReport(t, rundir).Output, &nb)
	if code != exitOK || nb.Kind != step.ErrorKindBuild || !strings.Contains(nb.Error, "--allow-registry "+registry) {
		t.Errorf("notebook on the module's base: exit %d, %+v\n%s\n%s", code, nb, stdout, stderr)
	}
	// --pull never holds for bases too, even from an allowed registry.
	rundir = filepath.Join(t.TempDir(), "run")
	code, stdout, stderr = wflow(t, "run", testenv.GoGuest(t, "./testdata/guests/nbbase"), "--rundir", rundir, "-p", "base="+image,
		"--allow-registry", registry, "--pull", "never")
	json.Unmarshal(readReport(t, rundir).Output, &nb)
	if code != exitOK || nb.Kind != step.ErrorKindBuild || !strings.Contains(nb.Error, "--pull=never") {
		t.Errorf("notebook base under --pull never: exit %d, %+v\n%s\n%s", code, nb, stdout, stderr)
	}
	if n := contacts(); n != 0 {
		t.Fatalf("the daemon contacted the module's registry %d times", n)
	}
	// The listener does see the daemon when the user allows the registry:
	// the check above can fail.
	code, stdout, stderr = wflow(t, "run", guest, "--rundir", filepath.Join(t.TempDir(), "run"), "-p", "image="+image, "-p", "script=true", "--allow-registry", registry)
	if code != exitOK || contacts() == 0 {
		t.Errorf("allowed pull: exit %d, %d contacts\n%s\n%s", code, contacts(), stdout, stderr)
	}
}

// A step cannot forge wflow's records: the records folder is read-only in
// every container, so the report, the journal and the output files of
// other steps stay wflow's, and no FIFO can be planted where wflow will
// write next.
func TestStepsCannotForgeTheRecords(t *testing.T) {
	testenv.Docker(t)
	script := `for f in .wflow/report.json .wflow/runs/*/results.jsonl .wflow/x; do echo forged >> $$f && echo WROTE $$f; done
mkdir -p .wflow/steps/0002-next && mkfifo .wflow/steps/0002-next/stdout && echo PLANTED
mv .wflow gone && echo MOVED
rm -rf .wflow && echo REMOVED
cat .wflow/runs/*/results.jsonl >/dev/null && echo READABLE
true`
	rundir := filepath.Join(t.TempDir(), "run")
	code, stdout, stderr := wflow(t, "run", testenv.GoGuest(t, "./testdata/guests/stepas"), "--rundir", rundir,
		"-p", "script="+script, "-p", "then=echo second")
	if code != exitOK {
		t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
	}
	var out struct {
		Result, Next step.ExecResult
	}
	json.Unmarshal(readReport(t, rundir).Output, &out)
	if s := out.Result.Stdout; strings.Contains(s, "WROTE") || strings.Contains(s, "PLANTED") || strings.Contains(s, "MOVED") ||
		strings.Contains(s, "REMOVED") || !strings.Contains(s, "READABLE") {
		t.Errorf("the step changed the records, or could not read them:\n%s%s", s, out.Result.Stderr)
	}
	if !out.Next.OK() || out.Next.Stdout != "second\n" {
		t.Errorf("the next step: %+v", out.Next)
	}
	id := readReport(t, rundir).RunID
	journal, err := readJournal(t, rundir, id)
	lines := strings.Split(strings.TrimSuffix(string(journal), "\n"), "\n")
	if err != nil || len(lines) != 2 || !strings.HasPrefix(lines[0], `{"run_id":"`+id+`","step":"attack"`) || !strings.HasPrefix(lines[1], `{"run_id":"`+id+`","step":"next"`) {
		t.Errorf("journal %q, %v", journal, err)
	}
	if r := readReport(t, rundir); r.Status != "succeeded" || len(r.Steps) != 2 {
		t.Errorf("report: status %s, %d steps", r.Status, len(r.Steps))
	}
}

// A notebook image build runs the requirements' code (pip, build hooks), so
// it gets the run's network (none unless --network or --build-network say
// otherwise) and its memory limit; a hostile package cannot phone home.
func TestNotebookBuildsAreConfined(t *testing.T) {
	testenv.Docker(t)
	tmpl := filepath.Join(t.TempDir(), "Dockerfile.tmpl")
	os.WriteFile(tmpl, []byte(`FROM {{.Base}}
RUN echo "probe: eth0=$(ls /sys/class/net | grep -c eth0) memory=$(cat /sys/fs/cgroup/memory.max 2>/dev/null || cat /sys/fs/cgroup/memory/memory.limit_in_bytes)"
COPY requirements.txt /wflow-build/requirements.txt
`), 0o644)
	probe := func(flags ...string) string {
		t.Helper()
		rundir := filepath.Join(t.TempDir(), "run")
		args := append([]string{"run", testenv.GoGuest(t, "./testdata/guests/nbbase"), "--rundir", rundir,
			"--notebook-base", "wflow-test/busybox", "--notebook-dockerfile", tmpl}, flags...)
		code, stdout, stderr := wflow(t, args...)
		if code != exitOK {
			t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
		}
		logs, _ := filepath.Glob(filepath.Join(rundir, ".wflow", "steps", "*", "build.log"))
		if len(logs) != 1 {
			t.Fatalf("build logs %v\n%s", logs, stdout)
		}
		b, _ := os.ReadFile(logs[0])
		// The limits are not in the build context (the image's hash): remove
		// the image, so that the next probe builds again.
		if m := regexp.MustCompile(`building notebook image (\S+)`).FindStringSubmatch(string(b)); m != nil {
			testenv.Docker(t).RemoveImage(context.Background(), m[1])
		}
		return string(b)
	}
	if log := probe("--memory", "64m"); !strings.Contains(log, "probe: eth0=0 memory=67108864") || !strings.Contains(log, "build network none") {
		t.Errorf("a build with the defaults and --memory 64m:\n%s", log)
	}
	if log := probe("--build-network", "bridge"); !strings.Contains(log, "probe: eth0=1") {
		t.Errorf("a build with --build-network bridge:\n%s", log)
	}
}

// Notebook images pile up (one per set of requirements): gc --images
// removes those no container uses.
func TestGCRemovesUnusedNotebookImages(t *testing.T) {
	e := testenv.Docker(t)
	dir := t.TempDir()
	tmpl := filepath.Join(dir, "Dockerfile.tmpl")
	os.WriteFile(tmpl, []byte("FROM {{.Base}}\nCOPY requirements.txt /wflow-build/requirements.txt\nRUN echo gc-test\n"), 0o644)
	code, stdout, stderr := wflow(t, "notebook", "build", "--notebook-base", "wflow-test/busybox", "--notebook-dockerfile", tmpl, "--context", dir)
	tag := strings.TrimSpace(strings.TrimPrefix(lastLine(stdout), "built "))
	if code != exitOK || !strings.HasPrefix(tag, "wflow-notebook:") {
		t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
	}
	code, stdout, stderr = wflow(t, "gc", "--images")
	if exists, _ := e.ImageExists(context.Background(), tag); code != exitOK || exists || !regexpMatch(`removed [1-9]\d* notebook image`, stdout) {
		t.Errorf("exit %d, %s still there: %v\n%s\n%s", code, tag, exists, stdout, stderr)
	}
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

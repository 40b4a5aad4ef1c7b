package main

import (
	"bufio"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/wflow/wflow/history"
	"github.com/wflow/wflow/internal/testenv"
)

// TestHistory: wflow runs, show, logs and report read a finished run back
// from its files.
func TestHistory(t *testing.T) {
	dir, rep := runReportDemo(t)
	parent := filepath.Dir(dir)

	code, stdout, stderr := wflow(t, "runs", parent)
	if code != exitOK || !regexp.MustCompile(rep.RunID+`\s+succeeded\s+.*\s+6 \(2 not ok\)\s+\S*reportdemo`).MatchString(stdout) {
		t.Errorf("wflow runs: exit %d\n%s\n%s", code, stdout, stderr)
	}
	code, stdout, _ = wflow(t, "runs", parent, "--json")
	var runs []history.Run
	if err := json.Unmarshal([]byte(stdout), &runs); code != exitOK || err != nil || len(runs) != 1 {
		t.Fatalf("wflow runs --json: exit %d, %v\n%s", code, err, stdout)
	}
	if r := runs[0]; r.ID != rep.RunID || r.Status != "succeeded" || r.Steps != 6 || r.Failed != 2 || r.ExitCode == nil || *r.ExitCode != 0 || r.Dir != dir || r.DurationMS != rep.DurationMS {
		t.Errorf("wflow runs --json: %+v", r)
	}

	// show, by a start of the id, looked for in --dir
	code, stdout, stderr = wflow(t, "show", rep.RunID[:17], "--dir", parent)
	for _, want := range []string{"run " + rep.RunID + " in " + dir, "flaky-download", "cancelled: the module cancelled", "workflow succeeded", "html:   " + filepath.Join(dir, rep.HTML)} {
		if !strings.Contains(stdout, want) {
			t.Errorf("wflow show lacks %q: exit %d\n%s\n%s", want, code, stdout, stderr)
		}
	}
	if code, _, stderr := wflow(t, "show", "19990101", "--dir", parent); code != exitUsage || !strings.Contains(stderr, "no such run") {
		t.Errorf("wflow show of no run: exit %d, %s", code, stderr)
	}

	// logs: the module's log with the steps' ends, in time order
	code, stdout, _ = wflow(t, "logs", dir)
	order := []string{"[workflow] fetching and preparing the inputs", "[prepare] exited 0", "[workflow] submitted 5 steps", "[workflow warn] not waiting for the slow step", "[slow] error (cancelled)"}
	at := 0
	for _, want := range order {
		i := strings.Index(stdout[at:], want)
		if i < 0 {
			t.Errorf("wflow logs: %q missing or out of order (exit %d)\n%s", want, code, stdout)
			break
		}
		at += i
	}
	// a step's: every attempt, stdout and stderr apart
	code, stdout, stderr = wflow(t, "logs", dir, "flaky-download")
	if code != exitOK || !regexp.MustCompile(`^==> flaky-download #\d+, attempt 1 of 2: failed, exit 75 <==\n==> flaky-download #\d+, attempt 2 of 2: ok <==\ndownloaded\n$`).MatchString(stdout) || stderr != "connection reset\n" {
		t.Errorf("wflow logs RUN flaky-download: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	if code, stdout, _ := wflow(t, "logs", dir, "#4"); code != exitOK || stdout != "<script>alert(\"not run\")</script>\n" {
		t.Errorf("wflow logs RUN #4: exit %d, %q", code, stdout)
	}
	if code, _, stderr := wflow(t, "logs", dir, "99"); code != exitUsage || !strings.Contains(stderr, "no step") {
		t.Errorf("wflow logs of no step: exit %d, %s", code, stderr)
	}

	// report: the JSON, and the HTML page elsewhere, its links made relative to it
	code, stdout, _ = wflow(t, "report", rep.RunID, "--dir", parent)
	var again struct {
		RunID string            `json:"run_id"`
		Steps []json.RawMessage `json:"steps"`
	}
	if err := json.Unmarshal([]byte(stdout), &again); code != exitOK || err != nil || again.RunID != rep.RunID || len(again.Steps) != 6 {
		t.Errorf("wflow report: exit %d, %v, %s with %d steps", code, err, again.RunID, len(again.Steps))
	}
	out := filepath.Join(t.TempDir(), "pages", "run.html")
	os.MkdirAll(filepath.Dir(out), 0o755)
	if code, _, stderr := wflow(t, "report", dir, "--html", "-o", out); code != exitOK {
		t.Fatalf("wflow report --html: exit %d\n%s", code, stderr)
	}
	page, _ := os.ReadFile(out)
	links := regexp.MustCompile(`href="([^"#]+/stdout)"`).FindAllStringSubmatch(string(page), -1)
	if len(links) == 0 {
		t.Fatalf("no links to stdout files in\n%s", page)
	}
	for _, l := range links {
		if _, err := os.Stat(filepath.Join(filepath.Dir(out), l[1])); err != nil {
			t.Errorf("link %s leads nowhere: %v", l[1], err)
		}
	}
}

// TestHistoryOfLiveAndKilledRuns: wflow logs -f follows a step of a run
// going on and ends when the step has; a run whose wflow is killed is
// "running" while it goes and "unfinished" after, and wflow show still
// shows what its journal kept.
func TestHistoryOfLiveAndKilledRuns(t *testing.T) {
	testenv.Docker(t)
	bin := testenv.Wflow(t)
	guest := testenv.GoGuest(t, "./testdata/guests/rawspecs")
	dir := t.TempDir()
	cmd := exec.Command(bin, "run", guest, "--rundir", dir, "-p", "fn=step", `-p=specs=[
	 {"name":"ticker","image":"wflow-test/busybox","commands":["for i in 1 2 3 4 5 6; do echo tick $$i; sleep 0.4; done; echo to-stderr >&2"]},
	 {"name":"sleeper","image":"wflow-test/busybox","commands":["echo zzz; sleep 100"]}]`)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	lines := bufio.NewScanner(out)
	for lines.Scan() && !strings.Contains(lines.Text(), "tick 1") {
	}
	go func() {
		for lines.Scan() {
		}
	}()

	code, stdout, _ := wflow(t, "runs", dir, "--json")
	if code != exitOK || !strings.Contains(stdout, `"status": "running"`) {
		t.Errorf("a run going on: exit %d\n%s", code, stdout)
	}
	start := time.Now()
	code, stdout, stderr := wflow(t, "logs", dir, "ticker", "-f")
	if code != exitOK || stdout != "tick 1\ntick 2\ntick 3\ntick 4\ntick 5\ntick 6\n" || stderr != "to-stderr\n" {
		t.Errorf("wflow logs -f of a running step: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	if d := time.Since(start); d > 20*time.Second {
		t.Errorf("wflow logs -f took %s: it did not end with the step", d)
	}

	// Killed while the sleeper runs.
	for i := 0; i < 100; i++ {
		if code, stdout, _ := wflow(t, "logs", dir, "sleeper"); code == exitOK && stdout == "zzz\n" {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	code, stdout, _ = wflow(t, "runs", dir, "--json")
	var runs []history.Run
	if err := json.Unmarshal([]byte(stdout), &runs); code != exitOK || err != nil || len(runs) != 1 || runs[0].Status != history.StatusUnfinished || runs[0].Steps != 1 {
		t.Errorf("a killed run: exit %d, %v\n%s", code, err, stdout)
	}
	code, stdout, _ = wflow(t, "show", dir)
	if code != exitOK || !strings.Contains(stdout, "ticker") || !strings.Contains(stdout, "workflow unfinished: wflow ended without finishing this run") {
		t.Errorf("wflow show of a killed run: exit %d\n%s", code, stdout)
	}
	wflow(t, "gc")
}

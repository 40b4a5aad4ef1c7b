package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wflow/wflow/internal/testenv"
	"github.com/wflow/wflow/journal"
	"github.com/wflow/wflow/replay"
)

// replayJSON runs `wflow replay --json` and returns its exit code and result.
func replayJSON(t *testing.T, args ...string) (int, replay.Result) {
	t.Helper()
	code, stdout, stderr := wflow(t, append([]string{"replay", "--json"}, args...)...)
	var res replay.Result
	if err := json.Unmarshal([]byte(stdout), &res); err != nil {
		t.Fatalf("replay %v: exit %d, not JSON: %v\n%s\n%s", args, code, err, stdout, stderr)
	}
	return code, res
}

// replaysTheSame checks that `wflow replay RUNDIR` (the run's own module)
// makes the same calls to the end.
func replaysTheSame(t *testing.T, rundir string) {
	t.Helper()
	code, stdout, stderr := wflow(t, "replay", rundir)
	if code != exitOK || !strings.Contains(stdout, "ok: the module made the same") {
		t.Errorf("wflow replay %s: exit %d\n%s\n%s", rundir, code, stdout, stderr)
	}
}

// TestReplayFindsWhereAnEditedModuleDecidesDifferently runs a Go module
// that reads the clock and random bytes, runs two steps at once and reacts
// to the first: its replay makes the same calls with no engine; the same
// source built to run another command in its third step is caught at that
// call, with the step and the field that differ.
func TestReplayFindsWhereAnEditedModuleDecidesDifferently(t *testing.T) {
	testenv.Docker(t)
	module := testenv.GoGuest(t, "./testdata/guests/replayable")
	edited := testenv.GoGuestWithLDFlags(t, "./testdata/guests/replayable", "-X main.variant=edited")
	rundir := t.TempDir()
	if code, stdout, stderr := wflow(t, "run", module, "--rundir", rundir); code != exitOK {
		t.Fatalf("run: exit %d\n%s\n%s", code, stdout, stderr)
	}
	code, res := replayJSON(t, rundir)
	if code != exitOK || !res.OK || !res.Complete || res.Matched != res.Calls || res.Calls < 8 || res.ModuleSHA256 != res.RecordedModuleSHA256 {
		t.Fatalf("replay of the same module: exit %d, %+v", code, res)
	}

	code, res = replayJSON(t, rundir, edited)
	d := res.Divergence
	if code != exitFailed || res.OK || d == nil {
		t.Fatalf("replay of the edited module: exit %d, %+v", code, res)
	}
	// log, params_get twice, submit, submit, wait, result, wait, result:
	// the 10th call is the third step.
	if d.Call != 10 || d.Function != "step_run" || d.Step != "third" || res.Matched != 9 ||
		len(d.Diff) != 1 || d.Diff[0].Path != "commands.0" || d.Diff[0].Now != `"echo edited"` {
		t.Errorf("divergence %+v, diff %+v", d, d.Diff)
	}
	code, stdout, _ := wflow(t, "replay", rundir, edited)
	for _, want := range []string{"not the run's module", "the module diverged at call 10 (step_run): the step spec differs", "step:     third", `commands.0: "echo after`, `-> "echo edited"`, "9 of 12 calls were the same"} {
		if code != exitFailed || !strings.Contains(stdout, want) {
			t.Errorf("exit %d, output lacks %q:\n%s", code, want, stdout)
		}
	}
}

// TestReplayOfACModuleReadingClocksAndRandom: the same with wasi-libc's
// clock_gettime and arc4random, and the C SDK's buffer retries.
func TestReplayOfACModuleReadingClocksAndRandom(t *testing.T) {
	testenv.Docker(t)
	module := testenv.CGuest(t, "testdata/guests/replayable-c/main.c")
	rundir := t.TempDir()
	if code, stdout, stderr := wflow(t, "run", module, "--rundir", rundir); code != exitOK {
		t.Fatalf("run: exit %d\n%s\n%s", code, stdout, stderr)
	}
	code, res := replayJSON(t, rundir)
	if code != exitOK || !res.OK || !res.Complete {
		t.Fatalf("replay: exit %d, %+v", code, res)
	}
	rec, err := journal.ReadCalls(rundir, res.RunID)
	if err != nil {
		t.Fatal(err)
	}
	if len(rec.Walls) == 0 || len(rec.Random) == 0 {
		t.Errorf("the journal holds %d wall-clock readings and %d random bytes; the module read both", len(rec.Walls), len(rec.Random))
	}
	tooSmall := 0
	for _, c := range rec.Calls {
		if c.Fn == "step_result" && c.Errno != 0 {
			tooSmall++
		}
	}
	if tooSmall != 1 {
		t.Errorf("%d step_result calls with a small buffer, want 1 (the test means the SDK's retry)", tooSmall)
	}
}

// TestReplayOfAJournalCutInItsLastRecord cuts the calls journal of a run at
// every byte offset of its last record, and of its last call: each time the
// replay runs the complete prefix and says the journal stops there.
func TestReplayOfAJournalCutInItsLastRecord(t *testing.T) {
	testenv.Docker(t)
	module := testenv.GoGuest(t, "./testdata/guests/replayable")
	rundir := t.TempDir()
	if code, stdout, stderr := wflow(t, "run", module, "--rundir", rundir); code != exitOK {
		t.Fatalf("run: exit %d\n%s\n%s", code, stdout, stderr)
	}
	id := readReport(t, rundir).RunID
	path := filepath.Join(rundir, journal.CallsPath(id))
	whole, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.SplitAfter(strings.TrimSuffix(string(whole), "\n"), "\n")
	lastCall := 0 // offset of the last call's line
	off := 0
	for _, l := range lines {
		if strings.HasPrefix(l, `{"call":`) {
			lastCall = off
		}
		off += len(l)
	}
	lastRecord := len(whole) - len(lines[len(lines)-1]) - 1
	if !strings.HasPrefix(string(whole[lastRecord:]), `{"end":`) {
		t.Fatalf("the last record is not the end: %q", whole[lastRecord:])
	}
	cuts := map[int]bool{}
	for i := lastRecord; i <= len(whole); i++ {
		cuts[i] = true
	}
	for i := lastCall; i < lastRecord; i += 3 { // the last call's line: every third offset
		cuts[i] = true
	}
	wasm, cache := mustRead(t, module), t.TempDir()
	for cut := range cuts {
		if err := os.WriteFile(path, whole[:cut], 0o644); err != nil {
			t.Fatal(err)
		}
		res, err := replay.Run(t.Context(), replay.Config{RunDir: rundir, RunID: id, Module: wasm, CacheDir: cache})
		wantCalls := 0 // the calls whose whole line is before the cut
		off := 0
		for _, l := range lines {
			if off+len(l) <= cut && strings.HasPrefix(l, `{"call":`) && strings.HasSuffix(l, "\n") {
				wantCalls++
			}
			off += len(l)
		}
		complete := cut == len(whole)
		if err != nil || !res.OK || res.Calls != wantCalls || res.Matched != wantCalls || res.Complete != complete {
			t.Errorf("cut at %d of %d: %v, ok %v, %d calls, %d matched, complete %v; want %d calls, complete %v",
				cut, len(whole), err, res.OK, res.Calls, res.Matched, res.Complete, wantCalls, complete)
		}
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestResumeWithAnEditedModuleIsCheckedByReplay: --resume with another
// module replays it against the run's journal first. One that decides
// differently before the run's last successful step is refused (exit 1,
// the divergence printed) unless --force-resume; one that first differs at
// a step that failed in the run resumes, and runs that step.
func TestResumeWithAnEditedModuleIsCheckedByReplay(t *testing.T) {
	testenv.Docker(t)
	module := testenv.GoGuest(t, "./testdata/guests/replayable")
	edited := testenv.GoGuestWithLDFlags(t, "./testdata/guests/replayable", "-X main.variant=edited")

	t.Run("refused, then forced", func(t *testing.T) {
		rundir := t.TempDir()
		if code, stdout, stderr := wflow(t, "run", module, "--rundir", rundir, "-p", "fixed=yes"); code != exitOK {
			t.Fatalf("run: exit %d\n%s\n%s", code, stdout, stderr)
		}
		code, stdout, stderr := wflow(t, "run", edited, "--resume", rundir, "-p", "fixed=yes")
		if code != exitFailed || !strings.Contains(stderr, "it decides differently on that run's journal") || !strings.Contains(stderr, "step:     third") {
			t.Fatalf("resume with a module that decides differently: exit %d\n%s\n%s", code, stdout, stderr)
		}
		code, stdout, stderr = wflow(t, "run", edited, "--resume", rundir, "-p", "fixed=yes", "--force-resume")
		if code != exitOK {
			t.Fatalf("--force-resume: exit %d\n%s\n%s", code, stdout, stderr)
		}
		origins := map[string]string{}
		for _, s := range readReport(t, rundir).Steps {
			origins[s.Step] = s.Origin
		}
		if origins["slow"] != "resumed" || origins["fast"] != "resumed" || origins["third"] != "ran" {
			t.Errorf("--force-resume: origins %v", origins)
		}
	})
	t.Run("differs where the run failed", func(t *testing.T) {
		rundir := t.TempDir()
		if code, stdout, stderr := wflow(t, "run", module, "--rundir", rundir, "-p", "fail=third", "-p", "fixed=yes"); code != exitOK {
			t.Fatalf("run: exit %d\n%s\n%s", code, stdout, stderr)
		}
		code, stdout, stderr := wflow(t, "run", edited, "--resume", rundir, "-p", "fail=third", "-p", "fixed=yes")
		if code != exitOK || !strings.Contains(stdout, "then asks for another step where that run's step did not succeed") {
			t.Fatalf("resume with a module fixed at the failed step: exit %d\n%s\n%s", code, stdout, stderr)
		}
		r := readReport(t, rundir)
		for _, s := range r.Steps {
			if want := map[string]string{"slow": "resumed", "fast": "resumed", "third": "ran"}[s.Step]; s.Origin != want || !s.OK() {
				t.Errorf("step %s: origin %s, ok %v; want %s", s.Step, s.Origin, s.OK(), want)
			}
		}
	})
}

// TestReplayOfAModuleRunThroughALinkAndOfAChangedStreamFile: the default
// module is the one run.json names, through a link too; a stream file
// changed since the run is an error (exit 4), not a divergence.
func TestReplayOfAModuleRunThroughALinkAndOfAChangedStreamFile(t *testing.T) {
	testenv.Docker(t)
	link := filepath.Join(t.TempDir(), "workflow.wasm")
	if err := os.Symlink(testenv.GoGuest(t, "./testdata/guests/rawspecs"), link); err != nil {
		t.Fatal(err)
	}
	rundir := t.TempDir()
	specs := `[{"name":"big","image":"wflow-test/busybox","commands":["seq 1 3000"]}]`
	if code, stdout, stderr := wflow(t, "run", link, "--rundir", rundir, "-p", "fn=step", "-p", "specs="+specs); code != exitOK {
		t.Fatalf("run: exit %d\n%s\n%s", code, stdout, stderr)
	}
	replaysTheSame(t, rundir)
	out := filepath.Join(rundir, readReport(t, rundir).Steps[0].StdoutFile)
	f, err := os.OpenFile(out, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("changed\n")
	f.Close()
	code, stdout, stderr := wflow(t, "replay", rundir)
	if code != exitHostError || !strings.Contains(stderr, "cannot give back what the run's module got") {
		t.Errorf("replay after a stream file changed: exit %d\n%s\n%s", code, stdout, stderr)
	}
}

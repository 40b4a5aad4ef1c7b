package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/wflow/wflow/internal/testenv"
)

// TestCancelAndDeadlines runs ABI v1.2 against the real engine through the
// Go SDK: waits that time out, Cancel of a running and of a queued step,
// a group whose first failure cancels the rest, and a group whose deadline
// passes. Every step but one sleeps 60 s, so the run ends in seconds only
// when cancels stop them, and no container may remain.
func TestCancelAndDeadlines(t *testing.T) {
	e := testenv.Docker(t)
	guest := testenv.GoGuest(t, "./testdata/guests/cancel")
	rundir := t.TempDir()
	start := time.Now()
	code, stdout, stderr := wflow(t, "run", guest, "--rundir", rundir, "--parallel", "2")
	if code != exitOK {
		t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
	}
	if took := time.Since(start); took > 50*time.Second {
		t.Errorf("the run took %s: a cancelled step ran its 60 s", took)
	}
	type outcome struct {
		Kind, Error string
		Code        int
	}
	var out struct {
		Timeouts     int
		Long, Queued outcome
		Group        []outcome
		GroupFailed  string `json:"group_failed"`
		Deadline     []string
		DeadlineErr  bool `json:"deadline_err"`
		Ran          map[string]bool
	}
	r := readReport(t, rundir)
	if err := json.Unmarshal(r.Output, &out); err != nil {
		t.Fatalf("output %s: %v", r.Output, err)
	}
	removed := "the module cancelled the step (step_cancel) while the step ran; its container was removed"
	if out.Timeouts < 1 {
		t.Errorf("no wait timed out before the long step started: %s", r.Output)
	}
	if out.Long != (outcome{"cancelled", removed, 1}) || out.Ran["long.finished"] {
		t.Errorf("the running step: %+v, finished %v", out.Long, out.Ran["long.finished"])
	}
	if out.Queued != (outcome{"cancelled", "the module cancelled the step (step_cancel) before it started", 1}) || out.Ran["queued.ran"] {
		t.Errorf("the queued step: %+v, ran %v", out.Queued, out.Ran["queued.ran"])
	}
	// fails, sibling (running when fails failed), third (queued then; it
	// may have got fails' slot just before the cancel reached it).
	if len(out.Group) != 3 || out.GroupFailed != "fails" || out.Group[0] != (outcome{"", "", 3}) ||
		out.Group[1] != (outcome{"cancelled", removed, 1}) || out.Group[2].Kind != "cancelled" {
		t.Errorf("the group: failed %q, %+v", out.GroupFailed, out.Group)
	}
	if !out.DeadlineErr || strings.Join(out.Deadline, ",") != "cancelled,cancelled" {
		t.Errorf("the group past its deadline: error %v, kinds %v", out.DeadlineErr, out.Deadline)
	}
	if len(r.Steps) != 9 {
		t.Errorf("%d steps in the report, want 9", len(r.Steps))
	}
	for _, s := range r.Steps {
		if s.Step != "fails" && (s.ErrorKind != "cancelled" || s.Cached || s.Resumed) {
			t.Errorf("step %s in the report: %s %q", s.Step, s.ErrorKind, s.Error)
		}
	}
	if ids, _ := e.Labelled(context.Background(), "io.wflow.run", r.RunID); len(ids) != 0 {
		t.Errorf("containers remain: %v", ids)
	}
}

// TestCancelReplays: a run that cancels steps and times waits out is
// replayed from its calls journal, without an engine.
func TestCancelReplays(t *testing.T) {
	testenv.Docker(t)
	guest := testenv.GoGuest(t, "./testdata/guests/cancel")
	rundir := t.TempDir()
	code, stdout, stderr := wflow(t, "run", guest, "--rundir", rundir, "--parallel", "2", "-p", "replayable=1")
	if code != exitOK {
		t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
	}
	if out := string(readReport(t, rundir).Output); !strings.Contains(out, `"timeouts":2`) || !strings.Contains(out, "before it started") {
		t.Fatalf("output %s", out)
	}
	code, stdout, stderr = wflow(t, "replay", rundir)
	if code != exitOK || !strings.Contains(stdout, "ok: the module made the same") {
		t.Errorf("replay: exit %d\n%s\n%s", code, stdout, stderr)
	}
}

// TestCHeaderCancel: wflow.h's wflow_wait_timeout and wflow_cancel.
func TestCHeaderCancel(t *testing.T) {
	testenv.Docker(t)
	guest := testenv.CGuest(t, "testdata/guests/ccancel/main.c")
	rundir := t.TempDir()
	code, stdout, stderr := wflow(t, "run", guest, "--rundir", rundir)
	if code != exitOK {
		t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
	}
	if out := string(readReport(t, rundir).Output); out != `{"wait_errno":11,"kind":"cancelled","same":true}` {
		t.Errorf("output %s", out)
	}
}

// TestModulesBeforeV12StillRun: the examples that import only v1.0 and
// v1.1 functions (as every module built before ABI v1.2 did) validate as
// needing no more, and run; a v1.2 module is named as needing v1.2.
func TestModulesBeforeV12StillRun(t *testing.T) {
	for _, c := range []struct{ module, needs string }{
		{testenv.GoGuest(t, "./examples/go-pipeline"), "needs ABI v1.0;"},
		{testenv.GoGuest(t, "./testdata/guests/group"), "needs ABI v1.0;"}, // a Group, not NewGroup
		{testenv.CGuest(t, "examples/c-branch/main.c"), "needs ABI v1.0;"},
		{testenv.GoGuest(t, "./examples/notebook-params"), "needs ABI v1.1 (for notebook_run);"},
		{testenv.GoGuest(t, "./testdata/guests/cancel"), "needs ABI v1.2 (for step_cancel, step_wait_timeout);"},
	} {
		code, stdout, stderr := wflow(t, "validate", c.module)
		if code != exitOK || !strings.Contains(stdout, c.needs) {
			t.Errorf("validate %s: exit %d, want %q\n%s\n%s", c.module, code, c.needs, stdout, stderr)
		}
	}
}

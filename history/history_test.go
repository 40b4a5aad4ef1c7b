package history

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/wflow/wflow/journal"
	"github.com/wflow/wflow/report"
	"github.com/wflow/wflow/rundir"
	"github.com/wflow/wflow/step"
)

// makeRun writes a run's info and journal into dir, and its report when
// status is not "".
func makeRun(t *testing.T, dir, id string, started time.Time, status string, results ...step.ExecResult) {
	t.Helper()
	if err := rundir.Create(dir); err != nil {
		t.Fatal(err)
	}
	if err := rundir.MakeRecords(dir); err != nil {
		t.Fatal(err)
	}
	if err := journal.WriteInfo(dir, journal.Info{RunID: id, Module: "/m/wf.wasm", Started: started}); err != nil {
		t.Fatal(err)
	}
	j, err := journal.Open(dir, id)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range results {
		j.Append(r)
	}
	j.Close()
	if status != "" {
		if _, err := report.Write(dir, report.Report{RunID: id, Module: "/m/wf.wasm", Status: status, Started: started,
			Finished: started.Add(time.Second), DurationMS: 1000, Steps: results}); err != nil {
			t.Fatal(err)
		}
	}
}

func TestListFindLoad(t *testing.T) {
	parent := t.TempDir()
	t0 := time.Date(2026, 11, 28, 1, 0, 0, 0, time.UTC)
	ok := step.ExecResult{Step: "a", Handle: 1, Finished: t0.Add(time.Second)}
	bad := step.ExecResult{Step: "b", Handle: 2, ReturnCode: 3, Finished: t0.Add(2 * time.Second)}
	makeRun(t, filepath.Join(parent, "one"), "20261128-010000-aaaaaa", t0, "succeeded", ok, bad)
	makeRun(t, filepath.Join(parent, "two"), "20261128-020000-bbbbbb", t0.Add(time.Hour), "", ok) // killed
	makeRun(t, filepath.Join(parent, "two"), "20261128-030000-cccccc", t0.Add(2*time.Hour), "failed")
	os.Mkdir(filepath.Join(parent, "not-a-run"), 0o755)

	runs, errs := List([]string{parent})
	if len(errs) != 0 || len(runs) != 3 {
		t.Fatalf("List: %d runs, errors %v", len(runs), errs)
	}
	if runs[0].ID != "20261128-030000-cccccc" || runs[2].ID != "20261128-010000-aaaaaa" {
		t.Errorf("not newest first: %s .. %s", runs[0].ID, runs[2].ID)
	}
	if r := runs[2]; r.Status != "succeeded" || r.Steps != 2 || r.Failed != 1 || r.ExitCode == nil {
		t.Errorf("finished run: %+v", r)
	}
	if r := runs[1]; r.Status != StatusUnfinished || r.Steps != 1 || r.ExitCode != nil {
		t.Errorf("killed run: %+v", r)
	}

	if r, err := Find("20261128-02", []string{parent}); err != nil || r.ID != "20261128-020000-bbbbbb" {
		t.Errorf("Find by a start of the id: %+v, %v", r, err)
	}
	if _, err := Find("20261128-0", []string{parent}); err == nil || !strings.Contains(err.Error(), "starts 3 run ids") {
		t.Errorf("Find of an ambiguous start: %v", err)
	}
	if r, err := Find(filepath.Join(parent, "two"), nil); err != nil || r.ID != "20261128-030000-cccccc" {
		t.Errorf("Find of a run directory: %+v, %v", r, err)
	}
	if _, err := Find("../etc", []string{parent}); err == nil {
		t.Error("Find took a path that is no run directory")
	}

	rep, err := Load(runs[1])
	if err != nil || rep.Status != StatusUnfinished || len(rep.Steps) != 1 || !strings.Contains(rep.Message, "--resume") {
		t.Errorf("Load of a killed run: %+v, %v", rep, err)
	}
}

// TestHostileRecords: a report that is a FIFO, garbage or a link out is
// not waited on, not followed, and does not stop the listing.
func TestHostileRecords(t *testing.T) {
	parent := t.TempDir()
	t0 := time.Date(2026, 11, 28, 1, 0, 0, 0, time.UTC)
	fifo := filepath.Join(parent, "fifo")
	makeRun(t, fifo, "20261128-010000-ffffff", t0, "")
	if err := syscall.Mkfifo(filepath.Join(fifo, report.RunPath("20261128-010000-ffffff")), 0o644); err != nil {
		t.Fatal(err)
	}
	garbage := filepath.Join(parent, "garbage")
	makeRun(t, garbage, "20261128-020000-gggggg", t0, "")
	os.WriteFile(filepath.Join(garbage, report.RunPath("20261128-020000-gggggg")), []byte("{not json"), 0o644)
	link := filepath.Join(parent, "link")
	makeRun(t, link, "20261128-030000-llllll", t0, "")
	secret := filepath.Join(t.TempDir(), "secret.json")
	os.WriteFile(secret, []byte(`{"run_id":"20261128-030000-llllll","status":"succeeded"}`), 0o644)
	os.Symlink(secret, filepath.Join(link, report.RunPath("20261128-030000-llllll")))

	done := make(chan []Run)
	go func() {
		runs, _ := List([]string{parent})
		done <- runs
	}()
	select {
	case runs := <-done:
		if len(runs) != 3 {
			t.Fatalf("%d runs listed, want 3", len(runs))
		}
		for _, r := range runs {
			if r.Status != StatusUnfinished {
				t.Errorf("%s: status %q from a record that is not a regular report", r.ID, r.Status)
			}
			if rep, err := Load(r); err == nil && rep.Status == "succeeded" {
				t.Errorf("%s: a report that is not a regular file of the run directory was read", r.ID)
			}
		}
	case <-time.After(10 * time.Second):
		t.Fatal("List waits on a FIFO")
	}
}

func TestStepFolder(t *testing.T) {
	for _, c := range []struct {
		entry, name string
		handle      uint32
		suffix      string
		want        bool
	}{
		{"0003-fetch", "fetch", 0, "", true},
		{"0003-fetch-attempt2", "fetch", 0, "", true},
		{"0003-fetch", "", 3, "", true},
		{"0003-fetch", "", 4, "", false},
		{"0003-fetch-run2", "fetch", 0, "run2", true},
		{"0003-fetch-run2-attempt3", "", 3, "run2", true},
		{"0003-fetch", "fetch", 0, "run2", false},
		{"0003-fetch-run2", "fetch", 0, "", false}, // another run's, not the first run's
		{"0003-fetch-data", "fetch", 0, "", false},
		{"03-fetch", "fetch", 0, "", false},
		{"x003-fetch", "fetch", 0, "", false},
	} {
		if got := stepFolder(c.entry, c.name, c.handle, c.suffix, []string{"run2"}); got != c.want {
			t.Errorf("stepFolder(%q, %q, %d, %q) = %v", c.entry, c.name, c.handle, c.suffix, got)
		}
	}
}

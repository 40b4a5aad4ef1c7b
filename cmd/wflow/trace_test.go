package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wflow/wflow/internal/testenv"
	"github.com/wflow/wflow/trace"
)

// readTrace reads a run's trace.tsv: its header and its lines, split into
// fields.
func readTrace(t *testing.T, rundir, path string) (header []string, lines [][]string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(rundir, path))
	if err != nil {
		t.Fatal(err)
	}
	rows := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
	for _, r := range rows[1:] {
		lines = append(lines, strings.Split(r, "\t"))
	}
	return strings.Split(rows[0], "\t"), lines
}

// TestTrace: every run writes .wflow/runs/<id>/trace.tsv, a line per step
// in the order they finished, with Nextflow's statuses; the console and
// the report name it.
func TestTrace(t *testing.T) {
	testenv.Docker(t)
	rundir := t.TempDir()
	code, stdout, stderr := wflow(t, "run", testenv.GoGuest(t, "./testdata/guests/group"), "--rundir", rundir, "-p", "n=3")
	if code != exitOK {
		t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
	}
	r := readReport(t, rundir)
	if r.Trace != trace.Path(r.RunID) || !strings.Contains(stdout, "trace:  "+filepath.Join(rundir, r.Trace)) {
		t.Errorf("report names trace %q; console:\n%s", r.Trace, stdout)
	}
	header, lines := readTrace(t, rundir, r.Trace)
	if strings.Join(header, ",") != "name,handle,status,exit,submit,start,complete,duration,realtime,peak_rss,%cpu,image,cached" {
		t.Errorf("header %v", header)
	}
	if len(lines) != 3 {
		t.Fatalf("%d lines, want 3", len(lines))
	}
	for i, l := range lines {
		if len(l) != len(header) || l[0] != r.Steps[i].Step || l[2] != trace.StatusCompleted || l[3] != "0" || l[11] != "wflow-test/busybox" || l[12] != "false" {
			t.Errorf("line %d: %q (report step %s)", i, l, r.Steps[i].Step)
		}
		submit, err1 := time.Parse(trace.TimeFormat, l[4])
		start, err2 := time.Parse(trace.TimeFormat, l[5])
		complete, err3 := time.Parse(trace.TimeFormat, l[6])
		if err1 != nil || err2 != nil || err3 != nil || start.Before(submit) || complete.Before(start) || !strings.HasSuffix(l[7], "ms") || !strings.HasSuffix(l[8], "ms") {
			t.Errorf("line %d times: %q", i, l)
		}
	}
	// Cancelled steps are ABORTED.
	rundir = t.TempDir()
	code, stdout, stderr = wflow(t, "run", testenv.GoGuest(t, "./testdata/guests/cancel"), "--rundir", rundir, "--parallel", "2", "-p", "replayable=1")
	if code != exitOK {
		t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
	}
	r = readReport(t, rundir)
	_, lines = readTrace(t, rundir, r.Trace)
	statuses := []string{}
	for _, l := range lines {
		statuses = append(statuses, l[0]+":"+l[2])
	}
	if len(lines) != len(r.Steps) || !strings.Contains(strings.Join(statuses, " "), "queued:ABORTED") || !strings.Contains(strings.Join(statuses, " "), "long:ABORTED") {
		t.Errorf("statuses %v", statuses)
	}
}

package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wflow/wflow/internal/testenv"
	"github.com/wflow/wflow/journal"
)

// TestStepsStartInSubmissionOrder: with fewer slots than steps, steps start
// in the order the module submitted them (docs/abi.md, step_submit).
func TestStepsStartInSubmissionOrder(t *testing.T) {
	testenv.Docker(t)
	guest := testenv.GoGuest(t, "./bench/guests/par")
	code, stdout, stderr := wflow(t, "run", guest, "--rundir", t.TempDir(), "-p", "n=8", "--parallel", "1", "--json")
	if code != exitOK {
		t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
	}
	var started []uint32
	for _, line := range strings.Split(stdout, "\n") {
		var ev struct {
			Event  string `json:"event"`
			Handle uint32 `json:"handle"`
		}
		if json.Unmarshal([]byte(line), &ev) == nil && ev.Event == "step_started" {
			started = append(started, ev.Handle)
		}
	}
	if len(started) != 8 {
		t.Fatalf("%d steps started, want 8\n%s", len(started), stdout)
	}
	for i, h := range started {
		if h != uint32(i+1) {
			t.Fatalf("start order %v, want 1..8", started)
		}
	}
}

// readJournal reads the journal of run id in rundir; with id "", the one
// journal the run directory holds.
func readJournal(t *testing.T, rundir, id string) ([]byte, error) {
	t.Helper()
	if id == "" {
		paths, _ := filepath.Glob(filepath.Join(rundir, ".wflow", "runs", "*", "results.jsonl"))
		if len(paths) != 1 {
			t.Fatalf("%d journals in %s, want 1", len(paths), rundir)
		}
		return os.ReadFile(paths[0])
	}
	return os.ReadFile(filepath.Join(rundir, journal.Path(id)))
}

// TestOneJournalPerRun: a run in a reused run directory writes a journal
// of its own, every line naming its run.
func TestOneJournalPerRun(t *testing.T) {
	testenv.Docker(t)
	guest := testenv.GoGuest(t, "./bench/guests/par")
	rundir := t.TempDir()
	var ids []string
	for i := 0; i < 2; i++ {
		if code, stdout, stderr := wflow(t, "run", guest, "--rundir", rundir, "-p", "n=2"); code != exitOK {
			t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
		}
		r := readReport(t, rundir)
		if r.Journal != journal.Path(r.RunID) {
			t.Errorf("report names journal %q", r.Journal)
		}
		ids = append(ids, r.RunID)
	}
	if ids[0] == ids[1] {
		t.Fatalf("two runs, one id %s", ids[0])
	}
	for _, id := range ids {
		b, err := readJournal(t, rundir, id)
		lines := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
		if err != nil || len(lines) != 2 {
			t.Fatalf("journal of %s: %q %v", id, b, err)
		}
		for _, line := range lines {
			var res struct {
				RunID string `json:"run_id"`
				Step  string `json:"step"`
			}
			if err := json.Unmarshal([]byte(line), &res); err != nil || res.RunID != id || res.Step == "" {
				t.Errorf("journal line %q: %+v %v", line, res, err)
			}
		}
	}
}

// TestGoSDKGroupRunsStepsTogether: steps submitted with a wflow.Group run
// at the same time, and come back in submission order; typed parameters
// read -p strings.
func TestGoSDKGroupRunsStepsTogether(t *testing.T) {
	testenv.Docker(t)
	rundir := t.TempDir()
	code, stdout, stderr := wflow(t, "run", testenv.GoGuest(t, "./testdata/guests/group"), "--rundir", rundir, "-p", "n=3", "-p", "ratio=0.25")
	if code != exitOK {
		t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
	}
	if out := string(readReport(t, rundir).Output); out != `{"handles":[1,2,3],"ok":3,"overlapped":true,"ratio":0.25}` {
		t.Errorf("output %s", out)
	}
	// A bad handle fails alone; a refused submit keeps its place.
	rundir = t.TempDir()
	code, stdout, stderr = wflow(t, "run", testenv.GoGuest(t, "./testdata/guests/group"), "--rundir", rundir, "-p", "case=bad")
	if want := `{"group":["g1:true","refused:false","g3:true"],"group_err":true,"waitall":["a\n","","b\n"],"waitall_err":true}`; code != exitOK || string(readReport(t, rundir).Output) != want {
		t.Errorf("exit %d, output %s, want %s\n%s", code, readReport(t, rundir).Output, want, stderr)
	}
	code, stdout, _ = wflow(t, "run", testenv.GoGuest(t, "./testdata/guests/group"), "--rundir", t.TempDir(), "-p", "n=three")
	if code != exitFailed || !strings.Contains(stdout, `[workflow warn] wflow: parameter n = "three": strconv.Atoi`) {
		t.Errorf("a bad -p n: exit %d\n%s", code, stdout)
	}
}

// TestOneRunPerRunDirectory: a second run on a run directory in use is
// refused before it starts anything, naming the run that holds it.
func TestOneRunPerRunDirectory(t *testing.T) {
	testenv.Docker(t)
	guest := testenv.GoGuest(t, "./testdata/guests/sleepy")
	rundir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pr, pw := io.Pipe()
	done := make(chan int, 1)
	go func() { done <- run(ctx, []string{"run", guest, "--rundir", rundir}, pw, io.Discard); pw.Close() }()
	started := make(chan struct{})
	go func() {
		lines := bufio.NewScanner(pr)
		for lines.Scan() {
			if strings.Contains(lines.Text(), "[sleepy] zzz") {
				close(started)
				break
			}
		}
		io.Copy(io.Discard, pr)
	}()
	select {
	case <-started:
	case <-time.After(time.Minute):
		t.Fatal("the first run's step did not start")
	}
	code, stdout, stderr := wflow(t, "run", guest, "--rundir", rundir)
	cancel()
	<-done
	if code != exitHostError || !strings.Contains(stderr, fmt.Sprintf("another wflow run is using this run directory (pid %d)", os.Getpid())) {
		t.Errorf("second run: exit %d\n%s\n%s", code, stdout, stderr)
	}
}

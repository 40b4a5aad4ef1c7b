package journal

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/wflow/wflow/step"
)

// writeRun writes a run's info and journal into a run directory, as a run
// of wflow does.
func writeRun(t *testing.T, dir, id string, started time.Time, resumes []string, results ...step.ExecResult) {
	t.Helper()
	if err := WriteInfo(dir, Info{RunID: id, Started: started, Resumes: resumes}); err != nil {
		t.Fatal(err)
	}
	j, err := Open(dir, id)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range results {
		j.Append(r)
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
}

func ok(name, key string) step.ExecResult {
	return step.ExecResult{Step: name, Key: key, Stdout: name + " ran\n", Origin: step.OriginRan}
}

func TestJournalLinesStartWithTheRunID(t *testing.T) {
	dir := t.TempDir()
	writeRun(t, dir, "r1", time.Now(), nil, ok("a", "k1"))
	b, err := os.ReadFile(filepath.Join(dir, Path("r1")))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(b), `{"run_id":"r1","step":"a",`) || strings.Count(string(b), "\n") != 1 {
		t.Errorf("journal: %s", b)
	}
	if _, err := Open(dir, "r1"); err == nil {
		t.Error("a second journal of the same run was opened")
	}
}

// TestLoadKeepsWhatCanAnswerAStep: results that failed, have no key or were
// themselves resumed answer nothing; a step is answered as many times as it
// ran, oldest first, and only under its own name and key.
func TestLoadKeepsWhatCanAnswerAStep(t *testing.T) {
	dir := t.TempDir()
	t0 := time.Now()
	failed := ok("b", "kb")
	failed.ReturnCode = 1
	errored := ok("c", "kc")
	errored.Error, errored.ErrorKind = "engine down", step.ErrorKindEngine
	again := ok("a", "ka")
	again.Stdout = "a ran again\n"
	writeRun(t, dir, "r1", t0, nil, ok("a", "ka"), failed, errored, ok("nokey", ""), again)
	resumed := ok("d", "kd")
	resumed.Resumed = true
	writeRun(t, dir, "r2", t0.Add(time.Second), []string{"r1"}, ok("b", "kb"), resumed)

	r, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got := len(r.Runs()); got != 2 || r.Last().RunID != "r2" {
		t.Fatalf("runs %+v", r.Runs())
	}
	if r.Left() != 3 {
		t.Errorf("%d results kept, want 3 (a twice, b once)", r.Left())
	}
	for _, miss := range []struct{ name, key string }{{"c", "kc"}, {"nokey", ""}, {"d", "kd"}, {"a", "kb"}, {"x", "ka"}} {
		if rec, found := r.Take(miss.name, miss.key); found {
			t.Errorf("Take(%q, %q) answered with %+v", miss.name, miss.key, rec)
		}
	}
	first, found := r.Take("a", "ka")
	second, found2 := r.Take("a", "ka")
	_, third := r.Take("a", "ka")
	if !found || !found2 || third || first.Result.Stdout != "a ran\n" || second.Result.Stdout != "a ran again\n" {
		t.Errorf("a, taken three times: %v %v %v, %q then %q", found, found2, third, first.Result.Stdout, second.Result.Stdout)
	}
	if rec, found := r.Take("b", "kb"); !found || rec.RunID != "r2" {
		t.Errorf("b: %v %+v", found, rec)
	}
}

// TestLoadContinuesTheLastHistory: a plain run in a reused run directory
// starts a new history; a resume continues the newest run and what it
// resumed, ordered by start, not by id.
func TestLoadContinuesTheLastHistory(t *testing.T) {
	dir := t.TempDir()
	t0 := time.Now()
	writeRun(t, dir, "old", t0, nil, ok("a", "k"))
	// Ids of one second sort by their random part: "zz" started before "aa".
	writeRun(t, dir, "zz", t0.Add(time.Second), nil, ok("b", "k"))
	writeRun(t, dir, "aa", t0.Add(2*time.Second), []string{"zz"}, ok("c", "k"))
	r, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, run := range r.Runs() {
		ids = append(ids, run.RunID)
	}
	if strings.Join(ids, ",") != "zz,aa" {
		t.Errorf("runs continued: %v, want zz,aa", ids)
	}
	if _, found := r.Take("a", "k"); found {
		t.Error("a result of a history before a plain run answered a step")
	}
	if _, found := r.Take("b", "k"); !found {
		t.Error("b of the resumed run did not answer")
	}
}

// TestLoadFollowsTheResumesOfTheNewestRun: the runs a resume continues
// are those the newest run lists, whatever ran between them; a run killed
// before it opened its journal (its info only) still starts a history.
func TestLoadFollowsTheResumesOfTheNewestRun(t *testing.T) {
	dir := t.TempDir()
	t0 := time.Now()
	writeRun(t, dir, "r1", t0, nil, ok("a", "k"))
	writeRun(t, dir, "r2", t0.Add(time.Second), nil, ok("b", "k"))
	writeRun(t, dir, "r3", t0.Add(2*time.Second), []string{"r1", "r1", "gone"}, ok("c", "k"))
	r, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, found := r.Take("b", "k"); found || r.Left() != 2 || len(r.Runs()) != 2 {
		t.Errorf("r3 resumed r1 only: b answered %v, %d left, runs %+v", found, r.Left(), r.Runs())
	}
	if err := WriteInfo(dir, Info{RunID: "r4", Started: t0.Add(3 * time.Second)}); err != nil {
		t.Fatal(err)
	}
	if r, err = Load(dir); err != nil || r.Left() != 0 || r.Last().RunID != "r4" {
		t.Errorf("after a plain run with no journal: %v, %d results, last %+v", err, r.Left(), r.Last())
	}
}

// TestLoadSkipsATornLastLine: a run killed while writing a line leaves part
// of it; the whole lines before it still answer.
func TestLoadSkipsATornLastLine(t *testing.T) {
	dir := t.TempDir()
	writeRun(t, dir, "r1", time.Now(), nil, ok("a", "ka"), ok("b", "kb"))
	p := filepath.Join(dir, Path("r1"))
	b, _ := os.ReadFile(p)
	if err := os.WriteFile(p, b[:len(b)-20], 0o644); err != nil {
		t.Fatal(err)
	}
	r, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if r.Left() != 1 || r.Skipped() != 1 {
		t.Errorf("kept %d, skipped %d; want 1 and 1", r.Left(), r.Skipped())
	}
	if _, found := r.Take("a", "ka"); !found {
		t.Error("the whole line before the torn one does not answer")
	}
}

func TestLoadWithoutAnEarlierRun(t *testing.T) {
	dir := t.TempDir()
	if _, err := Load(dir); !errors.Is(err, ErrNothingToResume) {
		t.Errorf("empty folder: %v", err)
	}
	if err := os.MkdirAll(filepath.Join(dir, RunsDir, "r1"), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(dir); !errors.Is(err, ErrNothingToResume) {
		t.Errorf("a run folder without a journal: %v", err)
	}
}

// TestLoadOfHostileRecords: the records may have been replaced by a link
// out of the run directory, a FIFO or a line without end; Load neither
// follows, blocks nor reads without bound.
func TestLoadOfHostileRecords(t *testing.T) {
	t.Run("journal is a link out", func(t *testing.T) {
		dir, outside := t.TempDir(), t.TempDir()
		writeRun(t, outside, "r1", time.Now(), nil, ok("a", "ka"))
		writeRun(t, dir, "r1", time.Now(), nil)
		p := filepath.Join(dir, Path("r1"))
		os.Remove(p)
		if err := os.Symlink(filepath.Join(outside, Path("r1")), p); err != nil {
			t.Fatal(err)
		}
		if r, err := Load(dir); err == nil && r.Left() != 0 {
			t.Errorf("a journal linked from outside the run directory answered %d steps", r.Left())
		}
	})
	t.Run("journal is a FIFO", func(t *testing.T) {
		dir := t.TempDir()
		writeRun(t, dir, "r1", time.Now(), nil)
		writeRun(t, dir, "r2", time.Now().Add(time.Second), []string{"r1"})
		p := filepath.Join(dir, Path("r1"))
		os.Remove(p)
		if err := syscall.Mkfifo(p, 0o644); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		var r *Resume
		go func() {
			var err error
			r, err = Load(dir)
			done <- err
		}()
		select {
		case err := <-done:
			if err != nil || r.Left() != 0 || r.Last().RunID != "r2" {
				t.Errorf("a FIFO for the journal of a resumed run: %v; want it passed over", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("Load blocked on a FIFO")
		}
	})
	t.Run("a line without end", func(t *testing.T) {
		dir := t.TempDir()
		writeRun(t, dir, "r1", time.Now(), nil)
		f, err := os.OpenFile(filepath.Join(dir, Path("r1")), os.O_WRONLY|os.O_APPEND, 0)
		if err != nil {
			t.Fatal(err)
		}
		if err := f.Truncate(MaxLine + 10); err != nil { // sparse: no disk
			t.Fatal(err)
		}
		f.Close()
		r, err := Load(dir)
		if err != nil || r.Skipped() != 1 {
			t.Errorf("a journal line over MaxLine: %v; want it skipped", err)
		}
	})
}

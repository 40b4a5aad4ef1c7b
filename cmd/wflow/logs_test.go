package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wflow/wflow/history"
	"github.com/wflow/wflow/journal"
	"github.com/wflow/wflow/rundir"
	"github.com/wflow/wflow/step"
)

// TestLogsEscapePerStream: what a step wrote reaches a terminal escaped on
// each stream that is one, and a pipe as it is; a module log line of any
// length costs a line of memory, cut.
func TestLogsEscapePerStream(t *testing.T) {
	dir := t.TempDir()
	const id = "20261128-010000-aaaaaa"
	rundir.MakeRecords(dir)
	journal.WriteInfo(dir, journal.Info{RunID: id, Started: time.Now()})
	steps := filepath.Join(dir, ".wflow", "steps", "0001-s")
	os.MkdirAll(steps, 0o755)
	os.WriteFile(filepath.Join(steps, "stdout"), []byte("out \x1b]0;title\x07\n"), 0o644)
	os.WriteFile(filepath.Join(steps, "stderr"), []byte("err \x1b[2J\n"), 0o644)
	j, _ := journal.Open(dir, id)
	j.Append(step.ExecResult{Step: "s", Handle: 1, StdoutFile: ".wflow/steps/0001-s/stdout", StderrFile: ".wflow/steps/0001-s/stderr", Finished: time.Now()})
	j.Close()
	long := strings.Repeat("x", 3*maxLogLine)
	os.WriteFile(filepath.Join(dir, journal.ModuleLogPath(id)), []byte("2026-11-28T01:00:00.000Z info "+long+"\n2026-11-28T01:00:01.000Z warn \x1b[31mred\n"), 0o644)

	var out, errs bytes.Buffer
	l := &logPrinter{run: history.Run{ID: id, Dir: dir}, stdout: &out, stderr: &errs, escapeErr: true, offsets: map[string]int64{}, headed: map[string]bool{}}
	if err := l.stepLog(context.Background(), "s", false); err != nil {
		t.Fatal(err)
	}
	if out.String() != "out \x1b]0;title\x07\n" || errs.String() != `err \x1b[2J`+"\n" {
		t.Errorf("stdout %q (a pipe: as written), stderr %q (a terminal: escaped)", out.String(), errs.String())
	}
	if strings.Contains(errs.String(), "\x1b") {
		t.Errorf("an escape sequence reached the terminal: %q", errs.String())
	}

	out.Reset()
	l = &logPrinter{run: history.Run{ID: id, Dir: dir}, stdout: &out, stderr: &errs, escapeOut: true, offsets: map[string]int64{}, headed: map[string]bool{}}
	if err := l.moduleLog(context.Background(), false); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if len(lines) != 3 || !strings.HasSuffix(lines[0], "[line cut]") || len(lines[0]) > maxLogLine+100 || !strings.Contains(lines[1], "[workflow warn] red") || !strings.Contains(lines[2], "[s] exited 0") {
		t.Errorf("module log:\n%.300q", out.String())
	}
}

// TestLogsPollPrintsEachResultOnce: each poll of a followed run prints the
// finish lines of the results its journal gained since the last, once.
func TestLogsPollPrintsEachResultOnce(t *testing.T) {
	dir := t.TempDir()
	const id = "20261128-010000-bbbbbb"
	rundir.MakeRecords(dir)
	journal.WriteInfo(dir, journal.Info{RunID: id, Started: time.Now()})
	j, _ := journal.Open(dir, id)
	defer j.Close()
	var out bytes.Buffer
	l := &logPrinter{run: history.Run{ID: id, Dir: dir}, stdout: &out, stderr: &out, offsets: map[string]int64{}, headed: map[string]bool{}, shown: map[uint32]bool{}}
	for i, name := range []string{"first", "second", ""} {
		if name != "" {
			j.Append(step.ExecResult{Step: name, Handle: uint32(i + 1), Finished: time.Now()})
		}
		if err := l.moduleLogOnce(false); err != nil {
			t.Fatal(err)
		}
	}
	if got := out.String(); strings.Count(got, "[first] exited 0") != 1 || strings.Count(got, "[second] exited 0") != 1 || strings.Count(got, "\n") != 2 {
		t.Errorf("printed:\n%s", got)
	}
}

package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/wflow/wflow/containers"
	"github.com/wflow/wflow/internal/testenv"
)

// engineUnderTest is an engine other than Docker that the CLI tests run
// workflows on, and how to see what it left.
type engineUnderTest struct {
	name string
	// left lists what the engine holds that carries label key=value:
	// containers, swarm jobs and the runs' networks.
	left func(t *testing.T, key, value string) []string
}

// otherEngines are podman and swarm; each subtest skips (fails in CI) when
// its engine is missing.
var otherEngines = []struct {
	name string
	open func(t *testing.T) engineUnderTest
}{
	{"podman", func(t *testing.T) engineUnderTest {
		e := testenv.Podman(t)
		return engineUnderTest{name: "podman", left: func(t *testing.T, key, value string) []string {
			ids, err := e.Labelled(context.Background(), key, value)
			if err != nil {
				t.Fatal(err)
			}
			return ids
		}}
	}},
	{"swarm", func(t *testing.T) engineUnderTest {
		e := testenv.Swarm(t)
		return engineUnderTest{name: "swarm", left: func(t *testing.T, key, value string) []string {
			all, err := e.List(context.Background(), key)
			if err != nil {
				t.Fatal(err)
			}
			var ids []string
			for _, l := range all {
				if value == "" || l.Labels[key] == value {
					ids = append(ids, l.ID)
				}
			}
			return ids
		}}
	}},
}

// TestGoExampleOnEveryEngine runs the Go example, unchanged, on Podman and
// on a swarm: the same outputs, the report naming the engine, and nothing
// of the run left on the engine.
func TestGoExampleOnEveryEngine(t *testing.T) {
	module := testenv.GoGuest(t, "./examples/go-pipeline")
	for _, eng := range otherEngines {
		t.Run(eng.name, func(t *testing.T) {
			e := eng.open(t)
			rundir := t.TempDir()
			code, stdout, stderr := wflow(t, "run", module, "--rundir", rundir, "--engine", e.name)
			if code != exitOK {
				t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
			}
			for _, want := range []string{"[count-words] 4\n", "[count-lines] 3\n", "[summarize] words=4 lines=3\n", " on " + e.name + " "} {
				if !strings.Contains(stdout, want) {
					t.Errorf("stdout lacks %q:\n%s", want, stdout)
				}
			}
			r := readReport(t, rundir)
			if r.Status != "succeeded" || r.Engine.Name != e.name || r.Engine.Version == "" || len(r.Steps) != 3 {
				t.Errorf("report: status %s, engine %+v, %d steps", r.Status, r.Engine, len(r.Steps))
			}
			if string(r.Output) != `{"lines":"3","summary":"words=4 lines=3","words":"4"}` {
				t.Errorf("output %s", r.Output)
			}
			if b, _ := os.ReadFile(filepath.Join(rundir, "summary.txt")); string(b) != "words=4 lines=3\n" {
				t.Errorf("summary.txt = %q", b)
			}
			if left := e.left(t, containers.LabelRun, r.RunID); len(left) != 0 {
				t.Errorf("the run left %v on %s", left, e.name)
			}
		})
	}
}

// TestNotebookStepOnEveryEngine builds a notebook image on the engine (on
// a swarm, its manager, whose node the step is then pinned to) and runs
// the notebook example there.
func TestNotebookStepOnEveryEngine(t *testing.T) {
	testenv.Python(t)
	module := testenv.GoGuest(t, "./examples/notebook-params")
	for _, eng := range otherEngines {
		t.Run(eng.name, func(t *testing.T) {
			e := eng.open(t)
			rundir := t.TempDir()
			args := append([]string{"run", module, "--rundir", rundir, "--engine", e.name}, testenv.NotebookFlags()...)
			code, stdout, stderr := wflow(t, args...)
			if code != exitOK {
				t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
			}
			r := readReport(t, rundir)
			if r.Engine.Name != e.name || len(r.Steps) != 2 {
				t.Fatalf("report: engine %+v, %d steps", r.Engine, len(r.Steps))
			}
			for _, s := range r.Steps {
				if s.ReturnCode != 0 || !strings.HasPrefix(s.Image, "wflow-notebook:") {
					t.Errorf("step %s: code %d, image %s", s.Step, s.ReturnCode, s.Image)
				}
				if _, err := os.Stat(filepath.Join(rundir, s.Step+".out.ipynb")); err != nil {
					t.Errorf("no executed notebook for %s: %v", s.Step, err)
				}
			}
		})
	}
}

// TestSignalsLeaveNothingOnEveryEngine: on Podman and on a swarm, SIGINT
// during a step removes its container (or job) before wflow exits, and
// after SIGKILL `wflow gc --engine` removes what the dead process left:
// containers, jobs and the run's network.
func TestSignalsLeaveNothingOnEveryEngine(t *testing.T) {
	bin := testenv.Wflow(t)
	sleepy := testenv.GoGuest(t, "./testdata/guests/sleepy")
	twostep := testenv.GoGuest(t, "./testdata/guests/twostep")
	for _, eng := range otherEngines {
		t.Run(eng.name+"/SIGINT", func(t *testing.T) {
			e := eng.open(t)
			rundir := t.TempDir()
			cmd := exec.Command(bin, "run", sleepy, "--rundir", rundir, "--engine", e.name)
			interruptWhen(t, cmd, "[sleepy] zzz", 0, 60*time.Second)
			if code := cmd.ProcessState.ExitCode(); code != exitInterrupted {
				t.Errorf("exit code %d, want %d", code, exitInterrupted)
			}
			r := readReport(t, rundir)
			if r.Status != "cancelled" || len(r.Steps) != 1 || r.Steps[0].ErrorKind != "cancelled" {
				t.Errorf("report status %s, steps %+v", r.Status, r.Steps)
			}
			if left := e.left(t, containers.LabelRun, r.RunID); len(left) != 0 {
				t.Errorf("SIGINT left %v on %s", left, e.name)
			}
		})
		t.Run(eng.name+"/SIGKILL", func(t *testing.T) {
			e := eng.open(t)
			rundir := t.TempDir()
			cmd := exec.Command(bin, "run", twostep, "--rundir", rundir, "--engine", e.name)
			signalAt(t, cmd, "[sleepy] zzz", 0, syscall.SIGKILL, 30*time.Second)
			pid := strconv.Itoa(cmd.Process.Pid)
			if left := e.left(t, containers.LabelPID, pid); len(left) == 0 {
				t.Fatalf("the killed process left nothing on %s: its running step should still be there", e.name)
			}
			code, stdout, stderr := wflow(t, "gc", "--engine", e.name)
			if code != exitOK || !strings.Contains(stdout, "left by wflow processes that no longer run") {
				t.Errorf("gc: exit %d\n%s\n%s", code, stdout, stderr)
			}
			if e.name == "swarm" && !strings.Contains(stdout, "1 swarm service(s), 1 network(s)") {
				t.Errorf("gc does not name the job and the network it removed: %s", stdout)
			}
			if left := e.left(t, containers.LabelPID, pid); len(left) != 0 {
				t.Errorf("after wflow gc, %v of the killed process remain on %s", left, e.name)
			}
		})
	}
}

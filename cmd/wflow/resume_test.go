package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/wflow/wflow/containers"
	"github.com/wflow/wflow/containers/docker"
	"github.com/wflow/wflow/internal/testenv"
	"github.com/wflow/wflow/step"
)

// chainWorkflow is a workflow of ten steps run one after another, each
// reading the file of the step before it (a declared input) and writing
// its own: out/10 ends up holding "1" to "10", one per line. Step names
// start with prefix, so that the engine's events of one test are told
// apart from those of tests running beside it.
type chainWorkflow struct {
	prefix string
	gate   int            // this step fails unless the file "fixed" exists (0: none)
	edit   map[int]string // text a step appends to its line
}

const chainSteps = 10

func (w chainWorkflow) name(i int) string { return fmt.Sprintf("%s-s%d", w.prefix, i) }

// args are the `wflow run` arguments of the rawspecs guest running the
// workflow, stopping at the first failed step.
func (w chainWorkflow) args() []string {
	var specs []map[string]any
	for i := 1; i <= chainSteps; i++ {
		cmd := fmt.Sprintf("sleep 0.2; mkdir -p out; { cat out/%d 2>/dev/null; echo %d%s; } > out/%d.tmp && mv out/%d.tmp out/%d", i-1, i, w.edit[i], i, i, i)
		if i == w.gate {
			cmd = "test -f fixed || exit 3; " + cmd
		}
		spec := map[string]any{"name": w.name(i), "image": testenv.BusyboxImage, "commands": []string{cmd}}
		if i > 1 {
			spec["inputs"] = []string{fmt.Sprintf("out/%d", i-1)}
		}
		specs = append(specs, spec)
	}
	b, _ := json.Marshal(specs)
	return []string{"-p", "fn=step", "-p", "stop=failure", "-p", "specs=" + string(b)}
}

// resumeHarness runs the chain workflow with a real wflow process.
type resumeHarness struct {
	t        *testing.T
	engine   *docker.Engine
	bin      string
	module   string
	cacheDir string
}

func newResumeHarness(t *testing.T) *resumeHarness {
	return &resumeHarness{t: t, engine: testenv.Docker(t), bin: testenv.Wflow(t),
		module: testenv.GoGuest(t, "./testdata/guests/rawspecs"), cacheDir: t.TempDir()}
}

func (h *resumeHarness) command(module string, w chainWorkflow, flags ...string) *exec.Cmd {
	args := append([]string{"run", module, "--cache-dir", h.cacheDir}, flags...)
	return exec.Command(h.bin, append(args, w.args()...)...)
}

// finish runs cmd to its end and returns its exit code and output.
func finish(t *testing.T, cmd *exec.Cmd) (int, string) {
	t.Helper()
	out, err := cmd.CombinedOutput()
	if _, ok := err.(*exec.ExitError); err != nil && !ok {
		t.Fatal(err)
	}
	return cmd.ProcessState.ExitCode(), string(out)
}

// succeeded returns the steps that succeeded in the one journal of a run
// directory: what no resume of it may run again.
func succeeded(t *testing.T, rundir string) map[string]bool {
	t.Helper()
	b, err := readJournal(t, rundir, "")
	if err != nil {
		t.Fatal(err)
	}
	done := map[string]bool{}
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		var res step.ExecResult
		if line != "" && json.Unmarshal([]byte(line), &res) == nil && res.OK() {
			done[res.Step] = true
		}
	}
	return done
}

// outputs returns the files of out/ in a run directory.
func outputs(t *testing.T, rundir string) map[string]string {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(rundir, "out", "*"))
	got := map[string]string{}
	for _, f := range files {
		got[filepath.Base(f)] = fileText(t, rundir, filepath.Join("out", filepath.Base(f)))
	}
	return got
}

// resumed runs `wflow run --resume` and checks, with the engine's events,
// that it created no container for a step in done and exactly one for
// every other step, that it ended 0, and that its report says resumed for
// exactly the steps of done.
func (h *resumeHarness) resumed(module string, w chainWorkflow, rundir string, done map[string]bool) string {
	t := h.t
	t.Helper()
	since := time.Now()
	code, out := finish(t, h.command(module, w, "--resume", rundir))
	until := time.Now()
	if code != exitOK {
		t.Fatalf("resume: exit %d\n%s", code, out)
	}
	rep := readReport(t, rundir)
	for i := 1; i <= chainSteps; i++ {
		name := w.name(i)
		n, err := h.engine.Created(context.Background(), since, until, containers.LabelRun+"="+rep.RunID, containers.LabelStep+"="+name)
		if err != nil {
			t.Fatal(err)
		}
		if want := map[bool]int{true: 0, false: 1}[done[name]]; n != want {
			t.Errorf("step %s: the resume created %d container(s), want %d (it succeeded before the resume: %v)\n%s", name, n, want, done[name], out)
		}
	}
	if len(rep.Steps) != chainSteps || len(rep.Resumes) == 0 {
		t.Fatalf("resume report: %d steps, resumes %v", len(rep.Steps), rep.Resumes)
	}
	for _, s := range rep.Steps {
		want := step.OriginRan
		if done[s.Step] {
			want = step.OriginResumed
		}
		if s.Origin != want || s.Resumed != done[s.Step] || !s.OK() {
			t.Errorf("step %s in the report: origin %q, resumed %v, exit %d; want %s", s.Step, s.Origin, s.Resumed, s.ReturnCode, want)
		}
	}
	return out
}

// TestResumeAfterSIGKILLRunsNoFinishedStepTwice kills a real wflow process
// before, during and between the steps of a ten-step workflow; each time
// `wflow run --resume` finishes the run with the outputs of an
// uninterrupted one, and no step that had finished runs again (counted by
// the engine's create events, not by wflow's logs).
func TestResumeAfterSIGKILLRunsNoFinishedStepTwice(t *testing.T) {
	h := newResumeHarness(t)
	base := chainWorkflow{prefix: "rk" + strconv.Itoa(os.Getpid()%100000)}
	whole := t.TempDir()
	if code, out := finish(t, h.command(h.module, base, "--rundir", whole)); code != exitOK {
		t.Fatalf("uninterrupted run: exit %d\n%s", code, out)
	}
	want := outputs(t, whole)
	if len(want) != chainSteps || want["10"] != "1\n2\n3\n4\n5\n6\n7\n8\n9\n10\n" {
		t.Fatalf("uninterrupted run's outputs: %q", want)
	}
	for _, kill := range []struct {
		name   string
		marker string
		delay  time.Duration
	}{
		{"before the first step", "wflow: run ", 0},
		{"during step 4", "[" + base.name(4) + "] started", 150 * time.Millisecond},
		{"between steps 6 and 7", "[" + base.name(6) + "] exited 0", 0},
	} {
		t.Run(kill.name, func(t *testing.T) {
			h := *h
			h.t = t
			rundir := t.TempDir()
			cmd := h.command(h.module, base, "--rundir", rundir)
			signalAt(t, cmd, kill.marker, kill.delay, syscall.SIGKILL, 30*time.Second)
			done := succeeded(t, rundir)
			t.Logf("steps done when killed: %d", len(done))
			if code, stdout, stderr := wflow(t, "replay", rundir); code != exitOK || !strings.Contains(stdout, "as far as the journal goes") {
				t.Errorf("replay of the killed run: exit %d\n%s\n%s", code, stdout, stderr)
			}
			if kill.name != "before the first step" && len(done) == 0 {
				t.Fatalf("no step had finished when wflow was killed %s", kill.name)
			}
			if len(done) == chainSteps {
				t.Fatalf("every step had finished when wflow was killed %s", kill.name)
			}
			h.resumed(h.module, base, rundir, done)
			if got := outputs(t, rundir); fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("outputs after the resume:\n%q\nwant those of an uninterrupted run:\n%q", got, want)
			}
			if ids, err := h.engine.Labelled(context.Background(), containers.LabelPID, strconv.Itoa(cmd.Process.Pid)); err != nil || len(ids) != 0 {
				t.Errorf("containers of the killed process remain after the resume: %v %v", ids, err)
			}
		})
	}
}

// TestResumeAfterSIGINTAFixAndAnEdit resumes a run interrupted with SIGINT,
// a run that failed at a step the user then fixed, and a finished run whose
// module was edited to change one step: the steps that succeeded answer
// from the journal; the failed, interrupted or changed steps, and those
// whose declared input changed, run.
func TestResumeAfterSIGINTAFixAndAnEdit(t *testing.T) {
	h := newResumeHarness(t)
	prefix := "ri" + strconv.Itoa(os.Getpid()%100000)

	t.Run("SIGINT", func(t *testing.T) {
		h := *h
		h.t = t
		w := chainWorkflow{prefix: prefix + "-int"}
		rundir := t.TempDir()
		cmd := h.command(h.module, w, "--rundir", rundir)
		signalAt(t, cmd, "["+w.name(3)+"] started", 150*time.Millisecond, syscall.SIGINT, 30*time.Second)
		if code := cmd.ProcessState.ExitCode(); code != exitInterrupted {
			t.Fatalf("exit %d after SIGINT, want %d", code, exitInterrupted)
		}
		done := succeeded(t, rundir)
		if len(done) != 2 {
			t.Fatalf("steps done at SIGINT during step 3: %v", done)
		}
		h.resumed(h.module, w, rundir, done)
		if got := fileText(t, rundir, "out/10"); got != "1\n2\n3\n4\n5\n6\n7\n8\n9\n10\n" {
			t.Errorf("out/10 after the resume: %q", got)
		}
	})

	t.Run("a failed step, fixed", func(t *testing.T) {
		h := *h
		h.t = t
		w := chainWorkflow{prefix: prefix + "-fix", gate: 5}
		rundir := t.TempDir()
		if code, out := finish(t, h.command(h.module, w, "--rundir", rundir)); code != exitFailed {
			t.Fatalf("run with step 5 failing: exit %d\n%s", code, out)
		}
		done := succeeded(t, rundir)
		if len(done) != 4 {
			t.Fatalf("steps done before step 5 failed: %v", done)
		}
		if err := os.WriteFile(filepath.Join(rundir, "fixed"), nil, 0o644); err != nil {
			t.Fatal(err)
		}
		h.resumed(h.module, w, rundir, done)
	})

	t.Run("an edited module", func(t *testing.T) {
		h := *h
		h.t = t
		w := chainWorkflow{prefix: prefix + "-edit"}
		rundir := t.TempDir()
		if code, out := finish(t, h.command(h.module, w, "--rundir", rundir)); code != exitOK {
			t.Fatalf("first run: exit %d\n%s", code, out)
		}
		// Another module (the same code plus a custom section) that asks for
		// step 7 with another command: steps 1 to 6 answer from the first
		// run; 7 runs, and so do 8 to 10, whose declared input changed.
		edited := filepath.Join(t.TempDir(), "edited.wasm")
		wasm, err := os.ReadFile(h.module)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(edited, append(wasm, 0, 6, 4, 'e', 'd', 'i', 't', 1), 0o644); err != nil {
			t.Fatal(err)
		}
		w.edit = map[int]string{7: " edited"}
		done := map[string]bool{}
		for i := 1; i <= 6; i++ {
			done[w.name(i)] = true
		}
		out := h.resumed(edited, w, rundir, done)
		if !strings.Contains(out, "the module is not the one run") || !strings.Contains(out, "the parameters are not those of run") {
			t.Errorf("the resume does not say the module and parameters changed:\n%s", out)
		}
		if got := fileText(t, rundir, "out/10"); got != "1\n2\n3\n4\n5\n6\n7 edited\n8\n9\n10\n" {
			t.Errorf("out/10 after the resume: %q", got)
		}
	})
}

package containers

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wflow/wflow/journal"
	"github.com/wflow/wflow/step"
)

// scriptedEngine (not containers/fakeengine: it runs no process) runs
// "commands" of the form ["out TEXT", "err TEXT", "exit N"]:
// it is enough to test the Runner's logic without Docker.
type scriptedEngine struct {
	ran      [][]string
	specs    []ContainerSpec
	imageErr error
	runErr   error
}

func (f *scriptedEngine) EnsureImage(ctx context.Context, ref string, pull PullPolicy) (string, error) {
	if f.imageErr != nil {
		return "", f.imageErr
	}
	return "sha256:fake", nil
}

func (f *scriptedEngine) Run(ctx context.Context, spec ContainerSpec, stdout, stderr io.Writer) (Exit, error) {
	f.ran = append(f.ran, spec.Args)
	f.specs = append(f.specs, spec)
	if f.runErr != nil {
		return Exit{Code: 1}, f.runErr
	}
	code := 0
	for _, a := range spec.Args {
		verb, arg, _ := strings.Cut(a, " ")
		switch verb {
		case "out":
			fmt.Fprintln(stdout, arg)
		case "err":
			fmt.Fprintln(stderr, arg)
		case "exit":
			fmt.Sscan(arg, &code)
		}
	}
	return Exit{Code: code}, nil
}

func newTestRunner(t *testing.T, e Engine) *Runner {
	return &Runner{Engine: e, RunDir: t.TempDir(), RunID: "test-run", Env: map[string]string{"A": "default", "B": "default"}}
}

func TestRunnerStopsAtFirstFailure(t *testing.T) {
	e := &scriptedEngine{}
	r := newTestRunner(t, e)
	res := r.Run(context.Background(), 7, step.Step{Name: "s", Image: "img", Commands: []step.Command{
		{Argv: []string{"out one"}},
		{Argv: []string{"err two", "exit 3"}},
		{Argv: []string{"out never"}},
	}}, Live{})
	if len(e.ran) != 2 {
		t.Fatalf("ran %d commands, want 2 (stop at first failure): %v", len(e.ran), e.ran)
	}
	if res.ReturnCode != 3 || res.Error != "" || res.OK() {
		t.Errorf("result %+v", res)
	}
	if res.Stdout != "one\n" || res.Stderr != "two\n" {
		t.Errorf("stdout %q stderr %q", res.Stdout, res.Stderr)
	}
	if len(res.Commands) != 2 || res.Commands[1].ReturnCode != 3 {
		t.Errorf("commands %+v", res.Commands)
	}
	if res.Handle != 7 || res.ImageID != "sha256:fake" || res.Finished.Before(res.Started) {
		t.Errorf("result %+v", res)
	}
	b, err := os.ReadFile(filepath.Join(r.RunDir, res.StdoutFile))
	if err != nil || string(b) != "one\n" {
		t.Errorf("stdout file: %q, %v", b, err)
	}
}

func TestRunnerEnvLabelsAndMount(t *testing.T) {
	e := &scriptedEngine{}
	r := newTestRunner(t, e)
	r.Run(context.Background(), 1, step.Step{Name: "s", Image: "img", Env: map[string]string{"B": "step", "C": "step"},
		Commands: []step.Command{{Shell: "true"}}}, Live{})
	spec := e.specs[0]
	if got := strings.Join(spec.Env, " "); got != "A=default B=step C=step" {
		t.Errorf("env %q: want the step's env over the defaults", got)
	}
	if spec.Labels[LabelRun] != "test-run" || spec.Labels[LabelStep] != "s" || spec.Labels[LabelHandle] != "1" || spec.Labels[LabelPID] == "" {
		t.Errorf("labels %v", spec.Labels)
	}
	if spec.WorkDir != "/wflow" || spec.RunDir != r.RunDir || spec.Network != "none" {
		t.Errorf("spec %+v", spec)
	}
	if got := strings.Join(spec.Args, "|"); got != "sh|-c|true" {
		t.Errorf("args %q", got)
	}
}

func TestRunnerEngineErrors(t *testing.T) {
	for _, c := range []struct {
		name string
		e    *scriptedEngine
		kind string
	}{
		{"image", &scriptedEngine{imageErr: fmt.Errorf("%w: nope", ErrImageUnavailable)}, step.ErrorKindImage},
		{"engine", &scriptedEngine{runErr: errors.New("daemon gone")}, step.ErrorKindEngine},
		{"cancelled", &scriptedEngine{runErr: context.Canceled}, step.ErrorKindCancelled},
	} {
		t.Run(c.name, func(t *testing.T) {
			res := newTestRunner(t, c.e).Run(context.Background(), 1, step.Step{Name: "s", Image: "img", Commands: []step.Command{{Shell: "x"}}}, Live{})
			if res.ReturnCode != 1 || res.ErrorKind != c.kind || res.Error == "" || res.OK() {
				t.Errorf("result %+v, want kind %s", res, c.kind)
			}
		})
	}
}

func TestTail(t *testing.T) {
	tl := tail{max: 8}
	tl.Write([]byte("hello"))
	if s, tr := tl.text(); s != "hello" || tr {
		t.Errorf("%q %v", s, tr)
	}
	tl.Write([]byte(" world, and more"))
	if s, tr := tl.text(); s != "and more" || !tr {
		t.Errorf("%q %v", s, tr)
	}
	for i := 0; i < 100; i++ {
		tl.Write([]byte("0123456789"))
	}
	if s, _ := tl.text(); s != "23456789" || len(tl.buf) > 16 {
		t.Errorf("%q, kept %d bytes", s, len(tl.buf))
	}
	// A cut inside a multi-byte rune starts the text on the next rune.
	tl = tail{max: 3}
	tl.Write([]byte("x€y")) // € is 3 bytes: the last 3 are two of €'s and y
	if s, _ := tl.text(); s != "y" {
		t.Errorf("%q, want %q", s, "y")
	}
}

func TestForReport(t *testing.T) {
	long := strings.Repeat("x", step.ReportText-1) + "€" + "end"
	r := step.ExecResult{Stdout: "short", Stderr: long}.ForReport()
	if r.Stdout != "short" || r.StdoutTruncated {
		t.Errorf("short stdout changed: %q %v", r.Stdout, r.StdoutTruncated)
	}
	if len(r.Stderr) > step.ReportText || !strings.HasSuffix(r.Stderr, "€end") || !r.StderrTruncated {
		t.Errorf("stderr kept %d bytes, truncated %v", len(r.Stderr), r.StderrTruncated)
	}
}

// A huge argv, retried, is run whole but kept in results (and so in the run
// report, once per attempt) only up to step.MaxArgsText bytes.
func TestResultsKeepBoundedArgs(t *testing.T) {
	e := &scriptedEngine{}
	r := newTestRunner(t, e)
	big := []string{"exit 1"}
	for i := 0; i < 8; i++ {
		big = append(big, strings.Repeat("x", 128<<10))
	}
	res := r.Run(context.Background(), 1, step.Step{Name: "s", Image: "img", Commands: []step.Command{{Argv: big}},
		Retry: &step.Retry{Retries: 3, Initial: 1, Max: 1}}, Live{})
	if len(e.ran) != 4 || len(e.ran[0]) != 9 || len(e.ran[0][8]) != 128<<10 {
		t.Fatalf("the engine should run the whole argv, 4 times: %d runs", len(e.ran))
	}
	if len(res.Attempts) != 4 {
		t.Fatalf("%d attempts", len(res.Attempts))
	}
	for _, cmds := range append([][]step.CommandResult{res.Commands}, res.Attempts[0].Commands, res.Attempts[3].Commands) {
		kept := 0
		for _, a := range cmds[0].Args {
			kept += len(a)
		}
		last := cmds[0].Args[len(cmds[0].Args)-1]
		if kept > step.MaxArgsText+100 || !strings.Contains(last, "more bytes of arguments not kept") || cmds[0].Args[0] != "exit 1" {
			t.Errorf("kept %d bytes of arguments, last %.60q", kept, last)
		}
	}
	small := step.ResultArgs([]string{"sh", "-c", "echo hi"})
	if strings.Join(small, " ") != "sh -c echo hi" {
		t.Errorf("a small argv changed: %q", small)
	}
}

// A cancelled step whose container the engine could not remove says so,
// rather than that it was removed.
func TestCancelledStepSaysWhetherItsContainerWasRemoved(t *testing.T) {
	e := &scriptedEngine{runErr: fmt.Errorf("%w; and %w", context.Canceled, ErrNotRemoved)}
	res := newTestRunner(t, e).Run(context.Background(), 1, step.Step{Name: "s", Image: "img", Commands: []step.Command{{Argv: []string{"exit 0"}}}}, Live{})
	if res.ErrorKind != step.ErrorKindCancelled || !strings.Contains(res.Error, "could not be removed yet") {
		t.Errorf("result %+v", res)
	}
	e = &scriptedEngine{runErr: context.Canceled}
	res = newTestRunner(t, e).Run(context.Background(), 1, step.Step{Name: "s", Image: "img", Commands: []step.Command{{Argv: []string{"exit 0"}}}}, Live{})
	if !strings.Contains(res.Error, "its container was removed") {
		t.Errorf("result %+v", res)
	}
}

// TestCancelledBetweenRetries: a step cancelled while it waits to run
// again ends cancelled at once, naming who cancelled it; its attempts say
// how each run ended.
func TestCancelledBetweenRetries(t *testing.T) {
	e := &scriptedEngine{}
	ctx, cancel := context.WithCancelCause(context.Background())
	done := make(chan step.ExecResult, 1)
	go func() {
		done <- newTestRunner(t, e).Run(ctx, 1, step.Step{Name: "s", Image: "img", Commands: []step.Command{{Argv: []string{"exit 3"}}},
			Retry: &step.Retry{Retries: 5, Initial: step.Duration(time.Hour), Max: step.Duration(time.Hour)}}, Live{})
	}()
	cancel(step.ErrCancelledByModule)
	select {
	case res := <-done:
		// The scripted engine ignores ctx: the first run ends with exit 3
		// whenever the cancel came, and the wait for the second ends.
		if len(res.Attempts) != 1 {
			t.Fatalf("%d attempts, want 1", len(res.Attempts))
		}
		if res.Attempts[0].ReturnCode != 3 || res.Error != "the module cancelled the step (step_cancel) while the step waited to run again" {
			t.Errorf("result %q, attempt %+v", res.Error, res.Attempts[0])
		}
		if res.ErrorKind != step.ErrorKindCancelled || res.ReturnCode != 1 {
			t.Errorf("result %s %d %q", res.ErrorKind, res.ReturnCode, res.Error)
		}
	case <-time.After(time.Minute):
		t.Fatal("a cancelled step waited out its retry delay")
	}
}

// TestRunnerResumesFromTheJournal: a step that succeeded in the run a
// resume continues answers with no container, once per time it ran, with
// the module's share of its streams read again from its files; a step of
// the same name with another key runs, in a folder of its own.
func TestRunnerResumesFromTheJournal(t *testing.T) {
	e := &scriptedEngine{}
	first := newTestRunner(t, e)
	first.Keys = true
	long := strings.Repeat("x", step.ReportText) + "end"
	hello := step.Step{Name: "s", Image: "img", Commands: []step.Command{{Argv: []string{"out " + long}}}}
	earlier := first.Run(context.Background(), 1, hello, Live{})
	if !earlier.OK() || earlier.Key == "" || earlier.Origin != step.OriginRan {
		t.Fatalf("first run: %+v", earlier)
	}
	j, err := journal.Open(first.RunDir, "run-1")
	if err != nil {
		t.Fatal(err)
	}
	j.Append(earlier) // keeps the last step.ReportText bytes of stdout
	j.Close()

	resume, err := journal.Load(first.RunDir)
	if err != nil {
		t.Fatal(err)
	}
	// As the CLI does in a run directory an earlier run used.
	second := &Runner{Engine: e, RunDir: first.RunDir, RunID: "run-2", Env: first.Env, Resume: resume, StepDirs: StepDirs{Suffix: "run-2"}}
	ran := len(e.ran)
	res := second.Run(context.Background(), 1, hello, Live{})
	if len(e.ran) != ran || !res.Resumed || res.ResumedFrom != "run-1" || res.Origin != step.OriginResumed || res.Key != earlier.Key {
		t.Fatalf("resumed step: ran %d more containers; resumed %v from %q, origin %q, key %s (was %s)", len(e.ran)-ran, res.Resumed, res.ResumedFrom, res.Origin, res.Key, earlier.Key)
	}
	if res.Stdout != long+"\n" || res.StdoutFile != earlier.StdoutFile {
		t.Errorf("resumed stdout: %d bytes from %s; want the %d the step printed, from %s", len(res.Stdout), res.StdoutFile, len(long)+1, earlier.StdoutFile)
	}
	// It ran once: asked again, it runs; so does a changed step of that name.
	again := second.Run(context.Background(), 1, hello, Live{})
	changed := second.Run(context.Background(), 2, step.Step{Name: "s", Image: "img", Commands: []step.Command{{Argv: []string{"out changed"}}}}, Live{})
	if len(e.ran) != ran+2 || again.Resumed || changed.Resumed || again.Origin != step.OriginRan {
		t.Fatalf("ran %d containers for a step asked twice and a changed one, want 2: resumed %v and %v", len(e.ran)-ran, again.Resumed, changed.Resumed)
	}
	if again.StdoutFile == earlier.StdoutFile || !strings.Contains(again.StdoutFile, "run-2") {
		t.Errorf("the step run again writes %s, over the earlier run's %s", again.StdoutFile, earlier.StdoutFile)
	}
	if b, err := os.ReadFile(filepath.Join(first.RunDir, earlier.StdoutFile)); err != nil || string(b) != long+"\n" {
		t.Errorf("the earlier run's stdout file changed: %d bytes, %v", len(b), err)
	}
}

// TestOriginSaysWhetherContainersStarted: a step refused for its user or
// its missing image never got as far as a container, and has no origin.
func TestOriginSaysWhetherContainersStarted(t *testing.T) {
	st := step.Step{Name: "s", Image: "img", Commands: []step.Command{{Argv: []string{"exit 0"}}}}
	missing := newTestRunner(t, &scriptedEngine{imageErr: fmt.Errorf("%w: nope", ErrImageUnavailable)})
	root := newTestRunner(t, &scriptedEngine{})
	root.Defaults.User = "1000:1000"
	asRoot := st
	asRoot.Limits.User = "0:0"
	for name, res := range map[string]step.ExecResult{
		"image missing": missing.Run(context.Background(), 1, st, Live{}),
		"user refused":  root.Run(context.Background(), 1, asRoot, Live{}),
	} {
		if res.OK() || res.Origin != "" {
			t.Errorf("%s: origin %q, error %q; want no origin", name, res.Origin, res.Error)
		}
	}
	if res := newTestRunner(t, &scriptedEngine{}).Run(context.Background(), 1, st, Live{}); res.Origin != step.OriginRan {
		t.Errorf("a step that ran: origin %q", res.Origin)
	}
}

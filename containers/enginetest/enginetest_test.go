package enginetest_test

import (
	"bytes"
	"context"
	"io"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/wflow/wflow/containers"
	"github.com/wflow/wflow/containers/enginetest"
	"github.com/wflow/wflow/containers/fakeengine"
)

// broken are engines with one fault each, and the check that must catch it.
var broken = map[string]struct {
	check string
	wrap  func(e *fakeengine.Engine) containers.Engine
}{
	"buffers output until the end": {"OutputStreamsWhileRunning", func(e *fakeengine.Engine) containers.Engine { return buffering{e} }},
	"merges stderr into stdout":    {"StdoutAndStderrApart", func(e *fakeengine.Engine) containers.Engine { return merging{e} }},
	"loses the exit code":          {"ExitCodes", func(e *fakeengine.Engine) containers.Engine { return zeroExit{e} }},
	"ignores cancellation":         {"CancelStopsAndRemoves", func(e *fakeengine.Engine) containers.Engine { return uncancellable{e} }},
	"drops the environment":        {"Environment", func(e *fakeengine.Engine) containers.Engine { return noEnv{e} }},
	"drops the labels":             {"LabelsWhileRunningRemovedAfter", func(e *fakeengine.Engine) containers.Engine { return noLabels{e} }},
	"has every image":              {"EnsureImage", func(e *fakeengine.Engine) containers.Engine { return everyImage{e} }},
}

// TestSuiteCatchesBrokenEngines runs the suite against each broken engine,
// in a child test process, and checks that it fails, in the right check.
func TestSuiteCatchesBrokenEngines(t *testing.T) {
	if os.Getenv("ENGINETEST_BROKEN") != "" {
		t.Skip("in the child")
	}
	for name, b := range broken {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			cmd := exec.Command(os.Args[0], "-test.run=^TestBrokenEngine$/^"+b.check+"$", "-test.v")
			cmd.Env = append(os.Environ(), "ENGINETEST_BROKEN="+name)
			out, err := cmd.CombinedOutput()
			if err == nil {
				t.Fatalf("the suite passed an engine that %s:\n%s", name, out)
			}
			if !strings.Contains(string(out), "--- FAIL: TestBrokenEngine/"+b.check) {
				t.Errorf("the suite did not fail %s for an engine that %s:\n%s", b.check, name, out)
			}
		})
	}
}

// TestBrokenEngine is the child of TestSuiteCatchesBrokenEngines.
func TestBrokenEngine(t *testing.T) {
	name := os.Getenv("ENGINETEST_BROKEN")
	if name == "" {
		t.Skip("run by TestSuiteCatchesBrokenEngines")
	}
	e := fakeengine.New("fake/sh")
	enginetest.Run(t, enginetest.Harness{Engine: broken[name].wrap(e), Image: "fake/sh", Missing: "fake/missing", Labelled: e.Labelled})
}

type buffering struct{ *fakeengine.Engine }

func (b buffering) Run(ctx context.Context, s containers.ContainerSpec, stdout, stderr io.Writer) (containers.Exit, error) {
	var out bytes.Buffer
	exit, err := b.Engine.Run(ctx, s, &out, stderr)
	stdout.Write(out.Bytes())
	return exit, err
}

type merging struct{ *fakeengine.Engine }

func (m merging) Run(ctx context.Context, s containers.ContainerSpec, stdout, _ io.Writer) (containers.Exit, error) {
	return m.Engine.Run(ctx, s, stdout, stdout)
}

type zeroExit struct{ *fakeengine.Engine }

func (z zeroExit) Run(ctx context.Context, s containers.ContainerSpec, stdout, stderr io.Writer) (containers.Exit, error) {
	_, err := z.Engine.Run(ctx, s, stdout, stderr)
	return containers.Exit{}, err
}

type uncancellable struct{ *fakeengine.Engine }

func (u uncancellable) Run(ctx context.Context, s containers.ContainerSpec, stdout, stderr io.Writer) (containers.Exit, error) {
	exit, err := u.Engine.Run(context.WithoutCancel(ctx), s, stdout, stderr)
	return exit, err
}

type noEnv struct{ *fakeengine.Engine }

func (n noEnv) Run(ctx context.Context, s containers.ContainerSpec, stdout, stderr io.Writer) (containers.Exit, error) {
	s.Env = s.Env[:1] // PATH only
	return n.Engine.Run(ctx, s, stdout, stderr)
}

type noLabels struct{ *fakeengine.Engine }

func (n noLabels) Run(ctx context.Context, s containers.ContainerSpec, stdout, stderr io.Writer) (containers.Exit, error) {
	s.Labels = nil
	return n.Engine.Run(ctx, s, stdout, stderr)
}

type everyImage struct{ *fakeengine.Engine }

func (everyImage) EnsureImage(context.Context, string, containers.PullPolicy) (string, error) {
	return "sha256:any", nil
}

package docker_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wflow/wflow/containers"
	"github.com/wflow/wflow/containers/docker"
	"github.com/wflow/wflow/internal/testenv"
	"github.com/wflow/wflow/step"
)

func TestMain(m *testing.M) { os.Exit(testenv.MainWithLeakCheck(m)) }

const image = testenv.BusyboxImage

func newRunner(t *testing.T, e *docker.Engine) *containers.Runner {
	return &containers.Runner{
		Engine: e,
		RunDir: t.TempDir(),
		RunID:  fmt.Sprintf("test-%s-%d", strings.ReplaceAll(t.Name(), "/", "-"), time.Now().UnixNano()),
		Env:    map[string]string{"FROM_DEFAULT": "default", "OVERRIDDEN": "default"},
		Pull:   containers.PullNever,
	}
}

// assertRemoved checks, through the engine, that no container of the run remains.
func assertRemoved(t *testing.T, e *docker.Engine, r *containers.Runner) {
	t.Helper()
	ids, err := e.Labelled(context.Background(), containers.LabelRun, r.RunID)
	if err != nil {
		t.Fatal(err)
	}
	if len(ids) != 0 {
		t.Errorf("%d container(s) of run %s remain: %v", len(ids), r.RunID, ids)
	}
}

func sh(script string) step.Command { return step.Command{Shell: script} }

func TestCommandsRunInOrderInTheRunDirectory(t *testing.T) {
	e := testenv.Docker(t)
	r := newRunner(t, e)
	res := r.Run(context.Background(), 1, step.Step{Name: "order", Image: image, Commands: []step.Command{
		sh("echo 1 >> order.txt"),
		{Argv: []string{"sh", "-c", "echo 2 >> order.txt; pwd"}},
		sh("echo 3 >> order.txt"),
	}}, containers.Live{})
	if !res.OK() {
		t.Fatalf("result %+v", res)
	}
	b, err := os.ReadFile(filepath.Join(r.RunDir, "order.txt"))
	if err != nil || string(b) != "1\n2\n3\n" {
		t.Errorf("order.txt = %q, %v", b, err)
	}
	if res.Stdout != "/wflow\n" {
		t.Errorf("working directory %q, want /wflow", res.Stdout)
	}
	if len(res.Commands) != 3 || res.ImageID == "" {
		t.Errorf("result %+v", res)
	}
	assertRemoved(t, e, r)
}

func TestStopsAtFirstFailureWithItsExitCode(t *testing.T) {
	e := testenv.Docker(t)
	for _, code := range []int{1, 42, 255} {
		t.Run(fmt.Sprint(code), func(t *testing.T) {
			r := newRunner(t, e)
			res := r.Run(context.Background(), 1, step.Step{Name: "fail", Image: image, Commands: []step.Command{
				sh("echo first >> ran.txt"),
				sh(fmt.Sprintf("echo second >> ran.txt; exit %d", code)),
				sh("echo third >> ran.txt"),
			}}, containers.Live{})
			if res.ReturnCode != code || res.Error != "" {
				t.Errorf("returncode %d error %q, want %d", res.ReturnCode, res.Error, code)
			}
			b, _ := os.ReadFile(filepath.Join(r.RunDir, "ran.txt"))
			if string(b) != "first\nsecond\n" {
				t.Errorf("ran.txt = %q: the third command must not run", b)
			}
			if len(res.Commands) != 2 {
				t.Errorf("commands %+v", res.Commands)
			}
			assertRemoved(t, e, r)
		})
	}
}

func TestStdoutAndStderrApart(t *testing.T) {
	e := testenv.Docker(t)
	r := newRunner(t, e)
	res := r.Run(context.Background(), 3, step.Step{Name: "streams", Image: image, Commands: []step.Command{
		sh("echo out1; echo err1 >&2"),
		sh("echo out2; echo err2 >&2"),
	}}, containers.Live{})
	if res.Stdout != "out1\nout2\n" || res.Stderr != "err1\nerr2\n" {
		t.Errorf("stdout %q stderr %q", res.Stdout, res.Stderr)
	}
	for file, want := range map[string]string{res.StdoutFile: "out1\nout2\n", res.StderrFile: "err1\nerr2\n"} {
		b, err := os.ReadFile(filepath.Join(r.RunDir, file))
		if err != nil || string(b) != want {
			t.Errorf("%s = %q, %v", file, b, err)
		}
	}
}

// liveWriter records when the first bytes arrive.
type liveWriter struct {
	mu    sync.Mutex
	first chan struct{}
	buf   strings.Builder
}

func (w *liveWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.buf.Len() == 0 {
		close(w.first)
	}
	w.buf.Write(p)
	return len(p), nil
}

func TestOutputStreamsWhileTheContainerRuns(t *testing.T) {
	e := testenv.Docker(t)
	r := newRunner(t, e)
	live := &liveWriter{first: make(chan struct{})}
	done := make(chan step.ExecResult)
	go func() {
		done <- r.Run(context.Background(), 1, step.Step{Name: "stream", Image: image,
			Commands: []step.Command{sh("echo first; sleep 3; echo second")}}, containers.Live{Stdout: live})
	}()
	select {
	case <-live.first:
	case <-done:
		t.Fatal("the step finished before any output was streamed")
	case <-time.After(30 * time.Second):
		t.Fatal("no output within 30s")
	}
	select {
	case <-done:
		t.Fatal("output arrived only when the step had finished")
	default:
	}
	res := <-done
	if res.Stdout != "first\nsecond\n" {
		t.Errorf("stdout %q", res.Stdout)
	}
}

func TestEnvNetworkAndLabels(t *testing.T) {
	e := testenv.Docker(t)
	r := newRunner(t, e)
	res := r.Run(context.Background(), 1, step.Step{Name: "env", Image: image,
		Env: map[string]string{"OVERRIDDEN": "step", "FROM_STEP": "step"},
		Commands: []step.Command{
			sh("echo $FROM_DEFAULT $OVERRIDDEN $FROM_STEP"),
			sh("ls /sys/class/net"),
		}}, containers.Live{})
	if res.Stdout != "default step step\nlo\n" {
		t.Errorf("stdout %q: want step env over defaults, and only the loopback interface", res.Stdout)
	}
}

func TestLargeOutputIsKeptInFilesAndTruncatedInTheResult(t *testing.T) {
	e := testenv.Docker(t)
	r := newRunner(t, e)
	res := r.Run(context.Background(), 1, step.Step{Name: "big", Image: image,
		Commands: []step.Command{sh("seq 1 200000")}}, containers.Live{})
	b, err := os.ReadFile(filepath.Join(r.RunDir, res.StdoutFile))
	if err != nil {
		t.Fatal(err)
	}
	var want strings.Builder
	for i := 1; i <= 200000; i++ {
		fmt.Fprintln(&want, i)
	}
	if string(b) != want.String() {
		t.Errorf("stdout file has %d bytes, want %d", len(b), want.Len())
	}
	if !res.StdoutTruncated || len(res.Stdout) > 64<<10 || !strings.HasSuffix(res.Stdout, "199999\n200000\n") {
		t.Errorf("truncated=%v len=%d", res.StdoutTruncated, len(res.Stdout))
	}
}

func TestCancelStopsAndRemovesTheContainer(t *testing.T) {
	e := testenv.Docker(t)
	r := newRunner(t, e)
	ctx, cancel := context.WithCancel(context.Background())
	live := &liveWriter{first: make(chan struct{})}
	done := make(chan step.ExecResult)
	go func() {
		done <- r.Run(ctx, 1, step.Step{Name: "sleeper", Image: image,
			Commands: []step.Command{sh("echo started; sleep 300"), sh("echo never")}}, containers.Live{Stdout: live})
	}()
	<-live.first
	start := time.Now()
	cancel()
	res := <-done
	if time.Since(start) > 20*time.Second {
		t.Errorf("cancel took %s", time.Since(start))
	}
	if res.ErrorKind != step.ErrorKindCancelled || res.ReturnCode != 1 || len(res.Commands) != 1 {
		t.Errorf("result %+v", res)
	}
	assertRemoved(t, e, r)
}

func TestEngineErrorsAreResultsAndRemoveContainers(t *testing.T) {
	e := testenv.Docker(t)
	t.Run("command not found", func(t *testing.T) {
		r := newRunner(t, e)
		res := r.Run(context.Background(), 1, step.Step{Name: "nocmd", Image: image,
			Commands: []step.Command{{Argv: []string{"/no/such/program"}}}}, containers.Live{})
		if res.OK() || res.ErrorKind != step.ErrorKindEngine || !strings.Contains(res.Error, "no/such/program") {
			t.Errorf("result %+v", res)
		}
		assertRemoved(t, e, r)
	})
	t.Run("missing image, pull not allowed", func(t *testing.T) {
		r := newRunner(t, e)
		r.Pull = containers.PullAlways
		res := r.Run(context.Background(), 1, step.Step{Name: "noimage", Image: "wflow-test/absent:1",
			Commands: []step.Command{sh("true")}}, containers.Live{})
		if res.ErrorKind != step.ErrorKindImage || !strings.Contains(res.Error, "--allow-registry docker.io") {
			t.Errorf("result %+v", res)
		}
	})
	t.Run("missing image, pull never", func(t *testing.T) {
		r := newRunner(t, e)
		r.Pulls = containers.Pulls{Registries: []string{"*"}}
		res := r.Run(context.Background(), 1, step.Step{Name: "noimage", Image: "wflow-test/absent:1",
			Commands: []step.Command{sh("true")}}, containers.Live{})
		if res.ErrorKind != step.ErrorKindImage || !strings.Contains(res.Error, "--pull=never") {
			t.Errorf("result %+v", res)
		}
	})
	t.Run("missing image, pull fails", func(t *testing.T) {
		r := newRunner(t, e)
		r.Pull = containers.PullMissing
		r.Pulls = containers.Pulls{Registries: []string{"localhost:1"}}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		res := r.Run(ctx, 1, step.Step{Name: "noimage", Image: "localhost:1/wflow-test/absent:1",
			Commands: []step.Command{sh("true")}}, containers.Live{})
		if res.ErrorKind != step.ErrorKindImage || !strings.Contains(res.Error, "pulling it failed") {
			t.Errorf("result %+v", res)
		}
	})
}

func TestNoDaemonIsAClearError(t *testing.T) {
	t.Setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
	_, err := docker.New(context.Background())
	if err == nil || !strings.Contains(err.Error(), "no daemon answers at unix:///nonexistent/docker.sock") {
		t.Errorf("err = %v", err)
	}
}

// TestPlantedSymlinksCannotRedirectWflowsWrites: the run directory's
// .wflow/steps is a link to a host folder; the next step's output files must
// not land there. A step cannot plant it (.wflow is read-only in its
// container); a run directory given with --rundir may hold it.
func TestPlantedSymlinksCannotRedirectWflowsWrites(t *testing.T) {
	e := testenv.Docker(t)
	r := newRunner(t, e)
	outside := t.TempDir()
	res := r.Run(context.Background(), 1, step.Step{Name: "plant", Image: image, Commands: []step.Command{
		sh("rm -rf .wflow/steps && ln -s " + outside + " .wflow/steps"),
	}}, containers.Live{})
	if res.OK() || !strings.Contains(res.Stderr, "Read-only file system") {
		t.Fatalf("a step planted a link in .wflow: %+v", res)
	}
	os.RemoveAll(filepath.Join(r.RunDir, ".wflow", "steps"))
	if err := os.Symlink(outside, filepath.Join(r.RunDir, ".wflow", "steps")); err != nil {
		t.Fatal(err)
	}
	res = r.Run(context.Background(), 2, step.Step{Name: "victim", Image: image, Commands: []step.Command{sh("echo hi")}}, containers.Live{})
	if res.ErrorKind != step.ErrorKindIO || len(res.Commands) != 0 {
		t.Errorf("result %+v: want an io error before anything ran", res)
	}
	if entries, _ := os.ReadDir(outside); len(entries) != 0 {
		t.Errorf("wflow wrote %d entries outside the run directory", len(entries))
	}
	assertRemoved(t, e, r)
}

// TestResourcesAreMeasured: a step's result says how much memory its
// containers held at most and how much CPU time they took, from the
// engine's stats, summed over its commands. The CPU time is checked
// against what the container's own cgroup says at its end: a busy machine
// gives a loop less CPU than its wall time.
func TestResourcesAreMeasured(t *testing.T) {
	e := testenv.Docker(t)
	r := newRunner(t, e)
	res := r.Run(context.Background(), 1, step.Step{Name: "use", Image: image, Commands: []step.Command{
		// about 60 MB held for two seconds: the shell's variable, and the
		// command substitution's buffer as it reads it
		sh(`x=$(head -c 30000000 /dev/zero | tr '\0' a); sleep 2; echo ${#x}`),
		sh(`true`),
	}}, containers.Live{})
	if !res.OK() {
		t.Fatalf("result %+v", res)
	}
	u := res.Resources
	if u == nil {
		t.Fatalf("no resources measured: %+v", res)
	}
	if u.PeakMemoryBytes < 30e6 || u.PeakMemoryBytes > 1<<30 {
		t.Errorf("peak memory %d bytes, want 30 MB or more (and under 1 GiB)", u.PeakMemoryBytes)
	}

	// About a second of CPU, then the container's own count of it (cgroup
	// v1's cpuacct.usage in ns, or v2's usage_usec).
	busy := r.Run(context.Background(), 2, step.Step{Name: "busy", Image: image, Commands: []step.Command{
		sh(`i=0; while [ $i -lt 1000000 ]; do i=$((i+1)); done; cat /sys/fs/cgroup/cpuacct/cpuacct.usage 2>/dev/null || awk '/usage_usec/ {print $2 * 1000}' /sys/fs/cgroup/cpu.stat`),
	}}, containers.Live{})
	own, err := strconv.ParseInt(strings.TrimSpace(busy.Stdout), 10, 64)
	if !busy.OK() || err != nil || busy.Resources == nil {
		t.Fatalf("busy step: %+v (%v)", busy, err)
	}
	ownMS, got := own/1e6, busy.Resources.CPUMS
	if ownMS < 300 || got < ownMS*8/10-100 || got > ownMS+300 {
		t.Errorf("CPU time %d ms measured; the container counted %d ms", got, ownMS)
	}

	// A container that ends at once has no sample: nil, not zeros.
	quick := r.Run(context.Background(), 3, step.Step{Name: "quick", Image: image, Commands: []step.Command{sh("true")}}, containers.Live{})
	if !quick.OK() {
		t.Fatalf("result %+v", quick)
	}
	if q := quick.Resources; q != nil && (q.PeakMemoryBytes <= 0 && q.CPUMS <= 0) {
		t.Errorf("resources %+v: zeros instead of nil", *q)
	}
	t.Logf("measured %+v over %d ms; busy %d ms (its own count %d ms); quick step %+v", *u, res.DurationMS, got, ownMS, quick.Resources)
	assertRemoved(t, e, r)
}

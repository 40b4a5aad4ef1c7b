package kubernetes_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/wflow/wflow/containers"
	"github.com/wflow/wflow/containers/kubernetes"
	"github.com/wflow/wflow/internal/testenv"
	"github.com/wflow/wflow/step"
)

// What these tests show, on a real API server, controller manager and
// scheduler with a node faked by kwok (scripts/kube-sim.sh): the Jobs wflow
// makes are accepted, scheduled and run through their life; their exit
// code, OOM and log reach wflow; cancellation, a timeout, a container that
// cannot start, the Job controller's deadline and wflow gc end them and
// leave nothing; RBAC is checked before a run, with the Role in
// docs/scale-out.md. What a faked node cannot show (a command that really
// runs, files through the volume, a real OOM) is in docs/scale-out.md.

// open returns an engine on the simulated cluster, in namespace.
func open(t *testing.T, namespace string) (*kubernetes.Engine, *testenv.KubeCluster) {
	t.Helper()
	c := testenv.KubeSim(t, namespace)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	e, err := kubernetes.New(ctx, kubernetes.Options{Namespace: namespace, VolumeClaim: c.Claim, VolumeRoot: c.Root})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	return e, c
}

// kwokSpec is a step in a new run directory of the claim that the fake
// node ends as env says (WFLOW_KWOK_*).
func kwokSpec(t *testing.T, c *testenv.KubeCluster, env ...string) containers.ContainerSpec {
	t.Helper()
	dir, err := os.MkdirTemp(c.Root, "run-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Mkdir(filepath.Join(dir, ".wflow"), 0o755)
	return containers.ContainerSpec{
		Image:   "wflow-test/busybox",
		Args:    []string{"sh", "-c", "echo the fake node runs nothing"},
		Env:     append([]string{"PATH=/bin"}, env...),
		RunDir:  dir,
		WorkDir: "/wflow",
		Records: ".wflow",
		Labels: map[string]string{
			containers.LabelRun:  fmt.Sprintf("kwok-%d-%s", time.Now().UnixNano(), strings.ReplaceAll(t.Name(), "/", "-")),
			containers.LabelStep: "check",
		},
		Limits: step.Limits{Network: "none", User: "1000:1000"},
	}
}

func runSpec(t *testing.T, e *kubernetes.Engine, s containers.ContainerSpec) (containers.Exit, string, string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var stdout, stderr bytes.Buffer
	exit, err := e.Run(ctx, s, &stdout, &stderr)
	return exit, stdout.String(), stderr.String(), err
}

// assertGone checks that no Job or pod of s's run is left.
func assertGone(t *testing.T, c *testenv.KubeCluster, s containers.ContainerSpec) {
	t.Helper()
	if left := c.Objects(t, containers.LabelRun, s.Labels[containers.LabelRun]); len(left) > 0 {
		t.Errorf("left after Run returned: %v", left)
	}
}

func TestExitCodesAndOOM(t *testing.T) {
	e, c := open(t, "default")
	for _, code := range []int{0, 1, 3, 255} {
		s := kwokSpec(t, c, fmt.Sprintf("WFLOW_KWOK_EXIT_CODE=%d", code))
		exit, _, _, err := runSpec(t, e, s)
		if err != nil || exit.Code != code || exit.OOMKilled {
			t.Errorf("exit %d: got %+v, %v", code, exit, err)
		}
		assertGone(t, c, s)
	}
	s := kwokSpec(t, c, "WFLOW_KWOK_EXIT_CODE=137", "WFLOW_KWOK_REASON=OOMKilled")
	s.Memory = 64 << 20
	if exit, _, _, err := runSpec(t, e, s); err != nil || exit.Code != 137 || !exit.OOMKilled {
		t.Errorf("OOMKilled: got %+v, %v", exit, err)
	}
}

// TestLog: the pod's log reaches stdout whole, once, stdout and stderr
// lines in their order (Kubernetes keeps one log per container); stderr
// gets nothing. kwok's log stream does not end with the container: the
// engine stops following and reads the rest.
func TestLog(t *testing.T) {
	e, c := open(t, testenv.LogsNamespace)
	var lines [][2]string
	var want strings.Builder
	for i := 0; i < 200; i++ {
		stream := "stdout"
		if i%3 == 0 {
			stream = "stderr"
		}
		text := fmt.Sprintf("line %d on %s $(HOME) <b>", i, stream)
		lines = append(lines, [2]string{stream, text})
		want.WriteString(text + "\n")
	}
	c.WriteLog(t, lines...)
	s := kwokSpec(t, c, "WFLOW_KWOK_RUN_TIME=1500ms")
	start := time.Now()
	exit, stdout, stderr, err := runSpec(t, e, s)
	if err != nil || exit.Code != 0 {
		t.Fatalf("exit %+v, %v", exit, err)
	}
	if stdout != want.String() || stderr != "" {
		t.Errorf("stdout %d bytes (want %d), stderr %q:\n%.400s", len(stdout), want.Len(), stderr, stdout)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("the step took %s: the followed log was not let go when the container ended", d)
	}
	assertGone(t, c, s)
}

// TestLabelsWhileRunning: the Job and its pod carry wflow's labels while
// the step runs, with the values whole in annotations, and the process
// labels wflow gc reads; both are gone when Run returns.
func TestLabelsWhileRunning(t *testing.T) {
	e, c := open(t, "default")
	s := kwokSpec(t, c, "WFLOW_KWOK_RUN_TIME=3s")
	for k, v := range containers.ProcessLabels() {
		s.Labels[k] = v
	}
	done := make(chan error, 1)
	go func() { _, _, _, err := runSpec(t, e, s); done <- err }()
	var seen []string
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline) && len(seen) < 2; time.Sleep(100 * time.Millisecond) {
		seen = c.Objects(t, containers.LabelRun, s.Labels[containers.LabelRun])
	}
	if len(seen) != 2 {
		t.Errorf("while running: %v, want a Job and a pod", seen)
	}
	ctx := context.Background()
	list, err := e.List(ctx, containers.LabelRun)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, l := range list {
		if l.Labels[containers.LabelRun] == s.Labels[containers.LabelRun] && l.Kind != "kubernetes NetworkPolicy" {
			found = true
			if l.Kind != "kubernetes Job" || l.Labels[containers.LabelHost] != s.Labels[containers.LabelHost] || l.Labels[containers.LabelPID] != s.Labels[containers.LabelPID] {
				t.Errorf("List: %+v", l)
			}
		}
	}
	if !found {
		t.Errorf("List does not have the running Job: %+v", list)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	assertGone(t, c, s)
}

// TestCancel: ending ctx deletes the Job and its pod, and Run returns an
// error wrapping ctx's soon; a timeout alike.
func TestCancel(t *testing.T) {
	e, c := open(t, "default")
	for _, timeout := range []bool{false, true} {
		s := kwokSpec(t, c, "WFLOW_KWOK_RUN_TIME=5m")
		ctx, cancel := context.WithCancel(context.Background())
		if timeout {
			ctx, cancel = context.WithTimeout(context.Background(), 3*time.Second)
		}
		done := make(chan error, 1)
		go func() { _, err := e.Run(ctx, s, &bytes.Buffer{}, &bytes.Buffer{}); done <- err }()
		if !timeout {
			waitFor(t, func() bool { return running(t, c, s) })
			cancel()
		}
		select {
		case err := <-done:
			want := context.Canceled
			if timeout {
				want = context.DeadlineExceeded
			}
			if !errors.Is(err, want) {
				t.Errorf("Run: %v, want an error wrapping %v", err, want)
			}
		case <-time.After(20 * time.Second):
			t.Fatal("Run did not return within 20s of its context's end")
		}
		cancel()
		assertGone(t, c, s)
	}
}

// running reports whether s's pod runs.
func running(t *testing.T, c *testenv.KubeCluster, s containers.ContainerSpec) bool {
	pods, err := c.Client.CoreV1().Pods(c.Namespace).List(context.Background(), metav1.ListOptions{LabelSelector: containers.LabelRun + "=" + s.Labels[containers.LabelRun]})
	if err != nil {
		t.Fatal(err)
	}
	return len(pods.Items) == 1 && pods.Items[0].Status.Phase == corev1.PodRunning
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); !cond(); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("timed out")
		}
	}
}

// TestDeadline: with wflow's own timeout out of the way, the Job
// controller ends a step at its activeDeadlineSeconds (the safety net for
// a wflow that is gone), and Run says so.
func TestDeadline(t *testing.T) {
	e, c := open(t, "default")
	defer kubernetes.SetDeadlineGrace(0)()
	s := kwokSpec(t, c, "WFLOW_KWOK_RUN_TIME=5m")
	s.Timeout = step.Duration(2 * time.Second)
	start := time.Now()
	_, _, _, err := runSpec(t, e, s)
	if err == nil || !strings.Contains(err.Error(), "DeadlineExceeded") {
		t.Errorf("Run past the Job's deadline: %v", err)
	}
	t.Logf("after %s: %v", time.Since(start).Round(time.Millisecond), err)
	assertGone(t, c, s)
}

// TestCannotStart: a container that cannot start (its image is not on the
// node and may not be pulled) fails the step at once, as an unavailable
// image, and leaves nothing.
func TestCannotStart(t *testing.T) {
	e, c := open(t, "default")
	s := kwokSpec(t, c, "WFLOW_KWOK_WAITING=ErrImageNeverPull")
	start := time.Now()
	_, _, _, err := runSpec(t, e, s)
	if !errors.Is(err, containers.ErrImageUnavailable) || !strings.Contains(err.Error(), "ErrImageNeverPull") {
		t.Errorf("Run: %v, want an error wrapping ErrImageUnavailable naming the reason", err)
	}
	if d := time.Since(start); d > 15*time.Second {
		t.Errorf("took %s", d)
	}
	assertGone(t, c, s)
}

// TestOrphansRemoved: the Job of a wflow process that is gone is found by
// wflow gc's RemoveOrphans and deleted with its pod; the Run that still
// waits for it learns that someone else deleted it.
func TestOrphansRemoved(t *testing.T) {
	e, c := open(t, "default")
	s := kwokSpec(t, c, "WFLOW_KWOK_RUN_TIME=5m")
	for k, v := range containers.ProcessLabels() {
		s.Labels[k] = v
	}
	s.Labels[containers.LabelPID] = "999999999" // no such process
	delete(s.Labels, containers.LabelPIDStart)
	var wg sync.WaitGroup
	wg.Add(1)
	var runErr error
	go func() { defer wg.Done(); _, _, _, runErr = runSpec(t, e, s) }()
	waitFor(t, func() bool { return running(t, c, s) })
	removed, runs, err := containers.RemoveOrphans(context.Background(), e)
	if err != nil {
		t.Fatal(err)
	}
	mine := 0
	for _, r := range removed {
		if r.Labels[containers.LabelRun] == s.Labels[containers.LabelRun] {
			mine++
		}
	}
	if mine != 1 || !contains(runs, s.Labels[containers.LabelRun]) {
		t.Errorf("removed %+v (runs %v): want this run's Job", removed, runs)
	}
	wg.Wait()
	if runErr == nil || !strings.Contains(runErr.Error(), "deleted") {
		t.Errorf("the Run whose Job was removed: %v", runErr)
	}
	assertGone(t, c, s)
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// TestPodSecurityRestricted: in a namespace that enforces the restricted
// Pod Security Standard, the API server's own admission admits a step's
// pod; a step as root is refused there, and the step fails within
// seconds, quoting the refusal, not after the 60 s wait for a pod.
func TestPodSecurityRestricted(t *testing.T) {
	e, c := open(t, "wflow-restricted")
	ctx := context.Background()
	ns, err := c.Client.CoreV1().Namespaces().Get(ctx, c.Namespace, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if ns.Labels == nil {
		ns.Labels = map[string]string{}
	}
	ns.Labels["pod-security.kubernetes.io/enforce"] = "restricted"
	if _, err := c.Client.CoreV1().Namespaces().Update(ctx, ns, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	s := kwokSpec(t, c, "WFLOW_KWOK_EXIT_CODE=5")
	s.ReadOnly, s.Memory, s.CPUs = true, 64<<20, 0.5
	if exit, _, _, err := runSpec(t, e, s); err != nil || exit.Code != 5 {
		t.Errorf("a step in a restricted namespace: %+v, %v", exit, err)
	}
	assertGone(t, c, s)
	root := kwokSpec(t, c)
	root.User = "0:0"
	start := time.Now()
	_, _, _, err = runSpec(t, e, root)
	if err == nil || !strings.Contains(err.Error(), "violates PodSecurity") {
		t.Errorf("a step as root in a restricted namespace: %v", err)
	}
	if d := time.Since(start); d > 20*time.Second {
		t.Errorf("the refusal took %s to reach the step", d)
	}
	assertGone(t, c, root)
}

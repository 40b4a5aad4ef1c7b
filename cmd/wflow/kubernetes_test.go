package main

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/wflow/wflow/containers"
	"github.com/wflow/wflow/internal/testenv"
)

// kubeFlags are the flags of a run on the simulated cluster, in a new run
// directory inside its claim; it returns them and the run directory.
func kubeFlags(t *testing.T, c *testenv.KubeCluster) ([]string, string) {
	t.Helper()
	rundir, err := os.MkdirTemp(c.Root, "cli-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(rundir) })
	return []string{"--rundir", rundir, "--engine", "kubernetes", "--k8s-volume-claim", c.Claim, "--k8s-volume-root", c.Root}, rundir
}

// TestKubernetesRun runs steps as Jobs on the simulated cluster
// (scripts/kube-sim.sh) through the CLI: the exit codes the fake node
// gives them reach the module and the report, which names the engine, and
// nothing of the run is left (no Job, no pod, no NetworkPolicy).
func TestKubernetesRun(t *testing.T) {
	c := testenv.KubeSim(t, "default")
	module := testenv.GoGuest(t, "./testdata/guests/rawspecs")
	flags, rundir := kubeFlags(t, c)
	specs := `[{"name":"fine","image":"wflow-test/busybox","commands":["true"],"env":{"WFLOW_KWOK_RUN_TIME":"300ms"}},
		{"name":"three","image":"wflow-test/busybox","commands":[["sh","-c","echo $$(HOME)"]],"env":{"WFLOW_KWOK_EXIT_CODE":"3"},"timeout":"1m","memory":"64m","cpus":0.5}]`
	code, stdout, stderr := wflow(t, append([]string{"run", module, "-p", "fn=step", "-p", "specs=" + specs}, flags...)...)
	if code != exitOK {
		t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
	}
	r := readReport(t, rundir)
	if r.Engine.Name != "kubernetes" || !strings.HasPrefix(r.Engine.Version, "v1.") || len(r.Steps) != 2 {
		t.Fatalf("report: engine %+v, %d steps\n%s\n%s", r.Engine, len(r.Steps), stdout, stderr)
	}
	var results []struct {
		Step       string `json:"step"`
		ReturnCode int    `json:"returncode"`
	}
	if err := json.Unmarshal(r.Output, &results); err != nil || len(results) != 2 {
		t.Fatalf("output %s: %v", r.Output, err)
	}
	if results[0].ReturnCode != 0 || results[1].ReturnCode != 3 || r.Steps[1].ReturnCode != 3 {
		t.Errorf("return codes: module got %+v; report %d, %d", results, r.Steps[0].ReturnCode, r.Steps[1].ReturnCode)
	}
	if !strings.Contains(stderr+stdout, "NetworkPolicy") {
		t.Errorf("the run does not say how network none is done on kubernetes:\n%s\n%s", stdout, stderr)
	}
	kubeAssertGone(t, c, r.RunID)
}

// kubeAssertGone checks that no Job, pod or NetworkPolicy of the run is
// left in the cluster.
func kubeAssertGone(t *testing.T, c *testenv.KubeCluster, runID string) {
	t.Helper()
	if left := c.Objects(t, containers.LabelRun, runID); len(left) != 0 {
		t.Errorf("the run left %v", left)
	}
	policies, err := c.Client.NetworkingV1().NetworkPolicies(c.Namespace).List(context.Background(), metav1.ListOptions{LabelSelector: containers.LabelRun + "=" + runID})
	if err != nil {
		t.Fatal(err)
	}
	if len(policies.Items) != 0 {
		t.Errorf("the run left its NetworkPolicy %s", policies.Items[0].Name)
	}
}

// TestKubernetesSignals: SIGINT while a step's pod runs deletes its Job
// and pod before wflow exits; after SIGKILL, `wflow gc --engine
// kubernetes` deletes what the dead process left.
func TestKubernetesSignals(t *testing.T) {
	c := testenv.KubeSim(t, "default")
	bin := testenv.Wflow(t)
	sleepy := testenv.GoGuest(t, "./testdata/guests/sleepy")
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGKILL} {
		t.Run(sig.String(), func(t *testing.T) {
			flags, rundir := kubeFlags(t, c)
			cmd := exec.Command(bin, append([]string{"run", sleepy, "--env", "WFLOW_KWOK_RUN_TIME=5m"}, flags...)...)
			cmd.Env = append(os.Environ(), "KUBECONFIG="+c.Kubeconfig)
			pid := signalWhenRunning(t, c, cmd, sig)
			if sig == syscall.SIGINT {
				if code := cmd.ProcessState.ExitCode(); code != exitInterrupted {
					t.Errorf("exit code %d, want %d", code, exitInterrupted)
				}
				r := readReport(t, rundir)
				if r.Status != "cancelled" || len(r.Steps) != 1 || r.Steps[0].ErrorKind != "cancelled" {
					t.Errorf("report status %s, steps %+v", r.Status, r.Steps)
				}
				kubeAssertGone(t, c, r.RunID)
				return
			}
			if left := c.Objects(t, containers.LabelPID, pid); len(left) == 0 {
				t.Fatal("the killed process left nothing: its running step should still be there")
			}
			code, stdout, stderr := wflow(t, "gc", "--engine", "kubernetes")
			if code != exitOK || !strings.Contains(stdout, "1 kubernetes Job(s)") || !strings.Contains(stdout, "1 kubernetes NetworkPolicy(s)") {
				t.Errorf("gc: exit %d\n%s\n%s", code, stdout, stderr)
			}
			if left := c.Objects(t, containers.LabelPID, pid); len(left) != 0 {
				t.Errorf("after wflow gc, %v of the killed process remain", left)
			}
		})
	}
}

// signalWhenRunning starts cmd, waits until a pod of its process runs,
// sends sig and waits for it to exit; it returns the process's pid.
func signalWhenRunning(t *testing.T, c *testenv.KubeCluster, cmd *exec.Cmd, sig syscall.Signal) string {
	t.Helper()
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var text strings.Builder
	scanned := make(chan struct{})
	go func() {
		for lines := bufio.NewScanner(out); lines.Scan(); {
			text.WriteString(lines.Text() + "\n")
		}
		close(scanned)
	}()
	pid := strconv.Itoa(cmd.Process.Pid)
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		pods, err := c.Client.CoreV1().Pods(c.Namespace).List(context.Background(), metav1.ListOptions{LabelSelector: containers.LabelPID + "=" + pid})
		if err != nil {
			t.Fatal(err)
		}
		if len(pods.Items) == 1 && pods.Items[0].Status.Phase == corev1.PodRunning {
			break
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			cmd.Wait()
			<-scanned
			t.Fatalf("no pod of the run ran within 60 s:\n%s", text.String())
		}
	}
	cmd.Process.Signal(sig)
	done := make(chan error, 1)
	go func() { <-scanned; done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		cmd.Process.Kill()
		t.Fatalf("wflow did not exit within 60 s of %v", sig)
	}
	return pid
}

// TestKubernetesUsage: the kubernetes engine's flags are refused with
// another engine, its claim is required, no cluster is said plainly (exit
// 3), and a run directory outside the claim's root is refused before
// anything runs.
func TestKubernetesUsage(t *testing.T) {
	module := filepath.Join(t.TempDir(), "hello.wasm")
	if err := os.WriteFile(module, testenv.Wat(t, "testdata/hello.wat"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--namespace", "x"}, "--namespace: only with --engine kubernetes"},
		{[]string{"--k8s-volume-claim", "x"}, "--k8s-volume-claim: only with --engine kubernetes"},
		{[]string{"--engine", "kubernetes"}, "needs --k8s-volume-claim NAME and --k8s-volume-root DIR"},
	} {
		code, _, stderr := wflow(t, append([]string{"run", module}, c.args...)...)
		if code != exitUsage || !strings.Contains(stderr, c.want) {
			t.Errorf("%v: exit %d, %s", c.args, code, stderr)
		}
	}
	t.Setenv("KUBECONFIG", filepath.Join(t.TempDir(), "none"))
	code, _, stderr := wflow(t, "run", module, "--engine", "kubernetes", "--k8s-volume-claim", "c", "--k8s-volume-root", "/tmp")
	if code != exitNoEngine || !strings.Contains(stderr, "no kubeconfig ($KUBECONFIG, ~/.kube/config)") {
		t.Errorf("no cluster: exit %d, %s", code, stderr)
	}
	kube := testenv.KubeSim(t, "default")
	code, _, stderr = wflow(t, "run", module, "--rundir", t.TempDir(), "--engine", "kubernetes", "--k8s-volume-claim", kube.Claim, "--k8s-volume-root", kube.Root)
	if code != exitUsage || !strings.Contains(stderr, "is not inside "+kube.Root) {
		t.Errorf("run directory outside the claim: exit %d, %s", code, stderr)
	}
	code, _, stderr = wflow(t, "run", module, "--engine", "kubernetes", "--k8s-volume-claim", kube.Claim, "--k8s-volume-root", kube.Root)
	if code != exitUsage || !strings.Contains(stderr, "without --rundir") {
		t.Errorf("no --rundir: exit %d, %s", code, stderr)
	}
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"--k8s-volume-root", "/nonexistent/root", "--rundir", "/nonexistent/root/r"}, exitUsage, "--k8s-volume-root /nonexistent/root is not a directory"},
		{[]string{"--k8s-volume-claim", "no-such-claim"}, exitUsage, "--k8s-volume-claim no-such-claim: no such PersistentVolumeClaim in namespace default"},
		{[]string{"--namespace", "no-such-namespace"}, exitNoEngine, "namespace no-such-namespace does not exist"},
		{[]string{"--namespace", "Bad_NS"}, exitNoEngine, `namespace "Bad_NS": not a namespace name`},
	} {
		flags, _ := kubeFlags(t, kube)
		code, _, stderr := wflow(t, append(append([]string{"run", module}, flags...), c.args...)...)
		if code != c.code || !strings.Contains(stderr, c.want) {
			t.Errorf("%v: exit %d, %s; want %d, %q", c.args, code, stderr, c.code, c.want)
		}
	}
	if _, err := os.Stat("/nonexistent/root"); err == nil {
		t.Error("wflow made the --k8s-volume-root that was not there")
	}
}

// TestKubernetesExamples runs the Go and C examples, unchanged, as Jobs on
// the simulated cluster. The fake node runs nothing: every pod's log is
// the one the test writes ("4"), every command exits 0, and no step writes
// a file, so the test writes the summary.txt that the Go example's last
// step would (the module reads it from the run directory). The Go
// example's two parallel steps each "count" 4, which reach the module from
// the pods' logs; the C example takes its "found" branch and reads 4 lines.
func TestKubernetesExamples(t *testing.T) {
	c := testenv.KubeSim(t, testenv.CLILogsNamespace)
	c.WriteLog(t, [2]string{"stdout", "4"})
	for _, ex := range []struct {
		name, module string
		steps        []string
		output       string
	}{
		{"go", testenv.GoGuest(t, "./examples/go-pipeline"), []string{"count-words", "count-lines", "summarize"},
			`{"lines":"4","summary":"words=4 lines=4","words":"4"}`},
		{"c", testenv.CGuest(t, "examples/c-branch/main.c"), []string{"check", "summarize"}, `{"branch":"found","lines":4}`},
	} {
		t.Run(ex.name, func(t *testing.T) {
			flags, rundir := kubeFlags(t, c)
			if err := os.WriteFile(filepath.Join(rundir, "summary.txt"), []byte("words=4 lines=4\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			code, stdout, stderr := wflow(t, append([]string{"run", ex.module, "--namespace", c.Namespace}, flags...)...)
			if code != exitOK {
				t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
			}
			r := readReport(t, rundir)
			var names []string
			for _, s := range r.Steps {
				names = append(names, s.Step)
			}
			slices.Sort(names)
			want := slices.Clone(ex.steps)
			slices.Sort(want)
			if r.Status != "succeeded" || r.Engine.Name != "kubernetes" || !slices.Equal(names, want) {
				t.Errorf("report: status %s, engine %s, steps %v", r.Status, r.Engine.Name, names)
			}
			if string(r.Output) != ex.output {
				t.Errorf("output %s, want %s", r.Output, ex.output)
			}
			kubeAssertGone(t, c, r.RunID)
		})
	}
}

// TestKubernetesNotebooks runs the notebook example, unchanged, on the
// simulated cluster with --notebook-registry: the Docker engine builds the
// notebook image, wflow pushes it to a registry (Debian's docker-registry
// on loopback), and each notebook step's Job runs it by digest from there.
// The fake node runs nothing, so the test writes the results the notebooks
// would write, which the module reads. Without the flag, a notebook step
// fails, saying what to do.
func TestKubernetesNotebooks(t *testing.T) {
	testenv.Python(t)
	c := testenv.KubeSim(t, "default")
	registry := testenv.Registry(t)
	module := testenv.GoGuest(t, "./examples/notebook-params")

	flags, rundir := kubeFlags(t, c)
	code, _, stderr := wflow(t, append(append([]string{"run", module}, flags...), testenv.NotebookFlags()...)...)
	if code != exitFailed {
		t.Errorf("without --notebook-registry: exit %d\n%s", code, stderr)
	}
	if r := readReport(t, rundir); len(r.Steps) != 1 || !strings.Contains(r.Steps[0].Error, "--notebook-registry") {
		t.Errorf("without --notebook-registry, the notebook step says: %+v", r.Steps)
	}

	flags, rundir = kubeFlags(t, c)
	if err := os.MkdirAll(filepath.Join(rundir, "results"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, label := range []string{"first", "second"} {
		os.WriteFile(filepath.Join(rundir, "results", label+".json"), []byte(`{"label":"`+label+`"}`), 0o644)
	}
	args := append(append([]string{"run", module, "--notebook-registry", registry + "/wflow"}, flags...), testenv.NotebookFlags()...)
	code, stdout, stderr := wflow(t, args...)
	if code != exitOK {
		t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
	}
	r := readReport(t, rundir)
	if len(r.Steps) != 2 {
		t.Fatalf("%d steps", len(r.Steps))
	}
	for _, s := range r.Steps {
		prefix := registry + "/wflow/wflow-notebook@sha256:"
		if !strings.HasPrefix(s.ImageID, prefix) {
			t.Errorf("step %s ran image id %q, want %s…", s.Step, s.ImageID, prefix)
			continue
		}
		t.Logf("step %s ran %s", s.Step, s.ImageID)
		digest := strings.TrimPrefix(s.ImageID, registry+"/wflow/wflow-notebook@")
		req, _ := http.NewRequest(http.MethodHead, "http://"+registry+"/v2/wflow/wflow-notebook/manifests/"+digest, nil)
		req.Header.Set("Accept", "application/vnd.docker.distribution.manifest.v2+json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Errorf("the registry does not have %s: %v %v", s.ImageID, resp, err)
		} else {
			resp.Body.Close()
		}
	}
	kubeAssertGone(t, c, r.RunID)
}

package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	k8s "k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/wflow/wflow/containers"
	"github.com/wflow/wflow/containers/kubernetes"
	"github.com/wflow/wflow/step"
)

// The simulated cluster of scripts/kube-sim.sh: its kubeconfig, and the
// claim of run directories with where wflow sees it.
const (
	kubeSimConfig = "/run/wflow-kube-sim/kubeconfig"
	kubeSimClaim  = "wflow-runs"
	kubeSimRoot   = "/var/lib/wflow-kube-sim/runs"
)

// kubernetesRows: the same sequential steps on the simulated Kubernetes
// cluster (a real control plane, a node faked by kwok whose pods end
// 100 ms after they start), next to the raw floor of a Job there and to
// wflow on docker; the note counts the API calls of a step, wflow's and
// the floor's.
func (e *env) kubernetesRows(reps int, onDocker stats) ([]row, error) {
	if _, err := os.Stat(kubeSimConfig); err != nil {
		fmt.Println("  kubernetes: no simulated cluster; left out (scripts/kube-sim.sh start)")
		return nil, nil
	}
	os.Setenv("KUBECONFIG", kubeSimConfig)
	run := func() (float64, error) {
		dir, err := os.MkdirTemp(kubeSimRoot, "bench-")
		if err != nil {
			return 0, err
		}
		defer os.RemoveAll(dir)
		d, _, _, err := e.wflowRun(e.mods["seq"], "-p", "n="+strconv.Itoa(engineSteps), "--engine", "kubernetes",
			"--k8s-volume-claim", kubeSimClaim, "--k8s-volume-root", kubeSimRoot, "--rundir", dir)
		return d / engineSteps, err
	}
	if _, err := run(); err != nil { // warm-up
		return nil, fmt.Errorf("wflow on kubernetes: %w", err)
	}
	var onKube, floor stats
	for i := 0; i < reps; i++ {
		d, err := run()
		if err != nil {
			return nil, fmt.Errorf("wflow on kubernetes: %w", err)
		}
		onKube = append(onKube, d)
	}
	config, err := clientcmd.BuildConfigFromFlags("", kubeSimConfig)
	if err != nil {
		return nil, err
	}
	var floorCalls atomic.Int64
	config.QPS, config.Burst = 100, 200
	config.Wrap(counting(&floorCalls))
	cs, err := k8s.NewForConfig(config)
	if err != nil {
		return nil, err
	}
	var phases kubePhases
	if err := kubeLoop(cs, 1, &phases); err != nil {
		return nil, fmt.Errorf("kubernetes floor: %w", err)
	}
	floorCalls.Store(0)
	for i := 0; i < reps; i++ {
		start := time.Now()
		if err := kubeLoop(cs, engineSteps, &phases); err != nil {
			return nil, fmt.Errorf("kubernetes floor: %w", err)
		}
		floor = append(floor, time.Since(start).Seconds()/engineSteps)
	}
	perFloor := float64(floorCalls.Load()) / float64(reps*engineSteps)
	perStep, err := engineCalls()
	if err != nil {
		return nil, err
	}
	r := row{Case: "a step on kubernetes (kwok node) vs its raw floor", Unit: "ms", Wflow: ms(onKube), Baseline: ms(floor),
		BaselineName: "Go loop: create Job, watch its pod to its end, log, delete Job and pod", Target: "-", Met: true}
	r.Note = fmt.Sprintf("API calls per one-command step: wflow's engine %.1f, the floor %.1f (a run adds %d access reviews, a dry run, a read of the claim, a NetworkPolicy and wflow gc's lists); %s",
		perStep, perFloor, kubeReviews(), phases)
	rows := []row{r}
	if onDocker != nil {
		rows = append(rows, row{Case: "a step on kubernetes (kwok node) vs on docker", Unit: "ms", Wflow: ms(onKube), Baseline: ms(onDocker),
			BaselineName: "wflow on docker", Target: "-", Met: true})
	}
	return rows, nil
}

// kubeReviews is how many access reviews the engine asks for before a run.
func kubeReviews() int {
	n := 0
	for _, p := range kubernetes.Permissions {
		n += len(p.Verbs)
	}
	return n
}

// counting is a transport wrapper that counts requests into n.
func counting(n *atomic.Int64) func(http.RoundTripper) http.RoundTripper {
	return func(rt http.RoundTripper) http.RoundTripper {
		return roundTripper(func(r *http.Request) (*http.Response, error) {
			n.Add(1)
			return rt.RoundTrip(r)
		})
	}
}

type roundTripper func(*http.Request) (*http.Response, error)

func (f roundTripper) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// engineCalls runs steps with the kubernetes engine in this process and
// returns the API calls of one, past the engine's start and the run's
// NetworkPolicy.
func engineCalls() (float64, error) {
	var calls atomic.Int64
	ctx := context.Background()
	e, err := kubernetes.New(ctx, kubernetes.Options{VolumeClaim: kubeSimClaim, VolumeRoot: kubeSimRoot, WrapTransport: counting(&calls)})
	if err != nil {
		return 0, err
	}
	defer e.Close()
	dir, err := os.MkdirTemp(kubeSimRoot, "bench-")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(dir)
	os.Mkdir(filepath.Join(dir, ".wflow"), 0o755)
	spec := containers.ContainerSpec{Image: image, Args: []string{"true"}, RunDir: dir, WorkDir: "/wflow", Records: ".wflow",
		Labels: map[string]string{containers.LabelRun: "bench-" + filepath.Base(dir), containers.LabelStep: "true"},
		Limits: step.Limits{Network: "none"}}
	if _, err := e.Run(ctx, spec, io.Discard, io.Discard); err != nil { // makes the run's NetworkPolicy
		return 0, err
	}
	calls.Store(0)
	for i := 0; i < engineSteps; i++ {
		if _, err := e.Run(ctx, spec, io.Discard, io.Discard); err != nil {
			return 0, err
		}
	}
	return float64(calls.Load()) / engineSteps, nil
}

// kubePhases adds up where the raw Kubernetes loop's time goes.
type kubePhases struct {
	n                                 int
	create, toEnd, logs, delete, gone time.Duration
}

func (p kubePhases) String() string {
	if p.n == 0 {
		return ""
	}
	avg := func(d time.Duration) string { return fmt.Sprintf("%.0f ms", float64(d.Milliseconds())/float64(p.n)) }
	return fmt.Sprintf("where a raw Job's time goes (mean of %d): create %s; until its container has ended (scheduling, kwok's 100 ms run) %s; log %s; delete Job and pod %s; until the pod is gone %s",
		p.n, avg(p.create), avg(p.toEnd), avg(p.logs), avg(p.delete), avg(p.gone))
}

// kubeLoop is the raw floor of a step on Kubernetes: a Job of one pod
// running true (with wflow's grace period of 1 s; no volume, no hardening), its pod watched (from before the Job) until its container
// has ended, its log read, the Job deleted (background) and its pod
// deleted and waited for.
func kubeLoop(cs k8s.Interface, n int, p *kubePhases) error {
	ctx := context.Background()
	ns := "default"
	for i := 0; i < n; i++ {
		b := make([]byte, 6)
		rand.Read(b)
		id := hex.EncodeToString(b)
		sel := metav1.ListOptions{LabelSelector: "bench=" + id}
		list, err := cs.CoreV1().Pods(ns).List(ctx, sel)
		if err != nil {
			return err
		}
		sel.ResourceVersion = list.ResourceVersion
		w, err := cs.CoreV1().Pods(ns).Watch(ctx, sel)
		if err != nil {
			return err
		}
		zero, grace, no := int32(0), int64(1), false // as wflow's
		job := &batchv1.Job{
			ObjectMeta: metav1.ObjectMeta{GenerateName: "wflow-bench-floor-", Labels: map[string]string{"bench": id}},
			Spec: batchv1.JobSpec{BackoffLimit: &zero, Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"bench": id}},
				Spec: corev1.PodSpec{RestartPolicy: corev1.RestartPolicyNever, TerminationGracePeriodSeconds: &grace, AutomountServiceAccountToken: &no,
					Volumes: []corev1.Volume{{Name: "rundir", VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: kubeSimClaim}}}},
					Containers: []corev1.Container{{Name: "step", Image: image, Args: []string{"true"}, Env: []corev1.EnvVar{{Name: "PATH", Value: "/bin"}},
						VolumeMounts: []corev1.VolumeMount{{Name: "rundir", MountPath: "/wflow", SubPath: "floor"}}}}},
			}},
		}
		t0 := time.Now()
		created, err := cs.BatchV1().Jobs(ns).Create(ctx, job, metav1.CreateOptions{})
		t1 := time.Now()
		if err != nil {
			w.Stop()
			return err
		}
		pod := ""
		for ev := range w.ResultChan() {
			p, ok := ev.Object.(*corev1.Pod)
			if !ok || ev.Type == watch.Deleted {
				continue
			}
			if len(p.Status.ContainerStatuses) > 0 && p.Status.ContainerStatuses[0].State.Terminated != nil {
				pod = p.Name
				break
			}
		}
		if pod == "" {
			return fmt.Errorf("the watch of Job %s ended", created.Name)
		}
		t2 := time.Now()
		rc, err := cs.CoreV1().Pods(ns).GetLogs(pod, &corev1.PodLogOptions{}).Stream(ctx)
		if err != nil {
			return err
		}
		io.Copy(&bytes.Buffer{}, rc)
		rc.Close()
		t3 := time.Now()
		bg := metav1.DeletePropagationBackground
		if err := cs.BatchV1().Jobs(ns).Delete(ctx, created.Name, metav1.DeleteOptions{PropagationPolicy: &bg}); err != nil {
			return err
		}
		if err := cs.CoreV1().Pods(ns).Delete(ctx, pod, metav1.DeleteOptions{}); err != nil {
			return err
		}
		t4 := time.Now()
		for ev := range w.ResultChan() {
			if ev.Type == watch.Deleted {
				break
			}
		}
		w.Stop()
		t5 := time.Now()
		p.n++
		p.create += t1.Sub(t0)
		p.toEnd += t2.Sub(t1)
		p.logs += t3.Sub(t2)
		p.delete += t4.Sub(t3)
		p.gone += t5.Sub(t4)
	}
	return nil
}

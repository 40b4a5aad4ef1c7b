package testenv

import (
	"context"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8s "k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

// Where scripts/kube-sim.sh keeps what tests need.
const (
	kubeSimState = "/run/wflow-kube-sim"
	kubeSimData  = "/var/lib/wflow-kube-sim"
)

// KubeCluster is the Kubernetes control plane of scripts/kube-sim.sh: a
// real API server, controller manager and scheduler, and one node faked by
// kwok, whose pods do what the WFLOW_KWOK_* variables of their environment
// say (the script's header lists them) and run nothing.
type KubeCluster struct {
	// Client is an administrator's client of the cluster.
	Client k8s.Interface
	// Kubeconfig is the administrator's kubeconfig, which KubeSim sets
	// as KUBECONFIG for the test.
	Kubeconfig string
	// Namespace has the claim Claim of the run directories, which wflow
	// sees at Root.
	Namespace, Claim, Root string
	// PodLog is the CRI-format log file of every pod of the namespace
	// (kwok serves it as each pod's log) when it is one of LogsNamespace
	// and CLILogsNamespace; "" for the others (their pods' log is empty).
	PodLog string
}

// The namespaces whose pods have a log of their own on the fake node: one
// for the engine's tests, one for the CLI's, which may run at the same
// time.
const (
	LogsNamespace    = "wflow-kwok-logs"
	CLILogsNamespace = "wflow-kwok-cli"
)

// KubeSim returns the simulated cluster with a claim of run directories
// in namespace (made, with its volume, when missing), and KUBECONFIG set
// for the test; it skips (fails in CI) when the simulation is not running
// (scripts/kube-sim.sh start).
func KubeSim(t testing.TB, namespace string) *KubeCluster {
	t.Helper()
	kubeconfig := filepath.Join(kubeSimState, "kubeconfig")
	if _, err := os.Stat(kubeconfig); err != nil {
		Missing(t, "no simulated Kubernetes cluster (scripts/kube-sim.sh start): %v", err)
	}
	config, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	cs, err := k8s.NewForConfig(config)
	if err != nil {
		t.Fatal(err)
	}
	c := &KubeCluster{Client: cs, Kubeconfig: kubeconfig, Namespace: namespace, Claim: "wflow-runs",
		Root: filepath.Join(kubeSimData, "runs")}
	switch namespace {
	case LogsNamespace:
		c.PodLog = filepath.Join(kubeSimState, "pod.log")
	case CLILogsNamespace:
		c.PodLog = filepath.Join(kubeSimState, "cli-pod.log")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if _, err := cs.Discovery().ServerVersion(); err != nil {
		Missing(t, "the simulated Kubernetes cluster does not answer (scripts/kube-sim.sh start): %v", err)
	}
	if namespace != "default" {
		c.Root = filepath.Join(kubeSimData, "runs-"+namespace)
		if err := c.claim(ctx); err != nil {
			t.Fatalf("claim in namespace %s: %v", namespace, err)
		}
	}
	if err := os.MkdirAll(c.Root, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("KUBECONFIG", kubeconfig)
	return c
}

// claim makes the namespace, a volume and its claim, and waits until the
// claim is bound.
func (c *KubeCluster) claim(ctx context.Context) error {
	_, err := c.Client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: c.Namespace}}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return err
	}
	pv := "wflow-kube-sim-runs-" + c.Namespace
	size := resource.MustParse("10Gi")
	_, err = c.Client.CoreV1().PersistentVolumes().Create(ctx, &corev1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{Name: pv},
		Spec: corev1.PersistentVolumeSpec{
			Capacity:                      corev1.ResourceList{corev1.ResourceStorage: size},
			AccessModes:                   []corev1.PersistentVolumeAccessMode{corev1.ReadWriteMany},
			PersistentVolumeReclaimPolicy: corev1.PersistentVolumeReclaimRetain,
			PersistentVolumeSource:        corev1.PersistentVolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: c.Root}},
			ClaimRef:                      &corev1.ObjectReference{Namespace: c.Namespace, Name: c.Claim},
		},
	}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return err
	}
	empty := ""
	_, err = c.Client.CoreV1().PersistentVolumeClaims(c.Namespace).Create(ctx, &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Name: c.Claim},
		Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes:      []corev1.PersistentVolumeAccessMode{corev1.ReadWriteMany},
			StorageClassName: &empty,
			VolumeName:       pv,
			Resources:        corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: size}},
		},
	}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return err
	}
	for {
		pvc, err := c.Client.CoreV1().PersistentVolumeClaims(c.Namespace).Get(ctx, c.Claim, metav1.GetOptions{})
		if err == nil && pvc.Status.Phase == corev1.ClaimBound {
			return nil
		}
		select {
		case <-time.After(200 * time.Millisecond):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// WriteLog makes lines the log of every pod of the namespace (one of
// LogsNamespace and CLILogsNamespace), in the CRI format a kubelet writes:
// each line "TIME STREAM F TEXT".
func (c *KubeCluster) WriteLog(t testing.TB, lines ...[2]string) {
	t.Helper()
	if c.PodLog == "" {
		t.Fatalf("the pods of namespace %s have no log of their own", c.Namespace)
	}
	var b strings.Builder
	now := time.Now().UTC()
	for i, l := range lines {
		b.WriteString(now.Add(time.Duration(i) * time.Millisecond).Format(time.RFC3339Nano))
		b.WriteString(" " + l[0] + " F " + l[1] + "\n")
	}
	if err := os.WriteFile(c.PodLog, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
}

// Objects lists the Jobs and pods in the namespace whose label key has
// value (every Job and pod of wflow with value "").
func (c *KubeCluster) Objects(t testing.TB, key, value string) []string {
	t.Helper()
	sel := key
	if value != "" {
		sel += "=" + value
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out []string
	jobs, err := c.Client.BatchV1().Jobs(c.Namespace).List(ctx, metav1.ListOptions{LabelSelector: sel})
	if err != nil {
		t.Fatal(err)
	}
	for _, j := range jobs.Items {
		out = append(out, "job/"+j.Name)
	}
	pods, err := c.Client.CoreV1().Pods(c.Namespace).List(ctx, metav1.ListOptions{LabelSelector: sel})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range pods.Items {
		out = append(out, "pod/"+p.Name)
	}
	return out
}

// Registry starts Debian's docker-registry (which scripts/swarm-sim.sh
// installs) on a free port of 127.0.0.1 for the test, with its storage in
// a temporary folder, and returns its host:port; it skips (fails in CI)
// when the program is missing. Docker pushes to a registry on loopback
// without TLS.
func Registry(t testing.TB) string {
	t.Helper()
	bin, err := exec.LookPath("docker-registry")
	if err != nil {
		Missing(t, "no docker-registry (apt-get install -y docker-registry): %v", err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	dir := t.TempDir()
	config := filepath.Join(dir, "config.yml")
	os.WriteFile(config, []byte("version: 0.1\nlog: {level: error}\nstorage:\n  filesystem: {rootdirectory: "+filepath.Join(dir, "data")+"}\nhttp:\n  addr: "+addr+"\n"), 0o644)
	cmd := exec.Command(bin, "serve", config)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if resp, err := http.Get("http://" + addr + "/v2/"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return addr
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("docker-registry did not answer at %s", addr)
		}
	}
}

// Package kubernetes is wflow's container engine on Kubernetes: each
// command a step runs is a Job of one pod (restartPolicy Never,
// backoffLimit 0: wflow owns retries), in one namespace, with the run
// directory a sub-path of a PersistentVolumeClaim that wflow sees too.
//
// What a Job needs that a container does not, and what it costs, is in
// docs/scale-out.md. In short:
//   - The pod is watched (one list and one watch per command): its
//     container's state gives the exit code and OOMKilled; the step's end
//     is not polled (the Job and its events are read only to explain a
//     pod that went wrong or never came).
//   - Output comes from the pods/log API, followed while the container
//     runs. Kubernetes keeps one log per container, stdout and stderr
//     interleaved: a step's stderr reaches wflow in its stdout, and its
//     stderr file stays empty.
//   - Kubernetes expands $(VAR) in a container's args and env values:
//     wflow escapes every $ so that a step gets its commands as written.
//   - A step without network carries a label that a NetworkPolicy of its
//     run selects and denies all traffic to and from; only a cluster whose
//     network plugin enforces NetworkPolicy isolates it.
//   - The cluster pulls images; wflow cannot look at a node's images, so
//     a missing image shows when its pod cannot start, and the image's id
//     wflow reports is the reference the step gave (a notebook image's is
//     its digest in the registry).
//   - Deletion is by background propagation, and the pod is deleted too
//     and waited for, so that nothing of a step is left when Run returns.
//   - Notebook images are built by a Docker engine on wflow's machine,
//     pushed to the registry of Options.NotebookRegistry, and run by
//     digest; without one, notebook steps fail with ErrNoBuilds.
package kubernetes

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/wflow/wflow/containers"
	"github.com/wflow/wflow/containers/docker"
)

// Timeouts of control calls, as in containers/docker.
const (
	controlTimeout = 60 * time.Second
	cleanupTimeout = 30 * time.Second
	// unschedulable is how long a step's pod may wait for a node, or its
	// Job for a pod, before the step fails with the reason the cluster
	// gives: long enough for a cluster autoscaler to add a node.
	unschedulable = 3 * time.Minute
)

// ErrUnavailable is wrapped by New when the cluster cannot be reached or
// wflow is not allowed to run Jobs there.
var ErrUnavailable = errors.New("kubernetes is not available")

// Options say where the engine runs steps.
type Options struct {
	// Namespace of the Jobs; "" means the kubeconfig context's (in a pod,
	// its own), else "default".
	Namespace string
	// VolumeClaim names the PersistentVolumeClaim that holds run
	// directories (--k8s-volume-claim); required to run steps.
	VolumeClaim string
	// VolumeRoot is where this process sees the claim's root
	// (--k8s-volume-root): a run directory must be inside it, and is
	// mounted into a step as the sub-path it has there.
	VolumeRoot string
	// NotebookRegistry (--notebook-registry HOST[:PORT][/PATH]) is where
	// notebook images go: built by the Docker engine of DOCKER_HOST,
	// pushed there, and run by digest. "" means notebook steps cannot run.
	NotebookRegistry string
	// WrapTransport, when set, wraps the client's HTTP transport (the
	// bench counts API calls with it).
	WrapTransport func(http.RoundTripper) http.RoundTripper
}

// Engine runs wflow's containers as Kubernetes Jobs. It implements
// containers.Engine, containers.Lister and what else engines.Engine asks.
type Engine struct {
	api       *api
	config    *rest.Config
	namespace string
	opts      Options

	mu    sync.Mutex
	pulls map[string]containers.PullPolicy // image ref → the policy the runner gave EnsureImage

	// builder builds notebook images and pushes them to the registry
	// (Options.NotebookRegistry); nil without one.
	builder *docker.Engine
	built   map[string]bool   // notebook image tags the builder has
	pushed  map[string]string // notebook image tag → registry repo@digest
	pushMu  sync.Mutex        // held while an image is pushed

	policyMu sync.Mutex        // held while a run's NetworkPolicy is made
	policies map[string]string // run id → its NetworkPolicy's name
}

// New connects to the cluster of the kubeconfig ($KUBECONFIG, else
// ~/.kube/config), or the one it runs in, and checks that it may run and
// watch Jobs in the namespace. When it cannot, the error wraps
// ErrUnavailable and says what is missing.
func New(ctx context.Context, opts Options) (*Engine, error) {
	loader := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(clientcmd.NewDefaultClientConfigLoadingRules(), &clientcmd.ConfigOverrides{})
	config, err := loader.ClientConfig()
	if clientcmd.IsEmptyConfig(err) {
		return nil, fmt.Errorf("%w: no cluster to talk to: no kubeconfig ($KUBECONFIG, ~/.kube/config), and wflow does not run in a pod", ErrUnavailable)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: the kubeconfig: %v", ErrUnavailable, err)
	}
	if opts.Namespace == "" {
		if opts.Namespace, _, err = loader.Namespace(); err != nil || opts.Namespace == "" {
			opts.Namespace = "default"
		}
	}
	if !namespacePattern.MatchString(opts.Namespace) {
		return nil, fmt.Errorf("namespace %q: not a namespace name (lower-case letters, digits and -, at most 63)", opts.Namespace)
	}
	if opts.VolumeRoot != "" {
		if opts.VolumeRoot, err = filepath.Abs(opts.VolumeRoot); err != nil {
			return nil, err
		}
	}
	config = rest.CopyConfig(config)
	config.UserAgent = "wflow"
	// The API server's warnings (a pod the namespace's Pod Security level
	// would refuse, say) would reach the console as klog lines; wflow says
	// what matters in the step's result.
	config.WarningHandler = rest.NoWarnings{}
	// A run of many steps at once must not wait on client-go's default
	// client-side rate limit (5 requests a second).
	config.QPS, config.Burst = 100, 200
	if opts.WrapTransport != nil {
		config.Wrap(opts.WrapTransport)
	}
	a, err := newAPI(config)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	e := &Engine{api: a, config: config, namespace: opts.Namespace, opts: opts, policies: map[string]string{}, pulls: map[string]containers.PullPolicy{},
		built: map[string]bool{}, pushed: map[string]string{}}
	if opts.NotebookRegistry != "" {
		if err := checkRegistry(opts.NotebookRegistry); err != nil {
			return nil, err
		}
		if e.builder, err = docker.Connect(ctx, "", "is dockerd running? With --notebook-registry, the Docker engine of DOCKER_HOST builds notebook images"); err != nil {
			return nil, err
		}
	}
	vctx, cancel := context.WithTimeout(ctx, controlTimeout)
	defer cancel()
	if _, err := e.serverVersion(vctx); err != nil {
		e.Close()
		return nil, fmt.Errorf("%w: the API server at %s does not answer: %v", ErrUnavailable, config.Host, err)
	}
	if err := e.checkAccess(vctx); err != nil {
		e.Close()
		return nil, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	return e, nil
}

// Namespace is the namespace of the engine's Jobs.
func (e *Engine) Namespace() string { return e.namespace }

// Info names the engine "kubernetes", with the API server's version, and
// says where steps are isolated less than with the Docker engine.
func (e *Engine) Info(ctx context.Context) containers.EngineInfo {
	info := containers.EngineInfo{Name: "kubernetes", API: "batch/v1", Host: e.config.Host + " namespace " + e.namespace}
	vctx, cancel := context.WithTimeout(ctx, controlTimeout)
	defer cancel()
	if v, err := e.serverVersion(vctx); err == nil {
		info.Version = v
	}
	info.Gaps = []string{
		"a step without network is isolated by a NetworkPolicy that denies all its traffic: only a cluster whose network plugin enforces NetworkPolicy keeps it from the network",
		"the processes of a step cannot be limited per pod (the kubelet's podPidsLimit is the node's)",
		"the swap of a step cannot be limited: on a node with swap (LimitedSwap), a step with a memory limit and no CPU limit may swap",
	}
	return info
}

// serverVersion asks the API server its version (GET /version), within
// ctx (the discovery client's own call takes no context).
func (e *Engine) serverVersion(ctx context.Context) (string, error) {
	raw, err := e.api.core.Get().AbsPath("/version").Do(ctx).Raw()
	if err != nil {
		return "", err
	}
	var v struct {
		GitVersion string `json:"gitVersion"`
	}
	if err := json.Unmarshal(raw, &v); err != nil {
		return "", fmt.Errorf("/version: %w", err)
	}
	return v.GitVersion, nil
}

// Close deletes the NetworkPolicies this engine made for its runs.
func (e *Engine) Close() error {
	e.policyMu.Lock()
	names := e.policies
	e.policies = map[string]string{}
	e.policyMu.Unlock()
	var errs []error
	for _, name := range names {
		errs = append(errs, e.deletePolicy(context.Background(), name))
	}
	if e.builder != nil {
		errs = append(errs, e.builder.Close())
	}
	return errors.Join(errs...)
}

// EnsureImage implements containers.Engine. The images are the nodes',
// which wflow cannot list: it remembers the pull policy the runner gave
// for the image (PullNever when the run may not pull it) and returns the
// reference as the image's id. A missing image shows when its pod cannot
// start.
func (e *Engine) EnsureImage(ctx context.Context, ref string, pull containers.PullPolicy) (string, error) {
	if pushed, ok, err := e.pushNotebook(ctx, ref); ok || err != nil {
		return pushed, err
	}
	e.mu.Lock()
	e.pulls[ref] = pull
	e.mu.Unlock()
	return ref, nil
}

// pullPolicy is the pod's image pull policy for ref, from what the runner
// last gave EnsureImage for it (a run gives one image the same policy
// every time: it depends on the reference and the run's flags): Never
// when the run may not pull it, or when EnsureImage was not asked.
func (e *Engine) pullPolicy(ref string) corev1.PullPolicy {
	e.mu.Lock()
	pull, known := e.pulls[ref]
	e.mu.Unlock()
	switch {
	case !known || pull == containers.PullNever:
		return corev1.PullNever
	case pull == containers.PullAlways:
		return corev1.PullAlways
	default:
		return corev1.PullIfNotPresent
	}
}

// Run implements containers.Engine: create the Job, follow its pod's log
// while it runs, wait for its container to end, and delete the Job and
// its pod on every path, even when ctx is cancelled.
func (e *Engine) Run(ctx context.Context, spec containers.ContainerSpec, stdout, stderr io.Writer) (exit containers.Exit, err error) {
	exit.Code = 1 // until the container tells
	if e.opts.VolumeClaim == "" {
		return exit, errors.New("the kubernetes engine needs the volume claim that holds run directories (--k8s-volume-claim, docs/scale-out.md)")
	}
	if !isolated(spec.Network) && spec.Network != "bridge" {
		return exit, fmt.Errorf("network %q: on the kubernetes engine a step has network none or bridge (the cluster's pod network)", spec.Network)
	}
	if isolated(spec.Network) {
		if err := e.isolate(ctx, spec.Labels[containers.LabelRun]); err != nil {
			return exit, err
		}
	}
	id := newID()
	e.mu.Lock()
	if pushed, ok := e.pushed[spec.Image]; ok {
		spec.Image = pushed // a notebook image, by digest in the registry
	}
	e.mu.Unlock()
	job, err := e.jobSpec(spec, id, e.pullPolicy(spec.Image))
	if err != nil {
		return exit, err
	}
	w, err := e.watchPod(ctx, id)
	if err != nil {
		return exit, err
	}
	defer w.stop()
	// Created under a context the run's cancellation does not reach (as in
	// the Docker engine): a create cut short may still make the Job.
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), controlTimeout)
	created := &batchv1.Job{}
	err = e.api.jobs(e.namespace).create(cctx, job, created)
	cancel()
	if err != nil {
		// The server may have made it (a create whose answer was lost):
		// whatever carries this Job's id goes.
		return exit, containers.NotRemoved(fmt.Errorf("create Job: %w", explain(err)), e.deleteByID(ctx, id, w))
	}
	defer func() { err = containers.NotRemoved(err, e.deleteJob(ctx, created.Name, id, w)) }()
	if ctx.Err() != nil {
		return exit, ctx.Err()
	}
	logs := &follower{e: e, out: stdout, errw: stderr}
	defer logs.stop()
	pod, state, err := w.untilEnded(ctx, created, logs.start)
	if err != nil {
		return exit, err
	}
	exit.Code = int(state.ExitCode)
	exit.OOMKilled = state.Reason == "OOMKilled"
	// The container has ended: its last output is read even when the
	// step's time is up meanwhile, within a bound of its own. The step's
	// end is known: a log that cannot be read again costs output, not
	// the result, and the step's stderr says so.
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
	if err := logs.finish(rctx, pod); err != nil {
		fmt.Fprintf(stderr, "wflow: %v: the end of the step's output may be missing\n", err)
	}
	cancel()
	return exit, nil
}

// deleteJob deletes a step's Job (background propagation: the Job goes at
// once) and its pod, under a fresh context, and waits until the pod is
// gone. Not found is success.
func (e *Engine) deleteJob(ctx context.Context, name, id string, w *podWatch) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
	defer cancel()
	background := metav1.DeletePropagationBackground
	err := e.api.jobs(e.namespace).delete(ctx, name, metav1.DeleteOptions{PropagationPolicy: &background})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("delete Job %s: %w", name, explain(err))
	}
	// The garbage collector would delete the pod too, later: deleting it
	// here ends a cancelled step now.
	for _, pod := range w.names() {
		err := e.api.pods(e.namespace).delete(ctx, pod, metav1.DeleteOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("delete pod %s: %w", pod, explain(err))
		}
	}
	if err := w.untilGone(ctx); err != nil {
		return fmt.Errorf("the pod of Job %s is still there: %w", name, err)
	}
	return nil
}

// deleteByID deletes the Jobs labelled with id (at most the one a create
// whose answer was lost made) and their pods.
func (e *Engine) deleteByID(ctx context.Context, id string, w *podWatch) error {
	lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
	defer cancel()
	jobs := &batchv1.JobList{}
	err := e.api.jobs(e.namespace).list(lctx, metav1.ListOptions{LabelSelector: labelJob + "=" + id}, jobs)
	if err != nil {
		return fmt.Errorf("list the Job a failed create may have made: %w", explain(err))
	}
	for _, j := range jobs.Items {
		if err := e.deleteJob(ctx, j.Name, id, w); err != nil {
			return err
		}
	}
	return nil
}

// podState reads the step container's state from a pod.
func podState(pod *corev1.Pod) (corev1.ContainerState, bool) {
	for _, s := range pod.Status.ContainerStatuses {
		if s.Name == containerName {
			return s.State, true
		}
	}
	return corev1.ContainerState{}, false
}

// explain adds to an API error what wflow was missing, when the cluster
// refused it: the RBAC Role wflow needs is in docs/scale-out.md.
func explain(err error) error {
	if apierrors.IsForbidden(err) {
		return fmt.Errorf("%w (the Role wflow needs is in docs/scale-out.md)", err)
	}
	return err
}

// jobFailure describes why a Job failed without its pod saying so (its
// deadline passed, the cluster refused to make its pod), from its
// conditions; "" when it did not.
func jobFailure(job *batchv1.Job) string {
	for _, c := range job.Status.Conditions {
		if (c.Type == batchv1.JobFailed || c.Type == batchv1.JobFailureTarget) && c.Status == corev1.ConditionTrue {
			return strings.TrimSpace(c.Reason + ": " + c.Message)
		}
	}
	return ""
}

// newID returns a random id for a Job's label.
func newID() string {
	b := make([]byte, 8)
	rand.Read(b)
	return hex.EncodeToString(b)
}

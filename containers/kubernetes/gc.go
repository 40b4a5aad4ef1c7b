package kubernetes

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"regexp"
	"strings"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/wflow/wflow/containers"
	"github.com/wflow/wflow/step"
)

// Kinds of what List returns, as the prefix of its ids.
const (
	kindJob    = "job/"
	kindPod    = "pod/"
	kindPolicy = "networkpolicy/"
)

// List returns the Jobs, the pods whose Job is gone, and the runs'
// NetworkPolicies that carry label key, with their annotations as labels
// (the values as wflow gave them); each id says which it is. It
// implements containers.Lister, for wflow gc.
func (e *Engine) List(ctx context.Context, key string) ([]containers.Labelled, error) {
	ctx, cancel := context.WithTimeout(ctx, controlTimeout)
	defer cancel()
	opts := metav1.ListOptions{LabelSelector: key}
	jobs := &batchv1.JobList{}
	if err := e.api.jobs(e.namespace).list(ctx, opts, jobs); err != nil {
		return nil, fmt.Errorf("list Jobs: %w", explain(err))
	}
	var out []containers.Labelled
	live := map[string]bool{}
	for _, j := range jobs.Items {
		live[j.Labels[labelJob]] = true
		out = append(out, containers.Labelled{ID: kindJob + j.Name, Kind: "kubernetes Job", Labels: trueLabels(j.Labels, j.Annotations)})
	}
	pods := &corev1.PodList{}
	if err := e.api.pods(e.namespace).list(ctx, opts, pods); err != nil {
		return nil, fmt.Errorf("list pods: %w", explain(err))
	}
	for _, p := range pods.Items {
		if !live[p.Labels[labelJob]] && p.DeletionTimestamp == nil {
			out = append(out, containers.Labelled{ID: kindPod + p.Name, Kind: "kubernetes pod", Labels: trueLabels(p.Labels, p.Annotations)})
		}
	}
	policies := &networkingv1.NetworkPolicyList{}
	if err := e.api.networkPolicies(e.namespace).list(ctx, opts, policies); err != nil {
		return nil, fmt.Errorf("list NetworkPolicies: %w", explain(err))
	}
	for _, p := range policies.Items {
		out = append(out, containers.Labelled{ID: kindPolicy + p.Name, Kind: "kubernetes NetworkPolicy", Labels: trueLabels(p.Labels, p.Annotations)})
	}
	return out, nil
}

// trueLabels returns labels with the values of wflow's own labels taken
// from the annotations of the same names (a label value is cut to fit).
func trueLabels(labels, annotations map[string]string) map[string]string {
	out := maps.Clone(labels)
	if out == nil {
		out = map[string]string{}
	}
	for k, v := range annotations {
		if strings.HasPrefix(k, "io.wflow.") {
			out[k] = v
		}
	}
	return out
}

// Remove deletes what List returned, and waits for a Job's pods to go; it
// implements containers.Lister.
func (e *Engine) Remove(ctx context.Context, id string) error {
	switch {
	case strings.HasPrefix(id, kindJob):
		name := strings.TrimPrefix(id, kindJob)
		job := &batchv1.Job{}
		err := e.api.jobs(e.namespace).get(ctx, name, job)
		if apierrors.IsNotFound(err) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("get Job %s: %w", name, explain(err))
		}
		w, err := e.watchPod(ctx, job.Labels[labelJob])
		if err != nil {
			return err
		}
		defer w.stop()
		return e.deleteJob(ctx, name, job.Labels[labelJob], w)
	case strings.HasPrefix(id, kindPod):
		name := strings.TrimPrefix(id, kindPod)
		err := e.api.pods(e.namespace).delete(ctx, name, metav1.DeleteOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("delete pod %s: %w", name, explain(err))
		}
		return nil
	case strings.HasPrefix(id, kindPolicy):
		return e.deletePolicy(ctx, strings.TrimPrefix(id, kindPolicy))
	}
	return fmt.Errorf("%s: not something the kubernetes engine made", id)
}

// Labelled lists the Jobs and pods whose label key has value (made to fit
// a label, as Run makes it); the conformance checks use it.
func (e *Engine) Labelled(ctx context.Context, key, value string) ([]string, error) {
	sel := key
	if value != "" {
		sel += "=" + labelValue(value)
	}
	opts := metav1.ListOptions{LabelSelector: sel}
	jobs, pods := &batchv1.JobList{}, &corev1.PodList{}
	if err := e.api.jobs(e.namespace).list(ctx, opts, jobs); err != nil {
		return nil, err
	}
	if err := e.api.pods(e.namespace).list(ctx, opts, pods); err != nil {
		return nil, err
	}
	var ids []string
	for _, j := range jobs.Items {
		ids = append(ids, kindJob+j.Name)
	}
	for _, p := range pods.Items {
		ids = append(ids, kindPod+p.Name)
	}
	return ids, nil
}

// isolate makes, on first use, the NetworkPolicy of a run: every pod of
// the run labelled labelNetwork=none gets no traffic in or out.
func (e *Engine) isolate(ctx context.Context, run string) error {
	if run == "" {
		return errors.New("a step without network needs its run's id (label " + containers.LabelRun + ") to be isolated with its run")
	}
	e.policyMu.Lock()
	defer e.policyMu.Unlock()
	if _, ok := e.policies[run]; ok {
		return nil
	}
	labels := map[string]string{containers.LabelRun: labelValue(run), labelManagedBy: managedBy}
	annotations := map[string]string{containers.LabelRun: run}
	for k, v := range containers.ProcessLabels() {
		labels[k] = labelValue(v)
		annotations[k] = v
	}
	policy := &networkingv1.NetworkPolicy{
		ObjectMeta: metav1.ObjectMeta{GenerateName: "wflow-" + dnsLabel(run, 40) + "-", Namespace: e.namespace, Labels: labels, Annotations: annotations},
		Spec: networkingv1.NetworkPolicySpec{
			PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{containers.LabelRun: labelValue(run), labelNetwork: "none"}},
			PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress, networkingv1.PolicyTypeEgress},
		},
	}
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), controlTimeout)
	defer cancel()
	created := &networkingv1.NetworkPolicy{}
	if err := e.api.networkPolicies(e.namespace).create(cctx, policy, created); err != nil {
		return fmt.Errorf("create the run's NetworkPolicy: %w", explain(err))
	}
	e.policies[run] = created.Name
	return nil
}

// deletePolicy deletes a run's NetworkPolicy; not found is success.
func (e *Engine) deletePolicy(ctx context.Context, name string) error {
	ctx, cancel := context.WithTimeout(ctx, cleanupTimeout)
	defer cancel()
	err := e.api.networkPolicies(e.namespace).delete(ctx, name, metav1.DeleteOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("delete NetworkPolicy %s: %w", name, explain(err))
	}
	return nil
}

// ErrNoBuilds is returned by what builds or lists images without
// --notebook-registry: a cluster runs images, it does not build them.
var ErrNoBuilds = errors.New("the kubernetes engine builds notebook images only with --notebook-registry (the Docker engine of DOCKER_HOST builds them and pushes them there; docs/scale-out.md)")

// ImageExists implements notebooks.Engine: whether the builder has the
// image (ErrNoBuilds without one).
func (e *Engine) ImageExists(ctx context.Context, ref string) (bool, error) {
	if e.builder == nil {
		return false, ErrNoBuilds
	}
	ok, err := e.builder.ImageExists(ctx, ref)
	if ok && err == nil {
		// Only the images wflow built for notebook steps are ever
		// pushed (named wflow-notebook:<the hash their label holds>): not
		// the base images the notebook runner looks for, nor an image
		// built from one (labels are inherited).
		if info, err := e.builder.Client().ImageInspect(ctx, ref); err == nil && info.Config != nil {
			if hash := info.Config.Labels[containers.LabelNotebook]; hash != "" && ref == containers.NotebookImagePrefix+":"+hash {
				e.mu.Lock()
				e.built[ref] = true
				e.mu.Unlock()
			}
		}
	}
	return ok, err
}

// ImageID implements notebooks.Engine: the builder's id of the image.
func (e *Engine) ImageID(ctx context.Context, ref string) (string, error) {
	if e.builder == nil {
		return "", ErrNoBuilds
	}
	return e.builder.ImageID(ctx, ref)
}

// BuildImage implements notebooks.Engine: the builder builds the image;
// EnsureImage pushes it when a step asks for it.
func (e *Engine) BuildImage(ctx context.Context, tag string, buildContext io.Reader, labels map[string]string, limits step.Limits, log io.Writer) error {
	if e.builder == nil {
		return ErrNoBuilds
	}
	if err := e.builder.BuildImage(ctx, tag, buildContext, labels, limits, log); err != nil {
		return err
	}
	if hash := labels[containers.LabelNotebook]; hash != "" && tag == containers.NotebookImagePrefix+":"+hash {
		e.mu.Lock()
		e.built[tag] = true
		e.mu.Unlock()
	}
	return nil
}

// pushNotebook pushes a notebook image the builder has (one BuildImage
// made, or ImageExists found, carrying containers.LabelNotebook) to the
// registry, once per process, and returns it by digest there; ok is false
// for any other image.
func (e *Engine) pushNotebook(ctx context.Context, ref string) (pushed string, ok bool, err error) {
	if e.builder == nil {
		return "", false, nil
	}
	// One push per image at a time: the steps of a notebook that runs
	// twice at once wait for the first.
	e.pushMu.Lock()
	defer e.pushMu.Unlock()
	e.mu.Lock()
	pushed, done := e.pushed[ref]
	built := e.built[ref]
	e.mu.Unlock()
	switch {
	case done:
		return pushed, true, nil
	case !built:
		return "", false, nil
	}
	pctx, cancel := context.WithTimeout(ctx, pushTimeout)
	defer cancel()
	pushed, err = e.builder.Push(pctx, ref, strings.TrimSuffix(e.opts.NotebookRegistry, "/")+"/"+containers.NotebookImagePrefix)
	if err != nil {
		return "", true, fmt.Errorf("%w: %v (--notebook-registry)", containers.ErrImageUnavailable, err)
	}
	e.mu.Lock()
	e.pushed[ref] = pushed
	e.pulls[pushed] = containers.PullMissing // by digest: nothing else can come of it
	e.mu.Unlock()
	return pushed, true, nil
}

// pushTimeout bounds the push of one notebook image.
const pushTimeout = 10 * time.Minute

var registryPattern = regexp.MustCompile(`^([A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+(:[0-9]+)?|[A-Za-z0-9-]+:[0-9]+|localhost)(/[a-z0-9]+([._-][a-z0-9]+)*)*$`)

// checkRegistry refuses a --notebook-registry that is not HOST[:PORT][/PATH]
// with a host Docker takes for a registry (a dot, a port, or localhost):
// "myreg/x" would be pushed to Docker Hub's namespace myreg.
func checkRegistry(r string) error {
	if !registryPattern.MatchString(r) || strings.HasPrefix(r, "docker.io") || strings.HasPrefix(r, "index.docker.io") {
		return fmt.Errorf("--notebook-registry %q: give HOST[:PORT][/PATH] of a registry of your own, like registry.example:5000/wflow or localhost:5000 (no scheme, no tag, not Docker Hub)", r)
	}
	return nil
}

// PruneImages implements what wflow gc --images needs: the kubernetes
// engine keeps no images (the builder's are the Docker engine's, the
// registry's the registry's to expire).
func (e *Engine) PruneImages(ctx context.Context, key string) ([]string, error) {
	return nil, errors.New("the kubernetes engine keeps no images: notebook images are the local Docker engine's (wflow gc --images --engine docker) and the registry's")
}

package kubernetes

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/wflow/wflow/containers"
)

// Labels wflow puts on its Jobs and pods besides containers' own (whose
// values, made to fit a label, are selectors only: the true values are in
// the annotations of the same names).
const (
	// labelJob is unique to one Job and its pod: Run watches its pod with it.
	labelJob = "io.wflow.job"
	// labelNetwork is "none" on the pods of a step without network, the
	// ones the run's NetworkPolicy isolates.
	labelNetwork = "io.wflow.network"
	// labelManagedBy is Kubernetes' recommended label naming the tool.
	labelManagedBy = "app.kubernetes.io/managed-by"
	managedBy      = "wflow"
)

// containerName is the name of a step's container in its pod.
const containerName = "step"

// Safety nets of a Job for when wflow is gone: the cluster ends a step
// deadlineGrace after its timeout, and deletes a finished Job after ttl.
var deadlineGrace = 30 * time.Second

const ttl = 10 * time.Minute

// tmpSize is the size of the /tmp of a step with a read-only root, as in
// the Docker engine.
const tmpSize = 64 << 20

// jobSpec maps a ContainerSpec to a Job of one pod, never restarted nor
// retried (wflow owns retries), hardened as the Docker engine hardens a
// container where Kubernetes can (no capabilities, no privilege
// escalation, the runtime's seccomp profile, no service account token, no
// service links), with the step's limits as requests and limits, the run
// directory as a sub-path of the claim and the records read-only, and
// wflow's labels. id is unique to this Job (labelJob); pull is the image
// pull policy.
func (e *Engine) jobSpec(spec containers.ContainerSpec, id string, pull corev1.PullPolicy) (*batchv1.Job, error) {
	sub, err := e.subPath(spec.RunDir)
	if err != nil {
		return nil, err
	}
	security, podSecurity, err := securityContexts(spec)
	if err != nil {
		return nil, err
	}
	resources, err := resourcesOf(spec)
	if err != nil {
		return nil, err
	}
	env := make([]corev1.EnvVar, 0, len(spec.Env))
	for _, kv := range spec.Env {
		k, v, _ := strings.Cut(kv, "=")
		env = append(env, corev1.EnvVar{Name: k, Value: literal(v)})
	}
	args := make([]string, len(spec.Args))
	for i, a := range spec.Args {
		args[i] = literal(a)
	}
	mounts := []corev1.VolumeMount{{Name: "rundir", MountPath: spec.WorkDir, SubPath: sub}}
	if spec.Records != "" {
		mounts = append(mounts, corev1.VolumeMount{Name: "rundir", MountPath: path.Join(spec.WorkDir, filepath.ToSlash(spec.Records)),
			SubPath: path.Join(sub, filepath.ToSlash(spec.Records)), ReadOnly: true})
	}
	volumes := []corev1.Volume{{Name: "rundir", VolumeSource: corev1.VolumeSource{
		PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: e.opts.VolumeClaim}}}}
	if spec.ReadOnly {
		size := resource.NewQuantity(tmpSize, resource.BinarySI)
		volumes = append(volumes, corev1.Volume{Name: "tmp", VolumeSource: corev1.VolumeSource{
			EmptyDir: &corev1.EmptyDirVolumeSource{Medium: corev1.StorageMediumMemory, SizeLimit: size}}})
		mounts = append(mounts, corev1.VolumeMount{Name: "tmp", MountPath: "/tmp"})
	}
	labels, annotations := e.metadata(spec, id)
	job := &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{
			GenerateName: "wflow-" + dnsLabel(spec.Labels[containers.LabelStep], 40) + "-",
			Namespace:    e.namespace,
			Labels:       labels,
			Annotations:  annotations,
		},
		Spec: batchv1.JobSpec{
			BackoffLimit:            ptr(int32(0)),
			TTLSecondsAfterFinished: ptr(int32(ttl / time.Second)),
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels, Annotations: annotations},
				Spec: corev1.PodSpec{
					RestartPolicy:                 corev1.RestartPolicyNever,
					AutomountServiceAccountToken:  ptr(false),
					EnableServiceLinks:            ptr(false),
					TerminationGracePeriodSeconds: ptr(int64(1)),
					SecurityContext:               podSecurity,
					Volumes:                       volumes,
					Containers: []corev1.Container{{
						Name:            containerName,
						Image:           spec.Image,
						ImagePullPolicy: pull,
						Args:            args,
						Env:             env,
						WorkingDir:      spec.WorkDir,
						VolumeMounts:    mounts,
						Resources:       resources,
						SecurityContext: security,
					}},
				},
			},
		},
	}
	if spec.Timeout > 0 {
		job.Spec.ActiveDeadlineSeconds = ptr(int64(math.Ceil((time.Duration(spec.Timeout) + deadlineGrace).Seconds())))
	}
	return job, nil
}

// CheckRunDir fails when the run directory could not be the steps' own:
// the claim's root as wflow sees it (Options.VolumeRoot) is not an
// existing directory, the run directory is not inside it, or the claim is
// not in the namespace.
func (e *Engine) CheckRunDir(ctx context.Context, runDir string) error {
	if e.opts.VolumeClaim == "" {
		return errors.New("the kubernetes engine needs the volume claim that holds run directories (--k8s-volume-claim, docs/scale-out.md)")
	}
	if fi, err := os.Stat(e.opts.VolumeRoot); err != nil || !fi.IsDir() {
		return fmt.Errorf("--k8s-volume-root %s is not a directory: it must be where this machine sees the volume claim %s (docs/scale-out.md)", e.opts.VolumeRoot, e.opts.VolumeClaim)
	}
	if _, err := e.subPath(runDir); err != nil {
		return err
	}
	cctx, cancel := context.WithTimeout(ctx, controlTimeout)
	defer cancel()
	err := e.api.claims(e.namespace).get(cctx, e.opts.VolumeClaim, &corev1.PersistentVolumeClaim{})
	if apierrors.IsNotFound(err) {
		return fmt.Errorf("--k8s-volume-claim %s: no such PersistentVolumeClaim in namespace %s", e.opts.VolumeClaim, e.namespace)
	}
	if err != nil {
		return fmt.Errorf("--k8s-volume-claim %s: %w", e.opts.VolumeClaim, explain(err))
	}
	return nil
}

// subPath returns the run directory's path in the claim: relative to
// VolumeRoot, where this process sees the claim's root.
func (e *Engine) subPath(runDir string) (string, error) {
	rel, err := filepath.Rel(e.opts.VolumeRoot, runDir)
	if err != nil || rel == "." || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) || filepath.IsAbs(rel) {
		return "", fmt.Errorf("the run directory %s is not inside %s, where wflow sees the volume claim %s (--k8s-volume-root): steps could not see it", runDir, e.opts.VolumeRoot, e.opts.VolumeClaim)
	}
	return filepath.ToSlash(rel), nil
}

// securityContexts returns the step container's and its pod's security
// contexts. Kubernetes takes a numeric user only: the pod's runAsUser and
// runAsGroup.
func securityContexts(spec containers.ContainerSpec) (*corev1.SecurityContext, *corev1.PodSecurityContext, error) {
	c := &corev1.SecurityContext{
		Privileged:               ptr(false),
		AllowPrivilegeEscalation: ptr(false),
		Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
		ReadOnlyRootFilesystem:   ptr(spec.ReadOnly),
		SeccompProfile:           &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
	}
	pod := &corev1.PodSecurityContext{}
	if spec.User == "" {
		return c, pod, nil
	}
	uid, gid, hasGroup := strings.Cut(spec.User, ":")
	u, err := strconv.ParseInt(uid, 10, 64)
	if err != nil || u < 0 {
		return nil, nil, fmt.Errorf("user %q: the kubernetes engine runs a step as a numeric uid[:gid] only (a pod cannot name a user of its image)", spec.User)
	}
	pod.RunAsUser = &u
	// A namespace that enforces the restricted Pod Security Standard
	// admits a pod that says it runs as non-root.
	pod.RunAsNonRoot = ptr(u != 0)
	if hasGroup {
		g, err := strconv.ParseInt(gid, 10, 64)
		if err != nil || g < 0 {
			return nil, nil, fmt.Errorf("user %q: the kubernetes engine runs a step as a numeric uid[:gid] only", spec.User)
		}
		pod.RunAsGroup = &g
	}
	return c, pod, nil
}

// resourcesOf returns the step's CPU and memory as its container's
// requests and limits, equal, so that the scheduler places it where they
// fit and the node holds it to them.
func resourcesOf(spec containers.ContainerSpec) (corev1.ResourceRequirements, error) {
	r := corev1.ResourceRequirements{}
	list := corev1.ResourceList{}
	if spec.CPUs > 0 {
		list[corev1.ResourceCPU] = *resource.NewMilliQuantity(int64(math.Ceil(spec.CPUs*1000)), resource.DecimalSI)
	}
	if spec.Memory > 0 {
		list[corev1.ResourceMemory] = *resource.NewQuantity(spec.Memory, resource.BinarySI)
	}
	if len(list) > 0 {
		r.Limits, r.Requests = list, list.DeepCopy()
	}
	return r, nil
}

// metadata returns the labels and annotations of a step's Job and pod.
// containers' labels are annotations, with their values as given, and
// labels, with their values made to fit (selectors only); the Job's own
// label makes its pod easy to watch.
func (e *Engine) metadata(spec containers.ContainerSpec, id string) (labels, annotations map[string]string) {
	labels = map[string]string{labelJob: id, labelManagedBy: managedBy}
	annotations = map[string]string{}
	for k, v := range spec.Labels {
		labels[k] = labelValue(v)
		annotations[k] = v
	}
	if isolated(spec.Network) {
		labels[labelNetwork] = "none"
	}
	return labels, annotations
}

// isolated reports whether a step asks for no network.
func isolated(network string) bool {
	return network == "" || network == "none"
}

// literal escapes s from Kubernetes' expansion of $(VAR) references in a
// container's args and env values: every $ doubled reads back as one $,
// so the step gets s exactly as wflow gave it.
func literal(s string) string {
	return strings.ReplaceAll(s, "$", "$$")
}

var notLabelChar = regexp.MustCompile(`[^A-Za-z0-9._-]`)

// labelValue makes s a valid label value: at most 63 characters of
// A-Z a-z 0-9 - _ ., beginning and ending with a letter or digit.
func labelValue(s string) string {
	s = notLabelChar.ReplaceAllString(s, "_")
	if len(s) > 63 {
		s = s[:63]
	}
	return strings.Trim(s, "._-")
}

var notDNSChar = regexp.MustCompile(`[^a-z0-9-]+`)

// dnsLabel makes s a part of a DNS-1123 name: lower-case letters, digits
// and -, at most max long, "step" when nothing is left.
func dnsLabel(s string, max int) string {
	s = notDNSChar.ReplaceAllString(strings.ToLower(s), "-")
	if len(s) > max {
		s = s[:max]
	}
	s = strings.Trim(s, "-")
	if s == "" {
		return "step"
	}
	return s
}

func ptr[T any](v T) *T { return &v }

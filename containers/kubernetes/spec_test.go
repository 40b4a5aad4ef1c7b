package kubernetes_test

import (
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/wflow/wflow/containers"
	"github.com/wflow/wflow/containers/kubernetes"
	"github.com/wflow/wflow/step"
)

func specFor(root string) containers.ContainerSpec {
	return containers.ContainerSpec{
		Image:   "registry.example/tool:1",
		Args:    []string{"sh", "-c", "echo $(HOME) $$ ${X}"},
		Env:     []string{"A=1", "B=$(A) and $$"},
		RunDir:  root + "/runs/r1",
		WorkDir: "/wflow",
		Records: ".wflow",
		Labels: map[string]string{
			containers.LabelRun:  "r1",
			containers.LabelStep: "A step named with spaces/and slashes and much too long to be a label value at all, really",
			containers.LabelPID:  "42",
		},
		Limits: step.Limits{Timeout: step.Duration(90 * time.Second), CPUs: 1.5, Memory: 256 << 20, Network: "none", ReadOnly: true, User: "1000:100"},
	}
}

// TestJobSpec: a step's Job is one pod, never restarted nor retried,
// hardened, with its limits, its run directory's sub-path of the claim and
// the records read-only, its commands exactly as given (Kubernetes would
// expand $(VAR)), and wflow's labels (cut to fit) and annotations (whole).
func TestJobSpec(t *testing.T) {
	e := kubernetes.ForSpecs("ns", kubernetes.Options{VolumeClaim: "claim", VolumeRoot: "/data"})
	job, err := e.JobSpec(specFor("/data"), "abc", corev1.PullNever)
	if err != nil {
		t.Fatal(err)
	}
	js, pod := job.Spec, job.Spec.Template.Spec
	c := pod.Containers[0]
	checks := []struct {
		what      string
		got, want any
	}{
		{"namespace", job.Namespace, "ns"},
		{"backoffLimit", *js.BackoffLimit, int32(0)},
		{"activeDeadlineSeconds", *js.ActiveDeadlineSeconds, int64(120)},
		{"ttlSecondsAfterFinished", *js.TTLSecondsAfterFinished, int32(600)},
		{"restartPolicy", pod.RestartPolicy, corev1.RestartPolicyNever},
		{"automountServiceAccountToken", *pod.AutomountServiceAccountToken, false},
		{"enableServiceLinks", *pod.EnableServiceLinks, false},
		{"runAsUser", *pod.SecurityContext.RunAsUser, int64(1000)},
		{"runAsGroup", *pod.SecurityContext.RunAsGroup, int64(100)},
		{"image", c.Image, "registry.example/tool:1"},
		{"imagePullPolicy", c.ImagePullPolicy, corev1.PullNever},
		{"command", len(c.Command), 0},
		{"args", strings.Join(c.Args, "|"), "sh|-c|echo $$(HOME) $$$$ $${X}"},
		{"env", c.Env[1].Name + "=" + c.Env[1].Value, "B=$$(A) and $$$$"},
		{"workingDir", c.WorkingDir, "/wflow"},
		{"allowPrivilegeEscalation", *c.SecurityContext.AllowPrivilegeEscalation, false},
		{"privileged", *c.SecurityContext.Privileged, false},
		{"capabilities", c.SecurityContext.Capabilities.Drop, []corev1.Capability{"ALL"}},
		{"readOnlyRootFilesystem", *c.SecurityContext.ReadOnlyRootFilesystem, true},
		{"seccomp", c.SecurityContext.SeccompProfile.Type, corev1.SeccompProfileTypeRuntimeDefault},
		{"cpu limit", c.Resources.Limits.Cpu().String(), "1500m"},
		{"cpu request", c.Resources.Requests.Cpu().String(), "1500m"},
		{"memory limit", c.Resources.Limits.Memory().Value(), int64(256 << 20)},
		{"claim", pod.Volumes[0].PersistentVolumeClaim.ClaimName, "claim"},
		{"run dir mount", c.VolumeMounts[0].MountPath + " " + c.VolumeMounts[0].SubPath, "/wflow runs/r1"},
		{"records mount", c.VolumeMounts[1].MountPath + " " + c.VolumeMounts[1].SubPath, "/wflow/.wflow runs/r1/.wflow"},
		{"records read-only", c.VolumeMounts[1].ReadOnly, true},
		{"tmp", c.VolumeMounts[2].MountPath + " " + string(pod.Volumes[1].EmptyDir.Medium), "/tmp Memory"},
		{"network label", job.Spec.Template.Labels["io.wflow.network"], "none"},
		{"job label", job.Spec.Template.Labels["io.wflow.job"], "abc"},
		{"step annotation", job.Annotations[containers.LabelStep], specFor("/data").Labels[containers.LabelStep]},
	}
	for _, c := range checks {
		if !equal(c.got, c.want) {
			t.Errorf("%s: %v, want %v", c.what, c.got, c.want)
		}
	}
	if v := job.Labels[containers.LabelStep]; len(v) > 63 || strings.ContainsAny(v, " /") {
		t.Errorf("step label %q is not a label value", v)
	}
	if !strings.HasPrefix(job.GenerateName, "wflow-a-step-named-with-spaces") || len(job.GenerateName) > 50 {
		t.Errorf("generateName %q", job.GenerateName)
	}
}

func equal(a, b any) bool {
	as, aok := a.([]corev1.Capability)
	bs, bok := b.([]corev1.Capability)
	if aok && bok {
		return len(as) == len(bs) && (len(as) == 0 || as[0] == bs[0])
	}
	return a == b
}

// TestJobSpecRefuses: a user name (a pod takes only numbers) and a run
// directory outside the claim's root are refused, saying why.
func TestJobSpecRefuses(t *testing.T) {
	e := kubernetes.ForSpecs("ns", kubernetes.Options{VolumeClaim: "claim", VolumeRoot: "/data"})
	s := specFor("/data")
	s.User = "postgres"
	if _, err := e.JobSpec(s, "x", corev1.PullNever); err == nil || !strings.Contains(err.Error(), "numeric uid") {
		t.Errorf("user name: %v", err)
	}
	for _, dir := range []string{"/elsewhere/r1", "/data", "/data/../etc", "/datarun"} {
		s := specFor("/data")
		s.RunDir = dir
		if _, err := e.JobSpec(s, "x", corev1.PullNever); err == nil || !strings.Contains(err.Error(), "--k8s-volume-root") {
			t.Errorf("run dir %s: %v", dir, err)
		}
	}
}

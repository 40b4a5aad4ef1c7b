package main

import (
	"fmt"

	"github.com/spf13/pflag"

	"github.com/wflow/wflow/containers/engines"
)

// engineUsage is the part of the help of --engine that lists the engines.
const engineUsage = "docker, podman, swarm or kubernetes"

// addKubernetesFlags adds the flags of the kubernetes engine to fs: the
// namespace, and, when run is set (wflow run), the volume claim of the run
// directories and where wflow sees it.
func addKubernetesFlags(fs *pflag.FlagSet, o *engines.Options, run bool) {
	fs.StringVar(&o.Kubernetes.Namespace, "namespace", "", "kubernetes engine: namespace of the steps' Jobs (default: the kubeconfig context's, else default)")
	if run {
		fs.StringVar(&o.Kubernetes.VolumeClaim, "k8s-volume-claim", "", "kubernetes engine: `NAME` of the PersistentVolumeClaim that holds run directories; every step mounts its run's sub-path")
		fs.StringVar(&o.Kubernetes.VolumeRoot, "k8s-volume-root", "", "kubernetes engine: `DIR` where wflow sees that claim's root; --rundir must be inside it (docs/scale-out.md)")
		fs.StringVar(&o.Kubernetes.NotebookRegistry, "notebook-registry", "", "kubernetes engine: registry `HOST[:PORT][/PATH]` notebook images are pushed to, built by the Docker engine of DOCKER_HOST; steps run them by digest")
	}
}

// checkEngineOptions refuses the kubernetes engine's flags with another
// engine, and, for wflow run (run set), the kubernetes engine without its
// volume claim.
func checkEngineOptions(name string, o engines.Options, run bool) error {
	k := o.Kubernetes
	if name != "kubernetes" {
		for flag, v := range map[string]string{"--namespace": k.Namespace, "--k8s-volume-claim": k.VolumeClaim, "--k8s-volume-root": k.VolumeRoot, "--notebook-registry": k.NotebookRegistry} {
			if v != "" {
				return fmt.Errorf("%s: only with --engine kubernetes (the engine is %s)", flag, name)
			}
		}
		return nil
	}
	if run && (k.VolumeClaim == "" || k.VolumeRoot == "") {
		return fmt.Errorf("--engine kubernetes needs --k8s-volume-claim NAME and --k8s-volume-root DIR: the claim holds the run directory, which wflow sees at DIR (docs/scale-out.md)")
	}
	return nil
}

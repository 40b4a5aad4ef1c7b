//go:build tools

// Package tools pins the Kubernetes control plane that scripts/kube-sim.sh
// builds for wflow's Kubernetes tests: kube-apiserver,
// kube-controller-manager and kube-scheduler of k8s.io/kubernetes, whose
// staging modules go.mod replaces with their releases of the same version.
package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
)

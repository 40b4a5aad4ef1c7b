//go:build tools

// Package tools pins kwok, which fakes a Kubernetes node (its pods' life
// cycle and kubelet API) for scripts/kube-sim.sh.
package tools

import _ "sigs.k8s.io/kwok/cmd/kwok"

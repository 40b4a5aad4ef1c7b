package podman_test

import (
	"testing"

	"github.com/wflow/wflow/containers/enginetest"
	"github.com/wflow/wflow/internal/testenv"
)

// TestConformance runs the engine conformance suite against the Podman
// engine, on Podman's API service.
func TestConformance(t *testing.T) {
	e := testenv.Podman(t)
	h := enginetest.Harness{
		Engine:   e,
		Image:    testenv.BusyboxImage,
		Missing:  "wflow-test/never-built:conformance",
		Labelled: e.Labelled,
		Isolated: true,
	}
	if !e.ReportsOOM() {
		h.Gaps.OOMReported = "Podman on a cgroup v1 host does not see OOM kills (conmon)"
	}
	enginetest.Run(t, h)
}

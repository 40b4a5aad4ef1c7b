package docker_test

import (
	"testing"

	"github.com/wflow/wflow/containers/enginetest"
	"github.com/wflow/wflow/internal/testenv"
)

// TestConformance runs the engine conformance suite against the Docker
// engine.
func TestConformance(t *testing.T) {
	e := testenv.Docker(t)
	enginetest.Run(t, enginetest.Harness{
		Engine:   e,
		Image:    testenv.BusyboxImage,
		Missing:  "wflow-test/never-built:conformance",
		Labelled: e.Labelled,
		Isolated: true,
	})
}

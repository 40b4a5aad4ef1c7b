package fakeengine_test

import (
	"testing"

	"github.com/wflow/wflow/containers/enginetest"
	"github.com/wflow/wflow/containers/fakeengine"
)

// TestConformance runs the engine conformance suite's common checks against
// the fake engine, so that tests built on it can trust what it does.
func TestConformance(t *testing.T) {
	e := fakeengine.New("fake/sh")
	enginetest.Run(t, enginetest.Harness{Engine: e, Image: "fake/sh", Missing: "fake/missing", Labelled: e.Labelled})
}

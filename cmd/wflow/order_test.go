package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/wflow/wflow/internal/testenv"
)

// TestStepsStartInSubmissionOrder: with fewer slots than steps, steps start
// in the order the module submitted them (docs/abi.md, step_submit).
func TestStepsStartInSubmissionOrder(t *testing.T) {
	testenv.Docker(t)
	guest := testenv.GoGuest(t, "./bench/guests/par")
	code, stdout, stderr := wflow(t, "run", guest, "--rundir", t.TempDir(), "-p", "n=8", "--parallel", "1", "--json")
	if code != exitOK {
		t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
	}
	var started []uint32
	for _, line := range strings.Split(stdout, "\n") {
		var ev struct {
			Event  string `json:"event"`
			Handle uint32 `json:"handle"`
		}
		if json.Unmarshal([]byte(line), &ev) == nil && ev.Event == "step_started" {
			started = append(started, ev.Handle)
		}
	}
	if len(started) != 8 {
		t.Fatalf("%d steps started, want 8\n%s", len(started), stdout)
	}
	for i, h := range started {
		if h != uint32(i+1) {
			t.Fatalf("start order %v, want 1..8", started)
		}
	}
}

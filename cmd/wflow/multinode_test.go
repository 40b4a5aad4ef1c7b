package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/swarm"

	"github.com/wflow/wflow/containers"
	"github.com/wflow/wflow/internal/testenv"
)

// TestSwarmAcrossNodes runs workflows on the 3-node swarm simulated by
// scripts/swarm-sim.sh (a manager and two workers, each its own engine and
// network stack, one shared file system, one registry): what a single-node
// swarm cannot show.
func TestSwarmAcrossNodes(t *testing.T) {
	sim := testenv.SwarmSim(t)
	left := func(t *testing.T, run string) {
		t.Helper()
		// The manager removes jobs and the run's network; each node's agent
		// removes its own task containers, a little later.
		e := testenv.Swarm(t)
		all, err := e.List(t.Context(), containers.LabelRun)
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range all {
			if l.Labels[containers.LabelRun] == run {
				t.Errorf("the manager keeps %s of the run", l.ID)
			}
		}
		// A removed job's tasks would stay in the managers' store for good
		// on Docker before 24 (moby#42789): the engine's one-shot services
		// leave none.
		if tasks := sim.Tasks(t, containers.LabelRun, run, 30*time.Second); len(tasks) > 0 {
			t.Errorf("the swarm keeps %d task(s) of the run: %v", len(tasks), tasks)
		}
		for i, ids := range sim.Left(t, containers.LabelRun, run, 30*time.Second) {
			if len(ids) > 0 {
				t.Errorf("node %d keeps containers of the run: %v", i+1, ids)
			}
		}
	}

	// The Go example, unchanged, with its image from the registry: its
	// steps may run on any node (they name the image by digest), and what
	// one step writes in the run directory on one node, the next reads on
	// another.
	t.Run("example", func(t *testing.T) {
		module := testenv.GoGuest(t, "./examples/go-pipeline")
		rundir := t.TempDir()
		code, stdout, stderr := wflow(t, "run", module, "--rundir", rundir, "--engine", "swarm",
			"-p", "image="+sim.Image, "--allow-registry", sim.Registry)
		if code != exitOK {
			t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
		}
		r := readReport(t, rundir)
		if string(r.Output) != `{"lines":"3","summary":"words=4 lines=3","words":"4"}` {
			t.Errorf("output %s", r.Output)
		}
		if b, _ := os.ReadFile(filepath.Join(rundir, "summary.txt")); string(b) != "words=4 lines=3\n" {
			t.Errorf("summary.txt = %q", b)
		}
		for _, s := range r.Steps {
			if !strings.HasPrefix(s.ImageID, "sha256:") {
				t.Errorf("step %s: image digest %q", s.Step, s.ImageID)
			}
		}
		left(t, r.RunID)
	})

	// Six steps at once, their image in the registry: the swarm spreads
	// them over its nodes, the workers pulling the image by digest.
	t.Run("spread", func(t *testing.T) {
		module := testenv.GoGuest(t, "./testdata/guests/group")
		rundir := t.TempDir()
		since := time.Now()
		code, stdout, stderr := wflow(t, "run", module, "--rundir", rundir, "--engine", "swarm", "--parallel", "6",
			"-p", "n=6", "-p", "image="+sim.Image, "--allow-registry", sim.Registry)
		if code != exitOK {
			t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
		}
		r := readReport(t, rundir)
		var out struct {
			OK         int  `json:"ok"`
			Overlapped bool `json:"overlapped"`
		}
		if err := json.Unmarshal(r.Output, &out); err != nil || out.OK != 6 {
			t.Fatalf("output %s", r.Output)
		}
		started := sim.Started(t, since, containers.LabelRun, r.RunID)
		t.Logf("containers started per node: %v", started)
		nodes, total := 0, 0
		for _, n := range started {
			total += n
			if n > 0 {
				nodes++
			}
		}
		if total != 6 || nodes < 2 {
			t.Errorf("6 steps started %d containers on %d node(s) (%v), want 6 on more than one", total, nodes, started)
		}
		left(t, r.RunID)
	})

	// An image of the manager alone (loaded there, in no registry): every
	// step is pinned to the manager, so none lands on a node without it.
	t.Run("local image", func(t *testing.T) {
		module := testenv.GoGuest(t, "./testdata/guests/group")
		rundir := t.TempDir()
		since := time.Now()
		code, stdout, stderr := wflow(t, "run", module, "--rundir", rundir, "--engine", "swarm", "--parallel", "4", "-p", "n=4")
		if code != exitOK {
			t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
		}
		r := readReport(t, rundir)
		if started := sim.Started(t, since, containers.LabelRun, r.RunID); started[0] != 4 || started[1]+started[2] != 0 {
			t.Errorf("containers started per node: %v, want all 4 on the manager", started)
		}
		left(t, r.RunID)
	})

	// A worker cut off while it runs a step: the manager holds it down
	// after missing its heartbeats, and the step fails saying so instead of
	// waiting out its timeout. Back on the network, the worker's agent
	// removes the container of the job wflow removed.
	t.Run("node lost", func(t *testing.T) {
		module := testenv.GoGuest(t, "./testdata/guests/rawspecs")
		sim.Availability(t, 0, swarm.NodeAvailabilityPause)
		sim.Availability(t, 1, swarm.NodeAvailabilityPause)
		rundir := t.TempDir()
		specs := `[{"name":"far","image":"` + sim.Image + `","commands":["echo started; sleep 300"],"timeout":"240s"}]`
		type result struct {
			code           int
			stdout, stderr string
		}
		done := make(chan result, 1)
		go func() {
			code, stdout, stderr := wflow(t, "run", module, "--rundir", rundir, "--engine", "swarm",
				"-p", "fn=step", "-p", "specs="+specs, "--allow-registry", sim.Registry)
			done <- result{code, stdout, stderr}
		}()
		// Wait for the step's container to run on the third node.
		deadline := time.Now().Add(60 * time.Second)
		for running := false; !running; {
			if time.Now().After(deadline) {
				t.Fatal("the step's container never ran on node 3")
			}
			for _, c := range sim.Left(t, containers.LabelStep, "far", 0)[2] {
				running = running || strings.HasSuffix(c, " running")
			}
			time.Sleep(200 * time.Millisecond)
		}
		cut := time.Now()
		heal := sim.Partition(t, 2)
		var res result
		select {
		case res = <-done:
		case <-time.After(90 * time.Second):
			t.Fatal("the run did not end within 90 s of its node going down")
		}
		t.Logf("the run ended %s after the node was cut off", time.Since(cut).Round(time.Second))
		r := readReport(t, rundir)
		if len(r.Steps) != 1 || r.Steps[0].ReturnCode == 0 || !strings.Contains(r.Steps[0].Error, "is down") {
			t.Fatalf("exit %d, steps %+v\n%s\n%s", res.code, r.Steps, res.stdout, res.stderr)
		}
		if strings.Contains(r.Steps[0].ErrorKind, "timeout") {
			t.Errorf("the step waited out its timeout: %+v", r.Steps[0])
		}
		// Heal now (Partition's cleanup heals again, harmlessly) and see
		// the node's agent clean up.
		heal()
		left(t, r.RunID)
	})
}

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

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
	// steps name the image by digest, so they may run on any node (its two
	// steps at once land on two), and the last reads in the run directory
	// what the first two wrote, wherever they ran.
	t.Run("example", func(t *testing.T) {
		module := testenv.GoGuest(t, "./examples/go-pipeline")
		rundir := t.TempDir()
		since := time.Now()
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
		started := sim.Started(t, since, containers.LabelRun, r.RunID)
		t.Logf("3 steps, started on the nodes %d, %d and %d times", len(started[0]), len(started[1]), len(started[2]))
		nodes := 0
		for _, images := range started {
			if len(images) > 0 {
				nodes++
			}
			for _, image := range images {
				if !strings.HasPrefix(image, sim.Image+"@sha256:") {
					t.Errorf("a step's container runs image %q, want %s by digest", image, sim.Image)
				}
			}
		}
		if nodes < 2 {
			t.Errorf("the steps ran on %d node(s), want 2 or more: %v", nodes, started)
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
		nodes, total := 0, 0
		for _, images := range started {
			total += len(images)
			if len(images) > 0 {
				nodes++
			}
		}
		t.Logf("6 steps, started on the nodes %d, %d and %d times", len(started[0]), len(started[1]), len(started[2]))
		if total != 6 || nodes < 2 {
			t.Errorf("6 steps started %d containers on %d node(s) (%v), want 6 on more than one", total, nodes, started)
		}
		left(t, r.RunID)
	})

	// An image of the manager alone (loaded there, in no registry): the
	// steps name it by id and are pinned to the manager, the one node sure
	// to have it.
	t.Run("local image", func(t *testing.T) {
		module := testenv.GoGuest(t, "./testdata/guests/group")
		rundir := t.TempDir()
		since := time.Now()
		code, stdout, stderr := wflow(t, "run", module, "--rundir", rundir, "--engine", "swarm", "--parallel", "4", "-p", "n=4")
		if code != exitOK {
			t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
		}
		r := readReport(t, rundir)
		if started := sim.Started(t, since, containers.LabelRun, r.RunID); len(started[0]) != 4 || len(started[1])+len(started[2]) != 0 {
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
		sim.Pause(t, 0)
		sim.Pause(t, 1)
		rundir := t.TempDir()
		specs := `[{"name":"far","image":"` + sim.Image + `","commands":["echo started; sleep 300"],"timeout":"240s"}]`
		type result struct {
			code           int
			stdout, stderr string
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan result, 1)
		go func() {
			var stdout, stderr bytes.Buffer
			code := run(ctx, []string{"run", module, "--rundir", rundir, "--engine", "swarm",
				"-p", "fn=step", "-p", "specs=" + specs, "--allow-registry", sim.Registry}, &stdout, &stderr)
			done <- result{code, stdout.String(), stderr.String()}
		}()
		// Whatever happens below, the run ends before the test does.
		t.Cleanup(func() {
			cancel()
			select {
			case <-done:
			case <-time.After(60 * time.Second):
				t.Error("the run did not end within 60 s of its cancellation")
			}
		})
		// Wait for the step's container (labelled with this process's
		// pid) to run on the third node.
		pid := strconv.Itoa(os.Getpid())
		deadline := time.Now().Add(60 * time.Second)
		for running := false; !running; {
			if time.Now().After(deadline) {
				t.Fatal("the step's container never ran on node 3")
			}
			for _, c := range sim.Left(t, containers.LabelPID, pid, 0)[2] {
				running = running || strings.HasSuffix(c, " running")
			}
			time.Sleep(200 * time.Millisecond)
		}
		cut := time.Now()
		heal := sim.Partition(t, 2)
		var res result
		select {
		case res = <-done:
			done <- res // for the cleanup
		case <-time.After(90 * time.Second):
			t.Fatal("the run did not end within 90 s of its node going down")
		}
		t.Logf("the run ended %s after the node was cut off", time.Since(cut).Round(time.Second))
		r := readReport(t, rundir)
		if len(r.Steps) != 1 || r.Steps[0].ReturnCode == 0 || !strings.Contains(r.Steps[0].Error, "wflsim-n3") || !strings.Contains(r.Steps[0].Error, " is down") {
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

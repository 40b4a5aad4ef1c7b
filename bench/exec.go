package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/client"
	"github.com/docker/docker/pkg/stdcopy"
)

// jobContainer: 20 commands run with exec in one job container (a
// service), next to 20 containers of `docker run --rm`, a `docker exec`
// loop, and the raw client's exec loop.
func (e *env) jobContainer(reps int) ([]row, error) {
	const n = 20
	if _, _, _, err := e.wflowRun(e.mods["exec"]); err != nil { // warm the cache
		return nil, err
	}
	var w, run, cliExec, raw stats
	runLoop := fmt.Sprintf("for i in $(seq %d); do docker run --rm --network none %s true >/dev/null; done", n, image)
	execLoop := fmt.Sprintf("c=$(docker run -d --network none %s sleep 86400) && for i in $(seq %d); do docker exec $c true; done; docker rm -f $c >/dev/null", image, n)
	for i := 0; i < reps; i++ {
		d, _, _, err := e.wflowRun(e.mods["exec"])
		if err != nil {
			return nil, err
		}
		w = append(w, d)
		if d, _, err = timeCmd(e.dir, io.Discard, "sh", "-c", runLoop); err != nil {
			return nil, err
		}
		run = append(run, d)
		if d, _, err = timeCmd(e.dir, io.Discard, "sh", "-c", execLoop); err != nil {
			return nil, err
		}
		cliExec = append(cliExec, d)
		start := time.Now()
		if err := rawExecLoop(e.cli, n); err != nil {
			return nil, err
		}
		raw = append(raw, time.Since(start).Seconds())
	}
	const what = "20 commands with exec in a job container"
	r1 := row{Case: what + " vs a `docker run --rm` loop", Unit: "s", Wflow: w, Baseline: run, BaselineName: "shell loop of `docker run --rm`", Target: "≤ 0.30"}
	r1.Met = r1.ratio() <= 0.30
	r2 := row{Case: what + " vs a `docker exec` loop", Unit: "s", Wflow: w, Baseline: cliExec, BaselineName: "`docker run -d`, a `docker exec` loop, `docker rm -f`", Target: "≤ 1.00"}
	r2.Met = r2.ratio() <= 1.00
	r3 := row{Case: what + " vs raw client calls", Unit: "s", Wflow: w, Baseline: raw, BaselineName: "Go: create, start; per command exec create, attach, inspect; remove", Target: "≤ 1.50"}
	r3.Met = r3.ratio() <= 1.50
	r1.Note = "wflow's time includes starting the module and the job container, its run network, and stopping it; each exec's output goes to files and the console as a step's does"
	return []row{r1, r2, r3}, nil
}

// rawExecLoop is the raw-client floor of n commands in one container.
func rawExecLoop(cli *client.Client, n int) error {
	ctx := context.Background()
	c, err := cli.ContainerCreate(ctx, &container.Config{Image: image, Cmd: []string{"sleep", "86400"}},
		&container.HostConfig{NetworkMode: "none"}, nil, nil, "")
	if err != nil {
		return err
	}
	defer cli.ContainerRemove(ctx, c.ID, container.RemoveOptions{Force: true})
	if err := cli.ContainerStart(ctx, c.ID, container.StartOptions{}); err != nil {
		return err
	}
	for i := 0; i < n; i++ {
		x, err := cli.ContainerExecCreate(ctx, c.ID, container.ExecOptions{Cmd: []string{"true"}, AttachStdout: true, AttachStderr: true})
		if err != nil {
			return err
		}
		att, err := cli.ContainerExecAttach(ctx, x.ID, container.ExecAttachOptions{})
		if err != nil {
			return err
		}
		stdcopy.StdCopy(io.Discard, io.Discard, att.Reader)
		att.Close()
		info, err := cli.ContainerExecInspect(ctx, x.ID)
		if err != nil {
			return err
		}
		if info.ExitCode != 0 {
			return fmt.Errorf("exec exited %d", info.ExitCode)
		}
	}
	return nil
}

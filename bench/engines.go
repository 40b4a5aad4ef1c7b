package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/swarm"
	"github.com/docker/docker/client"
	"github.com/docker/docker/pkg/stdcopy"

	"github.com/wflow/wflow/containers/podman"
)

// engineSteps is how many one-command steps the engines case runs in a row.
const engineSteps = 10

// engines: the same sequential steps on docker, podman, swarm and the
// simulated Kubernetes cluster, each
// next to its own raw floor (the least a Go program calling that engine's
// API does per step), and podman and swarm next to docker. An engine that
// is not there is left out of the table, saying so.
func (e *env) engines(reps int) (rows []row, err error) {
	args := []string{"-p", "n=" + strconv.Itoa(engineSteps)}
	perStep := func(s stats) stats {
		out := make(stats, len(s))
		for i, v := range s {
			out[i] = v / engineSteps
		}
		return out
	}
	timed := func(engine string) (stats, error) {
		a := append([]string{"--engine", engine}, args...)
		if _, _, _, err := e.wflowRun(e.mods["seq"], a...); err != nil { // warm-up
			return nil, fmt.Errorf("wflow on %s: %w", engine, err)
		}
		var s stats
		for i := 0; i < reps; i++ {
			d, _, _, err := e.wflowRun(e.mods["seq"], a...)
			if err != nil {
				return nil, fmt.Errorf("wflow on %s: %w", engine, err)
			}
			s = append(s, d)
		}
		return perStep(s), nil
	}
	floor := func(loop func(int) error) (stats, error) {
		if err := loop(1); err != nil {
			return nil, err
		}
		var s stats
		for i := 0; i < reps; i++ {
			start := time.Now()
			if err := loop(engineSteps); err != nil {
				return nil, err
			}
			s = append(s, time.Since(start).Seconds())
		}
		return perStep(s), nil
	}

	onDocker, err := timed("docker")
	if err != nil {
		return nil, err
	}
	dockerFloor, err := floor(func(n int) error { return rawLoopOn(e.cli, n) })
	if err != nil {
		return nil, err
	}
	rows = append(rows, row{Case: "a step on docker vs its raw floor", Unit: "ms", Wflow: ms(onDocker), Baseline: ms(dockerFloor),
		BaselineName: "Go loop: create, start, wait, logs, remove", Target: "-", Met: true})

	if os.Getenv("CONTAINER_HOST") == "" {
		os.Setenv("CONTAINER_HOST", "unix:///run/podman/podman.sock")
	}
	host, _ := podman.Socket()
	pcli, err := client.NewClientWithOpts(client.WithHost(host), client.WithAPIVersionNegotiation())
	if err != nil {
		return nil, err
	}
	defer pcli.Close()
	{
		if _, perr := pcli.Ping(context.Background()); perr == nil {
			onPodman, err := timed("podman")
			if err != nil {
				return nil, err
			}
			podmanFloor, err := floor(func(n int) error { return rawLoopOn(pcli, n) })
			if err != nil {
				return nil, err
			}
			rows = append(rows,
				row{Case: "a step on podman vs its raw floor", Unit: "ms", Wflow: ms(onPodman), Baseline: ms(podmanFloor),
					BaselineName: "the same Go loop on Podman's socket", Target: "-", Met: true},
				row{Case: "a step on podman vs on docker", Unit: "ms", Wflow: ms(onPodman), Baseline: ms(onDocker),
					BaselineName: "wflow on docker", Target: "-", Met: true})
		} else {
			fmt.Println("  podman: no service answers; left out (scripts/podman-service.sh start)")
		}
	}

	kube, err := e.kubernetesRows(reps, onDocker)
	if err != nil {
		return nil, err
	}
	defer func() { rows = append(rows, kube...) }() // last in the table, after swarm's

	info, err := e.cli.Info(context.Background())
	if err != nil || info.Swarm.LocalNodeState != swarm.LocalNodeStateActive {
		fmt.Println("  swarm: the engine is not in a swarm; left out (docker swarm init --advertise-addr 127.0.0.1)")
		return rows, nil
	}
	os.Setenv("WFLOW_SWARM_NEW_PRIVILEGES", "allow") // Debian's 20.10 cannot set it on a job
	onSwarm, err := timed("swarm")
	if err != nil {
		return nil, err
	}
	var phases swarmPhases
	swarmFloor, err := floor(func(n int) error { return swarmLoop(e.cli, n, &phases) })
	if err != nil {
		return nil, err
	}
	r := row{Case: "a step on swarm vs its raw floor", Unit: "ms", Wflow: ms(onSwarm), Baseline: ms(swarmFloor),
		BaselineName: "Go loop: service create, wait for its task, logs, remove", Target: "-", Met: true}
	r.Note = phases.String()
	rows = append(rows, r,
		row{Case: "a step on swarm vs on docker", Unit: "ms", Wflow: ms(onSwarm), Baseline: ms(onDocker),
			BaselineName: "wflow on docker", Target: "-", Met: true})
	return rows, nil
}

// ms turns seconds into milliseconds.
func ms(s stats) stats {
	out := make(stats, len(s))
	for i, v := range s {
		out[i] = v * 1000
	}
	return out
}

// rawLoopOn is the raw-client floor of an engine speaking Docker's API.
func rawLoopOn(cli *client.Client, n int) error {
	ctx := context.Background()
	for i := 0; i < n; i++ {
		c, err := cli.ContainerCreate(ctx, &container.Config{Image: image, Cmd: []string{"true"}},
			&container.HostConfig{NetworkMode: "none"}, nil, nil, "")
		if err != nil {
			return err
		}
		if err := cli.ContainerStart(ctx, c.ID, container.StartOptions{}); err != nil {
			return err
		}
		waitc, errc := cli.ContainerWait(ctx, c.ID, container.WaitConditionNotRunning)
		select {
		case <-waitc:
		case err := <-errc:
			return err
		}
		logs, err := cli.ContainerLogs(ctx, c.ID, container.LogsOptions{ShowStdout: true, ShowStderr: true})
		if err != nil {
			return err
		}
		stdcopy.StdCopy(io.Discard, io.Discard, logs)
		logs.Close()
		if err := cli.ContainerRemove(ctx, c.ID, container.RemoveOptions{Force: true}); err != nil {
			return err
		}
	}
	return nil
}

// swarmPhases adds up where the raw swarm loop's time goes.
type swarmPhases struct {
	n                           int
	create, toRunning, toEnd    time.Duration
	logs, remove, containerGone time.Duration
}

func (p swarmPhases) String() string {
	if p.n == 0 {
		return ""
	}
	avg := func(d time.Duration) string { return fmt.Sprintf("%.0f ms", float64(d.Milliseconds())/float64(p.n)) }
	return fmt.Sprintf("where a raw swarm job's time goes, per job (mean of %d): service create %s; until its task runs (scheduling, network attachment, container create and start) %s; until the task is complete %s; logs %s; service remove %s; until the task's container is gone %s",
		p.n, avg(p.create), avg(p.toRunning), avg(p.toEnd), avg(p.logs), avg(p.remove), avg(p.containerGone))
}

// swarmLoop is the raw floor of a swarm job: create a one-task job (a
// one-shot replicated service on Docker before 24, as the engine does) on
// an internal overlay network (what a step without network gets), poll its
// task every 20 ms until it ends, read its logs, remove it and its
// container.
func swarmLoop(cli *client.Client, n int, p *swarmPhases) error {
	ctx := context.Background()
	name := fmt.Sprintf("wflow-bench-floor-%d", time.Now().UnixNano())
	net, err := cli.NetworkCreate(ctx, name, network.CreateOptions{Driver: "overlay", Scope: "swarm", Internal: true})
	if err != nil {
		return err
	}
	defer func() { // until the swarm has forgotten it
		for try := 0; try < 100; try++ {
			cli.NetworkRemove(ctx, net.ID)
			if _, err := cli.NetworkInspect(ctx, net.ID, network.InspectOptions{}); client.IsErrNotFound(err) {
				return
			}
			time.Sleep(200 * time.Millisecond)
		}
	}()
	mode := swarm.ServiceMode{ReplicatedJob: &swarm.ReplicatedJob{}}
	v, err := cli.ServerVersion(ctx)
	if err != nil {
		return err
	}
	if major, _ := strconv.Atoi(strings.SplitN(v.Version, ".", 2)[0]); major < 24 {
		one := uint64(1)
		mode = swarm.ServiceMode{Replicated: &swarm.ReplicatedService{Replicas: &one}}
	}
	for i := 0; i < n; i++ {
		t0 := time.Now()
		spec := swarm.ServiceSpec{
			TaskTemplate: swarm.TaskSpec{
				ContainerSpec: &swarm.ContainerSpec{Image: image, Args: []string{"true"}},
				RestartPolicy: &swarm.RestartPolicy{Condition: swarm.RestartPolicyConditionNone},
				Networks:      []swarm.NetworkAttachmentConfig{{Target: net.ID}},
			},
			Mode: mode,
		}
		created, err := cli.ServiceCreate(ctx, spec, swarm.ServiceCreateOptions{})
		if err != nil {
			return err
		}
		t1 := time.Now()
		var running, ended time.Time
		f := filters.NewArgs(filters.Arg("service", created.ID))
		for ended.IsZero() {
			tasks, err := cli.TaskList(ctx, swarm.TaskListOptions{Filters: f})
			if err != nil {
				return err
			}
			for _, t := range tasks {
				switch t.Status.State {
				case swarm.TaskStateRunning:
					if running.IsZero() {
						running = time.Now()
					}
				case swarm.TaskStateComplete, swarm.TaskStateFailed, swarm.TaskStateRejected:
					if running.IsZero() {
						running = time.Now()
					}
					ended = time.Now()
				}
			}
			if ended.IsZero() {
				time.Sleep(20 * time.Millisecond)
			}
		}
		logs, err := cli.ServiceLogs(ctx, created.ID, container.LogsOptions{ShowStdout: true, ShowStderr: true})
		if err != nil {
			return err
		}
		stdcopy.StdCopy(io.Discard, io.Discard, logs)
		logs.Close()
		t3 := time.Now()
		if err := cli.ServiceRemove(ctx, created.ID); err != nil {
			return err
		}
		t4 := time.Now()
		cf := filters.NewArgs(filters.Arg("label", "com.docker.swarm.service.id="+created.ID))
		for {
			list, err := cli.ContainerList(ctx, container.ListOptions{All: true, Filters: cf})
			if err != nil {
				return err
			}
			if len(list) == 0 {
				break
			}
			for _, c := range list {
				cli.ContainerRemove(ctx, c.ID, container.RemoveOptions{Force: true})
			}
		}
		t5 := time.Now()
		p.n++
		p.create += t1.Sub(t0)
		p.toRunning += running.Sub(t1)
		p.toEnd += ended.Sub(running)
		p.logs += t3.Sub(ended)
		p.remove += t4.Sub(t3)
		p.containerGone += t5.Sub(t4)
	}
	return nil
}

// Package swarm is wflow's container engine on Docker Swarm: each command a
// step runs is a service in replicated-job mode (one task, never
// restarted), which the swarm places on one of its nodes; on Docker before
// 24, whose swarm never deletes the tasks of a removed job, a one-shot
// service (mode replicated, one replica, restart policy none). wflow talks to a
// manager node. Images, builds and pulls are the manager's Docker engine's
// (containers/docker): an image that exists only there (built locally, or
// loaded, never pushed) pins its steps to that node.
//
// What a job needs that a container does not, and what it costs, is in
// docs/scale-out.md. In short:
//   - Logs come from the task through the swarm's log broker, stdout and
//     stderr apart. A followed log never ends by itself, so once the task
//     has ended the rest is read again without following and only the
//     bytes not yet seen are written.
//   - Swarm has no "none" network for services (moby#42204). A step
//     without network gets one interface on an internal overlay network
//     of its run (no route out, the host unreachable); steps of the same
//     run that run at the same time can reach each other, as they already
//     share the run directory.
//   - The exit code comes from the task's status; OOM from the container
//     when it ran on this node (a task on another node that exits 137 at
//     its memory limit is not said to be OOM).
//   - A removed service leaves its task's container behind for a while;
//     wflow removes those on this node itself.
package swarm

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/distribution/reference"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/events"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/mount"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/swarm"
	"github.com/docker/docker/api/types/versions"
	"github.com/docker/docker/client"
	"github.com/docker/docker/pkg/stdcopy"

	"github.com/wflow/wflow/containers"
	"github.com/wflow/wflow/containers/docker"
	"github.com/wflow/wflow/step"
)

// Timeouts of control calls, as in containers/docker.
const (
	controlTimeout = 60 * time.Second
	cleanupTimeout = 30 * time.Second
	// unschedulable is how long a task may wait for a node before the step
	// fails with the scheduler's reason (no node has the image, the
	// resources, the network).
	unschedulable = 60 * time.Second
	// nodeCheck is how often a task running on another node has its node
	// asked about: a node that goes down leaves its tasks "running".
	nodeCheck = 5 * time.Second
)

// labelService is the label Docker puts on a task's container: the id of
// its service.
const labelService = "com.docker.swarm.service.id"

// Engine runs wflow's containers as Swarm services of one task (replicated
// jobs, or one-shot services on Docker before 24). It implements
// containers.Engine and containers.Lister; images are the manager's
// (docker.Engine's methods).
type Engine struct {
	*docker.Engine
	cli    *client.Client
	nodeID string // the manager wflow talks to

	// jobs: a step's service is a replicated job (Docker 24 and later);
	// else a one-shot replicated service, see oneShotBefore.
	jobs bool

	mu       sync.Mutex
	networks map[string]string // run id → its isolated network's id
	pullable map[string]bool   // image ref → the runner let the engine pull it (EnsureImage without PullNever)
	server   string            // the manager's Docker version
}

// New connects to the Docker engine named by DOCKER_HOST (default the
// local socket), which must be a manager of an active swarm. When it is
// not, the error wraps docker.ErrUnavailable and says how to make one.
func New(ctx context.Context) (*Engine, error) {
	d, err := docker.Connect(ctx, "", "is dockerd running?")
	if err != nil {
		return nil, err
	}
	cli := d.Client()
	ictx, cancel := context.WithTimeout(ctx, controlTimeout)
	info, err := cli.Info(ictx)
	cancel()
	if err != nil {
		d.Close()
		return nil, fmt.Errorf("%w: %v", docker.ErrUnavailable, err)
	}
	if info.Swarm.LocalNodeState != swarm.LocalNodeStateActive {
		d.Close()
		return nil, fmt.Errorf("%w: the engine at %s is not part of a swarm (start one with: docker swarm init --advertise-addr 127.0.0.1)", docker.ErrUnavailable, cli.DaemonHost())
	}
	if !info.Swarm.ControlAvailable {
		d.Close()
		return nil, fmt.Errorf("%w: the engine at %s is a swarm worker; wflow must talk to a manager (point DOCKER_HOST at one)", docker.ErrUnavailable, cli.DaemonHost())
	}
	e := &Engine{Engine: d, cli: cli, nodeID: info.Swarm.NodeID, networks: map[string]string{}, pullable: map[string]bool{}, server: info.ServerVersion,
		jobs: !olderThan(info.ServerVersion, oneShotBefore)}
	if !e.NoNewPrivileges() && os.Getenv(AllowNewPrivileges) != "allow" {
		d.Close()
		return nil, fmt.Errorf("%w: this swarm's Docker engine (%s, API %s) cannot set no-new-privileges on a job (Docker 25 and API 1.44 can): upgrade it, or run its daemons with --no-new-privileges and accept jobs without wflow's guarantee with %s=allow (docs/security.md)",
			ErrWeaker, info.ServerVersion, cli.ClientVersion(), AllowNewPrivileges)
	}
	return e, nil
}

// oneShotBefore is the first major Docker version whose swarm deletes the
// tasks of a removed replicated job (moby#45106). Before it, every job
// leaves its task in the managers' store and its container on its node for
// good (moby#42789, moby#44312), so a step runs as a one-shot service
// instead: mode replicated, one replica, restart policy none. For a step
// the two behave alike (one task, never restarted, its exit code in the
// task's status); the swarm removes a one-shot service's tasks and their
// containers, on every node, with the service.
const oneShotBefore = 24

// AllowNewPrivileges is the environment variable that lets wflow run jobs
// on a swarm whose engine cannot set no-new-privileges, when set to "allow".
const AllowNewPrivileges = "WFLOW_SWARM_NEW_PRIVILEGES"

// ErrWeaker is wrapped by New when the swarm cannot isolate jobs as wflow
// promises and the user has not accepted it.
var ErrWeaker = errors.New("the swarm cannot isolate steps as wflow promises")

// NoNewPrivileges reports whether the swarm sets no-new-privileges on the
// jobs' containers: the API version negotiated with the manager is 1.44 or
// later (Docker 25). Before, the engine drops the field (moby#46386).
func (e *Engine) NoNewPrivileges() bool {
	return !versions.LessThan(e.cli.ClientVersion(), "1.44")
}

// Info names the engine "swarm", with the manager's Docker version, and
// says where jobs are isolated less than containers.
func (e *Engine) Info(ctx context.Context) containers.EngineInfo {
	info := docker.Describe(ctx, e.cli, "swarm")
	info.Gaps = append(info.Gaps,
		"a step without network is on an internal overlay network of its run (swarm has no network none): it reaches nothing outside, but can reach the run's other steps",
		"the swap of a step cannot be limited: on a node with swap a step may swap as much again as its memory limit")
	if olderThan(e.server, 26) {
		info.Gaps = append(info.Gaps, "on a node whose resolver is on loopback (systemd-resolved), Docker before 26.0.0 (25.0.4, 23.0.11) forwards a step's DNS queries out of its internal network (CVE-2024-29018)")
	}
	if !e.NoNewPrivileges() {
		info.Gaps = append(info.Gaps, "jobs run without no-new-privileges ("+AllowNewPrivileges+"=allow; the swarm's engine is older than Docker 25), unless its daemons run with --no-new-privileges")
	}
	return info
}

// olderThan reports whether a Docker version ("20.10.24+dfsg1", "26.1.0")
// has a major version below major; an unreadable one is older.
func olderThan(version string, major int) bool {
	n := 0
	for _, c := range version {
		if c < '0' || c > '9' {
			break
		}
		n = n*10 + int(c-'0')
	}
	return n < major
}

// EnsureImage implements containers.Engine: the manager's engine makes the
// image available under the pull policy, and the engine remembers whether
// the runner let it pull (never for an image whose registry the user did
// not allow, nor under --pull never): only then may other nodes pull it,
// by digest.
func (e *Engine) EnsureImage(ctx context.Context, ref string, pull containers.PullPolicy) (string, error) {
	id, err := e.Engine.EnsureImage(ctx, ref, pull)
	if err == nil {
		e.mu.Lock()
		e.pullable[ref] = pull != containers.PullNever
		e.mu.Unlock()
	}
	return id, err
}

// Close removes the networks this engine made for its runs, then releases
// the client. A network a task on another node still holds is left for
// wflow gc.
func (e *Engine) Close() error {
	e.mu.Lock()
	nets := e.networks
	e.networks = map[string]string{}
	e.mu.Unlock()
	var errs []error
	for _, id := range nets {
		if err := e.removeNetwork(context.Background(), id); err != nil {
			errs = append(errs, err)
		}
	}
	errs = append(errs, e.Engine.Close())
	return errors.Join(errs...)
}

// Run implements containers.Engine: create the job, stream its task's
// logs, wait for the task to end, and remove the job on every path, even
// when ctx is cancelled.
func (e *Engine) Run(ctx context.Context, spec containers.ContainerSpec, stdout, stderr io.Writer) (exit containers.Exit, err error) {
	exit.Code = 1 // until the task tells
	svc, err := e.serviceSpec(ctx, spec)
	if err != nil {
		return exit, err
	}
	// Created under a context the run's cancellation does not reach (as in
	// the Docker engine): a create cut short may still make the service.
	before := time.Now()
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), controlTimeout)
	created, err := e.cli.ServiceCreate(cctx, svc, swarm.ServiceCreateOptions{})
	cancel()
	if err != nil {
		return exit, fmt.Errorf("create service: %w", err)
	}
	defer func() { err = containers.NotRemoved(err, e.removeService(ctx, created.ID)) }()
	if ctx.Err() != nil {
		return exit, ctx.Err()
	}

	out, errw := &counted{w: stdout}, &counted{w: stderr}
	lctx, stopFollowing := context.WithCancel(ctx)
	defer stopFollowing()
	copied := make(chan error, 1)
	logs, err := e.cli.ServiceLogs(lctx, created.ID, container.LogsOptions{ShowStdout: true, ShowStderr: true, Follow: true})
	if err != nil {
		return exit, fmt.Errorf("follow the job's logs: %w", err)
	}
	go func() {
		_, err := stdcopy.StdCopy(out, errw, logs)
		logs.Close()
		copied <- err
	}()

	// What the task's container uses is measured from its cgroup when it
	// runs on this host (a node of this machine): from when the wait first
	// sees it running.
	usage := func() *step.Resources { return nil }
	defer func() { exit.Usage = usage() }()
	task, err := e.waitTask(ctx, created.ID, before, func(t swarm.Task) {
		usage = docker.SampleLocal(t.Status.ContainerStatus.PID, t.Status.ContainerStatus.ContainerID)
	})
	// A followed log does not end with the task: stop following, then
	// read what the stream had not delivered yet.
	stopFollowing()
	<-copied
	if err != nil {
		return exit, err
	}
	// The task has ended: its last output is read even when the step's
	// time is up meanwhile, within a bound of its own.
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
	err = e.rest(rctx, created.ID, out, errw)
	cancel()
	if err != nil {
		return exit, err
	}
	switch task.Status.State {
	case swarm.TaskStateComplete, swarm.TaskStateFailed:
		if task.Status.ContainerStatus == nil {
			return exit, fmt.Errorf("the job's task ended (%s) without an exit code: %s", task.Status.State, task.Status.Err)
		}
		exit.Code = task.Status.ContainerStatus.ExitCode
		if task.Status.State == swarm.TaskStateFailed && exit.Code == 0 {
			// Failed without a non-zero exit: the container vanished, or its
			// engine restarted; its last status is no result.
			exit.Code = 1
			return exit, fmt.Errorf("the job's task failed: %s", strings.TrimSpace(task.Status.Err+" "+task.Status.Message))
		}
	default:
		return exit, fmt.Errorf("the job's task ended %s: %s", task.Status.State, strings.TrimSpace(task.Status.Err+" "+task.Status.Message))
	}
	if exit.Code == 137 && spec.Memory > 0 && task.NodeID == e.nodeID && task.Status.ContainerStatus.ContainerID != "" {
		exit.OOMKilled = e.OOMKilled(ctx, task.Status.ContainerStatus.ContainerID)
	}
	return exit, nil
}

// counted is a writer that counts what it wrote.
type counted struct {
	w io.Writer
	n int64
}

func (c *counted) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// skipping writes to w what comes after its first n bytes.
type skipping struct {
	w io.Writer
	n int64
}

func (s *skipping) Write(p []byte) (int, error) {
	all := len(p)
	if s.n >= int64(len(p)) {
		s.n -= int64(len(p))
		return all, nil
	}
	p = p[s.n:]
	s.n = 0
	if _, err := s.w.Write(p); err != nil {
		return 0, err
	}
	return all, nil
}

// rest reads the ended job's logs again, without following, and writes
// only what out and errw have not had yet.
func (e *Engine) rest(ctx context.Context, id string, out, errw *counted) error {
	logs, err := e.cli.ServiceLogs(ctx, id, container.LogsOptions{ShowStdout: true, ShowStderr: true})
	if err != nil {
		return fmt.Errorf("read the job's logs: %w", err)
	}
	defer logs.Close()
	if _, err := stdcopy.StdCopy(&skipping{w: out, n: out.n}, &skipping{w: errw, n: errw.n}, logs); err != nil {
		return fmt.Errorf("the job's logs: %w", err)
	}
	return nil
}

// waitTask waits for the job's task to reach a final state and returns
// it; running is called once, when it is first seen running with its
// container's process id. Swarm has no watch of tasks: it asks every 50 ms at first, then
// less often, up to every 500 ms; and at once when this node's engine says
// the task's container died (a task on this node; since is before the
// job was created, so that an early death is not missed). A task on
// another node has its node asked about every nodeCheck: a node the
// manager holds down or disconnected, or no longer knows, fails the wait.
func (e *Engine) waitTask(ctx context.Context, serviceID string, since time.Time, running func(swarm.Task)) (swarm.Task, error) {
	f := filters.NewArgs(filters.Arg("service", serviceID))
	ectx, stop := context.WithCancel(ctx)
	defer stop() // ends the event stream
	died := e.deaths(ectx, serviceID, since)
	delay := 50 * time.Millisecond
	var pendingSince, nodeChecked time.Time
	failures := 0
	for {
		lctx, cancel := context.WithTimeout(ctx, controlTimeout)
		tasks, err := e.cli.TaskList(lctx, swarm.TaskListOptions{Filters: f})
		cancel()
		if ctx.Err() != nil {
			return swarm.Task{}, ctx.Err()
		}
		if err != nil {
			// A manager electing a leader answers errors for a while.
			if failures++; failures > 10 {
				return swarm.Task{}, fmt.Errorf("list the job's tasks: %w", err)
			}
			tasks = nil
		} else {
			failures = 0
		}
		for _, t := range tasks {
			switch t.Status.State {
			case swarm.TaskStateComplete, swarm.TaskStateFailed, swarm.TaskStateRejected,
				swarm.TaskStateShutdown, swarm.TaskStateOrphaned, swarm.TaskStateRemove:
				return t, nil
			case swarm.TaskStatePending:
				if t.Status.Err == "" {
					break
				}
				if pendingSince.IsZero() {
					pendingSince = time.Now()
				} else if time.Since(pendingSince) > unschedulable {
					return t, fmt.Errorf("no node takes the job after %s: %s", unschedulable, t.Status.Err)
				}
			default:
				if cs := t.Status.ContainerStatus; t.Status.State == swarm.TaskStateRunning && cs != nil && cs.PID > 0 && running != nil {
					running(t)
					running = nil
				}
				// A task on a node that went down stays "running" in
				// the swarm: its node is asked after every nodeCheck.
				if t.NodeID == "" || t.NodeID == e.nodeID || time.Since(nodeChecked) < nodeCheck {
					break
				}
				nodeChecked = time.Now()
				if err := e.nodeLost(ctx, t.NodeID); err != nil {
					return t, err
				}
			}
		}
		select {
		case <-time.After(delay):
			if delay < 500*time.Millisecond {
				delay += delay / 2
			}
		case <-died:
			// The agent reports the task's end a little after its
			// container's: ask again soon, then back off as before.
			delay = 20 * time.Millisecond
		case <-ctx.Done():
			return swarm.Task{}, ctx.Err()
		}
	}
}

// nodeLost returns an error when the swarm's manager holds the node down
// or disconnected, or no longer knows it: a task there will not report its
// end. A node the manager cannot be asked about (it answers an error) is
// not held lost.
func (e *Engine) nodeLost(ctx context.Context, nodeID string) error {
	ictx, cancel := context.WithTimeout(ctx, controlTimeout)
	node, _, err := e.cli.NodeInspectWithRaw(ictx, nodeID)
	cancel()
	switch {
	case cerrdefs.IsNotFound(err):
		return fmt.Errorf("the node %s that ran the job was removed from the swarm: the step's end is unknown", nodeID)
	case err != nil:
		return nil
	case node.Status.State == swarm.NodeStateDown, node.Status.State == swarm.NodeStateDisconnected:
		return fmt.Errorf("the node %s (%s) that ran the job is %s (the manager has lost its heartbeat): the step's end is unknown, and it may still run there until the node is back",
			node.Description.Hostname, node.Status.Addr, node.Status.State)
	}
	return nil
}

// deaths signals when a container of the service dies on this node, from
// the engine's events, until ctx ends. A node that does not run the task
// signals nothing; an event stream that fails only stops signalling.
func (e *Engine) deaths(ctx context.Context, serviceID string, since time.Time) <-chan struct{} {
	died := make(chan struct{}, 1)
	msgs, errs := e.cli.Events(ctx, events.ListOptions{
		Since: strconv.FormatInt(since.Unix()-1, 10),
		Filters: filters.NewArgs(
			filters.Arg("type", "container"),
			filters.Arg("event", "die"),
			filters.Arg("label", labelService+"="+serviceID)),
	})
	go func() {
		for {
			select {
			case <-msgs:
				select {
				case died <- struct{}{}:
				default:
				}
			case <-errs:
				return
			case <-ctx.Done():
				return
			}
		}
	}()
	return died
}

// serviceSpec maps a ContainerSpec to a service of one task (a replicated
// job, or a one-shot service, see oneShotBefore), with
// the same hardening as the Docker engine where Swarm has it (no
// capabilities; no-new-privileges on engines that honour it, see
// docs/security.md), limits as the task's resource limits, the run
// directory and the records as bind mounts, and the labels on the service
// and on its container.
func (e *Engine) serviceSpec(ctx context.Context, spec containers.ContainerSpec) (swarm.ServiceSpec, error) {
	mounts := []mount.Mount{{Type: mount.TypeBind, Source: spec.RunDir, Target: spec.WorkDir}}
	if spec.Records != "" {
		mounts = append(mounts, mount.Mount{
			Type:     mount.TypeBind,
			Source:   filepath.Join(spec.RunDir, spec.Records),
			Target:   path.Join(spec.WorkDir, spec.Records),
			ReadOnly: true,
		})
	}
	if spec.ReadOnly {
		mounts = append(mounts, mount.Mount{Type: mount.TypeTmpfs, Target: "/tmp", TmpfsOptions: &mount.TmpfsOptions{SizeBytes: 64 << 20}})
	}
	limits := &swarm.Limit{MemoryBytes: spec.Memory, Pids: spec.Pids}
	if spec.CPUs > 0 {
		limits.NanoCPUs = int64(spec.CPUs * 1e9)
	}
	grace := time.Duration(0) // a cancelled step is killed, as the Docker engine's forced removal does
	image, pin, err := e.taskImage(ctx, spec.Image)
	if err != nil {
		return swarm.ServiceSpec{}, err
	}
	task := swarm.TaskSpec{
		ContainerSpec: &swarm.ContainerSpec{
			Image:           image,
			Args:            spec.Args,
			Env:             spec.Env,
			Dir:             spec.WorkDir,
			User:            spec.User,
			Labels:          spec.Labels,
			ReadOnly:        spec.ReadOnly,
			Mounts:          mounts,
			CapabilityDrop:  []string{"ALL"},
			Privileges:      &swarm.Privileges{NoNewPrivileges: true},
			StopGracePeriod: &grace,
		},
		Resources:     &swarm.ResourceRequirements{Limits: limits},
		RestartPolicy: &swarm.RestartPolicy{Condition: swarm.RestartPolicyConditionNone},
	}
	if pin {
		task.Placement = &swarm.Placement{Constraints: []string{"node.id==" + e.nodeID}}
	}
	switch spec.Network {
	case "bridge":
		// A job on no network is on its node's default bridge.
	case "none", "":
		id, err := e.isolated(ctx, spec.Labels[containers.LabelRun])
		if err != nil {
			return swarm.ServiceSpec{}, err
		}
		task.Networks = []swarm.NetworkAttachmentConfig{{Target: id}}
	default:
		task.Networks = []swarm.NetworkAttachmentConfig{{Target: spec.Network}}
	}
	labels := map[string]string{}
	for k, v := range spec.Labels {
		labels[k] = v
	}
	mode := swarm.ServiceMode{ReplicatedJob: &swarm.ReplicatedJob{}}
	if !e.jobs {
		one := uint64(1)
		mode = swarm.ServiceMode{Replicated: &swarm.ReplicatedService{Replicas: &one}}
	}
	return swarm.ServiceSpec{
		Annotations:  swarm.Annotations{Labels: labels},
		TaskTemplate: task,
		Mode:         mode,
	}, nil
}

// taskImage returns the image a job's task names, and whether the task
// must run on this node. A node's agent pulls a task's image by tag before
// it starts it, whatever wflow's pull policy says, and runs whatever the
// registry answers: so a task never names a tag. It names the image's id,
// and runs on this node, where the image is; or, when the runner let the
// engine pull ref and the image came from a registry, ref's repository at
// the image's digest, which any node may pull (from that registry, which
// the user allowed) and this one already has.
func (e *Engine) taskImage(ctx context.Context, ref string) (image string, pin bool, err error) {
	ictx, cancel := context.WithTimeout(ctx, controlTimeout)
	info, err := e.cli.ImageInspect(ictx, ref)
	cancel()
	if err != nil {
		return "", false, fmt.Errorf("inspect image %s: %w", ref, err)
	}
	e.mu.Lock()
	pullable := e.pullable[ref]
	e.mu.Unlock()
	if pullable {
		if named, err := reference.ParseNormalizedNamed(ref); err == nil {
			for _, d := range info.RepoDigests {
				if dn, err := reference.ParseNormalizedNamed(d); err == nil && dn.Name() == named.Name() {
					if _, ok := dn.(reference.Canonical); ok {
						return d, false, nil
					}
				}
			}
		}
	}
	return info.ID, true, nil
}

// isolated returns the id of the run's internal overlay network, made on
// first use and labelled like the run's jobs.
func (e *Engine) isolated(ctx context.Context, run string) (string, error) {
	if run == "" {
		return "", errors.New("a job without network needs its run's id (label " + containers.LabelRun + ") to be isolated with its run")
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if id, ok := e.networks[run]; ok {
		return id, nil
	}
	labels := map[string]string{containers.LabelRun: run}
	for k, v := range containers.ProcessLabels() {
		labels[k] = v
	}
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), controlTimeout)
	defer cancel()
	created, err := e.cli.NetworkCreate(cctx, "wflow-"+docker.NamePart(run), network.CreateOptions{
		Driver:   "overlay",
		Scope:    "swarm",
		Internal: true,
		Labels:   labels,
	})
	if err != nil {
		return "", fmt.Errorf("create the run's internal network: %w", err)
	}
	e.networks[run] = created.ID
	return created.ID, nil
}

// removeService removes a job and then, under a fresh context, the task
// containers it left on this node. Not found is success.
func (e *Engine) removeService(ctx context.Context, id string) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
	defer cancel()
	if err := e.cli.ServiceRemove(ctx, id); err != nil && !client.IsErrNotFound(err) {
		return fmt.Errorf("remove service %.12s: %w", id, err)
	}
	return e.removeTaskContainers(ctx, id)
}

// removeTaskContainers force-removes the containers of service id on this
// node, until none is left: a task being shut down may still be starting
// one.
func (e *Engine) removeTaskContainers(ctx context.Context, id string) error {
	f := filters.NewArgs(filters.Arg("label", labelService+"="+id))
	delay := 10 * time.Millisecond // the agent's removal takes tens of ms
	for try := 0; ; try++ {
		list, err := e.cli.ContainerList(ctx, container.ListOptions{All: true, Filters: f})
		if err != nil {
			return fmt.Errorf("list the containers of service %.12s: %w", id, err)
		}
		if len(list) == 0 && try > 0 {
			return nil
		}
		busy := len(list) == 0 // none yet: a task cut short may be making one
		for _, c := range list {
			// The node's agent may be removing it too: the engine answers
			// one of us with a conflict, and a later round sees it gone.
			err := e.cli.ContainerRemove(ctx, c.ID, container.RemoveOptions{Force: true, RemoveVolumes: true})
			switch {
			case err == nil || client.IsErrNotFound(err):
			case cerrdefs.IsConflict(err):
				busy = true
			default:
				return fmt.Errorf("remove container %.12s of service %.12s: %w", c.ID, id, err)
			}
		}
		if !busy {
			continue // removed: check at once that nothing is left
		}
		select {
		case <-time.After(delay):
			if delay < 100*time.Millisecond {
				delay *= 2
			}
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// removeNetwork removes a run's network, waiting a little for the
// endpoints of removed tasks to go, and then for the swarm to have
// forgotten it (a removal is acknowledged before the network is gone from
// the list). Not found is success.
func (e *Engine) removeNetwork(ctx context.Context, id string) error {
	ctx, cancel := context.WithTimeout(ctx, cleanupTimeout)
	defer cancel()
	for {
		err := e.cli.NetworkRemove(ctx, id)
		if err == nil {
			_, err = e.cli.NetworkInspect(ctx, id, network.InspectOptions{})
		}
		if client.IsErrNotFound(err) {
			return nil
		}
		if err == nil {
			err = errors.New("still listed after its removal")
		}
		select {
		case <-time.After(200 * time.Millisecond):
		case <-ctx.Done():
			return fmt.Errorf("remove network %.12s: %w", id, err)
		}
	}
}

// Kinds of what List returns, as the prefix of its ids.
const (
	kindService   = "service/"
	kindContainer = "container/"
	kindNetwork   = "network/"
)

// List returns what carries label key: the jobs, then the task containers
// on this node whose job is gone, then the runs' networks; each id says
// which it is. It implements containers.Lister, for wflow gc.
func (e *Engine) List(ctx context.Context, key string) ([]containers.Labelled, error) {
	ctx, cancel := context.WithTimeout(ctx, controlTimeout)
	defer cancel()
	f := filters.NewArgs(filters.Arg("label", key))
	services, err := e.cli.ServiceList(ctx, swarm.ServiceListOptions{Filters: f})
	if err != nil {
		return nil, fmt.Errorf("list services: %w", err)
	}
	var out []containers.Labelled
	live := map[string]bool{}
	for _, s := range services {
		live[s.ID] = true
		out = append(out, containers.Labelled{ID: kindService + s.ID, Kind: "swarm service", Labels: s.Spec.Labels})
	}
	list, err := e.cli.ContainerList(ctx, container.ListOptions{All: true, Filters: f})
	if err != nil {
		return nil, fmt.Errorf("list containers: %w", err)
	}
	for _, c := range list {
		if !live[c.Labels[labelService]] {
			out = append(out, containers.Labelled{ID: kindContainer + c.ID, Labels: c.Labels})
		}
	}
	nets, err := e.cli.NetworkList(ctx, network.ListOptions{Filters: f})
	if err != nil {
		return nil, fmt.Errorf("list networks: %w", err)
	}
	for _, n := range nets {
		out = append(out, containers.Labelled{ID: kindNetwork + n.ID, Kind: "network", Labels: n.Labels})
	}
	return out, nil
}

// Remove removes what List returned; it implements containers.Lister.
func (e *Engine) Remove(ctx context.Context, id string) error {
	switch {
	case strings.HasPrefix(id, kindService):
		return e.removeService(ctx, strings.TrimPrefix(id, kindService))
	case strings.HasPrefix(id, kindNetwork):
		return e.removeNetwork(ctx, strings.TrimPrefix(id, kindNetwork))
	default:
		return e.Engine.Remove(ctx, strings.TrimPrefix(id, kindContainer))
	}
}

// Labelled lists the jobs and the containers on this node that carry label
// key (with value, when value is not empty); the conformance suite checks
// with it that a job is labelled while it runs and gone after.
func (e *Engine) Labelled(ctx context.Context, key, value string) ([]string, error) {
	l := key
	if value != "" {
		l += "=" + value
	}
	services, err := e.cli.ServiceList(ctx, swarm.ServiceListOptions{Filters: filters.NewArgs(filters.Arg("label", l))})
	if err != nil {
		return nil, err
	}
	ids, err := e.Engine.Labelled(ctx, key, value)
	if err != nil {
		return nil, err
	}
	for _, s := range services {
		ids = append(ids, kindService+s.ID)
	}
	return ids, nil
}

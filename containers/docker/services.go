package docker

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/client"
	"github.com/docker/docker/pkg/stdcopy"

	"github.com/wflow/wflow/containers"
)

// kindNetwork prefixes the ids List gives a run's network, which Remove
// then knows for a network.
const kindNetwork = "network/"

// runNetwork returns the name of the run's internal network, made on first
// use and labelled like the run's containers, so that wflow gc finds it.
func (e *Engine) runNetwork(ctx context.Context, run string) (string, error) {
	if run == "" {
		return "", errors.New("a container on the run's network needs its run's id (label " + containers.LabelRun + ")")
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if name, ok := e.networks[run]; ok {
		return name, nil
	}
	labels := map[string]string{containers.LabelRun: run}
	for k, v := range containers.ProcessLabels() {
		labels[k] = v
	}
	name := NetworkName(run)
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), controlTimeout)
	defer cancel()
	// Internal: no route out. inhibit_ipv4: the host has no address on
	// the bridge either, so its services (listening on 0.0.0.0, say) are
	// out of reach too: an internal network alone lets containers reach
	// the host's address on it.
	opts := network.CreateOptions{Driver: "bridge", Internal: true, Labels: labels,
		Options: map[string]string{"com.docker.network.bridge.inhibit_ipv4": "true"}}
	if _, err := e.cli.NetworkCreate(cctx, name, opts); err != nil {
		return "", fmt.Errorf("create the run's network: %w", err)
	}
	if e.networks == nil {
		e.networks = map[string]string{}
	}
	e.networks[run] = name
	return name, nil
}

// NetworkName is the name of run's internal network.
func NetworkName(run string) string { return "wflow-run-" + NamePart(run) }

// NamePart makes a run id fit in the name of a network: characters a name
// may not hold become '-', and it is cut at 40 bytes.
func NamePart(run string) string {
	b := []byte(run)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			b[i] = '-'
		}
	}
	if len(b) > 40 {
		b = b[:40]
	}
	return string(b)
}

// removeNetwork removes a network; one already gone is not an error.
func (e *Engine) removeNetwork(ctx context.Context, name string) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
	defer cancel()
	if err := e.cli.NetworkRemove(ctx, name); err != nil && !client.IsErrNotFound(err) {
		return fmt.Errorf("remove network %s: %w", name, err)
	}
	return nil
}

// closeNetworks removes the networks this engine made; called by Close,
// once every container of its runs is gone.
func (e *Engine) closeNetworks() error {
	e.mu.Lock()
	nets := e.networks
	e.networks = nil
	e.mu.Unlock()
	var errs []error
	for _, name := range nets {
		errs = append(errs, e.removeNetwork(context.Background(), name))
	}
	return errors.Join(errs...)
}

// networks lists the run networks carrying label key, for List.
func (e *Engine) listNetworks(ctx context.Context, key string) ([]containers.Labelled, error) {
	nets, err := e.cli.NetworkList(ctx, network.ListOptions{Filters: filters.NewArgs(filters.Arg("label", key))})
	if err != nil {
		return nil, fmt.Errorf("list networks: %w", err)
	}
	out := make([]containers.Labelled, 0, len(nets))
	for _, n := range nets {
		out = append(out, containers.Labelled{ID: kindNetwork + n.Name, Kind: "network", Labels: n.Labels})
	}
	return out, nil
}

// StartService implements containers.ServiceEngine.
func (e *Engine) StartService(ctx context.Context, spec containers.ContainerSpec, name string) (string, error) {
	var endpoints *network.NetworkingConfig
	if spec.Network == containers.NetworkRun {
		net, err := e.runNetwork(ctx, spec.Labels[containers.LabelRun])
		if err != nil {
			return "", err
		}
		spec.Network = net
		endpoints = &network.NetworkingConfig{EndpointsConfig: map[string]*network.EndpointSettings{net: {Aliases: []string{name}}}}
	} else {
		spec.Network = "none"
	}
	hc := hostConfig(spec)
	// A service runs as long as the run: its log is capped, as a step's
	// streams are, so that one printing forever does not fill the engine's disk.
	hc.LogConfig = container.LogConfig{Type: "json-file", Config: map[string]string{"max-size": "10m", "max-file": "2"}}
	var cmd []string
	if len(spec.Args) > 0 {
		cmd = spec.Args
	}
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), controlTimeout)
	created, err := e.cli.ContainerCreate(cctx,
		&container.Config{Image: spec.Image, Cmd: cmd, Env: spec.Env, WorkingDir: spec.WorkDir, Labels: spec.Labels, User: spec.User, Hostname: name},
		hc, endpoints, nil, "")
	cancel()
	if err != nil {
		return "", fmt.Errorf("create the service's container: %w", err)
	}
	if ctx.Err() != nil {
		return "", containers.NotRemoved(ctx.Err(), e.remove(ctx, created.ID))
	}
	cctx, cancel = context.WithTimeout(ctx, controlTimeout)
	err = e.cli.ContainerStart(cctx, created.ID, container.StartOptions{})
	cancel()
	if err != nil {
		return "", containers.NotRemoved(fmt.Errorf("start the service's container: %w", err), e.remove(ctx, created.ID))
	}
	return created.ID, nil
}

// ServiceState implements containers.ServiceEngine.
func (e *Engine) ServiceState(ctx context.Context, id string) (bool, int, error) {
	ctx, cancel := context.WithTimeout(ctx, controlTimeout)
	defer cancel()
	info, err := e.cli.ContainerInspect(ctx, id)
	if err != nil {
		return false, 0, fmt.Errorf("inspect the service's container: %w", err)
	}
	if info.State == nil {
		return false, 0, errors.New("the engine says nothing of the service's state")
	}
	return info.State.Running, info.State.ExitCode, nil
}

// ServiceLogs implements containers.ServiceEngine.
func (e *Engine) ServiceLogs(ctx context.Context, id string, tail int, w io.Writer) error {
	ctx, cancel := context.WithTimeout(ctx, controlTimeout)
	defer cancel()
	rc, err := e.cli.ContainerLogs(ctx, id, container.LogsOptions{ShowStdout: true, ShowStderr: true, Tail: strconv.Itoa(tail)})
	if err != nil {
		return err
	}
	defer rc.Close()
	_, err = stdcopy.StdCopy(w, w, rc)
	return err
}

// ServiceListens implements containers.ServiceEngine: it reads the
// sockets of the service's network namespace from this host
// (/proc/PID/net/tcp and tcp6 of its process), which needs the engine on
// this host; the host itself has no address on the run's network.
func (e *Engine) ServiceListens(ctx context.Context, id string, port int) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, controlTimeout)
	defer cancel()
	info, err := e.cli.ContainerInspect(ctx, id)
	if err != nil {
		return false, fmt.Errorf("inspect the service's container: %w", err)
	}
	if info.State == nil || info.State.Pid <= 0 {
		return false, nil
	}
	pid := info.State.Pid
	if !inContainer(pid, info.ID) {
		return false, fmt.Errorf("%w: the engine's process %d is not the service's process on this host (is the engine on another host?)", ErrNotLocal, pid)
	}
	for _, f := range []string{"tcp", "tcp6"} {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/net/%s", pid, f))
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				continue
			}
			return false, fmt.Errorf("%w: %v", ErrNotLocal, err)
		}
		if listening(b, port) {
			return true, nil
		}
	}
	return false, nil
}

// ErrNotLocal is wrapped when wflow cannot see the engine's processes from
// its host (a port check, killing an exec).
var ErrNotLocal = errors.New("cannot see the service's processes from this host")

// listening reports whether a /proc/net/tcp table has a socket in state
// LISTEN (0A) on port.
func listening(table []byte, port int) bool {
	want := fmt.Sprintf(":%04X", port)
	for _, line := range strings.Split(string(table), "\n")[1:] {
		f := strings.Fields(line)
		if len(f) > 3 && strings.HasSuffix(f[1], want) && f[3] == "0A" {
			return true
		}
	}
	return false
}

// inContainer reports whether the process pid of this host is in the
// container id (its cgroup names the container): a process id the engine
// gives is one of this host only when the engine runs here, in the same
// process id namespace.
func inContainer(pid int, id string) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	return err == nil && len(id) >= 12 && strings.Contains(string(b), id)
}

// Exec implements containers.ServiceEngine. The engine's API cannot stop
// an exec: when ctx ends, its processes are killed from this host by their
// process ids (which needs the engine on this host, and processes of this
// user or a wflow running as root); err then says whether that worked.
func (e *Engine) Exec(ctx context.Context, id string, spec containers.ExecSpec, stdout, stderr io.Writer) (exit containers.Exit, err error) {
	exit.Code = 1
	cctx, cancel := context.WithTimeout(ctx, controlTimeout)
	created, err := e.cli.ContainerExecCreate(cctx, id, container.ExecOptions{
		Cmd: spec.Args, Env: spec.Env, User: spec.User, WorkingDir: spec.WorkDir, AttachStdout: true, AttachStderr: true,
	})
	cancel()
	if err != nil {
		return exit, fmt.Errorf("create exec: %w", err)
	}
	cctx, cancel = context.WithTimeout(ctx, controlTimeout)
	att, err := e.cli.ContainerExecAttach(cctx, created.ID, container.ExecAttachOptions{})
	cancel()
	if err != nil {
		// The exec may have started on the engine all the same.
		if kerr := e.killExec(id, created.ID); kerr != nil && ctx.Err() != nil {
			return exit, fmt.Errorf("%w; %w", ctx.Err(), kerr)
		}
		if ctx.Err() != nil {
			return exit, ctx.Err()
		}
		return exit, fmt.Errorf("attach to exec: %w", err)
	}
	defer att.Close()
	copied := make(chan error, 1)
	go func() {
		_, err := stdcopy.StdCopy(stdout, stderr, att.Reader)
		copied <- err
	}()
	select {
	case err := <-copied:
		if err != nil {
			return exit, fmt.Errorf("exec output: %w", err)
		}
	case <-ctx.Done():
		kerr := e.killExec(id, created.ID)
		att.Close()
		<-copied
		if kerr != nil {
			return exit, fmt.Errorf("%w; %w", ctx.Err(), kerr)
		}
		return exit, ctx.Err()
	}
	inspect := func() (container.ExecInspect, error) {
		ictx, cancel := context.WithTimeout(context.WithoutCancel(ctx), controlTimeout)
		defer cancel()
		return e.cli.ContainerExecInspect(ictx, created.ID)
	}
	info, err := inspect()
	if err != nil {
		return exit, fmt.Errorf("inspect exec: %w", err)
	}
	// The stream ends when the process closed its output: it may still
	// run (it closed them itself), or its exit be recorded a moment later.
	for pause := 5 * time.Millisecond; info.Running; pause = min(2*pause, 250*time.Millisecond) {
		select {
		case <-time.After(pause):
		case <-ctx.Done():
			if kerr := e.killExec(id, created.ID); kerr != nil {
				return exit, fmt.Errorf("%w; %w", ctx.Err(), kerr)
			}
			return exit, ctx.Err()
		}
		if info, err = inspect(); err != nil {
			return exit, fmt.Errorf("inspect exec: %w", err)
		}
	}
	exit.Code = info.ExitCode
	return exit, nil
}

// ErrExecNotKilled is wrapped when an exec's processes could not be killed.
var ErrExecNotKilled = errors.New("its processes could not be stopped and run on in the service until it is stopped")

// killExec kills an exec's process and every process below it, by their
// ids on this host, each checked to be in the container first; then it
// checks that the exec has ended.
func (e *Engine) killExec(containerID, execID string) error {
	ctx, cancel := context.WithTimeout(context.Background(), controlTimeout)
	defer cancel()
	info, err := e.cli.ContainerExecInspect(ctx, execID)
	if err != nil || info.Pid <= 0 {
		return fmt.Errorf("%w (the engine gives no process id: %v)", ErrExecNotKilled, err)
	}
	if !info.Running {
		return nil
	}
	if !inContainer(info.Pid, containerID) {
		return fmt.Errorf("%w (%w)", ErrExecNotKilled, ErrNotLocal)
	}
	for _, pid := range processTree(info.Pid) {
		if inContainer(pid, containerID) {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	for try := 0; try < 50; try++ {
		if info, err = e.cli.ContainerExecInspect(ctx, execID); err == nil && !info.Running {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("%w (it still runs after SIGKILL: wflow may not signal it)", ErrExecNotKilled)
}

// processTree returns pid and its descendants, from /proc: parents first.
func processTree(pid int) []int {
	children := map[int][]int{}
	entries, _ := os.ReadDir("/proc")
	for _, d := range entries {
		p, err := strconv.Atoi(d.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile("/proc/" + d.Name() + "/stat")
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...: comm may hold spaces and parentheses.
		i := bytes.LastIndexByte(stat, ')')
		if i < 0 {
			continue
		}
		fields := strings.Fields(string(stat[i+1:]))
		if len(fields) < 2 {
			continue
		}
		if ppid, err := strconv.Atoi(fields[1]); err == nil {
			children[ppid] = append(children[ppid], p)
		}
	}
	tree := []int{pid}
	for i := 0; i < len(tree); i++ {
		tree = append(tree, children[tree[i]]...)
	}
	return tree
}

// StopService implements containers.ServiceEngine.
func (e *Engine) StopService(ctx context.Context, id string) error { return e.remove(ctx, id) }

// Package docker is wflow's container engine on a Docker daemon, and on
// any daemon that speaks its API (the podman and swarm engines build on it).
// With those two, it is the only package of wflow that imports the Docker SDK.
package docker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/build"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/events"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/api/types/mount"
	"github.com/docker/docker/client"
	"github.com/docker/docker/pkg/jsonmessage"
	"github.com/docker/docker/pkg/stdcopy"

	"github.com/wflow/wflow/containers"
	"github.com/wflow/wflow/step"
)

// ErrUnavailable is wrapped by New when no Docker daemon answers.
var ErrUnavailable = errors.New("docker engine unavailable")

// Timeouts of control calls. Waits and log streams have none: a step runs as
// long as its context allows.
const (
	pingTimeout    = 5 * time.Second
	controlTimeout = 60 * time.Second
	cleanupTimeout = 30 * time.Second
)

// Engine runs wflow's containers on a Docker daemon. It implements
// containers.Engine.
type Engine struct {
	cli *client.Client

	mu       sync.Mutex
	networks map[string]string // run id to the name of its internal network, made on first use
}

// New connects to the daemon named by the environment (DOCKER_HOST, default
// the local socket), negotiates the API version (Debian's engine speaks 1.41)
// and pings it. When nothing answers, the error wraps ErrUnavailable.
func New(ctx context.Context) (*Engine, error) {
	return Connect(ctx, "", "is dockerd running?")
}

// Connect connects to the Docker API at host (a URL such as
// unix:///run/podman/podman.sock; "" reads DOCKER_HOST, default the local
// Docker socket), negotiates the API version and pings it. When nothing
// answers, the error wraps ErrUnavailable and ends with hint.
func Connect(ctx context.Context, host, hint string) (*Engine, error) {
	opts := []client.Opt{client.FromEnv, client.WithAPIVersionNegotiation()}
	if host != "" {
		opts = append(opts, client.WithHost(host))
	}
	cli, err := client.NewClientWithOpts(opts...)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	pctx, cancel := context.WithTimeout(ctx, pingTimeout)
	defer cancel()
	ping, err := cli.Ping(pctx)
	if err != nil {
		cli.Close()
		return nil, fmt.Errorf("%w: no daemon answers at %s (%s)", ErrUnavailable, cli.DaemonHost(), hint)
	}
	// Settle the API version now (the client would on its first call), so
	// that ClientVersion says what the engines built on this one may use.
	cli.NegotiateAPIVersionPing(ping)
	return &Engine{cli: cli}, nil
}

// Close removes the run networks this engine made, then releases the
// client's connections.
func (e *Engine) Close() error { return errors.Join(e.closeNetworks(), e.cli.Close()) }

// Client is the engine's API client, for the engines built on this one.
func (e *Engine) Client() *client.Client { return e.cli }

// Info names the engine for `wflow version` and the run report: "docker",
// the daemon's version and the API version negotiated with it.
func (e *Engine) Info(ctx context.Context) containers.EngineInfo {
	return Describe(ctx, e.cli, "docker")
}

// Describe asks the daemon behind cli for its version, naming the engine
// name; a daemon that does not answer leaves Version empty.
func Describe(ctx context.Context, cli *client.Client, name string) containers.EngineInfo {
	info := containers.EngineInfo{Name: name, API: cli.ClientVersion(), Host: cli.DaemonHost()}
	ctx, cancel := context.WithTimeout(ctx, controlTimeout)
	defer cancel()
	if v, err := cli.ServerVersion(ctx); err == nil {
		info.Version = v.Version
	}
	return info
}

// EnsureImage implements containers.Engine.
func (e *Engine) EnsureImage(ctx context.Context, ref string, pull containers.PullPolicy) (string, error) {
	if pull != containers.PullAlways {
		id, err := e.imageID(ctx, ref)
		if err == nil {
			return id, nil
		}
		if !client.IsErrNotFound(err) {
			return "", fmt.Errorf("inspect image %s: %w", ref, err)
		}
		if pull == containers.PullNever {
			return "", fmt.Errorf("%w: image %s is not present and --pull=never forbids pulling it", containers.ErrImageUnavailable, ref)
		}
	}
	if err := e.pull(ctx, ref); err != nil {
		return "", fmt.Errorf("%w: image %s is not present and pulling it failed: %v", containers.ErrImageUnavailable, ref, err)
	}
	id, err := e.imageID(ctx, ref)
	if err != nil {
		return "", fmt.Errorf("%w: image %s pulled but not found: %v", containers.ErrImageUnavailable, ref, err)
	}
	return id, nil
}

func (e *Engine) imageID(ctx context.Context, ref string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, controlTimeout)
	defer cancel()
	info, err := e.cli.ImageInspect(ctx, ref)
	if err != nil {
		return "", err
	}
	return info.ID, nil
}

func (e *Engine) pull(ctx context.Context, ref string) error {
	rc, err := e.cli.ImagePull(ctx, ref, image.PullOptions{})
	if err != nil {
		return err
	}
	defer rc.Close()
	// The pull only ends when its progress stream has been read; an error
	// inside the stream (unknown tag, auth) comes back from here.
	return jsonmessage.DisplayJSONMessagesStream(rc, io.Discard, 0, false, nil)
}

// Run implements containers.Engine: create, start, stream logs, wait, and
// remove on every path, even when ctx is cancelled.
func (e *Engine) Run(ctx context.Context, spec containers.ContainerSpec, stdout, stderr io.Writer) (exit containers.Exit, err error) {
	exit.Code = 1 // until the container tells
	// Create under a context the run's cancellation does not reach: a create
	// cancelled in flight may still make a container on the engine, one whose
	// id wflow would never learn and so never remove. ctx is checked after.
	if spec.Network == containers.NetworkRun {
		name, err := e.runNetwork(ctx, spec.Labels[containers.LabelRun])
		if err != nil {
			return exit, err
		}
		spec.Network = name
	}
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), controlTimeout)
	created, cerr := e.cli.ContainerCreate(cctx,
		&container.Config{
			Image:      spec.Image,
			Cmd:        spec.Args,
			Env:        spec.Env,
			WorkingDir: spec.WorkDir,
			Labels:     spec.Labels,
			User:       spec.User,
		},
		hostConfig(spec),
		nil, nil, "")
	cancel()
	if cerr != nil {
		return exit, fmt.Errorf("create container: %w", cerr)
	}
	defer func() { err = containers.NotRemoved(err, e.remove(ctx, created.ID)) }()
	if ctx.Err() != nil {
		return exit, ctx.Err()
	}

	// Attach before starting, as `docker run` does: no output is missed
	// however fast the container is, and the stream comes from the
	// container's pipes, not back out of the engine's log file.
	cctx, cancel = context.WithTimeout(ctx, controlTimeout)
	att, err := e.cli.ContainerAttach(cctx, created.ID, container.AttachOptions{Stream: true, Stdout: true, Stderr: true})
	cancel()
	if err != nil {
		return exit, fmt.Errorf("attach to container: %w", err)
	}
	defer att.Close()
	copied := make(chan error, 1)
	go func() {
		_, err := stdcopy.StdCopy(stdout, stderr, att.Reader)
		copied <- err
	}()

	cctx, cancel = context.WithTimeout(ctx, controlTimeout)
	err = e.cli.ContainerStart(cctx, created.ID, container.StartOptions{})
	cancel()
	if err != nil {
		att.Close()
		<-copied
		return exit, fmt.Errorf("start container: %w", err)
	}

	usage := e.sampleUsage(ctx, created.ID)
	defer func() { exit.Usage = usage() }()

	// The attached stream does not watch ctx: close it when ctx ends.
	var copyErr error
	select {
	case copyErr = <-copied:
	case <-ctx.Done():
		att.Close()
		<-copied
		return exit, ctx.Err()
	}
	if copyErr != nil {
		return exit, fmt.Errorf("container output: %w", copyErr)
	}

	waitc, errc := e.cli.ContainerWait(ctx, created.ID, container.WaitConditionNotRunning)
	select {
	case w := <-waitc:
		if w.Error != nil && w.Error.Message != "" {
			return exit, fmt.Errorf("wait for container: %s", w.Error.Message)
		}
		exit.Code = int(w.StatusCode)
	case err := <-errc:
		if ctx.Err() != nil {
			return exit, ctx.Err()
		}
		return exit, fmt.Errorf("wait for container: %w", err)
	}
	if exit.Code == 137 && spec.Memory > 0 {
		exit.OOMKilled = e.OOMKilled(ctx, created.ID)
	}
	return exit, nil
}

// OOMKilled reports whether the engine says the OOM killer ended a
// container that exited 137 (killed: by the OOM killer at the memory limit,
// or by someone else). The engine records the OOM event apart from the
// exit, and on a busy machine a while after it: ask for up to 3 s (seen
// late by more than a second under make test's load, with the swarm and
// Podman suites running beside); only a container killed at 137 under a
// memory limit otherwise waits that long.
func (e *Engine) OOMKilled(ctx context.Context, id string) bool {
	for try := 0; try < 150; try++ {
		ictx, cancel := context.WithTimeout(ctx, controlTimeout)
		info, err := e.cli.ContainerInspect(ictx, id)
		cancel()
		if err != nil || info.State == nil {
			return false
		}
		if info.State.OOMKilled {
			return true
		}
		select {
		case <-time.After(20 * time.Millisecond):
		case <-ctx.Done():
			return false
		}
	}
	return false
}

// hostConfig maps a step's limits to Docker's host configuration. Every
// step is hardened whatever it asks (docs/security.md): no capabilities at
// all (so no mknod, chown or setuid to another owner, even as root), and
// no-new-privileges (setuid binaries and file capabilities in the image give
// nothing).
func hostConfig(spec containers.ContainerSpec) *container.HostConfig {
	hc := &container.HostConfig{
		Mounts: []mount.Mount{{
			Type:   mount.TypeBind,
			Source: spec.RunDir,
			Target: spec.WorkDir,
		}},
		NetworkMode:    container.NetworkMode(spec.Network),
		ReadonlyRootfs: spec.ReadOnly,
		CapDrop:        []string{"ALL"},
		SecurityOpt:    []string{"no-new-privileges:true"},
	}
	if spec.Records != "" {
		hc.Mounts = append(hc.Mounts, mount.Mount{
			Type:     mount.TypeBind,
			Source:   filepath.Join(spec.RunDir, spec.Records),
			Target:   path.Join(spec.WorkDir, spec.Records),
			ReadOnly: true,
		})
	}
	if spec.ReadOnly {
		hc.Tmpfs = map[string]string{"/tmp": "rw,nosuid,nodev,size=64m"}
	}
	if spec.CPUs > 0 {
		hc.NanoCPUs = int64(spec.CPUs * 1e9)
	}
	if spec.Memory > 0 {
		hc.Memory = spec.Memory
		hc.MemorySwap = spec.Memory // no swap: the limit is the limit
	}
	if spec.Pids > 0 {
		pids := spec.Pids
		hc.PidsLimit = &pids
	}
	return hc
}

// remove force-removes a container under a fresh context, so that it runs
// even when the step's context was cancelled. Not found is success.
func (e *Engine) remove(ctx context.Context, id string) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
	defer cancel()
	err := e.cli.ContainerRemove(ctx, id, container.RemoveOptions{Force: true, RemoveVolumes: true})
	if err != nil && !client.IsErrNotFound(err) {
		return fmt.Errorf("remove container %.12s: %w", id, err)
	}
	return nil
}

// List returns the containers carrying label key, running or not, with
// their labels. It implements containers.Lister.
func (e *Engine) List(ctx context.Context, key string) ([]containers.Labelled, error) {
	ctx, cancel := context.WithTimeout(ctx, controlTimeout)
	defer cancel()
	list, err := e.cli.ContainerList(ctx, container.ListOptions{All: true, Filters: filters.NewArgs(filters.Arg("label", key))})
	if err != nil {
		return nil, fmt.Errorf("list containers: %w", err)
	}
	out := make([]containers.Labelled, len(list))
	for i, c := range list {
		out[i] = containers.Labelled{ID: c.ID, Labels: c.Labels}
	}
	// The runs' networks last: they are removed after their containers.
	nets, err := e.listNetworks(ctx, key)
	return append(out, nets...), err
}

// Created counts the containers the engine created between since and until
// that carry every label given (each "key=value"), from the engine's event
// log. Tests use it to prove a step never reached the engine.
func (e *Engine) Created(ctx context.Context, since, until time.Time, labels ...string) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, controlTimeout)
	defer cancel()
	f := filters.NewArgs(filters.Arg("type", "container"), filters.Arg("event", "create"))
	for _, l := range labels {
		f.Add("label", l)
	}
	msgs, errs := e.cli.Events(ctx, events.ListOptions{
		Since:   strconv.FormatInt(since.Unix(), 10),
		Until:   strconv.FormatInt(until.Unix()+1, 10),
		Filters: f,
	})
	n := 0
	for {
		select {
		case m, ok := <-msgs:
			if !ok {
				return n, nil
			}
			// The engine filters by whole seconds; the window is finer.
			if at := time.Unix(0, m.TimeNano); !at.Before(since) && !at.After(until) {
				n++
			}
		case err := <-errs:
			if err == nil || errors.Is(err, io.EOF) {
				return n, nil
			}
			return n, fmt.Errorf("engine events: %w", err)
		}
	}
}

// ImageExists reports whether the image is present; it implements
// notebooks.Engine.
func (e *Engine) ImageExists(ctx context.Context, ref string) (bool, error) {
	id, err := e.ImageID(ctx, ref)
	return id != "", err
}

// ImageID returns the ID of the image ref names, or "" when it is not
// present; it implements notebooks.Engine.
func (e *Engine) ImageID(ctx context.Context, ref string) (string, error) {
	id, err := e.imageID(ctx, ref)
	if client.IsErrNotFound(err) {
		return "", nil
	}
	return id, err
}

// BuildImage builds a build context (a tar) as tag with the engine's
// classic builder, streaming the build's log; it implements
// notebooks.Engine. The build's RUN steps get limits.Network ("" is none),
// and limits.Memory and limits.CPUs when set; the engine's builder has no
// process limit. The builder's intermediate containers are removed, on
// failure too, and when ctx ends (the engine cancels a build whose client
// went away).
func (e *Engine) BuildImage(ctx context.Context, tag string, buildContext io.Reader, labels map[string]string, limits step.Limits, log io.Writer) error {
	opts := build.ImageBuildOptions{
		Tags:        []string{tag},
		Labels:      labels,
		Remove:      true,
		ForceRemove: true,
		Version:     build.BuilderV1,
		NetworkMode: limits.Network,
	}
	if opts.NetworkMode == "" {
		opts.NetworkMode = "none"
	}
	if limits.Memory > 0 {
		opts.Memory, opts.MemorySwap = limits.Memory, limits.Memory
	}
	if limits.CPUs > 0 {
		opts.CPUPeriod, opts.CPUQuota = 100000, int64(limits.CPUs*100000)
	}
	resp, err := e.cli.ImageBuild(ctx, buildContext, opts)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	// The build's errors come inside the stream; DisplayJSONMessagesStream
	// returns the first one.
	return jsonmessage.DisplayJSONMessagesStream(resp.Body, log, 0, false, nil)
}

// RemoveImage removes an image by reference; an absent image is not an error.
func (e *Engine) RemoveImage(ctx context.Context, ref string) error {
	ctx, cancel := context.WithTimeout(ctx, controlTimeout)
	defer cancel()
	_, err := e.cli.ImageRemove(ctx, ref, image.RemoveOptions{Force: true, PruneChildren: true})
	if err != nil && !client.IsErrNotFound(err) {
		return fmt.Errorf("remove image %s: %w", ref, err)
	}
	return nil
}

// PruneImages removes the images carrying label key that no container
// uses, and returns their references; an image in use is kept (the
// engine's conflict is not an error).
func (e *Engine) PruneImages(ctx context.Context, key string) ([]string, error) {
	lctx, cancel := context.WithTimeout(ctx, controlTimeout)
	list, err := e.cli.ImageList(lctx, image.ListOptions{Filters: filters.NewArgs(filters.Arg("label", key))})
	cancel()
	if err != nil {
		return nil, fmt.Errorf("list images: %w", err)
	}
	var removed []string
	for _, img := range list {
		ref := img.ID
		if len(img.RepoTags) > 0 {
			ref = img.RepoTags[0]
		}
		rctx, cancel := context.WithTimeout(ctx, controlTimeout)
		_, err := e.cli.ImageRemove(rctx, img.ID, image.RemoveOptions{PruneChildren: true})
		cancel()
		switch {
		case err == nil:
			removed = append(removed, ref)
		case cerrdefs.IsConflict(err) || client.IsErrNotFound(err):
		default:
			return removed, fmt.Errorf("remove image %s: %w", ref, err)
		}
	}
	return removed, nil
}

// Remove force-removes a container, or a run's network List listed; one
// already gone is not an error.
func (e *Engine) Remove(ctx context.Context, id string) error {
	if name, ok := strings.CutPrefix(id, kindNetwork); ok {
		return e.removeNetwork(ctx, name)
	}
	return e.remove(ctx, id)
}

// Labelled lists the ids of containers carrying label key (with value, when
// value is not empty), running or not.
func (e *Engine) Labelled(ctx context.Context, key, value string) ([]string, error) {
	f := filters.NewArgs()
	if value == "" {
		f.Add("label", key)
	} else {
		f.Add("label", key+"="+value)
	}
	list, err := e.cli.ContainerList(ctx, container.ListOptions{All: true, Filters: f})
	if err != nil {
		return nil, err
	}
	ids := make([]string, len(list))
	for i, c := range list {
		ids[i] = c.ID
	}
	return ids, nil
}

// Push tags the local image ref (NAME:TAG, not a digest) as repo:TAG (a
// registry's repository) and pushes it there; it returns the pushed image
// as repo@digest, which any node that may pull from the registry can pull
// and no one can move. The tag stays (another push of the same image may
// use it at the same time). No credentials are sent: the registry must
// take pushes without them.
func (e *Engine) Push(ctx context.Context, ref, repo string) (string, error) {
	if strings.Contains(ref, "@") {
		return "", fmt.Errorf("push %s: a reference by digest has no tag to push", ref)
	}
	tag := "latest"
	if i := strings.LastIndexByte(ref, ':'); i >= 0 && !strings.Contains(ref[i:], "/") {
		tag = ref[i+1:]
	}
	target := repo + ":" + tag
	if err := e.cli.ImageTag(ctx, ref, target); err != nil {
		return "", fmt.Errorf("tag %s as %s: %w", ref, target, err)
	}
	// Any non-empty base64 JSON serves as "no credentials".
	rc, err := e.cli.ImagePush(ctx, target, image.PushOptions{RegistryAuth: "e30="})
	if err != nil {
		return "", fmt.Errorf("push %s: %w", target, err)
	}
	defer rc.Close()
	digest := ""
	err = jsonmessage.DisplayJSONMessagesStream(rc, io.Discard, 0, false, func(m jsonmessage.JSONMessage) {
		var aux struct{ Digest string }
		if m.Aux != nil && json.Unmarshal(*m.Aux, &aux) == nil && aux.Digest != "" {
			digest = aux.Digest
		}
	})
	if err != nil {
		return "", fmt.Errorf("push %s: %w", target, err)
	}
	if digest == "" {
		return "", fmt.Errorf("push %s: the engine did not say the pushed digest", target)
	}
	return repo + "@" + digest, nil
}

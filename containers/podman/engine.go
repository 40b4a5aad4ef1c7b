// Package podman is wflow's container engine on Podman, through the
// Docker-compatible API that `podman system service` serves. It is the
// Docker engine (containers/docker) pointed at Podman's socket; what Podman
// does differently is said here and in docs/scale-out.md.
//
// Differences found (Podman 4.3, Debian bookworm):
//   - The socket: CONTAINER_HOST, as podman's own client reads it, else
//     the service's default socket: /run/podman/podman.sock for root,
//     $XDG_RUNTIME_DIR/podman/podman.sock rootless. DOCKER_HOST is the
//     Docker engine's and is not read.
//   - Images live in Podman's store, not Docker's: a locally built image
//     must be loaded there (docker save IMAGE | podman load). Podman names
//     it localhost/IMAGE and resolves the short name the step gives.
//   - OOM: Podman reports OOMKilled only when conmon saw the OOM event; on
//     cgroup v1 hosts it does not, and a step killed at its memory limit
//     then reads as exit 137 without "OOM" (the conformance suite skips
//     that check there, saying why).
package podman

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/wflow/wflow/containers"
	"github.com/wflow/wflow/containers/docker"
)

// Engine runs wflow's containers on Podman. It implements the same
// interfaces as docker.Engine, which it is.
type Engine struct {
	*docker.Engine
	host     string
	cgroupV1 bool
}

// New connects to Podman's API service at Socket() and pings it. When
// nothing answers, the error wraps docker.ErrUnavailable and says how to
// start the service.
func New(ctx context.Context) (*Engine, error) {
	host, err := Socket()
	if err != nil {
		return nil, fmt.Errorf("%w: %v", docker.ErrUnavailable, err)
	}
	e, err := docker.Connect(ctx, host, "is `podman system service --time=0 "+host+"` running?")
	if err != nil {
		return nil, err
	}
	ictx, cancel := context.WithTimeout(ctx, pingTimeout)
	info, err := e.Client().Info(ictx)
	cancel()
	if err != nil {
		e.Close()
		return nil, fmt.Errorf("%w: %v", docker.ErrUnavailable, err)
	}
	v1 := info.CgroupVersion == "1"
	if v1 && slices.ContainsFunc(info.SecurityOptions, func(o string) bool { return strings.Contains(o, "name=rootless") }) {
		e.Close()
		return nil, fmt.Errorf("%w: rootless Podman on a cgroup v1 host ignores memory, CPU and process limits (it only warns); run its service as root, or on a cgroup v2 host", docker.ErrUnavailable)
	}
	return &Engine{Engine: e, host: host, cgroupV1: v1}, nil
}

// pingTimeout bounds the info call New makes.
const pingTimeout = 10 * time.Second

// ReportsOOM reports whether Podman says when the OOM killer ended a
// container: not on cgroup v1 hosts, where conmon does not see it.
func (e *Engine) ReportsOOM() bool { return !e.cgroupV1 }

// Socket returns the URL of Podman's API socket: CONTAINER_HOST when set
// (only unix:// URLs: wflow bind-mounts host paths, so Podman must run on
// this machine), else the default socket of the user wflow runs as.
func Socket() (string, error) {
	if h := os.Getenv("CONTAINER_HOST"); h != "" {
		if !strings.HasPrefix(h, "unix://") {
			return "", fmt.Errorf("CONTAINER_HOST=%s: wflow reaches Podman only through a unix:// socket on this machine (it bind-mounts the run directory)", h)
		}
		return h, nil
	}
	if os.Geteuid() == 0 {
		return "unix:///run/podman/podman.sock", nil
	}
	dir := os.Getenv("XDG_RUNTIME_DIR")
	if dir == "" {
		return "", errors.New("rootless Podman: XDG_RUNTIME_DIR is not set, so its socket cannot be found; set CONTAINER_HOST=unix:///path/to/podman.sock")
	}
	return "unix://" + filepath.Join(dir, "podman", "podman.sock"), nil
}

// Info names the engine "podman", with Podman's version, and says when a
// step killed at its memory limit will not be named OOM.
func (e *Engine) Info(ctx context.Context) containers.EngineInfo {
	info := docker.Describe(ctx, e.Client(), "podman")
	if !e.ReportsOOM() {
		info.Gaps = append(info.Gaps, "on this cgroup v1 host Podman does not report OOM kills: a step killed at its memory limit fails with exit 137, not named OOM")
	}
	return info
}

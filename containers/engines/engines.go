// Package engines opens the container engine a command uses, by name:
// docker (the default), podman, swarm or kubernetes. Each engine lives in its own
// package; this one only knows their names and what wflow needs of all
// of them.
package engines

import (
	"context"
	"fmt"
	"os"
	"strings"

	"github.com/wflow/wflow/containers"
	"github.com/wflow/wflow/containers/docker"
	"github.com/wflow/wflow/containers/kubernetes"
	"github.com/wflow/wflow/containers/podman"
	"github.com/wflow/wflow/containers/swarm"
	"github.com/wflow/wflow/notebooks"
)

// Engine is what wflow's commands need of an engine: run steps, build and
// find notebook images, list and remove what dead processes left, and
// name itself.
type Engine interface {
	containers.Engine
	containers.Lister
	notebooks.Engine
	// PruneImages removes the images carrying label key that nothing uses
	// and returns their references.
	PruneImages(ctx context.Context, key string) ([]string, error)
	// Info names the engine and its version.
	Info(ctx context.Context) containers.EngineInfo
	// Close releases the engine's connections (and, on a swarm, the
	// networks it made).
	Close() error
}

// Names are the engines Open knows, the default first.
var Names = []string{"docker", "podman", "swarm", "kubernetes"}

// Options are what an engine needs besides its name; only the kubernetes
// engine has any.
type Options struct {
	Kubernetes kubernetes.Options
}

// EnvVar is the environment variable naming the engine when --engine does not.
const EnvVar = "WFLOW_ENGINE"

// Resolve returns the engine's name: flag when given, else $WFLOW_ENGINE,
// else docker. An unknown name is an error that lists the known ones.
func Resolve(flag string) (string, error) {
	name, from := flag, "--engine"
	if name == "" {
		name, from = os.Getenv(EnvVar), EnvVar
	}
	if name == "" {
		return Names[0], nil
	}
	for _, n := range Names {
		if name == n {
			return name, nil
		}
	}
	return "", fmt.Errorf("%s=%q: not an engine; use %s", from, name, strings.Join(Names, ", "))
}

// Open connects to the named engine (a name Resolve returned). When it is
// not there, the error wraps docker.ErrUnavailable (kubernetes.ErrUnavailable).
func Open(ctx context.Context, name string, opts Options) (Engine, error) {
	var (
		e   Engine
		err error
	)
	// Each case keeps a nil *T out of the interface.
	switch name {
	case "docker":
		var d *docker.Engine
		if d, err = docker.New(ctx); err == nil {
			e = d
		}
	case "podman":
		var p *podman.Engine
		if p, err = podman.New(ctx); err == nil {
			e = p
		}
	case "swarm":
		var s *swarm.Engine
		if s, err = swarm.New(ctx); err == nil {
			e = s
		}
	case "kubernetes":
		var k *kubernetes.Engine
		if k, err = kubernetes.New(ctx, opts.Kubernetes); err == nil {
			e = k
		}
	default:
		err = fmt.Errorf("engine %q: use %s", name, strings.Join(Names, ", "))
	}
	return e, err
}

// Services returns what runs the run's services (docs/services.md) on e,
// or nil when e runs none: the Docker engine does; Podman, a swarm and
// Kubernetes do not yet (their steps run, and a module that starts a
// service is told so).
func Services(e Engine) containers.ServiceEngine {
	// Podman's and the swarm's engines embed the Docker engine, whose
	// methods they would lend: only the Docker engine itself qualifies.
	if d, ok := e.(*docker.Engine); ok {
		return d
	}
	return nil
}

// HasServices reports whether the engine of that name runs services, and
// so gives each run its own network (Services).
func HasServices(name string) bool { return name == "docker" }

package containers

import (
	"context"
	"io"
)

// NetworkRun is the network mode of the run's own internal network: its
// services are there under their names, and steps that ask for it join
// them. It reaches nothing outside the run (docs/services.md).
const NetworkRun = "run"

// LabelService marks a service's container: its value is the service's
// name (LabelStep carries it too, so the orphan and gc paths need nothing
// new).
const LabelService = "io.wflow.service"

// ExecSpec is one command run in a service's container.
type ExecSpec struct {
	Args    []string
	Env     []string // KEY=VALUE, on top of the container's own
	User    string   // "" is the container's user
	WorkDir string
}

// ServiceEngine runs services: long-lived containers of a run, on the
// run's internal network under their names, in which commands may be run
// (Exec). containers/docker.Engine implements it; containers/engines says
// which engines may be used for it.
type ServiceEngine interface {
	// StartService creates and starts a detached container of spec (Args
	// empty: the image's own command) on the run's network, reachable
	// there as name, and returns its id. A container it created is removed
	// before an error is returned.
	StartService(ctx context.Context, spec ContainerSpec, name string) (id string, err error)
	// ServiceState says whether the service's container still runs, and
	// its exit code and last output when it does not.
	ServiceState(ctx context.Context, id string) (running bool, exitCode int, err error)
	// ServiceLogs writes the last lines of the service's output.
	ServiceLogs(ctx context.Context, id string, tail int, w io.Writer) error
	// ServiceListens reports whether the service listens on a TCP port,
	// for a readiness check by port.
	ServiceListens(ctx context.Context, id string, port int) (bool, error)
	// Exec runs one command in the service's container, streaming its
	// stdout and stderr apart. When ctx ends first, the command's
	// processes are killed (when the engine lets wflow) and err wraps
	// ctx.Err().
	Exec(ctx context.Context, id string, spec ExecSpec, stdout, stderr io.Writer) (Exit, error)
	// StopService removes the service's container, its processes killed.
	// A container already gone is not an error.
	StopService(ctx context.Context, id string) error
}

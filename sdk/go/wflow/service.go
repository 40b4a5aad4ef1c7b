package wflow

import (
	"encoding/json"
	"runtime"
	"time"
	"unsafe"

	"github.com/wflow/wflow/abi"
)

// ServiceSpec is a service (docs/services.md): a long-lived container of
// the run, on the run's own network under its Name (a database a step
// needs), or a job container whose commands run with Exec. Steps reach it
// by name when they ask for Network "run".
type ServiceSpec struct {
	Name    string  // its host name on the run's network: a-z 0-9 -
	Image   string  //
	Command Command // the process it runs (for a job container, one that waits: Argv("sleep", "86400"))
	Env     map[string]string
	Secrets map[string]string // as a Step's: its execs have them too

	CPUs     float64
	Memory   string
	Pids     int64
	ReadOnly bool
	User     string
	// Network is "run" (the default: on the run's network, reachable by
	// Name) or "none" (a job container no step needs to reach).
	Network string

	// Ready says when it is ready; StartService returns then. Nil: once
	// started.
	Ready *Ready
}

// Ready is a service's readiness check: a command run in it exits 0, or a
// process in it listens on a TCP port (read from the host, so not with a
// remote DOCKER_HOST), checked every Interval until Timeout (zero values:
// 250ms, 60s). Give a Command or a Port, not both:
//
//	check := wflow.Argv("pg_isready")
//	ready := &wflow.Ready{Command: &check, Timeout: 2 * time.Minute}
type Ready struct {
	Command  *Command
	Port     int
	Timeout  time.Duration
	Interval time.Duration
}

type serviceSpec struct {
	Name     string            `json:"name"`
	Image    string            `json:"image"`
	Command  Command           `json:"command"`
	Env      map[string]string `json:"env,omitempty"`
	Secrets  map[string]string `json:"secrets,omitempty"`
	CPUs     float64           `json:"cpus,omitempty"`
	Memory   string            `json:"memory,omitempty"`
	Pids     int64             `json:"pids,omitempty"`
	ReadOnly bool              `json:"read_only,omitempty"`
	User     string            `json:"user,omitempty"`
	Network  string            `json:"network,omitempty"`
	Ready    *readySpec        `json:"ready,omitempty"`
}

type readySpec struct {
	Command  *Command `json:"command,omitempty"`
	Port     int      `json:"port,omitempty"`
	Timeout  string   `json:"timeout,omitempty"`
	Interval string   `json:"interval,omitempty"`
}

// MarshalJSON writes the service spec of docs/abi.md.
func (s ServiceSpec) MarshalJSON() ([]byte, error) {
	spec := serviceSpec{Name: s.Name, Image: s.Image, Command: s.Command, Env: s.Env, Secrets: s.Secrets,
		CPUs: s.CPUs, Memory: s.Memory, Pids: s.Pids, ReadOnly: s.ReadOnly, User: s.User, Network: s.Network}
	if r := s.Ready; r != nil {
		spec.Ready = &readySpec{Command: r.Command, Port: r.Port, Timeout: duration(r.Timeout), Interval: duration(r.Interval)}
	}
	return json.Marshal(spec)
}

// Exec is a step run in a service's container: its commands, one after
// another, stopping at the first that exits non-zero, in the service's
// environment with Env on top. It has the service's image, limits and
// secrets; Timeout bounds all its commands.
type Exec struct {
	Name     string
	Commands []Command
	Env      map[string]string
	Timeout  time.Duration
}

// MarshalJSON writes the exec spec of docs/abi.md.
func (e Exec) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		Name     string            `json:"name"`
		Commands []Command         `json:"commands"`
		Env      map[string]string `json:"env,omitempty"`
		Timeout  string            `json:"timeout,omitempty"`
	}{e.Name, e.Commands, e.Env, duration(e.Timeout)})
}

// Service is a running service.
type Service struct {
	ID   uint32
	Name string
}

// StartService starts a service and returns once it is ready. An error
// with errno abi.ErrServiceFailed says why it could not start or was not
// ready (its last output included); its container is gone then. wflow
// stops every service at the end of the run. Needs ABI v1.2.
func StartService(s ServiceSpec) (*Service, error) {
	b, err := json.Marshal(s)
	if err != nil {
		return nil, err
	}
	var id uint32
	errno := serviceStart(ptr(b), uint32(len(b)), unsafe.Pointer(&id))
	runtime.KeepAlive(b)
	if errno != 0 {
		return nil, lastError(abi.FuncServiceStart, errno)
	}
	return &Service{ID: id, Name: s.Name}, nil
}

// SubmitExec starts an exec in the service's container and returns its
// handle at once: wait for it as for a step (Wait, WaitAny, WaitAll).
func (s *Service) SubmitExec(e Exec) (Handle, error) {
	b, err := json.Marshal(e)
	if err != nil {
		return 0, err
	}
	var h uint32
	errno := serviceExec(s.ID, ptr(b), uint32(len(b)), unsafe.Pointer(&h))
	runtime.KeepAlive(b)
	if errno != 0 {
		return 0, lastError(abi.FuncServiceExec, errno)
	}
	return Handle(h), nil
}

// Exec runs an exec in the service's container and returns its result
// once it has finished. A command that exits non-zero is not an error:
// check ExecResult.OK.
func (s *Service) Exec(e Exec) (ExecResult, error) {
	h, err := s.SubmitExec(e)
	if err != nil {
		return ExecResult{}, err
	}
	return Wait(h)
}

// Stop stops the service and removes its container; its execs still
// running end cancelled.
func (s *Service) Stop() error {
	if errno := serviceStop(s.ID); errno != 0 {
		return lastError(abi.FuncServiceStop, errno)
	}
	return nil
}

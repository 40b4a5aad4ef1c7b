// Package fakeengine is a containers.Engine for tests that need real
// processes but no container engine: each "container" is a host process,
// run in the run directory with the spec's environment and nothing else.
// It isolates nothing (no limits, no user, no mount, the host's file
// system), so it passes the conformance suite's common checks
// (containers/enginetest) and not its isolation checks. Never use it to
// run untrusted commands.
package fakeengine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strconv"
	"sync"
	"syscall"

	"github.com/wflow/wflow/containers"
)

// Engine runs containers as host processes. Images names the images it
// "has", by reference, with their ids.
type Engine struct {
	Images map[string]string

	mu      sync.Mutex
	next    int
	running map[string]map[string]string // id -> labels
}

// New returns an engine that has the images refs.
func New(refs ...string) *Engine {
	e := &Engine{Images: map[string]string{}}
	for i, ref := range refs {
		e.Images[ref] = "sha256:fake" + strconv.Itoa(i)
	}
	return e
}

// EnsureImage implements containers.Engine: it never pulls.
func (e *Engine) EnsureImage(_ context.Context, ref string, _ containers.PullPolicy) (string, error) {
	if id, ok := e.Images[ref]; ok {
		return id, nil
	}
	return "", fmt.Errorf("%w: the fake engine has no image %s", containers.ErrImageUnavailable, ref)
}

// Run implements containers.Engine: spec.Args run as a host process in
// spec.RunDir, with spec.Env as its whole environment. Ending ctx kills
// its process group.
func (e *Engine) Run(ctx context.Context, spec containers.ContainerSpec, stdout, stderr io.Writer) (containers.Exit, error) {
	if _, ok := e.Images[spec.Image]; !ok {
		return containers.Exit{Code: 1}, fmt.Errorf("%w: the fake engine has no image %s", containers.ErrImageUnavailable, spec.Image)
	}
	if len(spec.Args) == 0 {
		return containers.Exit{Code: 1}, errors.New("no command")
	}
	cmd := exec.Command(spec.Args[0], spec.Args[1:]...)
	cmd.Dir, cmd.Env, cmd.Stdout, cmd.Stderr = spec.RunDir, spec.Env, stdout, stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return containers.Exit{Code: 127}, nil // as a shell says of a command it cannot run
	}
	id := e.track(spec.Labels)
	defer e.untrack(id)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return exitOf(cmd, err)
	case <-ctx.Done():
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
		return containers.Exit{Code: 137}, fmt.Errorf("the container was stopped: %w", ctx.Err())
	}
}

// exitOf is how a finished process ended.
func exitOf(cmd *exec.Cmd, err error) (containers.Exit, error) {
	var exitErr *exec.ExitError
	if err != nil && !errors.As(err, &exitErr) {
		return containers.Exit{Code: 1}, err
	}
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return containers.Exit{Code: 128 + int(ws.Signal())}, nil
	}
	return containers.Exit{Code: cmd.ProcessState.ExitCode()}, nil
}

func (e *Engine) track(labels map[string]string) string {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.running == nil {
		e.running = map[string]map[string]string{}
	}
	e.next++
	id := "fake-" + strconv.Itoa(e.next)
	e.running[id] = labels
	return id
}

func (e *Engine) untrack(id string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	delete(e.running, id)
}

// Labelled returns the ids of the running containers whose label key has
// value.
func (e *Engine) Labelled(_ context.Context, key, value string) ([]string, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	var ids []string
	for id, labels := range e.running {
		if labels[key] == value {
			ids = append(ids, id)
		}
	}
	return ids, nil
}

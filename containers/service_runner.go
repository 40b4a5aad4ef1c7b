package containers

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/wflow/wflow/abi"
	"github.com/wflow/wflow/internal/clip"
	"github.com/wflow/wflow/rundir"
	"github.com/wflow/wflow/secrets"
	"github.com/wflow/wflow/step"
)

// ErrNoServices is returned by a Runner whose engine runs no services.
var ErrNoServices = errors.New("this engine runs no services (docs/services.md)")

// ErrNotReady wraps the error of a service that did not become ready.
var ErrNotReady = errors.New("not ready")

// serviceLogTail is how many lines of a failed service's output its error
// quotes.
const serviceLogTail = 20

// StartService starts a service (docs/services.md) and waits until it is
// ready: its readiness command exits 0 or its port accepts a connection,
// within its readiness timeout. It returns the service's container id. On
// every failure the container is removed first, and the error says why,
// with the last lines of the service's output (masked); it wraps
// ErrNotReady when the service started but was not ready in time or
// exited.
func (r *Runner) StartService(ctx context.Context, handle uint32, svc step.Service) (string, error) {
	if r.Services == nil {
		return "", ErrNoServices
	}
	fail := func(err error) (string, error) { return "", fmt.Errorf("service %s: %w", svc.Name, err) }
	st := svc.AsStep()
	limits := st.Limits.Merge(r.Defaults)
	if err := step.CheckUser(limits.User, r.Defaults.User, r.AllowRoot); err != nil {
		return fail(err)
	}
	if err := r.checkSecrets(st); err != nil {
		return fail(err)
	}
	if _, err := r.ensureImage(ctx, svc.Image, false); err != nil {
		return fail(err)
	}
	env, err := r.stepEnv(st)
	if err != nil {
		return fail(err)
	}
	limits.Timeout = 0
	if svc.Network != "none" {
		limits.Network = NetworkRun
	}
	spec := ContainerSpec{
		Image: svc.Image, Args: svc.Command.Args(), Env: env,
		RunDir: r.RunDir, WorkDir: abi.RunDirMountPoint, Records: rundir.Records, Limits: limits,
		Labels: map[string]string{
			LabelRun: r.RunID, LabelStep: svc.Name, LabelService: svc.Name,
			LabelHandle: strconv.FormatUint(uint64(handle), 10),
		},
	}
	for k, v := range ProcessLabels() {
		spec.Labels[k] = v
	}
	id, err := r.Services.StartService(ctx, spec, svc.Name)
	if err != nil {
		return "", r.maskErr(fmt.Errorf("service %s: %w", svc.Name, err))
	}
	if err := r.waitReady(ctx, id, svc); err != nil {
		return "", r.maskErr(fmt.Errorf("service %s: %w", svc.Name, NotRemoved(err, r.Services.StopService(ctx, id))))
	}
	return id, nil
}

// HasServices reports whether the runner's engine runs services.
func (r *Runner) HasServices() bool { return r.Services != nil }

// StopService stops and removes a service's container.
func (r *Runner) StopService(ctx context.Context, id string) error {
	if r.Services == nil {
		return ErrNoServices
	}
	return r.maskErr(r.Services.StopService(ctx, id))
}

// maskErr masks the run's secrets in an error's message.
func (r *Runner) maskErr(err error) error {
	if err == nil || r.Secrets.Empty() {
		return err
	}
	if msg := r.Secrets.String(err.Error()); msg != err.Error() {
		return maskedError{msg: msg, err: err}
	}
	return err
}

type maskedError struct {
	msg string
	err error
}

func (e maskedError) Error() string { return e.msg }
func (e maskedError) Unwrap() error { return e.err }

// checkTimeout bounds one readiness check.
const checkTimeout = 10 * time.Second

// waitReady polls the service's readiness check every interval until it
// passes, the service exits, or the timeout passes.
func (r *Runner) waitReady(ctx context.Context, id string, svc step.Service) error {
	ready := svc.Ready
	deadline := time.Now().Add(time.Duration(ready.Timeout))
	last := "" // what the last check that ran said
	for {
		running, code, err := r.Services.ServiceState(ctx, id)
		switch {
		case err != nil:
			return err
		case !running:
			return fmt.Errorf("%w: it exited with code %d%s%s", ErrNotReady, code, last, r.logTail(ctx, id))
		}
		ok := true
		switch {
		case ready.Command != nil:
			var out bytes.Buffer
			w := r.Secrets.Writer(&out)
			cctx, cancel := context.WithTimeout(ctx, checkTimeout)
			exit, err := r.Services.Exec(cctx, id, ExecSpec{Args: ready.Command.Args(), WorkDir: abi.RunDirMountPoint}, w, w)
			timedOut := cctx.Err() != nil
			cancel()
			secrets.Flush(w)
			ok = err == nil && exit.Code == 0
			switch {
			case ok:
			case err == nil:
				last = fmt.Sprintf("; its last check exited %d", exit.Code)
				if text := strings.TrimSpace(out.String()); text != "" {
					last += ": " + clip.String(text, 400)
				}
			case timedOut && ctx.Err() == nil:
				last = fmt.Sprintf("; its last check ran past %s", checkTimeout)
			case ctx.Err() == nil:
				last = "; its last check failed: " + err.Error()
			}
		case ready.Port != 0:
			if ok, err = r.Services.ServiceListens(ctx, id, ready.Port); err != nil {
				return err
			}
			last = fmt.Sprintf("; nothing in it listened on TCP port %d", ready.Port)
		}
		if ok {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if !time.Now().Before(deadline) {
			return fmt.Errorf("%w within %s%s%s", ErrNotReady, time.Duration(ready.Timeout), last, r.logTail(ctx, id))
		}
		select {
		case <-time.After(min(time.Duration(ready.Interval), time.Until(deadline))):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// logTail is the last lines of a service's output, for an error.
func (r *Runner) logTail(ctx context.Context, id string) string {
	var out bytes.Buffer
	w := r.Secrets.Writer(&out)
	if err := r.Services.ServiceLogs(context.WithoutCancel(ctx), id, serviceLogTail, w); err != nil {
		return ""
	}
	secrets.Flush(w)
	text := strings.TrimSpace(out.String())
	if text == "" {
		return "; it printed nothing"
	}
	return "; its last output:\n" + clip.String(text, 4000)
}

// exec runs one command of an exec step in its service's container: in
// the service's environment (the run's --env, the service's env and
// secrets), with the exec's own env on top.
func (r *Runner) exec(ctx context.Context, st step.Step, spec ContainerSpec, stdout, stderr io.Writer) (Exit, error) {
	if r.Services == nil {
		return Exit{Code: 1}, ErrNoServices
	}
	env := make([]string, 0, len(st.Env))
	for _, k := range slices.Sorted(maps.Keys(st.Env)) {
		env = append(env, k+"="+st.Env[k])
	}
	return r.Services.Exec(ctx, st.ExecIn, ExecSpec{Args: spec.Args, Env: env, WorkDir: spec.WorkDir}, stdout, stderr)
}

package hostfuncs

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/wflow/wflow/abi"
	"github.com/wflow/wflow/containers"
	"github.com/wflow/wflow/internal/guestmem"
	"github.com/wflow/wflow/journal"
	"github.com/wflow/wflow/step"
)

// ServiceRunner starts and stops services (docs/services.md);
// policies.Runner implements it, with the policies before each start.
type ServiceRunner interface {
	HasServices() bool
	StartService(ctx context.Context, handle uint32, svc step.Service) (id string, decisions []step.Decision, err error)
	StopService(ctx context.Context, id string) error
}

// service is a running service of the run.
type service struct {
	id        uint32 // the guest's name for it, from the handle counter
	name      string
	image     string
	container string
	execs     map[uint32]*task // its execs not yet finished
}

// services returns the host's service runner, or an errno saying there is none.
func (h *Host) services() (ServiceRunner, *guestmem.Error) {
	sr, ok := h.cfg.Runner.(ServiceRunner)
	if !ok || !sr.HasServices() {
		return nil, guestmem.Fail(abi.ErrInvalidArgument, "%v", containers.ErrNoServices)
	}
	return sr, nil
}

// service_start(spec_ptr, spec_len, service_ptr) -> errno
func (h *Host) serviceStart(ctx context.Context, mem guestmem.Memory, a []uint32) *guestmem.Error {
	spec, err := mem.Read("service spec", a[0], a[1], abi.MaxStepSpecLen)
	if err != nil {
		return err
	}
	h.note(func(c *journal.Call) { c.Req.Spec = journal.Bytes(spec).Ptr() })
	if err := mem.CheckWritable("service_ptr", a[2], 4); err != nil {
		return err
	}
	svc, perr := step.ParseService(spec)
	if perr == nil {
		svc, perr = step.ExpandServiceVars(svc, h.cfg.Vars)
	}
	if perr == nil {
		perr = h.checkSecrets(svc.Name, svc.Secrets)
	}
	if err := specError("service spec", perr); err != nil {
		return err
	}
	h.note(func(c *journal.Call) { c.Step = svc.Name })
	sr, gerr := h.services()
	if gerr != nil {
		return gerr
	}
	if h.ctx.Err() != nil {
		return guestmem.Fail(abi.ErrCancelled, "the run is being cancelled")
	}
	h.mu.Lock()
	for _, s := range h.running {
		if s.name == svc.Name {
			h.mu.Unlock()
			return guestmem.Fail(abi.ErrInvalidArgument, "a service named %s runs already in this run (service %d)", svc.Name, s.id)
		}
	}
	if len(h.running) >= abi.MaxServices {
		h.mu.Unlock()
		return guestmem.Fail(abi.ErrLimit, "%d services run, at most %d: stop one first", len(h.running), abi.MaxServices)
	}
	h.next++
	s := &service{id: h.next, name: svc.Name, image: svc.Image, execs: map[uint32]*task{}}
	h.running[s.id] = s // its name is taken while it starts
	h.wg.Add(1)
	h.mu.Unlock()
	defer h.wg.Done()

	// Under the run's context, stopped by the module's too: the start is
	// one blocking call.
	sctx, cancel := context.WithCancel(h.ctx)
	stop := context.AfterFunc(ctx, cancel)
	started := time.Now()
	container, _, serr := sr.StartService(sctx, s.id, svc)
	stop()
	cancel()
	if serr != nil {
		h.mu.Lock()
		delete(h.running, s.id)
		h.mu.Unlock()
		if h.ctx.Err() != nil || ctx.Err() != nil {
			return guestmem.Fail(abi.ErrCancelled, "the run is being cancelled")
		}
		return guestmem.Fail(abi.ErrServiceFailed, "%v", serr)
	}
	h.mu.Lock()
	s.container = container
	h.mu.Unlock()
	h.cfg.Observer.Log(abi.LogInfo, fmt.Sprintf("service %s (%s) is ready after %s, as %s on the run's network", svc.Name, svc.Image, time.Since(started).Round(time.Millisecond), svc.Name))
	mem.WriteU32("service_ptr", a[2], s.id)
	h.note(func(c *journal.Call) { answered(c).Handle = u32(s.id) })
	return nil
}

// specError turns a spec's parse error into the errno of docs/abi.md.
func specError(what string, err error) *guestmem.Error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, step.ErrInvalidJSON):
		return guestmem.Fail(abi.ErrInvalidJSON, "%s: %v", what, err)
	case errors.Is(err, step.ErrInvalidStep):
		return guestmem.Fail(abi.ErrInvalidStep, "%v", err)
	default:
		return guestmem.Fail(abi.ErrInvalidArgument, "%v", err)
	}
}

// readyService returns the started service id names.
func (h *Host) readyService(id uint32) (*service, *guestmem.Error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	s, ok := h.running[id]
	if !ok || s.container == "" {
		return nil, guestmem.Fail(abi.ErrUnknownHandle, "service %d is not running: it was never started, or was stopped", id)
	}
	return s, nil
}

// service_exec(service, spec_ptr, spec_len, handle_ptr) -> errno
func (h *Host) serviceExec(_ context.Context, mem guestmem.Memory, a []uint32) *guestmem.Error {
	id := a[0]
	h.note(func(c *journal.Call) { c.Req.Handle = u32(id) })
	// The spec is read first, as for step_submit (and as a replay reads
	// it), whether or not the service runs.
	spec, err := mem.Read("step spec", a[1], a[2], abi.MaxStepSpecLen)
	if err != nil {
		return err
	}
	h.note(func(c *journal.Call) { c.Req.Spec = journal.Bytes(spec).Ptr() })
	if err := mem.CheckWritable("handle_ptr", a[3], 4); err != nil {
		return err
	}
	s, gerr := h.readyService(id)
	if gerr != nil {
		return gerr
	}
	t, gerr := h.submit(mem, a[1], a[2], a[3], func(spec []byte) (*task, error) {
		st, err := step.ParseExec(spec)
		if err != nil {
			return nil, err
		}
		if st, err = step.ExpandVars(st, h.cfg.Vars); err != nil {
			return nil, err
		}
		st.Image, st.ExecIn, st.ServiceName = s.image, s.container, s.name
		return &task{step: st, run: func(ctx context.Context, handle uint32, live containers.Live) step.ExecResult {
			return h.cfg.Runner.Run(ctx, handle, st, live)
		}}, nil
	})
	if gerr != nil {
		return gerr
	}
	h.mu.Lock()
	if _, running := h.running[id]; running && !t.done {
		s.execs[t.handle] = t
	} else {
		t.cancel(step.ErrServiceStopped) // stopped meanwhile
	}
	h.mu.Unlock()
	mem.WriteU32("handle_ptr", a[3], t.handle)
	h.note(func(c *journal.Call) { answered(c).Handle, c.Step = u32(t.handle), t.step.Name })
	return nil
}

// service_stop(service) -> errno
func (h *Host) serviceStop(_ context.Context, _ guestmem.Memory, a []uint32) *guestmem.Error {
	id := a[0]
	h.note(func(c *journal.Call) { c.Req.Handle = u32(id) })
	s, gerr := h.readyService(id)
	if gerr != nil {
		return gerr
	}
	sr, gerr := h.services()
	if gerr != nil {
		return gerr
	}
	h.mu.Lock()
	delete(h.running, id)
	h.mu.Unlock()
	if err := h.stopService(sr, s); err != nil {
		// Kept, so that the end of the run tries again.
		h.mu.Lock()
		h.running[id] = s
		h.mu.Unlock()
		return guestmem.Fail(abi.ErrServiceFailed, "service %s: %v", s.name, err)
	}
	return nil
}

// stopService cancels a service's execs, then removes its container.
func (h *Host) stopService(sr ServiceRunner, s *service) error {
	h.mu.Lock()
	execs := make([]*task, 0, len(s.execs))
	for _, t := range s.execs {
		execs = append(execs, t)
	}
	h.mu.Unlock()
	for _, t := range execs {
		t.cancel(step.ErrServiceStopped)
	}
	err := sr.StopService(context.WithoutCancel(h.ctx), s.container)
	h.cfg.Observer.Log(abi.LogInfo, fmt.Sprintf("service %s stopped", s.name))
	return err
}

// stopAll stops every service still running: the run has ended.
func (h *Host) stopAll() {
	sr, gerr := h.services()
	if gerr != nil {
		return
	}
	h.mu.Lock()
	var all []*service
	for id, s := range h.running {
		if s.container != "" {
			all = append(all, s)
		}
		delete(h.running, id)
	}
	h.mu.Unlock()
	var wg sync.WaitGroup
	for _, s := range all {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := h.stopService(sr, s); err != nil {
				h.cfg.Observer.Log(abi.LogWarn, fmt.Sprintf("service %s: %v (wflow gc removes it once this process has ended)", s.name, err))
			}
		}()
	}
	wg.Wait()
}

// execDone forgets a finished exec of its service.
func (h *Host) execDone(t *task) {
	if t.step.ExecIn == "" {
		return
	}
	for _, s := range h.running {
		delete(s.execs, t.handle)
	}
}

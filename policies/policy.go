// Package policies decides on every step before it runs: an ordered chain of
// policies, built in (Go) or sandboxed Wasm modules, each of which allows the
// step, refuses it with a reason, or amends it. Any failure of a policy is a
// refusal (fail-closed). Runner wraps the step runner so that a refused step
// never reaches the container engine. The policy ABI is docs/policies.md.
package policies

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/wflow/wflow/containers"
	"github.com/wflow/wflow/step"
)

// Kinds of request.
const (
	KindContainer     = "container"      // a step about to run (notebook runs too: the container they become)
	KindNotebookBuild = "notebook-build" // a notebook image about to be built
	KindService       = "service"        // a service about to start: its command as the step's one command
	KindExec          = "exec"           // commands about to run in a service's container (service_exec); image: the service's
)

// Request is what a policy decides on: a step and the run it belongs to.
// For a notebook build, Step stands for what the build runs (Image is the
// base image, one command installs the requirements) and Build says it.
type Request struct {
	Kind  string     `json:"kind"`
	Step  step.Step  `json:"step"`
	Build *BuildInfo `json:"build,omitempty"`
	Run   RunInfo    `json:"run"`
}

// BuildInfo describes a notebook image build.
type BuildInfo struct {
	Base         string   `json:"base"`
	Requirements []string `json:"requirements"`
}

// RunInfo is what a policy may know of the run.
type RunInfo struct {
	RunID   string `json:"run_id"`
	Module  string `json:"module"`  // the workflow module's file name
	Network string `json:"network"` // the network mode the run allows besides none
}

// Verdict is one policy's answer. Step is the amended step when Verdict is
// step.VerdictAmend.
type Verdict struct {
	Verdict string
	Reason  string
	Step    *step.Step
}

// Policy decides on steps. An error means the policy could not decide; the
// chain then refuses the step.
type Policy interface {
	Name() string
	Decide(ctx context.Context, req Request) (Verdict, error)
}

// Chain is an ordered list of policies. Each sees the step as amended by
// those before it; the first refusal ends the chain. When any policy
// amended the step, every policy is asked again about the final step, in
// order, and each must allow it as it is (or amend it into itself): so a
// later policy cannot amend away what an earlier one required, and the step
// that runs is one every policy accepts. A policy that would change the
// final step again refuses it: the policies disagree.
type Chain struct {
	Policies []Policy
}

// Check runs the chain on a step and returns the step to run (amended or
// not), every decision taken, and whether the step may run.
func (c Chain) Check(ctx context.Context, handle uint32, req Request) (step.Step, []step.Decision, bool) {
	var decisions []step.Decision
	amended := false
	for _, p := range c.Policies {
		d := decide(ctx, p, handle, req)
		decisions = append(decisions, d.Decision)
		if d.Verdict == step.VerdictDeny {
			return req.Step, decisions, false
		}
		if d.Verdict == step.VerdictAmend {
			req = req.amended(*d.step)
			amended = true
		}
	}
	if !amended {
		return req.Step, decisions, true
	}
	for _, p := range c.Policies {
		d := decide(ctx, p, handle, req)
		d.Policy = p.Name() + " (recheck of the final step)"
		if d.Verdict == step.VerdictAmend {
			d.Verdict = step.VerdictDeny
			d.Reason = fmt.Sprintf("the policy would change the final step again (%s), so the policies disagree", changedFields(d.Changes))
			d.Changes = nil
		}
		decisions = append(decisions, d.Decision)
		if d.Verdict == step.VerdictDeny {
			return req.Step, decisions, false
		}
	}
	return req.Step, decisions, true
}

// amended returns the request with its step amended; a build's base follows
// the step's image, which stands for it, so later policies see one base.
func (req Request) amended(st step.Step) Request {
	req.Step = st
	if req.Build != nil {
		b := *req.Build
		b.Base = st.Image
		req.Build = &b
	}
	return req
}

// changedFields names the fields of changes: "memory, user".
func changedFields(changes []step.Change) string {
	names := make([]string, len(changes))
	for i, c := range changes {
		names[i] = c.Field
	}
	return strings.Join(names, ", ")
}

type decision struct {
	step.Decision
	step *step.Step
}

// decide asks one policy and turns every way it can fail into a refusal.
func decide(ctx context.Context, p Policy, handle uint32, req Request) decision {
	d := decision{Decision: step.Decision{Policy: p.Name(), Step: req.Step.Name, Handle: handle}}
	v, err := p.Decide(ctx, req)
	deny := func(format string, args ...any) decision {
		d.Verdict, d.Reason, d.step = step.VerdictDeny, fmt.Sprintf(format, args...), nil
		return d
	}
	if err != nil {
		return deny("the policy failed, so the step is refused: %v", err)
	}
	d.Verdict, d.Reason = v.Verdict, v.Reason
	switch v.Verdict {
	case step.VerdictAllow:
	case step.VerdictDeny:
		if v.Reason == "" {
			d.Reason = "refused without a reason"
		}
	case step.VerdictAmend:
		if v.Step == nil {
			return deny("the policy amended the step without giving it")
		}
		if v.Step.Name != req.Step.Name {
			return deny("the policy renamed the step to %q; amendments may not rename", v.Step.Name)
		}
		if err := v.Step.Validate(); err != nil {
			return deny("the policy amended the step into an invalid one: %v", err)
		}
		changes, err := Diff(req.Step, *v.Step)
		if err != nil {
			return deny("comparing the amended step: %v", err)
		}
		if len(changes) == 0 {
			d.Verdict = step.VerdictAllow // an amendment that changes nothing
			break
		}
		d.Changes, d.step = changes, v.Step
	default:
		return deny("the policy gave no verdict allow, deny or amend (got %q)", v.Verdict)
	}
	return d
}

// Diff lists the top-level fields of the step spec that differ between two
// steps, with their JSON before and after.
func Diff(before, after step.Step) ([]step.Change, error) {
	b, err := fields(before)
	if err != nil {
		return nil, err
	}
	a, err := fields(after)
	if err != nil {
		return nil, err
	}
	keys := map[string]bool{}
	for k := range b {
		keys[k] = true
	}
	for k := range a {
		keys[k] = true
	}
	names := make([]string, 0, len(keys))
	for k := range keys {
		names = append(names, k)
	}
	sort.Strings(names)
	var changes []step.Change
	for _, k := range names {
		if !bytes.Equal(b[k], a[k]) {
			changes = append(changes, step.Change{Field: k, Before: orNull(b[k]), After: orNull(a[k])})
		}
	}
	return changes, nil
}

func fields(s step.Step) (map[string]json.RawMessage, error) {
	raw, err := step.MarshalJSON(s, false)
	if err != nil {
		return nil, err
	}
	var m map[string]json.RawMessage
	return m, json.Unmarshal(raw, &m)
}

func orNull(b json.RawMessage) json.RawMessage {
	if b == nil {
		return json.RawMessage("null")
	}
	return b
}

// StepRunner runs a step; containers.Runner implements it.
type StepRunner interface {
	Run(ctx context.Context, handle uint32, step step.Step, live containers.Live) step.ExecResult
}

// Runner puts a Chain in front of a StepRunner: a refused step gets a result
// with error kind "denied" and never reaches the engine; an allowed or
// amended one runs as the chain left it. Every decision lands in the result
// and in Audit.
type Runner struct {
	Next  StepRunner
	Chain Chain
	Info  RunInfo
	Audit *Audit // may be nil
}

// Run runs a step (hostfuncs.StepRunner): Admit, then RunAdmitted. An
// exec (step.ExecIn set) is put to the chain as kind "exec".
func (r *Runner) Run(ctx context.Context, handle uint32, st step.Step, live containers.Live) step.ExecResult {
	if st.ExecIn != "" {
		return r.runExec(ctx, handle, st, live)
	}
	final, decisions, refused := r.Admit(ctx, handle, st)
	if refused != nil {
		return *refused
	}
	return r.RunAdmitted(ctx, handle, final, decisions, live)
}

// Admit runs the chain on a step. It returns the step to run and the
// decisions taken or, when the step is refused, the result to report
// instead (error kind "denied"). Callers that must do work before a step
// runs (a notebook's image build) admit it first, so nothing happens for a
// step the policies refuse.
func (r *Runner) Admit(ctx context.Context, handle uint32, st step.Step) (step.Step, []step.Decision, *step.ExecResult) {
	return r.admit(ctx, handle, Request{Kind: KindContainer, Step: st, Run: r.Info})
}

// AdmitBuild puts a notebook image build to the chain before anything is
// built: its base image and requirements, as a request of kind
// "notebook-build". It returns the base image to build from (a policy may
// amend it, to pin a digest), the decisions, or the result to report when
// the build is refused. A build can be amended in its base image only: an
// amendment of anything else (the commands that stand for the
// requirements, say) would be approved by the policies but not built, so
// it refuses the build.
func (r *Runner) AdmitBuild(ctx context.Context, handle uint32, name, base string, requirements []string) (string, []step.Decision, *step.ExecResult) {
	started := time.Now().UTC()
	st := step.Step{Name: name, Image: base, Commands: []step.Command{{Argv: append([]string{"pip", "install"}, requirements...)}}}
	final, decisions, refused := r.admit(ctx, handle, Request{Kind: KindNotebookBuild, Step: st, Run: r.Info,
		Build: &BuildInfo{Base: base, Requirements: append([]string{}, requirements...)}})
	if refused != nil {
		return final.Image, decisions, refused
	}
	asBuilt := final
	asBuilt.Image = base
	changes, err := Diff(st, asBuilt)
	if err != nil || len(changes) > 0 {
		var fields []string
		for _, c := range changes {
			fields = append(fields, c.Field)
		}
		d := step.Decision{Policy: "wflow", Step: name, Handle: handle, Verdict: step.VerdictDeny,
			Reason: fmt.Sprintf("a notebook build can be amended in its base image only; the policies changed %s", strings.Join(fields, ", "))}
		r.Audit.add([]step.Decision{d})
		decisions = append(decisions, d)
		return final.Image, decisions, refusal(st, handle, started, decisions)
	}
	return final.Image, decisions, nil
}

func (r *Runner) admit(ctx context.Context, handle uint32, req Request) (step.Step, []step.Decision, *step.ExecResult) {
	started := time.Now().UTC()
	final, decisions, ok := r.Chain.Check(ctx, handle, req)
	r.Audit.add(decisions)
	if ok {
		return final, decisions, nil
	}
	return final, decisions, refusal(final, handle, started, decisions)
}

// refusal is the result of a step the last of decisions refused.
func refusal(st step.Step, handle uint32, started time.Time, decisions []step.Decision) *step.ExecResult {
	last := decisions[len(decisions)-1]
	finished := time.Now().UTC()
	return &step.ExecResult{
		Step: st.Name, Handle: handle, Image: st.Image, ReturnCode: 1,
		ErrorKind: step.ErrorKindDenied,
		Error:     fmt.Sprintf("refused by policy %s: %s", last.Policy, last.Reason),
		Started:   started, Finished: finished, DurationMS: finished.Sub(started).Milliseconds(),
		Commands: []step.CommandResult{}, Decisions: decisions,
	}
}

// RunAdmitted runs a step Admit let through, as it left it.
func (r *Runner) RunAdmitted(ctx context.Context, handle uint32, st step.Step, decisions []step.Decision, live containers.Live) step.ExecResult {
	res := r.Next.Run(ctx, handle, st, live)
	res.Decisions = decisions
	return res
}

// ExecAmendable are the fields of an exec a policy may amend: the image,
// limits and secrets are its service's.
var ExecAmendable = []string{"commands", "env", "timeout"}

// runExec puts an exec to the chain (kind "exec") and runs it as the chain
// left it; an amendment of anything but ExecAmendable refuses it.
func (r *Runner) runExec(ctx context.Context, handle uint32, st step.Step, live containers.Live) step.ExecResult {
	started := time.Now().UTC()
	final, decisions, refused := r.admit(ctx, handle, Request{Kind: KindExec, Step: st, Run: r.Info})
	if refused != nil {
		refused.Service = st.ServiceName
		return *refused
	}
	changes, err := Diff(st, final)
	for _, c := range changes {
		if err == nil && !slices.Contains(ExecAmendable, c.Field) {
			err = fmt.Errorf("the policies changed %s", c.Field)
		}
	}
	if err != nil {
		d := step.Decision{Policy: "wflow", Step: st.Name, Handle: handle, Verdict: step.VerdictDeny,
			Reason: fmt.Sprintf("an exec can be amended in %s only; %v", strings.Join(ExecAmendable, ", "), err)}
		r.Audit.add([]step.Decision{d})
		res := refusal(st, handle, started, append(decisions, d))
		res.Service = st.ServiceName
		return *res
	}
	final.ExecIn, final.ServiceName, final.Image = st.ExecIn, st.ServiceName, st.Image
	return r.RunAdmitted(ctx, handle, final, decisions, live)
}

// ServiceRunner starts and stops services; containers.Runner implements it.
type ServiceRunner interface {
	HasServices() bool
	StartService(ctx context.Context, handle uint32, svc step.Service) (string, error)
	StopService(ctx context.Context, id string) error
}

// HasServices reports whether the runner behind runs services.
func (r *Runner) HasServices() bool {
	next, ok := r.Next.(ServiceRunner)
	return ok && next.HasServices()
}

// ErrRefused is matched (errors.Is) by the error of a service the
// policies refused.
var ErrRefused = errors.New("refused by a policy")

// refusedError is a refusal's message, which names the policy already.
type refusedError struct{ msg string }

func (e *refusedError) Error() string        { return e.msg }
func (e *refusedError) Is(target error) bool { return target == ErrRefused }

// StartService puts a service to the chain (kind "service": the step that
// stands for it, step.Service.AsStep) and starts it as the chain left it.
// A policy may amend its image, command, env, secrets and limits; an
// amendment of anything else refuses it. The decisions land in Audit.
func (r *Runner) StartService(ctx context.Context, handle uint32, svc step.Service) (string, []step.Decision, error) {
	next, ok := r.Next.(ServiceRunner)
	if !ok || !next.HasServices() {
		return "", nil, containers.ErrNoServices
	}
	st := svc.AsStep()
	final, decisions, refused := r.admit(ctx, handle, Request{Kind: KindService, Step: st, Run: r.Info})
	if refused != nil {
		return "", decisions, fmt.Errorf("service %s: %w", svc.Name, &refusedError{refused.Error})
	}
	changes, err := Diff(st, final)
	if err != nil {
		return "", decisions, err
	}
	for _, c := range changes {
		if !slices.Contains(step.ServiceStepFields, c.Field) {
			d := step.Decision{Policy: "wflow", Step: svc.Name, Handle: handle, Verdict: step.VerdictDeny,
				Reason: fmt.Sprintf("a service can be amended in %s only; the policies changed %s", strings.Join(step.ServiceStepFields, ", "), c.Field)}
			r.Audit.add([]step.Decision{d})
			return "", append(decisions, d), fmt.Errorf("service %s: %w", svc.Name, &refusedError{"refused by wflow: " + d.Reason})
		}
	}
	id, err := next.StartService(ctx, handle, svc.WithStep(final))
	return id, decisions, err
}

// StopService stops a service.
func (r *Runner) StopService(ctx context.Context, id string) error {
	next, ok := r.Next.(ServiceRunner)
	if !ok {
		return containers.ErrNoServices
	}
	return next.StopService(ctx, id)
}

// Audit collects every decision of a run, for the run report.
type Audit struct {
	mu        sync.Mutex
	decisions []step.Decision
}

func (a *Audit) add(ds []step.Decision) {
	if a == nil {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.decisions = append(a.decisions, ds...)
}

// Decisions returns every decision so far, in the order they were taken.
func (a *Audit) Decisions() []step.Decision {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]step.Decision(nil), a.decisions...)
}

package policies

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/wflow/wflow/containers"
	"github.com/wflow/wflow/step"
)

// fakePolicy answers with a fixed verdict, or applies amend to the step.
type fakePolicy struct {
	name    string
	verdict string
	reason  string
	amend   func(*step.Step)
	err     error
	saw     *[]step.Step
}

func (f fakePolicy) Name() string { return f.name }

func (f fakePolicy) Decide(_ context.Context, req Request) (Verdict, error) {
	if f.saw != nil {
		*f.saw = append(*f.saw, req.Step)
	}
	if f.err != nil {
		return Verdict{}, f.err
	}
	v := Verdict{Verdict: f.verdict, Reason: f.reason}
	if f.amend != nil {
		s := req.Step
		f.amend(&s)
		v.Step = &s
	}
	return v, nil
}

var testStep = step.Step{Name: "s", Image: "img", Commands: []step.Command{{Shell: "true"}}}

func TestChainOrderAndAmendments(t *testing.T) {
	var saw []step.Step
	addMemory := fakePolicy{name: "add", verdict: step.VerdictAmend, reason: "needs memory", amend: func(s *step.Step) { s.Memory = 64 << 20 }}
	requireMemory := fakePolicy{name: "require", verdict: step.VerdictAllow, saw: &saw}
	final, ds, ok := Chain{Policies: []Policy{addMemory, requireMemory}}.Check(context.Background(), 3, Request{Step: testStep})
	// Two decisions, then two more: an amended step is put to every policy again.
	if !ok || final.Memory != 64<<20 || len(ds) != 4 {
		t.Fatalf("ok=%v final=%+v decisions=%+v", ok, final, ds)
	}
	if len(saw) != 2 || saw[0].Memory != 64<<20 || saw[1].Memory != 64<<20 {
		t.Errorf("the second policy saw %+v, want the amended step", saw)
	}
	d := ds[0]
	if d.Policy != "add" || d.Step != "s" || d.Handle != 3 || d.Verdict != "amend" || len(d.Changes) != 1 ||
		d.Changes[0].Field != "memory" || string(d.Changes[0].Before) != "null" || string(d.Changes[0].After) != "67108864" {
		t.Errorf("decision %+v", d)
	}
}

func TestChainFailsClosed(t *testing.T) {
	deny := fakePolicy{name: "deny", verdict: step.VerdictDeny, reason: "no"}
	never := fakePolicy{name: "never", verdict: step.VerdictAllow, saw: new([]step.Step)}
	cases := []struct {
		name   string
		p      Policy
		reason string
	}{
		{"deny", deny, "no"},
		{"deny without reason", fakePolicy{name: "x", verdict: step.VerdictDeny}, "without a reason"},
		{"error", fakePolicy{name: "x", err: errors.New("boom")}, "the policy failed, so the step is refused: boom"},
		{"unknown verdict", fakePolicy{name: "x", verdict: "maybe"}, `no verdict allow, deny or amend (got "maybe")`},
		{"amend without step", fakePolicy{name: "x", verdict: step.VerdictAmend}, "without giving it"},
		{"rename", fakePolicy{name: "x", verdict: step.VerdictAmend, amend: func(s *step.Step) { s.Name = "other" }}, "renamed"},
		{"invalid amendment", fakePolicy{name: "x", verdict: step.VerdictAmend, amend: func(s *step.Step) { s.Commands = nil }}, "invalid one"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, ds, ok := Chain{Policies: []Policy{c.p, never}}.Check(context.Background(), 1, Request{Step: testStep})
			if ok || len(ds) != 1 || ds[0].Verdict != step.VerdictDeny || !strings.Contains(ds[0].Reason, c.reason) {
				t.Errorf("ok=%v decisions=%+v", ok, ds)
			}
		})
	}
	if len(*never.saw) != 0 {
		t.Error("a policy after a refusal was asked")
	}
}

func TestFinalStepMustPassEveryPolicy(t *testing.T) {
	toHost := fakePolicy{name: "sneaky", verdict: step.VerdictAmend, reason: "faster", amend: func(s *step.Step) { s.Network = "host" }}
	net := Network{Allowed: "none"}
	_, ds, ok := Chain{Policies: []Policy{net, toHost}}.Check(context.Background(), 1, Request{Step: testStep})
	if ok || len(ds) != 3 || !strings.Contains(ds[2].Policy, "recheck") || !strings.Contains(ds[2].Reason, `network "host"`) {
		t.Errorf("amended past a built-in: ok=%v decisions=%+v", ok, ds)
	}
	// A later policy cannot amend away what an earlier one required.
	require := fakePolicy{name: "require-memory", verdict: step.VerdictAmend, reason: "256m", amend: func(s *step.Step) { s.Memory = 256 << 20 }}
	lift := fakePolicy{name: "lift", verdict: step.VerdictAmend, reason: "more", amend: func(s *step.Step) { s.Memory = 1 << 30 }}
	_, ds, ok = Chain{Policies: []Policy{require, lift}}.Check(context.Background(), 1, Request{Step: testStep})
	if ok || len(ds) != 3 || ds[2].Policy != "require-memory (recheck of the final step)" || !strings.Contains(ds[2].Reason, "memory") || !strings.Contains(ds[2].Reason, "disagree") {
		t.Errorf("amended away: ok=%v decisions=%+v", ok, ds)
	}
	// Amendments that agree pass: each policy allows the final step.
	final, ds, ok := Chain{Policies: []Policy{require, net}}.Check(context.Background(), 1, Request{Step: testStep})
	if !ok || len(ds) != 4 || final.Memory != 256<<20 || ds[2].Verdict != step.VerdictAllow {
		t.Errorf("agreeing amendments: ok=%v decisions=%+v", ok, ds)
	}
	// Without an amendment, no policy is asked twice.
	_, ds, ok = Chain{Policies: []Policy{net}}.Check(context.Background(), 1, Request{Step: testStep})
	if !ok || len(ds) != 1 {
		t.Errorf("ok=%v decisions=%+v", ok, ds)
	}
}

func TestBuiltins(t *testing.T) {
	with := func(f func(*step.Step)) Request { s := testStep; f(&s); return Request{Step: s} }
	cases := []struct {
		name    string
		p       Policy
		req     Request
		verdict string
		reason  string
	}{
		{"network none", Network{}, Request{Step: testStep}, "allow", ""},
		{"network asked, not allowed", Network{}, with(func(s *step.Step) { s.Network = "bridge" }), "deny", "--network bridge"},
		{"network asked, allowed", Network{Allowed: "bridge"}, with(func(s *step.Step) { s.Network = "bridge" }), "allow", ""},
		{"image allowed", Images{Patterns: []string{"wflow-test/*"}}, with(func(s *step.Step) { s.Image = "wflow-test/busybox:latest" }), "allow", ""},
		{"image untagged vs :latest pattern", Images{Patterns: []string{"busybox:latest"}}, with(func(s *step.Step) { s.Image = "busybox" }), "allow", ""},
		{"image by digest", Images{Patterns: []string{"*@sha256:*"}}, with(func(s *step.Step) { s.Image = "python@sha256:abc" }), "allow", ""},
		{"image refused", Images{Patterns: []string{"wflow-test/*"}}, with(func(s *step.Step) { s.Image = "evil/miner" }), "deny", `image "evil/miner" matches none`},
		{"under ceilings", Ceilings{Max: step.Limits{Memory: 1 << 30}}, with(func(s *step.Step) { s.Memory = 512 << 20 }), "allow", ""},
		{"memory over ceiling", Ceilings{Max: step.Limits{Memory: 1 << 30}}, with(func(s *step.Step) { s.Memory = 2 << 30 }), "deny", "--max-step-memory"},
		{"memory unset under a ceiling", Ceilings{Max: step.Limits{Memory: 1 << 30}}, Request{Step: testStep}, "deny", "memory 0 MiB"},
		{"default fills the limit", Ceilings{Max: step.Limits{CPUs: 2}, Defaults: step.Limits{CPUs: 1}}, Request{Step: testStep}, "allow", ""},
		{"cpus over ceiling", Ceilings{Max: step.Limits{CPUs: 2}}, with(func(s *step.Step) { s.CPUs = 4 }), "deny", "--max-step-cpus"},
		{"timeout over ceiling", Ceilings{Max: step.Limits{Timeout: 60e9}}, with(func(s *step.Step) { s.Timeout = 120e9 }), "deny", "--max-step-timeout"},
	}
	for _, c := range cases {
		v, err := c.p.Decide(context.Background(), c.req)
		if err != nil || v.Verdict != c.verdict || !strings.Contains(v.Reason, c.reason) {
			t.Errorf("%s: %+v, %v", c.name, v, err)
		}
	}
	if err := ValidateImagePatterns([]string{"a/[b"}); err == nil {
		t.Error("a malformed glob was accepted")
	}
}

func TestAdmitBuild(t *testing.T) {
	r := &Runner{Chain: Chain{Policies: []Policy{Network{}, Ceilings{Max: step.Limits{Memory: 1 << 30}}, Images{Patterns: []string{"python:*"}}}}}
	base, ds, refused := r.AdmitBuild(context.Background(), 1, "nb", "python:3.12-slim", []string{"pandas"})
	if refused != nil || base != "python:3.12-slim" || len(ds) != 3 {
		t.Errorf("allowed build: base %q, decisions %+v, refused %+v", base, ds, refused)
	}
	_, _, refused = r.AdmitBuild(context.Background(), 1, "nb", "evil/base", nil)
	if refused == nil || refused.ErrorKind != step.ErrorKindDenied || !strings.Contains(refused.Error, "evil/base") {
		t.Errorf("refused build: %+v", refused)
	}
	pin := fakePolicy{name: "pin", verdict: step.VerdictAmend, reason: "pin", amend: func(s *step.Step) { s.Image = "python@sha256:abc" }}
	r = &Runner{Chain: Chain{Policies: []Policy{pin}}}
	if base, _, refused := r.AdmitBuild(context.Background(), 1, "nb", "python:3.12-slim", nil); refused != nil || base != "python@sha256:abc" {
		t.Errorf("pinned build: base %q, refused %+v", base, refused)
	}
}

// A decision is read as strictly as a step spec: a reader that kept the
// last of two "verdict" fields would see another decision than wflow.
func TestParseDecisionIsStrict(t *testing.T) {
	cases := []struct{ in, err string }{
		{`{"verdict":"allow","verdict":"deny"}`, `"verdict" given twice`},
		{`{"verdict":"deny","reason":"a","reason":"b"}`, `"reason" given twice`},
		{`{"verdict":"allow","extra":1}`, `field "extra"`},
		{`{"verdict":"allow","reason":7}`, "reason must be a string"},
		{`{"verdict":7}`, "no verdict string"},
		{`[1]`, "must be a JSON object"},
		{`{"verdict":"allow"` + strings.Repeat(`,"x":[`, 1) + strings.Repeat("[", 200) + strings.Repeat("]", 201) + `}`, "nest"},
		{`{"verdict":"amend","step":{"name":"s","image":"i","commands":["true"],"image":"evil"}}`, `"image" given twice`},
	}
	for _, c := range cases {
		if _, err := parseDecision([]byte(c.in)); err == nil || !strings.Contains(err.Error(), c.err) {
			t.Errorf("%.60s: %v, want an error saying %q", c.in, err, c.err)
		}
	}
	if v, err := parseDecision([]byte(`{"verdict":"deny","reason":"no"}`)); err != nil || v.Verdict != "deny" || v.Reason != "no" {
		t.Errorf("a plain decision: %+v, %v", v, err)
	}
}

// A build stands for its requirements as one pip command, but only its base
// image can be changed: an amendment of the commands would be approved by
// the later policies and then not built, so it refuses the build.
func TestBuildAmendedBeyondItsBaseIsRefused(t *testing.T) {
	safe := fakePolicy{name: "make-safe", verdict: step.VerdictAmend, reason: "safe", amend: func(s *step.Step) {
		s.Commands = []step.Command{{Argv: []string{"pip", "install", "safe"}}}
	}}
	r := &Runner{Chain: Chain{Policies: []Policy{safe}}, Audit: &Audit{}}
	_, ds, refused := r.AdmitBuild(context.Background(), 1, "nb", "python:3.12-slim", []string{"evil==6.6.6"})
	if refused == nil || refused.ErrorKind != step.ErrorKindDenied || !strings.Contains(refused.Error, "base image only") ||
		!strings.Contains(refused.Error, "commands") || ds[len(ds)-1].Verdict != step.VerdictDeny {
		t.Errorf("refused %+v, decisions %+v", refused, ds)
	}
	if got := r.Audit.Decisions(); len(got) != len(ds) {
		t.Errorf("audit trail has %d decisions, the result %d", len(got), len(ds))
	}
}

// A policy that pins a build's base: the policies after it see the pinned
// base in build.base too, not the one the module asked for.
func TestBuildBaseFollowsAnAmendment(t *testing.T) {
	pin := fakePolicy{name: "pin", verdict: step.VerdictAmend, reason: "pin", amend: func(s *step.Step) { s.Image = "python@sha256:abc" }}
	var seen []string
	check := policyFunc(func(req Request) Verdict {
		seen = append(seen, req.Build.Base)
		return Verdict{Verdict: step.VerdictAllow}
	})
	r := &Runner{Chain: Chain{Policies: []Policy{pin, check}}}
	if base, _, refused := r.AdmitBuild(context.Background(), 1, "nb", "python:3.12-slim", nil); refused != nil || base != "python@sha256:abc" {
		t.Fatalf("base %q, refused %+v", base, refused)
	}
	for _, b := range seen {
		if b != "python@sha256:abc" {
			t.Errorf("a later policy saw build.base %q", b)
		}
	}
}

// policyFunc is a Policy from a function.
type policyFunc func(Request) Verdict

func (policyFunc) Name() string { return "func" }
func (f policyFunc) Decide(_ context.Context, req Request) (Verdict, error) {
	return f(req), nil
}

// serviceStarter records the service it is asked to start.
type serviceStarter struct{ started []step.Service }

func (s *serviceStarter) Run(context.Context, uint32, step.Step, containers.Live) step.ExecResult {
	return step.ExecResult{}
}
func (s *serviceStarter) StartService(_ context.Context, _ uint32, svc step.Service) (string, error) {
	s.started = append(s.started, svc)
	return "c1", nil
}
func (s *serviceStarter) StopService(context.Context, string) error { return nil }
func (s *serviceStarter) HasServices() bool                         { return true }

// TestServicesPassThePolicies: a service is put to the chain as kind
// "service"; an amendment of its image and limits applies, one of a
// field a service has not refuses it; an exec is not put to the chain.
func TestServicesPassThePolicies(t *testing.T) {
	svc := step.Service{Name: "db", Image: "pg", Command: step.Command{Argv: []string{"postgres"}}, Limits: step.Limits{Network: "run"}}
	var kinds []string
	pin := policyFunc(func(req Request) Verdict {
		kinds = append(kinds, req.Kind)
		if req.Step.Image == "pg" {
			amended := req.Step
			amended.Image, amended.Memory = "pg@sha256:abc", 1<<30
			return Verdict{Verdict: step.VerdictAmend, Step: &amended}
		}
		return Verdict{Verdict: step.VerdictAllow}
	})
	next := &serviceStarter{}
	r := &Runner{Next: next, Chain: Chain{Policies: []Policy{pin}}, Audit: &Audit{}}
	id, ds, err := r.StartService(context.Background(), 1, svc)
	if err != nil || id != "c1" || len(next.started) != 1 || next.started[0].Image != "pg@sha256:abc" || next.started[0].Memory != 1<<30 || next.started[0].Name != "db" {
		t.Fatalf("start: %q %v, started %+v, decisions %+v", id, err, next.started, ds)
	}
	if kinds[0] != KindService {
		t.Errorf("kinds %v", kinds)
	}
	retry := policyFunc(func(req Request) Verdict {
		amended := req.Step
		amended.Retry = &step.Retry{Retries: 1}
		return Verdict{Verdict: step.VerdictAmend, Step: &amended}
	})
	r = &Runner{Next: next, Chain: Chain{Policies: []Policy{retry}}, Audit: &Audit{}}
	if _, _, err := r.StartService(context.Background(), 2, svc); !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), "changed retry") {
		t.Errorf("an amendment beyond a service's fields: %v", err)
	}
	deny := fakePolicy{name: "no", verdict: step.VerdictDeny, reason: "no services"}
	r = &Runner{Next: next, Chain: Chain{Policies: []Policy{deny}}}
	if _, _, err := r.StartService(context.Background(), 3, svc); !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), "service db: refused by policy no: no services") {
		t.Errorf("a refused service: %v", err)
	}
	exec := step.Step{Name: "e", Image: "pg", ExecIn: "c1", ServiceName: "db", Commands: []step.Command{{Shell: "x"}}}
	res := r.Run(context.Background(), 4, exec, containers.Live{})
	if res.ErrorKind != step.ErrorKindDenied || res.Service != "db" {
		t.Errorf("an exec under a policy that refuses everything: %+v", res)
	}
	kinds = nil
	r = &Runner{Next: next, Chain: Chain{Policies: []Policy{pin}}}
	if res := r.Run(context.Background(), 5, exec, containers.Live{}); res.ErrorKind != step.ErrorKindDenied || !strings.Contains(res.Error, "an exec can be amended in commands, env, timeout only; the policies changed image") {
		t.Errorf("an exec amended in its image: %+v", res)
	}
	if len(kinds) == 0 || kinds[0] != KindExec {
		t.Errorf("kinds %v", kinds)
	}
	ceil := Ceilings{Max: step.Limits{Timeout: step.Duration(time.Minute), CPUs: 1, Memory: 1 << 30}}
	if v, _ := ceil.Decide(context.Background(), Request{Kind: KindExec, Step: exec}); v.Verdict != step.VerdictDeny || !strings.Contains(v.Reason, "timeout") {
		t.Errorf("an exec without a timeout under --max-step-timeout: %+v", v)
	}
	exec.Timeout = step.Duration(time.Second)
	if v, _ := ceil.Decide(context.Background(), Request{Kind: KindExec, Step: exec}); v.Verdict != step.VerdictAllow {
		t.Errorf("an exec with a timeout: %+v (its cpus and memory are its service's)", v)
	}
}

// TestRunNetwork: "run" passes builtin:network where the engine has run
// networks, and is refused, saying why, where it has not.
func TestRunNetwork(t *testing.T) {
	req := Request{Kind: KindContainer, Step: step.Step{Name: "s", Limits: step.Limits{Network: containers.NetworkRun}}}
	if v, _ := (Network{RunNetwork: true}).Decide(context.Background(), req); v.Verdict != step.VerdictAllow {
		t.Errorf("with run networks: %+v", v)
	}
	if v, _ := (Network{Allowed: "bridge"}).Decide(context.Background(), req); v.Verdict != step.VerdictDeny || !strings.Contains(v.Reason, "runs no services") {
		t.Errorf("without: %+v", v)
	}
}

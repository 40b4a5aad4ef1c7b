package policies

import (
	"context"
	"fmt"
	"path"
	"strings"
	"time"

	"github.com/wflow/wflow/containers"
	"github.com/wflow/wflow/step"
)

// Built-in policies, through the same Verdict as Wasm ones. What the step
// schema cannot express needs no policy: a step has no mounts but the run
// directory, no privileged mode and no capabilities, and the step parser
// refuses such fields (errno invalid_step) before any policy runs.

// Network refuses a step that asks for a network mode the run does not
// allow (`--network`). On by default; it never refuses what the flag allows,
// nor "none", nor "run" (containers.NetworkRun: the run's own internal
// network, which reaches nothing outside the run) where the engine has one.
type Network struct {
	Allowed    string // the run's --network; "" means "none"
	RunNetwork bool   // the engine gives runs their own network (it runs services)
}

// Name implements Policy.
func (Network) Name() string { return "builtin:network" }

// Decide implements Policy.
func (p Network) Decide(_ context.Context, req Request) (Verdict, error) {
	allowed := p.Allowed
	if allowed == "" {
		allowed = "none"
	}
	if n := req.Step.Network; n == containers.NetworkRun && !p.RunNetwork {
		return Verdict{Verdict: step.VerdictDeny, Reason: "network \"run\" (the run's own network) is not on this engine: it runs no services (docs/services.md)"}, nil
	}
	if n := req.Step.Network; n != "" && n != "none" && n != allowed && !(n == containers.NetworkRun && p.RunNetwork) {
		return Verdict{Verdict: step.VerdictDeny, Reason: fmt.Sprintf("network %q is not allowed in this run (run with --network %s to allow it)", n, n)}, nil
	}
	return Verdict{Verdict: step.VerdictAllow}, nil
}

// Images refuses a step whose image matches none of the patterns
// (`--allow-image`, path.Match globs such as "wflow-test/*" or
// "python@sha256:*"). Off unless patterns are given.
type Images struct {
	Patterns []string
}

// Name implements Policy.
func (Images) Name() string { return "builtin:allow-image" }

// Decide implements Policy.
func (p Images) Decide(_ context.Context, req Request) (Verdict, error) {
	for _, pat := range p.Patterns {
		if containers.MatchImage(pat, req.Step.Image) {
			return Verdict{Verdict: step.VerdictAllow}, nil
		}
	}
	return Verdict{Verdict: step.VerdictDeny, Reason: fmt.Sprintf("image %q matches none of --allow-image %s", req.Step.Image, strings.Join(p.Patterns, ", "))}, nil
}

// ValidateImagePatterns checks --allow-image patterns.
func ValidateImagePatterns(patterns []string) error {
	for _, p := range patterns {
		if _, err := path.Match(p, ""); err != nil || p == "" {
			return fmt.Errorf("--allow-image %q is not a valid pattern", p)
		}
	}
	return nil
}

// Ceilings refuses a step whose limits go over the run's ceilings
// (`--max-step-timeout`, `--max-step-cpus`, `--max-step-memory`), checked on
// the step's limits merged with the run's defaults. Zero ceilings are off.
type Ceilings struct {
	Max      step.Limits // Timeout, CPUs and Memory are read
	Defaults step.Limits // the run's defaults, under the step's own limits
}

// Name implements Policy.
func (Ceilings) Name() string { return "builtin:ceilings" }

// Decide implements Policy.
func (p Ceilings) Decide(_ context.Context, req Request) (Verdict, error) {
	if req.Kind == KindNotebookBuild {
		return Verdict{Verdict: step.VerdictAllow}, nil // a build has no step limits to check
	}
	l := req.Step.Limits.Merge(p.Defaults)
	if req.Kind == KindExec {
		// Its CPUs and memory are its service's, which passed the ceilings.
		l.CPUs, l.Memory = p.Max.CPUs, p.Max.Memory
	}
	deny := func(format string, args ...any) (Verdict, error) {
		return Verdict{Verdict: step.VerdictDeny, Reason: fmt.Sprintf(format, args...)}, nil
	}
	switch {
	case p.Max.Timeout > 0 && req.Kind != KindService && (l.Timeout == 0 || l.Timeout > p.Max.Timeout):
		// A service has no timeout: it runs until stopped, at the latest
		// when its run ends. Its execs have theirs.
		return deny("timeout %s is over the ceiling of %s (--max-step-timeout); set a timeout", stringOr(time.Duration(l.Timeout), "none"), time.Duration(p.Max.Timeout))
	case p.Max.CPUs > 0 && (l.CPUs == 0 || l.CPUs > p.Max.CPUs):
		return deny("cpus %g is over the ceiling of %g (--max-step-cpus); set cpus", l.CPUs, p.Max.CPUs)
	case p.Max.Memory > 0 && (l.Memory == 0 || l.Memory > p.Max.Memory):
		return deny("memory %d MiB is over the ceiling of %d MiB (--max-step-memory); set memory", l.Memory>>20, p.Max.Memory>>20)
	}
	return Verdict{Verdict: step.VerdictAllow}, nil
}

func stringOr(d time.Duration, zero string) string {
	if d == 0 {
		return zero
	}
	return d.String()
}

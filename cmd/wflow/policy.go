package main

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"github.com/spf13/pflag"

	"github.com/wflow/wflow/policies"
	"github.com/wflow/wflow/step"
)

const policyUsage = `Usage: wflow policy test POLICY --step STEP.json [--network MODE] [--policy-data FILE.json]

Runs one policy (a Wasm module of wflow's policy ABI, or a Rego bundle or
policy.wasm from opa build -t wasm) on one step, in the same sandbox as during a run, and
prints its decision as JSON: verdict, reason, and for an amendment the
changes and the amended step. Exit code 0 when the step is allowed or
amended, 1 when it is refused (a failing policy refuses), 2 on bad input.
What the policy prints goes to standard error.

Flags:
`

func policyCommand(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || (args[0] != "test" && args[0] != "-h" && args[0] != "--help") {
		fmt.Fprint(stderr, "wflow policy: want `wflow policy test POLICY --step STEP.json`\n")
		return exitUsage
	}
	if args[0] == "test" {
		args = args[1:]
	}
	fs := pflag.NewFlagSet("wflow policy test", pflag.ContinueOnError)
	stepFile := fs.String("step", "", "the step spec to decide on, a JSON `file` (docs/abi.md)")
	network := fs.String("network", "none", "the run's --network, as the policy sees it")
	policyData := fs.String("policy-data", "", "`FILE.json`: the data document of a bare Rego policy.wasm (a bundle carries its own)")
	if code, done := parseFlags(fs, args, policyUsage, stdout, stderr); done {
		return code
	}
	if fs.NArg() != 1 || *stepFile == "" {
		fmt.Fprint(stderr, "wflow policy test: want one POLICY and --step STEP.json\n")
		return exitUsage
	}
	wasm, err := readInput(fs.Arg(0), maxModuleFile)
	if err != nil {
		fmt.Fprintf(stderr, "wflow policy test: %v\n", err)
		return exitUsage
	}
	spec, err := readInput(*stepFile, maxSmallFile)
	if err != nil {
		fmt.Fprintf(stderr, "wflow policy test: %v\n", err)
		return exitUsage
	}
	s, err := step.ParseStep(spec)
	if err != nil {
		fmt.Fprintf(stderr, "wflow policy test: %s: %v\n", *stepFile, err)
		return exitUsage
	}
	data, err := readPolicyData(*policyData)
	if err != nil {
		fmt.Fprintf(stderr, "wflow policy test: %v\n", err)
		return exitUsage
	}
	p, used, err := policies.Load(ctx, filepath.Base(fs.Arg(0)), wasm, data, policies.WasmConfig{Stderr: stderr})
	if err == nil && data != nil && !used {
		p.Close(ctx)
		err = fmt.Errorf("--policy-data %s: the policy is no bare Rego policy.wasm (a bundle carries its own data.json)", *policyData)
	}
	if err != nil {
		fmt.Fprintf(stderr, "wflow policy test: %v\n", err)
		return exitUsage
	}
	defer p.Close(ctx)
	if r, ok := p.(*policies.Rego); ok && len(r.Unprovided()) > 0 {
		fmt.Fprintf(stderr, "wflow policy test: warning: the policy may call built-ins wflow does not provide (%s): a step that makes it call one is refused\n", strings.Join(r.Unprovided(), ", "))
	}
	req := policies.Request{Kind: policies.KindContainer, Step: s, Run: policies.RunInfo{RunID: "policy-test", Module: "policy-test.wasm", Network: *network}}
	final, decisions, ok := policies.Chain{Policies: []policies.Policy{p}}.Check(ctx, 1, req)
	out := struct {
		step.Decision
		Step *step.Step `json:"amended_step,omitempty"`
	}{Decision: decisions[0]}
	if decisions[0].Verdict == step.VerdictAmend {
		out.Step = &final
	}
	b, _ := step.MarshalJSON(out, true)
	fmt.Fprintf(stdout, "%s\n", b)
	if !ok {
		return exitFailed
	}
	return exitOK
}

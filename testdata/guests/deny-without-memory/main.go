// Command deny-without-memory is a test policy: it refuses every step that
// has no memory limit, to show the order of policies.
package main

import "github.com/wflow/wflow/sdk/go/policy"

func main() {
	req, err := policy.Input()
	if err != nil {
		return
	}
	if _, ok := req.Step["memory"]; !ok {
		policy.Deny("step " + req.Name() + " has no memory limit")
		return
	}
	policy.Allow()
}

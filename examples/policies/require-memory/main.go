// Command require-memory is an example policy in Go: every step needs a
// memory limit, so a step without one is amended to 256m (set the
// MEMORY default below to change it). Build and try it:
//
//	GOOS=wasip1 GOARCH=wasm go build -o require-memory.wasm ./examples/policies/require-memory
//	wflow policy test require-memory.wasm --step step.json
//	wflow run workflow.wasm --policy require-memory.wasm
package main

import "github.com/wflow/wflow/sdk/go/policy"

// defaultMemory is the limit given to steps that have none.
const defaultMemory = "256m"

func main() {
	req, err := policy.Input()
	if err != nil {
		policy.Deny("cannot read the request: " + err.Error())
		return
	}
	if _, ok := req.Step["memory"]; ok {
		policy.Allow()
		return
	}
	req.Step["memory"] = defaultMemory
	policy.Amend(req.Step, "every step needs a memory limit: set "+defaultMemory)
}

// Command image-allowlist-go is the image allow-list example policy in Go
// (examples/policies/image-allowlist is the same in C): a step may run only
// an image matching one of the patterns below.
//
//	GOOS=wasip1 GOARCH=wasm go build -o image-allowlist.wasm ./examples/policies/image-allowlist-go
//	wflow policy test image-allowlist.wasm --step step.json
package main

import (
	"path"

	"github.com/wflow/wflow/sdk/go/policy"
)

// allowed are path.Match patterns of the images steps may use.
var allowed = []string{"wflow-test/*", "registry.example.com/approved/*"}

func main() {
	req, err := policy.Input()
	if err != nil {
		policy.Deny("cannot read the request: " + err.Error())
		return
	}
	for _, p := range allowed {
		if ok, _ := path.Match(p, req.Image()); ok {
			policy.Allow()
			return
		}
	}
	policy.Deny("image " + req.Image() + " is not on the allow-list (wflow-test/*, registry.example.com/approved/*)")
}

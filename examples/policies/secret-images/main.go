// Command secret-images is an example policy: which images may be given
// which secret. A step that names a secret (its "secrets" field) is
// allowed only when its image matches one of that secret's patterns; a
// secret not listed below goes to no image. Steps without secrets pass.
// The policy sees the secrets' names, never their values.
//
//	GOOS=wasip1 GOARCH=wasm go build -o secret-images.wasm ./examples/policies/secret-images
//	wflow run workflow.wasm --secret deploy-token=env:DEPLOY_TOKEN --policy secret-images.wasm
package main

import (
	"path"
	"sort"
	"strings"

	"github.com/wflow/wflow/sdk/go/policy"
)

// images are the path.Match patterns of the images each secret may go to.
var images = map[string][]string{
	"deploy-token": {"registry.example.com/deploy/*", "wflow-test/busybox"},
	"db-password":  {"wflow-test/*"},
}

func main() {
	req, err := policy.Input()
	if err != nil {
		policy.Deny("cannot read the request: " + err.Error())
		return
	}
	refs := req.Secrets()
	vars := make([]string, 0, len(refs))
	for v := range refs {
		vars = append(vars, v)
	}
	sort.Strings(vars)
	for _, v := range vars {
		name := refs[v]
		if !matches(images[name], req.Image()) {
			policy.Deny("secret " + name + " (as $" + v + ") may not go to image " + req.Image() +
				"; it may go to " + orNone(images[name]))
			return
		}
	}
	policy.Allow()
}

func matches(patterns []string, image string) bool {
	for _, p := range patterns {
		if ok, _ := path.Match(p, image); ok {
			return true
		}
	}
	return false
}

func orNone(patterns []string) string {
	if len(patterns) == 0 {
		return "no image"
	}
	return strings.Join(patterns, ", ")
}

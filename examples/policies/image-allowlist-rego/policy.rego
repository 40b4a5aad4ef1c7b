# The image allow-list of examples/policies/image-allowlist (C) and
# image-allowlist-go, in Rego: a step may use only images under
# wflow-test/ or registry.example.com/approved/ (one path segment, as
# Go's path.Match and glob.match with "/" as delimiter read "*").
#
#   opa build -t wasm -e wflow/deny policy.rego -o image-allowlist.tar.gz
#   wflow run workflow.wasm --policy image-allowlist.tar.gz
package wflow

import rego.v1

allowed := ["wflow-test/*", "registry.example.com/approved/*"]

deny contains msg if {
	not on_allowlist
	msg := sprintf("image %s is not on the allow-list (wflow-test/*, registry.example.com/approved/*)", [input.step.image])
}

on_allowlist if {
	some pattern in allowed
	glob.match(pattern, ["/"], input.step.image)
}

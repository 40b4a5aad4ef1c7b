# A policy that calls a built-in the compiled Wasm leaves to the host and
# wflow does not provide (semver.is_valid).
package wflow

import rego.v1

deny contains "not a version" if not semver.is_valid(input.step.image)

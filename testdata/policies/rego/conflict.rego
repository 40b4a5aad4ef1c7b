# A policy whose wflow/decision conflicts (two values) for the image
# "conflict": OPA's Wasm aborts there; for other images it allows.
package wflow

import rego.v1

decision := {"allow": true} if input.step.image != "conflict"

decision := {"allow": true} if input.step.image == "conflict"

decision := {"allow": false} if input.step.image == "conflict"

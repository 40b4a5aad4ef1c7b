# A policy whose wflow/deny evaluates with the step's image replaced
# (with input.step.image as ...): wflow parses the request once for all
# entrypoints, so wflow/allow, evaluated after it, must still see the
# image as it is.
package wflow

import rego.v1

image := input.step.image

deny contains msg if {
	msg := image with input.step.image as "evil/changed"
	msg == "never"
}

allow if input.step.image == "wflow-test/busybox"

# A policy with wflow/allow, false unless the step has a timeout, and a
# patch that sets its user.
package wflow

import rego.v1

default allow := false

allow if input.step.timeout

patch := {"user": "1000:1000"}

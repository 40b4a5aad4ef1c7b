# The memory rule of examples/policies/require-memory (Go) and
# require-memory-c, in Rego: a step without a memory limit is amended to
# have 256m; a step with one is allowed as it is.
#
#   opa build -t wasm -e wflow/decision policy.rego -o require-memory.tar.gz
#   wflow run workflow.wasm --policy require-memory.tar.gz
package wflow

import rego.v1

default_memory := "256m"

decision := {"allow": true} if input.step.memory

decision := {
	"patch": {"memory": default_memory},
	"reason": sprintf("every step needs a memory limit: set %s", [default_memory]),
} if not input.step.memory

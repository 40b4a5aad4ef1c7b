# A policy whose wflow/decision refuses (allow false) while its wflow/allow
# is true: every allow the policy has must be true, so it refuses.
package wflow

import rego.v1

decision := {"allow": false, "reason": "memory required"}

allow := true

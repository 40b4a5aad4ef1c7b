# A policy with both wflow/decision's patch and wflow/patch: an error, not
# one silently dropped.
package wflow

import rego.v1

decision := {"patch": {"memory": "256m"}}

patch := {"user": "1000:1000"}

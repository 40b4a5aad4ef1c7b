# A policy whose wflow/decision has a field wflow does not know.
package wflow

decision := {"allow": true, "verdict": "allow"}

# A policy whose decision uses memory in proportion to the step's env N
# (N strings of 16 bytes, joined): for the test that a decision which
# runs out of memory on a heap earlier decisions left is tried again on a
# fresh one. It never refuses.
package wflow

import rego.v1

deny contains "never" if {
	s := concat("", [x | some _ in numbers.range(1, to_number(input.step.env.N)); x := "0123456789abcdef"])
	count(s) < 0
}

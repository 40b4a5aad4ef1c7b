# A policy that builds a set of fifty million numbers before it decides:
# past wflow's time or memory cap.
package wflow

import rego.v1

deny contains "too many" if count({x | some x in numbers.range(1, 50000000)}) < 0

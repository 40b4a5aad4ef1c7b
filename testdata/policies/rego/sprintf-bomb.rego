# A policy whose sprintf format asks for 300 widths of 999,999 from its
# values: refused, not formatted.
package wflow

import rego.v1

fmtstr := concat("", [f | some i in numbers.range(1, 300); f := "%[1]*[2]d"])

deny contains msg if {
	msg := sprintf(fmtstr, [999999, 1])
	count(msg) < 0
}

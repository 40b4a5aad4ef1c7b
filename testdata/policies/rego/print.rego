# A policy that prints as it decides (built with opa build
# --wasm-include-print): a string, a number, an object, an undefined
# operand, and an operand of two values (two lines). It refuses an image
# named "bad", after printing.
package wflow

import rego.v1

deny contains "bad image" if {
	print("image", input.step.image, {"n": 1}, input.step.nothing)
	some y in ["a", "b"]
	print("one of", y)
	input.step.image == "bad"
}

# A policy whose allowed images are data (data.images): a bundle's
# data.json, or --policy-data for a bare policy.wasm.
package wflow

import rego.v1

deny contains sprintf("image %s is not in data.images", [input.step.image]) if {
	not input.step.image in data.images
}

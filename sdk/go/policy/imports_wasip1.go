//go:build wasip1

package policy

import "unsafe"

// The host functions of the policy ABI v1 (docs/policies.md).

//go:wasmimport wflow_policy_v1 input_get
func inputGet(buf unsafe.Pointer, bufCap uint32, lenPtr unsafe.Pointer) uint32

//go:wasmimport wflow_policy_v1 decide
func decide(json unsafe.Pointer, jsonLen uint32) uint32

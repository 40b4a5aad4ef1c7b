//go:build !wasip1

package policy

import (
	"unsafe"

	"github.com/wflow/wflow/abi"
)

// Outside wasip1 there is no wflow host: every call fails.

func inputGet(unsafe.Pointer, uint32, unsafe.Pointer) uint32 { return uint32(abi.ErrInvalidArgument) }
func decide(unsafe.Pointer, uint32) uint32                   { return uint32(abi.ErrInvalidArgument) }

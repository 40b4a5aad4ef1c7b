//go:build !wasip1

package wflow

import (
	"unsafe"

	"github.com/wflow/wflow/abi"
)

// Outside wasip1 there is no wflow host: every call fails with
// abi.ErrInvalidArgument, so the package still builds (and its pure parts can
// be tested) on the developer's machine.

const notWasm = uint32(abi.ErrInvalidArgument)

func paramsGet(unsafe.Pointer, uint32, unsafe.Pointer) uint32          { return notWasm }
func stepSubmit(unsafe.Pointer, uint32, unsafe.Pointer) uint32         { return notWasm }
func stepRun(unsafe.Pointer, uint32, unsafe.Pointer) uint32            { return notWasm }
func stepWait(unsafe.Pointer, uint32, unsafe.Pointer) uint32           { return notWasm }
func stepResult(uint32, unsafe.Pointer, uint32, unsafe.Pointer) uint32 { return notWasm }
func logWrite(uint32, unsafe.Pointer, uint32) uint32                   { return notWasm }
func outputSet(unsafe.Pointer, uint32) uint32                          { return notWasm }
func errorGet(unsafe.Pointer, uint32, unsafe.Pointer) uint32           { return notWasm }

func notebookSubmit(unsafe.Pointer, uint32, unsafe.Pointer) uint32 { return notWasm }
func notebookRun(unsafe.Pointer, uint32, unsafe.Pointer) uint32    { return notWasm }
func notebookBuild(unsafe.Pointer, uint32, unsafe.Pointer) uint32  { return notWasm }

func stepCancel(uint32) uint32                                              { return notWasm }
func stepWaitTimeout(unsafe.Pointer, uint32, uint32, unsafe.Pointer) uint32 { return notWasm }
func serviceStart(unsafe.Pointer, uint32, unsafe.Pointer) uint32            { return notWasm }
func serviceExec(uint32, unsafe.Pointer, uint32, unsafe.Pointer) uint32     { return notWasm }
func serviceStop(uint32) uint32                                             { return notWasm }

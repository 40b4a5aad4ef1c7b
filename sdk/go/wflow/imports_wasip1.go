//go:build wasip1

package wflow

import "unsafe"

// The host functions of ABI v1 (docs/abi.md). Pointers are addresses in the
// module's linear memory; every function returns an abi.Errno.

//go:wasmimport wflow_v1 params_get
func paramsGet(buf unsafe.Pointer, bufCap uint32, lenPtr unsafe.Pointer) uint32

//go:wasmimport wflow_v1 step_submit
func stepSubmit(spec unsafe.Pointer, specLen uint32, handlePtr unsafe.Pointer) uint32

//go:wasmimport wflow_v1 step_run
func stepRun(spec unsafe.Pointer, specLen uint32, handlePtr unsafe.Pointer) uint32

//go:wasmimport wflow_v1 step_wait
func stepWait(handles unsafe.Pointer, count uint32, readyPtr unsafe.Pointer) uint32

//go:wasmimport wflow_v1 step_result
func stepResult(handle uint32, buf unsafe.Pointer, bufCap uint32, lenPtr unsafe.Pointer) uint32

//go:wasmimport wflow_v1 log_write
func logWrite(level uint32, msg unsafe.Pointer, msgLen uint32) uint32

//go:wasmimport wflow_v1 output_set
func outputSet(json unsafe.Pointer, jsonLen uint32) uint32

//go:wasmimport wflow_v1 error_get
func errorGet(buf unsafe.Pointer, bufCap uint32, lenPtr unsafe.Pointer) uint32

//go:wasmimport wflow_v1 notebook_submit
func notebookSubmit(spec unsafe.Pointer, specLen uint32, handlePtr unsafe.Pointer) uint32

//go:wasmimport wflow_v1 notebook_run
func notebookRun(spec unsafe.Pointer, specLen uint32, handlePtr unsafe.Pointer) uint32

//go:wasmimport wflow_v1 notebook_build
func notebookBuild(spec unsafe.Pointer, specLen uint32, handlePtr unsafe.Pointer) uint32

// ABI v1.2.

//go:wasmimport wflow_v1 step_cancel
func stepCancel(handle uint32) uint32

//go:wasmimport wflow_v1 step_wait_timeout
func stepWaitTimeout(handles unsafe.Pointer, count uint32, timeoutMS uint32, readyPtr unsafe.Pointer) uint32

//go:wasmimport wflow_v1 service_start
func serviceStart(spec unsafe.Pointer, specLen uint32, servicePtr unsafe.Pointer) uint32

//go:wasmimport wflow_v1 service_exec
func serviceExec(service uint32, spec unsafe.Pointer, specLen uint32, handlePtr unsafe.Pointer) uint32

//go:wasmimport wflow_v1 service_stop
func serviceStop(service uint32) uint32

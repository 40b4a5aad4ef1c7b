//go:build wasip1

// Command hostcall-go is a benchmark guest: it times n calls of a wflow host
// function (params_get, a 2-byte answer) and, as the baseline, n calls of
// WASI's sched_yield (a host function of the runtime that does nothing),
// and sets both as its output in ns per call.
package main

import (
	"encoding/json"
	"os"
	"time"
	"unsafe"
)

//go:wasmimport wflow_v1 params_get
func paramsGet(buf unsafe.Pointer, bufCap uint32, lenPtr unsafe.Pointer) uint32

//go:wasmimport wflow_v1 output_set
func outputSet(json unsafe.Pointer, jsonLen uint32) uint32

//go:wasmimport wasi_snapshot_preview1 sched_yield
func schedYield() uint32

const n = 1_000_000

func main() {
	var buf [64]byte
	var length uint32
	start := time.Now()
	for i := 0; i < n; i++ {
		paramsGet(unsafe.Pointer(&buf[0]), uint32(len(buf)), unsafe.Pointer(&length))
	}
	wflow := time.Since(start)
	start = time.Now()
	for i := 0; i < n; i++ {
		schedYield()
	}
	base := time.Since(start)
	out, _ := json.Marshal(map[string]float64{"wflow_ns": float64(wflow.Nanoseconds()) / n, "baseline_ns": float64(base.Nanoseconds()) / n})
	if outputSet(unsafe.Pointer(&out[0]), uint32(len(out))) != 0 {
		os.Exit(1)
	}
}

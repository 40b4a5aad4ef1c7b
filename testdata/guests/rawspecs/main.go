// Command rawspecs is a test guest: it runs each step spec of the parameter
// "specs" (a JSON array of specs, passed as they are to notebook_run, or to
// step_run when the parameter "fn" is "step") in turn, and sets the list of
// their ExecResults as its output; a spec the host refuses gives
// {"errno": n, "error": message}. With the parameter "stop" set to "failure",
// it exits 1 after the first step that did not succeed, with the results so
// far as its output.
package main

import (
	"encoding/json"
	"os"
	"unsafe"
)

//go:wasmimport wflow_v1 params_get
func paramsGet(buf unsafe.Pointer, bufCap uint32, lenPtr unsafe.Pointer) uint32

//go:wasmimport wflow_v1 notebook_run
func notebookRun(spec unsafe.Pointer, specLen uint32, handlePtr unsafe.Pointer) uint32

//go:wasmimport wflow_v1 step_run
func stepRun(spec unsafe.Pointer, specLen uint32, handlePtr unsafe.Pointer) uint32

//go:wasmimport wflow_v1 step_result
func stepResult(handle uint32, buf unsafe.Pointer, bufCap uint32, lenPtr unsafe.Pointer) uint32

//go:wasmimport wflow_v1 error_get
func errorGet(buf unsafe.Pointer, bufCap uint32, lenPtr unsafe.Pointer) uint32

//go:wasmimport wflow_v1 output_set
func outputSet(json unsafe.Pointer, jsonLen uint32) uint32

func read(call func(buf unsafe.Pointer, bufCap uint32, lenPtr unsafe.Pointer) uint32) []byte {
	buf := make([]byte, 1<<20)
	var n uint32
	if call(unsafe.Pointer(&buf[0]), uint32(len(buf)), unsafe.Pointer(&n)) != 0 {
		os.Exit(2)
	}
	return buf[:n]
}

func main() {
	var params struct {
		Specs string `json:"specs"`
		Fn    string `json:"fn"`
		Stop  string `json:"stop"`
	}
	if json.Unmarshal(read(paramsGet), &params) != nil {
		os.Exit(2)
	}
	var specs []json.RawMessage
	if json.Unmarshal([]byte(params.Specs), &specs) != nil {
		os.Exit(2)
	}
	run := notebookRun
	if params.Fn == "step" {
		run = stepRun
	}
	results := []json.RawMessage{}
	for _, spec := range specs {
		var handle uint32
		if errno := run(unsafe.Pointer(&spec[0]), uint32(len(spec)), unsafe.Pointer(&handle)); errno != 0 {
			msg, _ := json.Marshal(map[string]any{"errno": errno, "error": string(read(errorGet))})
			results = append(results, msg)
			continue
		}
		res := read(func(buf unsafe.Pointer, bufCap uint32, lenPtr unsafe.Pointer) uint32 {
			return stepResult(handle, buf, bufCap, lenPtr)
		})
		results = append(results, res)
		var r struct {
			ReturnCode int    `json:"returncode"`
			Error      string `json:"error"`
		}
		if params.Stop == "failure" && (json.Unmarshal(res, &r) != nil || r.ReturnCode != 0 || r.Error != "") {
			setOutput(results)
			os.Exit(1)
		}
	}
	setOutput(results)
}

func setOutput(results []json.RawMessage) {
	out, _ := json.Marshal(results)
	if outputSet(unsafe.Pointer(&out[0]), uint32(len(out))) != 0 {
		os.Exit(2)
	}
}

// Command nbbase is a test guest: an empty notebook run on the base image
// the parameter "base" names; the step's outcome becomes the output.
package main

import (
	"os"

	"github.com/wflow/wflow/sdk/go/wflow"
)

func main() {
	os.WriteFile("empty.ipynb", []byte(`{"nbformat":4,"nbformat_minor":5,"metadata":{"kernelspec":{"name":"python3","language":"python","display_name":"Python 3"}},"cells":[]}`), 0o644)
	res, err := wflow.RunNotebook(wflow.Notebook{Name: "on-base", Notebook: "empty.ipynb", Base: wflow.Param("base")})
	if err != nil {
		os.Exit(1)
	}
	kinds := []string{}
	for _, d := range res.Decisions {
		kinds = append(kinds, d.Policy+":"+d.Verdict)
	}
	wflow.SetOutput(map[string]any{"kind": res.ErrorKind, "error": res.Error, "returncode": res.ReturnCode, "decisions": kinds})
}

// Command nbfail is a test guest: a notebook step whose requirement cannot
// be installed, so its image build fails; the result becomes the output.
package main

import (
	"os"

	"github.com/wflow/wflow/sdk/go/wflow"
)

func main() {
	os.WriteFile("empty.ipynb", []byte(`{"nbformat":4,"nbformat_minor":5,"metadata":{"kernelspec":{"name":"python3","language":"python","display_name":"Python 3"}},"cells":[]}`), 0o644)
	res, err := wflow.RunNotebook(wflow.Notebook{Name: "broken", Notebook: "empty.ipynb",
		Requirements: []string{"no-such-package-wflow-test==1.0"}})
	if err != nil {
		os.Exit(1)
	}
	wflow.SetOutput(map[string]any{"returncode": res.ReturnCode, "kind": res.ErrorKind, "error": res.Error,
		"commands": len(res.Commands), "log": res.Stdout, "built": res.Notebook.Built})
}

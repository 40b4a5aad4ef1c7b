// Command {{.Name}} is a wflow workflow: it runs one step in a container,
// reads the file the step wrote into the run directory, and sets the
// outcome as the workflow's output.
//
//	GOOS=wasip1 GOARCH=wasm go build -o workflow.wasm .
//	wflow run workflow.wasm -p image=busybox --allow-registry docker.io
package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/wflow/wflow/sdk/go/wflow"
)

func main() {
	image := wflow.Param("image")
	if image == "" {
		image = "busybox"
	}
	res, err := wflow.Run(wflow.Step{
		Name:     "hello",
		Image:    image,
		Commands: []wflow.Command{wflow.Shell("echo hello from Go > hello.txt")},
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	// The run directory is the module's working directory too.
	greeting, _ := os.ReadFile("hello.txt")
	wflow.SetOutput(map[string]any{"language": "Go", "step_ok": res.OK(), "greeting": strings.TrimSpace(string(greeting))})
	if !res.OK() {
		wflow.Warn("step hello: exit %d %s", res.ReturnCode, res.Error)
		os.Exit(1)
	}
}

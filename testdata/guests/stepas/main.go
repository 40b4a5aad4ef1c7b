// Command stepas is a hostile test guest: it runs one step with the image
// (default the busybox test image), user and shell script its parameters
// name (and, with "then", a second step "next" running that script), then
// tries to open the file
// its "open" parameter names from the module's side (a device node or a
// FIFO the step may have made), and sets what happened as its output.
package main

import (
	"os"

	"github.com/wflow/wflow/sdk/go/wflow"
)

func main() {
	image := wflow.Param("image")
	if image == "" {
		image = "wflow-test/busybox"
	}
	res, err := wflow.Run(wflow.Step{Name: "attack", Image: image, User: wflow.Param("user"),
		Commands: []wflow.Command{wflow.Shell(wflow.Param("script"))}})
	out := map[string]any{"result": res}
	if err != nil {
		out["submit_error"] = err.Error()
	}
	if then := wflow.Param("then"); then != "" {
		next, _ := wflow.Run(wflow.Step{Name: "next", Image: "wflow-test/busybox", Commands: []wflow.Command{wflow.Shell(then)}})
		out["next"] = next
	}
	if name := wflow.Param("open"); name != "" {
		f, err := os.Open(name)
		if err == nil {
			buf := make([]byte, 16)
			n, _ := f.Read(buf)
			out["opened"], out["read"] = true, n
			f.Close()
		} else {
			out["opened"], out["open_error"] = false, err.Error()
		}
	}
	wflow.SetOutput(out)
}

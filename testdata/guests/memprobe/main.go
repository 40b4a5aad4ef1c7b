// Command memprobe is a test guest: one step that prints its own memory
// limit as the kernel sees it; the step's outcome becomes the output.
package main

import (
	"strings"

	"github.com/wflow/wflow/sdk/go/wflow"
)

func main() {
	res, err := wflow.Run(wflow.Step{Name: "probe", Image: "wflow-test/busybox", Commands: []wflow.Command{
		wflow.Shell(`cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max`)}})
	if err != nil {
		panic(err)
	}
	wflow.SetOutput(map[string]string{"kind": res.ErrorKind, "error": res.Error, "limit": strings.TrimSpace(res.Stdout)})
}

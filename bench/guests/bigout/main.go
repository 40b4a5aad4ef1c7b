// Command bigout is a benchmark guest: one step that prints `size` bytes
// (default 1 GiB) of a known pattern to stdout.
package main

import (
	"os"

	"github.com/wflow/wflow/sdk/go/wflow"
)

// Line is the pattern `yes` repeats; the harness recomputes the checksum from it.
const Line = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"

func main() {
	size := wflow.Param("size")
	if size == "" {
		size = "1073741824"
	}
	res, err := wflow.Run(wflow.Step{Name: "bigout", Image: "wflow-test/busybox",
		Commands: []wflow.Command{wflow.Shell("yes " + Line + " | head -c " + size)}})
	if err != nil || !res.OK() {
		os.Exit(1)
	}
	wflow.SetOutput(map[string]any{"stdout_file": res.StdoutFile, "truncated": res.StdoutTruncated})
}

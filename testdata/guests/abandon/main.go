// Command abandon is a test guest: it submits a long step, waits for its
// first output, and returns without waiting for it.
package main

import (
	"os"
	"time"

	"github.com/wflow/wflow/sdk/go/wflow"
)

func main() {
	_, err := wflow.Submit(wflow.Step{Name: "long", Image: "wflow-test/busybox",
		Commands: []wflow.Command{wflow.Shell("echo started > started.txt; sleep 300")}})
	if err != nil {
		os.Exit(1)
	}
	for i := 0; i < 300; i++ {
		if _, err := os.Stat("started.txt"); err == nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	os.Exit(2)
}

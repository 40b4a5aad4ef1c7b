// Command seq is a benchmark guest: n (default 20) one-command steps, one
// after another.
package main

import (
	"os"
	"strconv"

	"github.com/wflow/wflow/sdk/go/wflow"
)

func main() {
	n, err := strconv.Atoi(wflow.Param("n"))
	if err != nil {
		n = 20
	}
	for i := 0; i < n; i++ {
		res, err := wflow.Run(wflow.Step{Name: "s" + strconv.Itoa(i), Image: "wflow-test/busybox", Commands: []wflow.Command{wflow.Argv("true")}})
		if err != nil || !res.OK() {
			os.Exit(1)
		}
	}
}

// Command exec is a benchmark guest: a job container (a service) in which
// n (default 20) one-command execs run one after another.
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
	job, err := wflow.StartService(wflow.ServiceSpec{Name: "job", Image: "wflow-test/busybox", Command: wflow.Argv("sleep", "86400"), Network: "none"})
	if err != nil {
		os.Exit(1)
	}
	for i := 0; i < n; i++ {
		res, err := job.Exec(wflow.Exec{Name: "e" + strconv.Itoa(i), Commands: []wflow.Command{wflow.Argv("true")}})
		if err != nil || !res.OK() {
			os.Exit(1)
		}
	}
	if job.Stop() != nil {
		os.Exit(1)
	}
}

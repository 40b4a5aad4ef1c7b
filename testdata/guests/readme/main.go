// Command readme is the Go example of README.md, kept here so a test
// proves it builds and runs. Keep the two in step.
package main

import (
	"os"
	"slices"
	"strings"

	"github.com/wflow/wflow/sdk/go/wflow"
)

func main() {
	// Two steps at once; react to each as it lands.
	a, _ := wflow.Submit(wflow.Step{Name: "words", Image: "wflow-test/busybox",
		Commands: []wflow.Command{wflow.Shell("echo the quick brown fox | wc -w")}})
	b, _ := wflow.Submit(wflow.Step{Name: "date", Image: "wflow-test/busybox",
		Commands: []wflow.Command{wflow.Argv("date", "+%F")}})
	results := map[string]string{}
	for pending := []wflow.Handle{a, b}; len(pending) > 0; {
		res, err := wflow.Wait(pending...)
		if err != nil || !res.OK() {
			os.Exit(1) // the run fails; wflow exits 1
		}
		results[res.Step] = strings.TrimSpace(res.Stdout)
		pending = slices.DeleteFunc(pending, func(h wflow.Handle) bool { return h == res.Handle })
	}
	wflow.SetOutput(results) // goes into the run report
}

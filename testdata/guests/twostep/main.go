// Command twostep is a test guest: a quick step, then one that sleeps for
// 100 s, for tests that kill wflow after the first result has landed.
package main

import "github.com/wflow/wflow/sdk/go/wflow"

func main() {
	wflow.Run(wflow.Step{Name: "quick", Image: "wflow-test/busybox", Commands: []wflow.Command{wflow.Shell("echo landed")}})
	wflow.Run(wflow.Step{Name: "sleepy", Image: "wflow-test/busybox", Commands: []wflow.Command{wflow.Shell("echo zzz; sleep 100")}})
}

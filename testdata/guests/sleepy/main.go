// Command sleepy is a test guest: one step that prints and then sleeps for
// 100 s, for tests that interrupt a run.
package main

import "github.com/wflow/wflow/sdk/go/wflow"

func main() {
	wflow.Run(wflow.Step{Name: "sleepy", Image: "wflow-test/busybox", Commands: []wflow.Command{wflow.Shell("echo zzz; sleep 100")}})
}

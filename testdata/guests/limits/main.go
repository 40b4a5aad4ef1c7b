// Command limits is a test guest: it runs a step with a timeout, a memory
// limit and a retry policy through the Go SDK and sets what came back as its
// output.
package main

import (
	"os"
	"time"

	"github.com/wflow/wflow/sdk/go/wflow"
)

func main() {
	slow, err := wflow.Run(wflow.Step{Name: "slow", Image: "wflow-test/busybox", Timeout: time.Second,
		Commands: []wflow.Command{wflow.Shell("sleep 30")}})
	if err != nil {
		os.Exit(1)
	}
	flaky, err := wflow.Run(wflow.Step{Name: "flaky", Image: "wflow-test/busybox", Memory: "64m",
		Retry:    &wflow.Retry{Retries: 3, Initial: 10 * time.Millisecond, OnExitCodes: []int{75}},
		Commands: []wflow.Command{wflow.Shell(`n=$$(cat n 2>/dev/null || echo 0); echo $$((n+1)) > n; [ $$n -ge 1 ] || exit 75`)}})
	if err != nil {
		os.Exit(1)
	}
	wflow.SetOutput(map[string]any{
		"slow_kind": slow.ErrorKind, "slow_rc": slow.ReturnCode,
		"flaky_rc": flaky.ReturnCode, "flaky_attempts": len(flaky.Attempts),
	})
}

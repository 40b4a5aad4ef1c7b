// Command group is a test guest: it runs n (parameter "n", default 3)
// one-second steps with a wflow.Group and sets as its output how many ran,
// whether they ran at the same time, and the typed parameter "ratio".
package main

import (
	"os"
	"strconv"

	"github.com/wflow/wflow/sdk/go/wflow"
)

func main() {
	n, err := wflow.ParamInt("n", 3)
	if err != nil {
		wflow.Warn("%v", err)
		os.Exit(1)
	}
	ratio, err := wflow.ParamFloat("ratio", 0.5)
	if err != nil {
		wflow.Warn("%v", err)
		os.Exit(1)
	}
	var g wflow.Group
	for i := 0; i < n; i++ {
		g.Submit(wflow.Step{Name: "s" + strconv.Itoa(i), Image: "wflow-test/busybox", Commands: []wflow.Command{wflow.Shell("sleep 1")}})
	}
	results, err := g.Wait()
	if err != nil {
		wflow.Warn("%v", err)
		os.Exit(1)
	}
	// They overlapped when every step started before any finished.
	overlapped, ok := true, 0
	for _, a := range results {
		if a.OK() {
			ok++
		}
		for _, b := range results {
			if !a.Started.Before(b.Finished) {
				overlapped = false
			}
		}
	}
	handles := []int{}
	for _, r := range results {
		handles = append(handles, int(r.Handle))
	}
	wflow.SetOutput(map[string]any{"ok": ok, "overlapped": overlapped, "ratio": ratio, "handles": handles})
}

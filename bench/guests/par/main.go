// Command par is a benchmark guest: n (default 32) independent one-command
// steps, all submitted at once, waited for as they land.
package main

import (
	"os"
	"strconv"

	"github.com/wflow/wflow/sdk/go/wflow"
)

func main() {
	n, err := strconv.Atoi(wflow.Param("n"))
	if err != nil {
		n = 32
	}
	var pending []wflow.Handle
	for i := 0; i < n; i++ {
		h, err := wflow.Submit(wflow.Step{Name: "p" + strconv.Itoa(i), Image: "wflow-test/busybox", Commands: []wflow.Command{wflow.Argv("true")}})
		if err != nil {
			os.Exit(1)
		}
		pending = append(pending, h)
	}
	for len(pending) > 0 {
		res, err := wflow.Wait(pending...)
		if err != nil || !res.OK() {
			os.Exit(1)
		}
		for i, h := range pending {
			if h == res.Handle {
				pending = append(pending[:i], pending[i+1:]...)
				break
			}
		}
	}
}

// Command cached is a benchmark guest for the step cache: n (default 20)
// steps one after another, each writing one declared output; with the
// parameter input, the first step also declares that path as an input.
package main

import (
	"fmt"
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
		st := wflow.Step{Name: "s" + strconv.Itoa(i), Image: "wflow-test/busybox",
			Commands: []wflow.Command{wflow.Shell(fmt.Sprintf("mkdir -p out && echo %d > out/s%d", i, i))},
			Outputs:  []string{fmt.Sprintf("out/s%d", i)}}
		if in := wflow.Param("input"); in != "" && i == 0 {
			st.Inputs = []string{in}
		}
		res, err := wflow.Run(st)
		if err != nil || !res.OK() {
			os.Exit(1)
		}
	}
}

// Command group is a test guest: it runs n (parameter "n", default 3)
// one-second steps (of the image named by the parameter "image", default
// wflow-test/busybox) with a wflow.Group and sets as its output how many ran,
// whether they ran at the same time, and the typed parameter "ratio". With
// -p case=bad it checks instead that WaitAll survives a bad handle and that
// a Group keeps one result per submit when the host refuses one.
package main

import (
	"os"
	"strconv"

	"github.com/wflow/wflow/sdk/go/wflow"
)

func main() {
	if wflow.Param("case") == "bad" {
		bad()
		return
	}
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
	image := wflow.Param("image")
	if image == "" {
		image = "wflow-test/busybox"
	}
	var g wflow.Group
	for i := 0; i < n; i++ {
		g.Submit(wflow.Step{Name: "s" + strconv.Itoa(i), Image: image, Commands: []wflow.Command{wflow.Shell("sleep 1")}})
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

func step(name, script string) wflow.Step {
	return wflow.Step{Name: name, Image: "wflow-test/busybox", Commands: []wflow.Command{wflow.Shell(script)}}
}

func bad() {
	h1, _ := wflow.Submit(step("a", "sleep 0.3; echo a"))
	h2, _ := wflow.Submit(step("b", "echo b"))
	all, err := wflow.WaitAll(h1, 999, h2)
	var g wflow.Group
	g.Submit(step("g1", "echo g1"))
	g.Submit(wflow.Step{Name: "refused", Image: "wflow-test/busybox"}) // no commands: invalid_step
	g.Submit(step("g3", "echo g3"))
	grouped, gerr := g.Wait()
	names := []string{}
	for _, r := range grouped {
		names = append(names, r.Step+":"+strconv.FormatBool(r.OK()))
	}
	wflow.SetOutput(map[string]any{
		"waitall": []string{all[0].Stdout, all[1].Step, all[2].Stdout}, "waitall_err": err != nil,
		"group": names, "group_err": gerr != nil,
	})
}

// Command go-pipeline is an example workflow: two steps run in parallel
// (Submit and Wait), and a third gets an environment built from their
// results. A failing step stops the workflow: the module decides so.
//
//	GOOS=wasip1 GOARCH=wasm go build -o go-pipeline.wasm ./examples/go-pipeline
//	wflow run go-pipeline.wasm -p image=wflow-test/busybox
//
// Parameters: image (default wflow-test/busybox); fail=lines makes the
// count-lines step fail, to show the workflow stopping.
package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/wflow/wflow/sdk/go/wflow"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func run() error {
	image := wflow.Param("image")
	if image == "" {
		image = "wflow-test/busybox"
	}
	lines := "printf 'alpha\\nbeta\\ngamma\\n' > lines.txt && wc -l < lines.txt"
	if wflow.Param("fail") == "lines" {
		lines = "echo 'no input for count-lines' >&2; exit 3"
	}

	// Two independent steps, started at once.
	words, err := wflow.Submit(wflow.Step{
		Name: "count-words", Image: image,
		Commands: []wflow.Command{wflow.Shell("echo the quick brown fox | wc -w")},
	})
	if err != nil {
		return err
	}
	count, err := wflow.Submit(wflow.Step{
		Name: "count-lines", Image: image,
		Commands: []wflow.Command{wflow.Shell(lines)},
	})
	if err != nil {
		return err
	}

	// React to each result as it lands.
	counts := map[string]string{}
	for pending := []wflow.Handle{words, count}; len(pending) > 0; {
		res, err := wflow.Wait(pending...)
		if err != nil {
			return err
		}
		pending = remove(pending, res.Handle)
		if !res.OK() {
			return fmt.Errorf("step %s failed with code %d: %s", res.Step, res.ReturnCode, strings.TrimSpace(res.Stderr+res.Error))
		}
		counts[res.Step] = strings.TrimSpace(res.Stdout)
		wflow.Log("%s finished: %s", res.Step, counts[res.Step])
	}

	// The third step's environment comes from the first two results.
	// `$$` is a literal `$` for the shell (wflow substitutes --var names).
	res, err := wflow.Run(wflow.Step{
		Name: "summarize", Image: image,
		Env: map[string]string{"WORDS": counts["count-words"], "LINES": counts["count-lines"]},
		Commands: []wflow.Command{
			wflow.Shell(`echo "words=$$WORDS lines=$$LINES" > summary.txt`),
			wflow.Argv("cat", "summary.txt"),
		},
	})
	if err != nil {
		return err
	}
	if !res.OK() {
		return fmt.Errorf("step summarize failed with code %d", res.ReturnCode)
	}

	// The module sees the run directory as its working directory.
	summary, err := os.ReadFile("summary.txt")
	if err != nil {
		return err
	}
	return wflow.SetOutput(map[string]string{
		"words":   counts["count-words"],
		"lines":   counts["count-lines"],
		"summary": strings.TrimSpace(string(summary)),
	})
}

func remove(hs []wflow.Handle, h wflow.Handle) []wflow.Handle {
	out := hs[:0]
	for _, x := range hs {
		if x != h {
			out = append(out, x)
		}
	}
	return out
}

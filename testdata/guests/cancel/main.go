// Command cancel is a test guest of ABI v1.2 through the Go SDK: waits
// that time out (WaitAny with a deadline), Cancel of a running and of a
// queued step, and groups made by NewGroup that cancel the rest at the
// first failure or at their deadline. Run it with --parallel 2. Its output
// says what each part saw; the test checks it.
//
// Its first part waits until the long step has started, looking for a file
// the step writes: a module whose calls depend on the run directory's
// files is not one `wflow replay` can run again (docs/durability.md).
package main

import (
	"context"
	"errors"
	"os"
	"time"

	"github.com/wflow/wflow/sdk/go/wflow"
)

func step(name, script string) wflow.Step {
	return wflow.Step{Name: name, Image: "wflow-test/busybox", Commands: []wflow.Command{wflow.Shell(script)}}
}

// outcome is what the test needs of a result.
type outcome struct {
	Kind  string `json:"kind"`
	Error string `json:"error"`
	Code  int    `json:"code"`
}

func of(r wflow.ExecResult) outcome { return outcome{r.ErrorKind, r.Error, r.ReturnCode} }

func exists(path string) bool { _, err := os.Stat(path); return err == nil }

func must(err error) {
	if err != nil {
		wflow.Warn("%v", err)
		os.Exit(1)
	}
}

func main() {
	out := map[string]any{}

	// A running step: wait for it with short deadlines until it has
	// started (each wait times out), then cancel it.
	long, err := wflow.Submit(step("long", "touch long.started; sleep 60; touch long.finished"))
	must(err)
	// With -p replayable=1 its calls depend on nothing but their answers
	// (not on files the steps write), so `wflow replay` can run it again:
	// two waits, whether or not the step has started by then.
	replayable := wflow.Param("replayable") != ""
	timeouts := 0
	for replayable && timeouts < 2 || !replayable && !exists("long.started") {
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		_, err := wflow.WaitAny(ctx, long)
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) {
			wflow.Warn("a wait of a sleeping step returned %v", err)
			os.Exit(1)
		}
		timeouts++
	}
	out["timeouts"] = timeouts
	must(wflow.Cancel(long))
	res, err := wflow.Wait(long)
	must(err)
	out["long"] = of(res)

	// A queued step: two blockers hold both slots.
	b1, err := wflow.Submit(step("blocker1", "sleep 60"))
	must(err)
	b2, err := wflow.Submit(step("blocker2", "sleep 60"))
	must(err)
	queued, err := wflow.Submit(step("queued", "touch queued.ran"))
	must(err)
	must(wflow.Cancel(queued))
	res, err = wflow.Wait(queued)
	must(err)
	out["queued"] = of(res)
	must(wflow.Cancel(b1))
	must(wflow.Cancel(b2))
	if _, err := wflow.WaitAll(b1, b2); err != nil {
		must(err)
	}
	if replayable {
		must(wflow.SetOutput(out))
		return
	}

	// A group whose first step fails: the running sibling and the queued
	// one are cancelled.
	g := wflow.NewGroup(context.Background())
	g.Submit(step("fails", "sleep 1; exit 3"))
	g.Submit(step("sibling", "sleep 60"))
	g.Submit(step("third", "touch third.ran; sleep 60"))
	results, err := g.Wait()
	var se *wflow.StepError
	if errors.As(err, &se) {
		out["group_failed"] = se.Result.Step
	}
	group := []outcome{}
	for _, r := range results {
		group = append(group, of(r))
	}
	out["group"] = group

	// A group whose deadline passes.
	ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
	defer cancel()
	g = wflow.NewGroup(ctx)
	g.Submit(step("slow1", "sleep 60"))
	g.Submit(step("slow2", "sleep 60"))
	results, err = g.Wait()
	out["deadline_err"] = errors.Is(err, context.DeadlineExceeded)
	kinds := []string{}
	for _, r := range results {
		kinds = append(kinds, r.ErrorKind)
	}
	out["deadline"] = kinds

	out["ran"] = map[string]bool{"long.finished": exists("long.finished"), "queued.ran": exists("queued.ran"), "third.ran": exists("third.ran")}
	must(wflow.SetOutput(out))
}

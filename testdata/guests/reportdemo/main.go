// Command reportdemo is a test guest whose run shows every part of a run
// report: steps in parallel and waiting for a --parallel slot, a step that
// fails once and succeeds on its retry, a step that fails, one cancelled,
// one that burns CPU and holds memory, and one that prints markup
// (<script>) the report must show as text. It logs as it goes. The browser
// test and scripts/report-screenshot.sh run it, with --parallel 3.
//
// Parameters: image (default wflow-test/busybox).
package main

import (
	"time"

	"github.com/wflow/wflow/sdk/go/wflow"
)

func main() {
	image := wflow.Param("image")
	if image == "" {
		image = "wflow-test/busybox"
	}
	step := func(name, script string) wflow.Step {
		return wflow.Step{Name: name, Image: image, Commands: []wflow.Command{wflow.Shell(script)}}
	}
	wflow.Log("fetching and preparing the inputs")
	prepare := step("prepare", `echo preparing; sleep 1; seq 1 5 > inputs.txt; echo done`)
	prepare.Memory = "64m"
	if _, err := wflow.Run(prepare); err != nil {
		wflow.Warn("prepare: %v", err)
	}

	flaky := step("flaky-download", `if [ -f .tried ]; then echo downloaded; else touch .tried; echo 'connection reset' >&2; exit 75; fi`)
	flaky.Retry = &wflow.Retry{Retries: 2, Initial: 500 * time.Millisecond, OnExitCodes: []int{75}}
	heavy := step("crunch", `x=$$(head -c 20000000 /dev/zero | tr "\\0" a); timeout 2 sh -c "while :; do :; done"; echo $${#x} bytes crunched`)
	heavy.CPUs = 1
	markup := step("markup", `echo '<script>alert("not run")</script>'; echo '<b>bold?</b> & done' >&2`)
	broken := step("broken", `echo 'cannot parse line 3' >&2; exit 2`)
	slow := step("slow", `sleep 30`)
	var handles []wflow.Handle
	for _, s := range []wflow.Step{flaky, heavy, markup, broken, slow} {
		h, err := wflow.Submit(s)
		if err != nil {
			wflow.Warn("submit %s: %v", s.Name, err)
			continue
		}
		handles = append(handles, h)
	}
	wflow.Log("submitted %d steps", len(handles))
	slowHandle := handles[len(handles)-1]
	for pending := handles; len(pending) > 0; {
		if len(pending) == 1 && pending[0] == slowHandle {
			wflow.Warn("not waiting for the slow step: cancelling it")
			wflow.Cancel(slowHandle)
		}
		res, err := wflow.Wait(pending...)
		if err != nil {
			wflow.Warn("wait: %v", err)
			break
		}
		wflow.Log("%s finished: exit %d", res.Step, res.ReturnCode)
		for i, h := range pending {
			if h == res.Handle {
				pending = append(pending[:i:i], pending[i+1:]...)
				break
			}
		}
	}
	wflow.SetOutput(map[string]any{"steps": len(handles) + 1})
}

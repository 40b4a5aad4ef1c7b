package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/wflow/wflow/internal/testenv"
	"github.com/wflow/wflow/step"
)

func TestJSONEvents(t *testing.T) {
	testenv.Docker(t)
	rundir := t.TempDir()
	code, stdout, stderr := wflow(t, "run", testenv.GoGuest(t, "./examples/go-pipeline"), "--rundir", rundir, "--json")
	if code != exitOK {
		t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
	}
	counts := map[string]int{}
	var last map[string]any
	sc := bufio.NewScanner(strings.NewReader(stdout))
	for sc.Scan() {
		var ev map[string]any
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			t.Fatalf("not a JSON event: %q: %v", sc.Text(), err)
		}
		if ev["time"] == nil {
			t.Errorf("event without time: %v", ev)
		}
		counts[ev["event"].(string)]++
		if ev["event"] == "output" && ev["source"] == "summarize" && ev["line"] != "words=4 lines=3" {
			t.Errorf("output event %v", ev)
		}
		if ev["event"] == "step_finished" {
			if r, ok := ev["result"].(map[string]any); !ok || r["returncode"] != float64(0) {
				t.Errorf("step_finished %v", ev)
			}
		}
		last = ev
	}
	if counts["run_started"] != 1 || counts["step_started"] != 3 || counts["step_finished"] != 3 || counts["log"] != 2 || counts["output"] < 3 {
		t.Errorf("events %v", counts)
	}
	if last["event"] != "run_finished" || last["status"] != "succeeded" || !strings.HasSuffix(last["report"].(string), "report.json") {
		t.Errorf("last event %v", last)
	}
}

func TestLiveStatusLine(t *testing.T) {
	var out bytes.Buffer
	c := newConsole(&out, false)
	c.status = true                                                 // as on a terminal
	redraw := func() { c.mu.Lock(); c.drawStatus(); c.mu.Unlock() } // what the flusher does every tick
	c.StepStarted(1, step.Step{Name: "train", Image: "img"})
	redraw()
	w := c.StepOutput(1, step.Step{Name: "train"}).Stdout
	w.Write([]byte("epoch 1\n"))
	redraw()
	c.StepFinished(step.ExecResult{Step: "train", Handle: 1})
	redraw()
	c.Close()
	s := out.String()
	if !strings.Contains(s, "running: train ") {
		t.Errorf("no status line in %q", s)
	}
	// A log line clears the status line before it is written.
	if !strings.Contains(s, "\r\x1b[K[train] epoch 1\n") {
		t.Errorf("the line was not printed over a cleared status line: %q", s)
	}
	// No step runs at the end: nothing of the status line is left on the screen.
	if !strings.HasSuffix(s, "exited 0 after 0s\n") {
		t.Errorf("the output does not end with the last line: %q", s[max(0, len(s)-60):])
	}
}

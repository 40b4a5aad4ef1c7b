package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/wflow/wflow/report"
	"github.com/wflow/wflow/step"
)

// reportPages: the HTML report of a 5,000-step run, next to its JSON
// report: the time to write each, their sizes, and the time headless
// Chromium takes to load and lay out the page, next to a 10-step page's
// (Chromium's own start).
func (e *env) reportPages(reps int) ([]row, error) {
	chromium, err := exec.LookPath("chromium")
	if err != nil {
		return nil, fmt.Errorf("no chromium (apt-get install chromium): %w", err)
	}
	big, small := syntheticReport(5000), syntheticReport(10)
	var writeHTML, writeJSON, render, renderSmall stats
	var htmlSize, jsonSize float64
	for i := 0; i < reps; i++ {
		var page bytes.Buffer
		start := time.Now()
		if err := report.WriteHTML(&page, report.Page{Report: big, Base: "../../.."}); err != nil {
			return nil, err
		}
		writeHTML = append(writeHTML, time.Since(start).Seconds()*1000)
		start = time.Now()
		j, err := step.MarshalJSON(big, true)
		if err != nil {
			return nil, err
		}
		writeJSON = append(writeJSON, time.Since(start).Seconds()*1000)
		htmlSize, jsonSize = float64(page.Len())/(1<<20), float64(len(j))/(1<<20)

		for _, c := range []struct {
			r   report.Report
			out *stats
		}{{big, &render}, {small, &renderSmall}} {
			path := filepath.Join(e.dir, fmt.Sprintf("report-%d.html", len(c.r.Steps)))
			var b bytes.Buffer
			if err := report.WriteHTML(&b, report.Page{Report: c.r}); err != nil {
				return nil, err
			}
			if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
				return nil, err
			}
			flags := []string{"--headless", "--no-sandbox", "--disable-gpu", "--user-data-dir=" + filepath.Join(e.dir, "chromium"), "--window-size=1280,1000"}
			if i == 0 { // once: the page is whole in the browser
				var dom bytes.Buffer
				if _, _, err := timeCmd(e.dir, &dom, chromium, append(flags, "--dump-dom", "file://"+path)...); err != nil {
					return nil, err
				}
				if n := strings.Count(dom.String(), `<rect class="bar `); n < len(c.r.Steps) {
					return nil, fmt.Errorf("chromium laid out %d bars of %d steps", n, len(c.r.Steps))
				}
			}
			d, _, err := timeCmd(e.dir, io.Discard, chromium, append(flags, "--screenshot="+filepath.Join(e.dir, "report.png"), "file://"+path)...)
			if err != nil {
				return nil, err
			}
			*c.out = append(*c.out, d)
		}
	}
	r1 := row{Case: "report.html of 5,000 steps: written", Unit: "ms", Wflow: writeHTML, Baseline: writeJSON, BaselineName: "report.json of the same run", Target: "≤ 1 s"}
	r1.Met = writeHTML.median() <= 1000
	r2 := row{Case: "report.html of 5,000 steps: size", Unit: "MiB", Wflow: stats{htmlSize}, Baseline: stats{jsonSize}, BaselineName: "report.json of the same run", Target: "≤ 1.00"}
	r2.Met = r2.ratio() <= 1
	r3 := row{Case: "report.html of 5,000 steps: loaded by headless Chromium", Unit: "s", Wflow: render, Baseline: renderSmall, BaselineName: "the page of a 10-step run", Target: "≤ 3 s more"}
	r3.Met = render.median()-renderSmall.median() <= 3
	r1.Note = "html/template escapes every value by its context, at about 70 µs a step: the end of a 5,000-step run waits a third of a second for its page. A synthetic run: 5,000 steps, a third retried once, each with a few lines of output; `chromium --headless --screenshot` loads, lays out and paints the page (Chromium's own start is the 10-step page's time)"
	return []row{r1, r2, r3}, nil
}

// syntheticReport is the report of a run of n steps, 3 in parallel, every
// third retried once, one in seven failed, each printing a few lines.
func syntheticReport(n int) report.Report {
	t0 := time.Date(2026, 11, 28, 1, 0, 0, 0, time.UTC)
	r := report.Report{RunID: "20261128-010000-bench0", Module: "bench.wasm", Status: "failed", Started: t0,
		Params: json.RawMessage(`{"n":5000}`), Output: json.RawMessage(`null`), WflowVersion: "bench", ABI: "wflow_v1"}
	for i := 1; i <= n; i++ {
		at := t0.Add(time.Duration(i/3) * 2 * time.Second)
		res := step.ExecResult{Step: fmt.Sprintf("sample-%05d", i), Handle: uint32(i), Image: "wflow-test/busybox",
			Submitted: t0, Started: at, Finished: at.Add(1900 * time.Millisecond), DurationMS: 1900,
			Stdout:     strings.Repeat(fmt.Sprintf("processed record %d of sample %d\n", i, i), 5),
			StdoutFile: fmt.Sprintf(".wflow/steps/%04d-sample-%05d/stdout", i, i), StderrFile: fmt.Sprintf(".wflow/steps/%04d-sample-%05d/stderr", i, i),
			Commands:  []step.CommandResult{{Args: []string{"sh", "-c", "process sample"}, DurationMS: 1900}},
			Limits:    &step.Limits{Memory: 256 << 20, Network: "none"},
			Resources: &step.Resources{PeakMemoryBytes: 40 << 20, CPUMS: 1700},
			Decisions: []step.Decision{{Policy: "builtin:network", Step: fmt.Sprintf("sample-%05d", i), Handle: uint32(i), Verdict: "allow"}}}
		if i%7 == 0 {
			res.ReturnCode, res.Stderr = 1, "sample is empty\n"
		}
		if i%3 == 0 {
			res.Attempts = []step.Attempt{
				{Attempt: 1, ReturnCode: 75, Started: at, Finished: at.Add(500 * time.Millisecond), DurationMS: 500},
				{Attempt: 2, ReturnCode: res.ReturnCode, Started: at.Add(time.Second), Finished: res.Finished, DurationMS: 900},
			}
		}
		r.Steps = append(r.Steps, res)
		r.Decisions = append(r.Decisions, res.Decisions...)
		r.Finished = res.Finished
	}
	r.DurationMS = r.Finished.Sub(t0).Milliseconds()
	return r
}

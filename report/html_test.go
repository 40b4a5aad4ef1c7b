package report

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/wflow/wflow/step"
)

// sample is a report with n steps of every outcome; every third step was
// retried once.
func sample(n int) Report {
	t0 := time.Date(2026, 11, 28, 1, 0, 0, 0, time.UTC)
	r := Report{RunID: "20261128-010000-abcdef", Module: "wf.wasm", Status: "failed", Started: t0, Finished: t0.Add(time.Minute),
		DurationMS: 60000, Params: json.RawMessage(`{"n":3}`), Output: json.RawMessage(`null`), WflowVersion: "dev", ABI: "wflow_v1"}
	for i := 1; i <= n; i++ {
		at := t0.Add(time.Duration(i) * 10 * time.Millisecond)
		res := step.ExecResult{Step: fmt.Sprintf("step-%d", i), Handle: uint32(i), Image: "busybox", Submitted: at,
			Started: at.Add(5 * time.Millisecond), Finished: at.Add(2 * time.Second), DurationMS: 1995,
			Stdout: fmt.Sprintf("line of %d\n", i), StdoutFile: fmt.Sprintf(".wflow/steps/%04d-step-%d/stdout", i, i),
			Commands: []step.CommandResult{{Args: []string{"sh", "-c", "echo hi"}}},
			Limits:   &step.Limits{Memory: 64 << 20, Network: "none"}, Resources: &step.Resources{PeakMemoryBytes: 3 << 20, CPUMS: 12}}
		switch i % 5 {
		case 1:
			res.ReturnCode = 2
		case 2:
			res.Cached = true
		case 3:
			res.ErrorKind, res.Error, res.ReturnCode = step.ErrorKindCancelled, "cancelled by step_cancel", 1
		case 4:
			res.ErrorKind, res.Error, res.ReturnCode = step.ErrorKindDenied, "refused by policy", 1
		}
		if i%3 == 0 && !res.Cached {
			res.Attempts = []step.Attempt{
				{Attempt: 1, ReturnCode: 1, Started: res.Started, Finished: res.Started.Add(time.Second), DurationMS: 1000},
				{Attempt: 2, ReturnCode: res.ReturnCode, ErrorKind: res.ErrorKind, Started: res.Started.Add(1500 * time.Millisecond), Finished: res.Finished, DurationMS: 500},
			}
		}
		r.Steps = append(r.Steps, res)
	}
	return r
}

func render(t testing.TB, p Page) string {
	t.Helper()
	var b bytes.Buffer
	if err := WriteHTML(&b, p); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// TestHTMLHasABarPerAttempt: the timeline has one bar per attempt of each
// step (one for a step without retries), with its outcome.
func TestHTMLHasABarPerAttempt(t *testing.T) {
	r := sample(10)
	out := render(t, Page{Report: r, Base: "../../.."})
	want := 0
	for _, s := range r.Steps {
		want += max(len(s.Attempts), 1)
	}
	bars := regexp.MustCompile(`<rect class="bar (\w+)" data-handle="(\d+)" data-attempt="(\d+)"`).FindAllStringSubmatch(out, -1)
	if len(bars) != want {
		t.Fatalf("%d bars, want %d", len(bars), want)
	}
	seen := map[string]bool{}
	for _, b := range bars {
		seen[b[1]] = true
	}
	for _, o := range outcomes {
		if !seen[o] {
			t.Errorf("no bar of outcome %q", o)
		}
	}
	if !strings.Contains(out, `data-handle="3" data-attempt="2"`) {
		t.Error("step 3's second attempt has no bar")
	}
	if !strings.Contains(out, `href="../../../.wflow/steps/0001-step-1/stdout"`) {
		t.Error("no link to step 1's stdout file")
	}
}

// TestLinks: a link to a run directory file has every segment escaped, the
// base's too; never a scheme, never outside the run directory, never to a
// file a browser would take for a page.
func TestLinks(t *testing.T) {
	for _, c := range []struct{ base, rel, want string }{
		{"../../..", ".wflow/steps/0001-a/stdout", "../../../.wflow/steps/0001-a/stdout"},
		{"/home/u/runs/r 1", ".wflow/steps/0001-a/stdout", "file:///home/u/runs/r%201/.wflow/steps/0001-a/stdout"},
		{"/home/u/runs/.%2e", ".wflow/x", "file:///home/u/runs/.%252e/.wflow/x"},
		{"javascript:alert(1)", ".wflow/x", "./javascript%3Aalert%281%29/.wflow/x"},
		{"runs/a#b?c", ".wflow/x", "./runs/a%23b%3Fc/.wflow/x"},
		{"../../..", "out/result.ipynb", "../../../out/result.ipynb"},
		{"../../..", "out/page.html", ""},
		{"../../..", "out/pic.SVG", ""},
		{"../../..", "../../etc/passwd", ""},
		{"../../..", "/etc/passwd", ""},
		{"", ".wflow/x", ""},
	} {
		if got := string(link(c.base, c.rel)); got != c.want {
			t.Errorf("link(%q, %q) = %q, want %q", c.base, c.rel, got, c.want)
		}
	}
}

// TestHTMLEscapes: what steps print, their names, the parameters, the
// output and the module's log cannot put markup or a script in the page,
// and the page loads nothing from anywhere.
func TestHTMLEscapes(t *testing.T) {
	evil := `</pre><script>alert(1)</script><img src=x onerror=alert(2)>`
	r := sample(2)
	r.Steps[0].Stdout = evil
	r.Steps[0].Stderr = evil
	r.Steps[0].Step = `a"><script>alert(3)</script>`
	r.Steps[0].Error = evil
	r.Steps[0].Image = evil
	r.Steps[0].StdoutFile = `.wflow/steps/x"><script>/stdout`
	r.Steps[1].StdoutFile = `javascript:alert(4)`
	r.Params = json.RawMessage(`{"x":"</pre><script>alert(5)</script>"}`)
	r.Output = json.RawMessage(`"<script>alert(6)</script>"`)
	r.Message = evil
	out := render(t, Page{Report: r, ModuleLog: evil + "\n", Base: "../../.."})
	if strings.Contains(out, "<script") || strings.Contains(out, "<img") {
		t.Errorf("markup from the run reached the page:\n%s", out)
	}
	if n := strings.Count(out, "&lt;script&gt;alert("); n < 6 {
		t.Errorf("%d escaped scripts shown, want the texts shown escaped", n)
	}
	if strings.Contains(out, `href="javascript:`) || strings.Contains(out, "alert(4)") {
		t.Error("a file name became a javascript: link")
	}
	for _, m := range regexp.MustCompile(`(?i)(?:src|href)="([^"#][^"]*)"`).FindAllStringSubmatch(out, -1) {
		if strings.Contains(m[1], "://") {
			t.Errorf("the page refers to %s", m[1])
		}
	}
	if !strings.Contains(out, `Content-Security-Policy" content="default-src 'none'`) {
		t.Error("no Content-Security-Policy")
	}
}

func TestHTMLTails(t *testing.T) {
	var b strings.Builder
	for i := 1; i <= 50; i++ {
		fmt.Fprintf(&b, "line %d\n", i)
	}
	got, cut := tail(b.String(), false)
	if !cut || !strings.HasPrefix(got, "line 31\n") || !strings.HasSuffix(got, "line 50\n") {
		t.Errorf("tail = %q, %v", got, cut)
	}
	got, cut = tail(strings.Repeat("é", 3000), false)
	if !cut || len(got) > htmlTailBytes || !strings.HasPrefix(got, "é") {
		t.Errorf("tail of a long line: %d bytes, cut %v, starts %q", len(got), cut, got[:2])
	}
	if got, cut := tail("short", true); got != "short" || !cut {
		t.Errorf("tail of a truncated stream = %q, %v", got, cut)
	}
}

// BenchmarkHTML5000: the page of a 5,000-step run (docs/benchmarks.md).
func BenchmarkHTML5000(b *testing.B) {
	r := sample(5000)
	var size int
	for b.Loop() {
		var buf bytes.Buffer
		if err := WriteHTML(&buf, Page{Report: r, Base: "../../.."}); err != nil {
			b.Fatal(err)
		}
		size = buf.Len()
	}
	b.ReportMetric(float64(size)/(1<<20), "MiB")
}

package main

import (
	"context"
	"fmt"
	"image"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/wflow/wflow/internal/testenv"
	"github.com/wflow/wflow/report"
)

// runReportDemo runs the report demo guest (parallel steps, a retry, a
// failure, a cancel, markup in a step's output) into a run directory of
// its own, and returns the directory and its report.
func runReportDemo(t *testing.T) (string, report.Report) {
	t.Helper()
	testenv.Docker(t)
	guest := testenv.GoGuest(t, "./testdata/guests/reportdemo")
	dir := filepath.Join(t.TempDir(), "runs", "demo")
	code, stdout, stderr := wflow(t, "run", guest, "--rundir", dir, "--parallel", "3")
	if code != exitOK {
		t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
	}
	rep := readReport(t, dir)
	if !strings.Contains(stdout, "html:   "+filepath.Join(dir, rep.HTML)) {
		t.Errorf("the console does not name report.html:\n%s", stdout)
	}
	return dir, rep
}

// chromium runs headless Chromium on a file with args, and returns its
// stdout.
func chromium(t *testing.T, page string, args ...string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	args = append([]string{"--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
		"--user-data-dir=" + t.TempDir(), "--no-first-run"}, args...)
	cmd := exec.CommandContext(ctx, testenv.Chromium(t), append(args, "file://"+page)...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("chromium %v: %v\n%s", args, err, stderr.String())
	}
	return out
}

// TestReportInBrowser: Chromium loads the report.html of a real run: the
// page it renders is not blank and shows the run's colours, and its DOM
// has one timeline bar per step attempt, labelled with the step, and the
// markup a step printed as text, not as elements.
func TestReportInBrowser(t *testing.T) {
	dir, rep := runReportDemo(t)
	page := filepath.Join(dir, rep.HTML)
	dom := string(chromium(t, page, "--dump-dom"))

	bars := regexp.MustCompile(`<rect class="bar (\w+)" data-handle="(\d+)" data-attempt="(\d+)"`).FindAllStringSubmatch(dom, -1)
	want := map[string]string{} // handle/attempt -> outcome
	for _, s := range rep.Steps {
		if len(s.Attempts) == 0 {
			want[fmt.Sprintf("%d/1", s.Handle)] = ""
		}
		for _, a := range s.Attempts {
			want[fmt.Sprintf("%d/%d", s.Handle, a.Attempt)] = ""
		}
		if !strings.Contains(dom, fmt.Sprintf(">%s #%d</text>", s.Step, s.Handle)) {
			t.Errorf("no timeline label for %s #%d", s.Step, s.Handle)
		}
	}
	got := map[string]string{}
	for _, b := range bars {
		got[b[2]+"/"+b[3]] = b[1]
	}
	if len(bars) != len(want) || len(got) != len(want) {
		t.Errorf("%d bars (%d attempts distinct), want one per attempt: %d\n%v", len(bars), len(got), len(want), got)
	}
	for k := range want {
		if _, ok := got[k]; !ok {
			t.Errorf("no bar for step/attempt %s", k)
		}
	}
	outcomes := map[string]string{}
	for _, s := range rep.Steps {
		outcomes[s.Step] = got[fmt.Sprintf("%d/%d", s.Handle, max(len(s.Attempts), 1))]
		if s.Step == "flaky-download" && (len(s.Attempts) != 2 || got[fmt.Sprintf("%d/1", s.Handle)] != "failed") {
			t.Errorf("flaky-download: %d attempts, the first's bar %q; want 2, failed then ok", len(s.Attempts), got[fmt.Sprintf("%d/1", s.Handle)])
		}
	}
	for step, o := range map[string]string{"prepare": "ok", "flaky-download": "ok", "crunch": "ok", "markup": "ok", "broken": "failed", "slow": "cancelled"} {
		if outcomes[step] != o {
			t.Errorf("%s's last bar is %q, want %q", step, outcomes[step], o)
		}
	}

	// What the markup step printed is text in the page, not an element.
	if strings.Contains(dom, "<script") || strings.Contains(dom, "<b>bold") {
		t.Errorf("a step's output became markup in the page")
	}
	if !strings.Contains(dom, `&lt;script&gt;alert("not run")&lt;/script&gt;`) || !strings.Contains(dom, "&lt;b&gt;bold?&lt;/b&gt; &amp; done") {
		t.Errorf("the markup step's output is not shown as text")
	}
	if !strings.Contains(dom, "crunch") || !strings.Contains(dom, "MiB") {
		t.Errorf("no peak memory shown")
	}

	// The page as a person sees it: not blank, with the colour of
	// succeeded steps and of the failed one.
	shot := filepath.Join(t.TempDir(), "report.png")
	chromium(t, page, "--window-size=1280,1000", "--screenshot="+shot)
	f, err := os.Open(shot)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	white, green, red := 0, 0, 0
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			switch rgb(img, x, y) {
			case 0xffffff:
				white++
			case 0x2e7d32:
				green++
			case 0xc62828:
				red++
			}
		}
	}
	total := b.Dx() * b.Dy()
	if white > total*98/100 || green < 500 || red < 100 {
		t.Errorf("screenshot: %d of %d pixels white, %d green (ok), %d red (failed): blank or not the report", white, total, green, red)
	}
}

func rgb(img image.Image, x, y int) uint32 {
	r, g, b, _ := img.At(x, y).RGBA()
	return (r>>8)<<16 | (g>>8)<<8 | b>>8
}

package report

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"fmt"
	"html/template"
	"io"
	"math"
	"path"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/wflow/wflow/step"
)

// Page is what the HTML report shows: the run's report, the tail of the
// module's log, and where the links to the run directory's files lead.
type Page struct {
	Report Report
	// ModuleLog is the end of the module's log (ModuleLogPath), and
	// ModuleLogCut whether it has more before.
	ModuleLog    string
	ModuleLogCut bool
	// Base is where the run directory is from the page: a relative path
	// (a page in .wflow/runs/<id>/ has "../../..") or an absolute one (then
	// links are file:// URLs); "" for no links. It is a path, not a URL:
	// the page escapes it.
	Base string
}

// Caps on what the page repeats of each step: the report has up to
// step.ReportText of each stream; the page shows the last lines, and links
// to the whole files.
const (
	htmlTailBytes = 2 << 10
	htmlTailLines = 20
)

//go:embed report.html.tmpl
var pageTemplate string

var page = template.Must(template.New("report").Funcs(template.FuncMap{
	"ms":    func(ms int64) string { return (time.Duration(ms) * time.Millisecond).String() },
	"stamp": func(t time.Time) string { return stampOf(t) },
	"clock": func(t time.Time) string { return clockOf(t) },
	"argv":  argvText,
}).Parse(pageTemplate))

// WriteHTML writes the run's report as one self-contained HTML page: inline
// CSS and SVG, no script, nothing fetched (its Content-Security-Policy
// forbids it). Every text from the run, steps' output included, is escaped.
func WriteHTML(w io.Writer, p Page) error {
	v := viewOf(p)
	var buf bytes.Buffer
	if err := page.Execute(&buf, v); err != nil {
		return fmt.Errorf("report.html: %w", err)
	}
	_, err := w.Write(buf.Bytes())
	return err
}

// view is what the template reads: the report with its timeline laid out.
type view struct {
	R            Report
	Title        string
	Params       string
	Output       string
	Duration     string
	Timeline     timeline
	Steps        []stepView
	ModuleLog    string
	ModuleLogCut bool
	Counts       []count
	// Notable are the decisions that refused or amended a step, Allowed
	// how many others let a step be.
	Notable []step.Decision
	Allowed int
}

type count struct {
	Class, Label string
	N            int
}

type stepView struct {
	R                step.ExecResult
	Outcome          string // a CSS class and a word: ok, failed, cancelled, cached, refused
	Label            string
	PeakMemory, CPU  string
	Limits           string
	Stdout, Stderr   string
	StdoutCut        bool
	StderrCut        bool
	StdoutURL        template.URL
	StderrURL        template.URL
	AttemptFiles     []attemptFiles
	NotebookOutput   template.URL
	BuildLog         template.URL
	StdoutFileShown  string
	StderrFileShown  string
	HasDecisions     bool
	AllowedBy        string          // the policies that let the step be as it was, by name
	OtherDecisions   []step.Decision // those that refused or amended it
	HasAttemptsTable bool
}

type attemptFiles struct {
	step.Attempt
	Outcome        string
	StdoutURL      template.URL
	StderrURL      template.URL
	HasStreamFiles bool
}

// The timeline's geometry, in SVG user units (pixels at 100%).
const (
	labelWidth = 220
	barsWidth  = 880
	rowHeight  = 18
	barHeight  = 12
	axisHeight = 24
)

type timeline struct {
	Width, Height int
	LabelWidth    int
	Ticks         []tick
	Rows          []row
	Span          string
}

type tick struct {
	X      float64
	Label  string
	Anchor string // SVG text-anchor: the last label ends at its line
}

type row struct {
	Y, TextY float64
	Handle   uint32
	Label    string
	Queued   *bar
	Bars     []bar
}

type bar struct {
	X, Y, W, H float64
	Outcome    string
	Attempt    int
	Title      string
}

func viewOf(p Page) view {
	r := p.Report
	v := view{R: r, ModuleLog: p.ModuleLog, ModuleLogCut: p.ModuleLogCut}
	v.Title = fmt.Sprintf("wflow run %s: %s", r.RunID, r.Status)
	v.Params = indentJSON(r.Params)
	v.Output = indentJSON(r.Output)
	v.Duration = (time.Duration(r.DurationMS) * time.Millisecond).String()
	tally := map[string]int{}
	for _, res := range r.Steps {
		sv := stepViewOf(res, p.Base)
		tally[sv.Outcome]++
		v.Steps = append(v.Steps, sv)
	}
	for _, o := range outcomes {
		if tally[o] > 0 {
			v.Counts = append(v.Counts, count{Class: o, Label: o, N: tally[o]})
		}
	}
	v.Timeline = layout(r, v.Steps)
	for _, d := range r.Decisions {
		if d.Verdict == step.VerdictAllow && len(d.Changes) == 0 {
			v.Allowed++
		} else {
			v.Notable = append(v.Notable, d)
		}
	}
	return v
}

// outcomes are the outcomes of a step or an attempt, in the legend's order.
var outcomes = []string{"ok", "failed", "cancelled", "cached", "refused"}

// outcomeOf is a result's outcome.
func outcomeOf(returnCode int, errorKind, errorText string, cached bool) string {
	switch {
	case cached:
		return "cached"
	case errorKind == step.ErrorKindCancelled:
		return "cancelled"
	case errorKind == step.ErrorKindDenied:
		return "refused"
	case returnCode != 0 || errorText != "":
		return "failed"
	}
	return "ok"
}

func stepViewOf(res step.ExecResult, base string) stepView {
	sv := stepView{R: res, Outcome: outcomeOf(res.ReturnCode, res.ErrorKind, res.Error, res.Cached || res.Resumed)}
	sv.Label = fmt.Sprintf("%s #%d", res.Step, res.Handle)
	sv.PeakMemory, sv.CPU = "-", "-"
	if u := res.Resources; u != nil {
		sv.PeakMemory = bytesText(u.PeakMemoryBytes)
		sv.CPU = (time.Duration(u.CPUMS) * time.Millisecond).String()
	}
	sv.Limits = limitsText(res.Limits)
	sv.Stdout, sv.StdoutCut = tail(res.Stdout, res.StdoutTruncated)
	sv.Stderr, sv.StderrCut = tail(res.Stderr, res.StderrTruncated)
	sv.StdoutURL, sv.StderrURL = link(base, res.StdoutFile), link(base, res.StderrFile)
	sv.StdoutFileShown, sv.StderrFileShown = res.StdoutFile, res.StderrFile
	if len(res.Attempts) > 1 {
		sv.HasAttemptsTable = true
		for _, a := range res.Attempts {
			sv.AttemptFiles = append(sv.AttemptFiles, attemptFiles{
				Attempt:        a,
				Outcome:        outcomeOf(a.ReturnCode, a.ErrorKind, a.Error, false),
				StdoutURL:      link(base, a.StdoutFile),
				StderrURL:      link(base, a.StderrFile),
				HasStreamFiles: a.StdoutFile != "" || a.StderrFile != "",
			})
		}
	}
	if nb := res.Notebook; nb != nil {
		sv.NotebookOutput = link(base, nb.Output)
		sv.BuildLog = link(base, nb.BuildLogFile)
	}
	sv.HasDecisions = len(res.Decisions) > 0
	var allowed []string
	for _, d := range res.Decisions {
		if d.Verdict == step.VerdictAllow && len(d.Changes) == 0 {
			allowed = append(allowed, d.Policy)
		} else {
			sv.OtherDecisions = append(sv.OtherDecisions, d)
		}
	}
	sv.AllowedBy = strings.Join(allowed, ", ")
	return sv
}

// layout places one row per step, in the report's order (the order they
// finished), with a bar per attempt and, before the first, the wait for a
// --parallel slot.
func layout(r Report, steps []stepView) timeline {
	t := timeline{Width: labelWidth + barsWidth + 10, LabelWidth: labelWidth}
	start, end := r.Started, r.Finished
	for _, s := range steps {
		for _, at := range []time.Time{s.R.Submitted, s.R.Started} {
			if !at.IsZero() && (start.IsZero() || at.Before(start)) {
				start = at
			}
		}
		if s.R.Finished.After(end) {
			end = s.R.Finished
		}
	}
	total := end.Sub(start)
	if total <= 0 {
		total = time.Millisecond
	}
	t.Span = total.Round(time.Millisecond).String()
	x := func(at time.Time) float64 {
		if at.IsZero() || at.Before(start) {
			at = start
		}
		return tenth(labelWidth + float64(at.Sub(start))/float64(total)*barsWidth)
	}
	width := func(from, to time.Time) float64 { return tenth(max(x(to)-x(from), 1)) }
	for i := 0; i <= 5; i++ {
		at := time.Duration(float64(total) * float64(i) / 5)
		anchor := "middle"
		if i == 5 {
			anchor = "end"
		}
		t.Ticks = append(t.Ticks, tick{X: labelWidth + barsWidth*float64(i)/5, Label: at.Round(roundFor(total)).String(), Anchor: anchor})
	}
	for i, s := range steps {
		y := float64(axisHeight + i*rowHeight)
		rw := row{Y: y, TextY: y + barHeight, Handle: s.R.Handle, Label: clipLabel(s.Label)}
		by := y + float64(rowHeight-barHeight)/2
		cached := s.Outcome == "cached"
		firstStart := s.R.Started
		if len(s.R.Attempts) > 0 && !cached {
			firstStart = s.R.Attempts[0].Started
		}
		if !s.R.Submitted.IsZero() && firstStart.Sub(s.R.Submitted) > 0 {
			rw.Queued = &bar{X: x(s.R.Submitted), Y: by, W: width(s.R.Submitted, firstStart), H: barHeight, Outcome: "queued",
				Title: fmt.Sprintf("waited %s for a slot", firstStart.Sub(s.R.Submitted).Round(time.Millisecond))}
		}
		if len(s.R.Attempts) > 0 && !cached {
			for _, a := range s.R.Attempts {
				o := outcomeOf(a.ReturnCode, a.ErrorKind, a.Error, false)
				rw.Bars = append(rw.Bars, bar{X: x(a.Started), Y: by, W: width(a.Started, a.Finished), H: barHeight, Outcome: o, Attempt: a.Attempt,
					Title: fmt.Sprintf("%s, attempt %d: %s, exit %d, %s", s.R.Step, a.Attempt, o, a.ReturnCode, (time.Duration(a.DurationMS) * time.Millisecond).String())})
			}
		} else {
			rw.Bars = append(rw.Bars, bar{X: x(s.R.Started), Y: by, W: width(s.R.Started, s.R.Finished), H: barHeight, Outcome: s.Outcome, Attempt: 1,
				Title: fmt.Sprintf("%s: %s, exit %d, %s", s.R.Step, s.Outcome, s.R.ReturnCode, (time.Duration(s.R.DurationMS) * time.Millisecond).String())})
		}
		t.Rows = append(t.Rows, rw)
	}
	t.Height = axisHeight + len(steps)*rowHeight + 4
	return t
}

// tenth rounds a coordinate to a tenth of a pixel: the page's size is in
// its numbers.
func tenth(v float64) float64 { return math.Round(v*10) / 10 }

// roundFor is the precision of the axis labels of a timeline spanning d.
func roundFor(d time.Duration) time.Duration {
	switch {
	case d < 2*time.Second:
		return time.Millisecond
	case d < 2*time.Minute:
		return 100 * time.Millisecond
	}
	return time.Second
}

// clipLabel keeps a timeline label within its column.
func clipLabel(s string) string {
	const max = 30
	if utf8.RuneCountInString(s) <= max {
		return s
	}
	r := []rune(s)
	return string(r[:max-1]) + "…"
}

// tail is the last lines of a stream's text, and whether anything is
// left out (by the page or before it).
func tail(s string, truncated bool) (string, bool) {
	cut := truncated
	if len(s) > htmlTailBytes {
		s = s[len(s)-htmlTailBytes:]
		for i := 0; i < utf8.UTFMax && len(s) > 0 && !utf8.RuneStart(s[0]); i++ {
			s = s[1:]
		}
		cut = true
	}
	lines := strings.SplitAfter(s, "\n")
	if lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1]
	}
	if len(lines) > htmlTailLines {
		lines = lines[len(lines)-htmlTailLines:]
		cut = true
	}
	return strings.Join(lines, ""), cut
}

// linkable are the extensions of the files the page links to: what wflow
// writes (streams without one, build logs) and notebooks, which a browser
// shows as text. A step may write any file in the run directory; the page
// never leads to one a browser would run as a page.
var linkable = map[string]bool{"": true, ".log": true, ".txt": true, ".ipynb": true, ".json": true}

// link is a run directory file's URL from the page; "" without a base or
// a file, for a path that is absolute or leaves the run directory, and for
// a file a browser could take for a page. Every segment, of the base too,
// is escaped as a URL path segment.
func link(base, rel string) template.URL {
	if base == "" || rel == "" || path.IsAbs(rel) || !linkable[strings.ToLower(path.Ext(rel))] {
		return ""
	}
	clean := path.Clean(rel)
	if clean == ".." || strings.HasPrefix(clean, "../") || clean == "." {
		return ""
	}
	var url string
	if path.IsAbs(base) {
		url = "file://" + escapeSegments(path.Clean(base))
	} else {
		url = escapeSegments(path.Clean(base))
		if first, _, _ := strings.Cut(url, "/"); first != "." && first != ".." {
			url = "./" + url // never a scheme ("javascript:x" is a folder here)
		}
	}
	return template.URL(strings.TrimSuffix(url, "/") + "/" + escapeSegments(clean))
}

// escapeSegments escapes each segment of a slash-separated path.
func escapeSegments(p string) string {
	segments := strings.Split(p, "/")
	for i, s := range segments {
		if s != "." && s != ".." {
			segments[i] = urlPathEscape(s)
		}
	}
	return strings.Join(segments, "/")
}

// urlPathEscape escapes one path segment: everything but unreserved
// characters.
func urlPathEscape(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.' || c == '~' {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}

func indentJSON(raw json.RawMessage) string {
	var b bytes.Buffer
	if len(raw) == 0 || json.Indent(&b, raw, "", "  ") != nil {
		return string(raw)
	}
	return b.String()
}

func limitsText(l *step.Limits) string {
	if l == nil {
		return "-"
	}
	var parts []string
	if l.Timeout > 0 {
		parts = append(parts, "timeout "+time.Duration(l.Timeout).String())
	}
	if l.CPUs > 0 {
		parts = append(parts, "cpus "+strconv.FormatFloat(l.CPUs, 'f', -1, 64))
	}
	if l.Memory > 0 {
		parts = append(parts, "memory "+bytesText(l.Memory))
	}
	if l.Pids > 0 {
		parts = append(parts, "pids "+strconv.FormatInt(l.Pids, 10))
	}
	if l.Network != "" {
		parts = append(parts, "network "+l.Network)
	}
	if l.ReadOnly {
		parts = append(parts, "read-only")
	}
	if l.User != "" {
		parts = append(parts, "user "+l.User)
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}

// bytesText is a size in units of 1024: "58.1 MiB".
func bytesText(n int64) string {
	if n < 1024 {
		return strconv.FormatInt(n, 10) + " B"
	}
	size, unit := float64(n)/1024, "KiB"
	for _, bigger := range []string{"MiB", "GiB", "TiB"} {
		if size < 1024 {
			break
		}
		size, unit = size/1024, bigger
	}
	return strconv.FormatFloat(size, 'f', 1, 64) + " " + unit
}

// clockOf is a time of day, to the millisecond: the page's header has
// the date.
func clockOf(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format("15:04:05.000")
}

// argvText is an argv as a shell would take it: each argument as it is,
// or in single quotes when it holds anything but plain characters.
func argvText(args []string) string {
	quoted := make([]string, len(args))
	for i, a := range args {
		plain := a != ""
		for _, r := range a {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./=:,+@%", r)) {
				plain = false
				break
			}
		}
		if plain {
			quoted[i] = a
		} else {
			quoted[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
	}
	return strings.Join(quoted, " ")
}

func stampOf(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format("2006-01-02 15:04:05.000 UTC")
}

package replay

import (
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"

	"github.com/tidwall/gjson"

	"github.com/wflow/wflow/abi"
	"github.com/wflow/wflow/internal/clip"
	"github.com/wflow/wflow/internal/termsafe"
	"github.com/wflow/wflow/journal"
	"github.com/wflow/wflow/step"
)

// Divergence is where a module first asked the host something else than
// the run's module did: Temporal's non-determinism error, for a CLI user.
type Divergence struct {
	Call     int64            `json:"call"`     // the module's call number, from 1
	Function string           `json:"function"` // what it called
	Reason   string           `json:"reason"`
	Step     string           `json:"step,omitempty"`     // the step the call names, now or in the run
	Recorded *journal.Call    `json:"recorded,omitempty"` // the run's call at that point (none past its last)
	Now      *journal.Request `json:"now,omitempty"`      // what the module asks now
	Diff     []FieldDiff      `json:"diff,omitempty"`     // for step specs: the fields that differ
}

// FieldDiff is one field of a step spec that differs: its path (as gjson
// writes it, e.g. commands.0) and its JSON in the run and now ("" when absent).
type FieldDiff struct {
	Path     string `json:"path"`
	Recorded string `json:"recorded"`
	Now      string `json:"now"`
}

// diverge records the first divergence.
func (h *Host) diverge(n int64, fn string, was *journal.Call, now request, format string, args ...any) {
	if h.div != nil {
		return
	}
	d := &Divergence{Call: n, Function: fn, Reason: fmt.Sprintf(format, args...), Recorded: was}
	if now.err != nil || now.req.Spec != nil || now.req.Handles != nil || now.req.Handle != nil || now.req.Level != nil || now.req.JSON != nil {
		req := now.req
		d.Now = &req
	}
	if was != nil {
		d.Step = was.Step
	}
	if d.Now != nil && d.Now.Spec != nil {
		if name := gjson.GetBytes(*d.Now.Spec, "name").String(); name != "" {
			d.Step = name
		}
		if was != nil && was.Req.Spec != nil {
			d.Diff = diffJSON(*was.Req.Spec, *d.Now.Spec)
		}
	}
	h.div = d
}

// Caps on the step specs diffJSON compares: the module's own call (and a
// hostile journal's) must not make a replay spend time or memory without
// bound; a spec over them gets no field diff, only its text.
const (
	maxDiffBytes  = 64 << 10
	maxDiffLeaves = 4096 // values visited in both specs
)

// diffJSON lists the leaves of two JSON documents that differ, by path;
// nil when either is over the caps or not valid JSON.
func diffJSON(a, b []byte) []FieldDiff {
	for _, doc := range [][]byte{a, b} {
		if len(doc) > maxDiffBytes || step.CheckJSON(doc, abi.MaxJSONDepth) != nil {
			return nil
		}
	}
	left, right := map[string]string{}, map[string]string{}
	budget := maxDiffLeaves
	if !flatten("", gjson.ParseBytes(a), left, &budget) || !flatten("", gjson.ParseBytes(b), right, &budget) {
		return nil
	}
	paths := map[string]bool{}
	for p := range left {
		paths[p] = true
	}
	for p := range right {
		paths[p] = true
	}
	var out []FieldDiff
	for p := range paths {
		if left[p] != right[p] {
			out = append(out, FieldDiff{Path: p, Recorded: left[p], Now: right[p]})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out
}

// flatten maps each leaf of v (and each empty object or array) to its
// JSON, visiting at most *budget values; false past it. The depth is
// bounded by the caller's step.CheckJSON.
func flatten(prefix string, v gjson.Result, out map[string]string, budget *int) bool {
	if *budget--; *budget < 0 {
		return false
	}
	if !v.IsObject() && !v.IsArray() {
		out[prefix] = v.Raw
		return true
	}
	i, ok, empty := 0, true, true
	v.ForEach(func(k, item gjson.Result) bool {
		empty = false
		key := k.String()
		if v.IsArray() {
			key = strconv.Itoa(i)
		}
		i++
		p := key
		if prefix != "" {
			p = prefix + "." + key
		}
		ok = flatten(p, item, out, budget)
		return ok
	})
	if empty {
		out[prefix] = v.Raw
	}
	return ok
}

// WriteText writes the divergence for a person: call, function, why, the
// step, the two requests and, for a step spec, the fields that differ.
func (d *Divergence) WriteText(w io.Writer) {
	fmt.Fprintf(w, "the module diverged at call %d (%s): %s\n", d.Call, d.Function, termsafe.Escape(d.Reason))
	if d.Step != "" {
		fmt.Fprintf(w, "  step:     %s\n", termsafe.Escape(d.Step))
	}
	if d.Recorded != nil {
		fmt.Fprintf(w, "  recorded: %s %s\n", termsafe.Escape(d.Recorded.Fn), describe(d.Recorded.Req))
	} else {
		fmt.Fprintf(w, "  recorded: no call (the run's module had ended)\n")
	}
	if d.Now != nil {
		fmt.Fprintf(w, "  now:      %s %s\n", d.Function, describe(*d.Now))
	}
	if len(d.Diff) > 0 {
		fmt.Fprintf(w, "  the step spec differs in:\n")
		for _, f := range d.Diff {
			fmt.Fprintf(w, "    %s: %s -> %s\n", termsafe.Escape(f.Path), show(f.Recorded), show(f.Now))
		}
	}
}

// describe is a request in one line.
func describe(r journal.Request) string {
	var parts []string
	if r.Spec != nil {
		parts = append(parts, clip.String(string(*r.Spec), 200))
	}
	if r.Handles != nil {
		parts = append(parts, fmt.Sprintf("handles %v", r.Handles))
	}
	if r.Handle != nil {
		parts = append(parts, fmt.Sprintf("handle %d", *r.Handle))
	}
	if r.Level != nil {
		parts = append(parts, fmt.Sprintf("level %d", *r.Level))
	}
	if r.Msg != nil {
		parts = append(parts, strconv.Quote(clip.String(string(*r.Msg), 200)))
	}
	if r.JSON != nil {
		parts = append(parts, clip.String(string(*r.JSON), 200))
	}
	return termsafe.Escape(strings.Join(parts, " "))
}

func show(raw string) string {
	if raw == "" {
		return "(absent)"
	}
	return termsafe.Escape(clip.String(raw, 200))
}

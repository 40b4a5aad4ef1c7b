package policies

import (
	"context"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tidwall/gjson"
	"github.com/wflow/wflow/internal/testenv"
	"github.com/wflow/wflow/step"
)

func loadRegoFile(t *testing.T, rego string, cfg WasmConfig, entrypoints ...string) *Rego {
	t.Helper()
	b, err := os.ReadFile(testenv.RegoBundle(t, rego, entrypoints...))
	if err != nil {
		t.Fatal(err)
	}
	cfg.CacheDir = t.TempDir()
	p, err := LoadRegoBundle(context.Background(), rego, b, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close(context.Background()) })
	return p
}

func regoRequest(image string) Request {
	return Request{Kind: KindContainer, Step: step.Step{Name: "s", Image: image, Commands: []step.Command{{Shell: "true"}}}}
}

// TestRegoFailsClosed: a Rego policy that aborts, runs past its time or
// memory, returns garbage or a field wflow does not know, or calls a
// built-in wflow does not provide cannot decide; the reason names the
// cause. The instance is made again after a failure: the next decision
// is right.
func TestRegoFailsClosed(t *testing.T) {
	ctx := context.Background()
	conflict := loadRegoFile(t, "testdata/policies/rego/conflict.rego", WasmConfig{}, "wflow/decision")
	for i, c := range []struct {
		image, verdict, err string
	}{
		{"ok", step.VerdictAllow, ""},
		{"conflict", "", "the policy aborted"},
		{"ok", step.VerdictAllow, ""},
	} {
		v, err := conflict.Decide(ctx, regoRequest(c.image))
		t.Logf("conflict %d: %+v %v", i, v, err)
		if v.Verdict != c.verdict || (c.err == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), c.err)) {
			t.Errorf("conflict, decision %d (%s): %+v, %v; want %q, %q", i, c.image, v, err, c.verdict, c.err)
		}
	}

	for _, c := range []struct {
		rego, entry, want string
		cfg               WasmConfig
	}{
		{"slow.rego", "wflow/deny", "ran past its time limit of 300ms", WasmConfig{Timeout: 300 * time.Millisecond, MemoryLimitMiB: 1024}},
		{"slow.rego", "wflow/deny", "the policy", WasmConfig{Timeout: 30 * time.Second, MemoryLimitMiB: 16}},
		{"garbage.rego", "wflow/decision", "wflow/decision is not an object", WasmConfig{}},
		{"unknown-field.rego", "wflow/decision", `has a field "verdict"`, WasmConfig{}},
		{"unsupported-builtin.rego", "wflow/deny", "the built-in semver.is_valid, which wflow does not provide", WasmConfig{}},
	} {
		p := loadRegoFile(t, "testdata/policies/rego/"+c.rego, c.cfg, c.entry)
		start := time.Now()
		v, err := p.Decide(ctx, regoRequest("wflow-test/busybox"))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s (%+v): %+v, %v; want an error with %q", c.rego, c.cfg, v, err, c.want)
		}
		t.Logf("%s: %v", c.rego, err)
		if d := time.Since(start); d > 20*time.Second {
			t.Errorf("%s took %s", c.rego, d)
		}
	}
}

// TestRegoAllowAndPatch: wflow/allow must be true; a patch amends the step
// (RFC 7386 merge), subject to the step's own checks.
func TestRegoAllowAndPatch(t *testing.T) {
	p := loadRegoFile(t, "testdata/policies/rego/allow-false.rego", WasmConfig{}, "wflow/allow", "wflow/patch")
	v, err := p.Decide(context.Background(), regoRequest("wflow-test/busybox"))
	if err != nil || v.Verdict != step.VerdictDeny || !strings.Contains(v.Reason, "allow is not true") {
		t.Errorf("without a timeout: %+v, %v", v, err)
	}
	req := regoRequest("wflow-test/busybox")
	req.Step.Limits.Timeout = step.Duration(time.Minute)
	v, err = p.Decide(context.Background(), req)
	if err != nil || v.Verdict != step.VerdictAmend || v.Step == nil || v.Step.Limits.User != "1000:1000" || v.Step.Limits.Timeout != step.Duration(time.Minute) {
		t.Errorf("with a timeout: %+v, %v", v, err)
	}
}

// TestRegoLoadRefuses: what is no Rego policy wflow can run is refused at
// load, saying why.
func TestRegoLoadRefuses(t *testing.T) {
	ctx := context.Background()
	for _, c := range []struct {
		name string
		b    []byte
		want string
	}{
		{"not gzip", []byte{0x1f, 0x8b, 0, 0}, "not a bundle"},
		{"a wflow policy", testenv.Wat(t, "testdata/policies/garbage.wat"), "does not import env.memory"},
	} {
		_, err := LoadRegoBundle(ctx, c.name, c.b, WasmConfig{CacheDir: t.TempDir()})
		if c.name == "a wflow policy" {
			_, err = LoadRego(ctx, c.name, c.b, nil, WasmConfig{CacheDir: t.TempDir()})
		}
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", c.name, err, c.want)
		}
	}
}

// TestRegoOpaEval: the evaluation with opa_eval (OPA's Wasm ABI 1.2; wflow
// takes it for a module without the context functions) decides as the
// evaluation by context does, on both example policies and a failing one.
func TestRegoOpaEval(t *testing.T) {
	forceOpaEval = true
	defer func() { forceOpaEval = false }()
	ctx := context.Background()
	allow := loadRegoFile(t, "examples/policies/image-allowlist-rego/policy.rego", WasmConfig{}, "wflow/deny")
	memory := loadRegoFile(t, "examples/policies/require-memory-rego/policy.rego", WasmConfig{}, "wflow/decision")
	conflict := loadRegoFile(t, "testdata/policies/rego/conflict.rego", WasmConfig{}, "wflow/decision")
	if allow.byContext {
		t.Fatal("the policy evaluates by context")
	}
	for i := 0; i < 3; i++ { // again and again: the heap is reset each time
		if v, err := allow.Decide(ctx, regoRequest("wflow-test/busybox")); err != nil || v.Verdict != step.VerdictAllow {
			t.Errorf("allowed image: %+v, %v", v, err)
		}
		if v, err := allow.Decide(ctx, regoRequest("evil/miner")); err != nil || v.Verdict != step.VerdictDeny || !strings.Contains(v.Reason, "image evil/miner is not on the allow-list") {
			t.Errorf("refused image: %+v, %v", v, err)
		}
		if v, err := memory.Decide(ctx, regoRequest("wflow-test/busybox")); err != nil || v.Verdict != step.VerdictAmend || v.Step.Limits.Memory != 256<<20 {
			t.Errorf("no memory: %+v, %v", v, err)
		}
		if _, err := conflict.Decide(ctx, regoRequest("conflict")); err == nil || !strings.Contains(err.Error(), "aborted") {
			t.Errorf("conflict: %v", err)
		}
	}
}

// TestRegoHostile: what a hostile policy author may send (hand-made
// modules, or Rego that aims at the host) fails to load or to decide, with
// a reason; wflow neither panics, nor hangs, nor allocates what the
// policy's cap would not allow, nor reads a verdict two ways.
func TestRegoHostile(t *testing.T) {
	ctx := context.Background()
	cfg := func() WasmConfig { return WasmConfig{CacheDir: t.TempDir(), Timeout: 500 * time.Millisecond} }
	for _, c := range []struct{ wat, load, decide string }{
		{"heapnoresult", "it exports opa_heap_ptr_get with a signature other than OPA's", ""},
		{"evalnoresult", "it exports opa_eval with a signature other than OPA's", ""},
		{"loopentry", "ran past its time limit", ""},
		{"recurse", "", "while wflow was reading another built-in's arguments"},
		{"dupdeny", "", `the policy's wflow/decision: field "deny" given twice`},
		{"dupallow", "", `the policy's wflow/decision: field "allow" given twice`},
		{"ctxoom", "", "the policy aborted: opa_malloc: failed (out of memory"},
		{"evalfails", "", "its eval returned an error"},
	} {
		start := time.Now()
		p, err := LoadRego(ctx, c.wat, testenv.Wat(t, "testdata/policies/rego/hostile/"+c.wat+".wat"), nil, cfg())
		if c.load != "" {
			if err == nil || !strings.Contains(err.Error(), c.load) {
				t.Errorf("%s: loaded: %v; want %q", c.wat, err, c.load)
			}
		} else if err != nil {
			t.Errorf("%s: %v", c.wat, err)
		} else {
			for i := 0; i < 3; i++ {
				v, err := p.Decide(ctx, regoRequest("wflow-test/busybox"))
				if err == nil || !strings.Contains(err.Error(), c.decide) {
					t.Errorf("%s, decision %d: %+v, %v; want %q", c.wat, i, v, err, c.decide)
				}
			}
			if max := 1 + 2*3; p.instances > max { // a retry, at most, each
				t.Errorf("%s: %d instances for 3 decisions, more than %d", c.wat, p.instances, max)
			}
			if c.wat == "ctxoom" && p.instances != 6 { // the first decision on the instance LoadRego made
				t.Errorf("%s: %d instances, want 6: every decision on a heap earlier ones left is tried again, once", c.wat, p.instances)
			}
			p.Close(ctx)
		}
		if d := time.Since(start); d > 10*time.Second {
			t.Errorf("%s took %s", c.wat, d)
		}
	}

	for _, c := range []struct {
		rego, entries, image, size string
		verdict, err               string
	}{
		{"both-allow.rego", "wflow/decision wflow/allow", "", "", step.VerdictDeny, ""},
		{"both-patch.rego", "wflow/decision wflow/patch", "", "", "", "both wflow/patch and wflow/decision.patch"},
		{"size-cap.rego", "wflow/deny", "", "16gib", step.VerdictDeny, ""},
		{"size-cap.rego", "wflow/deny", "", "16eb", step.VerdictDeny, ""},
		{"size-cap.rego", "wflow/deny", "", "99999999999999999999", step.VerdictDeny, ""},
		{"size-cap.rego", "wflow/deny", "", "4gib", step.VerdictAllow, ""},
		{"sprintf-bomb.rego", "wflow/deny", "", "", "", "the built-in sprintf: widths and precisions from the values (*) are not supported"},
	} {
		p := loadRegoFile(t, "testdata/policies/rego/"+c.rego, WasmConfig{}, strings.Fields(c.entries)...)
		req := regoRequest("wflow-test/busybox")
		if c.size != "" {
			req.Step.Env = map[string]string{"SIZE": c.size}
		}
		v, err := p.Decide(ctx, req)
		if v.Verdict != c.verdict || (c.err == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), c.err)) {
			t.Errorf("%s %s: %+v, %v; want %q, %q", c.rego, c.size, v, err, c.verdict, c.err)
		}
	}
}

func TestSprintfCheck(t *testing.T) {
	for _, c := range []struct {
		format string
		ok     bool
	}{
		{"image %s is not allowed", true},
		{"%v and %[1]v, %d%%", true},
		{"%-10s|%08.3f", true},
		{"%*d", false},
		{"%.*f", false},
		{"%5000d", false},
		{strings.Repeat("%4096d", 300), false},
		{strings.Repeat("%d", 100), true},
	} {
		if err := sprintfCheck(c.format, 10); (err == nil) != c.ok {
			t.Errorf("sprintfCheck(%.40q) = %v, want ok %v", c.format, err, c.ok)
		}
	}
}

// TestRegoDenyWinsAndReasons: deny messages win over a false allow; a
// false allow keeps the decision's reason; a policy that may call an
// unprovided built-in says which.
func TestRegoDenyWinsAndReasons(t *testing.T) {
	ctx := context.Background()
	both := loadRegoFile(t, "testdata/policies/rego/both-allow.rego", WasmConfig{}, "wflow/decision", "wflow/allow")
	if v, err := both.Decide(ctx, regoRequest("x")); err != nil || v.Verdict != step.VerdictDeny || v.Reason != "memory required" {
		t.Errorf("allow false with a reason: %+v, %v", v, err)
	}
	unprovided := loadRegoFile(t, "testdata/policies/rego/unsupported-builtin.rego", WasmConfig{}, "wflow/deny")
	if got := unprovided.Unprovided(); len(got) != 1 || got[0] != "semver.is_valid" {
		t.Errorf("Unprovided() = %v", got)
	}
}

// TestIsRego: a policy.wasm from opa build is told from a module of
// wflow's own ABI by its imports, not by the words in its data.
func TestIsRego(t *testing.T) {
	b, err := os.ReadFile(testenv.RegoBundle(t, "examples/policies/image-allowlist-rego/policy.rego", "wflow/deny"))
	if err != nil {
		t.Fatal(err)
	}
	files, err := readBundle(b)
	if err != nil {
		t.Fatal(err)
	}
	if !IsRego(files["policy.wasm"]) {
		t.Error("a policy.wasm from opa build is not taken for Rego")
	}
	own := testenv.Wat(t, "testdata/policies/garbage.wat")
	if IsRego(own) || IsRego(append(own, []byte("opa_abort env memory")...)) {
		t.Error("a module of wflow's ABI is taken for Rego")
	}
}

// heapUsed is how far the policy's heap has grown past its data.
func heapUsed(t *testing.T, p *Rego) uint32 {
	t.Helper()
	ptr, err := p.inst.call1(context.Background(), p.inst.heapPtr)
	if err != nil {
		t.Fatal(err)
	}
	return ptr - p.inst.heap
}

// TestRegoHeapKeptBetweenDecisions: decisions by context share one heap
// (so glob.match's compiled patterns outlive a decision), which goes back
// to just after the data once it has grown by its budget; the memory
// stays within heap and budget, and every decision is still right.
func TestRegoHeapKeptBetweenDecisions(t *testing.T) {
	ctx := context.Background()
	p := loadRegoFile(t, "examples/policies/image-allowlist-rego/policy.rego", WasmConfig{}, "wflow/deny")
	if !p.byContext {
		t.Fatal("a policy from opa build does not evaluate by context")
	}
	resets, last := 0, uint32(0)
	for i := 0; i < 2000 && resets < 2; i++ {
		image, want := "wflow-test/busybox", step.VerdictAllow
		if i%3 == 0 {
			image, want = "evil/miner", step.VerdictDeny
		}
		v, err := p.Decide(ctx, regoRequest(image))
		if err != nil || v.Verdict != want {
			t.Fatalf("decision %d (%s): %+v, %v; want %s", i, image, v, err, want)
		}
		used := heapUsed(t, p)
		if used <= last { // reset: only when the heap had grown by its budget
			if last < p.inst.budget {
				t.Fatalf("decision %d: the heap was reset at %d bytes, under its budget of %d", i, last, p.inst.budget)
			}
			resets++
		}
		last = used
		if size := p.inst.policy.Memory().Size(); size > p.inst.heap+p.inst.budget+1<<20 {
			t.Fatalf("decision %d: the policy's memory is %d bytes, over heap %d + budget %d + 1 MiB", i, size, p.inst.heap, p.inst.budget)
		}
	}
	if resets < 2 || p.instances != 1 {
		t.Errorf("%d heap resets (want 2) and %d instances (want 1)", resets, p.instances)
	}
}

// TestRegoOutOfMemoryOnAWarmHeapIsTriedAgain: a decision that runs out of
// memory on a heap earlier decisions left is evaluated again on a fresh
// instance, so what a step is told does not depend on the steps before
// it; one that runs out of memory on a fresh heap fails.
func TestRegoOutOfMemoryOnAWarmHeapIsTriedAgain(t *testing.T) {
	ctx := context.Background()
	p := loadRegoFile(t, "testdata/policies/rego/hungry.rego", WasmConfig{MemoryLimitMiB: 2}, "wflow/deny")
	decide := func(n int) error {
		req := regoRequest("wflow-test/busybox")
		req.Step.Env = map[string]string{"N": strconv.Itoa(n)}
		v, err := p.Decide(ctx, req)
		if err == nil && v.Verdict != step.VerdictAllow {
			t.Fatalf("N=%d: %+v", n, v)
		}
		return err
	}
	fresh := func() {
		p.inst.close(ctx)
		p.inst = nil
		if _, err := p.instance(ctx); err != nil {
			t.Fatal(err)
		}
	}
	// What a decision of N uses, about a + b·N, on a fresh heap.
	uses := func(n int) float64 {
		fresh()
		if err := decide(n); err != nil {
			t.Fatalf("N=%d: %v", n, err)
		}
		return float64(heapUsed(t, p))
	}
	u1, u2 := uses(200), uses(400)
	b := (u2 - u1) / 200
	room := float64(2<<20 - p.inst.heap)       // the budget is a quarter of it
	big := int((0.85*room - (u1 - 200*b)) / b) // uses about 85 % of the room
	t.Logf("a decision uses %.0f + %.1f·N bytes; room %.0f, budget %d; big N=%d", u1-200*b, b, room, p.inst.budget, big)

	fresh()
	if err := decide(big); err != nil || p.instances != 4 {
		t.Fatalf("big N on a fresh heap: %v, %d instances", err, p.instances)
	}
	fresh() // leave between 15 % and the budget (25 % of the room) of garbage
	for i := 0; float64(heapUsed(t, p)) < 0.18*room; i++ {
		if err := decide(50); err != nil || i > 1000 {
			t.Fatalf("small decision %d: %v; heap %d", i, err, heapUsed(t, p))
		}
	}
	if used := heapUsed(t, p); used >= p.inst.budget {
		t.Fatalf("the small decisions left %d bytes, not under the budget %d", used, p.inst.budget)
	}
	before := p.instances
	if err := decide(big); err != nil {
		t.Errorf("big N on a heap with garbage: %v", err)
	}
	if p.instances != before+1 {
		t.Errorf("%d instances made for the big decision, want 1 (it failed on the warm heap and was tried on a fresh one)", p.instances-before)
	}
	before = p.instances
	if err := decide(2 * big); err == nil || !strings.Contains(err.Error(), "out of memory") {
		t.Errorf("N twice the room: %v; want out of memory", err)
	}
	if p.instances != before { // the heap was reset at its start (the big decision left more than the budget)
		t.Errorf("%d instances made for a decision that ran out of memory on a fresh heap, want 0 (no retry)", p.instances-before)
	}
}

// TestRegoEntrypointsShareAnInputNoneChanges: the entrypoints of one
// decision evaluate on one parsed request; `with input...` in one of them
// leaves it as it was for the next.
func TestRegoEntrypointsShareAnInputNoneChanges(t *testing.T) {
	p := loadRegoFile(t, "testdata/policies/rego/with-input.rego", WasmConfig{}, "wflow/deny", "wflow/allow")
	for i := 0; i < 3; i++ {
		if v, err := p.Decide(context.Background(), regoRequest("wflow-test/busybox")); err != nil || v.Verdict != step.VerdictAllow {
			t.Errorf("decision %d: %+v, %v", i, v, err)
		}
	}
}

// TestRegoPrint: print() in a module built with --wasm-include-print
// prints as OPA does (a line per combination of values, "<undefined>"),
// where the policy's stderr goes, and the rule goes on.
func TestRegoPrint(t *testing.T) {
	var stderr strings.Builder
	p := loadRegoFile(t, "testdata/policies/rego/print.rego", WasmConfig{Stderr: &stderr}, "wflow/deny", "--wasm-include-print")
	if got := p.Unprovided(); len(got) != 0 {
		t.Errorf("Unprovided() = %v", got)
	}
	v, err := p.Decide(context.Background(), regoRequest("bad"))
	if err != nil || v.Verdict != step.VerdictDeny || v.Reason != "bad image" {
		t.Errorf("decision: %+v, %v", v, err)
	}
	want := "[testdata/policies/rego/print.rego] image bad {\"n\":1} <undefined>\n" +
		"[testdata/policies/rego/print.rego] one of a\n[testdata/policies/rego/print.rego] one of b\n"
	if stderr.String() != want {
		t.Errorf("printed:\n%s\nwant:\n%s", stderr.String(), want)
	}

	// Operands of several values (sets), and the cap.
	stderr.Reset()
	p.call = &regoCall{}
	p.print([]gjson.Result{gjson.Parse(`[[1,2],["x"],[]]`)})
	if want := "[testdata/policies/rego/print.rego] 1 x <undefined>\n[testdata/policies/rego/print.rego] 2 x <undefined>\n"; stderr.String() != want {
		t.Errorf("printed:\n%s\nwant:\n%s", stderr.String(), want)
	}
	stderr.Reset()
	many := "[" + strings.Repeat(`"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",`, 999) + `"a"]`
	p.print([]gjson.Result{gjson.Parse("[" + many + "," + many + "]")}) // a million lines
	if n := stderr.Len(); n < stderrCap-200 || n > stderrCap+200 {
		t.Errorf("printed %d bytes, want the cap of %d", n, stderrCap)
	}
	p.call = nil
}

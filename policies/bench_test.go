package policies

import (
	"context"
	"strings"
	"testing"

	"github.com/wflow/wflow/internal/testenv"
)

// BenchmarkDecision measures one decision of a Wasm policy (a fresh
// instance per decision) next to its baseline, a built-in policy.
//
//	go test -run '^$' -bench Decision ./policies
func BenchmarkDecision(b *testing.B) {
	ctx := context.Background()
	req := Request{Kind: "container", Step: testStep}
	run := func(b *testing.B, p Policy) {
		for i := 0; i < b.N; i++ {
			if _, err := p.Decide(ctx, req); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.Run("baseline=builtin-network", func(b *testing.B) { run(b, Network{}) })
	for _, c := range []struct{ name, module string }{
		{"wasm=wat-decide-twice", ""},
		{"wasm=go-require-memory", "./examples/policies/require-memory"},
		{"wasm=c-image-allowlist", "examples/policies/image-allowlist/main.c"},
	} {
		var wasm []byte
		switch {
		case c.module == "":
			wasm = testenv.Wat(b, "testdata/policies/decide_twice.wat")
		case c.module[0] == '.':
			wasm = readFile(b, testenv.GoGuest(b, c.module))
		default:
			wasm = readFile(b, testenv.CGuest(b, c.module))
		}
		p, err := LoadWasm(ctx, "bench.wasm", wasm, WasmConfig{CacheDir: b.TempDir()})
		if err != nil {
			b.Fatal(err)
		}
		b.Run(c.name, func(b *testing.B) { run(b, p) })
		p.Close(ctx)
	}
	allowed := Request{Kind: "container", Step: testStep}
	allowed.Step.Image = "wflow-test/busybox"
	for _, c := range []struct {
		name, rego, entry string
		opaEval           bool
	}{
		{"rego=image-allowlist", "examples/policies/image-allowlist-rego/policy.rego", "wflow/deny", false},
		{"rego=require-memory", "examples/policies/require-memory-rego/policy.rego", "wflow/decision", false},
		// The baseline: each evaluation with opa_eval, which resets the
		// heap and with it the patterns glob.match compiled.
		{"rego-opa_eval=image-allowlist", "examples/policies/image-allowlist-rego/policy.rego", "wflow/deny", true},
		{"rego-opa_eval=require-memory", "examples/policies/require-memory-rego/policy.rego", "wflow/decision", true},
	} {
		bundle := readFile(b, testenv.RegoBundle(b, c.rego, c.entry))
		forceOpaEval = c.opaEval
		p, err := LoadRegoBundle(ctx, "bench.tar.gz", bundle, WasmConfig{CacheDir: b.TempDir()})
		forceOpaEval = false
		if err != nil {
			b.Fatal(err)
		}
		b.Run(c.name, func(b *testing.B) { run(b, p) })
		if strings.HasSuffix(c.name, "=image-allowlist") { // the step above is refused; this one is allowed
			b.Run(c.name+"-allowed", func(b *testing.B) {
				for i := 0; i < b.N; i++ {
					if v, err := p.Decide(ctx, allowed); err != nil || v.Verdict != "allow" {
						b.Fatal(v, err)
					}
				}
			})
		}
		p.Close(ctx)
	}
}

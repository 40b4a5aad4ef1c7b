package policies

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tetratelabs/wazero"

	"github.com/wflow/wflow/abi"
	"github.com/wflow/wflow/internal/testenv"
	"github.com/wflow/wflow/step"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testenv.Cleanup()
	os.Exit(code)
}

func load(t *testing.T, wasm []byte, cfg WasmConfig) *Wasm {
	t.Helper()
	cfg.CacheDir = t.TempDir()
	p, err := LoadWasm(context.Background(), "p.wasm", wasm, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close(context.Background()) })
	return p
}

func goPolicy(t *testing.T, pkg string) []byte {
	b, err := os.ReadFile(testenv.GoGuest(t, pkg))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestBadPoliciesAreRefusals(t *testing.T) {
	cases := []struct {
		fixture string
		reason  string
	}{
		{"trap", "the policy trapped: wasm error: unreachable"},
		{"loop", "ran past its time limit of 300ms"},
		{"memory_hungry", "the policy trapped"},
		{"garbage", "made no decision (its last host call failed: invalid_json"},
		{"bad_verdict", `no verdict allow, deny or amend (got "maybe")`},
		{"amend_invalid", "the amended step is not valid"},
		{"exit_nonzero", "the policy exited with code 3"},
	}
	for _, c := range cases {
		t.Run(c.fixture, func(t *testing.T) {
			p := load(t, testenv.Wat(t, "testdata/policies/"+c.fixture+".wat"), WasmConfig{Timeout: 300 * time.Millisecond, MemoryLimitMiB: 4})
			start := time.Now()
			_, ds, ok := Chain{Policies: []Policy{p}}.Check(context.Background(), 1, Request{Step: testStep})
			if ok || ds[0].Verdict != step.VerdictDeny || !strings.Contains(ds[0].Reason, c.reason) {
				t.Errorf("ok=%v decision %+v, want a refusal saying %q", ok, ds[0], c.reason)
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("took %s", d)
			}
		})
	}
	t.Run("decide_twice", func(t *testing.T) {
		p := load(t, testenv.Wat(t, "testdata/policies/decide_twice.wat"), WasmConfig{})
		if _, ds, ok := (Chain{Policies: []Policy{p}}).Check(context.Background(), 1, Request{Step: testStep}); !ok || ds[0].Verdict != "allow" {
			t.Errorf("ok=%v %+v", ok, ds)
		}
	})
	_, err := LoadWasm(context.Background(), "wrong.wasm", testenv.Wat(t, "testdata/policies/wrong_abi.wat"), WasmConfig{CacheDir: t.TempDir()})
	if err == nil || !strings.Contains(err.Error(), `unknown import module "wflow_v1" (wflow provides "wflow_policy_v1"`) {
		t.Errorf("wrong ABI: %v", err)
	}
}

func TestPolicySandboxSeesNothing(t *testing.T) {
	t.Setenv("SECRET_TOKEN", "hunter2")
	var out bytes.Buffer
	p := load(t, goPolicy(t, "./testdata/guests/snoop-policy"), WasmConfig{Stderr: &out})
	v, err := p.Decide(context.Background(), Request{Step: testStep})
	if err != nil || v.Verdict != step.VerdictDeny {
		t.Fatalf("%+v, %v", v, err)
	}
	var saw struct {
		File    bool     `json:"file"`
		Entries int      `json:"entries"`
		Env     []string `json:"env"`
		Year    int      `json:"year"`
	}
	if err := json.Unmarshal([]byte(v.Reason), &saw); err != nil {
		t.Fatalf("reason %q: %v", v.Reason, err)
	}
	if saw.File || saw.Entries != 0 || len(saw.Env) != 0 || saw.Year == time.Now().Year() {
		t.Errorf("the policy saw %+v: want no file, no folder, no environment and not the real clock", saw)
	}
}

func TestGoPolicyAmendsAndRunsConcurrently(t *testing.T) {
	p := load(t, goPolicy(t, "./examples/policies/require-memory"), WasmConfig{})
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			final, ds, ok := Chain{Policies: []Policy{p}}.Check(context.Background(), 1, Request{Step: testStep})
			if !ok || final.Memory != 256<<20 || ds[0].Verdict != "amend" || ds[0].Changes[0].Field != "memory" {
				t.Errorf("ok=%v final=%+v decisions=%+v", ok, final.Limits, ds)
			}
		}()
	}
	wg.Wait()
	withMemory := testStep
	withMemory.Memory = 64 << 20
	if _, ds, ok := (Chain{Policies: []Policy{p}}).Check(context.Background(), 1, Request{Step: withMemory}); !ok || ds[0].Verdict != "allow" {
		t.Errorf("ok=%v %+v", ok, ds)
	}
}

func readFile(t testing.TB, path string) []byte {
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestPolicyHostExportsTheABI: the policy host module exports exactly
// abi.PolicyFunctions, each with its parameters.
func TestPolicyHostExportsTheABI(t *testing.T) {
	ctx := context.Background()
	r := wazero.NewRuntime(ctx)
	defer r.Close(ctx)
	if err := InstantiatePolicyHost(ctx, r); err != nil {
		t.Fatal(err)
	}
	exports := r.Module(abi.PolicyModuleName).ExportedFunctionDefinitions()
	if len(exports) != len(abi.PolicyFunctions) {
		t.Errorf("the policy host exports %d functions, abi.PolicyFunctions declares %d", len(exports), len(abi.PolicyFunctions))
	}
	for _, sig := range abi.PolicyFunctions {
		def, ok := exports[sig.Name]
		if !ok || strings.Join(def.ParamNames(), ",") != strings.Join(sig.Params, ",") {
			t.Errorf("%s: exported %v, declared %v", sig.Name, ok, sig.Params)
		}
	}
}

package policies

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"
	"github.com/tetratelabs/wazero/sys"
	"github.com/tidwall/gjson"

	"github.com/wflow/wflow/abi"
	"github.com/wflow/wflow/internal/clip"
	"github.com/wflow/wflow/runtime"
	"github.com/wflow/wflow/step"
)

// WasmConfig is the sandbox of Wasm policies. Zero fields mean defaults.
type WasmConfig struct {
	MemoryLimitMiB uint32        // default 64
	Timeout        time.Duration // per decision; default 2s
	CacheDir       string        // wflow's cache folder; default runtime.DefaultCacheDir()
	Stderr         io.Writer     // the policy's stdout and stderr (capped); nil discards
}

// withDefaults fills the zero fields of a sandbox's config.
func (cfg WasmConfig) withDefaults() WasmConfig {
	if cfg.MemoryLimitMiB == 0 {
		cfg.MemoryLimitMiB = 64
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 2 * time.Second
	}
	if cfg.CacheDir == "" {
		cfg.CacheDir = runtime.DefaultCacheDir()
	}
	return cfg
}

// Wasm is a policy that is a Wasm module (a WASI command importing
// abi.PolicyModuleName). Each decision runs the module afresh in its own
// instance, with no files, no environment, no network, a fixed clock and
// fixed randomness, under a memory and a time cap.
type Wasm struct {
	name string
	cfg  WasmConfig
	*runtime.Compiled
}

// stderrCap bounds what a policy may print, per decision.
const stderrCap = 64 << 10

// LoadWasm compiles a policy module and checks its imports. name is how
// decisions name it (usually its file name). Close it when done.
func LoadWasm(ctx context.Context, name string, wasm []byte, cfg WasmConfig) (*Wasm, error) {
	cfg = cfg.withDefaults()
	compiled, err := runtime.CompileFor(ctx, wasm, runtime.PolicyABI, cfg.MemoryLimitMiB, runtime.CompilationCacheDir(cfg.CacheDir))
	if err != nil {
		return nil, fmt.Errorf("policy %s: %w", name, err)
	}
	p := &Wasm{name: name, cfg: cfg, Compiled: compiled}
	if _, err := wasi_snapshot_preview1.Instantiate(ctx, p.Runtime); err == nil {
		err = InstantiatePolicyHost(ctx, p.Runtime)
	}
	if err != nil {
		p.Close(ctx)
		return nil, fmt.Errorf("policy %s: %w", name, err)
	}
	return p, nil
}

// Name implements Policy: "wasm:" and the name given to LoadWasm.
func (p *Wasm) Name() string { return "wasm:" + p.name }

// inputDocument is the JSON a policy decides on, of wflow's ABI or Rego
// (docs/policies.md): the request, with the policy ABI's name.
func inputDocument(req Request) ([]byte, error) {
	return step.MarshalJSON(struct {
		PolicyABI string `json:"policy_abi"`
		Request
	}{abi.PolicyModuleName, req}, false)
}

// Decide implements Policy: it runs the module once with the request as its
// input and reads its decision. A trap, a time-out, a non-zero exit, no
// decision or a malformed one is an error, which the chain turns into a
// refusal.
func (p *Wasm) Decide(ctx context.Context, req Request) (Verdict, error) {
	input, err := inputDocument(req)
	if err != nil {
		return Verdict{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, p.cfg.Timeout)
	defer cancel()
	ctx, call := WithPolicyCall(ctx, input)
	out := &cappedWriter{w: p.cfg.Stderr, left: stderrCap}
	mc := wazero.NewModuleConfig().
		WithName(""). // anonymous: concurrent decisions each get an instance
		WithArgs(filepath.Base(p.name)).
		WithStdout(out).
		WithStderr(out)
	mod, err := p.Runtime.InstantiateModule(ctx, p.Module, mc)
	if mod != nil {
		mod.Close(context.WithoutCancel(ctx))
	}
	if err != nil {
		var exit *sys.ExitError
		switch {
		case errors.As(err, &exit) && exit.ExitCode() == 0:
		case ctx.Err() != nil:
			return Verdict{}, fmt.Errorf("the policy ran past its time limit of %s", p.cfg.Timeout)
		case errors.As(err, &exit):
			return Verdict{}, fmt.Errorf("the policy exited with code %d", exit.ExitCode())
		default:
			return Verdict{}, fmt.Errorf("the policy trapped: %s", runtime.TrapMessage(err))
		}
	}
	decision := call.Decision()
	if decision == nil {
		why := ""
		if e := call.LastError(); e != "" {
			why = " (its last host call failed: " + e + ")"
		}
		return Verdict{}, fmt.Errorf("the policy made no decision%s", why)
	}
	return parseDecision(decision)
}

// parseDecision reads {"verdict", "reason", "step"} (docs/policies.md) as
// strictly as a step spec: valid JSON, nesting capped, no field twice (a
// reader that took the last "verdict" would see another decision) and no
// field the schema does not have.
func parseDecision(b []byte) (Verdict, error) {
	if err := step.CheckJSON(b, abi.MaxJSONDepth); err != nil {
		return Verdict{}, fmt.Errorf("the decision: %v", err)
	}
	var v Verdict
	var verdict, st gjson.Result
	err := step.Fields(gjson.ParseBytes(b), "the decision", func(k string, value gjson.Result) error {
		switch k {
		case "verdict":
			verdict = value
		case "reason":
			if value.Type != gjson.String {
				return fmt.Errorf("the decision's reason must be a string")
			}
			v.Reason = value.String()
		case "step":
			st = value
		default:
			return fmt.Errorf("the decision has a field %q; it has verdict, reason and step", clip.String(k, 64))
		}
		return nil
	})
	if err != nil {
		return Verdict{}, err
	}
	if verdict.Type != gjson.String {
		return Verdict{}, fmt.Errorf("the decision has no verdict string")
	}
	v.Verdict = verdict.String()
	v.Reason = clip.String(v.Reason, 4096)
	if v.Verdict == step.VerdictAmend {
		if !st.IsObject() {
			return Verdict{}, fmt.Errorf("an amend decision needs the amended step")
		}
		s, err := step.ParseStep([]byte(st.Raw))
		if err != nil {
			return Verdict{}, fmt.Errorf("the amended step is not valid: %v", err)
		}
		v.Step = &s
	}
	return v, nil
}

// cappedWriter passes at most left bytes to w, then drops the rest.
type cappedWriter struct {
	w    io.Writer
	left int
}

func (c *cappedWriter) Write(p []byte) (int, error) {
	if c.w != nil && c.left > 0 {
		n := min(len(p), c.left)
		c.w.Write(p[:n])
		c.left -= n
	}
	return len(p), nil
}

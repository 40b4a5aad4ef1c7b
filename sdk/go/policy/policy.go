// Package policy is the Go SDK for wflow policy modules (docs/policies.md).
// A policy is an ordinary main package built with GOOS=wasip1 GOARCH=wasm:
// it reads the request with Input, and answers once with Allow, Deny or
// Amend. wflow runs it afresh for every step, sandboxed: no files, no
// environment, no network, a fixed clock.
//
//	func main() {
//		req, err := policy.Input()
//		if err != nil {
//			return
//		}
//		if req.Step["memory"] == nil {
//			req.Step["memory"] = "256m"
//			policy.Amend(req.Step, "every step needs a memory limit")
//			return
//		}
//		policy.Allow()
//	}
package policy

import (
	"encoding/json"
	"fmt"
	"runtime"
	"unsafe"

	"github.com/wflow/wflow/abi"
)

// Request is what the policy decides on. Step is the step spec as JSON
// values (docs/abi.md), so a policy can amend any field and hand it back.
type Request struct {
	PolicyABI string         `json:"policy_abi"` // "wflow_policy_v1"
	Kind      string         `json:"kind"`       // "container", or "notebook-build" (then Build is set)
	Step      map[string]any `json:"step"`
	Build     *Build         `json:"build,omitempty"`
	Run       Run            `json:"run"`
}

// Build describes a notebook image build: its step stands for it (image =
// the base, one pip command), and only its image may be amended.
type Build struct {
	Base         string   `json:"base"`
	Requirements []string `json:"requirements"`
}

// Run is what the policy may know of the run.
type Run struct {
	RunID   string `json:"run_id"`
	Module  string `json:"module"`
	Network string `json:"network"`
}

// Image returns the step's image.
func (r Request) Image() string { s, _ := r.Step["image"].(string); return s }

// Name returns the step's name.
func (r Request) Name() string { s, _ := r.Step["name"].(string); return s }

// Secrets returns the secrets the step names (its "secrets" field):
// environment variable to secret name. A policy sees names, never values.
func (r Request) Secrets() map[string]string {
	refs := map[string]string{}
	m, _ := r.Step["secrets"].(map[string]any)
	for k, v := range m {
		if name, ok := v.(string); ok {
			refs[k] = name
		}
	}
	return refs
}

// Input reads the request.
func Input() (Request, error) {
	buf := make([]byte, 4096)
	for {
		var n uint32
		errno := abi.Errno(inputGet(unsafe.Pointer(&buf[0]), uint32(len(buf)), unsafe.Pointer(&n)))
		runtime.KeepAlive(buf)
		switch errno {
		case abi.OK:
			var req Request
			return req, json.Unmarshal(buf[:n], &req)
		case abi.ErrBufferTooSmall:
			buf = make([]byte, n+1)
		default:
			return Request{}, fmt.Errorf("policy: input_get: %s", errno)
		}
	}
}

func send(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	errno := abi.Errno(decide(unsafe.Pointer(&b[0]), uint32(len(b))))
	runtime.KeepAlive(b)
	if errno != abi.OK {
		return fmt.Errorf("policy: decide: %s", errno)
	}
	return nil
}

// Allow lets the step run as it is.
func Allow() error { return send(map[string]string{"verdict": "allow"}) }

// Deny refuses the step; the workflow sees the reason.
func Deny(reason string) error {
	return send(map[string]string{"verdict": "deny", "reason": reason})
}

// Amend lets the step run as step (the whole spec, changed); reason says why.
func Amend(step map[string]any, reason string) error {
	return send(map[string]any{"verdict": "amend", "reason": reason, "step": step})
}

package policies

import (
	"context"
	"sync"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"

	"github.com/wflow/wflow/abi"
	"github.com/wflow/wflow/internal/guestmem"
	"github.com/wflow/wflow/step"
)

// The host side of the policy ABI (docs/policies.md): two functions, in the
// host module abi.PolicyModuleName.

// PolicyCall is the state of one run of a policy module: the request it may
// read and the decision it gave. Host functions find it in their context,
// so one compiled policy serves concurrent decisions.
type PolicyCall struct {
	input []byte

	mu       sync.Mutex
	decision []byte // nil until decide succeeds
	lastErr  string
}

type policyCallKey struct{}

// WithPolicyCall returns a context that carries a new call with this input;
// instantiate the policy module under it.
func WithPolicyCall(ctx context.Context, input []byte) (context.Context, *PolicyCall) {
	c := &PolicyCall{input: input}
	return context.WithValue(ctx, policyCallKey{}, c), c
}

// Decision returns the decision JSON the policy gave, or nil.
func (c *PolicyCall) Decision() []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.decision
}

// LastError returns the message of the policy's last failed host call.
func (c *PolicyCall) LastError() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lastErr
}

// InstantiatePolicyHost defines the host module abi.PolicyModuleName in r.
func InstantiatePolicyHost(ctx context.Context, r wazero.Runtime) error {
	b := r.NewHostModuleBuilder(abi.PolicyModuleName)
	for _, f := range []struct {
		name string
		fn   func(c *PolicyCall, mem guestmem.Memory, a []uint32) *guestmem.Error
	}{
		{abi.FuncPolicyInputGet, policyInputGet},
		{abi.FuncPolicyDecide, policyDecide},
	} {
		fn := f.fn
		sig, ok := abi.Lookup(abi.PolicyFunctions, f.name)
		if !ok {
			panic("policies: " + f.name + " is not in abi.PolicyFunctions") // a bug here, not guest input
		}
		guestmem.Export(b, f.name, sig.Params, func(ctx context.Context, mem guestmem.Memory, a []uint32) *guestmem.Error {
			c, _ := ctx.Value(policyCallKey{}).(*PolicyCall)
			if c == nil {
				return guestmem.Fail(abi.ErrInvalidArgument, "no decision is under way")
			}
			return fn(c, mem, a)
		}, func(ctx context.Context, _ api.Module, _ string, err *guestmem.Error) {
			if c, _ := ctx.Value(policyCallKey{}).(*PolicyCall); c != nil {
				c.mu.Lock()
				c.lastErr = err.Error()
				c.mu.Unlock()
			}
		})
	}
	_, err := b.Instantiate(ctx)
	return err
}

// input_get(buf_ptr, buf_cap, len_ptr) -> errno
func policyInputGet(c *PolicyCall, mem guestmem.Memory, a []uint32) *guestmem.Error {
	return mem.Answer(a[0], a[1], a[2], c.input)
}

// decide(json_ptr, json_len) -> errno
func policyDecide(c *PolicyCall, mem guestmem.Memory, a []uint32) *guestmem.Error {
	b, err := mem.Read("decision", a[0], a[1], abi.MaxDecisionLen)
	if err != nil {
		return err
	}
	if err := step.CheckJSON(b, abi.MaxJSONDepth); err != nil {
		return guestmem.Fail(abi.ErrInvalidJSON, "decision: %v", err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.decision != nil {
		return guestmem.Fail(abi.ErrInvalidArgument, "decide was already called: a policy decides once")
	}
	c.decision = b
	return nil
}

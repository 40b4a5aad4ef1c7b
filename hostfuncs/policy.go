package hostfuncs

import (
	"context"
	"sync"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"

	"github.com/wflow/wflow/abi"
	"github.com/wflow/wflow/containers"
)

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
		name   string
		params []string
		fn     func(c *PolicyCall, mem guestMemory, a []uint32) *callError
	}{
		{abi.FuncPolicyInputGet, []string{"buf_ptr", "buf_cap", "len_ptr"}, policyInputGet},
		{abi.FuncPolicyDecide, []string{"json_ptr", "json_len"}, policyDecide},
	} {
		fn := f.fn
		export(b, f.name, f.params, func(ctx context.Context, mem guestMemory, a []uint32) *callError {
			c, _ := ctx.Value(policyCallKey{}).(*PolicyCall)
			if c == nil {
				return fail(abi.ErrInvalidArgument, "no decision is under way")
			}
			return fn(c, mem, a)
		}, func(ctx context.Context, _ api.Module, _ string, err *callError) {
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
func policyInputGet(c *PolicyCall, mem guestMemory, a []uint32) *callError {
	return mem.answer(a[0], a[1], a[2], c.input)
}

// decide(json_ptr, json_len) -> errno
func policyDecide(c *PolicyCall, mem guestMemory, a []uint32) *callError {
	b, err := mem.read("decision", a[0], a[1], abi.MaxDecisionLen)
	if err != nil {
		return err
	}
	if err := containers.CheckJSON(b, abi.MaxJSONDepth); err != nil {
		return fail(abi.ErrInvalidJSON, "decision: %v", err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.decision != nil {
		return fail(abi.ErrInvalidArgument, "decide was already called: a policy decides once")
	}
	c.decision = b
	return nil
}

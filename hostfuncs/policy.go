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
		fn, n := f.fn, len(f.params)
		types := make([]api.ValueType, n)
		for i := range types {
			types[i] = api.ValueTypeI32
		}
		b.NewFunctionBuilder().WithGoModuleFunction(api.GoModuleFunc(func(ctx context.Context, mod api.Module, stack []uint64) {
			c, _ := ctx.Value(policyCallKey{}).(*PolicyCall)
			if c == nil {
				stack[0] = api.EncodeU32(uint32(abi.ErrInvalidArgument))
				return
			}
			var args [4]uint32
			for i := 0; i < n; i++ {
				args[i] = api.DecodeU32(stack[i])
			}
			errno := abi.OK
			if err := fn(c, guestMemory{mem: memoryOf(mod)}, args[:n]); err != nil {
				errno = err.errno
				c.mu.Lock()
				c.lastErr = err.Error()
				c.mu.Unlock()
			}
			stack[0] = api.EncodeU32(uint32(errno))
		}), types, []api.ValueType{api.ValueTypeI32}).WithParameterNames(f.params...).Export(f.name)
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

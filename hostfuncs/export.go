package hostfuncs

import (
	"context"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"

	"github.com/wflow/wflow/abi"
)

// handler is a host function as plain Go: arguments already decoded to u32,
// the module's memory behind checked accessors, a nil error for success.
type handler func(ctx context.Context, mem guestMemory, args []uint32) *callError

// outcome decides what a failed call does beyond returning its errno
// (record its message, end the module); ok calls pass nil.
type outcome func(ctx context.Context, mod api.Module, name string, err *callError)

// export adds one host function of both ABIs to b: every parameter and the
// result are i32. It decodes the arguments, runs fn on the module's checked
// memory, lets failed react to an error, and returns the errno. It is the
// one adapter between wazero and the handlers, so each handler is plain code.
func export(b wazero.HostModuleBuilder, name string, params []string, fn handler, failed outcome) {
	n := len(params)
	types := make([]api.ValueType, n)
	for i := range types {
		types[i] = api.ValueTypeI32
	}
	b.NewFunctionBuilder().
		WithGoModuleFunction(api.GoModuleFunc(func(ctx context.Context, mod api.Module, stack []uint64) {
			var args [4]uint32 // no host function takes more
			for i := 0; i < n; i++ {
				args[i] = api.DecodeU32(stack[i])
			}
			errno := abi.OK
			if err := fn(ctx, guestMemory{mem: memoryOf(mod)}, args[:n]); err != nil {
				failed(ctx, mod, name, err)
				errno = err.errno
			}
			stack[0] = api.EncodeU32(uint32(errno))
		}), types, []api.ValueType{api.ValueTypeI32}).
		WithParameterNames(params...).
		Export(name)
}

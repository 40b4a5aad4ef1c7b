package hostfuncs

import (
	"context"
	"testing"

	"github.com/tetratelabs/wazero/api"

	"github.com/wflow/wflow/internal/testenv"
)

// BenchmarkHostCall measures one guest -> host -> guest round trip of a real
// ABI function (params_get, copying a 2-byte answer through the buffer
// protocol) next to its baseline, a bare wazero host function that does
// nothing. Each iteration is one call made from inside the guest.
//
//	go test -run '^$' -bench HostCall ./hostfuncs
func BenchmarkHostCall(b *testing.B) {
	wasm := testenv.Wat(b, "testdata/bench_calls.wat")
	ctx := context.Background()
	r := hostRuntime(b)
	_, err := r.NewHostModuleBuilder("bench").NewFunctionBuilder().
		WithGoModuleFunction(api.GoModuleFunc(func(ctx context.Context, mod api.Module, stack []uint64) { stack[0] = 0 }),
			[]api.ValueType{api.ValueTypeI32, api.ValueTypeI32, api.ValueTypeI32}, []api.ValueType{api.ValueTypeI32}).
		Export("noop").Instantiate(ctx)
	if err != nil {
		b.Fatal(err)
	}
	mod, err := r.Instantiate(ctx, wasm)
	if err != nil {
		b.Fatal(err)
	}
	for _, loop := range []struct{ name, export string }{
		{"baseline=bare-wazero-call", "noop_loop"},
		{"wflow=params_get", "params_loop"},
	} {
		b.Run(loop.name, func(b *testing.B) {
			fn := mod.ExportedFunction(loop.export)
			b.ResetTimer()
			if _, err := fn.Call(ctx, uint64(b.N)); err != nil {
				b.Fatal(err)
			}
		})
	}
}

package hostfuncs

import (
	"context"
	"testing"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"

	"github.com/wflow/wflow/abi"
	"github.com/wflow/wflow/internal/testenv"
)

// FuzzHostCalls calls every host function with arbitrary arguments and
// arbitrary bytes in guest memory: no call may trap or panic the host, and
// every errno must be one of the ABI's.
//
//	go test -run '^$' -fuzz FuzzHostCalls -fuzztime 2m ./hostfuncs
func FuzzHostCalls(f *testing.F) {
	f.Add(uint8(1), uint32(0), uint32(52), uint32(60000), uint32(0), []byte(validSpec))
	f.Add(uint8(3), uint32(5000), uint32(1), uint32(4996), uint32(0), []byte{1, 0, 0, 0})
	f.Add(uint8(4), uint32(1), uint32(10000), uint32(100), uint32(9996), []byte{})
	f.Add(uint8(0), uint32(0xFFFFFFF0), uint32(0x20), uint32(65533), uint32(0), []byte("{}"))
	f.Add(uint8(5), uint32(2), uint32(0), uint32(12), uint32(0), []byte("hello\xff"))
	f.Add(uint8(6), uint32(0), uint32(13), uint32(0), uint32(0), []byte(`{"answer":42}`))

	wasm := testenv.Wat(f, "testdata/abi_probe.wat")
	ctx := context.Background()
	r := wazero.NewRuntime(ctx)
	defer r.Close(ctx)
	h := New(ctx, Config{Runner: &fakeRunner{}, Parallel: 8})
	defer h.Shutdown()
	if err := h.Instantiate(ctx, r); err != nil {
		f.Fatal(err)
	}
	mod, err := r.Instantiate(ctx, wasm)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, fn uint8, a, b, c, d uint32, data []byte) {
		sig := abi.Functions[int(fn)%len(abi.Functions)]
		mod.Memory().Write(0, data[:min(len(data), 32768)])
		args := []uint64{api.EncodeU32(a), api.EncodeU32(b), api.EncodeU32(c), api.EncodeU32(d)}[:len(sig.Params)]
		if sig.Name == abi.FuncStepRun || sig.Name == abi.FuncStepWait || sig.Name == abi.FuncStepWaitTimeout {
			// They block until a step finishes; the fake runner finishes at
			// once, so they return, but keep their counts (and timeouts) small.
			args[1] = api.EncodeU32(b % 8)
		}
		if sig.Name == abi.FuncStepWaitTimeout {
			args[2] = api.EncodeU32(c % 20)
		}
		res, err := mod.ExportedFunction(sig.Name).Call(ctx, args...)
		if err != nil {
			t.Fatalf("%s%v trapped: %v", sig.Name, args, err)
		}
		if errno := abi.Errno(res[0]); errno.String() == "unknown" {
			t.Fatalf("%s returned errno %d, not an ABI errno", sig.Name, errno)
		}
	})
}

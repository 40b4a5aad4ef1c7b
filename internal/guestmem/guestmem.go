// Package guestmem is what every host function shares, whichever ABI it
// belongs to (the workflow ABI in hostfuncs, the policy ABI in policies):
// the one adapter between wazero and a handler written as plain Go, and the
// module's memory behind checked accessors. Every pointer and length comes
// from the guest and is treated as hostile: nothing is read or written
// outside the memory, and nothing is written unless the whole answer fits.
package guestmem

import (
	"context"
	"fmt"
	"reflect"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"

	"github.com/wflow/wflow/abi"
)

// Error is what a handler returns on failure: the errno the guest gets and
// the message its ABI's error function gives it.
type Error struct {
	Errno abi.Errno
	Msg   string
	Fatal bool // the module is over its budget and is ended
}

func (e *Error) Error() string { return e.Errno.String() + ": " + e.Msg }

// Fail returns an Error with errno and a formatted message.
func Fail(errno abi.Errno, format string, args ...any) *Error {
	return &Error{Errno: errno, Msg: fmt.Sprintf(format, args...)}
}

// OverBudget returns an Error that ends the module: it went past a
// run-wide budget.
func OverBudget(format string, args ...any) *Error {
	return &Error{Errno: abi.ErrLimit, Msg: fmt.Sprintf(format, args...), Fatal: true}
}

// Handler is a host function as plain Go: arguments already decoded to u32,
// the module's memory behind checked accessors, a nil error for success.
type Handler func(ctx context.Context, mem Memory, args []uint32) *Error

// Outcome decides what a failed call does beyond returning its errno
// (record its message, end the module).
type Outcome func(ctx context.Context, mod api.Module, name string, err *Error)

// Export adds one host function to b: every parameter and the result are
// i32. It decodes the arguments, runs fn on the module's checked memory,
// lets failed react to an error, and returns the errno.
func Export(b wazero.HostModuleBuilder, name string, params []string, fn Handler, failed Outcome) {
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
			if err := fn(ctx, Memory{mem: memoryOf(mod)}, args[:n]); err != nil {
				failed(ctx, mod, name, err)
				errno = err.Errno
			}
			stack[0] = api.EncodeU32(uint32(errno))
		}), types, []api.ValueType{api.ValueTypeI32}).
		WithParameterNames(params...).
		Export(name)
}

// memoryOf returns the module's memory, or nil when it has none. wazero
// returns a typed nil for a module without memory, which a plain nil check
// misses.
func memoryOf(mod api.Module) api.Memory {
	m := mod.Memory()
	if m == nil {
		return nil
	}
	if v := reflect.ValueOf(m); v.Kind() == reflect.Pointer && v.IsNil() {
		return nil
	}
	return m
}

// Memory wraps a module's memory with checked accessors.
type Memory struct {
	mem api.Memory // nil when the module exports no memory
}

// NewMemory wraps mem (nil for a module without memory).
func NewMemory(mem api.Memory) Memory { return Memory{mem: mem} }

// Read returns a copy of guest bytes [ptr, ptr+n), refusing n over max
// before looking at the memory.
func (g Memory) Read(what string, ptr, n, max uint32) ([]byte, *Error) {
	if n > max {
		return nil, Fail(abi.ErrTooLarge, "%s is %d bytes, at most %d", what, n, max)
	}
	if g.mem == nil {
		return nil, Fail(abi.ErrFault, "the module exports no memory")
	}
	b, ok := g.mem.Read(ptr, n)
	if !ok {
		return nil, Fail(abi.ErrFault, "%s [%d, %d) lies outside the module's memory of %d bytes", what, ptr, uint64(ptr)+uint64(n), g.mem.Size())
	}
	return append([]byte(nil), b...), nil
}

// CheckWritable reports whether [ptr, ptr+n) lies inside the memory.
func (g Memory) CheckWritable(what string, ptr, n uint32) *Error {
	if g.mem == nil {
		return Fail(abi.ErrFault, "the module exports no memory")
	}
	if uint64(ptr)+uint64(n) > uint64(g.mem.Size()) {
		return Fail(abi.ErrFault, "%s [%d, %d) lies outside the module's memory of %d bytes", what, ptr, uint64(ptr)+uint64(n), g.mem.Size())
	}
	return nil
}

// WriteU32 writes a little-endian u32 at ptr.
func (g Memory) WriteU32(what string, ptr, v uint32) *Error {
	if err := g.CheckWritable(what, ptr, 4); err != nil {
		return err
	}
	g.mem.WriteUint32Le(ptr, v)
	return nil
}

// Answer implements the buffer protocol of docs/abi.md: it writes
// len(data) at lenPtr, then data at bufPtr when bufCap is large enough;
// otherwise it returns ErrBufferTooSmall and writes nothing else.
func (g Memory) Answer(bufPtr, bufCap, lenPtr uint32, data []byte) *Error {
	if err := g.CheckWritable("len_ptr", lenPtr, 4); err != nil {
		return err
	}
	n := uint32(len(data))
	if n > bufCap {
		g.mem.WriteUint32Le(lenPtr, n)
		return Fail(abi.ErrBufferTooSmall, "the answer is %d bytes, the buffer %d", n, bufCap)
	}
	if err := g.CheckWritable("buffer", bufPtr, n); err != nil {
		return err
	}
	g.mem.Write(bufPtr, data)
	g.mem.WriteUint32Le(lenPtr, n)
	return nil
}

package hostfuncs

import (
	"fmt"

	"github.com/tetratelabs/wazero/api"

	"github.com/wflow/wflow/abi"
)

// callError is what a handler returns on failure: the errno the guest gets
// and the message error_get gives it.
type callError struct {
	errno abi.Errno
	msg   string
	fatal bool // the module is over its budget and is ended
}

func (e *callError) Error() string { return e.errno.String() + ": " + e.msg }

func fail(errno abi.Errno, format string, args ...any) *callError {
	return &callError{errno: errno, msg: fmt.Sprintf(format, args...)}
}

// overBudget ends the module: it went past a run-wide budget.
func overBudget(format string, args ...any) *callError {
	return &callError{errno: abi.ErrLimit, msg: fmt.Sprintf(format, args...), fatal: true}
}

// guestMemory wraps a module's memory with checked accessors. Every pointer
// and length comes from the guest and is treated as hostile: nothing is read
// or written outside the memory, and nothing is written unless the whole
// answer fits.
type guestMemory struct {
	mem api.Memory // nil when the module exports no memory
}

// read returns a copy of guest bytes [ptr, ptr+n), refusing n over max
// before looking at the memory.
func (g guestMemory) read(what string, ptr, n, max uint32) ([]byte, *callError) {
	if n > max {
		return nil, fail(abi.ErrTooLarge, "%s is %d bytes, at most %d", what, n, max)
	}
	if g.mem == nil {
		return nil, fail(abi.ErrFault, "the module exports no memory")
	}
	b, ok := g.mem.Read(ptr, n)
	if !ok {
		return nil, fail(abi.ErrFault, "%s [%d, %d) lies outside the module's memory of %d bytes", what, ptr, uint64(ptr)+uint64(n), g.mem.Size())
	}
	return append([]byte(nil), b...), nil
}

// checkWritable reports whether [ptr, ptr+n) lies inside the memory.
func (g guestMemory) checkWritable(what string, ptr, n uint32) *callError {
	if g.mem == nil {
		return fail(abi.ErrFault, "the module exports no memory")
	}
	if uint64(ptr)+uint64(n) > uint64(g.mem.Size()) {
		return fail(abi.ErrFault, "%s [%d, %d) lies outside the module's memory of %d bytes", what, ptr, uint64(ptr)+uint64(n), g.mem.Size())
	}
	return nil
}

// writeU32 writes a little-endian u32 at ptr.
func (g guestMemory) writeU32(what string, ptr, v uint32) *callError {
	if err := g.checkWritable(what, ptr, 4); err != nil {
		return err
	}
	g.mem.WriteUint32Le(ptr, v)
	return nil
}

// answer implements the buffer protocol of docs/abi.md: it writes
// len(data) at lenPtr, then data at bufPtr when bufCap is large enough;
// otherwise it returns ErrBufferTooSmall and writes nothing else.
func (g guestMemory) answer(bufPtr, bufCap, lenPtr uint32, data []byte) *callError {
	if err := g.checkWritable("len_ptr", lenPtr, 4); err != nil {
		return err
	}
	n := uint32(len(data))
	if n > bufCap {
		g.mem.WriteUint32Le(lenPtr, n)
		return fail(abi.ErrBufferTooSmall, "the answer is %d bytes, the buffer %d", n, bufCap)
	}
	if err := g.checkWritable("buffer", bufPtr, n); err != nil {
		return err
	}
	g.mem.Write(bufPtr, data)
	g.mem.WriteUint32Le(lenPtr, n)
	return nil
}

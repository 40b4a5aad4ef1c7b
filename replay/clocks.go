// Package replay records what crosses a workflow module's imports in a
// run, and runs a module again against that record with no engine: `wflow
// replay` (docs/durability.md, Replay). The host functions record their
// calls themselves (hostfuncs, into a journal.Calls); this package records
// the clocks and random bytes WASI hands the module, and is the replaying
// side: a host that answers every wflow_v1 call from the journal and says
// where the module first decided differently.
package replay

import (
	"context"
	"io"

	"github.com/wflow/wflow/journal"
	"github.com/wflow/wflow/runtime"
)

// Recording returns the system's clocks and random source, each value
// they hand out appended to calls.
func Recording(calls *journal.Calls) *runtime.Clocks {
	sys := runtime.SystemClocks()
	return &runtime.Clocks{
		Walltime: func() (int64, int32) {
			sec, nsec := sys.Walltime()
			calls.Wall(sec*1e9 + int64(nsec))
			return sec, nsec
		},
		Nanotime: func() int64 {
			ns := sys.Nanotime()
			calls.Mono(ns)
			return ns
		},
		Random: recordingReader{sys.Random, calls},
		Sleep:  sys.Sleep,
	}
}

type recordingReader struct {
	r     io.Reader
	calls *journal.Calls
}

func (r recordingReader) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	if n > 0 {
		r.calls.Random(p[:n])
	}
	return n, err
}

// Replaying returns clocks that hand out the recorded values: between two
// calls of the module (calls says how many it has made), the values read
// between them in the run, in order. A module that reads the clock more
// often there than the run's did (its runtime has other work) gets the
// last of them again; the ones it did not read are dropped at its next
// call. So a module whose runtime reads the clock at another pace still
// gets, at each call, the time the run's got there. Random bytes are handed
// out in order, then zeros; a sleep returns at once.
func Replaying(rec *journal.Recorded, calls func() int) *runtime.Clocks {
	wall := sequence{values: rec.Walls, at: rec.WallsAt, calls: calls}
	mono := sequence{values: rec.Monos, at: rec.MonosAt, calls: calls}
	return &runtime.Clocks{
		Walltime: func() (int64, int32) {
			ns := wall.next()
			return ns / 1e9, int32(ns % 1e9)
		},
		Nanotime: mono.next,
		Random:   &bytesThenZeros{b: rec.Random},
		Sleep:    func(context.Context, int64) {},
	}
}

// sequence hands out recorded clock values by the calls made before them.
type sequence struct {
	values []int64
	at     []int // calls made before each value
	calls  func() int
	i      int
	last   int64
}

func (s *sequence) next() int64 {
	k := s.calls()
	for s.i < len(s.values) && s.at[s.i] < k { // read in the run before the last call, not now
		s.last = s.values[s.i]
		s.i++
	}
	if s.i < len(s.values) && s.at[s.i] == k {
		s.last = s.values[s.i]
		s.i++
	}
	return s.last
}

// bytesThenZeros reads b, then zeros.
type bytesThenZeros struct{ b []byte }

func (r *bytesThenZeros) Read(p []byte) (int, error) {
	n := copy(p, r.b)
	r.b = r.b[n:]
	clear(p[n:])
	return len(p), nil
}

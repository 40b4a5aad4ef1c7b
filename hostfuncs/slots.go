package hostfuncs

import "sync"

// slots hands out the run's step slots (--parallel) in the order they were
// asked for: steps start in submission order when slots are scarce, so a
// module that submits a, b, c with --parallel 1 sees them run a, b, c.
type slots struct {
	mu    sync.Mutex
	free  int
	queue []*ticket // waiting, oldest first
}

// ticket is one request for a slot; granted is closed once the slot is its
// holder's.
type ticket struct {
	granted chan struct{}
}

func newSlots(n int) *slots { return &slots{free: n} }

// take queues a request for a slot and returns at once; wait on the
// ticket's granted channel. Call it in the order steps must start.
func (s *slots) take() *ticket {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := &ticket{granted: make(chan struct{})}
	if s.free > 0 && len(s.queue) == 0 {
		s.free--
		close(t.granted)
		return t
	}
	s.queue = append(s.queue, t)
	return t
}

// release gives a held slot back: to the oldest waiting ticket, if any.
func (s *slots) release() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.queue) > 0 {
		next := s.queue[0]
		s.queue = s.queue[1:]
		close(next.granted)
		return
	}
	s.free++
}

// withdraw gives up a ticket whose holder will not run: it leaves the
// queue, or, when it was granted already, its slot is released.
func (s *slots) withdraw(t *ticket) {
	s.mu.Lock()
	for i, q := range s.queue {
		if q == t {
			s.queue = append(s.queue[:i], s.queue[i+1:]...)
			s.mu.Unlock()
			return
		}
	}
	s.mu.Unlock()
	s.release()
}

package hostfuncs

import (
	"sync"
	"testing"
	"time"
)

// TestSlotsGrantInOrder: with one slot, tickets taken in order are granted
// in that order, however their holders are scheduled.
func TestSlotsGrantInOrder(t *testing.T) {
	s := newSlots(1)
	const n = 50
	tickets := make([]*ticket, n)
	for i := range tickets {
		tickets[i] = s.take()
	}
	var mu sync.Mutex
	var order []int
	var wg sync.WaitGroup
	for i := n - 1; i >= 0; i-- { // holders start in reverse
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			<-tickets[i].granted
			mu.Lock()
			order = append(order, i)
			mu.Unlock()
			s.release()
		}(i)
	}
	wg.Wait()
	for i, got := range order {
		if got != i {
			t.Fatalf("grant order %v", order)
		}
	}
	if s.free != 1 || len(s.queue) != 0 {
		t.Errorf("after all: free %d, queued %d", s.free, len(s.queue))
	}
}

// TestSlotsWithdraw: a withdrawn ticket leaves the queue, or gives back the
// slot it was granted.
func TestSlotsWithdraw(t *testing.T) {
	s := newSlots(1)
	a, b, c := s.take(), s.take(), s.take()
	s.withdraw(b) // queued: leaves
	s.release()   // a's slot goes to c, not b
	select {
	case <-c.granted:
	case <-time.After(time.Second):
		t.Fatal("c was not granted")
	}
	select {
	case <-b.granted:
		t.Fatal("a withdrawn ticket was granted")
	default:
	}
	s.withdraw(c) // granted: its slot comes back
	if s.free != 1 {
		t.Errorf("free %d, want 1", s.free)
	}
	_ = a
}

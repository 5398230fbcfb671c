package httpapi

import (
	"testing"
	"testing/synctest"
)

// The scrub gate holds a second scrub of a full gate until the first gives its bytes back,
// and lets a waiter go when its request ends. synctest.Wait proves "still waiting" without a
// sleep: it returns once every goroutine of the bubble is blocked.
func TestScrubGateWaitsForBytesAndForgetsCancelledWaiters(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g := newScrubGate(10)
		first, err := g.acquire(nil, 8)
		if err != nil || first != 8 {
			t.Fatalf("first acquire = %d, %v", first, err)
		}

		got := make(chan int64, 1)
		go func() {
			n, err := g.acquire(nil, 5)
			if err != nil {
				t.Errorf("second acquire: %v", err)
			}
			got <- n
		}()
		synctest.Wait()
		select {
		case n := <-got:
			t.Fatalf("second acquire of 5 went through a gate with 2 free (got %d)", n)
		default:
		}

		done := make(chan struct{})
		cancelled := make(chan error, 1)
		go func() {
			_, err := g.acquire(done, 3)
			cancelled <- err
		}()
		synctest.Wait()
		close(done) // the third request ends while it waits
		if err := <-cancelled; err == nil {
			t.Error("a waiter whose request ended was admitted")
		}

		g.release(first)
		if n := <-got; n != 5 {
			t.Errorf("second acquire = %d, want 5", n)
		}

		// A text larger than the gate scrubs alone, holding the whole gate.
		g.release(5)
		if n, err := g.acquire(nil, 1<<40); err != nil || n != 10 {
			t.Errorf("oversized acquire = %d, %v; want the whole gate", n, err)
		}
	})
}

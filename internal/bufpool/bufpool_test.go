package bufpool

import "testing"

func TestGetReturnsEmptyBuffer(t *testing.T) {
	b := Get()
	b.WriteString("left over")
	Put(b)
	for range 10 {
		if b := Get(); b.Len() != 0 {
			t.Fatalf("Get returned %d bytes of an earlier use", b.Len())
		}
	}
}

func TestPutDropsHugeBuffers(t *testing.T) {
	b := Get()
	b.Grow(maxKept + 1)
	Put(b) // must not keep it; nothing to observe but that it does not panic
	if got := Get(); got.Cap() > maxKept && got == b {
		t.Fatal("a buffer over the cap came back from the pool")
	}
}

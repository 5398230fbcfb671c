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

// A pool hands a goroutine back the buffer it just put (the processor's private slot), so
// a huge buffer that Put kept would come straight back here.
func TestPutDropsHugeBuffers(t *testing.T) {
	small := Get()
	Put(small)
	if got := Get(); got != small {
		t.Skip("the pool did not hand back the buffer just put (it may drop any, as under -race)")
	}
	b := Get()
	b.Grow(maxKept + 1)
	Put(b)
	if got := Get(); got == b {
		t.Fatal("a buffer over the cap came back from the pool")
	}
}

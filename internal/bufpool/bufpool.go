// Package bufpool recycles the byte buffers of the intake path (request bodies, encoded
// reports), which would otherwise be most of what a request allocates and so most of what
// the garbage collector has to keep up with.
package bufpool

import (
	"bytes"
	"sync"
)

// maxKept is the largest buffer returned to the pool; a rare huge report's buffer is left to
// the garbage collector instead of pinning its memory in the pool.
const maxKept = 256 << 10

var pool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// Get returns an empty buffer. Give it back with Put when nothing refers to its bytes any
// more.
func Get() *bytes.Buffer {
	b := pool.Get().(*bytes.Buffer)
	b.Reset()
	return b
}

// Put returns b to the pool; b must not be used afterwards.
func Put(b *bytes.Buffer) {
	if b.Cap() <= maxKept {
		pool.Put(b)
	}
}

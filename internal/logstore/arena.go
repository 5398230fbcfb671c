package logstore

import "strings"

// arenaBlock is the size of the blocks an arena cuts strings from.
const arenaBlock = 64 << 10

// arena makes strings of byte slices, cutting them from 64 KiB blocks rather than
// allocating each: a read makes one or two strings per record, and one allocation per
// record was a tenth of a read's CPU. A strings.Builder never changes bytes it has written,
// so a string cut from one stays valid after later writes; a block lives as long as any
// string cut from it, which is why texts larger than a quarter block get their own
// allocation. The zero value is ready to use.
type arena struct{ b strings.Builder }

// string returns p as a string.
func (a *arena) string(p []byte) string {
	if len(p) > arenaBlock/4 {
		return string(p)
	}
	start := a.room(len(p))
	a.b.Write(p)
	return a.b.String()[start:]
}

// cut returns a copy of s that shares no memory with it.
func (a *arena) cut(s string) string {
	if len(s) > arenaBlock/4 {
		return strings.Clone(s)
	}
	start := a.room(len(s))
	a.b.WriteString(s)
	return a.b.String()[start:]
}

// room makes room for n more bytes in the current block and returns where they go.
func (a *arena) room(n int) int {
	if a.b.Cap()-a.b.Len() < n {
		a.b.Reset()
		a.b.Grow(arenaBlock)
	}
	return a.b.Len()
}

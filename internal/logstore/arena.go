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

func (a *arena) string(p []byte) string {
	if len(p) == 0 {
		return ""
	}
	if len(p) > arenaBlock/4 {
		return string(p)
	}
	if a.b.Cap()-a.b.Len() < len(p) {
		a.b.Reset()
		a.b.Grow(arenaBlock)
	}
	start := a.b.Len()
	a.b.Write(p)
	return a.b.String()[start:]
}

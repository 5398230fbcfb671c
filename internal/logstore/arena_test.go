package logstore

import (
	"bytes"
	"strconv"
	"strings"
	"testing"
)

// The strings an arena hands out keep their text through later writes, new blocks and the
// reuse of the caller's buffer, whatever their size.
func TestArenaStringsKeepTheirText(t *testing.T) {
	var a arena
	var buf []byte
	var got, want []string
	for i := range 5000 {
		n := i % 97
		if i%500 == 0 {
			n = arenaBlock/4 + 1 + i // too large for a block: its own allocation
		}
		buf = append(buf[:0], bytes.Repeat([]byte{byte('a' + i%26)}, n)...)
		buf = strconv.AppendInt(buf, int64(i), 10)
		want = append(want, string(buf))
		got = append(got, a.string(buf))
		clear(buf) // the caller reuses its buffer
	}
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("string %d changed: %.20q…, want %.20q…", i, got[i], want[i])
		}
	}
	src := []byte("a value the caller keeps changing")
	kept := a.cut(string(src[:7]))
	for i := range 100 {
		a.cut(strings.Repeat("x", i*100)) // fills blocks and moves on
	}
	clear(src)
	if kept != "a value" {
		t.Fatalf("cut string changed to %q", kept)
	}
	if a.string(nil) != "" {
		t.Fatal("empty input gave a non-empty string")
	}
}

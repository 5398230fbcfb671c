package httpapi

import (
	"bytes"
	"math/rand/v2"
	"os"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/go-json-experiment/json/jsontext"
)

// The NDJSON encoder's fast paths must write exactly what jsontext and time.AppendFormat
// write: the receipt's SHA-256 is of these bytes, and agents parse them.

// quoteCases are lines that exercise every branch of appendJSONString: escapes at word
// boundaries, control bytes, valid and invalid UTF-8, U+2028, HTML characters.
func quoteCases(t testing.TB) []string {
	t.Helper()
	cases := []string{
		"", "a", `"`, `\`, `""""""""`, `\\\\\\\\`, "1234567", "12345678", "123456789",
		`{"time":"2026-12-01T10:00:00Z","msg":"GET /x?a=1&b=<2>","user":"bob@example.com"}`,
		"tab\there", "line\nbreak", "nul\x00byte", "del\x7f", "bell\a", "é café", "\u2028\u2029",
		"bad \xff utf8", "cut \xe2\x82", "\xed\xa0\x80 surrogate", "emoji 🙂 ok", "ends in quote\"",
		"exactly8\"", "1234567\"", "12345678\\", "\x1f\x20\x21\x7e\x7f\x80",
	}
	if b, err := os.ReadFile("../redact/testdata/corpus.txt"); err == nil {
		cases = append(cases, strings.Split(string(b), "\n")...)
	} else {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(7, 9))
	alphabets := []string{
		"abcdefghijklmnopqrstuvwxyz0123456789 :{}[],.=-_/",
		"ab\"\\ \x00\x1f\x7f\x80\xff\t\n",
		"a\"é€🙂\u2028<>&",
	}
	for range 20000 {
		alpha := alphabets[r.IntN(len(alphabets))]
		var sb strings.Builder
		for range r.IntN(80) {
			if r.IntN(3) == 0 {
				sb.WriteByte(alpha[r.IntN(len(alpha))]) // a byte, maybe half of a rune
			} else {
				rs := []rune(alpha)
				sb.WriteRune(rs[r.IntN(len(rs))])
			}
		}
		cases = append(cases, sb.String())
	}
	return cases
}

func TestAppendJSONStringMatchesJSONText(t *testing.T) {
	for _, s := range quoteCases(t) {
		checkQuote(t, s)
	}
}

func checkQuote(t *testing.T, s string) {
	t.Helper()
	want, _ := jsontext.AppendQuote([]byte("prefix"), s)
	got := appendJSONString([]byte("prefix"), s)
	if !bytes.Equal(got, want) {
		t.Fatalf("appendJSONString(%q) = %q, want %q", s, got, want)
	}
}

func FuzzAppendJSONStringMatchesJSONText(f *testing.F) {
	for _, s := range quoteCases(f)[:200] {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		checkQuote(t, s)
		if utf8.ValidString(s) && !jsontext.Value(appendJSONString(nil, s)).IsValid() {
			t.Fatalf("appendJSONString(%q) is not a valid JSON string", s)
		}
	})
}

func TestAppendTimeMatchesAppendFormat(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	zones := []*time.Location{time.UTC, time.FixedZone("x", 5*3600+30*60), time.FixedZone("y", -7*3600)}
	times := []time.Time{
		{}, time.Unix(0, 0), time.Unix(0, 1), time.Unix(1, 999999999), time.Unix(-1, 500),
		time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC), time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(-1, 1, 1, 0, 0, 0, 10, time.UTC), time.Date(0, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Now(), // with a monotonic reading
	}
	base := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	for range 20000 {
		// Runs of times within a second and across seconds, as a log has them.
		d := time.Duration(r.Int64N(int64(3 * time.Second)))
		if r.IntN(4) == 0 {
			d = d.Truncate(time.Duration([]int64{1, 1e3, 1e6, 1e9}[r.IntN(4)]))
		}
		base = base.Add(d)
		times = append(times, base.In(zones[r.IntN(len(zones))]))
	}
	w := &lineWriter{}
	for _, tm := range times {
		checkTime(t, w, tm)
	}
}

func checkTime(t *testing.T, w *lineWriter, tm time.Time) {
	t.Helper()
	want := tm.UTC().AppendFormat([]byte("x"), time.RFC3339Nano)
	if got := w.appendTime([]byte("x"), tm); !bytes.Equal(got, want) {
		t.Fatalf("appendTime(%v) = %q, want %q", tm, got, want)
	}
}

func FuzzAppendTimeMatchesAppendFormat(f *testing.F) {
	f.Add(int64(1796083200), int64(0), int64(1))
	f.Add(int64(-62135596800), int64(999999999), int64(-1))
	f.Fuzz(func(t *testing.T, sec, nsec, step int64) {
		w := &lineWriter{}
		tm := time.Unix(sec, nsec)
		checkTime(t, w, tm)
		checkTime(t, w, tm.Add(time.Duration(step))) // the cached second, or the next
	})
}

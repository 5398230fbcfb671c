package logstore

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// FuzzLineTime checks the hand-written RFC 3339 parser against time.Parse wherever the two
// accept the same spelling, and that no line makes lineTime panic.
func FuzzLineTime(f *testing.F) {
	for _, s := range []string{
		"2026-12-04T15:01:06Z INFO x",
		"2026-12-04T15:01:06.123456789+05:30 y",
		"2026-12-04 15:01:06,5-01:00",
		"2024-02-29T23:59:60Z",
		`{"time":"2026-12-04T15:01:06Z"}`,
		`{"a":{"ts":1796115602000},"timestamp":"x"}`,
		`{"@timestamp" : "2026-12-04T15:01:06.5Z"}`,
		`{"ts":"`,
		"\tat main.go:1",
		"",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		lineTime(b)
		got, n, ok := parseRFC3339(b)
		if !ok {
			return
		}
		if n > len(b) {
			t.Fatalf("length %d past the input (%d)", n, len(b))
		}
		p := string(b[:n])
		if p[10] != 'T' || p[17:19] == "60" || strings.ContainsAny(p, ",z") || fracDigits(p) > 9 {
			return // spellings time.Parse does not take
		}
		want, err := time.Parse(time.RFC3339Nano, p)
		if err != nil {
			t.Fatalf("parseRFC3339(%q) = %v, time.Parse: %v", p, got, err)
		}
		if !got.Equal(want) {
			t.Fatalf("parseRFC3339(%q) = %v, time.Parse = %v", p, got, want)
		}
	})
}

func fracDigits(p string) int {
	if len(p) < 20 || p[19] != '.' {
		return 0
	}
	n := 0
	for _, c := range p[20:] {
		if c < '0' || c > '9' {
			break
		}
		n++
	}
	return n
}

// FuzzReader reads arbitrary files and compares the records with a plain reference: split
// into lines, a line with a time starts a record, the rest continue it, and the file is left
// at the first record past the window.
func FuzzReader(f *testing.F) {
	f.Add([]byte("2026-12-01T10:00:00Z a\n\tat x\n2026-12-01T11:00:00Z b\n"), int64(0), int64(24*3600))
	f.Add([]byte("orphan\n{\"time\":\"2026-12-01T10:00:00Z\"}\r\n\n2026-12-01T09:00:00Z back\n2026-12-01T12:00:00Z"), int64(9*3600), int64(3600))
	f.Add([]byte("2026-12-01T23:59:59.999999999+00:00 late\n2026-12-02T00:00:00Z next day\n"), int64(0), int64(48*3600))
	day := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, data []byte, fromSec, spanSec int64) {
		if fromSec < -86400 || fromSec > 2*86400 || spanSec < 0 || spanSec > 3*86400 {
			return
		}
		from := day.Add(time.Duration(fromSec) * time.Second)
		to := from.Add(time.Duration(spanSec) * time.Second)
		root := t.TempDir()
		writeFile(t, root, "t1/app/2026-12-01.log", string(data))
		got := readAll(t, New(Dir{Root: root}), "t1", "app", from, to)
		if !(File{Day: day}).overlaps(from, to) {
			if len(got) != 0 {
				t.Fatalf("read %d records from a file outside the window", len(got))
			}
			return
		}
		if diff := cmp.Diff(referenceRecords(data, from, to), got); diff != "" {
			t.Fatalf("records (-reference +reader):\n%s", diff)
		}
	})
}

// referenceRecords is the reader's contract written as simply as possible, for inputs
// small enough not to be searched or cut.
func referenceRecords(data []byte, from, to time.Time) []Record {
	var out []Record
	var cur *Record
	flush := func() {
		if cur != nil && !cur.Time.Before(from) && cur.Time.Before(to) {
			out = append(out, *cur)
		}
		cur = nil
	}
	data = bytes.TrimSuffix(data, []byte("\n"))
	for _, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSuffix(line, "\r")
		if tm, ok := lineTime([]byte(line)); ok {
			flush()
			if !tm.Before(to.Add(disorder)) {
				return out
			}
			cur = &Record{Time: tm, Text: line}
			continue
		}
		if cur != nil {
			cur.Text += "\n" + line
		}
	}
	flush()
	return out
}

// FuzzRedactor checks that no input makes the redactor panic or lets the shared secret
// through.
func FuzzRedactor(f *testing.F) {
	for _, s := range []string{
		`{"email":"bob@acme.example","name":"Bob","ip":"10.0.0.1","zip":123}`,
		"user 5b10ac8d82e05b22cc7d4ef5 557058:f58131cb-b67d-43c7-b30d-6b58d40bd077 at 2001:db8::1",
		`{"name":"unterminated`,
		`"name":`,
		"a@b.cc@d.ee 1.2.3.4.5 ::: " + testSharedSecret,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r := newRedactor(t, grantKeyA, false)
		out := r.String(s)
		if strings.Contains(out, testSharedSecret) {
			t.Fatalf("shared secret kept: %q", out)
		}
	})
}

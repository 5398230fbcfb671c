package logstore

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// Run with one core, as a request is served:
//
//	go test -run '^$' -bench . -cpu 1 ./internal/logstore/

// appendSyntheticLine appends one line that looks like what the apps log: text and JSON
// lines with request ids, URLs, durations, and now and then an address, an IP address, an
// account id, a stack trace or a credential.
func appendSyntheticLine(b []byte, r *rand.Rand, t time.Time) []byte {
	hex := func(b []byte, n int) []byte {
		const digits = "0123456789abcdef"
		for range n {
			b = append(b, digits[r.IntN(16)])
		}
		return b
	}
	switch n := r.IntN(100); {
	case n < 35:
		b = t.AppendFormat(b, time.RFC3339Nano)
		b = append(b, " INFO [req="...)
		b = hex(b, 16)
		b = append(b, "] GET https://acme.atlassian.net/rest/api/3/issue/PROJ-"...)
		b = strconv.AppendInt(b, int64(r.IntN(99999)), 10)
		b = append(b, "?expand=names status=200 dur="...)
		b = strconv.AppendInt(b, int64(r.IntN(2000)), 10)
		b = append(b, "ms\n"...)
	case n < 60:
		b = append(b, `{"time":"`...)
		b = t.AppendFormat(b, time.RFC3339Nano)
		b = append(b, `","level":"info","event":"issue_viewed","issueId":"`...)
		b = strconv.AppendInt(b, int64(10000+r.IntN(90000)), 10)
		b = append(b, `","accountId":"5b10ac8d82e05b22cc7d`...)
		b = hex(b, 6)
		b = append(b, `","trace":"`...)
		b = hex(b, 32)
		b = append(b, "\"}\n"...)
	case n < 65:
		b = t.AppendFormat(b, time.RFC3339Nano)
		b = append(b, " INFO user "...)
		b = hex(b, 6)
		b = append(b, "@customer"...)
		b = strconv.AppendInt(b, int64(r.IntN(100)), 10)
		b = append(b, ".example opened the dialog\n"...)
	case n < 70:
		b = t.AppendFormat(b, time.RFC3339Nano)
		b = append(b, " DEBUG connection from 203.0.113."...)
		b = strconv.AppendInt(b, int64(r.IntN(255)), 10)
		b = append(b, ":"...)
		b = strconv.AppendInt(b, int64(1024+r.IntN(60000)), 10)
		b = append(b, " accepted\n"...)
	case n < 72:
		b = t.AppendFormat(b, time.RFC3339Nano)
		b = append(b, " ERROR request failed\njava.lang.IllegalStateException: closed\n\tat com.acme.Handler.run(Handler.java:42)\n\tat java.base/java.lang.Thread.run(Thread.java:1583)\n"...)
	case n < 73:
		b = append(b, `{"time":"`...)
		b = t.AppendFormat(b, time.RFC3339Nano)
		b = append(b, `","msg":"outbound","Authorization":"Bearer `...)
		b = hex(b, 40)
		b = append(b, `","name":"Bob Smith"}`+"\n"...)
	default:
		b = t.AppendFormat(b, time.RFC3339Nano)
		b = append(b, " INFO worker "...)
		b = strconv.AppendInt(b, int64(r.IntN(16)), 10)
		b = append(b, " processed "...)
		b = strconv.AppendInt(b, int64(r.IntN(1000)), 10)
		b = append(b, " items in "...)
		b = strconv.AppendInt(b, int64(r.IntN(5000)), 10)
		b = append(b, "ms queue_depth="...)
		b = strconv.AppendInt(b, int64(r.IntN(100)), 10)
		b = append(b, " build=v1.42.7\n"...)
	}
	return b
}

// writeSyntheticDay writes a day of logs of about size bytes to path, times spread evenly
// over the day.
func writeSyntheticDay(tb testing.TB, path string, day time.Time, size int64) {
	tb.Helper()
	f, err := os.Create(path)
	if err != nil {
		tb.Fatal(err)
	}
	w := bufio.NewWriterSize(f, 1<<20)
	r := rand.New(rand.NewPCG(1, 2))
	// Space the lines so that the day ends near size: measure a sample's mean line length.
	var line []byte
	var sample int64
	for range 10000 {
		line = appendSyntheticLine(line[:0], r, day)
		sample += int64(len(line))
	}
	step := time.Duration(float64(24*time.Hour) * float64(sample) / 10000 / float64(size))
	for t := day; t.Before(day.Add(24 * time.Hour)); t = t.Add(step) {
		line = appendSyntheticLine(line[:0], r, t)
		w.Write(line)
	}
	if err := w.Flush(); err != nil {
		tb.Fatal(err)
	}
	if err := f.Close(); err != nil {
		tb.Fatal(err)
	}
}

// cpuMeter reports a benchmark's throughput per CPU second ("MB/cpu-s") or CPU time per
// operation ("cpu-ms/op") when it stops.
type cpuMeter struct {
	b     *testing.B
	start time.Duration
	ok    bool
}

func meterCPU(b *testing.B) *cpuMeter {
	start, ok := cpuTime()
	return &cpuMeter{b: b, start: start, ok: ok}
}

func (m *cpuMeter) stop(bytesPerOp int64) {
	end, ok := cpuTime()
	if !m.ok || !ok || end <= m.start || m.b.N == 0 {
		return
	}
	cpu := end - m.start
	if bytesPerOp > 0 {
		m.b.ReportMetric(float64(bytesPerOp)*float64(m.b.N)/1e6/cpu.Seconds(), "MB/cpu-s")
	} else {
		m.b.ReportMetric(float64(cpu.Microseconds())/1000/float64(m.b.N), "cpu-ms/op")
	}
}

var benchDay = time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)

// benchStore returns a store with one 32 MiB day and that day's size.
func benchStore(b *testing.B) (*Store, int64) {
	b.Helper()
	root := b.TempDir()
	dir := filepath.Join(root, "t1", "app")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		b.Fatal(err)
	}
	p := filepath.Join(dir, "2026-12-01.log")
	writeSyntheticDay(b, p, benchDay, 32<<20)
	fi, err := os.Stat(p)
	if err != nil {
		b.Fatal(err)
	}
	return New(Dir{Root: root}), fi.Size()
}

// drain reads the whole day, passing each record's text to each, and returns the bytes seen.
func drain(b *testing.B, st *Store, each func(string) string) int {
	ctx := context.Background()
	c, err := st.Open(ctx, "t1", "app", benchDay, benchDay.Add(24*time.Hour))
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	n := 0
	for {
		rec, err := c.Next(ctx)
		if err == io.EOF {
			return n
		}
		if err != nil {
			b.Fatal(err)
		}
		n += len(each(rec.Text))
	}
}

func BenchmarkRead(b *testing.B) {
	st, size := benchStore(b)
	b.SetBytes(size)
	m := meterCPU(b)
	for b.Loop() {
		drain(b, st, func(s string) string { return s })
	}
	m.stop(size)
}

func BenchmarkReadRedactPseudonyms(b *testing.B) {
	st, size := benchStore(b)
	b.SetBytes(size)
	m := meterCPU(b)
	for b.Loop() {
		r := newRedactor(b, grantKeyA, false)
		drain(b, st, r.String)
	}
	m.stop(size)
}

func BenchmarkReadRedactSecretsOnly(b *testing.B) {
	st, size := benchStore(b)
	b.SetBytes(size)
	m := meterCPU(b)
	for b.Loop() {
		r := newRedactor(b, "", true)
		drain(b, st, r.String)
	}
	m.stop(size)
}

// BenchmarkRedactorOnly is the redaction share of BenchmarkReadRedactPseudonyms.
func BenchmarkRedactorOnly(b *testing.B) {
	var lines []string
	var size int64
	r := rand.New(rand.NewPCG(1, 2))
	t := benchDay
	var buf []byte
	for size < 8<<20 {
		buf = appendSyntheticLine(buf[:0], r, t)
		lines = append(lines, string(buf))
		size += int64(len(buf))
		t = t.Add(time.Millisecond)
	}
	for _, personal := range []bool{false, true} {
		b.Run(fmt.Sprintf("personalData=%v", personal), func(b *testing.B) {
			b.SetBytes(size)
			m := meterCPU(b)
			for b.Loop() {
				rd := newRedactor(b, grantKeyA, personal)
				for _, l := range lines {
					rd.String(l)
				}
			}
			m.stop(size)
		})
	}
}

// BenchmarkFirstRecordLateWindow1GiB measures the time to the first record of the last hour
// of a 1 GiB day. The file is made once and kept in the temporary directory, because
// writing it takes longer than the benchmark.
func BenchmarkFirstRecordLateWindow1GiB(b *testing.B) {
	root := filepath.Join(os.TempDir(), "supportbridge-logstore-bench-v2")
	p := filepath.Join(root, "t1", "app", "2026-12-01.log")
	if fi, err := os.Stat(p); err != nil || fi.Size() < 1<<30-1<<20 {
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			b.Fatal(err)
		}
		writeSyntheticDay(b, p+".tmp", benchDay, 1<<30+8<<20)
		if err := os.Rename(p+".tmp", p); err != nil {
			b.Fatal(err)
		}
	}
	st := New(Dir{Root: root})
	ctx := context.Background()
	from := benchDay.Add(23 * time.Hour)
	m := meterCPU(b)
	for b.Loop() {
		c, err := st.Open(ctx, "t1", "app", from, from.Add(time.Hour))
		if err != nil {
			b.Fatal(err)
		}
		rec, err := c.Next(ctx)
		if err != nil || rec.Time.Before(from) || rec.Time.After(from.Add(time.Second)) {
			b.Fatalf("first record %v, %v", rec.Time, err)
		}
		c.Close()
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N), "ms/op")
	m.stop(0)
}

package logstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestStreams(t *testing.T) {
	eachSource(t, func(t *testing.T, s source) {
		for _, key := range []string{"t1/app/2026-12-01.log", "t1/audit/2026-12-01.log", "t1/.hidden/2026-12-01.log", "t2/other/2026-12-01.log", "t1/stray.log"} {
			s.put(t, key, []byte("x\n"))
		}
		ctx := context.Background()
		got, err := s.src.Streams(ctx, "t1")
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]string{"app", "audit"}, got); diff != "" {
			t.Errorf("streams (-want +got):\n%s", diff)
		}
		if got, err := s.src.Streams(ctx, "nobody"); err != nil || len(got) != 0 {
			t.Errorf("unknown tenant: %v %v", got, err)
		}
		for _, bad := range []string{"../t1", "..", "a/b", "", "t1%2F..", "/t1", "t1\x00"} {
			if _, err := s.src.Streams(ctx, bad); !errors.Is(err, ErrBadName) {
				t.Errorf("Streams(%q): err = %v, want ErrBadName", bad, err)
			}
		}
	})
}

// A store folder that is missing holds no logs, as SB_LOG_DIR before the app first writes.
func TestMissingStoreIsEmpty(t *testing.T) {
	d := Dir{Root: filepath.Join(t.TempDir(), "not-yet")}
	if got, err := d.Streams(context.Background(), "t1"); err != nil || len(got) != 0 {
		t.Errorf("Streams = %v, %v; want none", got, err)
	}
	if _, err := New(d).Open(context.Background(), "t1", "app", time.Time{}, time.Now()); !errors.Is(err, ErrNotFound) {
		t.Errorf("Open: err = %v, want ErrNotFound", err)
	}
}

func TestValidName(t *testing.T) {
	for _, tc := range []struct {
		name string
		ok   bool
	}{
		{"app", true},
		{"5f0c7d3e-1b2a-4c5d-9e8f-0a1b2c3d4e5f", true},
		{"app.worker", true},
		{"", false},
		{".", false},
		{"..", false},
		{".hidden", false},
		{"a/b", false},
		{`a\b`, false},
		{"/etc", false},
		{"a%2Fb", false},
		{"a%2fb", false},
		{"%2e%2e", false},
		{"a\x00b", false},
		{"a\nb", false},
		{strings.Repeat("a", maxNameLen), true},
		{strings.Repeat("a", maxNameLen+1), false},
	} {
		if got := validName(tc.name); got != tc.ok {
			t.Errorf("validName(%q) = %v, want %v", tc.name, got, tc.ok)
		}
	}
}

// A day of a stream in the tests: records every ten minutes, some with stack traces.
func dayLog(day string) []byte {
	var b strings.Builder
	for m := 0; m < 24*60; m += 10 {
		fmt.Fprintf(&b, "%sT%02d:%02d:00Z INFO tick %d\n", day, m/60, m%60, m)
		if m%60 == 30 {
			b.WriteString("panic: boom\n\tat main.go:12\n\tat run.go:3\n")
		}
	}
	return []byte(b.String())
}

func TestOpenWindow(t *testing.T) {
	eachSource(t, func(t *testing.T, s source) {
		s.put(t, "t1/app/2026-12-01.log", dayLog("2026-12-01"))
		s.put(t, "t1/app/2026-12-02.log.gz", gz(t, dayLog("2026-12-02")))
		s.put(t, "t1/app/2026-12-03.log", dayLog("2026-12-03"))
		s.put(t, "t1/app/notes.txt", []byte("not a log"))
		st := New(s.src)
		for _, tc := range []struct {
			name     string
			from, to string
			want     []string // first line of each record
		}{
			{"inside one plain day", "2026-12-01T10:05:00Z", "2026-12-01T10:30:00Z", []string{
				"2026-12-01T10:10:00Z INFO tick 610", "2026-12-01T10:20:00Z INFO tick 620"}},
			{"bounds are [from, to)", "2026-12-03T10:10:00Z", "2026-12-03T10:30:00Z", []string{
				"2026-12-03T10:10:00Z INFO tick 610", "2026-12-03T10:20:00Z INFO tick 620"}},
			{"inside the gz day", "2026-12-02T23:45:00Z", "2026-12-03T00:00:00Z", []string{
				"2026-12-02T23:50:00Z INFO tick 1430"}},
			{"across midnight and formats", "2026-12-01T23:50:00Z", "2026-12-02T00:15:00Z", []string{
				"2026-12-01T23:50:00Z INFO tick 1430", "2026-12-02T00:00:00Z INFO tick 0", "2026-12-02T00:10:00Z INFO tick 10"}},
			{"offset times", "2026-12-03T11:05:00+01:00", "2026-12-03T11:15:00+01:00", []string{
				"2026-12-03T10:10:00Z INFO tick 610"}},
			{"before any file", "2026-11-01T00:00:00Z", "2026-11-02T00:00:00Z", nil},
			{"empty window", "2026-12-01T10:00:00Z", "2026-12-01T10:00:00Z", nil},
		} {
			t.Run(tc.name, func(t *testing.T) {
				recs := readAll(t, st, "t1", "app", ts(t, tc.from), ts(t, tc.to))
				var got []string
				for _, r := range recs {
					got = append(got, strings.SplitN(r.Text, "\n", 2)[0])
				}
				if diff := cmp.Diff(tc.want, got); diff != "" {
					t.Errorf("records (-want +got):\n%s", diff)
				}
			})
		}
	})
}

func TestMultiLineRecords(t *testing.T) {
	eachSource(t, func(t *testing.T, s source) {
		log := lines(
			"\tat orphan.go:1 (continues yesterday's record)",
			`{"level":"info","time":"2026-12-01T09:00:00Z","msg":"start"}`,
			"2026-12-01T09:00:01.5+00:00 ERROR request failed",
			"java.lang.IllegalStateException: nope",
			"\tat com.acme.Handler.run(Handler.java:42)",
			"",
			`{"ts":1796115602000,"msg":"epoch millis"}`,
			`{"msg":"no time here","user":"x"}`,
			"2026-12-01 09:00:03Z space separated",
		)
		for _, name := range []string{"2026-12-01.log", "2026-12-01.log.gz"} {
			data := log
			if strings.HasSuffix(name, ".gz") {
				data = gz(t, log)
			}
			stream := strings.ReplaceAll(name, ".", "-")
			s.put(t, "t1/"+stream+"/"+name, data)
			got := readAll(t, New(s.src), "t1", stream, ts(t, "2026-12-01T00:00:00Z"), ts(t, "2026-12-02T00:00:00Z"))
			want := []Record{
				{Time: ts(t, "2026-12-01T09:00:00Z"), Text: `{"level":"info","time":"2026-12-01T09:00:00Z","msg":"start"}`},
				{Time: ts(t, "2026-12-01T09:00:01.5Z"), Text: "2026-12-01T09:00:01.5+00:00 ERROR request failed\njava.lang.IllegalStateException: nope\n\tat com.acme.Handler.run(Handler.java:42)\n"},
				{Time: ts(t, "2026-12-01T09:00:02Z"), Text: `{"ts":1796115602000,"msg":"epoch millis"}` + "\n" + `{"msg":"no time here","user":"x"}`},
				{Time: ts(t, "2026-12-01T09:00:03Z"), Text: "2026-12-01 09:00:03Z space separated"},
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("%s: records (-want +got):\n%s", name, diff)
			}
		}
	})
}

// genLog writes a log of about size bytes whose times grow by random steps (sometimes none,
// sometimes large gaps), with stack traces, and returns it with its records in order.
func genLog(r *rand.Rand, start time.Time, size int) ([]byte, []Record) {
	var b strings.Builder
	var recs []Record
	t := start
	for b.Len() < size && t.Before(start.Add(23*time.Hour)) {
		switch r.IntN(10) {
		case 0:
			t = t.Add(time.Duration(r.IntN(60)) * time.Second)
		case 1, 2:
			// same time as the previous record
		default:
			t = t.Add(time.Duration(r.IntN(2000)) * time.Millisecond)
		}
		var text string
		if r.IntN(2) == 0 {
			text = fmt.Sprintf(`{"time":"%s","level":"info","n":%d,"pad":"%s"}`, t.Format(time.RFC3339Nano), r.IntN(1e6), strings.Repeat("x", r.IntN(200)))
		} else {
			text = fmt.Sprintf("%s WARN n=%d %s", t.Format(time.RFC3339Nano), r.IntN(1e6), strings.Repeat("y", r.IntN(200)))
		}
		for range r.IntN(4) / 3 * r.IntN(5) {
			text += "\n\tat frame " + strings.Repeat("z", r.IntN(100))
		}
		b.WriteString(text + "\n")
		recs = append(recs, Record{Time: t, Text: text})
	}
	return []byte(b.String()), recs
}

// The binary search must find exactly what reading every line finds.
func TestSearchMatchesLinearScan(t *testing.T) {
	eachSource(t, func(t *testing.T, s source) {
		r := rand.New(rand.NewPCG(7, 11))
		day := ts(t, "2026-12-01T00:00:00Z")
		data, all := genLog(r, day, 3<<20)
		// A second file whose records stay in its day, to keep the comparison in one file.
		s.put(t, "t1/app/2026-12-01.log", data)
		st := New(s.src)
		last := all[len(all)-1].Time
		for i := range 25 {
			from := day.Add(time.Duration(r.Int64N(int64(last.Sub(day) + time.Minute))))
			to := from.Add(time.Duration(r.Int64N(int64(3 * time.Hour))))
			if i == 0 {
				from, to = day, last.Add(time.Second) // everything
			}
			var want []Record
			for _, rec := range all {
				if !rec.Time.Before(from) && rec.Time.Before(to) && rec.Time.Before(day.Add(24*time.Hour)) {
					want = append(want, rec)
				}
			}
			got := readAll(t, st, "t1", "app", from, to)
			if diff := cmp.Diff(want, got); diff != "" {
				t.Fatalf("window %s–%s: records (-linear +search):\n%s", from, to, diff)
			}
		}
	})
}

func TestLongLineIsCut(t *testing.T) {
	eachSource(t, func(t *testing.T, s source) {
		secretHalf := "SECRETPART" + strings.Repeat("s", 100)
		long := "2026-12-01T10:00:00Z INFO blob " + strings.Repeat("a", maxLine-40) + " " + secretHalf + strings.Repeat("b", 2<<20)
		log := lines(long, "\tcontinued", "2026-12-01T10:00:01Z INFO after")
		s.put(t, "t1/app/2026-12-01.log", log)
		got := readAll(t, New(s.src), "t1", "app", ts(t, "2026-12-01T00:00:00Z"), ts(t, "2026-12-02T00:00:00Z"))
		if len(got) != 2 {
			t.Fatalf("got %d records, want 2", len(got))
		}
		first, _, _ := strings.Cut(got[0].Text, "\n")
		if !got[0].Cut || !strings.HasSuffix(first, lineCutMarker) || len(first) > maxLine+len(lineCutMarker) {
			t.Errorf("first line: cut=%v len=%d suffix %q", got[0].Cut, len(first), first[max(0, len(first)-40):])
		}
		if strings.Contains(got[0].Text, "SECRETPART") {
			t.Error("the value straddling the cut left its start behind")
		}
		if !strings.HasSuffix(got[0].Text, "\n\tcontinued") {
			t.Errorf("continuation lost after a cut line")
		}
		if got[1].Text != "2026-12-01T10:00:01Z INFO after" || got[1].Cut {
			t.Errorf("record after the cut = %q", got[1].Text)
		}
	})
}

// A record whose continuation lines pass maxRecord is cut too, so that a file without times
// cannot grow one record without bound.
func TestLongRecordIsCut(t *testing.T) {
	root := t.TempDir()
	var b strings.Builder
	b.WriteString("2026-12-01T10:00:00Z start\n")
	for b.Len() < 2*maxRecord {
		b.WriteString("\tat frame.go:1 " + strings.Repeat("f", 100) + "\n")
	}
	b.WriteString("2026-12-01T10:00:01Z next\n")
	writeFile(t, root, "t1/app/2026-12-01.log", b.String())
	got := readAll(t, New(Dir{Root: root}), "t1", "app", ts(t, "2026-12-01T00:00:00Z"), ts(t, "2026-12-02T00:00:00Z"))
	if len(got) != 2 || !got[0].Cut || !strings.HasSuffix(got[0].Text, recordCutMarker) || len(got[0].Text) > maxRecord+len(recordCutMarker) {
		t.Fatalf("got %d records; first cut=%v len=%d", len(got), len(got) > 0 && got[0].Cut, len(got[0].Text))
	}
	if got[1].Text != "2026-12-01T10:00:01Z next" {
		t.Errorf("second record = %q", got[1].Text)
	}
}

// endless is a line of n bytes without a newline, produced on the fly.
type endless struct{ n int64 }

func (e *endless) Read(p []byte) (int, error) {
	if e.n <= 0 {
		return 0, io.EOF
	}
	k := min(int64(len(p)), e.n)
	for i := range p[:k] {
		p[i] = 'q'
	}
	e.n -= k
	return int(k), nil
}

// Reading a 256 MiB line allocates about one maxLine buffer, not the line.
func TestLongLineConstantMemory(t *testing.T) {
	lr := newLineReader(io.MultiReader(strings.NewReader("2026-12-01T10:00:00Z "), &endless{256 << 20}, strings.NewReader("\nnext\n")), readBuf)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	line, cut, err := lr.next()
	if err != nil || !cut || len(line) > maxLine+len(lineCutMarker) {
		t.Fatalf("next: len=%d cut=%v err=%v", len(line), cut, err)
	}
	runtime.ReadMemStats(&after)
	if got := after.TotalAlloc - before.TotalAlloc; got > 2*maxLine {
		t.Errorf("allocated %d bytes for one long line, want at most %d", got, 2*maxLine)
	}
	if line, _, err := lr.next(); err != nil || string(line) != "next" {
		t.Errorf("line after = %q, %v", line, err)
	}
}

func writeFile(t *testing.T, root, rel, data string) {
	t.Helper()
	p := filepath.Join(root, filepath.FromSlash(rel))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestEscapesRefused(t *testing.T) {
	ctx := context.Background()
	day := ts(t, "2026-12-01T00:00:00Z")
	eachSource(t, func(t *testing.T, s source) {
		s.put(t, "t1/app/2026-12-01.log", lines("2026-12-01T10:00:00Z fine"))
		st := New(s.src)
		for _, tc := range []struct{ tenant, stream string }{
			{"..", "app"}, {"t1", ".."}, {"../t1", "app"}, {"t1/../t1", "app"}, {"/etc", "passwd"},
			{"t1", "app/../app"}, {"t1", "%2e%2e"}, {"t1%2Fapp", "x"}, {"t1", "app%2F..%2F..%2Fx"},
			{"t1\x00", "app"}, {"t1", "app\x00.log"}, {`t1\..`, "app"}, {strings.Repeat("t", 300), "app"},
		} {
			if _, err := st.Open(ctx, tc.tenant, tc.stream, day, day.Add(time.Hour)); !errors.Is(err, ErrBadName) {
				t.Errorf("Open(%q, %q): err = %v, want ErrBadName", tc.tenant, tc.stream, err)
			}
			if _, err := s.src.ReadRange(ctx, tc.tenant, tc.stream, "2026-12-01.log", 0, -1); !errors.Is(err, ErrBadName) {
				t.Errorf("ReadRange(%q, %q): err = %v, want ErrBadName", tc.tenant, tc.stream, err)
			}
		}
		for _, name := range []string{"../app/2026-12-01.log", "..", "%2e%2e%2f2026-12-01.log"} {
			if _, err := s.src.ReadRange(ctx, "t1", "app", name, 0, -1); !errors.Is(err, ErrBadName) {
				t.Errorf("ReadRange(file %q): err = %v, want ErrBadName", name, err)
			}
		}
		if _, err := st.Open(ctx, "t1", "nope", day, day.Add(time.Hour)); !errors.Is(err, ErrNotFound) {
			t.Errorf("unknown stream: err = %v, want ErrNotFound", err)
		}
	})
}

func TestSymlinksOutOfRootRefused(t *testing.T) {
	ctx := context.Background()
	outside := t.TempDir()
	writeFile(t, outside, "secret/2026-12-01.log", "2026-12-01T10:00:00Z outside\n")
	root := t.TempDir()
	writeFile(t, root, "t1/app/2026-12-01.log", "2026-12-01T10:00:00Z inside\n")
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.Symlink(filepath.Join(outside), filepath.Join(root, "evil")))
	must(os.Symlink(filepath.Join(outside, "secret"), filepath.Join(root, "t1", "linked")))
	must(os.Symlink(filepath.Join(outside, "secret", "2026-12-01.log"), filepath.Join(root, "t1", "app", "2026-12-02.log")))
	must(os.Symlink("../../../"+filepath.Base(outside)+"/secret/2026-12-01.log", filepath.Join(root, "t1", "app", "2026-12-03.log")))
	d := Dir{Root: root}
	day := ts(t, "2026-12-01T00:00:00Z")
	for _, tc := range []struct{ tenant, stream, file string }{
		{"evil", "secret", "2026-12-01.log"},
		{"t1", "linked", "2026-12-01.log"},
		{"t1", "app", "2026-12-02.log"},
		{"t1", "app", "2026-12-03.log"},
	} {
		rc, err := d.ReadRange(ctx, tc.tenant, tc.stream, tc.file, 0, -1)
		if err == nil {
			rc.Close()
		}
		if !errors.Is(err, ErrBadName) {
			t.Errorf("ReadRange(%s/%s/%s): err = %v, want ErrBadName", tc.tenant, tc.stream, tc.file, err)
		}
		if err != nil && strings.Contains(err.Error(), root) {
			t.Errorf("error text shows the store's path: %v", err)
		}
	}
	if _, err := d.Files(ctx, "t1", "linked"); !errors.Is(err, ErrBadName) {
		t.Errorf("Files(linked): err = %v, want ErrBadName", err)
	}
	// Symlinked day files are not listed, so a window over them reads only real files.
	got := readAll(t, New(d), "t1", "app", day, day.Add(72*time.Hour))
	if len(got) != 1 || got[0].Text != "2026-12-01T10:00:00Z inside" {
		t.Errorf("records = %+v", got)
	}
}

func TestErrorsHidePaths(t *testing.T) {
	root := filepath.Join(t.TempDir(), "private-store-location")
	writeFile(t, root, "t1/app/2026-12-01.log", "x\n")
	if err := os.Chmod(filepath.Join(root, "t1", "app", "2026-12-01.log"), 0); err != nil {
		t.Fatal(err)
	}
	_, err := Dir{Root: root}.ReadRange(context.Background(), "t1", "app", "2026-12-01.log", 0, -1)
	if os.Geteuid() == 0 {
		// root reads anything; make the store's root a file instead.
		file := filepath.Join(root, "t1", "app", "2026-12-01.log")
		_, err = Dir{Root: file}.Files(context.Background(), "t1", "app")
	}
	if err == nil {
		t.Fatal("no error")
	}
	t.Log(err)
	if strings.Contains(err.Error(), "private-store-location") {
		t.Errorf("error text shows the store's path: %v", err)
	}
}

func TestScope(t *testing.T) {
	eachSource(t, func(t *testing.T, s source) {
		s.put(t, "t1/app/2026-12-01.log", []byte("0123456789"))
		s.put(t, "t1/app/2026-12-02.log.gz", []byte("01234"))
		s.put(t, "t1/app/2026-12-04.log", []byte("01"))
		s.put(t, "t1/audit/2026-12-02.log", []byte("012"))
		st := New(s.src)
		for _, tc := range []struct {
			name     string
			streams  []string
			from, to string
			want     Scope
		}{
			{"two days one stream", []string{"app"}, "2026-12-01T12:00:00Z", "2026-12-02T00:00:01Z", Scope{Files: 2, Bytes: 15}},
			{"to at midnight excludes the day", []string{"app"}, "2026-12-01T12:00:00Z", "2026-12-02T00:00:00Z", Scope{Files: 1, Bytes: 10}},
			{"two streams", []string{"app", "audit"}, "2026-12-02T00:00:00Z", "2026-12-05T00:00:00Z", Scope{Files: 3, Bytes: 10}},
			{"unknown stream counts nothing", []string{"later"}, "2026-12-01T00:00:00Z", "2026-12-05T00:00:00Z", Scope{}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				got, err := st.Scope(context.Background(), "t1", tc.streams, ts(t, tc.from), ts(t, tc.to))
				if err != nil {
					t.Fatal(err)
				}
				if diff := cmp.Diff(tc.want, got); diff != "" {
					t.Errorf("scope (-want +got):\n%s", diff)
				}
			})
		}
		if _, err := st.Scope(context.Background(), "t1", []string{"../t2"}, time.Time{}, time.Now()); !errors.Is(err, ErrBadName) {
			t.Errorf("bad stream: err = %v, want ErrBadName", err)
		}
	})
}

func TestParseRFC3339(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want string // "" when not a time
	}{
		{"2026-12-04T15:01:06Z rest", "2026-12-04T15:01:06Z"},
		{"2026-12-04T15:01:06.123456789Z", "2026-12-04T15:01:06.123456789Z"},
		{"2026-12-04T15:01:06.1234567891Z", "2026-12-04T15:01:06.123456789Z"},
		{"2026-12-04 15:01:06,5+02:00", "2026-12-04T13:01:06.5Z"},
		{"2026-12-04t15:01:06-05:30", "2026-12-04T20:31:06Z"},
		{"2024-02-29T00:00:00Z", "2024-02-29T00:00:00Z"},
		{"2026-02-29T00:00:00Z", ""},
		{"2026-12-04T15:01:06", ""},
		{"2026-12-04T15:01:06.Z", ""},
		{"2026-13-04T15:01:06Z", ""},
		{"2026-12-04T24:01:06Z", ""},
		{"2026-12-04T15:01:06+0200", ""},
		{"\tat main.go:12", ""},
	} {
		got, _, ok := parseRFC3339([]byte(tc.in))
		if tc.want == "" {
			if ok {
				t.Errorf("parseRFC3339(%q) = %v, want no time", tc.in, got)
			}
			continue
		}
		if want := ts(t, tc.want); !ok || !got.Equal(want) {
			t.Errorf("parseRFC3339(%q) = %v %v, want %v", tc.in, got, ok, want)
		}
	}
}

// countingSource counts the bytes its readers hand out.
type countingSource struct {
	Source
	n *int64
}

func (c countingSource) ReadRange(ctx context.Context, tenant, stream, name string, off, n int64) (io.ReadCloser, error) {
	rc, err := c.Source.ReadRange(ctx, tenant, stream, name, off, n)
	if err != nil {
		return nil, err
	}
	return countingReader{rc, c.n}, nil
}

type countingReader struct {
	io.ReadCloser
	n *int64
}

func (r countingReader) Read(p []byte) (int, error) {
	n, err := r.ReadCloser.Read(p)
	*r.n += int64(n)
	return n, err
}

// A late window in a big plain file is found by probing, not by reading up to it, and
// reading stops soon after the window's end.
func TestLateWindowReadsLittle(t *testing.T) {
	eachSource(t, func(t *testing.T, s source) {
		r := rand.New(rand.NewPCG(3, 4))
		day := ts(t, "2026-12-01T00:00:00Z")
		data, all := genLog(r, day, 8<<20)
		s.put(t, "t1/app/2026-12-01.log", data)
		var read int64
		st := New(countingSource{s.src, &read})
		var conns0 int64
		if s.conns != nil {
			conns0 = s.conns.Load()
		}
		mid := all[len(all)*9/10].Time
		got := readAll(t, st, "t1", "app", mid, mid.Add(time.Minute))
		if len(got) == 0 {
			t.Fatal("no records")
		}
		t.Logf("read %d of %d bytes", read, len(data))
		if read > int64(len(data)/10) {
			t.Errorf("read %d bytes of a %d-byte file for a one-minute window", read, len(data))
		}
		// Each probe is a ranged GET; they must share a connection rather than open one each.
		if s.conns != nil {
			if n := s.conns.Load() - conns0; n > 2 {
				t.Errorf("the search opened %d connections", n)
			}
		}
	})
}

func TestCursorStopsWhenContextEnds(t *testing.T) {
	root := t.TempDir()
	writeFile(t, root, "t1/app/2026-12-01.log", string(dayLog("2026-12-01")))
	ctx, cancel := context.WithCancel(context.Background())
	c, err := New(Dir{Root: root}).Open(ctx, "t1", "app", ts(t, "2026-12-01T00:00:00Z"), ts(t, "2026-12-02T00:00:00Z"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Next(ctx); err != nil {
		t.Fatal(err)
	}
	cancel()
	if _, err := c.Next(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("Next after cancel: err = %v, want context.Canceled", err)
	}
}

// daysSinceEpoch agrees with the time package on every day of years 0 to 9999.
func TestDaysSinceEpochMatchesTime(t *testing.T) {
	for d := time.Date(0, 1, 1, 0, 0, 0, 0, time.UTC); d.Year() < 10000; d = d.AddDate(0, 0, 1) {
		// d is a midnight, so its Unix time divides exactly.
		if got, want := daysSinceEpoch(d.Year(), int(d.Month()), d.Day()), d.Unix()/86400; got != want {
			t.Fatalf("daysSinceEpoch(%s) = %d, want %d", d.Format(time.DateOnly), got, want)
		}
	}
}

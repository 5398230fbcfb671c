package agentcli

import (
	"bufio"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"net/url"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

func cmdLogs(ctx context.Context, e *env, args []string) error {
	fs, c := e.newFlagSet("logs GRANT [--stream S] [--from T] [--to T] [-o FILE] [--progress]",
		`  supportbridge agent logs gr_0123456789abcdef0123456789abcdef --stream app > app.log
  supportbridge agent logs gr_0123… --stream sync --from 2026-03-01T10:00:00Z -o sync.log

The lines go to stdout or FILE (written as FILE.partial, renamed when the read is complete);
with --json the service's NDJSON records ({"time","stream","line"}) instead of bare lines.
The exit code is 4 when the grant ends before the read is complete, with the reason.
`)
	var (
		stream, from, to, out string
		progress              bool
	)
	fs.StringVar(&stream, "stream", "", "the log stream (required when the grant covers several)")
	fs.StringVar(&from, "from", "", "start of the window to read, RFC 3339 (default: the grant's)")
	fs.StringVar(&to, "to", "", "end of the window to read, RFC 3339 (default: the grant's)")
	fs.StringVar(&out, "o", "", "write the lines to `FILE` (mode 0600) instead of stdout")
	fs.BoolVar(&progress, "progress", false, "show progress on stderr even when it is not a terminal")
	pos, err := e.parse(fs, c, args, 1)
	if err != nil {
		return err
	}
	q := url.Values{}
	for _, p := range []struct{ name, v string }{{"stream", stream}, {"from", from}, {"to", to}} {
		if p.v != "" {
			q.Set(p.name, p.v)
		}
	}
	for _, t := range []struct{ name, v string }{{"--from", from}, {"--to", to}} {
		if t.v == "" {
			continue
		}
		if _, err := time.Parse(time.RFC3339, t.v); err != nil {
			return usagef("%s must be an RFC 3339 time such as 2026-03-01T12:00:00Z", t.name)
		}
	}
	cl, err := e.api()
	if err != nil {
		return err
	}
	resp, err := cl.do(ctx, http.MethodGet, "/api/v1/grants/"+url.PathEscape(pos[0])+"/logs", q, nil,
		http.Header{"Accept": {"application/x-ndjson"}, "Accept-Encoding": {"gzip"}})
	if err != nil {
		var p *Problem
		if errors.As(err, &p) && p.EndReason != "" {
			p.print(e.stderr)
			return &grantEndedError{reason: p.EndReason, before: true}
		}
		return err
	}
	defer resp.Body.Close()
	var body io.Reader = resp.Body
	// Accept-Encoding set by hand turns off net/http's transparent gzip, so decode here.
	if resp.Header.Get("Content-Encoding") == "gzip" {
		gz, err := gzip.NewReader(resp.Body)
		if err != nil {
			return &networkError{err: fmt.Errorf("the log stream is not valid gzip: %w", err)}
		}
		defer gz.Close()
		body = gz
	}

	dst, err := openDest(out, e.stdout)
	if err != nil {
		return err
	}
	var st logStats
	stopProgress := func() {}
	if progress || isTerminal(e.stderr) {
		stopProgress = st.report(e.stderr)
	}
	end, err := copyLines(ctx, body, dst.w, &st, e.json)
	stopProgress() // before any message, so the two do not share a line
	if err == nil && end == "" {
		err = &networkError{err: errors.New("the log stream stopped before its end record")}
	}
	if err != nil {
		kept := dst.abandon()
		if ctx.Err() != nil {
			err = ctx.Err()
		}
		if kept != "" {
			fmt.Fprintf(e.stderr, "supportbridge agent logs: %d lines so far are in %s\n", st.lines.Load(), kept)
		}
		return err
	}
	if end != "complete" {
		return &grantEndedError{reason: end, lines: st.lines.Load(), kept: dst.abandon()}
	}
	if err := dst.commit(); err != nil {
		return err
	}
	// The receipt in the customer's audit chain carries the SHA-256 of the same records,
	// so the agent's copy can be matched to it (see "evidence").
	fmt.Fprintf(e.stderr, "complete: %d lines, %d bytes, sha256 %s\n", st.lines.Load(), st.bytes.Load(), st.sum)
	if out != "" {
		fmt.Fprintf(e.stderr, "written to %s\n", out)
	}
	return nil
}

// logStats are the counters progress shows; atomic because the ticker reads them.
type logStats struct {
	lines, bytes atomic.Int64
	sum          string // hex SHA-256 of the records, once the stream is complete
}

// report prints progress about once a second until stop is called.
func (s *logStats) report(w io.Writer) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	start := time.Now()
	wg.Go(func() {
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				secs := time.Since(start).Seconds()
				b := s.bytes.Load()
				fmt.Fprintf(w, "\r%s, %d lines, %s/s   ", humanBytes(b), s.lines.Load(), humanBytes(int64(float64(b)/secs)))
			}
		}
	})
	return func() {
		close(done)
		wg.Wait()
		if time.Since(start) >= time.Second {
			fmt.Fprintln(w)
		}
	}
}

func humanBytes(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

// isTerminal reports whether w is a terminal, where a progress line that rewrites itself
// is welcome; in a log file it would be noise.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	info, err := f.Stat()
	return err == nil && info.Mode()&os.ModeCharDevice != 0
}

// maxRecord bounds one NDJSON record; the service's lines are far shorter, and a bound
// keeps memory constant against a broken stream.
const maxRecord = 16 << 20

// copyLines writes the line of each record to w (the whole record with raw, for scripts
// that want the time and stream) and returns the end the stream reported. Memory stays
// constant whatever the size: one record at a time.
func copyLines(ctx context.Context, r io.Reader, w *bufio.Writer, st *logStats, raw bool) (string, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	h := sha256.New()
	var (
		buf []byte
		rec struct {
			Line *string `json:"line"`
			End  *string `json:"end"`
		}
	)
	for {
		if err := ctx.Err(); err != nil {
			return "", err
		}
		var err error
		buf, err = readRecord(br, buf[:0])
		if errors.Is(err, io.EOF) && len(buf) == 0 {
			return "", nil
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return "", &networkError{err: err}
		}
		rec.Line, rec.End = nil, nil
		if jerr := json.Unmarshal(buf, &rec); jerr != nil {
			return "", &networkError{err: fmt.Errorf("the log stream has a malformed record: %v", jerr)}
		}
		if rec.End != nil {
			if err := w.Flush(); err != nil {
				return "", fmt.Errorf("write logs: %w", err)
			}
			st.sum = sumHex(h)
			return *rec.End, nil
		}
		if rec.Line == nil {
			continue // a record kind this CLI does not know; later services may add some
		}
		h.Write(buf)
		st.bytes.Add(int64(len(buf)))
		st.lines.Add(1)
		if raw {
			w.Write(buf)
		} else {
			w.WriteString(*rec.Line)
			w.WriteByte('\n')
		}
		// bufio.Writer keeps its first error; asking once per record is enough.
		if _, err := w.Write(nil); err != nil {
			return "", fmt.Errorf("write logs: %w", err)
		}
	}
}

func sumHex(h hash.Hash) string { return hex.EncodeToString(h.Sum(nil)) }

// readRecord appends one newline-terminated record (newline included, as hashed by the
// service) to buf.
func readRecord(br *bufio.Reader, buf []byte) ([]byte, error) {
	for {
		chunk, err := br.ReadSlice('\n')
		buf = append(buf, chunk...)
		if len(buf) > maxRecord {
			return buf, errors.New("a log record is larger than 16 MiB")
		}
		if !errors.Is(err, bufio.ErrBufferFull) {
			return buf, err
		}
	}
}

// dest is where the lines go. A file is written under FILE.partial and renamed only once
// the read is complete, so a file named FILE is always a whole read.
type dest struct {
	w       *bufio.Writer
	f       *os.File
	final   string
	partial string
}

func openDest(path string, stdout io.Writer) (*dest, error) {
	if path == "" {
		return &dest{w: bufio.NewWriterSize(stdout, 64<<10)}, nil
	}
	partial := path + ".partial"
	f, err := os.OpenFile(partial, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open output: %w", errors.Unwrap(err))
	}
	// An older FILE.partial keeps its mode through O_TRUNC; customer logs are private.
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return nil, fmt.Errorf("open output: %w", err)
	}
	return &dest{w: bufio.NewWriterSize(f, 64<<10), f: f, final: path, partial: partial}, nil
}

// commit makes the file whole: flushed, synced, then renamed over FILE.
func (d *dest) commit() error {
	if err := d.w.Flush(); err != nil {
		return fmt.Errorf("write logs: %w", err)
	}
	if d.f == nil {
		return nil
	}
	if err := d.f.Sync(); err != nil {
		d.f.Close()
		return fmt.Errorf("write logs: %w", err)
	}
	if err := d.f.Close(); err != nil {
		return fmt.Errorf("write logs: %w", err)
	}
	if err := os.Rename(d.partial, d.final); err != nil {
		return fmt.Errorf("write logs: %w", err)
	}
	return nil
}

// abandon keeps what was read, under the .partial name, and returns that name ("" for
// stdout). The lines were served and audited, so throwing them away helps no one.
func (d *dest) abandon() string {
	d.w.Flush()
	if d.f == nil {
		return ""
	}
	d.f.Close()
	return d.partial
}

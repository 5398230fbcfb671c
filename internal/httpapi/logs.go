package httpapi

import (
	"bufio"
	"context"
	"encoding/binary"
	"math/bits"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/go-json-experiment/json/jsontext"
	"github.com/klauspost/compress/gzip"

	"github.com/supportbridge/supportbridge/internal/logaccess"
)

// LogReader opens reads of a customer's logs under a grant; *logaccess.Service implements
// it. It is the only way a log byte leaves the service.
type LogReader interface {
	Open(ctx context.Context, req logaccess.Request) (*logaccess.Read, error)
}

// endTrailer carries, for text/plain reads, why the stream ended.
const endTrailer = "X-Supportbridge-End"

// grantLogs streams the log lines of one stream under a grant: NDJSON records
// ({"time","stream","line"}, then {"end": why}) with Accept: application/x-ndjson, otherwise
// text/plain with the end in the X-Supportbridge-End trailer. Memory stays constant whatever
// the size: lines are read, scrubbed, written and flushed as they go.
func (s *Server) grantLogs(c *gin.Context) {
	if s.logReader == nil {
		writeProblem(c, unavailable("Log reading is not configured on this deployment.", 0))
		return
	}
	req := logaccess.Request{GrantID: c.Param("id"), Agent: actorOf(agentOf(c)), Stream: c.Query("stream")}
	var fields []FieldError
	for _, q := range []struct {
		name string
		dst  *time.Time
	}{{"from", &req.From}, {"to", &req.To}} {
		if v := c.Query(q.name); v != "" {
			t, err := time.Parse(time.RFC3339, v)
			if err != nil {
				fields = append(fields, FieldError{Field: "query:" + q.name, Message: "must be an RFC 3339 time such as 2026-03-01T12:00:00Z"})
			}
			*q.dst = t
		}
	}
	if len(fields) > 0 {
		s.fail(c, badRequest("The log window is invalid.", fields...))
		return
	}
	read, err := s.logReader.Open(c.Request.Context(), req)
	if err != nil {
		s.fail(c, err)
		return
	}

	ndjson := acceptsNDJSON(c.GetHeader("Accept"))
	h := c.Writer.Header()
	if ndjson {
		h.Set("Content-Type", "application/x-ndjson")
	} else {
		h.Set("Content-Type", "text/plain; charset=utf-8")
		h.Set("Trailer", endTrailer)
	}
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	from, to := read.Window()
	h.Set("X-Supportbridge-Window", from.UTC().Format(time.RFC3339)+"/"+to.UTC().Format(time.RFC3339))
	w := &lineWriter{ndjson: ndjson, rc: http.NewResponseController(c.Writer)}
	if acceptsGzip(c.GetHeader("Accept-Encoding")) {
		h.Set("Content-Encoding", "gzip")
		h.Add("Vary", "Accept-Encoding")
		w.gz, _ = gzip.NewWriterLevel(c.Writer, logGzipLevel) // a valid level: no error
		w.bw = bufio.NewWriterSize(w.gz, 32<<10)
	} else {
		w.bw = bufio.NewWriterSize(c.Writer, 32<<10)
	}
	c.Status(http.StatusOK)
	// A long read outlives the server's write timeout; each flush moves the deadline on,
	// so only a reader that stops reading is cut off.
	w.extend()
	receipt := read.Stream(c.Request.Context(), w)
	if ndjson {
		b, _ := jsontext.AppendQuote([]byte(`{"end":`), receipt.End)
		w.bw.Write(append(b, "}\n"...))
	}
	w.bw.Flush()
	if w.gz != nil {
		w.gz.Close()
	}
	if !ndjson {
		h.Set(endTrailer, receipt.End)
	}
}

// logGzipLevel compresses a read about as well as compress/gzip's default (10 % larger
// at its BestSpeed) at one and a half times its speed: with the agent CLI asking for gzip,
// compression had become the slowest part of a read (BenchmarkGrantLogs/ndjson_gzip).
const logGzipLevel = 5

func acceptsNDJSON(accept string) bool {
	for _, part := range strings.Split(accept, ",") {
		mt, _, _ := strings.Cut(part, ";")
		if strings.EqualFold(strings.TrimSpace(mt), "application/x-ndjson") {
			return true
		}
	}
	return false
}

func acceptsGzip(ae string) bool {
	for _, part := range strings.Split(ae, ",") {
		enc, params, _ := strings.Cut(part, ";")
		if strings.EqualFold(strings.TrimSpace(enc), "gzip") && strings.ReplaceAll(strings.TrimSpace(params), " ", "") != "q=0" {
			return true
		}
	}
	return false
}

// lineWriter encodes lines for the wire.
type lineWriter struct {
	ndjson bool
	bw     *bufio.Writer
	gz     *gzip.Writer
	rc     *http.ResponseController
	buf    []byte
	// sec is the Unix second whose "2006-01-02T15:04:05" is in secText: neighbouring
	// records nearly always share it, and formatting a date is most of a time's cost.
	sec     int64
	secText []byte
}

// Write encodes one line and returns the bytes written (before compression), which the
// receipt hashes.
func (w *lineWriter) Write(l logaccess.Line) ([]byte, error) {
	b := w.buf[:0]
	if w.ndjson {
		b = append(b, `{"time":"`...)
		b = w.appendTime(b, l.Time)
		b = append(b, `","stream":`...)
		b = appendJSONString(b, l.Stream)
		b = append(b, `,"line":`...)
		b = appendJSONString(b, l.Text)
		b = append(b, "}\n"...)
	} else {
		b = append(b, l.Text...)
		b = append(b, '\n')
	}
	w.buf = b
	_, err := w.bw.Write(b)
	return b, err
}

// Flush sends what is buffered and moves the write deadline on.
func (w *lineWriter) Flush() error {
	if err := w.bw.Flush(); err != nil {
		return err
	}
	if w.gz != nil {
		if err := w.gz.Flush(); err != nil {
			return err
		}
	}
	if err := w.rc.Flush(); err != nil {
		return err
	}
	w.extend()
	return nil
}

// extend gives the agent another minute to take what was sent.
func (w *lineWriter) extend() {
	_ = w.rc.SetWriteDeadline(time.Now().Add(time.Minute)) // not every writer supports it
}

// appendTime appends t as time.RFC3339Nano in UTC, byte for byte as t.UTC().AppendFormat
// does, reusing the date and time of day of the previous call when the second is the same.
func (w *lineWriter) appendTime(b []byte, t time.Time) []byte {
	t = t.UTC()
	if y := t.Year(); y < 0 || y > 9999 {
		return t.AppendFormat(b, time.RFC3339Nano) // beyond four digits; never in a log
	}
	if sec := t.Unix(); sec != w.sec || w.secText == nil {
		w.sec = sec
		w.secText = t.AppendFormat(w.secText[:0], "2006-01-02T15:04:05")
	}
	b = append(b, w.secText...)
	if ns := t.Nanosecond(); ns != 0 {
		// Nine digits, trailing zeros dropped, as the layout's ".999999999" asks.
		var frac [10]byte
		frac[0] = '.'
		for i := 9; i > 0; i-- {
			frac[i] = byte('0' + ns%10)
			ns /= 10
		}
		n := 10
		for frac[n-1] == '0' {
			n--
		}
		b = append(b, frac[:n]...)
	}
	return append(b, 'Z')
}

// appendJSONString appends s as a JSON string, byte for byte as jsontext.AppendQuote does
// (which escapes neither HTML nor U+2028 and U+2029). Log lines are nearly all printable
// ASCII, which is copied eight bytes at a time, escaping only '"' and '\\'; a string with a
// control byte or any non-ASCII byte goes to jsontext whole, which alone decides those
// escapes and replaces invalid UTF-8 with U+FFFD.
//
// JSON log lines have a quote every few bytes, so appending each run between escapes cost
// more than the scan. Instead each word of eight bytes is stored whole and the output
// position moved past only its clean bytes; what follows overwrites the rest.
func appendJSONString(dst []byte, s string) []byte {
	start := len(dst)
	// Room for every byte escaped, the quotes, and a whole word stored past the end.
	out := slices.Grow(dst, 2*len(s)+2+8)
	out = out[:cap(out)]
	n := start
	out[n] = '"'
	n++
	for i := 0; i < len(s); {
		if i+8 <= len(s) {
			x := uint64(s[i]) | uint64(s[i+1])<<8 | uint64(s[i+2])<<16 | uint64(s[i+3])<<24 |
				uint64(s[i+4])<<32 | uint64(s[i+5])<<40 | uint64(s[i+6])<<48 | uint64(s[i+7])<<56
			binary.LittleEndian.PutUint64(out[n:], x)
			m := escapeMask(x)
			if m == 0 {
				i, n = i+8, n+8
				continue
			}
			clean := bits.TrailingZeros64(m) / 8
			i, n = i+clean, n+clean
		}
		switch c := s[i]; {
		case c == '"' || c == '\\':
			out[n], out[n+1] = '\\', c
			n += 2
		case c < 0x20 || c >= 0x80:
			// The error only reports invalid UTF-8, which became U+FFFD.
			dst, _ = jsontext.AppendQuote(dst[:start], s)
			return dst
		default:
			out[n] = c
			n++
		}
		i++
	}
	out[n] = '"'
	return out[:n+1]
}

// escapeMask has the high bit set of each of the eight bytes in x that is below 0x20, at
// or above 0x80, '"' or '\\' (and possibly of bytes above such a byte, never below one, so
// the lowest bit set is exact): (v - 0x01…) &^ v flags v's zero bytes, (x - 0x20…) &^ x
// those below 0x20.
func escapeMask(x uint64) uint64 {
	const ones, high = 0x0101010101010101, 0x8080808080808080
	q := x ^ ('"' * ones)
	bs := x ^ ('\\' * ones)
	return ((x-0x20*ones)&^x | (q-ones)&^q | (bs-ones)&^bs | x) & high
}

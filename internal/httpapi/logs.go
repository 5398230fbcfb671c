package httpapi

import (
	"bufio"
	"compress/gzip"
	"context"
	"net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/go-json-experiment/json/jsontext"

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
		w.gz = gzip.NewWriter(c.Writer)
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
}

// Write encodes one line and returns the bytes written (before compression), which the
// receipt hashes.
func (w *lineWriter) Write(l logaccess.Line) ([]byte, error) {
	b := w.buf[:0]
	if w.ndjson {
		b = append(b, `{"time":"`...)
		b = l.Time.UTC().AppendFormat(b, time.RFC3339Nano)
		b = append(b, `","stream":`...)
		b, _ = jsontext.AppendQuote(b, l.Stream)
		b = append(b, `,"line":`...)
		// Invalid UTF-8 becomes U+FFFD; the error only reports that it happened.
		b, _ = jsontext.AppendQuote(b, l.Text)
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

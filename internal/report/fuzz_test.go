package report

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/gabriel-vasile/mimetype"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// The committed corpora under testdata/fuzz hold more seeds than these: every rule, the
// syntax errors, and multipart framing oddities.

// checkTypedError fails unless err is one of the errors the HTTP layer maps to a status.
func checkTypedError(t *testing.T, err error) {
	t.Helper()
	var (
		ve *ValidationError
		se *SyntaxError
		ue *UnsupportedAttachmentError
	)
	switch {
	case errors.As(err, &ve):
		if len(ve.Fields) == 0 || len(ve.Fields) > maxFieldErrors {
			t.Fatalf("validation error with %d problems", len(ve.Fields))
		}
		for _, f := range ve.Fields {
			if f.Message == "" || (f.Path != "" && !strings.HasPrefix(f.Path, "/")) {
				t.Fatalf("malformed problem %+v", f)
			}
		}
	case errors.As(err, &se):
		if se.Offset < 0 || se.Msg == "" {
			t.Fatalf("malformed syntax error %+v", se)
		}
	case errors.As(err, &ue):
	case errors.Is(err, ErrTooLarge):
	default:
		t.Fatalf("untyped error %T: %v", err, err)
	}
}

// checkBuilds runs a parsed report through everything downstream of parsing.
func checkBuilds(t *testing.T, in Input, atts []Attachment) {
	t.Helper()
	c := testContext()
	r, out, err := Build(in, atts, c)
	if err != nil {
		t.Fatalf("Build of a parsed report: %v", err)
	}
	if len(out) != len(atts) {
		t.Fatalf("Build returned %d attachments for %d", len(out), len(atts))
	}
	desc := RenderDescription(r)
	if jiraLen(desc) > MaxJiraText || !strings.HasSuffix(desc, "\n"+MarkerPrefix+c.Marker) {
		t.Fatalf("description of %d characters without the marker at the end", jiraLen(desc))
	}
	if jiraLen(RenderInternalComment(r, testTenant(), "")) > MaxJiraText {
		t.Fatal("internal comment too long")
	}
	js, err := NewBundle(r, testTenant(), "").JSON()
	if err != nil || strings.Contains(string(js), canary) {
		t.Fatalf("bundle: %v, or contains the secret", err)
	}
}

func FuzzParseJSON(f *testing.F) {
	f.Add([]byte(`{"summary":"Export fails","operation":{"requestIds":["a"],"httpStatus":500}}`))
	f.Add([]byte(`{"summary":1,"x":{"y":[1,{"z":null}]},"operation":[]}`))
	f.Add([]byte(`{"summary":"x",}`))
	for _, tc := range fastPathCases {
		f.Add([]byte(tc))
	}
	p := NewParser(ParserLimits{})
	f.Fuzz(func(t *testing.T, body []byte) {
		in, err := p.ParseJSON(body)
		if int64(len(body)) <= p.Limits().MaxReportBytes {
			checkFastAgrees(t, p, body, in, err)
		}
		if err != nil {
			checkTypedError(t, err)
			return
		}
		// What was accepted is accepted again unchanged when sent back.
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(in); err != nil {
			t.Fatal(err)
		}
		if int64(buf.Len()) <= p.Limits().MaxReportBytes {
			again, err := p.ParseJSON(buf.Bytes())
			if err != nil {
				t.Fatalf("re-parse of %s: %v", buf.Bytes(), err)
			}
			// An empty array sent comes back absent (omitempty): nil and empty are alike here.
			if diff := cmp.Diff(in, again, cmpopts.EquateEmpty()); diff != "" {
				t.Fatalf("round trip (-first +second):\n%s", diff)
			}
		}
		checkBuilds(t, in, nil)
	})
}

func FuzzParseMultipart(f *testing.F) {
	f.Add([]byte("--b\r\nContent-Disposition: form-data; name=\"report\"\r\n\r\n{\"summary\":\"s\"}\r\n"+
		"--b\r\nContent-Disposition: form-data; name=\"attachment\"; filename=\"a.txt\"\r\n\r\nhello\r\n--b--\r\n"), "b")
	f.Add([]byte("--b\r\nContent-Disposition: form-data; name=\"attachment\"\r\n\r\n\x89PNG\r\n\x1a\n\r\n--b--"), "b")
	f.Add([]byte("preamble\r\n--b--\r\n"), "b")
	// Small limits, so that the fuzzer reaches them.
	p := NewParser(ParserLimits{MaxReportBytes: 4096, MaxAttachments: 2, MaxAttachmentBytes: 8192})
	f.Fuzz(func(t *testing.T, body []byte, boundary string) {
		in, atts, err := p.ParseMultipart(bytes.NewReader(body), boundary)
		if err != nil {
			checkTypedError(t, err)
			return
		}
		if len(atts) > 2 {
			t.Fatalf("%d attachments, limit 2", len(atts))
		}
		var total int64
		for _, a := range atts {
			total += a.Size
			if a.Size != int64(len(a.Content)) || a.Size == 0 {
				t.Fatalf("size %d for %d bytes", a.Size, len(a.Content))
			}
			if _, _, ok := acceptedType(mimetype.Detect(a.Content)); !ok || !isAllowedMediaType(a.MediaType) {
				t.Fatalf("accepted type %q", a.MediaType)
			}
			n := a.Filename
			if n == "" || len(n) > maxFilenameBytes || !utf8.ValidString(n) || strings.ContainsAny(n, "/\\\x00\r\n") || strings.HasPrefix(n, ".") {
				t.Fatalf("unsafe file name %q", n)
			}
		}
		if total > 8192 {
			t.Fatalf("%d attachment bytes, limit 8192", total)
		}
		checkBuilds(t, in, atts)
	})
}

func isAllowedMediaType(t string) bool {
	switch t {
	case "image/png", "image/jpeg", "image/gif", "image/webp", "application/pdf", "text/plain", "application/json":
		return true
	}
	return false
}

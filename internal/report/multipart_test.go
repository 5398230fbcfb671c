package report

import (
	"archive/zip"
	"bytes"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"mime/multipart"
	"net/textproto"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

type testPart struct {
	name, filename, contentType string
	body                        []byte
}

func reportPart(js string) testPart {
	return testPart{name: "report", contentType: "application/json", body: []byte(js)}
}

func filePart(filename, contentType string, body []byte) testPart {
	return testPart{name: "attachment", filename: filename, contentType: contentType, body: body}
}

// multipartBody encodes parts the way a browser's FormData does.
func multipartBody(t *testing.T, parts ...testPart) (*bytes.Buffer, string) {
	t.Helper()
	var buf bytes.Buffer
	w := multipart.NewWriter(&buf)
	for _, p := range parts {
		h := textproto.MIMEHeader{}
		cd := fmt.Sprintf("form-data; name=%q", p.name)
		if p.filename != "" {
			cd += fmt.Sprintf("; filename=%q", p.filename)
		}
		h.Set("Content-Disposition", cd)
		if p.contentType != "" {
			h.Set("Content-Type", p.contentType)
		}
		pw, err := w.CreatePart(h)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := pw.Write(p.body); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return &buf, w.Boundary()
}

func pngBytes(t *testing.T) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, 2, 2))
	img.Set(0, 0, color.RGBA{R: 255, A: 255})
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// pngOfSize is a PNG signature and header padded to n bytes: enough for sniffing, which
// reads only the first few kilobytes.
func pngOfSize(t *testing.T, n int) []byte {
	t.Helper()
	b := pngBytes(t)
	return append(b, make([]byte, n-len(b))...)
}

func zipBytes(t *testing.T) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	f, err := zw.Create("x.txt")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

const minimalReport = `{"summary":"Export fails"}`

func TestParseMultipartHappy(t *testing.T) {
	pngData := pngBytes(t)
	logData := []byte("2025-01-31T14:05:00Z ERROR export failed\n")
	body, boundary := multipartBody(t,
		filePart("screenshot.png", "application/octet-stream", pngData), // declared type is ignored
		reportPart(`{"summary":"Export fails","operation":{"httpStatus":500}}`),
		filePart(`C:\Users\ann\Desktop\app.log`, "text/plain", logData),
	)
	in, atts, err := newTestParser(t).ParseMultipart(body, boundary)
	if err != nil {
		t.Fatalf("ParseMultipart: %v", err)
	}
	if in.Summary != "Export fails" || in.Operation.HTTPStatus == nil || *in.Operation.HTTPStatus != 500 {
		t.Errorf("input: got %+v", in)
	}
	want := []Attachment{
		{AttachmentMeta: AttachmentMeta{Filename: "screenshot.png", MediaType: "image/png", Size: int64(len(pngData))}, Content: pngData},
		{AttachmentMeta: AttachmentMeta{Filename: "app.log", MediaType: "text/plain", Size: int64(len(logData))}, Content: logData},
	}
	if diff := cmp.Diff(want, atts); diff != "" {
		t.Errorf("attachments (-want +got):\n%s", diff)
	}
}

func TestParseMultipartTypes(t *testing.T) {
	pdf := []byte("%PDF-1.4\n1 0 obj\n<<>>\nendobj\ntrailer\n<<>>\n%%EOF\n")
	tests := []struct {
		name, filename, declared string
		content                  []byte
		wantType, wantName       string // wantType "": 415
		wantSniffed              string
	}{
		{"png", "a.png", "image/png", pngBytes(t), "image/png", "a.png", ""},
		{"pdf", "invoice.PDF", "application/pdf", pdf, "application/pdf", "invoice.PDF", ""},
		{"json", "network.har", "application/json", []byte(`{"log":{"entries":[]}}`), "application/json", "network.har", ""},
		{"text renamed html", "page.html", "text/plain", []byte("just words, no tags"), "text/plain", "page.html.txt", ""},
		{"png named exe", "run.exe", "image/png", pngBytes(t), "image/png", "run.exe.png", ""},
		{"exe as png", "cat.png", "image/png", append([]byte("MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff"), make([]byte, 200)...), "", "cat.png", "application/vnd.microsoft.portable-executable"},
		{"zip as png", "cat.png", "image/png", zipBytes(t), "", "cat.png", "application/zip"},
		{"html as png", "cat.png", "image/png", []byte("<!DOCTYPE html><html><body><script>alert(1)</script></body></html>"), "", "cat.png", "text/html"},
		{"svg as png", "cat.png", "image/png", []byte(`<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"></svg>`), "", "cat.png", "image/svg+xml"},
		{"utf-16 text", "a.txt", "text/plain", []byte("\xff\xfeh\x00i\x00"), "", "a.txt", "text/plain; charset=utf-16le"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body, boundary := multipartBody(t, reportPart(minimalReport), filePart(tt.filename, tt.declared, tt.content))
			_, atts, err := newTestParser(t).ParseMultipart(body, boundary)
			if tt.wantType == "" {
				var ue *UnsupportedAttachmentError
				if !errors.As(err, &ue) {
					t.Fatalf("error %T %v, want *UnsupportedAttachmentError", err, err)
				}
				if ue.Filename != tt.wantName || ue.MediaType != tt.wantSniffed {
					t.Errorf("got %+v, want filename %q type %q", ue, tt.wantName, tt.wantSniffed)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseMultipart: %v", err)
			}
			if len(atts) != 1 || atts[0].MediaType != tt.wantType || atts[0].Filename != tt.wantName {
				t.Errorf("got %+v, want type %q name %q", atts[0].AttachmentMeta, tt.wantType, tt.wantName)
			}
		})
	}
}

func TestParseMultipartProblems(t *testing.T) {
	pngData := pngBytes(t)
	six := []testPart{reportPart(minimalReport)}
	for i := range 6 {
		six = append(six, filePart(fmt.Sprintf("s%d.png", i), "image/png", pngData))
	}
	tests := []struct {
		name  string
		parts []testPart
		want  []FieldError
	}{
		{"six attachments", six, []FieldError{{"", `at most 5 "attachment" parts are allowed, got 6`}}},
		{"missing report", []testPart{filePart("a.png", "image/png", pngData)},
			[]FieldError{{"", `a "report" part holding the report JSON is required`}}},
		{"two reports", []testPart{reportPart(minimalReport), reportPart(minimalReport)},
			[]FieldError{{"", `only one "report" part is allowed, got 2`}}},
		{"unknown part", []testPart{reportPart(minimalReport), {name: "file", filename: "a.png", body: pngData}},
			[]FieldError{{"", `part "file" is not accepted: send one "report" part and at most 5 "attachment" parts`}}},
		{"empty attachment", []testPart{reportPart(minimalReport), filePart("a.txt", "text/plain", nil)},
			[]FieldError{{"", `attachment 1 ("a.txt") is empty`}}},
		{"framing and report problems together", []testPart{{name: "x", body: []byte("1")}, reportPart(`{"summary":"","foo":1}`)},
			[]FieldError{
				{"", `part "x" is not accepted: send one "report" part and at most 5 "attachment" parts`},
				{"/foo", "is not a known field"},
				{"/summary", "is required"},
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body, boundary := multipartBody(t, tt.parts...)
			_, _, err := newTestParser(t).ParseMultipart(body, boundary)
			var ve *ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("error %T %v, want *ValidationError", err, err)
			}
			if diff := cmp.Diff(tt.want, ve.Fields); diff != "" {
				t.Errorf("problems (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseMultipartTooLarge(t *testing.T) {
	const mib = 1 << 20
	tests := []struct {
		name  string
		parts []testPart
	}{
		{"two attachments over 10 MiB together", []testPart{
			reportPart(minimalReport),
			filePart("a.png", "image/png", pngOfSize(t, 6*mib)),
			filePart("b.png", "image/png", pngOfSize(t, 4*mib+1)),
		}},
		{"one attachment over 10 MiB", []testPart{reportPart(minimalReport), filePart("a.png", "image/png", pngOfSize(t, 10*mib+1))}},
		{"report part over 1 MiB", []testPart{reportPart(`{"summary":"x","description":"` + strings.Repeat("a", mib) + `"}`)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body, boundary := multipartBody(t, tt.parts...)
			if _, _, err := newTestParser(t).ParseMultipart(body, boundary); !errors.Is(err, ErrTooLarge) {
				t.Errorf("got %v, want ErrTooLarge", err)
			}
		})
	}

	t.Run("exactly 10 MiB", func(t *testing.T) {
		body, boundary := multipartBody(t, reportPart(minimalReport),
			filePart("a.png", "image/png", pngOfSize(t, 6*mib)), filePart("b.png", "image/png", pngOfSize(t, 4*mib)))
		if _, atts, err := newTestParser(t).ParseMultipart(body, boundary); err != nil || len(atts) != 2 {
			t.Errorf("got %d attachments, error %v; want 2 and none", len(atts), err)
		}
	})
}

// countingReader counts what the parser pulled from the body.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(b []byte) (int, error) {
	n, err := c.r.Read(b)
	c.n += int64(n)
	return n, err
}

type endless byte

func (e endless) Read(b []byte) (int, error) {
	for i := range b {
		b[i] = byte(e)
	}
	return len(b), nil
}

// TestParseMultipartStopsReading checks that an endless body is not read past the limits,
// whether the bytes come as an attachment, as a part header or as surplus parts.
func TestParseMultipartStopsReading(t *testing.T) {
	p := NewParser(ParserLimits{MaxReportBytes: 1 << 10, MaxAttachmentBytes: 64 << 10, MaxAttachments: 2})
	bound := p.limits.MaxReportBytes + p.limits.MaxAttachmentBytes + framingAllowance + 64<<10
	const b = "XyZ"
	tests := []struct {
		name   string
		prefix string
		fill   byte
	}{
		{"endless attachment", "--" + b + "\r\nContent-Disposition: form-data; name=\"attachment\"; filename=\"a.txt\"\r\n\r\n", 'a'},
		{"endless report", "--" + b + "\r\nContent-Disposition: form-data; name=\"report\"\r\n\r\n", ' '},
		{"endless unknown part", "--" + b + "\r\nContent-Disposition: form-data; name=\"other\"\r\n\r\n", 'a'},
		{"endless header", "--" + b + "\r\nX-Long: ", 'a'},
		{"endless preamble", "", 'a'},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cr := &countingReader{r: io.MultiReader(strings.NewReader(tt.prefix), endless(tt.fill))}
			_, _, err := p.ParseMultipart(cr, b)
			var se *SyntaxError
			if !errors.Is(err, ErrTooLarge) && !errors.As(err, &se) {
				t.Errorf("got %v, want ErrTooLarge or a *SyntaxError", err)
			}
			if cr.n > bound {
				t.Errorf("read %d bytes, want at most %d", cr.n, bound)
			}
		})
	}
}

func TestParseMultipartSyntax(t *testing.T) {
	t.Run("report JSON", func(t *testing.T) {
		body, boundary := multipartBody(t, reportPart(`{"summary":`))
		_, _, err := newTestParser(t).ParseMultipart(body, boundary)
		var se *SyntaxError
		if !errors.As(err, &se) || se.Part != "report" || se.Offset != 11 {
			t.Errorf("got %#v, want *SyntaxError in the report part at 11", err)
		}
	})
	for name, body := range map[string]string{
		"no closing boundary": "--b\r\nContent-Disposition: form-data; name=\"report\"\r\n\r\n{}",
		"junk between parts":  "--b\r\nContent-Disposition: form-data; name=\"report\"\r\n\r\n{}\r\n--b--junk\r\nmore",
		"not multipart":       "hello",
	} {
		t.Run(name, func(t *testing.T) {
			_, _, err := newTestParser(t).ParseMultipart(strings.NewReader(body), "b")
			var se *SyntaxError
			var ve *ValidationError
			if !errors.As(err, &se) && !errors.As(err, &ve) {
				t.Errorf("got %T %v, want *SyntaxError or *ValidationError", err, err)
			}
		})
	}
	t.Run("no boundary", func(t *testing.T) {
		_, _, err := newTestParser(t).ParseMultipart(strings.NewReader(""), "")
		var se *SyntaxError
		if !errors.As(err, &se) {
			t.Errorf("got %v, want *SyntaxError", err)
		}
	})
}

func TestSanitizeFilename(t *testing.T) {
	tests := []struct{ in, want string }{
		{"report.txt", "report.txt"},
		{"../../etc/passwd", "passwd"},
		{`C:\Users\ann\shot.png`, "shot.png"},
		{"a\x00b\r\nc.log", "abc.log"},
		{"gpj.\u202eexe", "gpj.exe"}, // right-to-left override removed
		{`what?<now>:"x"|*.txt`, "what__now___x___.txt"},
		{"...hidden", "hidden"},
		{"trailing. . ", "trailing"},
		{"", "attachment-3"},
		{"///", "attachment-3"},
		{" . ", "attachment-3"},
		{"\xff\xfeok.txt", "ok.txt"},
	}
	for _, tt := range tests {
		if got := sanitizeFilename(tt.in, 3); got != tt.want {
			t.Errorf("sanitizeFilename(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestWithExtension(t *testing.T) {
	long := strings.Repeat("é", 200) // 400 bytes
	tests := []struct {
		name string
		exts []string
		want string
	}{
		{"a.png", []string{".png"}, "a.png"},
		{"a.PNG", []string{".png"}, "a.PNG"},
		{"a.jpeg", []string{".jpg", ".jpeg"}, "a.jpeg"},
		{"a", []string{".jpg", ".jpeg"}, "a.jpg"},
		{"a.html", []string{".txt"}, "a.html.txt"},
		{long + ".log", []string{".txt", ".log"}, strings.Repeat("é", 125) + ".log"},
		{long, []string{".txt"}, strings.Repeat("é", 125) + ".txt"},
	}
	for _, tt := range tests {
		got := withExtension(tt.name, tt.exts)
		if got != tt.want {
			t.Errorf("withExtension(%.20q…) = %.40q…, want %.40q…", tt.name, got, tt.want)
		}
		if len(got) > maxFilenameBytes {
			t.Errorf("withExtension(%.20q…): %d bytes, want at most %d", tt.name, len(got), maxFilenameBytes)
		}
	}
}

// TestParseMultipartIgnoresDeclaredEncoding checks that a Content-Transfer-Encoding header
// cannot make us decode content into something we did not sniff.
func TestParseMultipartIgnoresDeclaredEncoding(t *testing.T) {
	body := "--b\r\nContent-Disposition: form-data; name=\"report\"\r\n\r\n" + minimalReport + "\r\n" +
		"--b\r\nContent-Disposition: form-data; name=\"attachment\"; filename=\"a.txt\"\r\n" +
		"Content-Transfer-Encoding: quoted-printable\r\n\r\nab=3Dcd\r\n--b--\r\n"
	_, atts, err := newTestParser(t).ParseMultipart(strings.NewReader(body), "b")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"ab=3Dcd"}, []string{string(atts[0].Content)}, cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("content (-want +got):\n%s", diff)
	}
}

// TestParseMultipartSizedAgrees: the declared length only decides where the attachments are
// read to, never the answer, even when it is wrong.
func TestParseMultipartSizedAgrees(t *testing.T) {
	const mib = 1 << 20
	bodies := map[string][]testPart{
		"two attachments": {reportPart(minimalReport), filePart("a.png", "image/png", pngOfSize(t, 100<<10)),
			filePart("b.txt", "text/plain", []byte("line one\nline two\n"))},
		"exactly 10 MiB": {reportPart(minimalReport), filePart("a.png", "image/png", pngOfSize(t, 6*mib)),
			filePart("b.png", "image/png", pngOfSize(t, 4*mib))},
		"over 10 MiB": {reportPart(minimalReport), filePart("a.png", "image/png", pngOfSize(t, 6*mib)),
			filePart("b.png", "image/png", pngOfSize(t, 4*mib+1))},
		"empty attachment": {reportPart(minimalReport), filePart("a.txt", "text/plain", nil)},
		"unsupported":      {reportPart(minimalReport), filePart("a.zip", "", zipBytes(t))},
	}
	for name, parts := range bodies {
		t.Run(name, func(t *testing.T) {
			body, boundary := multipartBody(t, parts...)
			raw := body.Bytes()
			wantIn, wantAtts, wantErr := newTestParser(t).ParseMultipart(bytes.NewReader(raw), boundary)
			n := int64(len(raw))
			for _, size := range []int64{n, n / 2, 1, 0, 2 * n} {
				in, atts, err := newTestParser(t).ParseMultipartSized(bytes.NewReader(raw), boundary, size)
				if diff := cmp.Diff(wantErr, err, cmpopts.EquateErrors()); diff != "" && fmt.Sprint(err) != fmt.Sprint(wantErr) {
					t.Errorf("size %d: error %v, want %v", size, err, wantErr)
				}
				if diff := cmp.Diff(wantIn, in); diff != "" {
					t.Errorf("size %d: input (-unsized +sized):\n%s", size, diff)
				}
				// bytes.Equal: cmp walks 10 MiB slices element by element.
				if diff := cmp.Diff(wantAtts, atts, cmpopts.EquateEmpty(), cmp.Comparer(bytes.Equal)); diff != "" {
					t.Errorf("size %d: attachments (-unsized +sized):\n%s", size, diff)
				}
			}
		})
	}
}

// TestParseMultipartSizedAllocatesOnce: with the body's length known, 10 MiB of attachments
// cost about 10 MiB of allocation. Reading each part with a growing buffer allocated about
// twice that, and Build copied it all once more.
func TestParseMultipartSizedAllocatesOnce(t *testing.T) {
	const mib = 1 << 20
	body, boundary := multipartBody(t, reportPart(minimalReport),
		filePart("a.png", "image/png", pngOfSize(t, 4*mib)), filePart("b.png", "image/png", pngOfSize(t, 3*mib)),
		filePart("c.pdf", "application/pdf", append([]byte("%PDF-1.7\n"), make([]byte, 3*mib-9)...)))
	raw := body.Bytes()
	p := newTestParser(t)
	build := func(in Input, atts []Attachment) {
		t.Helper()
		if _, _, err := Build(in, atts, BuildContext{ID: "r1", Marker: "m1", Now: time.Now()}); err != nil {
			t.Fatal(err)
		}
	}
	build(Input{Summary: "warm-up"}, nil) // the User-Agent parser builds its tables on first use
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	in, atts, err := p.ParseMultipartSized(bytes.NewReader(raw), boundary, int64(len(raw)))
	if err != nil || len(atts) != 3 {
		t.Fatalf("parse: %d attachments, %v", len(atts), err)
	}
	build(in, atts)
	runtime.ReadMemStats(&after)
	if got, limit := after.TotalAlloc-before.TotalAlloc, uint64(len(raw))+mib; got > limit {
		t.Errorf("parsing and building a %d-byte body allocated %d bytes, want at most %d", len(raw), got, limit)
	}
}

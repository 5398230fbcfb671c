package report

import (
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"path"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/gabriel-vasile/mimetype"
)

// Multipart part names.
const (
	partReport     = "report"
	partAttachment = "attachment"
)

// framingAllowance is what the body may hold beyond the report and attachment limits: part
// headers, boundaries, and a preamble. Without a cap on the whole body, headers and unknown
// parts could be streamed at us forever.
const framingAllowance = 256 << 10

// maxParts bounds how many parts are looked at; it leaves room to report a few surplus
// attachment or unknown parts before giving up.
func (p *Parser) maxParts() int { return 1 + p.limits.MaxAttachments + 10 }

// ParseMultipart decodes a multipart/form-data body: exactly one "report" part holding the
// report JSON, and up to MaxAttachments "attachment" file parts. Errors are *SyntaxError,
// *ValidationError, ErrTooLarge and *UnsupportedAttachmentError.
//
// The attachments come back with Filename, MediaType, Size and Content set; ID is set by
// Build. Part Content-Type headers are ignored: a file's type is what its bytes are.
func (p *Parser) ParseMultipart(body io.Reader, boundary string) (Input, []Attachment, error) {
	return p.ParseMultipartSized(body, boundary, -1)
}

// ParseMultipartSized is ParseMultipart for a body whose length is declared (size, -1 when
// unknown). The attachments are then read into one buffer of at most that size, allocated
// once: reading them part by part with growing buffers held up to twice their bytes and left
// as much again as garbage, which is what let concurrent uploads exhaust memory. A size that
// turns out too small costs only a copy, never a wrong answer.
func (p *Parser) ParseMultipartSized(body io.Reader, boundary string, size int64) (Input, []Attachment, error) {
	if boundary == "" {
		return Input{}, nil, &SyntaxError{Msg: "the multipart boundary is missing"}
	}
	cr := &capReader{r: body, max: p.limits.MaxReportBytes + p.limits.MaxAttachmentBytes + framingAllowance}
	mr := multipart.NewReader(cr, boundary)
	var (
		errs        fieldErrors
		reportJSON  []byte
		reports     int
		atts        []Attachment
		surplus     int   // attachment parts beyond the limit, counted but not kept
		attBytes    int64 // kept attachment bytes so far
		parts       int
		sawTooMany  bool
		attachIndex int // 1-based number of the attachment part, for default names
		// arena holds the kept attachments back to back; each one's Content is a slice of it.
		arena []byte
	)
	for {
		part, err := mr.NextRawPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return Input{}, nil, cr.translate(err)
		}
		if parts++; parts > p.maxParts() {
			sawTooMany = true
			break
		}
		// NextRawPart keeps the bytes as sent: a Content-Transfer-Encoding header has no
		// place in form-data, and decoding it would let the client hide content from us.
		switch name := part.FormName(); name {
		case partReport:
			reports++
			if reports > 1 {
				continue // reported below; the next NextRawPart discards the rest
			}
			b, err := readAtMost(part, p.limits.MaxReportBytes)
			if err != nil {
				return Input{}, nil, cr.translate(err)
			}
			reportJSON = b
		case partAttachment:
			attachIndex++
			if len(atts) == p.limits.MaxAttachments {
				surplus++
				continue
			}
			if size < 0 {
				// Nothing bounds this body in advance: each part grows its own buffer, so no
				// earlier part is copied when a later one grows.
				arena = nil
			} else if arena == nil {
				// The attachments cannot be longer than the body, nor (by one byte, which
				// shows that the limit is crossed) than their limit.
				arena = make([]byte, 0, min(size, p.limits.MaxAttachmentBytes+1))
			}
			b, err := readInto(&arena, part, p.limits.MaxAttachmentBytes-attBytes)
			if err != nil {
				return Input{}, nil, cr.translate(err)
			}
			if len(b) == 0 {
				errs.add("", fmt.Sprintf("attachment %d (%q) is empty",
					attachIndex, sanitizeFilename(part.FileName(), attachIndex)))
				continue
			}
			attBytes += int64(len(b))
			a, err := newAttachment(b, part.FileName(), attachIndex)
			if err != nil {
				return Input{}, nil, err
			}
			atts = append(atts, a)
		default:
			errs.add("", fmt.Sprintf("part %q is not accepted: send one %q part and at most %d %q parts",
				clip(name, 64), partReport, p.limits.MaxAttachments, partAttachment))
		}
	}
	switch {
	case reports == 0:
		errs.add("", fmt.Sprintf("a %q part holding the report JSON is required", partReport))
	case reports > 1:
		errs.add("", fmt.Sprintf("only one %q part is allowed, got %d", partReport, reports))
	}
	if surplus > 0 {
		errs.add("", fmt.Sprintf("at most %d %q parts are allowed, got %d",
			p.limits.MaxAttachments, partAttachment, p.limits.MaxAttachments+surplus))
	}
	if sawTooMany {
		errs.add("", fmt.Sprintf("the body has more than %d parts", p.maxParts()))
	}
	var in Input
	if reports == 1 {
		var err error
		in, err = p.parse(reportJSON, partReport)
		var ve *ValidationError
		switch {
		case errors.As(err, &ve):
			// Framing problems and report problems together, all in one answer.
			for _, f := range ve.Fields {
				errs.add(f.Path, f.Message)
			}
		case err != nil:
			return Input{}, nil, err
		}
	}
	if err := errs.err(); err != nil {
		return Input{}, nil, err
	}
	return in, atts, nil
}

// readAtMost reads r to the end, or fails with ErrTooLarge as soon as it yields more than
// limit bytes; never more than limit+1 bytes are held.
func readAtMost(r io.Reader, limit int64) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, ErrTooLarge
	}
	return b, nil
}

// readInto appends what r yields to *arena and returns it as a slice of its own (appending
// to it cannot reach the next part), or fails with ErrTooLarge once r yields more than limit
// bytes. While the arena has room nothing is allocated; beyond it, it grows as ReadAll would.
func readInto(arena *[]byte, r io.Reader, limit int64) ([]byte, error) {
	lr := &io.LimitedReader{R: r, N: limit + 1}
	b, start := *arena, len(*arena)
	for lr.N > 0 {
		if len(b) == cap(b) {
			b = slices.Grow(b, int(min(lr.N, 32<<10)))
		}
		n, err := lr.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
	}
	*arena = b
	if int64(len(b)-start) > limit {
		return nil, ErrTooLarge
	}
	return b[start:len(b):len(b)], nil
}

// capReader fails once more than max bytes are read from the body, so that neither headers
// nor surplus parts can make us read without end.
type capReader struct {
	r        io.Reader
	max      int64
	n        int64
	exceeded bool
	// readErr is the body's own failure (other than its end), kept so that translate can
	// pass it on: a body cut off by the server's limits is not a malformed one.
	readErr error
}

var errBodyCap = errors.New("body over the cap")

// Read never asks the body for more than one byte past the cap, so that crossing it is
// noticed without reading on.
func (c *capReader) Read(b []byte) (int, error) {
	if c.exceeded {
		return 0, errBodyCap
	}
	if rem := c.max - c.n + 1; int64(len(b)) > rem {
		b = b[:rem]
	}
	n, err := c.r.Read(b)
	c.n += int64(n)
	if c.n > c.max {
		c.exceeded = true
		return n, errBodyCap
	}
	if err != nil && !errors.Is(err, io.EOF) && c.readErr == nil {
		c.readErr = err
	}
	return n, err
}

// translate turns a multipart or read error into one of ours. The cap is checked first:
// mime/multipart does not always wrap the reader's error.
func (c *capReader) translate(err error) error {
	if c.exceeded || errors.Is(err, ErrTooLarge) {
		return ErrTooLarge
	}
	return &SyntaxError{Offset: c.n, Msg: "malformed multipart body", Err: c.readErr}
}

// newAttachment sniffs the content and names the file.
func newAttachment(content []byte, filename string, index int) (Attachment, error) {
	name := sanitizeFilename(filename, index)
	mt := mimetype.Detect(content)
	mediaType, exts, ok := acceptedType(mt)
	if !ok {
		shown := bareType(mt.String())
		if mt.Is("text/plain") {
			shown = mt.String() // rejected for its charset, so name it
		}
		return Attachment{}, &UnsupportedAttachmentError{Filename: name, MediaType: shown}
	}
	return Attachment{
		AttachmentMeta: AttachmentMeta{
			Filename:  withExtension(name, exts),
			MediaType: mediaType,
			Size:      int64(len(content)),
		},
		Content: content,
	}, nil
}

// acceptedType returns the media type to record for sniffed content and the file extensions
// that fit it (the first is the one to add when the name has none of them), or ok=false.
//
// Text must be UTF-8 (or a single-byte charset): UTF-16 text would slip past the scrubber,
// which matches secrets byte for byte.
func acceptedType(mt *mimetype.MIME) (mediaType string, exts []string, ok bool) {
	switch {
	case mt.Is("image/png"):
		return "image/png", []string{".png"}, true
	case mt.Is("image/jpeg"):
		return "image/jpeg", []string{".jpg", ".jpeg"}, true
	case mt.Is("image/gif"):
		return "image/gif", []string{".gif"}, true
	case mt.Is("image/webp"):
		return "image/webp", []string{".webp"}, true
	case mt.Is("application/pdf"):
		return "application/pdf", []string{".pdf"}, true
	case mt.Is("application/json"):
		// .har: browsers export network logs as JSON, and agents ask for them.
		return "application/json", []string{".json", ".har"}, true
	case mt.Is("text/plain"):
		if strings.Contains(strings.ToLower(mt.String()), "utf-16") || strings.Contains(strings.ToLower(mt.String()), "utf-32") {
			return "", nil, false
		}
		return "text/plain", []string{".txt", ".log", ".text"}, true
	}
	return "", nil, false
}

func bareType(s string) string {
	t, _, _ := strings.Cut(s, ";")
	return strings.TrimSpace(t)
}

// maxFilenameBytes is the longest name most file systems (and JSM) store.
const maxFilenameBytes = 255

// sanitizeFilename makes a client's file name safe to store and to download: the base name
// only (clients on Windows send "C:\Users\…\x.png"), no control or invisible formatting
// characters (a right-to-left override turns "gpj.exe" into an innocent-looking name), none
// of the characters Windows forbids, and no leading dots (hidden files) or trailing dots and
// spaces (which Windows drops). Nothing left gives "attachment-<index>".
func sanitizeFilename(name string, index int) string {
	name = strings.ToValidUTF8(name, "")
	if i := strings.LastIndexAny(name, `/\`); i >= 0 {
		name = name[i+1:]
	}
	name = strings.Map(func(r rune) rune {
		switch {
		case isControl(r), unicode.Is(unicode.Cf, r):
			return -1
		case strings.ContainsRune(`<>:"|?*`, r):
			return '_'
		}
		return r
	}, name)
	name = strings.TrimLeft(strings.TrimSpace(name), ".")
	name = strings.TrimRight(name, ". ")
	if name == "" {
		name = "attachment-" + strconv.Itoa(index)
	}
	return name
}

// withExtension makes sure the name ends in an extension that fits the sniffed type, so
// that a text file named "x.html" or an image named "x.exe" opens as what it is on an
// agent's machine. The result stays within maxFilenameBytes, extension kept.
func withExtension(name string, exts []string) string {
	ext := strings.ToLower(path.Ext(name))
	for _, e := range exts {
		if ext == e {
			return clipBytes(strings.TrimSuffix(name, path.Ext(name)), maxFilenameBytes-len(ext)) + path.Ext(name)
		}
	}
	return clipBytes(name, maxFilenameBytes-len(exts[0])) + exts[0]
}

// clipBytes cuts s to at most n bytes without splitting a character.
func clipBytes(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// clip cuts s to n bytes for quoting in a message, marking the cut.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return clipBytes(s, n) + "…"
}

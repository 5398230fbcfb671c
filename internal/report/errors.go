package report

import (
	"errors"
	"fmt"
	"strconv"
)

// ErrTooLarge means the request body, the report part or the attachments together are over
// their size limits (413). Reading stops at the limit, so nothing larger is ever held.
var ErrTooLarge = errors.New("report too large")

// maxFieldErrors caps a ValidationError: a 1 MiB body can hold tens of thousands of unknown
// keys, and echoing every one of them back helps nobody.
const maxFieldErrors = 100

// FieldError is one problem with one field of a report.
type FieldError struct {
	// Path is an RFC 6901 JSON pointer into the report JSON ("/operation/requestIds/3");
	// "" means the body as a whole, for problems with the multipart framing.
	Path string `json:"path"`
	// Message is written for the person who sent the report; it never holds library text.
	Message string `json:"message"`
}

// ValidationError lists every problem found in a report, so a client fixes them in one round
// trip instead of one per request (400).
type ValidationError struct {
	Fields []FieldError
}

// Error names only the count: paths and messages may echo user input, which does not belong
// in logs.
func (e *ValidationError) Error() string {
	if len(e.Fields) == 1 {
		return "invalid report: 1 problem"
	}
	return "invalid report: " + strconv.Itoa(len(e.Fields)) + " problems"
}

// SyntaxError means the body is not well-formed: the JSON does not parse, or the multipart
// framing is broken (400).
type SyntaxError struct {
	// Part is "report" when the JSON of a multipart report part is malformed, and "" for a
	// JSON body or broken multipart framing.
	Part string
	// Offset is the 0-based index of the byte where the problem was found: within the JSON
	// for JSON errors (its length when the JSON ends early), and how far the body had been
	// read for multipart framing errors.
	Offset int64
	// Msg is our own description, safe to show to the client.
	Msg string
	// Err is the body's own read error when there was one (a limit of the server cut it
	// off, the client went away); the HTTP layer may answer it for what it is.
	Err error
}

// Unwrap returns the body's read error, if any.
func (e *SyntaxError) Unwrap() error { return e.Err }

// Error says where the body broke; it quotes nothing from it.
func (e *SyntaxError) Error() string {
	where := "body"
	if e.Part != "" {
		where = e.Part + " part"
	}
	return fmt.Sprintf("malformed %s at byte %d: %s", where, e.Offset, e.Msg)
}

// UnsupportedAttachmentError means an attachment's content is not one of the accepted types
// (415). The type is sniffed from the bytes; what the client declared does not count.
type UnsupportedAttachmentError struct {
	// Filename is the sanitised name the client gave the file, for the problem detail.
	Filename string
	// MediaType is what the content looks like, e.g. "application/x-msdownload".
	MediaType string
}

// Error leaves out the filename: it is user input and may carry personal data.
func (e *UnsupportedAttachmentError) Error() string {
	return "unsupported attachment type " + e.MediaType
}

// fieldErrors collects problems up to maxFieldErrors.
type fieldErrors []FieldError

func (fe *fieldErrors) add(path, msg string) {
	if len(*fe) < maxFieldErrors {
		*fe = append(*fe, FieldError{Path: path, Message: msg})
	}
}

func (fe fieldErrors) err() error {
	if len(fe) == 0 {
		return nil
	}
	return &ValidationError{Fields: fe}
}

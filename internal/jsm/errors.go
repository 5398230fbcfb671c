package jsm

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"time"
)

// Kind tells the caller what to do about a failed call; it is the only part of an error the
// delivery worker needs to decide between "give up", "try later" and "look before retrying".
type Kind int

const (
	// Transient means the call did not take effect and may be repeated later, after
	// Error.RetryAfter when the server named a time.
	Transient Kind = iota + 1
	// Permanent means repeating the call cannot help: the configuration (desk, request type,
	// credentials, permissions) or the input is wrong.
	Permanent
	// Ambiguous means a write may or may not have happened (timeout, reset connection, 5xx,
	// unreadable success). Before repeating a create, search for its marker.
	Ambiguous
)

// String names the kind for logs and metrics labels.
func (k Kind) String() string {
	switch k {
	case Transient:
		return "transient"
	case Permanent:
		return "permanent"
	case Ambiguous:
		return "ambiguous"
	}
	return "unknown"
}

// ErrConflict matches (with errors.Is) a 409 answer: the customer exists but could not be
// found by email, for example while Atlassian's search has not caught up yet.
var ErrConflict = errors.New("jsm: conflict")

// Error is every failure this package returns. Its text names the operation and the HTTP
// status only: Atlassian's error bodies can echo request data (email addresses, field
// values), so they are never read into an error.
type Error struct {
	Op         string        // what was attempted, e.g. "create request"
	Status     int           // HTTP status of the last attempt; 0 when no response arrived
	RetryAfter time.Duration // the server's Retry-After, when it sent one
	Kind       Kind
	cause      error // transport error without its URL, or a validation error
}

// Error says what failed without any response body.
func (e *Error) Error() string {
	switch {
	case e.Status != 0 && e.RetryAfter > 0:
		return fmt.Sprintf("jsm %s: status %d (%s, retry after %s)", e.Op, e.Status, e.Kind, e.RetryAfter)
	case e.Status != 0:
		return fmt.Sprintf("jsm %s: status %d (%s)", e.Op, e.Status, e.Kind)
	case e.cause != nil:
		// Scrubbed again in case a cause we did not unwrap still quotes a URL.
		return fmt.Sprintf("jsm %s: %s (%s)", e.Op, scrubQuery(e.cause.Error()), e.Kind)
	}
	return fmt.Sprintf("jsm %s: %s", e.Op, e.Kind)
}

// Unwrap exposes the transport cause, so errors.Is(err, context.Canceled) works.
func (e *Error) Unwrap() error { return e.cause }

// Is lets callers test for a 409 with errors.Is(err, ErrConflict).
func (e *Error) Is(target error) bool {
	return target == ErrConflict && e.Status == http.StatusConflict
}

// KindOf returns the Kind of err. Errors that did not come from this package (there should
// be none) count as Transient so that a bounded retry, not silence, follows; nil has no kind.
func KindOf(err error) Kind {
	if err == nil {
		return 0
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return Transient
}

// invalid reports bad input from our own caller; repeating it cannot help.
func invalid(op, format string, args ...any) *Error {
	return &Error{Op: op, Kind: Permanent, cause: fmt.Errorf(format, args...)}
}

// statusError classifies an HTTP answer by its status code alone. writeOnce marks a call
// whose blind repetition could duplicate data (create, comment, attach).
func statusError(op string, resp *http.Response, writeOnce bool, now time.Time) *Error {
	e := &Error{Op: op, Status: resp.StatusCode, Kind: Permanent}
	ra, hasRA := retryAfter(resp.Header, now)
	switch s := resp.StatusCode; {
	case s == http.StatusTooManyRequests || s == http.StatusRequestTimeout:
		// Rejected before processing, so even a create may be repeated.
		e.Kind, e.RetryAfter = Transient, ra
	case s == http.StatusServiceUnavailable && (hasRA || !writeOnce):
		// Atlassian sheds load with 503 + Retry-After before doing the work. A bare 503 could
		// come from a proxy that gave up after forwarding a write, so it stays Ambiguous below.
		e.Kind, e.RetryAfter = Transient, ra
	case s >= 500 && writeOnce:
		e.Kind = Ambiguous
	case s >= 500:
		e.Kind = Transient
	}
	// 3xx (we never follow redirects: a moved site is a configuration fix) and other 4xx
	// stay Permanent.
	return e
}

// transportError classifies a call that got no HTTP answer. The cause is kept without the
// *url.Error wrapper, whose text carries the URL and with it query values such as emails.
func transportError(op string, err error, writeOnce bool) *Error {
	cause := err
	for {
		var ue *url.Error
		if !errors.As(cause, &ue) {
			break
		}
		cause = ue.Err
	}
	e := &Error{Op: op, Kind: Ambiguous, cause: cause}
	switch {
	case isCertError(err):
		e.Kind = Permanent
	case notSent(err) || !writeOnce:
		e.Kind = Transient
	}
	return e
}

// notSent reports errors that happen before a single request byte leaves: nothing can have
// been written, so even a create may be repeated.
func notSent(err error) bool {
	var dns *net.DNSError
	if errors.As(err, &dns) {
		return true
	}
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

// isCertError reports TLS trust failures, which no retry fixes.
func isCertError(err error) bool {
	var (
		unknownCA *x509.UnknownAuthorityError
		hostname  x509.HostnameError
		invalid   x509.CertificateInvalidError
		verify    *tls.CertificateVerificationError
	)
	return errors.As(err, &unknownCA) || errors.As(err, &hostname) ||
		errors.As(err, &invalid) || errors.As(err, &verify)
}

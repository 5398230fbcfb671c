package jsm

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
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

// Subject is what the error body of a 400 answer names: what JSM refused. It is all that is
// kept of the body.
type Subject int

const (
	// SubjectUnknown means the answer was not a 400, or its body named nothing recognised.
	SubjectUnknown Subject = iota
	// SubjectConfig is the service desk or the request type: no report can get past it
	// until an operator fixes the configuration.
	SubjectConfig
	// SubjectCustomer is the account a request is raised on behalf of (it may have been
	// deleted or merged since it was looked up).
	SubjectCustomer
	// SubjectInput is a field of the one request (its summary, its description).
	SubjectInput
)

// String names the subject for error texts and logs.
func (s Subject) String() string {
	switch s {
	case SubjectConfig:
		return "desk configuration"
	case SubjectCustomer:
		return "customer"
	case SubjectInput:
		return "request fields"
	}
	return "unknown"
}

// Error is every failure this package returns. Its text names the operation, the HTTP
// status and, for a 400, what the answer was about (Subject): Atlassian's error bodies can
// echo request data (email addresses, field values), so no text of theirs is kept.
type Error struct {
	Op         string        // what was attempted, e.g. "create request"
	Status     int           // HTTP status of the last attempt; 0 when no response arrived
	RetryAfter time.Duration // the server's Retry-After, when it sent one
	Kind       Kind
	// Subject is what a 400 answer's errorMessage, i18n key or errors fields name; it tells
	// a broken configuration (every report fails) from one report's data (only it fails).
	Subject Subject
	cause   error // transport error without its URL, or a validation error
}

// Error says what failed without any response body.
func (e *Error) Error() string {
	switch {
	case e.Status != 0 && e.RetryAfter > 0:
		return fmt.Sprintf("jsm %s: status %d (%s, retry after %s)", e.Op, e.Status, e.Kind, e.RetryAfter)
	case e.Status != 0 && e.Subject != SubjectUnknown:
		return fmt.Sprintf("jsm %s: status %d (%s, about the %s)", e.Op, e.Status, e.Kind, e.Subject)
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

// maxErrorBodyBytes bounds how much of a 400's body is read to find its Subject; JSM's error
// bodies are a few hundred bytes.
const maxErrorBodyBytes = 64 << 10

// subjectOf reads what a 400's body names. JSM answers {"errorMessage", "i18nErrorMessage":
// {"i18nKey"}}, Jira {"errorMessages": [...], "errors": {field: message}}. Field names and
// i18n keys are stable identifiers and are read first; the English messages are a fallback,
// since Atlassian rewords them without notice. A customer is checked before the desk
// because messages about a customer often mention the desk too ("not a customer of this
// service desk"), while a desk or request-type problem never names a user.
func subjectOf(body []byte) Subject {
	var b struct {
		ErrorMessage string `json:"errorMessage"`
		I18n         struct {
			Key string `json:"i18nKey"`
		} `json:"i18nErrorMessage"`
		ErrorMessages []string          `json:"errorMessages"`
		Errors        map[string]string `json:"errors"`
	}
	if json.Unmarshal(body, &b) != nil {
		return SubjectUnknown
	}
	fields := make([]string, 0, len(b.Errors))
	msgs := append([]string{b.ErrorMessage}, b.ErrorMessages...)
	for f, m := range b.Errors {
		fields = append(fields, strings.ToLower(f))
		msgs = append(msgs, m)
	}
	key := strings.ToLower(b.I18n.Key)
	text := strings.ToLower(strings.Join(msgs, "\n"))
	has := func(s string, words ...string) bool {
		for _, w := range words {
			if strings.Contains(s, w) {
				return true
			}
		}
		return false
	}
	anyField := func(words ...string) bool {
		for _, f := range fields {
			if has(f, words...) {
				return true
			}
		}
		return false
	}
	customer := []string{"raiseonbehalfof", "reporter", "participant", "customer", "user", "account"}
	desk := []string{"servicedesk", "service.desk", "service desk", "service project", "requesttype", "request.type", "request type"}
	switch {
	case anyField(customer...) || has(key, customer...):
		return SubjectCustomer
	case anyField(desk...) || has(key, desk...):
		return SubjectConfig
	case len(fields) > 0:
		return SubjectInput
	case has(text, customer...):
		return SubjectCustomer
	case has(text, desk...):
		return SubjectConfig
	case text != "" || key != "":
		return SubjectInput
	}
	return SubjectUnknown
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

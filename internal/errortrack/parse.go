package errortrack

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/supportbridge/supportbridge/internal/redact"
)

// Limits of one batch. The body as a whole is bounded by the HTTP layer (MaxBodyBytes).
const (
	MaxBodyBytes     = 256 << 10
	MaxEvents        = 50
	MaxMessageBytes  = 1 << 10
	MaxStackBytes    = 8 << 10
	MaxURLBytes      = 2 << 10
	MaxRequestIDLen  = 128
	maxFieldProblems = 20 // a hostile batch does not get an unbounded error list back
)

// FieldError names one invalid field by its JSON pointer (RFC 6901).
type FieldError struct {
	Path    string
	Message string
}

// ValidationError lists every invalid field of a batch.
type ValidationError struct{ Fields []FieldError }

func (e *ValidationError) Error() string {
	return fmt.Sprintf("errortrack: %d invalid fields", len(e.Fields))
}

// SyntaxError is a body that is not JSON.
type SyntaxError struct{ Offset int64 }

func (e *SyntaxError) Error() string {
	return fmt.Sprintf("errortrack: malformed JSON at %d", e.Offset)
}

var eventFields = []string{"kind", "message", "stack", "url", "status", "requestId", "time"}

// ParseBatch reads {"events":[…]} strictly: unknown fields, wrong types, missing or
// oversize values are all reported with their paths, and nothing of an invalid batch is
// kept. Every string of a valid batch comes back scrubbed of secrets and email addresses,
// and its URL without credentials, fragment or secret query values.
func ParseBatch(body []byte) ([]Event, error) {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(body, &top); err != nil {
		var syn *json.SyntaxError
		if errors.As(err, &syn) {
			return nil, &SyntaxError{Offset: syn.Offset}
		}
		if len(bytes.TrimSpace(body)) == 0 {
			return nil, &ValidationError{Fields: []FieldError{{"", "a JSON object is required"}}}
		}
		return nil, &ValidationError{Fields: []FieldError{{"", "must be an object"}}}
	}
	v := &validator{}
	for k := range top {
		if k != "events" {
			v.add("/"+escape(k), "unknown field")
		}
	}
	raw, ok := top["events"]
	var items []json.RawMessage
	switch {
	case !ok:
		v.add("/events", "is required")
	case json.Unmarshal(raw, &items) != nil || items == nil:
		v.add("/events", "must be an array")
	case len(items) == 0:
		v.add("/events", "must hold at least one event")
	case len(items) > MaxEvents:
		v.add("/events", fmt.Sprintf("must hold at most %d events", MaxEvents))
		items = nil
	}
	events := make([]Event, 0, len(items))
	for i, it := range items {
		events = append(events, v.event(fmt.Sprintf("/events/%d", i), it))
	}
	if len(v.fields) > 0 {
		return nil, &ValidationError{Fields: v.fields}
	}
	sc := redact.New(redact.Options{})
	for i := range events {
		e := &events[i]
		e.Message = sc.String(e.Message)
		e.Stack = sc.String(e.Stack)
		e.RequestID = sc.String(e.RequestID)
		if e.URL != "" {
			e.URL = sc.String(e.URL)
		}
	}
	return events, nil
}

type validator struct{ fields []FieldError }

func (v *validator) add(path, msg string) {
	if len(v.fields) < maxFieldProblems {
		v.fields = append(v.fields, FieldError{path, msg})
	}
}

func (v *validator) event(at string, raw json.RawMessage) Event {
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(raw, &obj); err != nil || obj == nil {
		v.add(at, "must be an object")
		return Event{}
	}
	for k := range obj {
		if !slices.Contains(eventFields, k) {
			v.add(at+"/"+escape(k), "unknown field")
		}
	}
	var e Event
	kind, ok := v.str(obj, at, "kind", 32)
	switch {
	case !ok:
	case kind == "":
		v.add(at+"/kind", "is required")
	case Kind(kind) == KindError, Kind(kind) == KindRejection, Kind(kind) == KindHTTP:
		e.Kind = Kind(kind)
	default:
		v.add(at+"/kind", `must be "error", "unhandledrejection" or "http"`)
	}
	if msg, ok := v.str(obj, at, "message", MaxMessageBytes); ok {
		if strings.TrimSpace(msg) == "" {
			v.add(at+"/message", "is required")
		}
		e.Message = msg
	}
	e.Stack, _ = v.str(obj, at, "stack", MaxStackBytes)
	if u, ok := v.str(obj, at, "url", MaxURLBytes); ok && u != "" {
		clean, err := CleanURL(u)
		if err != nil {
			v.add(at+"/url", "must be an absolute http or https URL")
		}
		e.URL = clean
	}
	if id, ok := v.str(obj, at, "requestId", MaxRequestIDLen); ok {
		if strings.IndexFunc(id, func(r rune) bool { return r < 0x21 || r > 0x7e }) >= 0 {
			v.add(at+"/requestId", "must be visible ASCII characters")
		}
		e.RequestID = id
	}
	if ts, ok := v.str(obj, at, "time", 64); ok && ts != "" {
		t, err := time.Parse(time.RFC3339Nano, ts)
		if err != nil {
			v.add(at+"/time", "must be an RFC 3339 date-time")
		}
		e.Time = t
	}
	if raw, ok := obj["status"]; ok {
		n, err := strconv.Atoi(string(bytes.TrimSpace(raw)))
		switch {
		case err != nil:
			v.add(at+"/status", "must be an integer")
		case n < 100 || n > 599:
			v.add(at+"/status", "must be an HTTP status (100-599)")
		case e.Kind != "" && e.Kind != KindHTTP:
			v.add(at+"/status", `is allowed only for kind "http"`)
		}
		e.Status = n
	} else if e.Kind == KindHTTP {
		v.add(at+"/status", `is required for kind "http"`)
	}
	return e
}

// str reads an optional string field of at most max bytes; ok is false when it is present
// but invalid (the problem is recorded).
func (v *validator) str(obj map[string]json.RawMessage, at, name string, max int) (string, bool) {
	raw, present := obj[name]
	if !present {
		return "", true
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		v.add(at+"/"+name, "must be a string")
		return "", false
	}
	if len(s) > max {
		v.add(at+"/"+name, fmt.Sprintf("must be at most %d bytes", max))
		return "", false
	}
	if !utf8.ValidString(s) {
		v.add(at+"/"+name, "must be valid UTF-8")
		return "", false
	}
	return s, true
}

// escape makes a key a JSON pointer token.
func escape(k string) string {
	return strings.ReplaceAll(strings.ReplaceAll(k, "~", "~0"), "/", "~1")
}

// secretParamWords are query parameter names (lower case, without "-" and "_") whose values
// are credentials; secretParamParts are parts of such names. error-capture.js holds the
// same lists, so the browser strips them first; the server does it again for any client.
var (
	secretParamWords = []string{"key", "code", "sig", "auth", "pwd", "pass", "session", "sid", "otp", "state", "nonce"}
	secretParamParts = []string{"token", "secret", "passw", "signature", "jwt", "apikey", "credential", "auth", "session"}
)

// IsSecretParam reports whether a query parameter of this name carries a credential.
func IsSecretParam(name string) bool {
	n := strings.ToLower(strings.NewReplacer("-", "", "_", "").Replace(name))
	if slices.Contains(secretParamWords, n) {
		return true
	}
	for _, p := range secretParamParts {
		if strings.Contains(n, p) {
			return true
		}
	}
	return false
}

// CleanURL returns an absolute http(s) URL without userinfo and fragment, and with the
// value of every secret query parameter replaced by "[redacted]".
func CleanURL(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", errors.New("not an absolute http(s) URL")
	}
	u.User = nil
	u.Fragment, u.RawFragment = "", ""
	if u.RawQuery != "" {
		parts := strings.Split(u.RawQuery, "&")
		for i, p := range parts {
			k, _, hasValue := strings.Cut(p, "=")
			name, err := url.QueryUnescape(k)
			if err != nil {
				name = k
			}
			if hasValue && IsSecretParam(name) {
				parts[i] = k + "=[redacted]"
			}
		}
		u.RawQuery = strings.Join(parts, "&")
	}
	return u.String(), nil
}

package forge

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"unicode/utf8"
)

// Lifecycle event types. Installed and upgraded are in Atlassian's lifecycle event reference;
// the uninstall event is not documented there (it was long requested as FRGE-1246), and this
// is the name apps subscribe to in practice.
const (
	EventInstalled   = "avi:forge:installed:app"
	EventUpgraded    = "avi:forge:upgraded:app"
	EventUninstalled = "avi:forge:uninstalled:app"
)

const (
	// maxEventBytes is far above any real lifecycle body (a few hundred bytes).
	maxEventBytes = 64 << 10
	// maxEventDepth stops deeply nested bodies from costing stack and time.
	maxEventDepth = 16
	// maxIDBytes bounds every identifier we keep.
	maxIDBytes = 256
)

// ErrInvalidEvent is matched by every *ValidationError, for callers that only need to know
// that the body was bad (HTTP 400).
var ErrInvalidEvent = errors.New("invalid forge lifecycle event")

// LifecycleEvent is a Forge lifecycle event as sent to a remote:
//
//	{"eventType": "avi:forge:installed:app", "id": "<installation uuid>",
//	 "context": "ari:cloud:jira::site/<cloudId>", "installerAccountId": "...",
//	 "app": {"id": "<app uuid>", "version": "2.0.0"}, "environment": {"id": "<env uuid>"}}
//
// The body is not signed. Identity comes from the verified Invocation; tenant.Service refuses
// a body that disagrees with it.
type LifecycleEvent struct {
	EventType      string
	InstallationID string // as sent: a bare UUID, where the FIT has an installation ARI
	CloudID        string
	AppID          string // as sent: a bare UUID, where the FIT has the app ARI
	AppVersion     string
	// EnvironmentID and EnvironmentType are optional; Atlassian documents only environment.id.
	EnvironmentID   string
	EnvironmentType string
	// InstallerAccountID is the user who installed the app, or on an upgrade the user who
	// upgraded it (sent as upgraderAccountId). It may be empty.
	InstallerAccountID string
}

// FieldError is one problem with one field; Path is dotted ("app.id"), empty for the whole body.
type FieldError struct {
	Path    string `json:"path"`
	Message string `json:"message"`
}

// ValidationError lists every problem found in a lifecycle body, so the sender gets them all
// at once. Messages are fixed phrases: no body text is echoed back.
type ValidationError struct {
	Fields []FieldError
}

func (e *ValidationError) Error() string {
	var b strings.Builder
	b.WriteString(ErrInvalidEvent.Error())
	for i, f := range e.Fields {
		if i == 0 {
			b.WriteString(": ")
		} else {
			b.WriteString("; ")
		}
		if f.Path != "" {
			b.WriteString(f.Path + ": ")
		}
		b.WriteString(f.Message)
	}
	return b.String()
}

// Is makes every ValidationError match ErrInvalidEvent.
func (e *ValidationError) Is(target error) bool { return target == ErrInvalidEvent }

func bodyError(msg string) error { return &ValidationError{Fields: []FieldError{{Message: msg}}} }

// ParseLifecycleEvent parses and validates a lifecycle event body. The JSON must be a single
// object without duplicate keys or trailing data; unknown fields are allowed because Atlassian
// adds fields to event payloads. eventType, id and the site (context) are required. Every
// error is a *ValidationError.
func ParseLifecycleEvent(body []byte) (LifecycleEvent, error) {
	if len(body) > maxEventBytes {
		return LifecycleEvent{}, bodyError("body too large")
	}
	if !utf8.Valid(body) {
		return LifecycleEvent{}, bodyError("body must be UTF-8")
	}
	if err := checkStrictJSON(body); err != nil {
		return LifecycleEvent{}, err
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(body, &top); err != nil {
		return LifecycleEvent{}, bodyError("body must be a JSON object")
	}

	r := &fieldReader{}
	ev := LifecycleEvent{
		EventType:      r.str(top, "eventType", "eventType", true, nil),
		InstallationID: r.str(top, "id", "id", true, validID),
	}
	switch ev.EventType {
	case "", EventInstalled, EventUpgraded, EventUninstalled:
	default:
		r.fail("eventType", "unsupported event type")
	}
	ev.CloudID = r.site(top)

	if app := r.obj(top, "app", "app"); app != nil {
		ev.AppID = r.str(app, "id", "app.id", false, validID)
		ev.AppVersion = r.str(app, "version", "app.version", false, validID)
	}
	if env := r.obj(top, "environment", "environment"); env != nil {
		ev.EnvironmentID = r.str(env, "id", "environment.id", false, validID)
		ev.EnvironmentType = r.str(env, "type", "environment.type", false, validID)
	}
	ev.InstallerAccountID = r.str(top, "installerAccountId", "installerAccountId", false, validID)
	if up := r.str(top, "upgraderAccountId", "upgraderAccountId", false, validID); ev.InstallerAccountID == "" {
		ev.InstallerAccountID = up
	}
	if len(r.errs) > 0 {
		return LifecycleEvent{}, &ValidationError{Fields: r.errs}
	}
	return ev, nil
}

// fieldReader collects every field problem instead of stopping at the first.
type fieldReader struct {
	errs []FieldError
}

func (r *fieldReader) fail(path, msg string) {
	r.errs = append(r.errs, FieldError{Path: path, Message: msg})
}

// str reads a string field; null counts as absent. check, when set, validates a present value.
func (r *fieldReader) str(obj map[string]json.RawMessage, key, path string, required bool, check func(string) bool) string {
	raw, ok := obj[key]
	if !ok || isNull(raw) {
		if required {
			r.fail(path, "is required")
		}
		return ""
	}
	var s string
	if json.Unmarshal(raw, &s) != nil {
		r.fail(path, "must be a string")
		return ""
	}
	if s == "" {
		if required {
			r.fail(path, "is required")
		}
		return ""
	}
	if check != nil && !check(s) {
		r.fail(path, "is not a valid identifier")
		return ""
	}
	return s
}

// obj reads an optional object field.
func (r *fieldReader) obj(obj map[string]json.RawMessage, key, path string) map[string]json.RawMessage {
	raw, ok := obj[key]
	if !ok || isNull(raw) {
		return nil
	}
	var o map[string]json.RawMessage
	if json.Unmarshal(raw, &o) != nil {
		r.fail(path, "must be an object")
		return nil
	}
	return o
}

// site reads the required context: the site ARI string that Forge sends, or an object with a
// cloudId, which some deliveries use.
func (r *fieldReader) site(top map[string]json.RawMessage) string {
	raw, ok := top["context"]
	if !ok || isNull(raw) {
		r.fail("context", "is required")
		return ""
	}
	var ari string
	if json.Unmarshal(raw, &ari) == nil {
		id, ok := cloudIDFromSiteARI(ari)
		if !ok {
			r.fail("context", "must be a site ARI (ari:cloud:<product>::site/<cloudId>)")
		}
		return id
	}
	var o map[string]json.RawMessage
	if json.Unmarshal(raw, &o) != nil {
		r.fail("context", "must be a site ARI or an object")
		return ""
	}
	id := r.str(o, "cloudId", "context.cloudId", true, nil)
	if id != "" && !validCloudID(id) {
		r.fail("context.cloudId", "is not a valid cloud id")
		return ""
	}
	return id
}

func isNull(raw json.RawMessage) bool { return bytes.Equal(bytes.TrimSpace(raw), []byte("null")) }

// validID accepts printable ASCII without spaces or quotes: UUIDs, ARIs, account ids and
// versions all fit, and nothing that could smuggle markup or control bytes into logs.
func validID(s string) bool {
	if len(s) > maxIDBytes {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c > '~' || c == '"' || c == '\\' || c == '<' || c == '>' {
			return false
		}
	}
	return true
}

// checkStrictJSON walks the token stream once to enforce what encoding/json lets through:
// exactly one top-level object, no duplicate keys (a body that says two things to two parsers
// is refused), bounded nesting, and nothing after the object.
func checkStrictJSON(body []byte) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	tok, err := dec.Token()
	if err != nil || tok != json.Delim('{') {
		return bodyError("body must be a JSON object")
	}
	if err := walkObject(dec, 1); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return bodyError("body must contain a single JSON object")
	}
	return nil
}

// walkObject consumes an object whose '{' has been read.
func walkObject(dec *json.Decoder, depth int) error {
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return bodyError("body is not valid JSON")
		}
		key, _ := tok.(string)
		if seen[key] {
			return bodyError("body has a duplicate key")
		}
		seen[key] = true
		if err := walkValue(dec, depth); err != nil {
			return err
		}
	}
	if _, err := dec.Token(); err != nil { // the closing '}'
		return bodyError("body is not valid JSON")
	}
	return nil
}

// walkValue consumes one value of any kind.
func walkValue(dec *json.Decoder, depth int) error {
	tok, err := dec.Token()
	if err != nil {
		return bodyError("body is not valid JSON")
	}
	d, ok := tok.(json.Delim)
	if !ok {
		return nil
	}
	if depth >= maxEventDepth {
		return bodyError("body is nested too deeply")
	}
	switch d {
	case '{':
		return walkObject(dec, depth+1)
	case '[':
		for dec.More() {
			if err := walkValue(dec, depth+1); err != nil {
				return err
			}
		}
		if _, err := dec.Token(); err != nil { // the closing ']'
			return bodyError("body is not valid JSON")
		}
		return nil
	default:
		return bodyError("body is not valid JSON")
	}
}

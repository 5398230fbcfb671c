package report

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-playground/validator/v10"
)

// Input is a problem report as the app sends it, after decoding and validation but before
// scrubbing. Times stay strings here: a malformed time is a validation problem to report with
// the others, not a decoding failure that hides them.
//
// The validate tags are the rules; messages for them are in fieldMessage.
type Input struct {
	Summary     string `json:"summary" validate:"required,max=255,singleline"`
	Description string `json:"description,omitempty" validate:"maxbytes=32768"`
	// Email is a contact hint the user may type; the address support writes to is the one
	// the user's Atlassian site confirms (see Report.EmailHint).
	Email        string             `json:"email,omitempty" validate:"omitempty,max=254,email"`
	Operation    OperationInput     `json:"operation,omitzero"`
	RecentErrors []RecentErrorInput `json:"recentErrors,omitempty" validate:"max=50,dive"`
	Environment  EnvironmentInput   `json:"environment,omitzero"`
}

// OperationInput is what the user was doing, as the app reports it.
type OperationInput struct {
	Name       string   `json:"name,omitempty" validate:"max=255,singleline"`
	RequestIDs []string `json:"requestIds,omitempty" validate:"max=50,dive,required,max=128,singleline"`
	OccurredAt string   `json:"occurredAt,omitempty" validate:"omitempty,rfc3339"`
	// HTTPStatus is a pointer so that an explicit 0 is rejected rather than read as absent.
	HTTPStatus   *int   `json:"httpStatus,omitempty" validate:"omitempty,httpstatus"`
	ErrorMessage string `json:"errorMessage,omitempty" validate:"maxbytes=4096"`
	Stack        string `json:"stack,omitempty" validate:"maxbytes=65536"`
}

// RecentErrorInput is one error the app saw before the report.
type RecentErrorInput struct {
	Message    string `json:"message" validate:"required,maxbytes=4096"`
	OccurredAt string `json:"occurredAt,omitempty" validate:"omitempty,rfc3339"`
	Source     string `json:"source,omitempty" validate:"max=255,singleline"`
}

// EnvironmentInput is what the browser tells the app about itself.
type EnvironmentInput struct {
	Locale   string `json:"locale,omitempty" validate:"omitempty,max=35,locale"`
	Timezone string `json:"timezone,omitempty" validate:"omitempty,max=64,timezone"`
	Screen   string `json:"screen,omitempty" validate:"omitempty,max=32,screen"`
	URL      string `json:"url,omitempty" validate:"omitempty,max=2048,httpurl"`
}

// ParserLimits bound what a Parser reads. A zero field takes its default.
type ParserLimits struct {
	// MaxReportBytes caps a JSON body and the report part of a multipart body (1 MiB).
	MaxReportBytes int64
	// MaxAttachments caps the number of attachment parts (5).
	MaxAttachments int
	// MaxAttachmentBytes caps the attachments of one report together (10 MiB).
	MaxAttachmentBytes int64
}

// Default limits; the JSM attachment limit is far higher, these keep a report's memory and
// Redis footprint small.
const (
	defaultMaxReportBytes     = 1 << 20
	defaultMaxAttachments     = 5
	defaultMaxAttachmentBytes = 10 << 20
)

// Parser decodes and validates reports. It holds the one validator instance of the server
// (validator caches struct metadata per instance) and is safe for concurrent use.
type Parser struct {
	limits   ParserLimits
	validate *validator.Validate
	shape    *shape
}

// NewParser returns a Parser enforcing the given limits.
func NewParser(l ParserLimits) *Parser {
	if l.MaxReportBytes <= 0 {
		l.MaxReportBytes = defaultMaxReportBytes
	}
	if l.MaxAttachments <= 0 {
		l.MaxAttachments = defaultMaxAttachments
	}
	if l.MaxAttachmentBytes <= 0 {
		l.MaxAttachmentBytes = defaultMaxAttachmentBytes
	}
	v := validator.New(validator.WithRequiredStructEnabled())
	// Error namespaces in JSON names, so that they translate straight into JSON pointers.
	v.RegisterTagNameFunc(func(f reflect.StructField) string {
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		return name
	})
	for tag, fn := range map[string]func(string) bool{
		"singleline": isSingleLine,
		"rfc3339":    isRFC3339,
		"locale":     isLocale,
		"timezone":   isTimezone,
		"screen":     isScreen,
		"httpurl":    isHTTPURL,
	} {
		// Registration fails only for an empty tag or nil function: a programming error.
		if err := v.RegisterValidation(tag, func(fl validator.FieldLevel) bool {
			return fn(fl.Field().String())
		}); err != nil {
			panic(err)
		}
	}
	if err := v.RegisterValidation("maxbytes", func(fl validator.FieldLevel) bool {
		n, err := strconv.Atoi(fl.Param())
		return err == nil && len(fl.Field().String()) <= n
	}); err != nil {
		panic(err)
	}
	if err := v.RegisterValidation("httpstatus", func(fl validator.FieldLevel) bool {
		n := fl.Field().Int()
		return n >= 100 && n <= 599
	}); err != nil {
		panic(err)
	}
	return &Parser{limits: l, validate: v, shape: shapeOf(reflect.TypeFor[Input]())}
}

// Limits returns the limits in force, defaults filled in.
func (p *Parser) Limits() ParserLimits { return p.limits }

// ParseJSON decodes and validates a report sent as a JSON body. Errors are *SyntaxError,
// *ValidationError (every problem at once) or ErrTooLarge.
func (p *Parser) ParseJSON(body []byte) (Input, error) {
	if int64(len(body)) > p.limits.MaxReportBytes {
		return Input{}, ErrTooLarge
	}
	return p.parse(body, "")
}

// parse is ParseJSON for a body already known to be within limits; part names the multipart
// part the JSON came from, for syntax errors.
//
// A well-formed, valid report, the usual case, is decoded once (parseFast). Anything else
// takes the checked path, which is the definition of what is accepted and the only source
// of errors; the fast path gives up wherever it might disagree with it.
func (p *Parser) parse(body []byte, part string) (Input, error) {
	if in, ok := p.parseFast(body); ok {
		return in, nil
	}
	return p.parseChecked(body, part)
}

// parseFast decodes body straight into Input and reports ok only when parseChecked would
// accept body and return the same Input. It uses the strict decoder of encoding/json/v2
// (github.com/go-json-experiment/json, the same code): names match exactly and only once,
// unknown members and trailing data are errors, and invalid UTF-8 is refused where
// encoding/json would replace it. Every such body takes the checked path, which alone
// words errors. Mistyped values make Unmarshal fail, and an integer out of int32 range that
// the checked path reads as -1 fails validation on both paths.
func (p *Parser) parseFast(body []byte) (Input, bool) {
	var in Input
	if jsonv2.Unmarshal(body, &in, jsonv2.RejectUnknownMembers(true)) != nil {
		return Input{}, false
	}
	normalize(&in)
	if p.validate.Struct(in) != nil {
		return Input{}, false
	}
	return in, true
}

// parseChecked decodes in two passes because encoding/json stops reporting at the first
// unknown field or mistyped value. The first pass decodes into generic values and checks
// their shape against Input, collecting every unknown field and wrong type with its path and
// dropping them; the second decodes what is left into Input, which then cannot fail, and
// validates it.
func (p *Parser) parseChecked(body []byte, part string) (Input, error) {
	raw, err := decodeGeneric(body, part)
	if err != nil {
		return Input{}, err
	}
	var errs fieldErrors
	cleaned, ok := p.shape.check(raw, "", &errs)
	if !ok {
		// Only the top level can get here with nothing left: it was not an object.
		return Input{}, errs.err()
	}
	clean, err := json.Marshal(cleaned)
	if err != nil {
		return Input{}, fmt.Errorf("re-encode report: %w", err)
	}
	var in Input
	dec := json.NewDecoder(bytes.NewReader(clean))
	dec.DisallowUnknownFields() // the shape check removed them; this guards against drift
	if err := dec.Decode(&in); err != nil {
		return Input{}, fmt.Errorf("decode checked report: %w", err)
	}
	normalize(&in)
	bad := slices.Clone(errs) // paths whose value was dropped: "required" there says nothing new
	p.validateInto(in, &errs, bad)
	slices.SortStableFunc(errs, func(a, b FieldError) int { return comparePointers(a.Path, b.Path) })
	if err := errs.err(); err != nil {
		return Input{}, err
	}
	return in, nil
}

// decodeGeneric decodes one JSON value, numbers kept as written, and rejects trailing data.
func decodeGeneric(body []byte, part string) (any, error) {
	if len(bytes.TrimSpace(body)) == 0 {
		return nil, &SyntaxError{Part: part, Offset: 0, Msg: "the body is empty; a JSON object is expected"}
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		var se *json.SyntaxError
		switch {
		case errors.As(err, &se):
			// encoding/json counts the bytes read, the offending one included.
			return nil, &SyntaxError{Part: part, Offset: max(se.Offset-1, 0), Msg: "invalid JSON"}
		case errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF):
			return nil, &SyntaxError{Part: part, Offset: int64(len(body)), Msg: "unexpected end of JSON"}
		default:
			return nil, &SyntaxError{Part: part, Offset: dec.InputOffset(), Msg: "invalid JSON"}
		}
	}
	end := dec.InputOffset()
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		// The data starts after the blanks that follow the value.
		off := end + int64(len(body[end:])-len(bytes.TrimLeft(body[end:], " \t\r\n")))
		return nil, &SyntaxError{Part: part, Offset: off, Msg: "unexpected data after the JSON object"}
	}
	return v, nil
}

// normalize trims what users pad by accident and neutralises control characters in
// free text. Multi-line fields keep tabs and line breaks; any other control character is
// replaced rather than rejected, because a report must not fail over an escape sequence in a
// pasted stack trace.
func normalize(in *Input) {
	in.Summary = strings.TrimSpace(in.Summary)
	in.Email = strings.TrimSpace(in.Email)
	in.Description = cleanText(in.Description)
	in.Operation.ErrorMessage = cleanText(in.Operation.ErrorMessage)
	in.Operation.Stack = cleanText(in.Operation.Stack)
	for i := range in.RecentErrors {
		in.RecentErrors[i].Message = cleanText(in.RecentErrors[i].Message)
	}
}

func cleanText(s string) string {
	if !strings.ContainsFunc(s, isForbiddenInText) {
		return s
	}
	return strings.Map(func(r rune) rune {
		if isForbiddenInText(r) {
			return utf8.RuneError
		}
		return r
	}, s)
}

func isForbiddenInText(r rune) bool {
	return isControl(r) && r != '\t' && r != '\n' && r != '\r'
}

// isControl covers C0, DEL, C1 and the Unicode line and paragraph separators, which some
// renderers treat as line breaks.
func isControl(r rune) bool {
	return r < 0x20 || (r >= 0x7f && r <= 0x9f) || r == 0x2028 || r == 0x2029
}

func (p *Parser) validateInto(in Input, errs *fieldErrors, dropped []FieldError) {
	err := p.validate.Struct(in)
	var verrs validator.ValidationErrors
	if !errors.As(err, &verrs) {
		if err != nil {
			// InvalidValidationError: only a nil or non-struct argument, impossible here.
			errs.add("", "could not be validated")
		}
		return
	}
	for _, fe := range verrs {
		path := namespaceToPointer(fe.Namespace())
		if slices.ContainsFunc(dropped, func(d FieldError) bool { return hasPointerPrefix(path, d.Path) }) {
			continue
		}
		errs.add(path, fieldMessage(fe))
	}
}

// fieldMessage says in plain words what rule a value broke. Library text never reaches a
// client: it names Go struct fields and is not written for end users.
func fieldMessage(fe validator.FieldError) string {
	switch fe.Tag() {
	case "required":
		if strings.HasSuffix(fe.Namespace(), "]") {
			return "must not be empty" // an array element, which is never absent
		}
		return "is required"
	case "max":
		if fe.Kind() == reflect.Slice {
			return "must have at most " + fe.Param() + " items"
		}
		return "must be at most " + fe.Param() + " characters"
	case "maxbytes":
		return "must be at most " + fe.Param() + " bytes"
	case "singleline":
		return "must be a single line without control characters"
	case "email":
		return "must be an email address"
	case "rfc3339":
		return "must be an RFC 3339 date and time, like 2025-01-31T14:05:00Z"
	case "httpstatus":
		return "must be an HTTP status code from 100 to 599"
	case "locale":
		return "must be a language tag, like en-US"
	case "timezone":
		return "must be a time zone name or offset, like Europe/Berlin or +01:00"
	case "screen":
		return "must be a screen size in pixels, like 1920x1080"
	case "httpurl":
		return "must be an absolute http or https URL"
	}
	return "is invalid"
}

// namespaceToPointer turns "Input.operation.requestIds[3]" into "/operation/requestIds/3".
func namespaceToPointer(ns string) string {
	_, rest, _ := strings.Cut(ns, ".") // drop the root type name
	var b strings.Builder
	for seg := range strings.SplitSeq(rest, ".") {
		name, idx, hasIdx := strings.Cut(seg, "[")
		b.WriteByte('/')
		b.WriteString(escapePointer(name))
		if hasIdx {
			b.WriteByte('/')
			b.WriteString(strings.TrimSuffix(idx, "]"))
		}
	}
	return b.String()
}

// escapePointer escapes a JSON pointer reference token (RFC 6901 section 3). Long keys are
// cut: the pointer is for people reading an error, and echoing a megabyte key is no help.
func escapePointer(s string) string {
	const maxKey = 128
	if len(s) > maxKey {
		s = strings.ToValidUTF8(s[:maxKey], "") + "…"
	}
	if !strings.ContainsAny(s, "~/") {
		return s // the usual case; building a Replacer per key cost more than the whole parse
	}
	return strings.ReplaceAll(strings.ReplaceAll(s, "~", "~0"), "/", "~1")
}

func hasPointerPrefix(path, prefix string) bool {
	return path == prefix || strings.HasPrefix(path, prefix+"/")
}

// comparePointers orders pointers segment by segment, numbers numerically, so that
// /recentErrors/2 comes before /recentErrors/10.
func comparePointers(a, b string) int {
	as, bs := strings.Split(a, "/"), strings.Split(b, "/")
	for i := 0; i < len(as) && i < len(bs); i++ {
		if as[i] == bs[i] {
			continue
		}
		an, aerr := strconv.Atoi(as[i])
		bn, berr := strconv.Atoi(bs[i])
		if aerr == nil && berr == nil {
			return an - bn
		}
		return strings.Compare(as[i], bs[i])
	}
	return len(as) - len(bs)
}

// shape is the JSON form of a Go type, derived once from Input's json tags so that the
// unknown-field and type checks cannot drift from the struct.
type shape struct {
	kind   reflect.Kind      // Struct, Slice, String or Int
	fields map[string]*shape // Struct
	elem   *shape            // Slice
}

func shapeOf(t reflect.Type) *shape {
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	s := &shape{kind: t.Kind()}
	switch t.Kind() {
	case reflect.Struct:
		s.fields = make(map[string]*shape)
		for f := range t.Fields() {
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			s.fields[name] = shapeOf(f.Type)
		}
	case reflect.Slice:
		s.elem = shapeOf(t.Elem())
	}
	return s
}

// check returns v without the members that do not fit the shape, recording each misfit.
// ok is false when v itself does not fit. A JSON null fits everything and means absent.
func (s *shape) check(v any, path string, errs *fieldErrors) (out any, ok bool) {
	if v == nil {
		return nil, true
	}
	switch s.kind {
	case reflect.Struct:
		m, isObj := v.(map[string]any)
		if !isObj {
			errs.add(path, "must be an object")
			return nil, false
		}
		out := make(map[string]any, len(m))
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		slices.Sort(keys) // map order is random; error order must not be
		for _, k := range keys {
			p := path + "/" + escapePointer(k)
			fs, known := s.fields[k]
			if !known {
				errs.add(p, "is not a known field")
				continue
			}
			if cv, ok := fs.check(m[k], p, errs); ok {
				out[k] = cv
			}
		}
		return out, true
	case reflect.Slice:
		a, isArr := v.([]any)
		if !isArr {
			errs.add(path, "must be an array")
			return nil, false
		}
		out := make([]any, len(a))
		for i, e := range a {
			// A misfit element becomes null so that later indexes keep their positions.
			out[i], _ = s.elem.check(e, path+"/"+strconv.Itoa(i), errs)
		}
		return out, true
	case reflect.String:
		if _, isStr := v.(string); !isStr {
			errs.add(path, "must be a string")
			return nil, false
		}
		return v, true
	case reflect.Int:
		n, isNum := v.(json.Number)
		if !isNum {
			errs.add(path, "must be an integer")
			return nil, false
		}
		if _, err := strconv.ParseInt(string(n), 10, 32); err != nil {
			if errors.Is(err, strconv.ErrRange) {
				// An integer, just far out of range: let the field's own rule say so.
				return json.Number("-1"), true
			}
			errs.add(path, "must be an integer")
			return nil, false
		}
		return v, true
	}
	return nil, false
}

func isSingleLine(s string) bool { return !strings.ContainsFunc(s, isControl) }

func isRFC3339(s string) bool {
	_, ok := parseRFC3339(s)
	return ok
}

// parseRFC3339 parses an RFC 3339 time into UTC. A time whose UTC year is outside 1-9999,
// such as "0000-01-01T00:00:00+01:00", is refused: no JSON time (the bundle, the queue) can
// hold it.
func parseRFC3339(s string) (time.Time, bool) {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, false
	}
	if t = t.UTC(); t.Year() < 1 || t.Year() > 9999 {
		return time.Time{}, false
	}
	return t, true
}

// isLocale accepts BCP 47-like tags ("en", "en-US", "zh-Hant-TW") and the underscore form
// some runtimes report ("en_US"). Full BCP 47 checking would reject real browsers' output
// for no gain: the value is only shown to an agent.
func isLocale(s string) bool {
	for i, sub := range strings.Split(strings.ReplaceAll(s, "_", "-"), "-") {
		if len(sub) > 8 || len(sub) < 1 || (i == 0 && len(sub) < 2) || !isAlnum(sub, i == 0) {
			return false
		}
	}
	return true
}

func isAlnum(s string, lettersOnly bool) bool {
	for _, c := range []byte(s) {
		letter := c|0x20 >= 'a' && c|0x20 <= 'z'
		digit := c >= '0' && c <= '9'
		if !letter && (lettersOnly || !digit) {
			return false
		}
	}
	return true
}

// isTimezone accepts IANA names ("America/Argentina/Buenos_Aires", "Etc/GMT+3") and
// offsets ("+05:30", "UTC"). It does not look the name up: the server's zone database need
// not match the browser's.
func isTimezone(s string) bool {
	for _, c := range []byte(s) {
		ok := c|0x20 >= 'a' && c|0x20 <= 'z' || c >= '0' && c <= '9' || strings.IndexByte("/_+-:.", c) >= 0
		if !ok {
			return false
		}
	}
	return s != ""
}

// isScreen accepts "<width>x<height>" in pixels.
func isScreen(s string) bool {
	w, h, ok := strings.Cut(s, "x")
	return ok && isDigits(w) && isDigits(h)
}

func isDigits(s string) bool {
	if s == "" || len(s) > 5 {
		return false
	}
	for _, c := range []byte(s) {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// isHTTPURL accepts absolute http(s) URLs with a host. Other schemes (javascript:, data:,
// file:) have no business in a page address and would be dangerous links in a ticket.
func isHTTPURL(s string) bool {
	if strings.ContainsFunc(s, func(r rune) bool { return isControl(r) || r == ' ' }) {
		return false
	}
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != "" && u.Hostname() != ""
}

package report

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// newTestParser returns a parser with the production defaults.
func newTestParser(t *testing.T) *Parser {
	t.Helper()
	return NewParser(ParserLimits{})
}

// withField returns the minimal valid report with one JSON member set (or replaced).
func withField(t *testing.T, path []string, v any) []byte {
	t.Helper()
	doc := map[string]any{"summary": "Export fails"}
	m := doc
	for _, k := range path[:len(path)-1] {
		next, ok := m[k].(map[string]any)
		if !ok {
			next = map[string]any{}
			m[k] = next
		}
		m = next
	}
	m[path[len(path)-1]] = v
	b, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func strs(n int, s string) []any {
	out := make([]any, n)
	for i := range out {
		out[i] = s
	}
	return out
}

func TestParseJSONValid(t *testing.T) {
	body := `{
		"summary": "  Export to CSV fails  ",
		"description": "I clicked Export.\nNothing happened.",
		"email": "ann@customer.example",
		"operation": {
			"name": "export.csv",
			"requestIds": ["req-1", "req-2"],
			"occurredAt": "2025-01-31T14:05:00.123+01:00",
			"httpStatus": 502,
			"errorMessage": "Bad gateway",
			"stack": "Error: boom\n    at export (app.js:10:5)"
		},
		"recentErrors": [{"message": "timeout", "occurredAt": "2025-01-31T14:04:00Z", "source": "api"}],
		"environment": {"locale": "en-US", "timezone": "Europe/Berlin", "screen": "1920x1080",
			"url": "https://acme.atlassian.net/jira/apps/x?y=1"}
	}`
	got, err := newTestParser(t).ParseJSON([]byte(body))
	if err != nil {
		t.Fatalf("ParseJSON: %v", err)
	}
	status := 502
	want := Input{
		Summary:     "Export to CSV fails",
		Description: "I clicked Export.\nNothing happened.",
		Email:       "ann@customer.example",
		Operation: OperationInput{
			Name:         "export.csv",
			RequestIDs:   []string{"req-1", "req-2"},
			OccurredAt:   "2025-01-31T14:05:00.123+01:00",
			HTTPStatus:   &status,
			ErrorMessage: "Bad gateway",
			Stack:        "Error: boom\n    at export (app.js:10:5)",
		},
		RecentErrors: []RecentErrorInput{{Message: "timeout", OccurredAt: "2025-01-31T14:04:00Z", Source: "api"}},
		Environment: EnvironmentInput{
			Locale: "en-US", Timezone: "Europe/Berlin", Screen: "1920x1080",
			URL: "https://acme.atlassian.net/jira/apps/x?y=1",
		},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("input (-want +got):\n%s", diff)
	}
}

// TestParseJSONRules has a case for every rule: the value just inside the limit passes and
// the value just outside fails with the exact path.
func TestParseJSONRules(t *testing.T) {
	p := newTestParser(t)
	long := func(n int) string { return strings.Repeat("a", n) }
	type want struct{ path, msg string }
	tests := []struct {
		name string
		body []byte
		want []want // nil: valid
	}{
		{"summary missing", []byte(`{}`), []want{{"/summary", "is required"}}},
		{"summary null", []byte(`{"summary":null}`), []want{{"/summary", "is required"}}},
		{"summary empty", withField(t, []string{"summary"}, ""), []want{{"/summary", "is required"}}},
		{"summary blank", withField(t, []string{"summary"}, " \t "), []want{{"/summary", "is required"}}},
		{"summary 255 runes", withField(t, []string{"summary"}, strings.Repeat("é", 255)), nil},
		{"summary 256", withField(t, []string{"summary"}, long(256)), []want{{"/summary", "must be at most 255 characters"}}},
		{"summary newline", withField(t, []string{"summary"}, "a\nb"), []want{{"/summary", "must be a single line without control characters"}}},
		{"summary bell", withField(t, []string{"summary"}, "a\u0007b"), []want{{"/summary", "must be a single line without control characters"}}},
		{"summary C1", withField(t, []string{"summary"}, "a\u0085b"), []want{{"/summary", "must be a single line without control characters"}}},
		{"summary line separator", withField(t, []string{"summary"}, "a\u2028b"), []want{{"/summary", "must be a single line without control characters"}}},
		{"summary number", []byte(`{"summary":5}`), []want{{"/summary", "must be a string"}}},

		{"description 32 KiB", withField(t, []string{"description"}, long(32768)), nil},
		{"description over", withField(t, []string{"description"}, long(32769)), []want{{"/description", "must be at most 32768 bytes"}}},
		{"description multi-line", withField(t, []string{"description"}, "a\r\n\tb"), nil},

		{"email valid", withField(t, []string{"email"}, "ann@customer.example"), nil},
		{"email invalid", withField(t, []string{"email"}, "ann(at)customer"), []want{{"/email", "must be an email address"}}},
		{"email too long", withField(t, []string{"email"}, long(250)+"@x.io"), []want{{"/email", "must be at most 254 characters"}}},

		{"operation not object", withField(t, []string{"operation"}, "x"), []want{{"/operation", "must be an object"}}},
		{"operation name 255", withField(t, []string{"operation", "name"}, long(255)), nil},
		{"operation name 256", withField(t, []string{"operation", "name"}, long(256)), []want{{"/operation/name", "must be at most 255 characters"}}},
		{"operation name tab", withField(t, []string{"operation", "name"}, "a\tb"), []want{{"/operation/name", "must be a single line without control characters"}}},
		{"requestIds 50", withField(t, []string{"operation", "requestIds"}, strs(50, "r")), nil},
		{"requestIds 51", withField(t, []string{"operation", "requestIds"}, strs(51, "r")), []want{{"/operation/requestIds", "must have at most 50 items"}}},
		{"requestId 128", withField(t, []string{"operation", "requestIds"}, []any{long(128)}), nil},
		{"requestId 129", withField(t, []string{"operation", "requestIds"}, []any{"a", "b", "c", long(129)}), []want{{"/operation/requestIds/3", "must be at most 128 characters"}}},
		{"requestId empty", withField(t, []string{"operation", "requestIds"}, []any{"a", ""}), []want{{"/operation/requestIds/1", "must not be empty"}}},
		{"requestId number", withField(t, []string{"operation", "requestIds"}, []any{7, "b"}), []want{{"/operation/requestIds/0", "must be a string"}}},
		{"requestIds not array", withField(t, []string{"operation", "requestIds"}, "r"), []want{{"/operation/requestIds", "must be an array"}}},
		{"occurredAt valid", withField(t, []string{"operation", "occurredAt"}, "2025-01-31T14:05:00Z"), nil},
		{"occurredAt no zone", withField(t, []string{"operation", "occurredAt"}, "2025-01-31T14:05:00"), []want{{"/operation/occurredAt", "must be an RFC 3339 date and time, like 2025-01-31T14:05:00Z"}}},
		{"occurredAt before year 1 in UTC", withField(t, []string{"operation", "occurredAt"}, "0000-01-01T00:00:00+01:00"), []want{{"/operation/occurredAt", "must be an RFC 3339 date and time, like 2025-01-31T14:05:00Z"}}},
		{"occurredAt words", withField(t, []string{"operation", "occurredAt"}, "yesterday"), []want{{"/operation/occurredAt", "must be an RFC 3339 date and time, like 2025-01-31T14:05:00Z"}}},
		{"httpStatus 100", withField(t, []string{"operation", "httpStatus"}, 100), nil},
		{"httpStatus 599", withField(t, []string{"operation", "httpStatus"}, 599), nil},
		{"httpStatus 99", withField(t, []string{"operation", "httpStatus"}, 99), []want{{"/operation/httpStatus", "must be an HTTP status code from 100 to 599"}}},
		{"httpStatus 600", withField(t, []string{"operation", "httpStatus"}, 600), []want{{"/operation/httpStatus", "must be an HTTP status code from 100 to 599"}}},
		{"httpStatus 0", withField(t, []string{"operation", "httpStatus"}, 0), []want{{"/operation/httpStatus", "must be an HTTP status code from 100 to 599"}}},
		{"httpStatus huge", []byte(`{"summary":"s","operation":{"httpStatus":123456789012345678901}}`), []want{{"/operation/httpStatus", "must be an HTTP status code from 100 to 599"}}},
		{"httpStatus fraction", []byte(`{"summary":"s","operation":{"httpStatus":500.5}}`), []want{{"/operation/httpStatus", "must be an integer"}}},
		{"httpStatus exponent", []byte(`{"summary":"s","operation":{"httpStatus":5e2}}`), []want{{"/operation/httpStatus", "must be an integer"}}},
		{"httpStatus string", withField(t, []string{"operation", "httpStatus"}, "500"), []want{{"/operation/httpStatus", "must be an integer"}}},
		{"errorMessage 4 KiB", withField(t, []string{"operation", "errorMessage"}, long(4096)), nil},
		{"errorMessage over", withField(t, []string{"operation", "errorMessage"}, long(4097)), []want{{"/operation/errorMessage", "must be at most 4096 bytes"}}},
		{"stack 64 KiB", withField(t, []string{"operation", "stack"}, long(65536)), nil},
		{"stack over", withField(t, []string{"operation", "stack"}, long(65537)), []want{{"/operation/stack", "must be at most 65536 bytes"}}},

		{"recentErrors 50", withField(t, []string{"recentErrors"}, recentErrors(50)), nil},
		{"recentErrors 51", withField(t, []string{"recentErrors"}, recentErrors(51)), []want{{"/recentErrors", "must have at most 50 items"}}},
		{"recentErrors not array", withField(t, []string{"recentErrors"}, map[string]any{}), []want{{"/recentErrors", "must be an array"}}},
		{"recentError not object", withField(t, []string{"recentErrors"}, []any{"boom"}), []want{{"/recentErrors/0", "must be an object"}}},
		{"recentError message missing", withField(t, []string{"recentErrors"}, []any{
			map[string]any{"message": "a"}, map[string]any{"message": "b"}, map[string]any{"source": "api"},
		}), []want{{"/recentErrors/2/message", "is required"}}},
		{"recentError message over", withField(t, []string{"recentErrors"}, []any{map[string]any{"message": long(4097)}}), []want{{"/recentErrors/0/message", "must be at most 4096 bytes"}}},
		{"recentError occurredAt", withField(t, []string{"recentErrors"}, []any{map[string]any{"message": "m"}, map[string]any{"message": "m", "occurredAt": "1/2/2025"}}), []want{{"/recentErrors/1/occurredAt", "must be an RFC 3339 date and time, like 2025-01-31T14:05:00Z"}}},
		{"recentError source over", withField(t, []string{"recentErrors"}, []any{map[string]any{"message": "m", "source": long(256)}}), []want{{"/recentErrors/0/source", "must be at most 255 characters"}}},

		{"locale en_US", withField(t, []string{"environment", "locale"}, "en_US"), nil},
		{"locale zh-Hant-TW", withField(t, []string{"environment", "locale"}, "zh-Hant-TW"), nil},
		{"locale words", withField(t, []string{"environment", "locale"}, "English (US)"), []want{{"/environment/locale", "must be a language tag, like en-US"}}},
		{"locale one letter", withField(t, []string{"environment", "locale"}, "e"), []want{{"/environment/locale", "must be a language tag, like en-US"}}},
		{"locale trailing dash", withField(t, []string{"environment", "locale"}, "en-"), []want{{"/environment/locale", "must be a language tag, like en-US"}}},
		{"locale 36", withField(t, []string{"environment", "locale"}, "en-aaaaaaaa-bbbbbbbb-cccccccc-dddddd"), []want{{"/environment/locale", "must be at most 35 characters"}}},
		{"timezone offset", withField(t, []string{"environment", "timezone"}, "+05:30"), nil},
		{"timezone iana", withField(t, []string{"environment", "timezone"}, "America/Argentina/Buenos_Aires"), nil},
		{"timezone bad chars", withField(t, []string{"environment", "timezone"}, "Europe/Berlin; x"), []want{{"/environment/timezone", "must be a time zone name or offset, like Europe/Berlin or +01:00"}}},
		{"timezone 65", withField(t, []string{"environment", "timezone"}, long(65)), []want{{"/environment/timezone", "must be at most 64 characters"}}},
		{"screen valid", withField(t, []string{"environment", "screen"}, "1920x1080"), nil},
		{"screen words", withField(t, []string{"environment", "screen"}, "large"), []want{{"/environment/screen", "must be a screen size in pixels, like 1920x1080"}}},
		{"screen three", withField(t, []string{"environment", "screen"}, "1x2x3"), []want{{"/environment/screen", "must be a screen size in pixels, like 1920x1080"}}},
		{"screen 33", withField(t, []string{"environment", "screen"}, long(33)), []want{{"/environment/screen", "must be at most 32 characters"}}},
		{"url http", withField(t, []string{"environment", "url"}, "http://localhost:8080/x"), nil},
		{"url 2048", withField(t, []string{"environment", "url"}, "https://a.example/"+long(2048-18)), nil},
		{"url 2049", withField(t, []string{"environment", "url"}, "https://a.example/"+long(2049-18)), []want{{"/environment/url", "must be at most 2048 characters"}}},
		{"url javascript", withField(t, []string{"environment", "url"}, "javascript:alert(1)"), []want{{"/environment/url", "must be an absolute http or https URL"}}},
		{"url relative", withField(t, []string{"environment", "url"}, "/jira/x"), []want{{"/environment/url", "must be an absolute http or https URL"}}},
		{"url no host", withField(t, []string{"environment", "url"}, "https:///x"), []want{{"/environment/url", "must be an absolute http or https URL"}}},
		{"url space", withField(t, []string{"environment", "url"}, "https://a.example/x y"), []want{{"/environment/url", "must be an absolute http or https URL"}}},
		{"environment not object", withField(t, []string{"environment"}, []any{}), []want{{"/environment", "must be an object"}}},

		{"unknown top-level", withField(t, []string{"sharedSecret"}, "x"), []want{{"/sharedSecret", "is not a known field"}}},
		{"unknown nested", withField(t, []string{"operation", "extra"}, 1), []want{{"/operation/extra", "is not a known field"}}},
		{"unknown in array item", withField(t, []string{"recentErrors"}, []any{map[string]any{"message": "m", "level": "x"}}), []want{{"/recentErrors/0/level", "is not a known field"}}},
		{"unknown key escaped", withField(t, []string{"a/b~c"}, 1), []want{{"/a~1b~0c", "is not a known field"}}},
		{"case matters", withField(t, []string{"Summary"}, "x"), []want{{"/Summary", "is not a known field"}}},
		{"not an object", []byte(`["summary"]`), []want{{"", "must be an object"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := p.ParseJSON(tt.body)
			var got []want
			if err != nil {
				var ve *ValidationError
				if !errors.As(err, &ve) {
					t.Fatalf("error %T %v, want *ValidationError", err, err)
				}
				for _, f := range ve.Fields {
					got = append(got, want{f.Path, f.Message})
				}
			}
			if diff := cmp.Diff(tt.want, got, cmp.AllowUnexported(want{})); diff != "" {
				t.Errorf("problems (-want +got):\n%s", diff)
			}
		})
	}
}

func recentErrors(n int) []any {
	out := make([]any, n)
	for i := range out {
		out[i] = map[string]any{"message": "m"}
	}
	return out
}

// TestParseJSONAllAtOnce checks that unknown fields, wrong types and rule violations are
// reported together, in document order, and that a mistyped field is not also "required".
func TestParseJSONAllAtOnce(t *testing.T) {
	body := `{"summary": 1, "bogus": true, "email": "nope",
		"operation": {"requestIds": ["a", 2, ""], "httpStatus": 42, "x": null},
		"recentErrors": [{"message": ""}, {"message": "m", "occurredAt": "now"}],
		"environment": {"url": "ftp://x", "screen": "big"}}`
	_, err := newTestParser(t).ParseJSON([]byte(body))
	var ve *ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("error %T %v, want *ValidationError", err, err)
	}
	want := []FieldError{
		{"/bogus", "is not a known field"},
		{"/email", "must be an email address"},
		{"/environment/screen", "must be a screen size in pixels, like 1920x1080"},
		{"/environment/url", "must be an absolute http or https URL"},
		{"/operation/httpStatus", "must be an HTTP status code from 100 to 599"},
		{"/operation/requestIds/1", "must be a string"},
		{"/operation/requestIds/2", "must not be empty"},
		{"/operation/x", "is not a known field"},
		{"/recentErrors/0/message", "is required"},
		{"/recentErrors/1/occurredAt", "must be an RFC 3339 date and time, like 2025-01-31T14:05:00Z"},
		{"/summary", "must be a string"},
	}
	if diff := cmp.Diff(want, ve.Fields); diff != "" {
		t.Errorf("problems (-want +got):\n%s", diff)
	}
}

func TestParseJSONErrorCap(t *testing.T) {
	var b strings.Builder
	b.WriteString(`{"summary":"s"`)
	for i := range 500 {
		b.WriteString(`,"k` + strconv.Itoa(i) + `":1`)
	}
	b.WriteString("}")
	_, err := newTestParser(t).ParseJSON([]byte(b.String()))
	var ve *ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("error %T %v, want *ValidationError", err, err)
	}
	if len(ve.Fields) != maxFieldErrors {
		t.Errorf("got %d problems, want the cap %d", len(ve.Fields), maxFieldErrors)
	}
}

func TestParseJSONSyntax(t *testing.T) {
	tests := []struct {
		name   string
		body   string
		offset int64
	}{
		{"empty", "", 0},
		{"blank", "  \n", 0},
		{"trailing comma", `{"summary":"x",}`, 15},
		{"bare word", `{"summary":nope}`, 12},
		{"truncated", `{"summary":"x"`, 14},
		{"two objects", `{"summary":"x"} {"summary":"y"}`, 16},
		{"trailing garbage", `{"summary":"x"}]`, 15},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := newTestParser(t).ParseJSON([]byte(tt.body))
			var se *SyntaxError
			if !errors.As(err, &se) {
				t.Fatalf("error %T %v, want *SyntaxError", err, err)
			}
			if se.Offset != tt.offset || se.Part != "" {
				t.Errorf("got offset %d part %q, want offset %d part \"\"", se.Offset, se.Part, tt.offset)
			}
		})
	}
}

func TestParseJSONTooLarge(t *testing.T) {
	p := NewParser(ParserLimits{MaxReportBytes: 100})
	body := withField(t, []string{"description"}, strings.Repeat("a", 100))
	if _, err := p.ParseJSON(body); !errors.Is(err, ErrTooLarge) {
		t.Errorf("got %v, want ErrTooLarge", err)
	}
}

// TestParseJSONNormalizes checks that multi-line text keeps its line breaks and loses other
// control characters, rather than failing the whole report.
func TestParseJSONNormalizes(t *testing.T) {
	body := withField(t, []string{"operation", "stack"}, "line1\n\tat x\u001b[31m\u0000")
	in, err := newTestParser(t).ParseJSON(body)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := in.Operation.Stack, "line1\n\tat x\uFFFD[31m\uFFFD"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

// fastPathCases are bodies on which a decoder less strict than the checked path would
// answer differently: keys in another case, repeated keys (a repeated object merges in
// encoding/json, a repeated null keeps the first value there), escaped keys, and values the
// checked path reads its own way.
var fastPathCases = []string{
	`{"summary":"s"}`,
	`{"summary":"s","Summary":"t"}`,
	`{"SUMMARY":"s"}`,
	`{"summary":"s","summary":"t"}`,
	`{"summary":"s","summary":null}`,
	`{"summary":null,"summary":"s"}`,
	`{"summary":"s","operation":{"name":"a"},"operation":{"stack":"b"}}`,
	`{"summary":"s","operation":{"name":"a","name":"b"}}`,
	`{"summary":"s","operation":{"requestIds":["a","b"],"requestIds":["c"]}}`,
	`{"summary":"s","operation":{"httpStatus":500,"httpStatus":null}}`,
	`{"summary":"s","recentErrors":[{"message":"m","message":null}]}`,
	`{"summary":"s","recentErrors":[{"message":"m","Source":"x"}]}`,
	`{"summary":"s","recentErrors":[null,{"message":"m"}]}`,
	`{"summary":"s","environment":{"locale":"en","LOCALE":"de"}}`,
	`{"summ\u0061ry":"s"}`,
	`{"summary":"s","x\"y":1}`,
	`{"summary":"s\"t\\","description":"\u2028 \ud800 <&>"}`,
	`{"summary":"s","operation":{"httpStatus":500.0}}`,
	`{"summary":"s","operation":{"httpStatus":5e2}}`,
	`{"summary":"s","operation":{"httpStatus":-0}}`,
	`{"summary":"s","operation":{"httpStatus":4294967796}}`,
	`{"summary":"s","operation":{"httpStatus":"500"}}`,
	`{"summary":"s","operation":null,"environment":null,"recentErrors":null}`,
	`{"summary":"s","recentErrors":[]}`,
	`{"summary":"s","operation":{"requestIds":[]}}`,
	` {"summary" : "s" , "email" : "a@b.example" } `,
	`{"summary":"s"} {}`,
	`{"summary":"s"}]`,
	`null`,
	`[]`,
	`"summary"`,
	"{\"summary\":\"s\xff\"}",
	"{\"summary\":\"s\",\"\xff\":1}",
}

// checkFastAgrees fails unless ParseJSON's answer (in, err) is exactly the checked path's,
// and unless the fast path accepts only what the checked path accepts, unchanged.
func checkFastAgrees(t *testing.T, p *Parser, body []byte, in Input, err error) {
	t.Helper()
	checked, cerr := p.parseChecked(body, "")
	if diff := cmp.Diff(checked, in); diff != "" {
		t.Fatalf("ParseJSON(%s) input (-checked +got):\n%s", body, diff)
	}
	if diff := cmp.Diff(fmt.Sprintf("%#v", cerr), fmt.Sprintf("%#v", err)); diff != "" {
		t.Fatalf("ParseJSON(%s) error (-checked +got):\n%s", body, diff)
	}
	if fast, ok := p.parseFast(body); ok {
		if cerr != nil {
			t.Fatalf("fast path accepted %s, checked path: %v", body, cerr)
		}
		if diff := cmp.Diff(checked, fast); diff != "" {
			t.Fatalf("fast path on %s (-checked +fast):\n%s", body, diff)
		}
	}
}

func TestParseJSONFastPathAgreesWithChecked(t *testing.T) {
	p := newTestParser(t)
	for _, body := range fastPathCases {
		in, err := p.ParseJSON([]byte(body))
		checkFastAgrees(t, p, []byte(body), in, err)
	}
	// The fast path must not be a dead letter: a plain valid report takes it.
	if _, ok := p.parseFast([]byte(`{"summary":"s","operation":{"requestIds":["a"],"httpStatus":500},"recentErrors":[{"message":"m"}]}`)); !ok {
		t.Error("a valid report missed the fast path")
	}
	// Escaped names are decoded alike on both paths, so only case and repeats matter here.
	for _, body := range []string{`{"Summary":"s"}`, `{"summary":"s","summary":null}`,
		`{"summary":"s","operation":{"name":"a"},"operation":{"stack":"b"}}`, "{\"summary\":\"s\xff\"}"} {
		if _, ok := p.parseFast([]byte(body)); ok {
			t.Errorf("fast path took %s", body)
		}
	}
}

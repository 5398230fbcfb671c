package jsm

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/supportbridge/supportbridge/internal/secret"
)

func TestRetryAfter(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		header string
		want   time.Duration
		ok     bool
	}{
		{"", 0, false},
		{"3", 3 * time.Second, true},
		{" 0 ", 0, true},
		{"-1", 0, false},
		{"soon", 0, false},
		{now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second, true},
		{now.Add(-time.Minute).Format(http.TimeFormat), 0, true},
		{"99999999999", 24 * time.Hour, true},
	}
	for _, tt := range tests {
		h := http.Header{}
		if tt.header != "" {
			h.Set("Retry-After", tt.header)
		}
		got, ok := retryAfter(h, now)
		if got != tt.want || ok != tt.ok {
			t.Errorf("retryAfter(%q) = %v, %v; want %v, %v", tt.header, got, ok, tt.want, tt.ok)
		}
	}
}

func TestBackoffBounds(t *testing.T) {
	p := retryPolicy{maxWait: 8 * time.Second, now: time.Now}
	lo, hi := 500*time.Millisecond, 8*time.Second
	for attempt := range 10 {
		step := min(lo<<attempt, hi)
		for range 50 {
			got := p.backoff(lo, hi, attempt, nil)
			if got < step/2 || got > step {
				t.Fatalf("backoff(attempt %d) = %v; want within [%v, %v]", attempt, got, step/2, step)
			}
		}
	}
	resp := &http.Response{StatusCode: http.StatusTooManyRequests, Header: http.Header{"Retry-After": {"3"}}}
	if got := p.backoff(lo, hi, 0, resp); got != 3*time.Second {
		t.Errorf("backoff with Retry-After 3 = %v; want 3s", got)
	}
	resp.Header.Set("Retry-After", "60")
	if got := p.backoff(lo, hi, 0, resp); got != hi {
		t.Errorf("backoff with Retry-After 60 = %v; want the cap %v", got, hi)
	}
}

func TestRetryPolicy(t *testing.T) {
	p := retryPolicy{maxWait: 10 * time.Second, now: time.Now}
	read := withRetry(context.Background(), repeatable)
	write := withRetry(context.Background(), writeOnce)
	status := func(code int, ra string) *http.Response {
		h := http.Header{}
		if ra != "" {
			h.Set("Retry-After", ra)
		}
		return &http.Response{StatusCode: code, Header: h}
	}
	dialErr := &url.Error{Op: "Post", URL: "http://x", Err: &net.OpError{Op: "dial", Err: errors.New("refused")}}
	tests := []struct {
		name string
		ctx  context.Context
		resp *http.Response
		err  error
		want bool
	}{
		{"read 500", read, status(500, ""), nil, true},
		{"write 500", write, status(500, ""), nil, false},
		{"write 502", write, status(502, ""), nil, false},
		{"write 503 bare", write, status(503, ""), nil, false},
		{"write 503 retry-after", write, status(503, "1"), nil, true},
		{"write 429", write, status(429, ""), nil, true},
		{"write 429 too long", write, status(429, "60"), nil, false},
		{"read 501", read, status(501, ""), nil, false},
		{"read 404", read, status(404, ""), nil, false},
		{"read reset", read, nil, io.ErrUnexpectedEOF, true},
		{"write reset", write, nil, io.ErrUnexpectedEOF, false},
		{"write dial refused", write, nil, dialErr, true},
		{"default is write once", context.Background(), status(500, ""), nil, false},
	}
	for _, tt := range tests {
		got, err := p.check(tt.ctx, tt.resp, tt.err)
		if got != tt.want || err != nil {
			t.Errorf("%s: check = %v, %v; want %v, nil", tt.name, got, err, tt.want)
		}
	}
}

func TestStatusError(t *testing.T) {
	tests := []struct {
		code      int
		ra        string
		writeOnce bool
		want      Kind
	}{
		{400, "", true, Permanent},
		{401, "", false, Permanent},
		{403, "", true, Permanent},
		{404, "", false, Permanent},
		{302, "", false, Permanent},
		{409, "", false, Permanent},
		{429, "2", true, Transient},
		{503, "2", true, Transient},
		{503, "", true, Ambiguous},
		{503, "", false, Transient},
		{500, "", true, Ambiguous},
		{504, "", true, Ambiguous},
		{500, "", false, Transient},
	}
	for _, tt := range tests {
		h := http.Header{}
		if tt.ra != "" {
			h.Set("Retry-After", tt.ra)
		}
		e := statusError("op", &http.Response{StatusCode: tt.code, Header: h}, tt.writeOnce, time.Now())
		if e.Kind != tt.want {
			t.Errorf("statusError(%d, Retry-After %q, writeOnce %v).Kind = %v; want %v", tt.code, tt.ra, tt.writeOnce, e.Kind, tt.want)
		}
		if tt.ra == "2" && e.RetryAfter != 2*time.Second {
			t.Errorf("statusError(%d).RetryAfter = %v; want 2s", tt.code, e.RetryAfter)
		}
	}
}

// What a 400 is about decides whether one report fails or /readyz turns red, so the
// bodies JSM and Jira answer are read for what they name: field names and i18n keys first,
// the English text as a fallback.
func TestSubjectOf(t *testing.T) {
	tests := []struct {
		name, body string
		want       Subject
	}{
		{"desk by key", `{"errorMessage":"The service desk does not exist.","i18nErrorMessage":{"i18nKey":"sd.service.desk.not.found","parameters":[]}}`, SubjectConfig},
		{"request type by key", `{"errorMessage":"x","i18nErrorMessage":{"i18nKey":"sd.request.type.not.found","parameters":[]}}`, SubjectConfig},
		{"request type by field", `{"errorMessages":[],"errors":{"requestTypeId":"invalid"}}`, SubjectConfig},
		{"field not on the request type", `{"errorMessage":"Your request could not be created. Field 'x' is not valid for this request type.","i18nErrorMessage":{"i18nKey":"sd.validation.request.creation.failure","parameters":[]}}`, SubjectConfig},
		{"unknown account", `{"errorMessage":"raiseOnBehalfOf names an account that does not exist.","i18nErrorMessage":{"i18nKey":"sd.request.create.invalid.user","parameters":[]}}`, SubjectCustomer},
		{"not a customer of this service desk", `{"errorMessage":"The customer is not a customer of this service desk."}`, SubjectCustomer},
		{"reporter by field", `{"errorMessages":[],"errors":{"reporter":"The reporter specified is not a user."}}`, SubjectCustomer},
		{"summary too long", `{"errorMessage":"Your request could not be created. Please check the fields have been correctly filled in. Summary must be less than 255 characters.","i18nErrorMessage":{"i18nKey":"sd.validation.request.creation.failure","parameters":[]}}`, SubjectInput},
		{"summary by field", `{"errorMessages":[],"errors":{"summary":"Summary must be less than 255 characters."}}`, SubjectInput},
		{"empty", ``, SubjectUnknown},
		{"not JSON", `<html>Bad Request</html>`, SubjectUnknown},
		{"empty object", `{}`, SubjectUnknown},
	}
	for _, tt := range tests {
		if got := subjectOf([]byte(tt.body)); got != tt.want {
			t.Errorf("%s: subjectOf = %v; want %v", tt.name, got, tt.want)
		}
	}
}

func TestErrorTextHasNoURL(t *testing.T) {
	err := transportError("search users", &url.Error{Op: "Get", URL: "https://x/rest?query=ann@example.com", Err: io.EOF}, false)
	if strings.Contains(err.Error(), "ann@example.com") || strings.Contains(err.Error(), "https://x") {
		t.Errorf("error text %q shows the URL", err.Error())
	}
	if !errors.Is(err, io.EOF) || KindOf(err) != Transient {
		t.Errorf("transportError = %v (kind %v); want a Transient wrapping EOF", err, KindOf(err))
	}
	wrapped := fmt.Errorf("deliver: %w", &Error{Op: "resolve customer", Status: 409, Kind: Transient})
	if !errors.Is(wrapped, ErrConflict) {
		t.Error("a 409 Error is not ErrConflict")
	}
	if KindOf(nil) != 0 || KindOf(errors.New("x")) != Transient {
		t.Error("KindOf of nil or a foreign error is wrong")
	}
}

func TestScrubQuery(t *testing.T) {
	in := `Get "https://x.example/rest/api/3/user/search?query=ann%40example.com&maxResults=50": EOF`
	got := scrubQuery(in)
	want := `Get "https://x.example/rest/api/3/user/search?[redacted]": EOF`
	if got != want {
		t.Errorf("scrubQuery = %q; want %q", got, want)
	}
}

func TestCleanSummaryAndFilename(t *testing.T) {
	if got := cleanSummary("  broken\r\nexport\tbutton "); got != "broken export button" {
		t.Errorf("cleanSummary = %q", got)
	}
	long := strings.Repeat("é", 300)
	if got := cleanSummary(long); len([]rune(got)) != maxSummary {
		t.Errorf("cleanSummary of 300 runes has %d runes; want %d", len([]rune(got)), maxSummary)
	}
	// Jira counts UTF-16 code units: 255 emoji are 510 of them. The cut never splits a
	// surrogate pair, wherever it falls.
	for _, in := range []string{strings.Repeat("😀", 255), "a" + strings.Repeat("😀", 254), strings.Repeat("😀", 127) + "a"} {
		got := cleanSummary(in)
		units := len(utf16.Encode([]rune(got)))
		if units > maxSummary || !utf8.ValidString(got) || strings.ContainsRune(got, utf8.RuneError) {
			t.Errorf("cleanSummary(%d runes) = %d UTF-16 units, valid %v", len([]rune(in)), units, utf8.ValidString(got))
		}
		if fits := len(utf16.Encode([]rune(in))) <= maxSummary; fits && got != in || !fits && units < maxSummary-1 {
			t.Errorf("cleanSummary(%q) = %q (%d units)", in, got, units)
		}
	}
	for in, want := range map[string]string{
		`C:\Users\ann\log.txt`:  "log.txt",
		"../../etc/passwd":      "passwd",
		"a\r\nb.txt":            "ab.txt",
		"":                      "attachment",
		"..":                    "attachment",
		`screen "shot".png`:     `screen "shot".png`,
		"/var/log/app/today.gz": "today.gz",
	} {
		if got := cleanFilename(in); got != want {
			t.Errorf("cleanFilename(%q) = %q; want %q", in, got, want)
		}
	}
}

func TestNewReportsAllProblems(t *testing.T) {
	_, err := New(Config{BaseURL: "ftp://x", ServiceDeskID: "ten", RequestTypeID: "", ProjectKey: `SUP" OR 1=1`})
	if err == nil {
		t.Fatal("New accepted a bad config")
	}
	for _, want := range []string{"BaseURL", "Email", "APIToken", "ServiceDeskID", "RequestTypeID", "ProjectKey"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("New error %q does not mention %s", err, want)
		}
	}
	_, err = New(Config{BaseURL: "https://u:p@x.example", Email: "a@b.example", APIToken: secret.New("t"),
		ServiceDeskID: "1", RequestTypeID: "2", ProjectKey: "SUP"})
	if err == nil {
		t.Error("New accepted credentials in BaseURL")
	}
}

func TestInputValidationIsPermanentAndOffline(t *testing.T) {
	c, err := New(Config{BaseURL: "http://127.0.0.1:1", Email: "a@b.example", APIToken: secret.New("t"),
		ServiceDeskID: "1", RequestTypeID: "2", ProjectKey: "SUP"})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	_, _, err1 := c.FindByMarker(ctx, `x" OR project = OTHER`)
	_, err2 := c.ResolveCustomer(ctx, "Ann <ann@example.com>", "Ann")
	_, err3 := c.AddComment(ctx, "SUP-1/../../x", "hi", true)
	_, err4 := c.CreateRequest(ctx, NewRequest{Summary: " ", RaiseOnBehalfOf: "acc"})
	for i, err := range []error{err1, err2, err3, err4} {
		var e *Error
		if !errors.As(err, &e) || e.Kind != Permanent || e.Status != 0 {
			t.Errorf("case %d: err = %v; want a Permanent validation error", i+1, err)
		}
	}
}

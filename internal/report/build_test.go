package report

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"regexp"
	"strings"
	"testing"
	"time"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"

	"github.com/supportbridge/supportbridge/internal/secret"
	"github.com/supportbridge/supportbridge/internal/tenant"
)

// canary stands in for the tenant's shared secret. It is made only of characters every
// field accepts (a locale subtag, a time zone, a URL path), so it can go everywhere.
const canary = "cAnArY7-x9Q2zT4w"

const (
	chromeWindows = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
	safariIOS     = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1"
	firefoxLinux  = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0"
)

var testNow = time.Date(2025, 1, 31, 14, 6, 10, 0, time.UTC)

func testContext() BuildContext {
	return BuildContext{
		ID: "r7x2kq4m5n6p7q8r9s2t3u4v5w", Marker: "sbmabcdefghijklmnopqrstuvwxyz",
		TenantKey: "client-key-1", AccountID: "5b10ac8d82e05b22cc7d4ef5",
		UserAgent: chromeWindows, Now: testNow, SharedSecret: canary,
	}
}

func testTenant() tenant.Tenant {
	return tenant.Tenant{
		ClientKey: "client-key-1", Key: "com.vendor.app", BaseURL: "https://acme.atlassian.net",
		DisplayURL: "https://jira.acme.example", ProductType: "jira",
		ServiceEntitlementNumber: "SEN-123", EntitlementID: "ent-1", EntitlementNumber: "E-1",
		OAuthClientID: "oauth-1", InstallationID: "ari:cloud:ecosystem::installation/1",
		CloudID: "cloud-1", SharedSecret: secret.New(canary), Installed: true,
	}
}

// canaryRequest is a multipart request with the canary in every field that can hold text,
// and in a text and a JSON attachment.
func canaryRequest(t *testing.T) (Input, []Attachment) {
	t.Helper()
	js, err := json.Marshal(map[string]any{
		"summary":     "Export fails " + canary,
		"email":       "ann@customer.example",
		"description": "I pasted my config: secret " + canary + "\nann@customer.example and bob@other.example were cc'd",
		"operation": map[string]any{
			"name":         "export-" + canary,
			"requestIds":   []string{"req-1", canary},
			"occurredAt":   "2025-01-31T14:05:00Z",
			"httpStatus":   500,
			"errorMessage": "upstream said " + canary,
			"stack":        "Error: " + canary + "\n    at export (app.js:1:2)",
		},
		"recentErrors": []map[string]any{{"message": "timeout " + canary, "source": "api-" + canary}},
		"environment": map[string]any{
			"locale": "en-" + canary, "timezone": "Etc/" + canary, "screen": "1920x1080",
			"url": "https://acme.atlassian.net/p/" + canary,
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	body, boundary := multipartBody(t,
		reportPart(string(js)),
		filePart("log-"+canary+".txt", "text/plain", []byte("line 1\nkey "+canary+" used\n")),
		filePart("data.json", "application/json", []byte(`{"note":"`+canary+`"}`)),
		filePart("shot.png", "image/png", pngBytes(t)),
	)
	in, atts, err := newTestParser(t).ParseMultipart(body, boundary)
	if err != nil {
		t.Fatalf("ParseMultipart: %v", err)
	}
	return in, atts
}

// TestBuildScrubsCanaryEverywhere puts the shared secret into every field and attachment
// and checks that nothing built from the report contains it any more.
func TestBuildScrubsCanaryEverywhere(t *testing.T) {
	in, atts := canaryRequest(t)
	c := testContext()
	c.UserAgent = chromeWindows + " " + canary
	r, out, err := Build(in, atts, c)
	if err != nil {
		t.Fatalf("Build: %v", err)
	}

	js, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	bundle, err := NewBundle(r, testTenant(), "com.vendor.app").JSON()
	if err != nil {
		t.Fatal(err)
	}
	outputs := map[string]string{
		"report":           string(js),
		"description":      RenderDescription(r),
		"internal comment": RenderInternalComment(r, testTenant(), "com.vendor.app"),
		"bundle":           string(bundle),
	}
	for _, a := range out {
		outputs["attachment "+a.Filename] = a.Filename + "\n" + string(a.Content)
	}
	for name, s := range outputs {
		if strings.Contains(s, canary) {
			t.Errorf("%s contains the shared secret:\n%s", name, s)
		}
	}

	// One count per occurrence: 12 fields, a file name and two attachment bodies.
	if got, want := r.Redactions["shared_secret"], 15; got != want {
		t.Errorf("shared_secret count: got %d, want %d (all counts %v)", got, want, r.Redactions)
	}
	if got, want := r.Redactions["email"], 1; got != want {
		t.Errorf("email count: got %d, want %d", got, want)
	}
	if !strings.Contains(r.Description, "ann@customer.example") || !strings.Contains(r.Description, "[email] were cc'd") {
		t.Errorf("description: the address the reporter typed must stay and others go: %q", r.Description)
	}
	if want := "Export fails [redacted]"; r.Summary != want {
		t.Errorf("summary: got %q, want %q", r.Summary, want)
	}
	// Binary content passes through untouched.
	if !bytes.Equal(out[2].Content, atts[2].Content) {
		t.Error("the PNG was modified")
	}
	// Sizes follow the scrubbed content, and the caller's attachments are left alone.
	for i, a := range out {
		if a.Size != int64(len(a.Content)) || r.Attachments[i] != a.AttachmentMeta {
			t.Errorf("attachment %d: meta %+v does not match content of %d bytes", i, a.AttachmentMeta, len(a.Content))
		}
	}
	if !strings.Contains(string(atts[0].Content), canary) {
		t.Error("Build modified the caller's attachment")
	}
}

func TestBuildReport(t *testing.T) {
	status := 502
	in := Input{
		Summary:     "Export fails",
		Description: "It broke.",
		Operation: OperationInput{
			Name: "export", RequestIDs: []string{"req-1"}, OccurredAt: "2025-01-31T15:05:00+01:00",
			HTTPStatus: &status, ErrorMessage: "Bad gateway", Stack: "at x",
		},
		RecentErrors: []RecentErrorInput{{Message: "timeout", OccurredAt: "2025-01-31T14:04:00Z", Source: "api"}},
		Environment:  EnvironmentInput{Locale: "de-DE", Timezone: "Europe/Berlin", Screen: "1280x800", URL: "https://acme.atlassian.net/x"},
	}
	atts := []Attachment{{AttachmentMeta: AttachmentMeta{Filename: "a.txt", MediaType: "text/plain", Size: 2}, Content: []byte("hi")}}
	got, gotAtts, err := Build(in, atts, testContext())
	if err != nil {
		t.Fatal(err)
	}
	meta := AttachmentMeta{ID: "r7x2kq4m5n6p7q8r9s2t3u4v5w-1", Filename: "a.txt", MediaType: "text/plain", Size: 2}
	want := Report{
		ID: "r7x2kq4m5n6p7q8r9s2t3u4v5w", TenantKey: "client-key-1", AccountID: "5b10ac8d82e05b22cc7d4ef5",
		ReceivedAt: testNow,
		Marker:     "sbmabcdefghijklmnopqrstuvwxyz", Summary: "Export fails", Description: "It broke.",
		Operation: Operation{
			Name: "export", RequestIDs: []string{"req-1"}, OccurredAt: time.Date(2025, 1, 31, 14, 5, 0, 0, time.UTC),
			HTTPStatus: 502, ErrorMessage: "Bad gateway", Stack: "at x",
		},
		RecentErrors: []RecentError{{Message: "timeout", OccurredAt: time.Date(2025, 1, 31, 14, 4, 0, 0, time.UTC), Source: "api"}},
		Environment: Environment{
			Locale: "de-DE", Timezone: "Europe/Berlin", Screen: "1280x800", URL: "https://acme.atlassian.net/x",
			UserAgent: chromeWindows, Browser: "Chrome", BrowserVersion: "131.0.0.0", OS: "Windows",
		},
		Attachments: []AttachmentMeta{meta},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("report (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]Attachment{{AttachmentMeta: meta, Content: []byte("hi")}}, gotAtts); diff != "" {
		t.Errorf("attachments (-want +got):\n%s", diff)
	}
}

// TestBuildKeepsTypedEmailAsHintOnly checks that a typed address is kept only as a hint:
// intake never says where an email came from (the worker asks the site), and a report
// without any address is accepted.
func TestBuildKeepsTypedEmailAsHintOnly(t *testing.T) {
	r, _, err := Build(Input{Summary: "s", Email: "  mallory@other.example "}, nil, testContext())
	if err != nil {
		t.Fatal(err)
	}
	if r.EmailHint != "mallory@other.example" || r.Email != "" || r.EmailSource != "" {
		t.Errorf("hint %q email %q source %q; want only the trimmed hint", r.EmailHint, r.Email, r.EmailSource)
	}
	r, _, err = Build(Input{Summary: "s"}, nil, testContext())
	if err != nil {
		t.Fatalf("no email at all: %v, want accepted", err)
	}
	if r.EmailHint != "" {
		t.Errorf("hint %q, want none", r.EmailHint)
	}
}

// TestBuildReporterEmailSurvives checks that the scrubber keeps the typed address, and only
// that one.
func TestBuildReporterEmailSurvives(t *testing.T) {
	c := testContext()
	in := Input{Summary: "s", Email: "zoe@customer.example", Description: "I am zoe@customer.example, ann@customer.example knows"}
	r, _, err := Build(in, nil, c)
	if err != nil {
		t.Fatal(err)
	}
	if want := "I am zoe@customer.example, [email] knows"; r.Description != want {
		t.Errorf("got %q, want %q", r.Description, want)
	}
}

func TestBuildUserAgent(t *testing.T) {
	tests := []struct {
		name, ua                 string
		browser, version, osName string
	}{
		{"Chrome on Windows", chromeWindows, "Chrome", "131.0.0.0", "Windows"},
		{"Safari on iOS", safariIOS, "Safari", "17.4", "iOS"},
		{"Firefox on Linux", firefoxLinux, "Firefox", "133.0", "Linux"},
		{"unknown", "curl/8.5.0", "", "", ""},
		{"empty", "", "", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := testContext()
			c.UserAgent = tt.ua
			r, _, err := Build(Input{Summary: "s"}, nil, c)
			if err != nil {
				t.Fatal(err)
			}
			got := [4]string{r.Environment.Browser, r.Environment.BrowserVersion, r.Environment.OS, r.Environment.UserAgent}
			want := [4]string{tt.browser, tt.version, tt.osName, tt.ua}
			if got != want {
				t.Errorf("got %q, want %q", got, want)
			}
		})
	}

	t.Run("long header is cut", func(t *testing.T) {
		c := testContext()
		c.UserAgent = chromeWindows + strings.Repeat(" x", 2000)
		r, _, err := Build(Input{Summary: "s"}, nil, c)
		if err != nil {
			t.Fatal(err)
		}
		if len(r.Environment.UserAgent) != maxUserAgent || r.Environment.Browser != "Chrome" {
			t.Errorf("got %d bytes, browser %q; want %d bytes, Chrome", len(r.Environment.UserAgent), r.Environment.Browser, maxUserAgent)
		}
	})
}

func TestBuildSummaryStaysWithinJSMLimit(t *testing.T) {
	// Eight-byte secrets become ten-byte markers, so a full summary could outgrow JSM's 255.
	sec := "Qz8#kP2!"
	c := testContext()
	c.SharedSecret = sec
	r, _, err := Build(Input{Summary: strings.Repeat(sec+" ", 28) + "abc"}, nil, c)
	if err != nil {
		t.Fatal(err)
	}
	if n := len([]rune(r.Summary)); n > 255 || strings.Contains(r.Summary, sec) {
		t.Errorf("summary has %d characters or the secret: %q", n, r.Summary)
	}
}

// Jira counts a summary's 255 characters in UTF-16 code units: a summary of 255 runes
// with emoji is too long for it, and is cut without splitting a character.
func TestBuildSummaryCountsUTF16(t *testing.T) {
	for _, in := range []string{
		strings.Repeat("😀", 255),       // 510 units
		"a" + strings.Repeat("😀", 254), // the cut falls in the middle of an emoji
		strings.Repeat("é", 255),       // 255 units: kept whole
	} {
		r, _, err := Build(Input{Summary: in}, nil, testContext())
		if err != nil {
			t.Fatal(err)
		}
		units := len(utf16.Encode([]rune(r.Summary)))
		if units > 255 || !utf8.ValidString(r.Summary) || !strings.HasPrefix(in, r.Summary) {
			t.Errorf("summary of %q: %d UTF-16 units, valid %v, a prefix %v", in, units, utf8.ValidString(r.Summary), strings.HasPrefix(in, r.Summary))
		}
		if len(utf16.Encode([]rune(in))) <= 255 && r.Summary != in {
			t.Errorf("summary that fits was cut: %q", r.Summary)
		}
		if units < 254 {
			t.Errorf("summary cut to %d units; want all that fits", units)
		}
	}
}

func TestBuildRejectsInputNotFromParser(t *testing.T) {
	if _, _, err := Build(Input{Summary: "s"}, nil, BuildContext{}); err == nil || errors.As(err, new(*ValidationError)) {
		t.Errorf("no id and marker: got %v, want a plain error", err)
	}
	in := Input{Summary: "s", RecentErrors: []RecentErrorInput{{Message: "m"}, {Message: "m", OccurredAt: "soon"}}}
	_, _, err := Build(in, nil, testContext())
	var ve *ValidationError
	if !errors.As(err, &ve) || len(ve.Fields) != 1 || ve.Fields[0].Path != "/recentErrors/1/occurredAt" {
		t.Errorf("bad time: got %v, want a *ValidationError at /recentErrors/1/occurredAt", err)
	}
}

func TestNewIDAndMarker(t *testing.T) {
	idRE := regexp.MustCompile(`^[a-z2-7]{26}$`)
	markerRE := regexp.MustCompile(`^sbm[a-z2-7]{26}$`)
	seen := map[string]bool{}
	for range 1000 {
		id, m := NewID(), NewMarker()
		if !idRE.MatchString(id) || !markerRE.MatchString(m) {
			t.Fatalf("id %q or marker %q has the wrong form", id, m)
		}
		if seen[id] || seen[m] {
			t.Fatalf("repeated value %q / %q", id, m)
		}
		seen[id], seen[m] = true, true
	}
}

func TestBodyHash(t *testing.T) {
	status := 500
	in := Input{Summary: "s", Operation: OperationInput{HTTPStatus: &status}}
	att := func(name, typ, content string) Attachment {
		return Attachment{AttachmentMeta: AttachmentMeta{Filename: name, MediaType: typ}, Content: []byte(content)}
	}
	base := BodyHash(in, []Attachment{att("a.txt", "text/plain", "x")})
	if !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(base) {
		t.Fatalf("hash %q is not hex SHA-256", base)
	}
	// The JSON body's spelling does not matter, only what it says.
	p := newTestParser(t)
	a, err := p.ParseJSON([]byte(`{"summary":"s","operation":{"httpStatus":500}}`))
	if err != nil {
		t.Fatal(err)
	}
	b, err := p.ParseJSON([]byte("{ \"operation\" : { \"httpStatus\" : 500 } ,\n \"summary\" : \"s\" }"))
	if err != nil {
		t.Fatal(err)
	}
	if BodyHash(a, nil) != BodyHash(b, nil) {
		t.Error("equivalent bodies hash differently")
	}
	other := 501
	differ := map[string]string{
		"summary":        BodyHash(Input{Summary: "t", Operation: in.Operation}, []Attachment{att("a.txt", "text/plain", "x")}),
		"status":         BodyHash(Input{Summary: "s", Operation: OperationInput{HTTPStatus: &other}}, []Attachment{att("a.txt", "text/plain", "x")}),
		"content":        BodyHash(in, []Attachment{att("a.txt", "text/plain", "y")}),
		"name":           BodyHash(in, []Attachment{att("b.txt", "text/plain", "x")}),
		"boundary moved": BodyHash(in, []Attachment{att("a.txttext/", "plain", "x")}),
		"no attachment":  BodyHash(in, nil),
		"two":            BodyHash(in, []Attachment{att("a.txt", "text/plain", "x"), att("a.txt", "text/plain", "x")}),
	}
	for name, h := range differ {
		if h == base {
			t.Errorf("%s: same hash as the base request", name)
		}
	}
}

// TestBodyHashIsStable pins the encoding: a change of it would turn every replay of a
// request made before a deploy into a 422 mismatch for as long as its key is kept.
func TestBodyHashIsStable(t *testing.T) {
	status := 404
	in := Input{Summary: "<b>&amp; ü \u2028", Email: "a@b.example", Operation: OperationInput{HTTPStatus: &status, RequestIDs: []string{"r1"}},
		RecentErrors: []RecentErrorInput{{Message: "m"}}, Environment: EnvironmentInput{Locale: "en"}}
	atts := []Attachment{{AttachmentMeta: AttachmentMeta{Filename: "a.png", MediaType: "image/png"}, Content: []byte("png")}}
	h := sha256.New()
	field := func(b []byte) {
		h.Write(binary.BigEndian.AppendUint64(nil, uint64(len(b))))
		h.Write(b)
	}
	field([]byte("supportbridge report v1"))
	js, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	field(js)
	sum := sha256.Sum256(atts[0].Content)
	field([]byte("a.png"))
	field([]byte("image/png"))
	field(sum[:])
	if got, want := BodyHash(in, atts), hex.EncodeToString(h.Sum(nil)); got != want {
		t.Errorf("BodyHash = %s, want %s (SHA-256 of the length-prefixed JSON of the input and files)", got, want)
	}
}

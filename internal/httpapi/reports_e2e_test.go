package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/supportbridge/supportbridge/internal/agentauth"
	"github.com/supportbridge/supportbridge/internal/config"
	"github.com/supportbridge/supportbridge/internal/delivery"
	"github.com/supportbridge/supportbridge/internal/jsm"
	"github.com/supportbridge/supportbridge/internal/jsmsandbox"
	"github.com/supportbridge/supportbridge/internal/jsmsandbox/jsmtest"
	"github.com/supportbridge/supportbridge/internal/redisstore"
	"github.com/supportbridge/supportbridge/internal/report"
	"github.com/supportbridge/supportbridge/internal/secret"
)

// fakeEmails stands in for the reporter's site as the delivery worker asks it
// (delivery.Sites; the real siteapi.Emails is tested against the site sandbox in package
// siteapi, and the binary's wiring in cmd/supportbridge).
type fakeEmails struct {
	mu    sync.Mutex
	email string
	calls int
	last  delivery.Reporter // whom the worker asked about last
	// hang, when set, makes every call wait for ctx: a site that accepts connections and
	// never answers.
	hang bool
}

func (f *fakeEmails) VerifiedEmail(ctx context.Context, r delivery.Reporter) (string, error) {
	f.mu.Lock()
	f.calls++
	f.last = r
	hang := f.hang
	f.mu.Unlock()
	if hang {
		<-ctx.Done()
		return "", ctx.Err()
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.email == "" {
		return "", fmt.Errorf("%w: no email scope", delivery.ErrNoVerifiedEmail)
	}
	return f.email, nil
}

// setEmail sets what the site answers; the worker may be asking at the same time.
func (f *fakeEmails) setEmail(email string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.email = email
}

func (f *fakeEmails) callCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls
}

// reportHarness is the full intake path: router, real Redis, the delivery worker and the
// spec-validated JSM sandbox over real HTTP.
type reportHarness struct {
	*harness
	rdb     redis.UniversalClient
	sandbox *jsmsandbox.Sandbox
	reports *redisstore.Reports
	emails  *fakeEmails
	jsm     *jsm.Client
}

func newReportHarness(t *testing.T, env map[string]string) *reportHarness {
	t.Helper()
	return newReportHarnessWith(t, reportHarnessOptions{Env: env})
}

// reportHarnessOptions varies the report harness. Without a worker of its own the test runs
// workers itself (startWorker); OnCall is told of every call the sandbox answered.
type reportHarnessOptions struct {
	Env      map[string]string
	NoWorker bool
	OnCall   func(jsmsandbox.Call)
}

func newReportHarnessWith(t *testing.T, ho reportHarnessOptions) *reportHarness {
	t.Helper()
	env := ho.Env
	rh := &reportHarness{emails: &fakeEmails{}}
	var worker *delivery.Worker
	sb, sbSrv := jsmtest.NewTestServer(t, jsmsandbox.Options{Email: "svc@vendor.example", APIToken: "jsm-api-token", ClosedDesk: true, OnCall: ho.OnCall})
	rh.sandbox = sb
	rh.harness = newHarness(t, func(e map[string]string, o *Options) {
		for k, v := range env {
			e[k] = v
		}
		rdb, err := redisstore.NewClient(config.Redis{URL: e["SB_REDIS_URL"]})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { rdb.Close() })
		rh.rdb = rdb
		rh.reports = redisstore.NewReports(rdb, redisstore.ReportsOptions{CustomerKey: []byte("k")})
		o.Intake, o.Retrier = rh.reports, rh.reports
		agents, err := agentauth.New(agentauth.Options{TokensFile: writeAgentTokens(t)})
		if err != nil {
			t.Fatal(err)
		}
		o.Consent.Agents = agents
		// As in the binary: readiness includes the worker's view of the JSM configuration.
		o.Ready = func(ctx context.Context) error {
			if err := redisstore.Ping(ctx, rdb); err != nil {
				return err
			}
			if worker != nil {
				if err := worker.Healthy(); err != nil {
					return &ReadinessError{Detail: err.Error()}
				}
			}
			return nil
		}
	})
	client, err := jsm.New(jsm.Config{BaseURL: sbSrv.URL, Email: "svc@vendor.example", APIToken: secret.New("jsm-api-token"),
		ServiceDeskID: "10", RequestTypeID: "11", ProjectKey: "SUP", Timeout: 5 * time.Second, Logger: rh.server.log})
	if err != nil {
		t.Fatal(err)
	}
	rh.jsm = client
	if ho.NoWorker {
		return rh
	}
	ctx, cancel := context.WithCancel(context.Background())
	var done <-chan struct{}
	worker, done = rh.startWorker(ctx, time.Second)
	t.Cleanup(func() { cancel(); <-done })
	return rh
}

// startWorker runs a delivery worker until ctx ends, as the binary's worker role does, and
// returns once it is running; done is closed when it has stopped.
func (rh *reportHarness) startWorker(ctx context.Context, claimIdle time.Duration) (w *delivery.Worker, done <-chan struct{}) {
	rh.t.Helper()
	w = delivery.NewWorker(delivery.Options{
		Store: rh.reports, JSM: jsm.ForDelivery(rh.jsm), Sites: rh.emails, Tenants: rh.tenants, Render: report.Renderer{AppKey: testAppKey},
		Concurrency: 4, ClaimIdle: claimIdle, Logger: rh.server.log,
	})
	stopped := make(chan struct{})
	go func() { defer close(stopped); w.Run(ctx) }()
	for deadline := time.Now().Add(10 * time.Second); w.Healthy() != nil; time.Sleep(5 * time.Millisecond) {
		select {
		case <-stopped:
			return w, stopped // stopped before it was ever healthy: ctx ended early
		default:
		}
		if time.Now().After(deadline) {
			rh.t.Fatalf("worker did not start: %v", w.Healthy())
		}
	}
	return w, stopped
}

func (rh *reportHarness) post(token string, headers map[string]string, body []byte, contentType string) (int, http.Header, []byte) {
	rh.t.Helper()
	h := map[string]string{"Authorization": "JWT " + token, "Content-Type": contentType,
		"User-Agent": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36"}
	for k, v := range headers {
		h[k] = v
	}
	return rh.do("POST", "/api/v1/reports", h, body)
}

// waitDelivered polls the status route until the report is delivered.
func (rh *reportHarness) waitDelivered(token, id string) report.Status {
	rh.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		st, _, b := rh.do("GET", "/api/v1/reports/"+id, map[string]string{"Authorization": "JWT " + token}, nil)
		var s report.Status
		json.Unmarshal(b, &s)
		if st == 200 && s.State == report.StateDelivered {
			return s
		}
		if s.State == report.StateFailed || time.Now().After(deadline) {
			rh.t.Fatalf("report %s not delivered: %d %s", id, st, b)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func multipartReport(t *testing.T, reportJSON string, files map[string][]byte) ([]byte, string) {
	t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	h := textproto.MIMEHeader{}
	h.Set("Content-Disposition", `form-data; name="report"`)
	h.Set("Content-Type", "application/json")
	p, _ := mw.CreatePart(h)
	p.Write([]byte(reportJSON))
	for name, content := range files {
		fw, _ := mw.CreateFormFile("attachment", name)
		fw.Write(content)
	}
	mw.Close()
	return buf.Bytes(), mw.FormDataContentType()
}

var pngBytes = []byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89\x00\x00\x00\rIDATx\x9cc\xf8\xff\xff?\x00\x05\xfe\x02\xfe\xa7\x35\x81\x84\x00\x00\x00\x00IEND\xaeB`\x82")

func TestReportBecomesOneRequestOnBehalfOfTheUser(t *testing.T) {
	rh := newReportHarness(t, nil)
	rh.install("client-r", secretA)
	rh.emails.setEmail("jane@customer.example")
	tok := contextToken(t, "client-r", secretA, "557058:jane", nil)
	body, ct := multipartReport(t, `{"summary":"Export fails","description":"It broke","operation":{"name":"export","httpStatus":500,"errorMessage":"boom","requestIds":["req-1"]},"environment":{"locale":"en-GB","timezone":"Europe/London","screen":"1920x1080","url":"https://acme.atlassian.net/jira/x"}}`,
		map[string][]byte{"screen.png": pngBytes, "console.txt": []byte("TypeError: x is undefined\n")})
	st, hdr, b := rh.post(tok, map[string]string{"Idempotency-Key": "key-1"}, body, ct)
	if st != http.StatusAccepted {
		t.Fatalf("create: %d %s", st, b)
	}
	var acc struct{ ID, Status, StatusURL string }
	json.Unmarshal(b, &acc)
	if acc.Status != "queued" || !strings.HasSuffix(acc.StatusURL, "/api/v1/reports/"+acc.ID) || hdr.Get("Location") != acc.StatusURL {
		t.Errorf("accepted body = %s", b)
	}
	s := rh.waitDelivered(tok, acc.ID)
	if s.TicketKey == "" || !strings.Contains(s.TicketURL, s.TicketKey) {
		t.Errorf("status lacks the ticket: %+v", s)
	}

	// A replay with the same key names the same report and makes no second ticket.
	st, hdr, b = rh.post(tok, map[string]string{"Idempotency-Key": "key-1"}, body, ct)
	var replay struct{ ID string }
	json.Unmarshal(b, &replay)
	if st != http.StatusAccepted || replay.ID != acc.ID || hdr.Get("Idempotent-Replayed") != "true" {
		t.Errorf("replay: %d %s", st, b)
	}
	other, otherCT := multipartReport(t, `{"summary":"Something else"}`, nil)
	if st, hdr, b := rh.post(tok, map[string]string{"Idempotency-Key": "key-1"}, other, otherCT); st != http.StatusUnprocessableEntity {
		t.Errorf("same key, different body: %d %s", st, b)
	} else {
		decodeProblem(t, hdr, b)
	}

	reqs := rh.sandbox.Requests()
	if len(reqs) != 1 {
		t.Fatalf("sandbox has %d requests, want 1", len(reqs))
	}
	r := reqs[0]
	var jane string
	for _, c := range rh.sandbox.Customers() {
		if c.Email == "jane@customer.example" {
			jane = c.AccountID
		}
	}
	if jane == "" || r.ReporterAccountID != jane {
		t.Errorf("request raised for %q, want jane's account %q", r.ReporterAccountID, jane)
	}
	var public, internal []string
	for _, a := range r.Attachments {
		if a.Public {
			public = append(public, a.Filename)
		} else {
			internal = append(internal, a.Filename)
		}
	}
	if len(public) != 2 || len(internal) != 1 || !strings.HasPrefix(internal[0], "support-bundle") {
		t.Errorf("attachments public=%v internal=%v", public, internal)
	}
	var internalComments int
	for _, c := range r.Comments {
		if !c.Public && !strings.HasPrefix(c.Body, "[^") { // JSM notes attachments in a comment of their own
			internalComments++
			if !strings.Contains(c.Body, `client\-r`) {
				t.Errorf("internal comment lacks the account data: %.300s", c.Body)
			}
		}
	}
	if internalComments != 1 {
		t.Errorf("%d internal comments, want 1", internalComments)
	}
	for _, want := range []string{"Export fails", "boom", `req\-1`, "Chrome"} {
		if !strings.Contains(r.Summary+r.Description, want) {
			t.Errorf("request lacks %q:\n%s", want, r.Description)
		}
	}
	// Another tenant cannot read the report.
	rh.install("client-other", secretA+"x")
	otherTok := contextToken(t, "client-other", secretA+"x", "557058:x", nil)
	if st, _, _ := rh.do("GET", "/api/v1/reports/"+acc.ID, map[string]string{"Authorization": "JWT " + otherTok}, nil); st != 404 {
		t.Errorf("other tenant reads the report: %d", st)
	}
}

// TestCanarySecretNeverLeaves puts the tenant's shared secret into every field and checks it
// reaches neither JSM, nor Redis in plain text, nor our logs.
func TestCanarySecretNeverLeaves(t *testing.T) {
	rh := newReportHarness(t, nil)
	const canary = "canary-shared-secret-5f1e2d3c4b"
	rh.install("client-c", canary)
	tok := contextToken(t, "client-c", canary, "557058:carl", nil)
	js := fmt.Sprintf(`{"summary":"s %[1]s","description":"d %[1]s","email":"carl@customer.example","operation":{"name":"%[1]s","requestIds":["%[1]s"],"errorMessage":"%[1]s","stack":"%[1]s"},"recentErrors":[{"message":"%[1]s","source":"%[1]s"}],"environment":{"locale":"en","timezone":"UTC","screen":"1x1","url":"https://acme.atlassian.net/?x=%[1]s"}}`, canary)
	body, ct := multipartReport(t, js, map[string][]byte{"log.txt": []byte("secret is " + canary + "\n"), "data.json": []byte(`{"k":"` + canary + `"}`)})
	st, _, b := rh.post(tok, nil, body, ct)
	if st != http.StatusAccepted {
		t.Fatalf("create: %d %s", st, b)
	}
	var acc struct{ ID string }
	json.Unmarshal(b, &acc)
	rh.waitDelivered(tok, acc.ID)

	for i, body := range rh.sandbox.AllBodies() {
		if bytes.Contains(body, []byte(canary)) {
			t.Errorf("JSM call %d carried the shared secret", i)
		}
	}
	ctx := context.Background()
	keys, _ := rh.rdb.Keys(ctx, "*").Result()
	for _, k := range keys {
		if strings.Contains(k, canary) {
			t.Errorf("a Redis key holds the secret: %s", k)
		}
		dump, _ := rh.rdb.Dump(ctx, k).Result()
		if strings.Contains(dump, canary) {
			t.Errorf("Redis key %s holds the secret in plain text", k)
		}
	}
	if strings.Contains(rh.logs.String(), canary) {
		t.Error("our logs hold the secret")
	}
	if len(keys) == 0 {
		t.Fatal("no keys scanned")
	}
}

// The request is raised on behalf of the email the reporter's site confirms, asked by the
// worker, never by intake; the address typed into the report is only a hint.
func TestReportRaisedForTheEmailTheSiteConfirms(t *testing.T) {
	rh := newReportHarness(t, nil)
	rh.install("client-e", secretA)
	rh.emails.setEmail("from-host@customer.example")
	tok := contextToken(t, "client-e", secretA, "557058:host", nil)
	st, _, b := rh.post(tok, nil, []byte(`{"summary":"typed another address","email":"someone-else@other.example"}`), "application/json")
	if st != http.StatusAccepted {
		t.Fatalf("create: %d %s", st, b)
	}
	var acc struct{ ID string }
	json.Unmarshal(b, &acc)
	s := rh.waitDelivered(tok, acc.ID)
	if s.EmailSource != report.EmailFromSite {
		t.Errorf("status says emailSource %q, want site", s.EmailSource)
	}
	var host string
	for _, c := range rh.sandbox.Customers() {
		if c.Email == "someone-else@other.example" {
			t.Errorf("a customer was made of the typed address")
		}
		if c.Email == "from-host@customer.example" {
			host = c.AccountID
		}
	}
	if host == "" || rh.emails.callCount() == 0 {
		t.Fatalf("customer from the site's email not created (calls %d)", rh.emails.callCount())
	}
	r := rh.sandbox.Requests()[0]
	if r.ReporterAccountID != host {
		t.Errorf("raised by %q, want the site-confirmed customer %q", r.ReporterAccountID, host)
	}
	for _, a := range r.Attachments {
		if strings.HasPrefix(a.Filename, "support-bundle") && !bytes.Contains(a.Content, []byte(`"emailSource": "site"`)) {
			t.Errorf("bundle does not say the email came from the site: %s", a.Content)
		}
	}
}

// Intake answers from Redis alone: with the reporter's site hanging, reports are still
// accepted at once, while the worker waits on the site.
func TestIntakeDoesNotWaitOnAHangingSite(t *testing.T) {
	rh := newReportHarness(t, nil)
	rh.install("client-h", secretA)
	rh.emails.mu.Lock()
	rh.emails.hang = true
	rh.emails.mu.Unlock()
	tok := contextToken(t, "client-h", secretA, "557058:hang", nil)
	var slowest time.Duration
	for i := range 8 { // under the per-user limit
		start := time.Now()
		st, _, b := rh.post(tok, nil, []byte(fmt.Sprintf(`{"summary":"report %d"}`, i)), "application/json")
		slowest = max(slowest, time.Since(start))
		if st != http.StatusAccepted {
			t.Fatalf("report %d: %d %s", i, st, b)
		}
	}
	// The worker is stuck on the site, which shows the site really hangs.
	for deadline := time.Now().Add(10 * time.Second); rh.emails.callCount() == 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the worker never asked the site")
		}
	}
	// Generous: a request that waited on the site would take its whole timeout.
	if slowest > 2*time.Second {
		t.Errorf("slowest intake took %v with the site hanging", slowest)
	}
}

// When the site confirms no email, a typed address must not become the customer: a user
// of one tenant must not file a request as a person of another company. The request is
// raised by the service account, the hint is in the internal comment only, and the status
// tells the app so.
func TestReportWithoutAConfirmedEmailIsRaisedByTheServiceAccount(t *testing.T) {
	rh := newReportHarness(t, nil)
	rh.install("client-u", secretA)
	tok := contextToken(t, "client-u", secretA, "557058:nobody", nil)
	st, _, b := rh.post(tok, nil, []byte(`{"summary":"Your account will be suspended","email":"victim@other.example"}`), "application/json")
	if st != http.StatusAccepted {
		t.Fatalf("create: %d %s", st, b)
	}
	var acc struct{ ID string }
	json.Unmarshal(b, &acc)
	s := rh.waitDelivered(tok, acc.ID)
	if s.EmailSource != report.EmailUnverified {
		t.Errorf("status says emailSource %q, want unverified", s.EmailSource)
	}
	for _, c := range rh.sandbox.Customers() {
		if c.Email == "victim@other.example" {
			t.Fatalf("the typed address became a customer: %+v", c)
		}
	}
	r := rh.sandbox.Requests()[0]
	if r.ReporterAccountID != rh.sandbox.ServiceAccountID() {
		t.Errorf("raised by %q, want the service account", r.ReporterAccountID)
	}
	if strings.Contains(r.Description, "victim@") {
		t.Errorf("the public description names the typed address: %q", r.Description)
	}
	var internal string
	for _, c := range r.Comments {
		if !c.Public {
			internal += c.Body
		}
	}
	if !strings.Contains(internal, "victim@other.example") || !strings.Contains(internal, "unverified") {
		t.Errorf("internal comment lacks the unverified hint:\n%s", internal)
	}
	for _, a := range r.Attachments {
		if strings.HasPrefix(a.Filename, "support-bundle") &&
			(!bytes.Contains(a.Content, []byte(`"emailSource": "unverified"`)) || bytes.Contains(a.Content, []byte("victim@"))) {
			t.Errorf("bundle: %s", a.Content)
		}
	}
}

func TestReportBadInput(t *testing.T) {
	rh := newReportHarness(t, map[string]string{"SB_REPORT_RATE_PER_USER": "3"})
	rh.install("client-b", secretA)
	tok := contextToken(t, "client-b", secretA, "557058:bad", nil)
	bigFile := bytes.Repeat([]byte("a"), 11<<20)
	bigBody, bigCT := multipartReport(t, `{"summary":"x","email":"a@b.example"}`, map[string][]byte{"big.txt": bigFile})
	exe, exeCT := multipartReport(t, `{"summary":"x","email":"a@b.example"}`, map[string][]byte{"x.png": []byte("MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff")})
	cases := []struct {
		name   string
		body   []byte
		ct     string
		hdr    map[string]string
		status int
		field  string
	}{
		{"malformed json", []byte(`{"summary":`), "application/json", nil, 400, ""},
		{"missing summary", []byte(`{"email":"a@b.example"}`), "application/json", nil, 400, "/summary"},
		{"summary too long", []byte(`{"summary":"` + strings.Repeat("s", 256) + `","email":"a@b.example"}`), "application/json", nil, 400, "/summary"},
		{"bad status", []byte(`{"summary":"x","email":"a@b.example","operation":{"httpStatus":99}}`), "application/json", nil, 400, "/operation/httpStatus"},
		{"unknown field", []byte(`{"summary":"x","email":"a@b.example","extra":1}`), "application/json", nil, 400, "/extra"},
		{"email hint not an address", []byte(`{"summary":"x","email":"not-an-address"}`), "application/json", nil, 400, "/email"},
		{"bad idempotency key", []byte(`{"summary":"x","email":"a@b.example"}`), "application/json", map[string]string{"Idempotency-Key": "has space"}, 400, "header:Idempotency-Key"},
		{"wrong content type", []byte(`summary=x`), "application/x-www-form-urlencoded", nil, 415, ""},
		{"executable attachment", exe, exeCT, nil, 415, ""},
		{"attachments too large", bigBody, bigCT, nil, 413, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			st, hdr, b := rh.post(tok, tc.hdr, tc.body, tc.ct)
			if st != tc.status {
				t.Fatalf("status %d (%.300s), want %d", st, b, tc.status)
			}
			p := decodeProblem(t, hdr, b)
			if tc.field != "" {
				found := false
				for _, f := range p.Errors {
					found = found || f.Field == tc.field
				}
				if !found {
					t.Errorf("errors %+v lack field %s", p.Errors, tc.field)
				}
			}
		})
	}
	// Rate limit: three reports per user, then 429 with Retry-After.
	var last int
	var lastHdr http.Header
	for range 4 {
		last, lastHdr, _ = rh.post(tok, nil, []byte(`{"summary":"x","email":"a@b.example"}`), "application/json")
	}
	if last != http.StatusTooManyRequests || lastHdr.Get("Retry-After") == "" {
		t.Errorf("fourth report: %d, Retry-After %q; want 429 with Retry-After", last, lastHdr.Get("Retry-After"))
	}
	if len(rh.sandbox.Requests()) > 3 {
		t.Errorf("rejected reports reached JSM")
	}
}

func TestReportBackpressure(t *testing.T) {
	rh := newReportHarness(t, map[string]string{"SB_REPORT_MAX_ATTACHMENT_BYTES": "100"})
	rh.install("client-p", secretA)
	tok := contextToken(t, "client-p", secretA, "557058:p", nil)
	body, ct := multipartReport(t, `{"summary":"x","email":"a@b.example"}`, map[string][]byte{"a.txt": bytes.Repeat([]byte("b"), 200)})
	st, hdr, b := rh.post(tok, nil, body, ct)
	if st != http.StatusServiceUnavailable || hdr.Get("Retry-After") == "" {
		t.Fatalf("over the attachment cap: %d %s", st, b)
	}
	decodeProblem(t, hdr, b)
}

func TestAdminRetriesAFailedReport(t *testing.T) {
	rh := newReportHarness(t, nil)
	rh.install("client-f", secretA)
	tok := contextToken(t, "client-f", secretA, "557058:f", nil)
	// JSM refuses every call with 403: the report fails fast, without a retry storm.
	rh.sandbox.SetFaults(jsmsandbox.Faults{ErrorRate: 1, ErrorStatuses: []int{403}})
	if st, _, b := rh.do("GET", "/readyz", nil, nil); st != http.StatusOK {
		t.Fatalf("readyz before: %d %s", st, b)
	}
	st, _, b := rh.post(tok, nil, []byte(`{"summary":"x","email":"f@customer.example"}`), "application/json")
	if st != http.StatusAccepted {
		t.Fatalf("create: %d %s", st, b)
	}
	var acc struct{ ID string }
	json.Unmarshal(b, &acc)
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, _, b := rh.do("GET", "/api/v1/reports/"+acc.ID, map[string]string{"Authorization": "JWT " + tok}, nil)
		var s report.Status
		json.Unmarshal(b, &s)
		if s.State == report.StateFailed {
			if s.Reason == "" {
				t.Error("a failed report must say why")
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("report did not fail: %s", b)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if n := len(rh.sandbox.Calls()); n > 3 {
		t.Errorf("%d JSM calls for a permanent error; want a fast failure", n)
	}
	st, hdr, b := rh.do("GET", "/readyz", nil, nil)
	if p := decodeProblem(t, hdr, b); st != http.StatusServiceUnavailable || !strings.Contains(p.Detail, "JSM configuration") {
		t.Errorf("readyz after a 403 from JSM: %d %q; want 503 naming the JSM configuration", st, p.Detail)
	}
	retry := "/api/v1/reports/" + acc.ID + "/retry"
	for name, tc := range map[string]struct {
		auth   string
		status int
	}{"no token": {"", 401}, "agent": {"Bearer " + aliceToken, 403}, "app token": {"JWT " + tok, 401}} {
		if st, _, _ := rh.do("POST", retry, map[string]string{"Authorization": tc.auth}, nil); st != tc.status {
			t.Errorf("retry as %s: %d, want %d", name, st, tc.status)
		}
	}
	rh.sandbox.SetFaults(jsmsandbox.Faults{})
	if st, _, b := rh.do("POST", retry, map[string]string{"Authorization": "Bearer " + rootToken}, nil); st != http.StatusAccepted {
		t.Fatalf("retry as admin: %d %s", st, b)
	}
	rh.waitDelivered(tok, acc.ID)
	if st, _, _ := rh.do("POST", retry, map[string]string{"Authorization": "Bearer " + rootToken}, nil); st != http.StatusConflict {
		t.Errorf("retry of a delivered report: %d, want 409", st)
	}
	if st, _, _ := rh.do("POST", "/api/v1/reports/nope/retry", map[string]string{"Authorization": "Bearer " + rootToken}, nil); st != http.StatusNotFound {
		t.Errorf("retry of an unknown report: %d, want 404", st)
	}
	if len(rh.sandbox.Requests()) != 1 {
		t.Errorf("%d requests, want 1", len(rh.sandbox.Requests()))
	}
}

// TestReportsDeliveredThroughFaults: JSM answers 429/503 a third of the time and drops the
// connection after every first create; every report still becomes exactly one request.
func TestReportsDeliveredThroughFaults(t *testing.T) {
	rh := newReportHarness(t, nil)
	rh.install("client-z", secretA)
	rh.sandbox.SetFaults(jsmsandbox.Faults{ErrorRate: 0.33, ErrorStatuses: []int{429, 503}, RetryAfter: time.Second,
		DropAfterCreate: true, DropFirstCreateOnly: true, Seed: 7})
	tok := contextToken(t, "client-z", secretA, "557058:z", nil)
	var ids []string
	for i := range 3 {
		st, _, b := rh.post(tok, nil, []byte(fmt.Sprintf(`{"summary":"fault %d","email":"z%d@customer.example"}`, i, i)), "application/json")
		if st != http.StatusAccepted {
			t.Fatalf("create %d: %d %s", i, st, b)
		}
		var acc struct{ ID string }
		json.Unmarshal(b, &acc)
		ids = append(ids, acc.ID)
	}
	keys := map[string]bool{}
	for _, id := range ids {
		keys[rh.waitDelivered(tok, id).TicketKey] = true
	}
	reqs := rh.sandbox.Requests()
	if len(reqs) != 3 || len(keys) != 3 {
		t.Fatalf("%d requests for 3 reports (ticket keys %v)", len(reqs), keys)
	}
	for _, r := range reqs {
		var bundles, comments int
		for _, a := range r.Attachments {
			if !a.Public {
				bundles++
			}
		}
		for _, c := range r.Comments {
			if !c.Public && !strings.HasPrefix(c.Body, "[^") {
				comments++
			}
		}
		if bundles != 1 || comments != 1 {
			t.Errorf("%s: %d bundles and %d internal comments, want one each", r.Key, bundles, comments)
		}
	}
}

// TestWorkerKilledBetweenStepsThroughTheRouter: a report sent through the router is taken by
// a worker that dies right after JSM answered one of its calls (the request created, the
// user's first file attached, the internal comment added), before it could record that
// step. A second worker takes the report over and finishes it: one request, both files and
// the bundle once each, one internal comment.
func TestWorkerKilledBetweenStepsThroughTheRouter(t *testing.T) {
	for name, killAfter := range map[string]func(jsmsandbox.Call) bool{
		"create": func(c jsmsandbox.Call) bool {
			return c.Method == http.MethodPost && c.Path == "/rest/servicedeskapi/request"
		},
		"first attach": func(c jsmsandbox.Call) bool {
			return c.Method == http.MethodPost && strings.HasSuffix(c.Path, "/attachment")
		},
		"comment": func(c jsmsandbox.Call) bool {
			return c.Method == http.MethodPost && strings.HasSuffix(c.Path, "/comment")
		},
	} {
		t.Run(name, func(t *testing.T) {
			var killOnce sync.Once
			var mu sync.Mutex
			var kill context.CancelFunc
			rh := newReportHarnessWith(t, reportHarnessOptions{NoWorker: true, OnCall: func(c jsmsandbox.Call) {
				if c.Status >= 200 && c.Status < 300 && killAfter(c) {
					mu.Lock()
					defer mu.Unlock()
					killOnce.Do(kill)
				}
			}})
			rh.install("client-k", secretA)
			tok := contextToken(t, "client-k", secretA, "557058:kim", nil)
			body, ct := multipartReport(t, `{"summary":"Killed midway","email":"kim@customer.example"}`,
				map[string][]byte{"screen.png": pngBytes, "console.txt": []byte("TypeError: x is undefined\n")})
			st, _, b := rh.post(tok, nil, body, ct)
			if st != http.StatusAccepted {
				t.Fatalf("create: %d %s", st, b)
			}
			var acc struct{ ID string }
			json.Unmarshal(b, &acc)

			ctx, cancel := context.WithCancel(context.Background())
			mu.Lock()
			kill = cancel
			mu.Unlock()
			defer cancel()
			_, firstDone := rh.startWorker(ctx, time.Hour) // it never takes over: it dies first
			select {
			case <-firstDone:
			case <-time.After(60 * time.Second):
				t.Fatal("the first worker never reached the kill point")
			}
			var st0 report.Status
			_, _, sb := rh.do("GET", "/api/v1/reports/"+acc.ID, map[string]string{"Authorization": "JWT " + tok}, nil)
			json.Unmarshal(sb, &st0)
			if st0.State != report.StateDelivering {
				t.Fatalf("after the kill the report is %q, want delivering", st0.State)
			}

			ctx2, cancel2 := context.WithCancel(context.Background())
			_, secondDone := rh.startWorker(ctx2, 50*time.Millisecond)
			defer func() { cancel2(); <-secondDone }()
			rh.waitDelivered(tok, acc.ID)

			reqs := rh.sandbox.Requests()
			if len(reqs) != 1 {
				t.Fatalf("%d requests, want 1", len(reqs))
			}
			creates := 0
			for _, c := range rh.sandbox.Calls() {
				if c.Method == http.MethodPost && c.Path == "/rest/servicedeskapi/request" {
					creates++
				}
			}
			if creates != 1 {
				t.Errorf("%d creates, want 1", creates)
			}
			names := map[string]int{}
			for _, a := range reqs[0].Attachments {
				n := a.Filename
				if !a.Public {
					n = "internal:" + strings.SplitN(n, "-", 2)[0] // support-bundle-<id>.json
				}
				names[n]++
			}
			want := map[string]int{"screen.png": 1, "console.txt": 1, "internal:support": 1}
			if fmt.Sprint(names) != fmt.Sprint(want) {
				t.Errorf("attachments %v, want %v", names, want)
			}
			internal := 0
			for _, c := range reqs[0].Comments {
				if !c.Public && !strings.HasPrefix(c.Body, "[^") {
					internal++
				}
			}
			if internal != 1 {
				t.Errorf("%d internal comments, want 1", internal)
			}
		})
	}
}

package delivery_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/supportbridge/supportbridge/internal/delivery"
	"github.com/supportbridge/supportbridge/internal/jsm"
	"github.com/supportbridge/supportbridge/internal/jsmsandbox"
	"github.com/supportbridge/supportbridge/internal/jsmsandbox/jsmtest"
	"github.com/supportbridge/supportbridge/internal/redisstore"
	"github.com/supportbridge/supportbridge/internal/redisstore/redistest"
	"github.com/supportbridge/supportbridge/internal/report"
	"github.com/supportbridge/supportbridge/internal/seal"
	"github.com/supportbridge/supportbridge/internal/secret"
	"github.com/supportbridge/supportbridge/internal/tenant"
)

func TestMain(m *testing.M) { redistest.Main(m) }

// The Redis store is what the worker runs on in production.
var _ delivery.Store = (*redisstore.Reports)(nil)
var _ delivery.JSM = jsm.ForDelivery(nil)

// accountPrefix starts the accountIds of test reporters; siteEmails gives the email after it,
// as the reporter's site would. A reporter whose accountId has unverifiedPrefix instead has
// no email the site will give.
const (
	accountPrefix    = "557058:"
	unverifiedPrefix = "hidden:"
)

// siteEmails stands in for the reporters' sites (delivery.Sites).
type siteEmails struct{ asked *atomic.Int64 }

func (s siteEmails) VerifiedEmail(_ context.Context, r delivery.Reporter) (string, error) {
	if s.asked != nil {
		s.asked.Add(1)
	}
	if email, ok := strings.CutPrefix(r.AccountID, accountPrefix); ok {
		return email, nil
	}
	return "", delivery.ErrNoVerifiedEmail
}

// emailOf is the email the reporter's site confirms for sub ("" for none).
func emailOf(sub report.Submission) string {
	email, _ := strings.CutPrefix(sub.Report.AccountID, accountPrefix)
	if email == sub.Report.AccountID {
		return ""
	}
	return email
}

const (
	testEmail  = "support-bot@vendor.example"
	testToken  = "sandbox-api-token-9f2c"
	testTenant = "jira:0f3c1d2e-acme"
)

// sharedSpecs parses Atlassian's specs once for the package: parsing takes most of a
// second, and every test starts its own sandbox. Nil (files missing) lets NewTestServer
// skip or, in CI, fail.
var sharedSpecs = sync.OnceValue(func() *jsmsandbox.Specs {
	j, p := jsmsandbox.SpecPathsFromEnv()
	for _, f := range []string{j, p} {
		if _, err := os.Stat(f); f == "" || err != nil {
			return nil
		}
	}
	s, err := jsmsandbox.LoadSpecs(j, p)
	if err != nil {
		return nil
	}
	return s
})

// fakeClock is the clock of the worker, the store and the sandbox; the worker's injected
// Sleep moves it instead of waiting, so Retry-After and search lag cost no real time.
type fakeClock struct {
	mu     sync.Mutex
	t      time.Time
	slept  []time.Duration
	sleeps int
}

func newClock() *fakeClock { return &fakeClock{t: time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Sleep(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
	c.slept = append(c.slept, d)
	return nil
}

func (c *fakeClock) Slept() []time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]time.Duration(nil), c.slept...)
}

// wire sits between the JSM client and the sandbox and lets a test answer a call itself.
type wire struct {
	next http.RoundTripper
	mu   sync.Mutex
	// intercept, when it returns a response, answers the call without forwarding it.
	intercept func(*http.Request) *http.Response
	seen      []string
}

func (w *wire) RoundTrip(r *http.Request) (*http.Response, error) {
	w.mu.Lock()
	w.seen = append(w.seen, r.Method+" "+r.URL.Path)
	f := w.intercept
	w.mu.Unlock()
	if f != nil {
		if resp := f(r); resp != nil {
			return resp, nil
		}
	}
	return w.next.RoundTrip(r)
}

func (w *wire) count(method, path string) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := 0
	for _, s := range w.seen {
		if s == method+" "+path {
			n++
		}
	}
	return n
}

// tenants is a fixed tenant directory.
type tenants map[string]tenant.Tenant

func (ts tenants) Lookup(_ context.Context, key string) (tenant.Tenant, error) {
	t, ok := ts[key]
	if !ok {
		return tenant.Tenant{}, tenant.ErrNotFound
	}
	return t, nil
}

// renderer stands in for internal/report's rendering: recognisable texts, and a bundle
// with the report id.
type renderer struct{}

func (renderer) Description(r report.Report) string {
	return "h3. What happened\n" + r.Summary + "\n\nReference: " + r.Marker
}

func (renderer) InternalComment(r report.Report, t tenant.Tenant) string {
	return "Internal: account " + t.BaseURL + " operation " + r.Operation.Name
}

func (renderer) Bundle(r report.Report, t tenant.Tenant) ([]byte, error) {
	return json.Marshal(map[string]string{"reportId": r.ID, "tenant": t.ClientKey})
}

// env is a sandbox, a store on a fresh Redis database and a JSM client, sharing one clock.
type env struct {
	sb     *jsmsandbox.Sandbox
	store  *redisstore.Reports
	client *jsm.Client
	wire   *wire
	clock  *fakeClock
	// jsmConfig is the client's configuration, for tests that need a second client.
	jsmConfig jsm.Config
}

type envConfig struct {
	sandbox   jsmsandbox.Options
	jsm       func(*jsm.Config)
	realClock bool
	// unvalidated serves the sandbox without checking calls against Atlassian's specs, for
	// the benchmark: validation costs CPU the worker would be measured for, and the tests
	// already validate every call the worker makes.
	unvalidated bool
	// redisHook, when set, sees every command the store sends, to inject Redis failures.
	redisHook redis.Hook
}

func newEnv(t testing.TB, cfg envConfig) *env {
	t.Helper()
	clock := newClock()
	now := clock.Now
	if cfg.realClock {
		now = time.Now
	}
	sbOpts := cfg.sandbox
	sbOpts.Email, sbOpts.APIToken = testEmail, testToken
	sbOpts.Now = now
	var (
		sb  *jsmsandbox.Sandbox
		srv *httptest.Server
	)
	if cfg.unvalidated {
		var err error
		if sb, err = jsmsandbox.New(sbOpts); err != nil {
			t.Fatal(err)
		}
		srv = httptest.NewServer(sb)
		t.Cleanup(srv.Close)
	} else {
		if sbOpts.Specs == nil {
			sbOpts.Specs = sharedSpecs()
		}
		sb, srv = jsmtest.NewTestServer(t, sbOpts)
	}
	// One idle connection per concurrent delivery: http.Transport keeps two per host by
	// default and would otherwise open and close connections all the time.
	tr := srv.Client().Transport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 128
	w := &wire{next: tr}
	jc := jsm.Config{
		BaseURL: srv.URL, Email: testEmail, APIToken: secret.New(testToken),
		ServiceDeskID: jsmsandbox.DefaultServiceDeskID, RequestTypeID: jsmsandbox.DefaultRequestTypeID,
		ProjectKey: jsmsandbox.DefaultProjectKey,
		Timeout:    10 * time.Second,
		// One attempt per call: every failure reaches the worker, whose retries use the
		// injected Sleep instead of real waits.
		MaxAttempts: 1,
		HTTPClient:  &http.Client{Transport: w},
		Now:         now,
	}
	if cfg.jsm != nil {
		cfg.jsm(&jc)
	}
	client, err := jsm.New(jc)
	if err != nil {
		t.Fatal(err)
	}
	rdb := redistest.Client(t)
	if cfg.redisHook != nil {
		rdb.AddHook(cfg.redisHook)
	}
	sealer, err := seal.New([]byte("site-token-sealing-key-for-tests"))
	if err != nil {
		t.Fatal(err)
	}
	store := redisstore.NewReports(rdb, redisstore.ReportsOptions{
		Now: now, CustomerKey: []byte("customer-cache-key-for-tests-000"), Sealer: sealer,
	})
	return &env{sb: sb, store: store, client: client, wire: w, clock: clock, jsmConfig: jc}
}

// options are worker options for e with test-friendly defaults.
func (e *env) options(reg prometheus.Registerer) delivery.Options {
	return delivery.Options{
		Store: e.store, JSM: jsm.ForDelivery(e.client), Sites: siteEmails{}, Render: renderer{},
		Tenants:     tenants{testTenant: {ClientKey: testTenant, BaseURL: "https://acme.atlassian.net", Installed: true}},
		Concurrency: 4, MaxAttempts: 8, ClaimIdle: 200 * time.Millisecond,
		Registerer: reg, Now: e.clock.Now, Sleep: e.clock.Sleep,
	}
}

// start runs w until the returned stop is called (or the test ends).
func start(t testing.TB, w *delivery.Worker) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := w.Run(ctx); err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			<-done
		})
	}
	t.Cleanup(stop)
	return stop
}

// markers numbers the markers of test reports, so each report's requests can be counted.
var markers atomic.Int64

// submission is a report of email with the given attachments.
func submission(email, idemKey string, files map[string]string) report.Submission {
	s := report.Submission{
		Report: report.Report{
			ID: report.NewID(), TenantKey: testTenant, AccountID: accountPrefix + email, EmailHint: email,
			Summary:   "Export to PDF fails",
			Operation: report.Operation{Name: "export-pdf"},
		},
		IdempotencyKey: idemKey, BodyHash: "body-" + idemKey, Subject: accountPrefix + email,
	}
	s.Report.Marker = fmt.Sprintf("sbtest%d", markers.Add(1))
	for _, name := range slices.Sorted(maps.Keys(files)) {
		s.Attachments = append(s.Attachments, report.Attachment{
			AttachmentMeta: report.AttachmentMeta{Filename: name, MediaType: "text/plain"},
			Content:        []byte(files[name]),
		})
	}
	return s
}

func (e *env) enqueue(t testing.TB, s report.Submission) string {
	t.Helper()
	id, _, err := e.store.Enqueue(context.Background(), s, report.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// waitFor polls the report's status until it reaches state; the deadline is generous
// because it only bounds a hung test, it asserts nothing about speed.
func (e *env) waitFor(t testing.TB, id string, state report.State) report.Status {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		st, err := e.store.Status(context.Background(), testTenant, id)
		if err == nil && st.State == state {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("report %s: status %+v, %v; want %s", id, st, err, state)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// calls counts the sandbox calls with method and path.
func (e *env) calls(method, path string) int {
	n := 0
	for _, c := range e.sb.Calls() {
		if c.Method == method && c.Path == path {
			n++
		}
	}
	return n
}

const createPath = "/rest/servicedeskapi/request"

// checkDelivered asserts that the report became exactly one request, raised
// on behalf of email's account, with the user's files public, the bundle internal, and one
// internal comment; it returns that request.
func (e *env) checkDelivered(t testing.TB, id string, sub report.Submission) jsmsandbox.Request {
	t.Helper()
	st := e.waitFor(t, id, report.StateDelivered)
	var mine []jsmsandbox.Request
	for _, r := range e.sb.Requests() {
		if strings.Contains(r.Description, sub.Report.Marker) {
			mine = append(mine, r)
		}
	}
	if len(mine) != 1 || mine[0].Key != st.TicketKey {
		t.Fatalf("report %s (%s): %d requests, status names %q", id, sub.Report.Marker, len(mine), st.TicketKey)
	}
	req := mine[0]
	if st.TicketURL == "" {
		t.Errorf("status has no ticket URL: %+v", st)
	}
	var account string
	for _, c := range e.sb.Customers() {
		if strings.EqualFold(c.Email, emailOf(sub)) {
			account = c.AccountID
		}
	}
	if account == "" || req.ReporterAccountID != account {
		t.Errorf("%s raised by %q, want %s's account %q", req.Key, req.ReporterAccountID, emailOf(sub), account)
	}
	want := map[string]bool{"support-bundle-" + id + ".json": false}
	for _, a := range sub.Attachments {
		want[a.Filename] = true
	}
	if len(req.Attachments) != len(want) {
		t.Errorf("%s has %d attachments, want %d", req.Key, len(req.Attachments), len(want))
	}
	for _, a := range req.Attachments {
		public, ok := want[a.Filename]
		if !ok || a.Public != public {
			t.Errorf("%s attachment %q public=%v; want listed=%v public=%v", req.Key, a.Filename, a.Public, ok, public)
		}
		delete(want, a.Filename)
	}
	internal := 0
	for _, c := range req.Comments {
		if strings.HasPrefix(c.Body, "Internal: account") {
			internal++
			if c.Public {
				t.Errorf("%s: the internal comment is public", req.Key)
			}
		}
	}
	if internal != 1 {
		t.Errorf("%s has %d internal comments, want 1", req.Key, internal)
	}
	return req
}

// metric sums the samples of a counter or gauge family in reg whose labels include
// the given ones.
func metric(t testing.TB, reg *prometheus.Registry, name string, labels map[string]string) float64 {
	t.Helper()
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	sum := 0.0
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
	samples:
		for _, m := range f.GetMetric() {
			for k, v := range labels {
				found := false
				for _, lp := range m.GetLabel() {
					found = found || (lp.GetName() == k && lp.GetValue() == v)
				}
				if !found {
					continue samples
				}
			}
			switch {
			case m.GetCounter() != nil:
				sum += m.GetCounter().GetValue()
			case m.GetGauge() != nil:
				sum += m.GetGauge().GetValue()
			}
		}
	}
	return sum
}

// lockedBuffer collects log output written from the worker's goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// eventually waits until cond holds: counters and dead letters are written just after the
// status a test waits for. The deadline only bounds a hung test.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("never happened: %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// loseAnswers is a go-redis hook that lets every command touching a key with one of the
// prefixes run on the server and then reports it failed to the caller, as a connection
// that breaks after the write does: the worst case for a store whose writes must be
// repeatable. It counts the commands it failed.
type loseAnswers struct {
	prefixes []string
	lost     atomic.Int64
}

var errAnswerLost = errors.New("test: connection lost before the answer")

func (h *loseAnswers) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h *loseAnswers) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		err := next(ctx, cmd)
		if err == nil && h.touches(cmd) {
			h.lost.Add(1)
			cmd.SetErr(errAnswerLost)
			return errAnswerLost
		}
		return err
	}
}

func (h *loseAnswers) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		err := next(ctx, cmds)
		for _, cmd := range cmds {
			if cmd.Err() == nil && h.touches(cmd) {
				h.lost.Add(1)
				cmd.SetErr(errAnswerLost)
				err = errAnswerLost
			}
		}
		return err
	}
}

func (h *loseAnswers) touches(cmd redis.Cmder) bool {
	for _, a := range cmd.Args() {
		s, ok := a.(string)
		if !ok {
			continue
		}
		for _, p := range h.prefixes {
			if strings.HasPrefix(s, p) {
				return true
			}
		}
	}
	return false
}

// crashPoints wraps a worker's store and desk so that after is told of the points where a
// crash matters: each step once recorded ("customer", "create", "upload", "attach",
// "bundle", "comment"), and each write-once call once sent, before its outcome is recorded
// ("create-sent", "attach-sent" for the user's files, "bundle-sent", "comment-sent").
func crashPoints(store delivery.Store, desk delivery.JSM, after func(point string)) (delivery.Store, delivery.JSM) {
	return stepStore{Store: store, after: after}, sentDesk{JSM: desk, after: after}
}

type stepStore struct {
	delivery.Store
	after func(string)
}

func (s stepStore) Record(ctx context.Context, job report.Job, fence int64, r report.StepRecord) (int, error) {
	n, err := s.Store.Record(ctx, job, fence, r)
	if err != nil {
		return n, err
	}
	switch {
	case r.AccountID != "" || r.EmailSource != "":
		s.after("customer")
	case r.TicketKey != "":
		s.after("create")
	case len(r.Uploads) > 0:
		s.after("upload")
	case slices.Contains(r.Done, "bundle"):
		s.after("bundle")
	case slices.Contains(r.Done, "comment"):
		s.after("comment")
	case len(r.Done) > 0 && strings.HasPrefix(r.Done[0], "attach"):
		s.after("attach")
	}
	return n, nil
}

type sentDesk struct {
	delivery.JSM
	after func(string)
}

func (d sentDesk) CreateRequest(ctx context.Context, r delivery.Request) (delivery.Ticket, error) {
	t, err := d.JSM.CreateRequest(ctx, r)
	d.after("create-sent")
	return t, err
}

func (d sentDesk) AttachTemporary(ctx context.Context, key string, ids []string, public bool) error {
	err := d.JSM.AttachTemporary(ctx, key, ids, public)
	if public {
		d.after("attach-sent")
	} else {
		d.after("bundle-sent")
	}
	return err
}

func (d sentDesk) AddComment(ctx context.Context, key, body string, public bool) (string, error) {
	id, err := d.JSM.AddComment(ctx, key, body, public)
	d.after("comment-sent")
	return id, err
}

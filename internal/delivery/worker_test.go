package delivery_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf16"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/supportbridge/supportbridge/internal/delivery"
	"github.com/supportbridge/supportbridge/internal/jsm"
	"github.com/supportbridge/supportbridge/internal/jsmsandbox"
	"github.com/supportbridge/supportbridge/internal/report"
	"github.com/supportbridge/supportbridge/internal/secret"
)

var twoFiles = map[string]string{"steps.txt": "1. open\n2. export\n", "console.log": "TypeError: x is undefined\n"}

func TestDeliversAReportOnBehalfOfTheUser(t *testing.T) {
	e := newEnv(t, envConfig{sandbox: jsmsandbox.Options{ClosedDesk: true}})
	reg := prometheus.NewRegistry()
	w := delivery.NewWorker(e.options(reg))
	stop := start(t, w)

	sub := submission("dana@customer.example", "", twoFiles)
	id := e.enqueue(t, sub)
	req := e.checkDelivered(t, id, sub)

	for _, a := range req.Attachments {
		if want, ok := twoFiles[a.Filename]; ok && string(a.Content) != want {
			t.Errorf("attachment %s = %q, want %q", a.Filename, a.Content, want)
		}
		if a.Filename == "support-bundle-"+id+".json" && !strings.Contains(string(a.Content), id) {
			t.Errorf("bundle = %s", a.Content)
		}
	}
	if err := w.Healthy(); err != nil {
		t.Errorf("Healthy: %v", err)
	}

	// A second report of the same user: the customer comes from the cache.
	searches := e.calls(http.MethodGet, "/rest/servicedeskapi/servicedesk/10/customer")
	sub2 := submission("Dana@Customer.example", "", nil)
	id2 := e.enqueue(t, sub2)
	req2 := e.checkDelivered(t, id2, sub2)
	if req2.ReporterAccountID != req.ReporterAccountID {
		t.Errorf("second request raised by %s, first by %s", req2.ReporterAccountID, req.ReporterAccountID)
	}
	if got := e.calls(http.MethodGet, "/rest/servicedeskapi/servicedesk/10/customer"); got != searches {
		t.Errorf("customer searched again (%d calls, was %d) despite the cache", got, searches)
	}
	eventually(t, "two deliveries counted", func() bool {
		return metric(t, reg, "supportbridge_delivery_reports_delivered_total", nil) == 2
	})
	stop()
	for _, b := range e.sb.AllBodies() {
		if strings.Contains(string(b), testToken) {
			t.Error("the API token appears in a request body")
		}
	}
}

func TestDeliversThroughRateLimitsAndOutages(t *testing.T) {
	e := newEnv(t, envConfig{})
	e.sb.SetFaults(jsmsandbox.Faults{ErrorRate: 0.33, RetryAfter: time.Second, Seed: 7})
	reg := prometheus.NewRegistry()
	opts := e.options(reg)
	// Resolving a new customer takes up to four calls that must all pass in one attempt;
	// with a third of the calls failing that needs room, which progress resets per step.
	opts.MaxAttempts = 40
	start(t, delivery.NewWorker(opts))

	subs := map[string]report.Submission{}
	for i := range 6 {
		sub := submission(fmt.Sprintf("user%d@customer.example", i%3), "", map[string]string{"a.txt": "x"})
		subs[e.enqueue(t, sub)] = sub
	}
	for id, sub := range subs {
		e.checkDelivered(t, id, sub)
	}
	faults := 0
	for _, c := range e.sb.Calls() {
		if c.Status == http.StatusTooManyRequests || c.Status == http.StatusServiceUnavailable {
			faults++
		}
	}
	if faults == 0 {
		t.Fatal("no fault was injected; the test proves nothing")
	}
	honoured := false
	for _, d := range e.clock.Slept() {
		honoured = honoured || d >= time.Second
	}
	if !honoured {
		t.Error("no wait honoured the one-second Retry-After")
	}
	if got := metric(t, reg, "supportbridge_delivery_attempts_total", map[string]string{"outcome": "transient"}); got == 0 {
		t.Error("no transient attempt counted")
	}
	t.Logf("%d injected faults, %d calls", faults, len(e.sb.Calls()))
}

func TestLostCreateAnswersAreFoundBySearching(t *testing.T) {
	// Every create succeeds but its answer is lost, and the search index lags by 5s.
	e := newEnv(t, envConfig{sandbox: jsmsandbox.Options{SearchLag: 5 * time.Second}})
	e.sb.SetFaults(jsmsandbox.Faults{DropAfterCreate: true})
	start(t, delivery.NewWorker(e.options(prometheus.NewRegistry())))

	subs := map[string]report.Submission{}
	for i := range 3 {
		sub := submission(fmt.Sprintf("user%d@customer.example", i), "", twoFiles)
		subs[e.enqueue(t, sub)] = sub
	}
	for id, sub := range subs {
		e.checkDelivered(t, id, sub)
	}
	if got := e.calls(http.MethodPost, createPath); got != 3 {
		t.Errorf("%d creates for 3 reports, want 3", got)
	}
	if got := e.calls(http.MethodGet, "/rest/api/3/search/jql"); got <= 3 {
		t.Errorf("%d searches; the lag should have forced repeats", got)
	}
}

func TestCreatesAgainOnlyAfterSearchingForThePatience(t *testing.T) {
	e := newEnv(t, envConfig{})
	// The first create is answered 502 by a proxy that never forwarded it: ambiguous to
	// the client, yet nothing was created.
	var once sync.Once
	e.wire.intercept = func(r *http.Request) *http.Response {
		var resp *http.Response
		if r.Method == http.MethodPost && r.URL.Path == createPath {
			once.Do(func() {
				resp = &http.Response{StatusCode: http.StatusBadGateway, Body: io.NopCloser(strings.NewReader("")),
					Header: http.Header{}, Request: r}
			})
		}
		return resp
	}
	start(t, delivery.NewWorker(e.options(prometheus.NewRegistry())))
	sub := submission("dana@customer.example", "", nil)
	begin := e.clock.Now()
	id := e.enqueue(t, sub)
	e.checkDelivered(t, id, sub)

	if got := e.wire.count(http.MethodPost, createPath); got != 2 {
		t.Errorf("%d creates sent, want 2 (the lost one and one after searching)", got)
	}
	if got := e.calls(http.MethodGet, "/rest/api/3/search/jql"); got < 2 {
		t.Errorf("%d searches before creating again", got)
	}
	if waited := e.clock.Now().Sub(begin); waited < 45*time.Second {
		t.Errorf("created again after %v of searching, want at least the 45s patience", waited)
	}
}

// A worker dies at each interesting point; a second one claims its entry and finishes
// without repeating what the first one did.
func TestWorkerKilledMidwayIsResumedWithoutDuplicates(t *testing.T) {
	for _, step := range []string{
		"customer", "create-sent", "create", "upload", "attach-sent", "attach",
		"bundle-sent", "bundle", "comment-sent", "comment",
	} {
		t.Run(step, func(t *testing.T) {
			e := newEnv(t, envConfig{})
			sub := submission("dana@customer.example", "", twoFiles)
			id := e.enqueue(t, sub)

			ctx, kill := context.WithCancel(context.Background())
			opts := e.options(prometheus.NewRegistry())
			opts.Store, opts.JSM = crashPoints(opts.Store, opts.JSM, func(s string) {
				if s == step {
					kill()
				}
			})
			first := delivery.NewWorker(opts)
			done := make(chan error, 1)
			go func() { done <- first.Run(ctx) }()
			select {
			case <-done:
			case <-time.After(60 * time.Second):
				t.Fatal("the first worker never reached " + step)
			}
			if st, _ := e.store.Status(context.Background(), testTenant, id); st.State != report.StateDelivering {
				t.Fatalf("after the kill: %+v", st)
			}

			searches := e.calls(http.MethodGet, "/rest/api/3/search/jql")
			logs := &lockedBuffer{}
			opts = e.options(prometheus.NewRegistry())
			opts.ClaimIdle = 50 * time.Millisecond
			opts.Logger = slog.New(slog.NewTextHandler(logs, nil))
			start(t, delivery.NewWorker(opts))
			req := e.checkDelivered(t, id, sub)

			// Each unknown outcome was resolved by looking, not by writing again.
			switch step {
			case "create-sent", "comment-sent":
				if e.calls(http.MethodGet, "/rest/api/3/search/jql") == searches {
					t.Error("the second worker did not search for the marker")
				}
			case "attach-sent", "bundle-sent":
				if !strings.Contains(logs.String(), "attachment_already_attached") {
					t.Errorf("the second worker did not recognise the earlier attach; logs:\n%s", logs)
				}
			}
			if strings.Contains(logs.String(), "dana@") {
				t.Error("an email address was logged")
			}
			if got := e.calls(http.MethodPost, createPath); got != 1 {
				t.Errorf("%d creates, want 1", got)
			}
			if got := e.calls(http.MethodPost, "/rest/servicedeskapi/request/"+req.Key+"/comment"); got != 1 {
				t.Errorf("%d comment calls, want 1", got)
			}
			// Two attach calls made two attachment comments; nothing else was added.
			if len(req.Comments) != 3 {
				t.Errorf("%d comments on %s, want 3", len(req.Comments), req.Key)
			}
		})
	}
}

func TestIdempotentRepeatMakesOneRequest(t *testing.T) {
	e := newEnv(t, envConfig{})
	sub := submission("dana@customer.example", "idem-1", nil)
	id := e.enqueue(t, sub)
	repeat := func() report.Submission { // a new request with the same key: intake mints a new id
		r := sub
		r.Report.ID = report.NewID()
		return r
	}
	again, replayed, err := e.store.Enqueue(context.Background(), repeat(), report.Limits{})
	if err != nil || !replayed || again != id {
		t.Fatalf("repeat = %q, %v, %v", again, replayed, err)
	}
	start(t, delivery.NewWorker(e.options(prometheus.NewRegistry())))
	e.checkDelivered(t, id, sub)
	// After delivery the key still answers with the same report.
	again, replayed, err = e.store.Enqueue(context.Background(), repeat(), report.Limits{})
	if err != nil || !replayed || again != id {
		t.Errorf("repeat after delivery = %q, %v, %v", again, replayed, err)
	}
	time.Sleep(100 * time.Millisecond) // a second request would be on its way by now
	if got := len(e.sb.Requests()); got != 1 {
		t.Errorf("%d requests, want 1", got)
	}
}

func TestWrongRequestTypeFailsFastAndCanBeRetried(t *testing.T) {
	e := newEnv(t, envConfig{jsm: func(c *jsm.Config) { c.RequestTypeID = "99" }})
	reg := prometheus.NewRegistry()
	w := delivery.NewWorker(e.options(reg))
	stop := start(t, w)

	sub := submission("dana@customer.example", "", twoFiles)
	id := e.enqueue(t, sub)
	st := e.waitFor(t, id, report.StateFailed)
	if !strings.Contains(st.Reason, "400") {
		t.Errorf("reason = %q", st.Reason)
	}
	if got := e.calls(http.MethodPost, createPath); got != 1 {
		t.Errorf("%d creates, want exactly 1: a permanent error is not retried", got)
	}
	err := w.Healthy()
	if err == nil || err.Error() != "JSM configuration is wrong: create request answered 400" {
		t.Errorf("Healthy = %v", err)
	}
	// The dead letter and the counter follow the status.
	eventually(t, "the failure counted", func() bool {
		return metric(t, reg, "supportbridge_delivery_reports_failed_total", map[string]string{"why": "permanent"}) == 1
	})
	dead, err := e.store.DeadLetters(context.Background(), 10)
	if err != nil || len(dead) != 1 || dead[0].ReportID != id {
		t.Errorf("dead letters = %+v, %v", dead, err)
	}
	stop()
	if err := w.Healthy(); err == nil {
		t.Error("Healthy after Run returned: nil")
	}

	// The operator fixes the request type and retries the report: the customer step is
	// not repeated.
	customerCalls := e.calls(http.MethodGet, "/rest/servicedeskapi/servicedesk/10/customer")
	cfg := e.jsmConfig
	cfg.RequestTypeID = jsmsandbox.DefaultRequestTypeID
	fixed, err := jsm.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	opts := e.options(prometheus.NewRegistry())
	opts.JSM = jsm.ForDelivery(fixed)
	w2 := delivery.NewWorker(opts)
	start(t, w2)
	if err := e.store.Retry(context.Background(), testTenant, id); err != nil {
		t.Fatal(err)
	}
	e.checkDelivered(t, id, sub)
	if got := e.calls(http.MethodPost, createPath); got != 2 {
		t.Errorf("%d creates in all, want 2", got)
	}
	if got := e.calls(http.MethodGet, "/rest/servicedeskapi/servicedesk/10/customer"); got != customerCalls {
		t.Errorf("customer searched again after retry (%d calls, was %d)", got, customerCalls)
	}
	if err := w2.Healthy(); err != nil {
		t.Errorf("Healthy of the fixed worker: %v", err)
	}
	if err := e.store.Retry(context.Background(), testTenant, id); !errors.Is(err, report.ErrNotFailed) {
		t.Errorf("Retry of a delivered report: %v", err)
	}
}

// A cached customer whose account JSM no longer knows (deleted or merged since) makes the
// create answer 400. That is this report's data, not the desk's configuration: the worker
// drops the stale cache entry, looks the customer up again and creates once more, and the
// replica stays ready.
func TestStaleCachedCustomerIsLookedUpAgain(t *testing.T) {
	e := newEnv(t, envConfig{})
	w := delivery.NewWorker(e.options(prometheus.NewRegistry()))
	sub := submission("dana@customer.example", "", nil)
	ctx := context.Background()
	const stale = "557058:0000-account-deleted-since"
	if err := e.store.CacheCustomer(ctx, testTenant, emailOf(sub), stale); err != nil {
		t.Fatal(err)
	}
	start(t, w)
	id := e.enqueue(t, sub)
	req := e.checkDelivered(t, id, sub)
	if req.ReporterAccountID == stale {
		t.Errorf("raised on behalf of the stale account")
	}
	if got, ok, err := e.store.CachedCustomer(ctx, testTenant, emailOf(sub)); err != nil || !ok || got != req.ReporterAccountID {
		t.Errorf("cache = %q, %v, %v; want the fresh account %q", got, ok, err, req.ReporterAccountID)
	}
	if got := e.calls(http.MethodPost, createPath); got != 2 {
		t.Errorf("%d creates, want 2: the refused one and one with the fresh customer", got)
	}
	if err := w.Healthy(); err != nil {
		t.Errorf("Healthy = %v; one report's customer is not a configuration error", err)
	}
}

// A summary of 255 characters is 255 runes to Go but may be twice as many UTF-16 units,
// which is what Jira counts: it must be shortened, not refused (and not taken for a wrong
// desk configuration).
func TestEmojiSummaryIsDelivered(t *testing.T) {
	e := newEnv(t, envConfig{})
	w := delivery.NewWorker(e.options(prometheus.NewRegistry()))
	start(t, w)
	sub := submission("dana@customer.example", "", nil)
	sub.Report.Summary = strings.Repeat("🔥", 255)
	id := e.enqueue(t, sub)
	req := e.checkDelivered(t, id, sub)
	if n := len(utf16.Encode([]rune(req.Summary))); n > 255 {
		t.Errorf("summary of %d UTF-16 units", n)
	}
	if err := w.Healthy(); err != nil {
		t.Errorf("Healthy = %v", err)
	}
}

// A create refused for the report's own data fails that report only, after one retry with
// a fresh customer: the replica stays ready and the next report is delivered.
func TestDataRefusalFailsOnlyThatReport(t *testing.T) {
	e := newEnv(t, envConfig{})
	reg := prometheus.NewRegistry()
	w := delivery.NewWorker(e.options(reg))
	start(t, w)

	bad := submission("dana@customer.example", "", nil)
	// The test renderer puts the summary in the description, which JSM caps.
	bad.Report.Summary = strings.Repeat("x", 40000)
	badID := e.enqueue(t, bad)
	st := e.waitFor(t, badID, report.StateFailed)
	if !strings.Contains(st.Reason, "400") {
		t.Errorf("reason = %q", st.Reason)
	}
	if got := e.calls(http.MethodPost, createPath); got != 2 {
		t.Errorf("%d creates, want 2: one retry with a fresh customer, then fail", got)
	}
	if err := w.Healthy(); err != nil {
		t.Errorf("Healthy = %v; one report's data is not a configuration error", err)
	}
	eventually(t, "the failure counted", func() bool {
		return metric(t, reg, "supportbridge_delivery_reports_failed_total", map[string]string{"why": "permanent"}) == 1
	})

	good := submission("erin@customer.example", "", nil)
	e.checkDelivered(t, e.enqueue(t, good), good)
}

func TestGivesUpAfterMaxAttemptsWithoutProgress(t *testing.T) {
	e := newEnv(t, envConfig{})
	e.sb.SetFaults(jsmsandbox.Faults{ErrorRate: 1, ErrorStatuses: []int{http.StatusServiceUnavailable}, RetryAfter: time.Second})
	reg := prometheus.NewRegistry()
	opts := e.options(reg)
	opts.MaxAttempts = 3
	w := delivery.NewWorker(opts)
	stop := start(t, w)

	id := e.enqueue(t, submission("dana@customer.example", "", nil))
	st := e.waitFor(t, id, report.StateFailed)
	if !strings.Contains(st.Reason, "gave up after 3 attempts") {
		t.Errorf("reason = %q", st.Reason)
	}
	if err := w.Healthy(); err != nil {
		t.Errorf("Healthy = %v; an outage is not a configuration error", err)
	}
	eventually(t, "the failure counted", func() bool {
		return metric(t, reg, "supportbridge_delivery_reports_failed_total", map[string]string{"why": "exhausted"}) == 1
	})
	stop()
	if got := len(e.sb.Calls()); got != 3 {
		t.Errorf("%d calls, want 3: one per attempt", got)
	}
	if dead, _ := e.store.DeadLetters(context.Background(), 10); len(dead) != 1 {
		t.Errorf("dead letters = %+v", dead)
	}
}

// A ticket whose link to the tenant cannot be written (here: every write of it loses its
// answer) must not be retried forever. Each attempt finds the ticket again and records it
// again, which is no progress, so the report fails after MaxAttempts with a bounded number
// of JSM calls, instead of resetting its tries with every record.
func TestTicketThatCannotBeLinkedFailsAfterMaxAttempts(t *testing.T) {
	hook := &loseAnswers{prefixes: []string{"sb:ticket:"}}
	e := newEnv(t, envConfig{redisHook: hook})
	reg := prometheus.NewRegistry()
	opts := e.options(reg)
	opts.MaxAttempts = 4
	w := delivery.NewWorker(opts)
	start(t, w)

	id := e.enqueue(t, submission("dana@customer.example", "", nil))
	const searchBound = 4 * 20 // MaxAttempts × the searches one attempt may make
	searches := func() int { return e.calls(http.MethodGet, "/rest/api/3/search/jql") }
	deadline := time.Now().Add(30 * time.Second)
	var st report.Status
	for {
		var err error
		st, err = e.store.Status(context.Background(), testTenant, id)
		if err == nil && st.State == report.StateFailed {
			break
		}
		if n := searches(); n > searchBound || time.Now().After(deadline) {
			t.Fatalf("report still %s after %d marker searches and %d lost link writes; want failed after 4 attempts",
				st.State, n, hook.lost.Load())
		}
		time.Sleep(5 * time.Millisecond)
	}
	if !strings.Contains(st.Reason, "gave up after 4 attempts") {
		t.Errorf("reason = %q", st.Reason)
	}
	if got := e.calls(http.MethodPost, createPath); got != 1 {
		t.Errorf("%d creates, want 1: later attempts find the ticket by its marker", got)
	}
	if got := searches(); got > searchBound {
		t.Errorf("%d marker searches, want at most %d", got, searchBound)
	}
	if hook.lost.Load() == 0 {
		t.Error("no link write was ever failed: the test injected nothing")
	}
	if err := w.Healthy(); err != nil {
		t.Errorf("Healthy = %v; a storage problem is not a JSM configuration error", err)
	}
}

func TestWrongCredentialsMakeTheWorkerUnhealthy(t *testing.T) {
	e := newEnv(t, envConfig{jsm: func(c *jsm.Config) { c.APIToken = secret.New("revoked-token") }})
	w := delivery.NewWorker(e.options(prometheus.NewRegistry()))
	start(t, w)
	id := e.enqueue(t, submission("dana@customer.example", "", nil))
	e.waitFor(t, id, report.StateFailed)
	err := w.Healthy()
	if err == nil || !strings.HasPrefix(err.Error(), "JSM configuration is wrong: ") || !strings.HasSuffix(err.Error(), " answered 401") {
		t.Errorf("Healthy = %v", err)
	}
	if got := len(e.sb.Calls()); got != 1 {
		t.Errorf("%d calls, want 1", got)
	}
}

// Deliveries that last longer than ClaimIdle are kept by their worker (it touches its
// entries), so two workers on one queue never deliver a report twice.
func TestWorkersShareTheQueueWithoutDuplicates(t *testing.T) {
	e := newEnv(t, envConfig{})
	e.sb.SetFaults(jsmsandbox.Faults{Latency: 100 * time.Millisecond})
	subs := map[string]report.Submission{}
	for i := range 8 {
		sub := submission(fmt.Sprintf("user%d@customer.example", i%2), "", map[string]string{"a.txt": "x"})
		subs[e.enqueue(t, sub)] = sub
	}
	var regs []*prometheus.Registry
	for range 2 {
		reg := prometheus.NewRegistry()
		regs = append(regs, reg)
		opts := e.options(reg)
		opts.ClaimIdle = 300 * time.Millisecond // a delivery takes twice that and more
		start(t, delivery.NewWorker(opts))
	}
	for id, sub := range subs {
		e.checkDelivered(t, id, sub)
	}
	if got := e.calls(http.MethodPost, createPath); got != len(subs) {
		t.Errorf("%d creates for %d reports", got, len(subs))
	}
	for i, reg := range regs {
		if n := metric(t, reg, "supportbridge_delivery_attempts_total", map[string]string{"outcome": "interrupted"}); n != 0 {
			t.Errorf("worker %d: %v deliveries taken over by the other worker", i, n)
		}
	}
}

// A reporter whose site confirms no email gets a request raised by the service account; the
// typed hint is never made a customer, so JSM notifies nobody at it.
func TestReporterWithoutAConfirmedEmailIsRaisedByTheServiceAccount(t *testing.T) {
	e := newEnv(t, envConfig{})
	sub := submission("victim@other.example", "", nil)
	sub.Report.AccountID = unverifiedPrefix + "acc-7" // the site gives no email for it
	id := e.enqueue(t, sub)
	start(t, delivery.NewWorker(e.options(prometheus.NewRegistry())))
	st := e.waitFor(t, id, report.StateDelivered)
	if st.EmailSource != report.EmailUnverified {
		t.Errorf("status emailSource %q, want unverified", st.EmailSource)
	}
	reqs := e.sb.Requests()
	if len(reqs) != 1 || reqs[0].ReporterAccountID != e.sb.ServiceAccountID() {
		t.Fatalf("requests %+v, want one raised by the service account", reqs)
	}
	for _, c := range e.sb.Customers() {
		if c.Email == "victim@other.example" {
			t.Errorf("the typed hint became a customer")
		}
	}
}

// A site that does not answer holds the report for a few attempts, then the request is
// raised by the service account rather than not at all.
func TestUnreachableSiteFallsBackToTheServiceAccount(t *testing.T) {
	e := newEnv(t, envConfig{})
	sub := submission("dana@customer.example", "", nil)
	id := e.enqueue(t, sub)
	opts := e.options(prometheus.NewRegistry())
	var asked atomic.Int64
	opts.Sites = downSite{asked: &asked}
	start(t, delivery.NewWorker(opts))
	st := e.waitFor(t, id, report.StateDelivered)
	if st.EmailSource != report.EmailUnverified {
		t.Errorf("status emailSource %q, want unverified", st.EmailSource)
	}
	if n := asked.Load(); n < 2 {
		t.Errorf("the site was asked %d times, want a retry before giving up", n)
	}
	if r := e.sb.Requests(); len(r) != 1 || r[0].ReporterAccountID != e.sb.ServiceAccountID() {
		t.Errorf("requests %+v", r)
	}
}

type downSite struct{ asked *atomic.Int64 }

func (d downSite) VerifiedEmail(context.Context, delivery.Reporter) (string, error) {
	d.asked.Add(1)
	return "", errors.New("dial tcp: connection refused")
}

// The site's answer is cached for the day: a second report of the same person does not ask
// the site again.
func TestReporterEmailIsCachedPerAccount(t *testing.T) {
	e := newEnv(t, envConfig{})
	opts := e.options(prometheus.NewRegistry())
	var asked atomic.Int64
	opts.Sites = siteEmails{asked: &asked}
	start(t, delivery.NewWorker(opts))
	for range 2 {
		sub := submission("dana@customer.example", "", nil)
		e.checkDelivered(t, e.enqueue(t, sub), sub)
	}
	if n := asked.Load(); n != 1 {
		t.Errorf("the site was asked %d times for one person, want 1", n)
	}
}

// The worker compiles against its own port only: the JSM client and go-jira stay in the
// adapter.
func TestDeliveryDoesNotDependOnTheJSMClient(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "github.com/supportbridge/supportbridge/internal/delivery").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, dep := range strings.Fields(string(out)) {
		if strings.Contains(dep, "go-jira") || strings.HasSuffix(dep, "/internal/jsm") {
			t.Errorf("internal/delivery depends on %s", dep)
		}
	}
}

// askedSite records whom the worker asked about, and with what.
type askedSite struct {
	mu   sync.Mutex
	last delivery.Reporter
}

func (a *askedSite) VerifiedEmail(_ context.Context, r delivery.Reporter) (string, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.last = r
	return "forge.user@customer.example", nil
}

// A Forge report carries the app system token Forge sent with it; the worker asks the site
// with it, at the installation's API base URL.
func TestForgeReporterIsAskedAboutWithTheKeptSystemToken(t *testing.T) {
	e := newEnv(t, envConfig{})
	sub := submission("forge.user@customer.example", "", nil)
	sub.Report.AccountID = "forge-acc-1"
	sub.SiteToken, sub.SiteAPI = secret.New("forge-system-token"), "https://api.atlassian.com/ex/jira/cloud-1"
	id := e.enqueue(t, sub)
	opts := e.options(prometheus.NewRegistry())
	site := &askedSite{}
	opts.Sites = site
	start(t, delivery.NewWorker(opts))
	if st := e.waitFor(t, id, report.StateDelivered); st.EmailSource != report.EmailFromSite {
		t.Errorf("emailSource %q, want site", st.EmailSource)
	}
	site.mu.Lock()
	defer site.mu.Unlock()
	if site.last.AccountID != "forge-acc-1" || site.last.SiteToken.Reveal() != "forge-system-token" || site.last.SiteAPI != sub.SiteAPI {
		t.Errorf("asked about %+v (token %q)", site.last, site.last.SiteToken.Reveal())
	}
}

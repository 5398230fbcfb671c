package httpapi

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/supportbridge/supportbridge/internal/agentauth"
	"github.com/supportbridge/supportbridge/internal/audit"
	"github.com/supportbridge/supportbridge/internal/config"
	"github.com/supportbridge/supportbridge/internal/consent"
	"github.com/supportbridge/supportbridge/internal/redisstore"
	"github.com/supportbridge/supportbridge/internal/secret"
)

// Agent tokens of the consent tests. They are listed in a static tokens file by their hash,
// exactly as an operator would.
const (
	aliceToken = "alice-agent-token-0123456789abcdef"
	bobToken   = "bob-agent-token-0123456789abcdef00"
	rootToken  = "root-admin-token-0123456789abcdef0"

	consentTenant  = "tenant-consent"
	webhookSecret  = "jira-webhook-secret-for-tests"
	consentTicket  = "SUP-1"
	otherTicket    = "SUP-2"
	closedTicket   = "SUP-9"
	unknownTicket  = "NOPE-1"
	defaultStreams = "app,audit"
)

// consentClock is the shared clock of the service and the HTTP layer; tests move it to
// cross claim windows and grant ends without sleeping.
type consentClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *consentClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *consentClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// fakeTickets stands in for JSM: it knows which tenant filed which ticket and keeps the
// comments consent posts, which is how tests (like the customer) receive the link.
type fakeTickets struct {
	mu       sync.Mutex
	tenants  map[string]string
	done     map[string]bool
	comments []ticketComment
}

type ticketComment struct {
	Key, Body string
	Public    bool
}

func (f *fakeTickets) TicketTenant(_ context.Context, key string) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	t, ok := f.tenants[key]
	if !ok {
		return "", fmt.Errorf("ticket %s: %w", key, consent.ErrTicketUnknown)
	}
	return t, nil
}

func (f *fakeTickets) AddComment(_ context.Context, key, body string, public bool) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.comments = append(f.comments, ticketComment{Key: key, Body: body, Public: public})
	return nil
}

func (f *fakeTickets) TicketDone(_ context.Context, key string) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.done[key], nil
}

// fakeStreams lists every tenant's streams as the log store would.
type fakeStreams []string

func (f fakeStreams) Streams(context.Context, string) ([]string, error) { return f, nil }

// linkRE finds a consent token in a ticket comment.
var linkRE = regexp.MustCompile(`/consent/([A-Za-z0-9_-]{43})`)

// lastLink returns the token of the newest consent link posted on any ticket.
func (f *fakeTickets) lastLink(t testing.TB) string {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	for i := len(f.comments) - 1; i >= 0; i-- {
		if m := linkRE.FindStringSubmatch(f.comments[i].Body); m != nil {
			if !f.comments[i].Public {
				t.Fatalf("consent link posted in an internal comment: the customer would never see it")
			}
			return m[1]
		}
	}
	t.Fatal("no consent link was posted")
	return ""
}

// consentHarness is the full router with consent wired to a real consent.Service on real
// Redis, a static agent tokens file, and fake JSM tickets.
type consentHarness struct {
	*harness
	svc     *consent.Service
	tickets *fakeTickets
	clock   *consentClock
	// tokens are every consent token handed out, so tests can check none leaks.
	mu     sync.Mutex
	tokens []string
	// agentBodies are every response body and header block an agent route returned.
	agentBodies []string
}

type consentOption func(*ConsentDeps)

func newConsentHarness(t testing.TB, opts ...consentOption) *consentHarness {
	t.Helper()
	ch := &consentHarness{
		tickets: &fakeTickets{
			tenants: map[string]string{consentTicket: consentTenant, otherTicket: consentTenant, closedTicket: consentTenant},
			done:    map[string]bool{closedTicket: true},
		},
		// A fixed start keeps the log windows in the past and the pages deterministic.
		clock: &consentClock{t: time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)},
	}
	tokensFile := writeAgentTokens(t)
	agents, err := agentauth.New(agentauth.Options{TokensFile: tokensFile})
	if err != nil {
		t.Fatal(err)
	}
	ch.harness = newHarness(t, func(env map[string]string, o *Options) {
		rdb, err := redisstore.NewClient(config.Redis{URL: env["SB_REDIS_URL"]})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { rdb.Close() })
		ch.svc = consent.NewService(consent.Options{
			Store:         redisstore.NewConsent(rdb),
			Tickets:       ch.tickets,
			Streams:       fakeStreams(strings.Split(defaultStreams, ",")),
			Audit:         audit.New(redisstore.NewAudit(rdb), ch.clock.Now),
			Now:           ch.clock.Now,
			PublicBaseURL: testBaseURL,
		})
		o.Consent = ConsentDeps{Service: ch.svc, Agents: agents, WebhookSecret: secret.New(webhookSecret)}
		for _, opt := range opts {
			opt(&o.Consent)
		}
	})
	// The HTTP layer keeps the real clock: Atlassian tokens in these tests are signed now.
	return ch
}

// writeAgentTokens writes the static tokens file: two agents and an admin.
func writeAgentTokens(t testing.TB) string {
	t.Helper()
	sum := func(s string) string { h := sha256.Sum256([]byte(s)); return hex.EncodeToString(h[:]) }
	entries := []map[string]string{
		{"name": "Alice Agent", "email": "alice@vendor.example", "role": "agent", "tokenSha256": sum(aliceToken)},
		{"name": "Bob Agent", "email": "bob@vendor.example", "role": "agent", "tokenSha256": sum(bobToken)},
		{"name": "Root Admin", "email": "root@vendor.example", "role": "admin", "tokenSha256": sum(rootToken)},
	}
	b, _ := json.Marshal(entries)
	path := filepath.Join(t.TempDir(), "agents.json")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func bearer(token string) map[string]string {
	return map[string]string{"Authorization": "Bearer " + token}
}

// agent calls an agent route and keeps what came back, for the token-leak scan.
func (ch *consentHarness) agent(method, path string, headers map[string]string, body any) (int, http.Header, []byte) {
	ch.t.Helper()
	var b []byte
	if body != nil {
		switch v := body.(type) {
		case []byte:
			b = v
		default:
			b, _ = json.Marshal(v)
		}
	}
	st, hdr, out := ch.do(method, path, headers, b)
	ch.mu.Lock()
	ch.agentBodies = append(ch.agentBodies, fmt.Sprint(hdr)+"\n"+string(out))
	ch.mu.Unlock()
	return st, hdr, out
}

// requestBody is a valid access request for ticket, with its log window in the past.
func (ch *consentHarness) requestBody(ticket string, mutate func(map[string]any)) map[string]any {
	now := ch.clock.Now()
	b := map[string]any{
		"ticketKey": ticket, "reason": "Export to CSV fails for the customer since Monday.",
		"streams": []string{"app"}, "from": now.Add(-48 * time.Hour).Format(time.RFC3339),
		"to": now.Add(-time.Hour).Format(time.RFC3339), "personalData": false, "duration": "24h",
	}
	if mutate != nil {
		mutate(b)
	}
	return b
}

// newRequest creates an access request as the agent with token and returns its id and the
// consent token posted to the customer.
func (ch *consentHarness) newRequest(agentToken string, mutate func(map[string]any)) (id, link string) {
	ch.t.Helper()
	st, _, body := ch.agent("POST", "/api/v1/access-requests", bearer(agentToken), ch.requestBody(consentTicket, mutate))
	if st != http.StatusCreated {
		ch.t.Fatalf("create access request: status %d, body %s", st, body)
	}
	var r consent.AccessRequest
	if err := json.Unmarshal(body, &r); err != nil {
		ch.t.Fatal(err)
	}
	link = ch.tickets.lastLink(ch.t)
	ch.mu.Lock()
	ch.tokens = append(ch.tokens, link)
	ch.mu.Unlock()
	return r.ID, link
}

// browser is one customer's browser: its CSRF cookie, as the consent pages set it.
type browser struct {
	cookie string
}

// page GETs a consent page, keeping any CSRF cookie it sets, and returns the status, headers,
// body and the hidden CSRF field of its forms ("" when it has none).
func (ch *consentHarness) page(b *browser, token string) (int, http.Header, string, string) {
	ch.t.Helper()
	hdr := map[string]string{}
	if b != nil && b.cookie != "" {
		hdr["Cookie"] = csrfCookieName + "=" + b.cookie
	}
	st, h, body := ch.do("GET", "/consent/"+token, hdr, nil)
	if b != nil {
		for _, c := range (&http.Response{Header: h}).Cookies() {
			if c.Name == csrfCookieName {
				b.cookie = c.Value
			}
		}
	}
	field := ""
	if m := csrfFieldRE.FindStringSubmatch(string(body)); m != nil {
		field = html.UnescapeString(m[1])
	}
	return st, h, string(body), field
}

var csrfFieldRE = regexp.MustCompile(`name="csrf" value="([^"]*)"`)

// post sends a consent form as a browser would: URL-encoded, with the cookie and the field.
func (ch *consentHarness) post(b *browser, token, action, field string, values url.Values) (int, http.Header, string) {
	ch.t.Helper()
	if values == nil {
		values = url.Values{}
	}
	if field != "" {
		values.Set(csrfFieldName, field)
	}
	hdr := map[string]string{"Content-Type": "application/x-www-form-urlencoded"}
	if b != nil && b.cookie != "" {
		hdr["Cookie"] = csrfCookieName + "=" + b.cookie
	}
	st, h, body := ch.doNoRedirect("POST", "/consent/"+token+"/"+action, hdr, []byte(values.Encode()))
	return st, h, string(body)
}

// decide opens the page in a fresh browser and posts action, which must succeed with 303.
func (ch *consentHarness) decide(token, action string, values url.Values) {
	ch.t.Helper()
	b := &browser{}
	st, _, body, field := ch.page(b, token)
	if st != http.StatusOK || field == "" {
		ch.t.Fatalf("consent page: status %d, csrf %q, body %s", st, field, body)
	}
	if st, _, body := ch.post(b, token, action, field, values); st != http.StatusSeeOther {
		ch.t.Fatalf("%s: status %d, body %s", action, st, body)
	}
}

// doNoRedirect is harness.do without following redirects, so a 303 is seen as such.
func (ch *consentHarness) doNoRedirect(method, path string, headers map[string]string, body []byte) (int, http.Header, []byte) {
	ch.t.Helper()
	req, err := http.NewRequest(method, ch.srv.URL+path, strings.NewReader(string(body)))
	if err != nil {
		ch.t.Fatal(err)
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	client := *ch.srv.Client()
	client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := client.Do(req)
	if err != nil {
		ch.t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, out
}

// forgedToken is a well-formed token that was never issued.
func forgedToken(t testing.TB) string {
	t.Helper()
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// checkNoTokenLeak fails if any consent token appears in an agent-facing response or in the
// server log.
func (ch *consentHarness) checkNoTokenLeak(t testing.TB) {
	t.Helper()
	ch.mu.Lock()
	defer ch.mu.Unlock()
	if len(ch.tokens) == 0 {
		t.Fatal("no consent token was issued; the leak check would prove nothing")
	}
	logs := ch.logs.String()
	for _, tok := range ch.tokens {
		for _, b := range ch.agentBodies {
			if strings.Contains(b, tok) {
				t.Errorf("an agent-facing response contains a consent token: %s", b)
			}
		}
		if strings.Contains(logs, tok) {
			t.Errorf("the server log contains a consent token")
		}
	}
}

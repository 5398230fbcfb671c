package httpapi

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/supportbridge/supportbridge/internal/agentauth"
	"github.com/supportbridge/supportbridge/internal/audit"
	"github.com/supportbridge/supportbridge/internal/config"
	"github.com/supportbridge/supportbridge/internal/connect"
	"github.com/supportbridge/supportbridge/internal/consent"
	"github.com/supportbridge/supportbridge/internal/logaccess"
	"github.com/supportbridge/supportbridge/internal/logstore"
	"github.com/supportbridge/supportbridge/internal/pagetoken"
	"github.com/supportbridge/supportbridge/internal/redisstore"
	"github.com/supportbridge/supportbridge/internal/secret"
	"github.com/supportbridge/supportbridge/internal/siteapi"
	"github.com/supportbridge/supportbridge/internal/sitesandbox"
	"github.com/supportbridge/supportbridge/internal/sitesandbox/sitetest"
	"github.com/supportbridge/supportbridge/internal/tenant"
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

func (f *fakeTickets) Comments(_ context.Context, key string) ([]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, c := range f.comments {
		if c.Key == key && c.Public {
			out = append(out, c.Body)
		}
	}
	return out, nil
}

func (f *fakeTickets) TicketDone(_ context.Context, key string) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.done[key], nil
}

// fakeStreams lists every tenant's streams as the log store would.
type fakeStreams []string

func (f fakeStreams) Streams(context.Context, string) ([]string, error) { return f, nil }

// announceRE finds the deep link into the customer's admin page that announces a request.
var announceRE = regexp.MustCompile(regexp.QuoteMeta(siteURL) + `/plugins/servlet/ac/` + testAppKey + `/support-access\?ac\.request=(ar_[0-9a-f]{32})`)

// lastAnnounced returns the newest request announced on any ticket, and that comment.
func (f *fakeTickets) lastAnnounced(t testing.TB) (id, body string) {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	for i := len(f.comments) - 1; i >= 0; i-- {
		if m := announceRE.FindStringSubmatch(f.comments[i].Body); m != nil {
			if !f.comments[i].Public {
				t.Fatalf("request announced in an internal comment: the customer would never see it")
			}
			return m[1], f.comments[i].Body
		}
	}
	t.Fatal("no request was announced")
	return "", ""
}

func (f *fakeTickets) all() []ticketComment {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]ticketComment(nil), f.comments...)
}

// consentHarness is the full router with consent wired to a real consent.Service on real
// Redis, a static agent tokens file, fake JSM tickets, and the customer's site as a local
// Atlassian site over real HTTP that the real siteapi.Checker asks about administrators.
type consentHarness struct {
	*harness
	svc     *consent.Service
	tickets *fakeTickets
	clock   *consentClock
	site    *sitesandbox.Site
	siteSrv *httptest.Server
	sites   *siteapi.Checker
	mu      sync.Mutex
	// agentBodies are every response body and header block an agent route returned.
	agentBodies []string
	// logs is the tenant's log store on disk, read through src, which a test can slow down.
	logDir string
	src    *slowSource
	reader *logaccess.Service
}

// slowSource is the log store on disk, optionally throttled so that a read lasts long
// enough for something to happen during it.
type slowSource struct {
	logstore.Source
	mu    sync.Mutex
	delay time.Duration // per 16 KiB read
}

func (s *slowSource) setDelay(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.delay = d
}

func (s *slowSource) ReadRange(ctx context.Context, tenant, stream, name string, off, n int64) (io.ReadCloser, error) {
	rc, err := s.Source.ReadRange(ctx, tenant, stream, name, off, n)
	s.mu.Lock()
	d := s.delay
	s.mu.Unlock()
	if err != nil || d == 0 {
		return rc, err
	}
	return &slowReader{rc: rc, delay: d}, nil
}

type slowReader struct {
	rc    io.ReadCloser
	delay time.Duration
}

func (r *slowReader) Read(p []byte) (int, error) {
	time.Sleep(r.delay)
	if len(p) > 16<<10 {
		p = p[:16<<10]
	}
	return r.rc.Read(p)
}

func (r *slowReader) Close() error { return r.rc.Close() }

// writeTestLogs writes two days and a half of logs for tenant in streams app and audit,
// a line a minute, with personal data and a secret in some lines.
func writeTestLogs(t testing.TB, root, tenant string, end time.Time) {
	t.Helper()
	for _, stream := range []string{"app", "audit"} {
		dir := filepath.Join(root, tenant, stream)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		start := end.Add(-60 * time.Hour).Truncate(24 * time.Hour)
		files := map[string]*strings.Builder{}
		for ts := start; ts.Before(end); ts = ts.Add(time.Minute) {
			day := ts.Format("2006-01-02")
			if files[day] == nil {
				files[day] = &strings.Builder{}
			}
			n := ts.Unix() / 60
			fmt.Fprintf(files[day], `{"time":%q,"level":"info","msg":"sync run %d","user":"user%d@customer.example","ip":"10.0.%d.%d","token":"ghp_%036d"}`+"\n",
				ts.Format(time.RFC3339), n, n%5, n%200, n%250, n)
		}
		for day, b := range files {
			if err := os.WriteFile(filepath.Join(dir, day+".log"), []byte(b.String()), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// Accounts on the consent tenant's site.
const (
	siteAdminAccount = "5b10ac8d82e05b22cc7d4ef5"
	siteUserAccount  = "5b10a2844c20165700ede21g"
	consentSecret    = "tenant-consent-shared-secret-0123456789"
	forgeSystemToken = "forge-system-token-for-tests"
)

type consentOption func(*ConsentDeps)

func newConsentHarness(t testing.TB, opts ...consentOption) *consentHarness {
	t.Helper()
	return newConsentHarnessWith(t, nil, opts...)
}

// newConsentHarnessWith also applies harness options, such as withForge.
func newConsentHarnessWith(t testing.TB, hopts []harnessOption, opts ...consentOption) *consentHarness {
	t.Helper()
	ch := &consentHarness{
		tickets: &fakeTickets{
			tenants: map[string]string{consentTicket: consentTenant, otherTicket: consentTenant, closedTicket: consentTenant},
			done:    map[string]bool{closedTicket: true},
		},
		// The hour now: grant ends become real Redis expiries, so they must lie in the real future.
		clock: &consentClock{t: time.Now().UTC().Truncate(time.Hour)},
	}
	tokensFile := writeAgentTokens(t)
	agents, err := agentauth.New(agentauth.Options{TokensFile: tokensFile})
	if err != nil {
		t.Fatal(err)
	}
	ch.harness = newHarness(t, append(hopts, func(env map[string]string, o *Options) {
		rdb, err := redisstore.NewClient(config.Redis{URL: env["SB_REDIS_URL"]})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { rdb.Close() })
		// The customer's site, validated against Atlassian's platform spec.
		ch.site, ch.siteSrv = sitetest.NewTestServer(t, sitesandbox.Options{AppKey: testAppKey,
			SharedSecret: []byte(consentSecret), SystemToken: forgeSystemToken})
		ch.site.AddUser(siteAdminAccount, "ada@customer.example", true)
		ch.site.AddUser(siteUserAccount, "sam@customer.example", false)
		ch.sites = &siteapi.Checker{Tenants: harnessTenants{ch}, AppKey: testAppKey, HTTP: &http.Client{Timeout: 2 * time.Second},
			Rewrite: func(base string) string {
				if base == siteURL {
					return ch.siteSrv.URL
				}
				return base
			}}
		ch.logDir = t.TempDir()
		writeTestLogs(t, ch.logDir, consentTenant, ch.clock.Now())
		ch.src = &slowSource{Source: logstore.NewDir(ch.logDir)}
		logs := logstore.New(ch.src)
		ch.svc = consent.NewService(consent.Options{
			Store:   redisstore.NewConsent(rdb),
			Tickets: ch.tickets,
			Streams: logs,
			Preview: previewFunc(func(ctx context.Context, r consent.AccessRequest) consent.Preview { return ch.reader.Preview(ctx, r) }),
			Audit:   audit.New(redisstore.NewAudit(rdb), []byte("httpapi-tests-audit-key-0123456789abc"), ch.clock.Now),
			Sites:   ch.sites,
			Tenants: siteapi.ConsentTenants{Dir: harnessTenants{ch}, AppKey: testAppKey},
			Now:     ch.clock.Now,
		})
		o.Consent = ConsentDeps{Service: ch.svc, Agents: agents, WebhookSecret: secret.New(webhookSecret)}
		ch.reader, err = logaccess.New(logaccess.Options{Consent: ch.svc, Logs: logs,
			Secrets: logaccess.TenantSecrets{Dir: harnessTenants{ch}}, MaxBytes: 1 << 40,
			PseudonymKey: []byte("httpapi-tests-pseudonym-key-0123456789"), Logger: o.Logger})
		if err != nil {
			t.Fatal(err)
		}
		o.Logs = ch.reader
		pages, err := pagetoken.New([]byte("httpapi-tests-page-token-key-0123456789"), 0, nil)
		if err != nil {
			t.Fatal(err)
		}
		o.PageTokens, o.SiteUI = pages, os.DirFS(filepath.Join("..", "..", "web", "site-admin"))
		for _, opt := range opts {
			opt(&o.Consent)
		}
	})...)
	// The HTTP layer keeps the real clock: Atlassian tokens in these tests are signed now.
	ch.install(consentTenant, consentSecret)
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
// ticket comment that announced it.
func (ch *consentHarness) newRequest(agentToken string, mutate func(map[string]any)) (id, comment string) {
	ch.t.Helper()
	st, _, body := ch.agent("POST", "/api/v1/access-requests", bearer(agentToken), ch.requestBody(consentTicket, mutate))
	if st != http.StatusCreated {
		ch.t.Fatalf("create access request: status %d, body %s", st, body)
	}
	var r consent.AccessRequest
	if err := json.Unmarshal(body, &r); err != nil {
		ch.t.Fatal(err)
	}
	announced, comment := ch.tickets.lastAnnounced(ch.t)
	if announced != r.ID {
		ch.t.Fatalf("the ticket announced %s, want %s", announced, r.ID)
	}
	return r.ID, comment
}

// pageURL is the admin page's URL as Atlassian loads it, with a module JWT for account
// whose qsh is that of this exact URL; mutate may tamper with the claims.
func (ch *consentHarness) pageURL(account, requestID string, mutate func(jwt.MapClaims)) string {
	ch.t.Helper()
	path := connect.PathSupportAccess
	if requestID != "" {
		path += "?ac.request=" + requestID
	}
	u, _ := url.Parse(path)
	qsh := connect.QSH("GET", u, "")
	tok := contextToken(ch.t, consentTenant, consentSecret, account, func(c jwt.MapClaims) {
		c["qsh"] = qsh
		if mutate != nil {
			mutate(c)
		}
	})
	sep := "?"
	if requestID != "" {
		sep = "&"
	}
	return path + sep + "jwt=" + tok
}

var pageTokenRE = regexp.MustCompile(`<meta name="sb-page-token" content="([^"]+)">`)

// pageToken loads the admin page as account and returns the page token it carries.
func (ch *consentHarness) pageToken(account string) string {
	ch.t.Helper()
	st, _, body := ch.do("GET", ch.pageURL(account, "", nil), nil, nil)
	m := pageTokenRE.FindSubmatch(body)
	if st != http.StatusOK || m == nil {
		ch.t.Fatalf("admin page: status %d, body %s", st, body)
	}
	return html.UnescapeString(string(m[1]))
}

// siteCall calls a site route with a page token.
func (ch *consentHarness) siteCall(token, method, path string, body any) (int, http.Header, []byte) {
	ch.t.Helper()
	var b []byte
	if body != nil {
		b, _ = json.Marshal(body)
	}
	return ch.do(method, path, bearer(token), b)
}

// approve approves request id as the site's administrator, which must succeed.
func (ch *consentHarness) approve(id, duration string) {
	ch.t.Helper()
	var body any
	if duration != "" {
		body = map[string]string{"duration": duration}
	}
	st, _, b := ch.siteCall(ch.pageToken(siteAdminAccount), "POST", "/api/v1/site/access-requests/"+id+"/approve", body)
	if st != http.StatusOK {
		ch.t.Fatalf("approve: status %d, body %s", st, b)
	}
}

// previewFunc adapts a function to consent.Previewer, as the binary does.
type previewFunc func(ctx context.Context, r consent.AccessRequest) consent.Preview

func (f previewFunc) Preview(ctx context.Context, r consent.AccessRequest) consent.Preview {
	return f(ctx, r)
}

// harnessTenants reaches the harness's tenant directory, which newHarness makes after the
// options that wire consent have run.
type harnessTenants struct{ ch *consentHarness }

func (h harnessTenants) Get(ctx context.Context, key string) (tenant.Tenant, error) {
	return h.ch.tenants.Get(ctx, key)
}

package consent_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/supportbridge/supportbridge/internal/audit"
	"github.com/supportbridge/supportbridge/internal/consent"
	"github.com/supportbridge/supportbridge/internal/redisstore"
	"github.com/supportbridge/supportbridge/internal/redisstore/redistest"
)

func TestMain(m *testing.M) { redistest.Main(m) }

// clock is the controlled clock every test drives. It starts at the current second so that
// grant ends, which Redis turns into real expiries, lie in the real future.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Now().UTC().Truncate(time.Second)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// comment is one comment the fake JSM received.
type comment struct {
	Ticket string
	Body   string
	Public bool
}

// fakeTickets stands in for JSM: which tenant each ticket came from, which are done, and
// every comment posted.
type fakeTickets struct {
	mu       sync.Mutex
	tenants  map[string]string
	done     map[string]bool
	comments []comment
	failNext int // fail this many AddComment calls
	deleted  map[string]bool
	calls    int // AddComment and TicketDone calls
}

func newFakeTickets() *fakeTickets {
	return &fakeTickets{tenants: map[string]string{}, done: map[string]bool{}, deleted: map[string]bool{}}
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
	f.calls++
	if f.deleted[key] {
		return fmt.Errorf("jsm 404: %w", consent.ErrTicketDeleted)
	}
	if f.failNext > 0 {
		f.failNext--
		return errors.New("jsm unavailable")
	}
	f.comments = append(f.comments, comment{Ticket: key, Body: body, Public: public})
	return nil
}

func (f *fakeTickets) Comments(_ context.Context, key string) ([]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, c := range f.comments {
		if c.Ticket == key {
			out = append(out, c.Body)
		}
	}
	return out, nil
}

func (f *fakeTickets) TicketDone(_ context.Context, key string) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if f.deleted[key] {
		return false, fmt.Errorf("jsm 404: %w", consent.ErrTicketDeleted)
	}
	return f.done[key], nil
}

func (f *fakeTickets) setDeleted(key string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.deleted[key] = true
}

func (f *fakeTickets) setDone(key string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.done[key] = true
}

func (f *fakeTickets) forget(key string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.tenants, key)
}

func (f *fakeTickets) failComments(n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failNext = n
}

func (f *fakeTickets) all() []comment {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.comments)
}

func (f *fakeTickets) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.comments)
}

// fakeStreams lists each tenant's log streams.
type fakeStreams map[string][]string

func (f fakeStreams) Streams(_ context.Context, tenant string) ([]string, error) {
	return f[tenant], nil
}

// fakeSites stands in for customers' sites answering permissions/check: who administers
// which tenant's site, and whether the site answers at all.
type fakeSites struct {
	mu     sync.Mutex
	admins map[string]bool // tenant + "/" + accountId
	down   bool
	calls  int
}

func (f *fakeSites) Check(_ context.Context, who consent.SiteAdmin, _ bool) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if f.down {
		return fmt.Errorf("site: %w", consent.ErrSiteUnavailable)
	}
	if !f.admins[who.Tenant+"/"+who.AccountID] {
		return consent.ErrNotSiteAdmin
	}
	return nil
}

func (f *fakeSites) set(tenant, account string, admin bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.admins[tenant+"/"+account] = admin
}

func (f *fakeSites) setDown(down bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.down = down
}

// fakeTenants says which tenants are active and builds their admin-page links.
type fakeTenants struct {
	mu       sync.Mutex
	inactive map[string]bool
}

func (f *fakeTenants) Active(_ context.Context, tenant string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.inactive[tenant] {
		return consent.ErrTenantInactive
	}
	return nil
}

func (f *fakeTenants) AdminPageURL(_ context.Context, tenant, id string) (string, error) {
	return "https://" + tenant + ".atlassian.net/plugins/servlet/ac/supportbridge/support-access?ac.request=" + id, nil
}

func (f *fakeTenants) setInactive(tenant string, inactive bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.inactive[tenant] = inactive
}

// adminAccount administers tenant-a's and tenant-b's sites in every env.
const adminAccount = "5b10ac8d82e05b22cc7d4ef5"

// env is a Service on a real Redis with a fake JSM and a controlled clock.
type env struct {
	svc     *consent.Service
	store   *redisstore.Consent
	tickets *fakeTickets
	sites   *fakeSites
	tenants *fakeTenants
	clock   *clock
	audit   *audit.Log
}

// auditKey keys the audit chains of these tests.
var auditKey = []byte("consent-tests-audit-key-0123456789abcdef")

var (
	alice = consent.Actor{Kind: consent.ActorAgent, Name: "Alice Agent", Email: "alice@vendor.example", Subject: "static:alice"}
	bob   = consent.Actor{Kind: consent.ActorAgent, Name: "Bob Agent", Email: "bob@vendor.example", Subject: "static:bob"}
	root  = consent.Actor{Kind: consent.ActorAdmin, Name: "Ada Admin", Email: "ada@vendor.example", Subject: "static:ada"}
)

type envOption func(*consent.Options)

func newEnv(t *testing.T, opts ...envOption) *env {
	t.Helper()
	rdb := redistest.Client(t)
	e := &env{
		store:   redisstore.NewConsent(rdb),
		tickets: newFakeTickets(),
		sites:   &fakeSites{admins: map[string]bool{}},
		tenants: &fakeTenants{inactive: map[string]bool{}},
		clock:   newClock(),
	}
	e.sites.set("tenant-a", adminAccount, true)
	e.sites.set("tenant-b", adminAccount, true)
	e.audit = audit.New(redisstore.NewAudit(rdb), auditKey, e.clock.Now)
	e.tickets.tenants["SUP-1"] = "tenant-a"
	e.tickets.tenants["SUP-2"] = "tenant-a"
	e.tickets.tenants["SUP-3"] = "tenant-b"
	o := consent.Options{
		Store:   e.store,
		Tickets: e.tickets,
		Streams: fakeStreams{"tenant-a": {"api", "worker"}, "tenant-b": {"api", "web"}},
		Audit:   e.audit,
		Sites:   e.sites,
		Tenants: e.tenants,
		Now:     e.clock.Now,
	}
	for _, f := range opts {
		f(&o)
	}
	e.svc = consent.NewService(o)
	return e
}

// input is a valid request for SUP-1 with the given duration.
func (e *env) input(duration string) consent.RequestInput {
	now := e.clock.Now()
	return consent.RequestInput{
		TicketKey: "SUP-1",
		Reason:    "Checkout fails with a 500 since Monday",
		Streams:   []string{"api"},
		From:      now.Add(-48 * time.Hour),
		To:        now.Add(-time.Hour),
		Duration:  duration,
	}
}

// pageRE finds the deep link into the customer's admin page that announces a request.
var pageRE = regexp.MustCompile(`/plugins/servlet/ac/supportbridge/support-access\?ac\.request=(ar_[0-9a-f]{32})\b`)

// lastAnnounced is the id of the newest request announced on a ticket.
func (e *env) lastAnnounced(t *testing.T) string {
	t.Helper()
	cs := e.tickets.all()
	for i := len(cs) - 1; i >= 0; i-- {
		if m := pageRE.FindStringSubmatch(cs[i].Body); m != nil {
			return m[1]
		}
	}
	t.Fatal("no request was announced")
	return ""
}

// admin is the site administrator of the tenant of request or grant id (tenant-a when the
// id is unknown, as for forged ids).
func (e *env) admin(ctx context.Context, id string) consent.SiteAdmin {
	tenant := "tenant-a"
	if r, err := e.svc.GetRequest(ctx, id); err == nil {
		tenant = r.Tenant
	} else if g, err := e.svc.GetGrant(ctx, id); err == nil {
		tenant = g.Tenant
	}
	return consent.SiteAdmin{Tenant: tenant, AccountID: adminAccount, Via: "connect"}
}

// approve, deny, revoke and view act as the site administrator of the request's tenant.
func (e *env) approve(ctx context.Context, id, duration string) (consent.Grant, error) {
	return e.svc.Approve(ctx, e.admin(ctx, id), id, duration)
}

func (e *env) deny(ctx context.Context, id, note string) error {
	_, err := e.svc.Deny(ctx, e.admin(ctx, id), id, note)
	return err
}

// revokeByCustomer revokes the grant that request id produced or re-confirms.
func (e *env) revokeByCustomer(ctx context.Context, id string) error {
	r, err := e.svc.GetRequest(ctx, id)
	if err != nil {
		return err
	}
	gid := r.GrantID
	if gid == "" {
		gid = r.Reconfirms
	}
	if gid == "" {
		return consent.ErrNoActiveGrant
	}
	_, err = e.svc.RevokeBySite(ctx, e.admin(ctx, id), gid)
	return err
}

func (e *env) view(ctx context.Context, id string) (consent.View, error) {
	return e.svc.SiteView(ctx, e.admin(ctx, id), id)
}

// request files a request as alice and returns it with the id its ticket comment announced.
func (e *env) request(t *testing.T, in consent.RequestInput) (consent.AccessRequest, string) {
	t.Helper()
	return e.requestAs(t, alice, in)
}

func (e *env) requestAs(t *testing.T, who consent.Actor, in consent.RequestInput) (consent.AccessRequest, string) {
	t.Helper()
	r, err := e.svc.RequestAccess(context.Background(), who, in)
	if err != nil {
		t.Fatalf("RequestAccess: %v", err)
	}
	if id := e.lastAnnounced(t); id != r.ID {
		t.Fatalf("the ticket announced %s, want %s", id, r.ID)
	}
	return r, r.ID
}

// actions lists the audit actions of a tenant in order.
func (e *env) actions(t *testing.T, tenant string) []string {
	t.Helper()
	es, err := e.audit.List(context.Background(), tenant, audit.Filter{})
	if err != nil {
		t.Fatalf("audit list: %v", err)
	}
	var out []string
	for _, x := range es {
		out = append(out, x.Action)
	}
	return out
}

// commentsSince returns the comments posted after the first n.
func (e *env) commentsSince(n int) []comment { return e.tickets.all()[n:] }

func mustContain(t *testing.T, what, s string, subs ...string) {
	t.Helper()
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			t.Errorf("%s = %q, want it to contain %q", what, s, sub)
		}
	}
}

func wantErr(t *testing.T, what string, got, want error) {
	t.Helper()
	if !errors.Is(got, want) {
		t.Fatalf("%s: got error %v, want %v", what, got, want)
	}
}

// seededReader makes ids and tokens reproducible in the model test.
func seededReader(seed uint64) *rand.ChaCha8 {
	var s [32]byte
	for i := range 8 {
		s[i] = byte(seed >> (8 * i))
	}
	return rand.NewChaCha8(s)
}

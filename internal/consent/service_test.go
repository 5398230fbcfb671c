package consent_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/supportbridge/supportbridge/internal/audit"
	"github.com/supportbridge/supportbridge/internal/consent"
	"github.com/supportbridge/supportbridge/internal/redisstore"
	"github.com/supportbridge/supportbridge/internal/redisstore/redistest"
)

var ctx = context.Background()

func TestRequestApproveExpire(t *testing.T) {
	e := newEnv(t)
	in := e.input("24h")
	in.Streams = []string{"api", "worker"}
	r, token := e.request(t, in)

	if r.Status != consent.RequestPending || r.Tenant != "tenant-a" || r.Agent.Subject != alice.Subject {
		t.Fatalf("request = %+v", r)
	}
	if got, want := r.ExpiresAt, e.clock.Now().Add(72*time.Hour); !got.Equal(want) {
		t.Errorf("ExpiresAt = %v, want %v", got, want)
	}
	cs := e.tickets.all()
	if len(cs) != 1 || !cs[0].Public || cs[0].Ticket != "SUP-1" {
		t.Fatalf("comments = %+v, want one public comment on SUP-1", cs)
	}
	mustContain(t, "request comment", cs[0].Body, "Alice Agent", in.Reason, "api, worker",
		"24 hours from the moment of approval", "/plugins/servlet/ac/supportbridge/support-access?ac.request="+r.ID,
		"pseudonyms", "Only administrators of your site can decide", "audit: ")

	v, err := e.view(ctx, token)
	if err != nil {
		t.Fatalf("View: %v", err)
	}
	if v.Request.ID != r.ID || v.Grant != nil || v.TimeLeft != 72*time.Hour {
		t.Errorf("View = %+v", v)
	}

	// The clock starts at approval, not at the request.
	e.clock.Advance(5 * time.Hour)
	approvedAt := e.clock.Now()
	g, err := e.approve(ctx, token, "")
	if err != nil {
		t.Fatalf("Approve: %v", err)
	}
	if !g.Start.Equal(approvedAt) || !g.End.Equal(approvedAt.Add(24*time.Hour)) || g.Status != consent.GrantActive {
		t.Errorf("grant = %+v, want 24h from %v", g, approvedAt)
	}
	mustContain(t, "approval comment", e.tickets.all()[1].Body, "An administrator of your site (Atlassian account "+adminAccount+") approved", "for 24 hours")
	if g.ApprovedBy.AccountID != adminAccount || g.ApprovedBy.Kind != consent.ActorCustomer {
		t.Errorf("grant approved by %+v, want the site administrator %s", g.ApprovedBy, adminAccount)
	}

	if _, err := e.svc.Authorize(ctx, g.ID, alice, "worker", in.From, in.To); err != nil {
		t.Fatalf("Authorize: %v", err)
	}
	if err := e.svc.RecordAccess(ctx, g.ID, consent.Access{Agent: alice, Stream: "worker", From: in.From, To: in.To, Bytes: 1234, Lines: 10}); err != nil {
		t.Fatalf("RecordAccess: %v", err)
	}
	v, err = e.view(ctx, token)
	if err != nil {
		t.Fatalf("View: %v", err)
	}
	if v.Grant == nil || v.Grant.ID != g.ID || len(v.Accesses) != 1 || v.Accesses[0].Bytes != 1234 || v.TimeLeft != 24*time.Hour {
		t.Errorf("View after read = %+v", v)
	}

	// Past the end, reads stop at once, before any scheduler pass or Redis expiry.
	e.clock.Advance(24 * time.Hour)
	_, err = e.svc.Authorize(ctx, g.ID, alice, "worker", in.From, in.To)
	wantErr(t, "Authorize after end", err, consent.ErrNoActiveGrant)
	if got, _ := e.svc.GetGrant(ctx, g.ID); got.Status != consent.GrantExpired {
		t.Errorf("GetGrant status = %q before Tick, want expired", got.Status)
	}

	n := e.tickets.count()
	for range 3 {
		if err := e.svc.Tick(ctx); err != nil {
			t.Fatalf("Tick: %v", err)
		}
	}
	ended := e.commentsSince(n)
	if len(ended) != 1 {
		t.Fatalf("expiry comments = %d, want exactly 1: %+v", len(ended), ended)
	}
	mustContain(t, "expiry comment", ended[0].Body, "ended on", "as approved", "read once")
	want := []string{audit.ActionAccessRequested, audit.ActionApproved, audit.ActionLogsRead, audit.ActionExpired}
	if diff := cmp.Diff(want, e.actions(t, "tenant-a")); diff != "" {
		t.Errorf("audit actions (-want +got):\n%s", diff)
	}
	g2, err := e.svc.GetGrant(ctx, g.ID)
	if err != nil || g2.Status != consent.GrantExpired || !g2.EndedAt.Equal(g.End) || g2.EndedBy.Kind != consent.ActorSystem {
		t.Errorf("GetGrant = %+v, %v", g2, err)
	}
}

func TestApproveShorterAndLonger(t *testing.T) {
	e := newEnv(t)
	_, token := e.request(t, e.input("72h"))

	_, err := e.approve(ctx, token, "73h")
	var ve *consent.ValidationError
	if !errors.As(err, &ve) || ve.Fields[0].Path != "/duration" {
		t.Fatalf("longer duration: %v, want a /duration validation error", err)
	}
	_, err = e.approve(ctx, token, consent.UntilRevokedText)
	if !errors.As(err, &ve) {
		t.Fatalf("until-revoked over 72h: %v, want a validation error", err)
	}
	_, err = e.approve(ctx, token, "soon")
	if !errors.As(err, &ve) {
		t.Fatalf("bad duration: %v, want a validation error", err)
	}
	g, err := e.approve(ctx, token, "2h")
	if err != nil {
		t.Fatalf("shorter: %v", err)
	}
	if got := g.End.Sub(g.Start); got != 2*time.Hour {
		t.Errorf("grant length = %v, want 2h", got)
	}
	r, _ := e.svc.GetRequest(ctx, g.RequestID)
	if r.Duration.D != 2*time.Hour || r.Status != consent.RequestApproved || r.GrantID != g.ID {
		t.Errorf("request = %+v", r)
	}
	mustContain(t, "comment", e.tickets.all()[1].Body, "for 2 hours")
}

func TestDeny(t *testing.T) {
	e := newEnv(t)
	r, token := e.request(t, e.input("24h"))
	if err := e.deny(ctx, token, "Please ask my admin first."); err != nil {
		t.Fatalf("Deny: %v", err)
	}
	mustContain(t, "deny comment", e.tickets.all()[1].Body, "An administrator of your site declined", "Nothing was shared", "{noformat}\nPlease ask my admin first.\n{noformat}")
	_, err := e.approve(ctx, token, "")
	wantErr(t, "approve after deny", err, consent.ErrAlreadyDecided)
	wantErr(t, "deny twice", e.deny(ctx, token, ""), consent.ErrAlreadyDecided)
	wantErr(t, "revoke after deny", e.revokeByCustomer(ctx, token), consent.ErrNoActiveGrant)
	v, err := e.view(ctx, token)
	if err != nil || v.Request.Status != consent.RequestDenied || v.Request.DenyReason == "" {
		t.Errorf("View = %+v, %v", v, err)
	}
	got, _ := e.svc.GetRequest(ctx, r.ID)
	if got.DecidedBy.Kind != consent.ActorCustomer {
		t.Errorf("DecidedBy = %+v", got.DecidedBy)
	}
	if diff := cmp.Diff([]string{audit.ActionAccessRequested, audit.ActionDenied}, e.actions(t, "tenant-a")); diff != "" {
		t.Errorf("audit (-want +got):\n%s", diff)
	}
}

func TestCancel(t *testing.T) {
	e := newEnv(t)
	r, token := e.request(t, e.input("24h"))
	wantErr(t, "cancel by another agent", e.svc.CancelRequest(ctx, bob, r.ID), consent.ErrForbidden)
	if err := e.svc.CancelRequest(ctx, alice, r.ID); err != nil {
		t.Fatalf("CancelRequest: %v", err)
	}
	mustContain(t, "cancel comment", e.tickets.all()[1].Body, "Alice Agent withdrew", "Nothing was shared")
	wantErr(t, "cancel twice", e.svc.CancelRequest(ctx, alice, r.ID), consent.ErrGone)
	if v, err := e.view(ctx, token); err != nil || v.Request.Status != consent.RequestCancelled || v.Preview != nil {
		t.Errorf("view cancelled = %+v, %v; want the cancelled request without a preview", v.Request, err)
	}
	_, err := e.approve(ctx, token, "")
	wantErr(t, "approve cancelled", err, consent.ErrGone)

	r2, token2 := e.request(t, e.input("24h"))
	if _, err := e.approve(ctx, token2, ""); err != nil {
		t.Fatal(err)
	}
	wantErr(t, "cancel approved", e.svc.CancelRequest(ctx, root, r2.ID), consent.ErrAlreadyDecided)
	wantErr(t, "cancel unknown", e.svc.CancelRequest(ctx, alice, "ar_00000000000000000000000000000000"), consent.ErrNotFound)
}

func TestRevoke(t *testing.T) {
	tests := []struct {
		name     string
		revoke   func(e *env, g consent.Grant, token string) error
		reason   string
		phrase   string
		forbided []consent.Actor
	}{
		{"customer", func(e *env, _ consent.Grant, tok string) error { return e.revokeByCustomer(ctx, tok) },
			consent.ReasonRevokedByCustomer, "An administrator of your site revoked", nil},
		{"own agent", func(e *env, g consent.Grant, _ string) error { return e.svc.RevokeGrant(ctx, alice, g.ID) },
			consent.ReasonRevokedByAgent, "gave it up", []consent.Actor{bob}},
		{"admin", func(e *env, g consent.Grant, _ string) error { return e.svc.RevokeGrant(ctx, root, g.ID) },
			consent.ReasonRevokedByAdmin, "administrator ended", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			in := e.input("until-revoked")
			_, token := e.request(t, in)
			g, err := e.approve(ctx, token, "")
			if err != nil {
				t.Fatal(err)
			}
			if !g.UntilRevoked || !g.End.IsZero() || !g.ReconfirmBy.Equal(g.Start.Add(90*24*time.Hour)) {
				t.Fatalf("standing grant = %+v", g)
			}
			for _, a := range tc.forbided {
				wantErr(t, "revoke by "+a.Name, e.svc.RevokeGrant(ctx, a, g.ID), consent.ErrForbidden)
			}
			n := e.tickets.count()
			if err := tc.revoke(e, g, token); err != nil {
				t.Fatalf("revoke: %v", err)
			}
			_, err = e.svc.Authorize(ctx, g.ID, alice, "api", in.From, in.To)
			wantErr(t, "Authorize after revoke", err, consent.ErrNoActiveGrant)
			wantErr(t, "revoke again", tc.revoke(e, g, token), consent.ErrNoActiveGrant)
			got, _ := e.svc.GetGrant(ctx, g.ID)
			if got.Status != consent.GrantRevoked || got.EndReason != tc.reason {
				t.Errorf("grant = %+v, want revoked (%s)", got, tc.reason)
			}
			cs := e.commentsSince(n)
			if len(cs) != 1 {
				t.Fatalf("comments = %d, want 1", len(cs))
			}
			mustContain(t, "comment", cs[0].Body, tc.phrase)
			acts := e.actions(t, "tenant-a")
			if acts[len(acts)-1] != audit.ActionRevoked {
				t.Errorf("last audit action = %q, want revoked", acts[len(acts)-1])
			}
			if err := e.svc.Tick(ctx); err != nil {
				t.Fatal(err)
			}
			if e.tickets.count() != n+1 {
				t.Errorf("Tick posted again after a revocation")
			}
		})
	}
}

func TestSiteDecisionAttacks(t *testing.T) {
	e := newEnv(t)
	_, token := e.request(t, e.input("24h"))
	other, _ := e.request(t, func() consent.RequestInput { in := e.input("24h"); in.TicketKey = "SUP-3"; return in }())

	forged := []string{"", token[:34], token + "0", "ar_" + strings.Repeat("0", 32), "../../etc/passwd", "gr_" + token[3:]}
	for _, f := range forged {
		if _, err := e.view(ctx, f); !errors.Is(err, consent.ErrNotFound) {
			t.Errorf("View(%q) = %v, want ErrNotFound", f, err)
		}
		if _, err := e.approve(ctx, f, ""); !errors.Is(err, consent.ErrNotFound) {
			t.Errorf("Approve(%q) = %v, want ErrNotFound", f, err)
		}
		if err := e.deny(ctx, f, ""); !errors.Is(err, consent.ErrNotFound) {
			t.Errorf("Deny(%q) = %v, want ErrNotFound", f, err)
		}
	}
	// An administrator of tenant-a's site cannot see or decide tenant-b's request.
	adminA := consent.SiteAdmin{Tenant: "tenant-a", AccountID: adminAccount, Via: "connect"}
	if _, err := e.svc.SiteView(ctx, adminA, other.ID); !errors.Is(err, consent.ErrNotFound) {
		t.Errorf("SiteView of another site's request = %v, want ErrNotFound", err)
	}
	if _, err := e.svc.Approve(ctx, adminA, other.ID, ""); !errors.Is(err, consent.ErrNotFound) {
		t.Errorf("Approve of another site's request = %v, want ErrNotFound", err)
	}
	// Whoever the site does not call an administrator, including the agent's own account if
	// they had one on the site, cannot decide; nothing changes.
	for _, who := range []consent.SiteAdmin{
		{Tenant: "tenant-a", AccountID: "557058:not-an-admin", Via: "connect"},
		{Tenant: "tenant-a", AccountID: "", Via: "connect"},
		{Tenant: "", AccountID: adminAccount},
	} {
		if _, err := e.svc.Approve(ctx, who, token, ""); !errors.Is(err, consent.ErrNotSiteAdmin) {
			t.Errorf("Approve by %+v = %v, want ErrNotSiteAdmin", who, err)
		}
		if _, _, err := e.svc.SiteRequests(ctx, who, "", 10); !errors.Is(err, consent.ErrNotSiteAdmin) {
			t.Errorf("SiteRequests by %+v = %v, want ErrNotSiteAdmin", who, err)
		}
	}
	// The admin loses the permission between loading the page and deciding.
	e.sites.set("tenant-a", adminAccount, false)
	_, err := e.approve(ctx, token, "")
	wantErr(t, "approve after losing ADMINISTER", err, consent.ErrNotSiteAdmin)
	e.sites.set("tenant-a", adminAccount, true)
	// The site cannot be asked: the decision fails and nothing changes.
	e.sites.setDown(true)
	_, err = e.approve(ctx, token, "")
	wantErr(t, "approve while the site is down", err, consent.ErrSiteUnavailable)
	e.sites.setDown(false)
	// An uninstalled or disabled app decides nothing.
	e.tenants.setInactive("tenant-a", true)
	_, err = e.approve(ctx, token, "")
	wantErr(t, "approve on an inactive tenant", err, consent.ErrTenantInactive)
	_, err = e.svc.RequestAccess(ctx, alice, e.input("24h"))
	wantErr(t, "request on an inactive tenant", err, consent.ErrTenantInactive)
	e.tenants.setInactive("tenant-a", false)
	if r, _ := e.svc.GetRequest(ctx, token); r.Status != consent.RequestPending {
		t.Fatalf("request after refused decisions = %s, want still pending", r.Status)
	}

	if _, err := e.approve(ctx, token, "1h"); err != nil {
		t.Fatal(err)
	}
	// Replay after the decision, with a longer duration or as a deny.
	_, err = e.approve(ctx, token, "")
	wantErr(t, "replayed approve", err, consent.ErrAlreadyDecided)
	wantErr(t, "deny after approve", e.deny(ctx, token, ""), consent.ErrAlreadyDecided)

	// A link not answered within the claim window.
	_, late := e.request(t, e.input("24h"))
	e.clock.Advance(72 * time.Hour)
	_, err = e.approve(ctx, late, "")
	wantErr(t, "approve after claim window", err, consent.ErrGone)
	if v, err := e.view(ctx, late); err != nil || v.Request.Status != consent.RequestExpired {
		t.Errorf("view after claim window = %+v, %v; want expired", v.Request, err)
	}
	n := e.tickets.count()
	if err := e.svc.Tick(ctx); err != nil {
		t.Fatal(err)
	}
	cs := e.commentsSince(n)
	// The 1h grant expired too, and so did the other site's request: one comment each.
	if len(cs) != 3 {
		t.Fatalf("comments after Tick = %+v", cs)
	}
	var lapsed bool
	for _, c := range cs {
		lapsed = lapsed || strings.Contains(c.Body, "has lapsed")
	}
	if !lapsed {
		t.Errorf("no lapse comment in %+v", cs)
	}
}

func TestValidation(t *testing.T) {
	e := newEnv(t)
	now := e.clock.Now()
	tests := []struct {
		name  string
		edit  func(*consent.RequestInput)
		paths []string
		is    error
	}{
		{"short reason", func(in *consent.RequestInput) { in.Reason = "logs pls" }, []string{"/reason"}, nil},
		{"long reason", func(in *consent.RequestInput) { in.Reason = strings.Repeat("x", 1001) }, []string{"/reason"}, nil},
		{"control chars", func(in *consent.RequestInput) { in.Reason = "why\x1b[31m not, really" }, []string{"/reason"}, nil},
		{"no streams", func(in *consent.RequestInput) { in.Streams = nil }, []string{"/streams"}, nil},
		{"unknown stream", func(in *consent.RequestInput) { in.Streams = []string{"api", "web"} }, []string{"/streams/1"}, consent.ErrStreamUnknown},
		{"duplicate stream", func(in *consent.RequestInput) { in.Streams = []string{"api", "api"} }, []string{"/streams/1"}, nil},
		{"future window", func(in *consent.RequestInput) { in.To = now.Add(time.Hour) }, []string{"/to"}, nil},
		{"reversed window", func(in *consent.RequestInput) { in.From, in.To = in.To, in.From }, []string{"/to"}, nil},
		{"wide window", func(in *consent.RequestInput) { in.From = in.To.Add(-32 * 24 * time.Hour) }, []string{"/to"}, nil},
		{"missing from", func(in *consent.RequestInput) { in.From = time.Time{} }, []string{"/from"}, nil},
		{"window before year 1", func(in *consent.RequestInput) { // "0000-01-01T00:00:00+01:00": year -1 in UTC
			in.From, in.To = time.Date(0, 1, 1, 0, 0, 0, 0, time.FixedZone("", 3600)), time.Date(0, 1, 2, 0, 0, 0, 0, time.UTC)
		}, []string{"/from"}, nil},
		{"short duration", func(in *consent.RequestInput) { in.Duration = "30m" }, []string{"/duration"}, nil},
		{"long duration", func(in *consent.RequestInput) { in.Duration = "721h" }, []string{"/duration"}, nil},
		{"bad ticket key", func(in *consent.RequestInput) { in.TicketKey = "sup 1" }, []string{"/ticketKey"}, nil},
		{"unknown ticket", func(in *consent.RequestInput) { in.TicketKey = "SUP-99" }, []string{"/ticketKey"}, consent.ErrTicketUnknown},
		{"everything", func(in *consent.RequestInput) {
			in.Reason, in.Streams, in.Duration = "", []string{""}, ""
		}, []string{"/reason", "/streams/0", "/duration"}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := e.input("24h")
			tc.edit(&in)
			_, err := e.svc.RequestAccess(ctx, alice, in)
			var ve *consent.ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("err = %v, want a ValidationError", err)
			}
			var paths []string
			for _, f := range ve.Fields {
				paths = append(paths, f.Path)
			}
			if diff := cmp.Diff(tc.paths, paths); diff != "" {
				t.Errorf("paths (-want +got):\n%s", diff)
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("errors.Is(%v, %v) = false", err, tc.is)
			}
		})
	}
	if n := e.tickets.count(); n != 0 {
		t.Errorf("invalid requests posted %d comments", n)
	}
	_, err := e.svc.RequestAccess(ctx, consent.Actor{Kind: consent.ActorCustomer, Subject: "x"}, e.input("24h"))
	wantErr(t, "customer asking", err, consent.ErrForbidden)
	e.tickets.setDone("SUP-1")
	_, err = e.svc.RequestAccess(ctx, alice, e.input("24h"))
	var ve *consent.ValidationError
	if !errors.As(err, &ve) {
		t.Errorf("request on a resolved ticket: %v, want a validation error", err)
	}
}

func TestConcurrentApprove(t *testing.T) {
	e := newEnv(t)
	_, token := e.request(t, e.input("24h"))
	const n = 20
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		ok      []consent.Grant
		decided int
	)
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			var err error
			if i%2 == 0 {
				var g consent.Grant
				g, err = e.approve(ctx, token, "")
				if err == nil {
					mu.Lock()
					ok = append(ok, g)
					mu.Unlock()
					return
				}
			} else {
				_, err = e.approve(ctx, token, "3h")
				if err == nil {
					mu.Lock()
					ok = append(ok, consent.Grant{})
					mu.Unlock()
					return
				}
			}
			if !errors.Is(err, consent.ErrAlreadyDecided) {
				t.Errorf("Approve: %v", err)
			}
			mu.Lock()
			decided++
			mu.Unlock()
		}()
	}
	close(start)
	wg.Wait()
	if len(ok) != 1 || decided != n-1 {
		t.Fatalf("successes = %d, already decided = %d; want 1 and %d", len(ok), decided, n-1)
	}
	grants, err := e.svc.ListGrants(ctx, "SUP-1")
	if err != nil || len(grants) != 1 {
		t.Fatalf("grants = %+v, %v; want exactly one", grants, err)
	}
	if c := e.tickets.count(); c != 2 {
		t.Errorf("comments = %d, want 2 (link, approval)", c)
	}
}

func TestTicketClosedAndUninstall(t *testing.T) {
	e := newEnv(t)
	_, tok1 := e.request(t, e.input("24h"))
	g1, err := e.approve(ctx, tok1, "")
	if err != nil {
		t.Fatal(err)
	}
	_, pendingTok := e.request(t, e.input("24h"))
	other := e.input("24h")
	other.TicketKey = "SUP-2"
	_, tok2 := e.request(t, other)
	g2, err := e.approve(ctx, tok2, "")
	if err != nil {
		t.Fatal(err)
	}

	n := e.tickets.count()
	e.tickets.setDone("SUP-1")
	if err := e.svc.TicketClosed(ctx, "SUP-1"); err != nil {
		t.Fatalf("TicketClosed: %v", err)
	}
	if err := e.svc.TicketClosed(ctx, "SUP-1"); err != nil { // webhook redelivery
		t.Fatalf("TicketClosed again: %v", err)
	}
	cs := e.commentsSince(n)
	if len(cs) != 2 {
		t.Fatalf("comments = %+v, want 2 (request withdrawn, grant ended)", cs)
	}
	for _, c := range cs {
		mustContain(t, "close comment", c.Body, "Because this ticket was resolved")
	}
	_, err = e.approve(ctx, pendingTok, "")
	wantErr(t, "approve after close", err, consent.ErrGone)
	if g, _ := e.svc.GetGrant(ctx, g1.ID); g.Status != consent.GrantEnded || g.EndReason != consent.ReasonTicketClosed {
		t.Errorf("grant = %+v", g)
	}
	if _, err := e.svc.Authorize(ctx, g2.ID, alice, "api", other.From, other.To); err != nil {
		t.Errorf("grant on another ticket: %v", err)
	}
	if err := e.svc.TicketClosed(ctx, "SUP-404"); err != nil {
		t.Errorf("TicketClosed of a ticket without consent: %v", err)
	}

	if err := e.svc.TenantUninstalled(ctx, "tenant-a"); err != nil {
		t.Fatalf("TenantUninstalled: %v", err)
	}
	if g, _ := e.svc.GetGrant(ctx, g2.ID); g.Status != consent.GrantEnded || g.EndReason != consent.ReasonTenantUninstalled {
		t.Errorf("grant = %+v", g)
	}
	mustContain(t, "uninstall comment", e.tickets.all()[e.tickets.count()-1].Body, "uninstalled")
}

func TestStandingGrantReconfirmation(t *testing.T) {
	e := newEnv(t)
	in := e.input(consent.UntilRevokedText)
	_, token := e.request(t, in)
	g, err := e.approve(ctx, token, "")
	if err != nil {
		t.Fatal(err)
	}
	mustContain(t, "approval", e.tickets.all()[1].Body, "until revoked", "confirm again by")

	e.clock.Advance(75 * 24 * time.Hour) // 15 days left: not yet asked
	n := e.tickets.count()
	if err := e.svc.Tick(ctx); err != nil {
		t.Fatal(err)
	}
	if e.tickets.count() != n {
		t.Fatalf("asked to re-confirm too early")
	}
	e.clock.Advance(24 * time.Hour) // 14 days left
	for range 2 {
		if err := e.svc.Tick(ctx); err != nil {
			t.Fatal(err)
		}
	}
	cs := e.commentsSince(n)
	if len(cs) != 1 {
		t.Fatalf("re-confirmation comments = %+v, want 1", cs)
	}
	mustContain(t, "re-confirmation", cs[0].Body, "confirmed every 90 days", g.ReconfirmBy.Format("2 Jan 2006"))
	fresh := e.lastAnnounced(t)
	if fresh == token {
		t.Fatal("re-confirmation reused the old link")
	}
	v, err := e.view(ctx, fresh)
	if err != nil || v.Request.Reconfirms != g.ID || v.Grant == nil || v.Grant.ID != g.ID {
		t.Fatalf("View(fresh) = %+v, %v", v, err)
	}
	renewed, err := e.approve(ctx, fresh, "")
	if err != nil {
		t.Fatalf("re-confirm: %v", err)
	}
	if renewed.ID != g.ID || !renewed.ReconfirmBy.Equal(e.clock.Now().Add(90*24*time.Hour)) {
		t.Errorf("renewed = %+v", renewed)
	}
	e.clock.Advance(20 * 24 * time.Hour) // past the first ReconfirmBy
	if err := e.svc.Tick(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.Authorize(ctx, g.ID, alice, "api", in.From, in.To); err != nil {
		t.Fatalf("Authorize after re-confirmation: %v", err)
	}
	// The old link still shows the grant and can still revoke it.
	if v, err := e.view(ctx, token); err != nil || v.Grant.ReconfirmBy != renewed.ReconfirmBy {
		t.Errorf("View(old) = %+v, %v", v, err)
	}

	// Left unanswered the second time, standing access lapses at ReconfirmBy.
	e.clock.Advance(renewed.ReconfirmBy.Sub(e.clock.Now()) - 10*24*time.Hour)
	if err := e.svc.Tick(ctx); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(10 * 24 * time.Hour)
	_, err = e.svc.Authorize(ctx, g.ID, alice, "api", in.From, in.To)
	wantErr(t, "Authorize at ReconfirmBy", err, consent.ErrNoActiveGrant)
	n = e.tickets.count()
	if err := e.svc.Tick(ctx); err != nil {
		t.Fatal(err)
	}
	cs = e.commentsSince(n)
	if len(cs) != 1 {
		t.Fatalf("lapse comments = %+v, want 1", cs)
	}
	mustContain(t, "lapse", cs[0].Body, "not confirmed again")
	got, _ := e.svc.GetGrant(ctx, g.ID)
	if got.Status != consent.GrantEnded || got.EndReason != consent.ReasonNotReconfirmed {
		t.Errorf("grant = %+v", got)
	}
	acts := e.actions(t, "tenant-a")
	want := []string{"access_requested", "approved", "reconfirmation_requested", "reconfirmed",
		"reconfirmation_requested", "request_expired", "not_reconfirmed"}
	// The last two may come in either order: both fall due at the same instant.
	if len(acts) != len(want) || !sameSet(acts[5:], want[5:]) || !cmp.Equal(acts[:5], want[:5]) {
		t.Errorf("audit = %v, want %v", acts, want)
	}
}

func sameSet(a, b []string) bool {
	m := map[string]int{}
	for _, x := range a {
		m[x]++
	}
	for _, x := range b {
		m[x]--
	}
	for _, v := range m {
		if v != 0 {
			return false
		}
	}
	return true
}

func TestMissedWebhookReconciled(t *testing.T) {
	e := newEnv(t)
	in := e.input("720h")
	_, token := e.request(t, in)
	g, err := e.approve(ctx, token, "")
	if err != nil {
		t.Fatal(err)
	}
	e.tickets.setDone("SUP-1") // and the webhook never arrives
	if err := e.svc.Tick(ctx); err != nil {
		t.Fatal(err)
	}
	_, err = e.svc.Authorize(ctx, g.ID, alice, "api", in.From, in.To)
	wantErr(t, "Authorize after reconcile", err, consent.ErrNoActiveGrant)
	got, _ := e.svc.GetGrant(ctx, g.ID)
	if got.EndReason != consent.ReasonTicketClosed {
		t.Errorf("grant = %+v", got)
	}
}

func TestAuthorizeScope(t *testing.T) {
	e := newEnv(t)
	in := e.input("24h")
	_, token := e.request(t, in)
	g, err := e.approve(ctx, token, "")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		id       string
		who      consent.Actor
		stream   string
		from, to time.Time
		want     error
	}{
		{"inside", g.ID, alice, "api", in.From, in.To, nil},
		{"part", g.ID, alice, "api", in.From.Add(time.Hour), in.To.Add(-time.Hour), nil},
		{"other agent", g.ID, bob, "api", in.From, in.To, consent.ErrForbidden},
		{"admin", g.ID, root, "api", in.From, in.To, consent.ErrForbidden},
		{"same name other subject", g.ID, consent.Actor{Kind: "agent", Name: alice.Name, Email: alice.Email, Subject: "oidc:x|alice"}, "api", in.From, in.To, consent.ErrForbidden},
		{"no subject", g.ID, consent.Actor{Kind: "agent"}, "api", in.From, in.To, consent.ErrForbidden},
		{"other stream", g.ID, alice, "worker", in.From, in.To, consent.ErrOutOfScope},
		{"before window", g.ID, alice, "api", in.From.Add(-time.Second), in.To, consent.ErrOutOfScope},
		{"after window", g.ID, alice, "api", in.From, in.To.Add(time.Second), consent.ErrOutOfScope},
		{"reversed", g.ID, alice, "api", in.To, in.From, consent.ErrOutOfScope},
		{"unknown grant", "gr_00000000000000000000000000000000", alice, "api", in.From, in.To, consent.ErrNoActiveGrant},
		{"malformed id", "gr_x:{t:1}", alice, "api", in.From, in.To, consent.ErrNoActiveGrant},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.svc.Authorize(ctx, tc.id, tc.who, tc.stream, tc.from, tc.to)
			if tc.want == nil && err != nil || tc.want != nil && !errors.Is(err, tc.want) {
				t.Errorf("Authorize = %v, want %v", err, tc.want)
			}
		})
	}
}

func TestCommentFailureIsRetriedOnce(t *testing.T) {
	e := newEnv(t)
	_, token := e.request(t, e.input("24h"))
	e.tickets.failComments(1)
	if _, err := e.approve(ctx, token, ""); err != nil {
		t.Fatalf("Approve must not fail because JSM is down: %v", err)
	}
	if e.tickets.count() != 1 {
		t.Fatalf("approval comment posted although JSM failed")
	}
	if err := e.svc.Tick(ctx); err != nil { // too early: the caller's own attempt is not stale yet
		t.Fatal(err)
	}
	e.clock.Advance(3 * time.Minute)
	for range 3 {
		if err := e.svc.Tick(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if e.tickets.count() != 2 {
		t.Fatalf("comments = %d, want 2", e.tickets.count())
	}
	if diff := cmp.Diff([]string{"access_requested", "approved"}, e.actions(t, "tenant-a")); diff != "" {
		t.Errorf("audit (-want +got):\n%s", diff)
	}
}

func TestRequestCommentFailureWithdraws(t *testing.T) {
	e := newEnv(t)
	e.tickets.failComments(1)
	_, err := e.svc.RequestAccess(ctx, alice, e.input("24h"))
	if err == nil {
		t.Fatal("RequestAccess succeeded although the link could not be posted")
	}
	rs, _ := e.svc.ListRequests(ctx, "SUP-1")
	if len(rs) != 1 || rs[0].Status != consent.RequestCancelled || rs[0].CancelReason != consent.ReasonNotifyFailed {
		t.Errorf("requests = %+v", rs)
	}
}

func TestEvidence(t *testing.T) {
	e := newEnv(t)
	in := e.input("24h")
	_, token := e.request(t, in)
	g, err := e.approve(ctx, token, "")
	if err != nil {
		t.Fatal(err)
	}
	if err := e.svc.RecordAccess(ctx, g.ID, consent.Access{Agent: alice, Stream: "api", From: in.From, To: in.To, Bytes: 10, Lines: 1}); err != nil {
		t.Fatal(err)
	}
	if err := e.revokeByCustomer(ctx, token); err != nil {
		t.Fatal(err)
	}
	ev, err := e.svc.Evidence(ctx, "SUP-1")
	if err != nil {
		t.Fatalf("Evidence: %v", err)
	}
	if len(ev.Requests) != 1 || len(ev.Grants) != 1 || len(ev.Accesses) != 1 || !ev.ChainOK || ev.Tenant != "tenant-a" {
		t.Errorf("evidence = %+v", ev)
	}
	var acts []string
	for _, a := range ev.Audit {
		acts = append(acts, a.Action)
	}
	if diff := cmp.Diff([]string{"access_requested", "approved", "logs_read", "revoked"}, acts); diff != "" {
		t.Errorf("evidence audit (-want +got):\n%s", diff)
	}
	for _, a := range ev.Audit {
		for k, v := range a.Details {
			if strings.Contains(v, token) || strings.Contains(k, token) {
				t.Errorf("audit entry carries the token: %+v", a)
			}
		}
	}
	_, err = e.svc.Evidence(ctx, "SUP-404")
	wantErr(t, "evidence of unknown ticket", err, consent.ErrNotFound)
}

func TestSchedulerLeaseCommentsOnce(t *testing.T) {
	e := newEnv(t)
	_, token := e.request(t, e.input("1h"))
	if _, err := e.approve(ctx, token, ""); err != nil {
		t.Fatal(err)
	}
	// A second replica: its own Service over the same Redis and JSM.
	o := consent.Options{Store: e.store, Tickets: e.tickets, Streams: fakeStreams{}, Audit: e.audit, Sites: e.sites, Tenants: e.tenants, Now: e.clock.Now}
	replica := consent.NewService(o)

	n := e.tickets.count()
	runCtx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for _, s := range []*consent.Service{e.svc, replica} {
		wg.Add(1)
		go func() { defer wg.Done(); s.RunScheduler(runCtx, 5*time.Millisecond) }()
	}
	e.clock.Advance(time.Hour)
	deadline := time.Now().Add(5 * time.Second)
	for e.tickets.count() == n && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond) // many more passes on both replicas
	cancel()
	wg.Wait()
	if got := e.tickets.count() - n; got != 1 {
		t.Fatalf("expiry comments = %d, want exactly 1: %+v", got, e.commentsSince(n))
	}
	// Both loops released the lease on the way out.
	ok, err := e.store.AcquireLease(ctx, "consent-scheduler", "someone-else", time.Second)
	if err != nil || !ok {
		t.Errorf("lease not released: %v, %v", ok, err)
	}
}

// TestRequestWhoseLinkWasNeverPostedIsWithdrawnByTheScheduler: a replica that stored a
// request and died before posting its consent link leaves a pending request owing its
// "requested" notice. Nobody holds the link any more, so the scheduler withdraws the
// request instead of auditing and commenting as for other notices.
func TestRequestWhoseLinkWasNeverPostedIsWithdrawnByTheScheduler(t *testing.T) {
	e := newEnv(t)
	posted, _ := e.request(t, e.input("24h"))
	rec, err := e.store.Request(ctx, posted.ID)
	if err != nil {
		t.Fatal(err)
	}
	// The same request as the dead replica stored it: new id, link not yet posted.
	rec.Request.ID = posted.ID + "x"
	rec.Version, rec.Notice, rec.NoticeAudited, rec.NoticeCommented = 0, "requested", false, false
	if err := e.store.CreateRequest(ctx, rec, e.clock.Now()); err != nil {
		t.Fatal(err)
	}
	comments := e.tickets.count()
	e.clock.Advance(3 * time.Minute)
	for range 3 {
		if err := e.svc.Tick(ctx); err != nil {
			t.Fatal(err)
		}
	}
	got, err := e.store.Request(ctx, rec.Request.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Request.Status != consent.RequestCancelled || got.Request.CancelReason != consent.ReasonNotifyFailed || got.Notice != "" {
		t.Errorf("request after the scheduler = %+v (notice %q), want cancelled as %s with nothing owed",
			got.Request, got.Notice, consent.ReasonNotifyFailed)
	}
	if e.tickets.count() != comments {
		t.Errorf("%d comments posted for a request nobody was told about", e.tickets.count()-comments)
	}
}

// TestWithdrawLegacyRequests starts from Redis as the capability-link flow left it: a pending
// request whose link token hash and lookup are stored. Withdrawing it makes the link
// useless, tells the customer on the ticket, and is not done twice.
func TestWithdrawLegacyRequests(t *testing.T) {
	rdb := redistest.Client(t)
	e := newEnv(t, func(o *consent.Options) {
		o.Store = redisstore.NewConsent(rdb)
		o.Audit = audit.New(redisstore.NewAudit(rdb), auditKey, nil)
	})
	old, _ := e.request(t, e.input("24h"))
	decided, _ := e.request(t, e.input("24h"))
	if err := e.deny(ctx, decided.ID, ""); err != nil {
		t.Fatal(err)
	}
	// What the old flow stored: the hash of the link token on the request, and a lookup
	// from the hash to the request.
	for i, id := range []string{old.ID, decided.ID} {
		keys, err := rdb.Keys(ctx, "*:consent:req:"+id).Result()
		if err != nil || len(keys) != 1 {
			t.Fatalf("request key of %s: %v %v", id, keys, err)
		}
		tok := fmt.Sprintf("%064x", i+1)
		rdb.HSet(ctx, keys[0], "tok", tok)
		rdb.Set(ctx, "sb:idx:consent-token:"+tok, "tenant-a\n"+id, 0)
	}
	n := e.tickets.count()
	withdrawn, err := e.svc.WithdrawLegacyRequests(ctx)
	if err != nil || withdrawn != 1 {
		t.Fatalf("WithdrawLegacyRequests = %d, %v; want 1 withdrawn", withdrawn, err)
	}
	got, _ := e.svc.GetRequest(ctx, old.ID)
	if got.Status != consent.RequestCancelled || got.CancelReason != consent.ReasonFlowChanged {
		t.Errorf("legacy request after the upgrade: %s (%s)", got.Status, got.CancelReason)
	}
	cs := e.commentsSince(n)
	if len(cs) != 1 || !cs[0].Public {
		t.Fatalf("comments after the upgrade = %+v, want one public comment", cs)
	}
	mustContain(t, "withdrawal comment", cs[0].Body, "the way such requests are decided has changed", "earlier link no longer works", "Support access page")
	if again, err := e.svc.WithdrawLegacyRequests(ctx); err != nil || again != 0 || e.tickets.count() != n+1 {
		t.Errorf("second run withdrew %d (%v), comments %d; want nothing more", again, err, e.tickets.count()-n)
	}
	if keys, _ := rdb.Keys(ctx, "sb:idx:consent-token:*").Result(); len(keys) != 0 {
		t.Errorf("old link lookups remain: %v", keys)
	}
}

// TestDeletedTicket: comments owed to a ticket JSM no longer has are not retried for ever,
// and a deleted ticket found by reconciliation (the webhook was missed) ends its grants.
func TestDeletedTicket(t *testing.T) {
	e := newEnv(t, func(o *consent.Options) { o.ReconcileEvery = time.Minute })
	_, id := e.request(t, e.input("24h"))
	g, err := e.approve(ctx, id, "")
	if err != nil {
		t.Fatal(err)
	}
	e.tickets.setDeleted("SUP-1")
	// The agent revokes: the end is audited, the comment has nowhere to go.
	if err := e.svc.RevokeGrant(ctx, alice, g.ID); err != nil {
		t.Fatal(err)
	}
	calls := func() int { e.tickets.mu.Lock(); defer e.tickets.mu.Unlock(); return e.tickets.calls }
	before := calls()
	for range 5 {
		e.clock.Advance(3 * time.Minute)
		if err := e.svc.Tick(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if n := calls() - before; n > 3 {
		t.Errorf("%d JSM calls for a deleted ticket over 5 passes; the notice is retried for ever", n)
	}
	if acts := e.actions(t, "tenant-a"); acts[len(acts)-1] != audit.ActionRevoked {
		t.Errorf("audit %v, want the revocation recorded", acts)
	}

	// A second grant on another ticket: JSM deletes the ticket and the webhook never comes.
	in := e.input("24h")
	in.TicketKey = "SUP-2"
	_, id2 := e.request(t, in)
	g2, err := e.approve(ctx, id2, "")
	if err != nil {
		t.Fatal(err)
	}
	e.tickets.setDeleted("SUP-2")
	e.clock.Advance(2 * time.Minute)
	if err := e.svc.Tick(ctx); err != nil {
		t.Fatal(err)
	}
	got, _ := e.svc.GetGrant(ctx, g2.ID)
	if got.Status != consent.GrantEnded || got.EndReason != consent.ReasonTicketDeleted {
		t.Errorf("grant on the deleted ticket: %s %s, want ended (ticket_deleted)", got.Status, got.EndReason)
	}
	if _, err := e.svc.Authorize(ctx, g2.ID, alice, "api", in.From, in.To); !errors.Is(err, consent.ErrNoActiveGrant) {
		t.Errorf("Authorize on a deleted ticket: %v", err)
	}
}

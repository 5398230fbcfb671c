package redisstore

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/google/go-cmp/cmp"
	"github.com/redis/go-redis/v9"

	"github.com/supportbridge/supportbridge/internal/consent"
	"github.com/supportbridge/supportbridge/internal/redisstore/redistest"
)

// consentFixture is a pending request and the grant approving it would create.
func consentFixture(now time.Time, tenant, reqID, grantID string) (consent.RequestRecord, consent.GrantRecord) {
	r := consent.AccessRequest{ID: reqID, Tenant: tenant, TicketKey: "SUP-1", Reason: "a good reason",
		Streams: []string{"api"}, From: now.Add(-time.Hour), To: now, Duration: consent.Duration{D: time.Hour},
		Agent: consent.Actor{Kind: "agent", Name: "A", Subject: "static:a"}, Status: consent.RequestPending,
		CreatedAt: now, ExpiresAt: now.Add(72 * time.Hour)}
	g := consent.Grant{ID: grantID, RequestID: reqID, Tenant: tenant, TicketKey: "SUP-1", Streams: r.Streams,
		From: r.From, To: r.To, Agent: r.Agent, Start: now, End: now.Add(time.Hour), Status: consent.GrantActive}
	return consent.RequestRecord{Request: r}, consent.GrantRecord{Grant: g}
}

func TestConsentCompareAndSet(t *testing.T) {
	ctx := context.Background()
	s := NewConsent(redistest.Client(t))
	now := time.Now().UTC().Round(0)
	rec, grec := consentFixture(now, "ck-1", "ar_1", "gr_1")
	if err := s.CreateRequest(ctx, rec, rec.Request.ExpiresAt); err != nil {
		t.Fatalf("CreateRequest: %v", err)
	}
	got, err := s.Request(ctx, "ar_1")
	if err != nil || got.Version != 1 {
		t.Fatalf("Request = %+v, %v", got, err)
	}
	if diff := cmp.Diff(rec.Request, got.Request); diff != "" {
		t.Errorf("round trip (-want +got):\n%s", diff)
	}

	// Two deciders read version 1; only the first write lands, and the loser's grant with it
	// is not written at all.
	a, b := got, got
	a.Request.Status, b.Request.Status = consent.RequestApproved, consent.RequestDenied
	ga := grec
	if err := s.Save(ctx, consent.Change{Tenant: "ck-1", Request: &a, Grant: &ga, GrantDue: ga.Grant.End}); err != nil {
		t.Fatalf("first Save: %v", err)
	}
	if a.Version != 2 || ga.Version != 1 {
		t.Errorf("versions after Save = %d, %d; want 2, 1", a.Version, ga.Version)
	}
	gb := grec
	gb.Grant.ID = "gr_2"
	if err := s.Save(ctx, consent.Change{Tenant: "ck-1", Request: &b, Grant: &gb}); !errors.Is(err, consent.ErrConflict) {
		t.Fatalf("second Save = %v, want ErrConflict", err)
	}
	if _, err := s.Grant(ctx, "gr_2"); !errors.Is(err, consent.ErrNotFound) {
		t.Errorf("the losing decision's grant exists: %v", err)
	}
	// Creating a grant that exists is a conflict too.
	again := grec
	if err := s.Save(ctx, consent.Change{Tenant: "ck-1", Grant: &again}); !errors.Is(err, consent.ErrConflict) {
		t.Errorf("re-creating a grant = %v, want ErrConflict", err)
	}
	cur, _ := s.Request(ctx, "ar_1")
	if cur.Request.Status != consent.RequestApproved {
		t.Errorf("stored status = %q", cur.Request.Status)
	}
	gs, err := s.TicketGrants(ctx, "ck-1", "SUP-1")
	if err != nil || len(gs) != 1 || gs[0].Grant.ID != "gr_1" {
		t.Errorf("TicketGrants = %+v, %v", gs, err)
	}
	rs, err := s.TicketRequests(ctx, "ck-1", "SUP-1")
	if err != nil || len(rs) != 1 {
		t.Errorf("TicketRequests = %+v, %v", rs, err)
	}
	if tt, err := s.TicketTenant(ctx, "SUP-1"); err != nil || tt != "ck-1" {
		t.Errorf("TicketTenant = %q, %v", tt, err)
	}
	if ts, _ := s.TenantTickets(ctx, "ck-1"); !cmp.Equal(ts, []string{"SUP-1"}) {
		t.Errorf("TenantTickets = %v", ts)
	}
}

func TestConsentConcurrentSaves(t *testing.T) {
	ctx := context.Background()
	s := NewConsent(redistest.Client(t))
	now := time.Now().UTC()
	rec, grec := consentFixture(now, "ck-1", "ar_1", "gr_1")
	if err := s.CreateRequest(ctx, rec, now); err != nil {
		t.Fatal(err)
	}
	rec.Version = 1
	var wg sync.WaitGroup
	var mu sync.Mutex
	wins := 0
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, g := rec, grec
			g.Grant.ID = "gr_" + string(rune('a'+i))
			err := s.Save(ctx, consent.Change{Tenant: "ck-1", Request: &r, Grant: &g})
			if err == nil {
				mu.Lock()
				wins++
				mu.Unlock()
			} else if !errors.Is(err, consent.ErrConflict) {
				t.Errorf("Save: %v", err)
			}
		}()
	}
	wg.Wait()
	if wins != 1 {
		t.Errorf("%d saves from the same version won, want 1", wins)
	}
}

func TestConsentLiveGrantExpiresHistoryStays(t *testing.T) {
	ctx := context.Background()
	rdb := redistest.Client(t)
	s := NewConsent(rdb)
	now := time.Now().UTC()
	_, grec := consentFixture(now, "ck-1", "ar_1", "gr_1")
	grec.Grant.End = now.Add(time.Hour)
	if err := s.Save(ctx, consent.Change{Tenant: "ck-1", Grant: &grec, GrantDue: grec.Grant.End}); err != nil {
		t.Fatal(err)
	}
	if g, err := s.LiveGrant(ctx, "gr_1"); err != nil || g.ID != "gr_1" {
		t.Fatalf("LiveGrant = %+v, %v", g, err)
	}
	// Redis' own clock ends the live copy exactly at the grant's end; the test reads the
	// expiry instead of waiting for it, then plays the expiry by removing the key.
	live := consentLiveKey("ck-1", "gr_1")
	if at := rdb.PExpireTime(ctx, live).Val(); at != time.Duration(grec.Grant.End.UnixMilli())*time.Millisecond {
		t.Fatalf("live copy expires at %v, want the grant's end %v", at, grec.Grant.End.UnixMilli())
	}
	rdb.Del(ctx, live)
	if _, err := s.LiveGrant(ctx, "gr_1"); !errors.Is(err, consent.ErrNotFound) {
		t.Errorf("LiveGrant after its end = %v, want ErrNotFound", err)
	}
	h, err := s.Grant(ctx, "gr_1")
	if err != nil || h.Grant.Status != consent.GrantActive {
		t.Errorf("history after the live copy expired = %+v, %v", h, err)
	}
}

// TestConsentMigrateLegacy runs the upgrade on records of the capability-link flow: a token
// hash on the request and a global lookup from the hash. Afterwards no token resolves, the
// pending request is reported for withdrawal (the decided one is not), the tenant lists know
// every record, and a second run finds nothing to do.
func TestConsentMigrateLegacy(t *testing.T) {
	ctx := context.Background()
	rdb := redistest.Client(t)
	s := NewConsent(rdb)
	now := time.Now().UTC().Round(0)
	pend, _ := consentFixture(now, "ck-1", "ar_pending", "gr_x")
	done, grec := consentFixture(now.Add(time.Second), "ck-1", "ar_done", "gr_done")
	for _, rec := range []consent.RequestRecord{pend, done} {
		if err := s.CreateRequest(ctx, rec, now); err != nil {
			t.Fatal(err)
		}
	}
	done.Version = 1
	done.Request.Status = consent.RequestApproved
	if err := s.Save(ctx, consent.Change{Tenant: "ck-1", Request: &done, Grant: &grec}); err != nil {
		t.Fatal(err)
	}
	// What the old flow left: a token field and lookup per request, and no tenant lists.
	for _, id := range []string{"ar_pending", "ar_done"} {
		tok := hexOf(sha256.Sum256([]byte(id)))
		rdb.HSet(ctx, consentReqKey("ck-1", id), "tok", tok)
		rdb.Set(ctx, consentTokenIndexKey(tok), "ck-1\n"+id, 0)
	}
	rdb.Del(ctx, consentTenantReqsKey("ck-1"), consentTenantGrantsKey("ck-1"))

	got, err := s.MigrateLegacy(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"ar_pending"}, got); diff != "" {
		t.Errorf("pending legacy requests (-want +got):\n%s", diff)
	}
	if keys, _ := rdb.Keys(ctx, "sb:idx:consent-token:*").Result(); len(keys) != 0 {
		t.Errorf("token lookups survive the migration: %v", keys)
	}
	for _, id := range []string{"ar_pending", "ar_done"} {
		if n, _ := rdb.HExists(ctx, consentReqKey("ck-1", id), "tok").Result(); n {
			t.Errorf("request %s keeps its token hash", id)
		}
	}
	reqs, next, err := s.TenantRequests(ctx, "ck-1", "", 10)
	if err != nil || next != "" || len(reqs) != 2 || reqs[0].Request.ID != "ar_done" {
		t.Errorf("TenantRequests after migration = %d records (first %v), next %q, %v; want both, newest first", len(reqs), reqs, next, err)
	}
	if gs, _, err := s.TenantGrants(ctx, "ck-1", "", 10); err != nil || len(gs) != 1 {
		t.Errorf("TenantGrants after migration = %v, %v", gs, err)
	}
	if again, err := s.MigrateLegacy(ctx); err != nil || len(again) != 0 {
		t.Errorf("second MigrateLegacy = %v, %v; want nothing", again, err)
	}
}

// TestConsentTenantPages pages through more requests than a page holds, several created in
// the same millisecond, and checks every one comes exactly once, newest first.
func TestConsentTenantPages(t *testing.T) {
	ctx := context.Background()
	s := NewConsent(redistest.Client(t))
	now := time.Now().UTC().Round(0)
	var want []string
	for i := range 23 {
		id := fmt.Sprintf("ar_%02d", i)
		rec, _ := consentFixture(now.Add(time.Duration(i/3)*time.Millisecond), "ck-1", id, "gr_x")
		if err := s.CreateRequest(ctx, rec, now); err != nil {
			t.Fatal(err)
		}
		want = append([]string{id}, want...)
	}
	other, _ := consentFixture(now, "ck-2", "ar_other", "gr_y")
	if err := s.CreateRequest(ctx, other, now); err != nil {
		t.Fatal(err)
	}
	var got []string
	cursor := ""
	for range 10 {
		recs, next, err := s.TenantRequests(ctx, "ck-1", cursor, 5)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range recs {
			got = append(got, r.Request.ID)
		}
		if next == "" {
			break
		}
		cursor = next
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("pages (-want +got):\n%s", diff)
	}
	if _, _, err := s.TenantRequests(ctx, "ck-1", "garbage", 5); !errors.Is(err, consent.ErrNotFound) {
		t.Errorf("bad cursor = %v, want ErrNotFound", err)
	}
}

func hexOf(h [32]byte) string {
	const digits = "0123456789abcdef"
	b := make([]byte, 64)
	for i, c := range h {
		b[2*i], b[2*i+1] = digits[c>>4], digits[c&15]
	}
	return string(b)
}

func TestConsentKeysShareTenantTag(t *testing.T) {
	ctx := context.Background()
	rdb := redistest.Client(t)
	s := NewConsent(rdb)
	now := time.Now().UTC()
	rec, grec := consentFixture(now, "ck-{odd}", "ar_1", "gr_1")
	if err := s.CreateRequest(ctx, rec, now); err != nil {
		t.Fatal(err)
	}
	rec.Version = 1
	if err := s.Save(ctx, consent.Change{Tenant: "ck-{odd}", Request: &rec, Grant: &grec, GrantDue: now}); err != nil {
		t.Fatal(err)
	}
	if err := s.AddAccess(ctx, "ck-{odd}", "gr_1", consent.Access{Stream: "api", Bytes: 1}); err != nil {
		t.Fatal(err)
	}
	keys, _ := rdb.Keys(ctx, "*").Result()
	tag := tenantTag("ck-{odd}")
	for _, k := range keys {
		global := strings.HasPrefix(k, "sb:idx:") || k == consentTenantsKey
		if !global && !strings.HasPrefix(k, "sb:"+tag+":") {
			t.Errorf("key %q is neither global nor under the tenant's tag %s", k, tag)
		}
	}
}

func TestConsentDueAndTenants(t *testing.T) {
	ctx := context.Background()
	s := NewConsent(redistest.Client(t))
	now := time.Now().UTC()
	rec, grec := consentFixture(now, "ck-1", "ar_1", "gr_1")
	if err := s.CreateRequest(ctx, rec, now.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	rec.Version = 1
	if err := s.Save(ctx, consent.Change{Tenant: "ck-1", Request: &rec, RequestDue: time.Time{}, Grant: &grec, GrantDue: now.Add(2 * time.Hour)}); err != nil {
		t.Fatal(err)
	}
	due, err := s.Due(ctx, "ck-1", now.Add(3*time.Hour), 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(due) != 1 || due[0].Kind != consent.DueGrant || due[0].ID != "gr_1" {
		t.Errorf("Due = %+v, want only the grant (the request was unscheduled)", due)
	}
	if due, _ := s.Due(ctx, "ck-1", now.Add(time.Hour), 10); len(due) != 0 {
		t.Errorf("Due before the grant's time = %+v", due)
	}
	if ts, _ := s.Tenants(ctx); !cmp.Equal(ts, []string{"ck-1"}) {
		t.Errorf("Tenants = %v", ts)
	}
	if err := s.AddAccess(ctx, "ck-1", "gr_1", consent.Access{Stream: "api", Lines: 3}); err != nil {
		t.Fatal(err)
	}
	if as, err := s.Accesses(ctx, "ck-1", "gr_1"); err != nil || len(as) != 1 || as[0].Lines != 3 {
		t.Errorf("Accesses = %+v, %v", as, err)
	}
}

func TestConsentLease(t *testing.T) {
	ctx := context.Background()
	rdb := redistest.Client(t)
	s := NewConsent(rdb)
	take := func(holder string) bool {
		t.Helper()
		ok, err := s.AcquireLease(ctx, "sched", holder, 200*time.Millisecond)
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}
	if !take("a") || take("b") || !take("a") {
		t.Fatal("lease: a takes, b is refused, a renews")
	}
	if err := s.ReleaseLease(ctx, "sched", "b"); err != nil || take("b") {
		t.Fatalf("a non-holder released the lease: %v", err)
	}
	// The lease lives its TTL in Redis; the test reads it, then plays the expiry.
	if ttl := rdb.PTTL(ctx, consentLeaseKey("sched")).Val(); ttl <= 0 || ttl > 200*time.Millisecond {
		t.Fatalf("lease TTL %v, want (0, 200ms]", ttl)
	}
	rdb.Del(ctx, consentLeaseKey("sched"))
	if !take("b") {
		t.Fatal("an expired lease was not free")
	}
	if err := s.ReleaseLease(ctx, "sched", "b"); err != nil || !take("a") {
		t.Fatalf("a released lease was not free: %v", err)
	}
}

func TestConsentDeleteTenant(t *testing.T) {
	ctx := context.Background()
	rdb := redistest.Client(t)
	s := NewConsent(rdb)
	now := time.Now().UTC()
	for _, tenant := range []string{"ck-1", "ck-2"} {
		rec, grec := consentFixture(now, tenant, "ar_"+tenant, "gr_"+tenant)
		rec.Request.TicketKey, grec.Grant.TicketKey = "SUP-"+tenant, "SUP-"+tenant
		if err := s.CreateRequest(ctx, rec, now); err != nil {
			t.Fatal(err)
		}
		if err := s.Save(ctx, consent.Change{Tenant: tenant, Grant: &grec}); err != nil {
			t.Fatal(err)
		}
		if err := s.AddAccess(ctx, tenant, grec.Grant.ID, consent.Access{Stream: "api"}); err != nil {
			t.Fatal(err)
		}
	}
	before, _ := rdb.Keys(ctx, "*").Result()
	if err := s.DeleteTenant(ctx, "ck-1"); err != nil {
		t.Fatal(err)
	}
	after, _ := rdb.Keys(ctx, "*").Result()
	for _, k := range after {
		if strings.Contains(k, tenantTag("ck-1")) || strings.Contains(k, "ar_ck-1") || strings.Contains(k, "gr_ck-1") {
			t.Errorf("key %q survived the purge", k)
		}
	}
	if len(after) == 0 || len(after) >= len(before) {
		t.Errorf("keys before %d, after %d", len(before), len(after))
	}
	if _, err := s.Request(ctx, "ar_ck-1"); !errors.Is(err, consent.ErrNotFound) {
		t.Errorf("purged request still resolves: %v", err)
	}
	if _, err := s.Grant(ctx, "gr_ck-2"); err != nil {
		t.Errorf("the other tenant's grant is gone: %v", err)
	}
	if ts, _ := s.Tenants(ctx); !cmp.Equal(ts, []string{"ck-2"}) {
		t.Errorf("Tenants = %v", ts)
	}
}

func TestConsentUnavailable(t *testing.T) {
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
	t.Cleanup(func() { rdb.Close() })
	s := NewConsent(rdb)
	ctx := context.Background()
	now := time.Now()
	rec, grec := consentFixture(now, "ck", "ar_1", "gr_1")
	rec.Version = 1
	checks := map[string]error{
		"Request":  func() error { _, err := s.Request(ctx, "ar_1"); return err }(),
		"Grant":    func() error { _, err := s.Grant(ctx, "gr_1"); return err }(),
		"Live":     func() error { _, err := s.LiveGrant(ctx, "gr_1"); return err }(),
		"Create":   s.CreateRequest(ctx, consent.RequestRecord{Request: rec.Request}, now),
		"Save":     s.Save(ctx, consent.Change{Tenant: "ck", Request: &rec, Grant: &grec}),
		"Due":      func() error { _, err := s.Due(ctx, "ck", now, 1); return err }(),
		"Lease":    func() error { _, err := s.AcquireLease(ctx, "x", "y", time.Second); return err }(),
		"Accesses": func() error { _, err := s.Accesses(ctx, "ck", "gr_1"); return err }(),
	}
	for name, err := range checks {
		if !errors.Is(err, ErrUnavailable) {
			t.Errorf("%s: err = %v, want ErrUnavailable", name, err)
		}
	}
}

// TestConsentScriptsRunOnEmbeddedRedis runs the scripts on miniredis, which `supportbridge
// dev` uses, because its Lua and SET PXAT are a reimplementation, not Redis.
func TestConsentScriptsRunOnEmbeddedRedis(t *testing.T) {
	m := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: m.Addr()})
	t.Cleanup(func() { rdb.Close() })
	ctx := context.Background()
	s := NewConsent(rdb)
	now := time.Now().UTC()
	m.SetTime(now)
	rec, grec := consentFixture(now, "ck-1", "ar_1", "gr_1")
	if err := s.CreateRequest(ctx, rec, now); err != nil {
		t.Fatalf("CreateRequest: %v", err)
	}
	stale := rec
	rec.Version = 1
	if err := s.Save(ctx, consent.Change{Tenant: "ck-1", Request: &rec, Grant: &grec, GrantDue: grec.Grant.End}); err != nil {
		t.Fatalf("Save: %v", err)
	}
	stale.Version = 1
	if err := s.Save(ctx, consent.Change{Tenant: "ck-1", Request: &stale}); !errors.Is(err, consent.ErrConflict) {
		t.Errorf("stale Save = %v, want ErrConflict", err)
	}
	if _, err := s.LiveGrant(ctx, "gr_1"); err != nil {
		t.Fatalf("LiveGrant: %v", err)
	}
	m.FastForward(2 * time.Hour)
	if _, err := s.LiveGrant(ctx, "gr_1"); !errors.Is(err, consent.ErrNotFound) {
		t.Errorf("LiveGrant after its end on miniredis = %v", err)
	}
	if ok, err := s.AcquireLease(ctx, "x", "a", time.Second); err != nil || !ok {
		t.Errorf("AcquireLease = %v, %v", ok, err)
	}
}

package redisstore

import (
	"context"
	"testing"
	"time"

	"github.com/supportbridge/supportbridge/internal/errortrack"
	"github.com/supportbridge/supportbridge/internal/lifecycle"
	"github.com/supportbridge/supportbridge/internal/redisstore/redistest"
)

func TestCustomerMACMatchesReports(t *testing.T) {
	r := NewReports(redistest.Client(t), ReportsOptions{CustomerKey: []byte("k-0123456789abcdef0123456789abcd")})
	if got, want := customerMACOf([]byte("k-0123456789abcdef0123456789abcd"), " Ada@Example.com"), r.customerMAC("ada@example.com"); got != want {
		t.Errorf("privacy MAC %s, reports MAC %s: erasure by email would find nothing", got, want)
	}
}

// TestPrivacyEraseRemovesExactlyThatPerson erases one person of two who share tenants and
// error groups: only their mappings, ids and the groups only they hit go.
func TestPrivacyEraseRemovesExactlyThatPerson(t *testing.T) {
	ctx := context.Background()
	rdb := redistest.Client(t)
	e := newPurgeEnv(t, rdb) // two tenants, each with a cached customer and a group
	key := []byte("test-customer-key-0123456789abcd")
	errs, err := errortrack.New(NewErrors(rdb), errortrack.Options{Key: []byte("tracking-key-0123456789"), Now: e.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	// Ada and Bob file errors in both tenants on two days; a group "ada-only" only Ada hits.
	for _, tn := range []string{victim, bystander} {
		for _, u := range []string{"ada", "bob"} {
			if err := e.reports.CacheCustomer(ctx, tn, u+"@example.com", "acc-"+u); err != nil {
				t.Fatal(err)
			}
			if err := e.reports.CacheReporterEmail(ctx, tn, "acc-"+u, u+"@example.com"); err != nil {
				t.Fatal(err)
			}
		}
	}
	for range 2 {
		for _, tn := range []string{victim, bystander} {
			if _, err := errs.Accept(ctx, tn, "acc-ada", []errortrack.Event{{Kind: errortrack.KindError, Message: "shared"}, {Kind: errortrack.KindError, Message: "ada only"}}); err != nil {
				t.Fatal(err)
			}
			if _, err := errs.Accept(ctx, tn, "acc-bob", []errortrack.Event{{Kind: errortrack.KindError, Message: "shared"}}); err != nil {
				t.Fatal(err)
			}
		}
		e.clock.Advance(24 * time.Hour)
	}
	before := dumpAll(t, rdb)
	er := lifecycle.NewEraser(NewPrivacy(rdb, key), errs.TrackingID, 0, e.clock.Now)
	got, err := er.Erase(ctx, "acc-ada", "ada@example.com")
	if err != nil {
		t.Fatal(err)
	}
	// Two tenants × (customer and reporter mapping) = 4; ids: 2 tenants × 2 days × 2 groups
	// = 8; groups: 2.
	if got.CustomerMappingsRemoved != 4 || got.TrackingIDsRemoved != 8 || got.ErrorGroupsRemoved != 2 || got.TenantsSearched != 2 {
		t.Errorf("Erase = %+v; want 4 mappings, 8 ids, 2 groups, 2 tenants", got)
	}
	after := dumpAll(t, rdb)
	for _, tn := range []string{victim, bystander} {
		if _, ok, _ := NewReports(rdb, ReportsOptions{CustomerKey: key}).CachedCustomer(ctx, tn, "bob@example.com"); !ok {
			t.Errorf("Bob's mapping in %s went", tn)
		}
		if _, ok, _ := NewReports(rdb, ReportsOptions{CustomerKey: key}).CachedCustomer(ctx, tn, "ada@example.com"); ok {
			t.Errorf("Ada's mapping in %s stayed", tn)
		}
		p, err := errs.Groups(ctx, tn, "", 100)
		if err != nil {
			t.Fatal(err)
		}
		for _, g := range p.Groups {
			if g.Message == "ada only" {
				t.Errorf("the group only Ada hit stayed in %s", tn)
			}
			if g.Message == "shared" && len(g.TrackingIDs) != 2 {
				t.Errorf("shared group in %s keeps %d ids, want Bob's 2", tn, len(g.TrackingIDs))
			}
		}
	}
	// Nothing else changed: every key that did not hold Ada is as it was.
	changed := 0
	for k, v := range before {
		if after[k] != v {
			changed++
		}
	}
	// Per tenant: Ada's two mappings, the ada-only group and its ids, the shared group's
	// ids, the index.
	if changed != 2*6 {
		t.Errorf("%d keys changed, want 12", changed)
	}
	for _, tn := range []string{victim, bystander} {
		if _, ok, _ := e.reports.CachedReporterEmail(ctx, tn, "acc-ada"); ok {
			t.Errorf("Ada's reporter email in %s stayed", tn)
		}
		if _, ok, _ := e.reports.CachedReporterEmail(ctx, tn, "acc-bob"); !ok {
			t.Errorf("Bob's reporter email in %s went", tn)
		}
	}
	again, err := er.Erase(ctx, "acc-ada", "ada@example.com")
	if err != nil || again.CustomerMappingsRemoved+again.TrackingIDsRemoved+again.ErrorGroupsRemoved != 0 {
		t.Errorf("second Erase = %+v, %v; want nothing found", again, err)
	}
}

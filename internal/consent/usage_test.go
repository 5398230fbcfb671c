package consent_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/supportbridge/supportbridge/internal/consent"
	"github.com/supportbridge/supportbridge/internal/usage"
)

// countRecorder is a usage counter that remembers what it was told.
type countRecorder struct {
	mu     sync.Mutex
	counts map[string]int64
}

func (c *countRecorder) Count(_ context.Context, tenant string, kind usage.Kind, n int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.counts == nil {
		c.counts = map[string]int64{}
	}
	c.counts[tenant+" "+string(kind)] += n
}

// TestUsageCountsDecisions: requests, approvals, denials, expiries and grant ends are
// counted once each, by tenant and kind only.
func TestUsageCountsDecisions(t *testing.T) {
	rec := &countRecorder{}
	e := newEnv(t, func(o *consent.Options) { o.Usage = rec })
	// One approved then revoked, one approved that expires, one denied, one left to expire.
	_, a := e.request(t, e.input("1h"))
	g, err := e.approve(ctx, a, "")
	if err != nil {
		t.Fatal(err)
	}
	if err := e.svc.RevokeGrant(ctx, alice, g.ID); err != nil {
		t.Fatal(err)
	}
	_, b := e.request(t, e.input("1h"))
	if _, err := e.approve(ctx, b, ""); err != nil {
		t.Fatal(err)
	}
	_, c := e.request(t, e.input("1h"))
	if err := e.deny(ctx, c, ""); err != nil {
		t.Fatal(err)
	}
	e.request(t, e.input("1h"))
	e.clock.Advance(73 * time.Hour)
	for range 2 { // a second pass finds nothing more to count
		if err := e.svc.Tick(ctx); err != nil {
			t.Fatal(err)
		}
	}
	want := map[string]int64{
		"tenant-a access_requested":              4,
		"tenant-a access_approved":               2,
		"tenant-a access_denied":                 1,
		"tenant-a access_expired":                1,
		"tenant-a grants_ended_revoked_by_agent": 1,
		"tenant-a grants_ended_expired":          1,
	}
	if diff := cmp.Diff(want, rec.counts); diff != "" {
		t.Errorf("usage counts (-want +got):\n%s", diff)
	}
}

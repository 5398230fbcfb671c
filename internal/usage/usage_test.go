package usage

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
)

// memStore is a Store in memory that can be made to fail.
type memStore struct {
	mu   sync.Mutex
	fail bool
	days map[string]map[string]map[string]int64 // tenant → day → kind
}

func (m *memStore) Add(_ context.Context, tenant string, at time.Time, counts map[string]int64) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail {
		return errors.New("down")
	}
	if m.days == nil {
		m.days = map[string]map[string]map[string]int64{}
	}
	for _, t := range []string{tenant, ""} {
		if m.days[t] == nil {
			m.days[t] = map[string]map[string]int64{}
		}
		d := at.Format(time.DateOnly)
		if m.days[t][d] == nil {
			m.days[t][d] = map[string]int64{}
		}
		for k, v := range counts {
			m.days[t][d][k] += v
		}
	}
	return nil
}

func (m *memStore) Days(_ context.Context, tenant string, from, to time.Time) (map[string]map[string]int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.days[tenant], nil
}

func TestCounterKeepsCountsUntilTheStoreTakesThem(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 12, 4, 23, 0, 0, 0, time.UTC)
	store := &memStore{fail: true}
	reg := prometheus.NewRegistry()
	c := NewCounter(store, reg, func() time.Time { return now }, nil)
	c.Count(ctx, "t1", ReportsFiled, 2)
	c.Count(ctx, "t1", GrantsEnded("revoked_by_customer"), 1)
	c.Count(ctx, "t1", Kind("user:557058:abc"), 1) // not a kind: ignored
	c.Count(ctx, "t1", GrantsEnded("Not A Reason"), 1)
	c.Count(ctx, "t1", ReportsFiled, -5)
	c.Count(ctx, "", ReportsFiled, 1)
	if err := c.Flush(ctx); err == nil {
		t.Fatal("Flush into a failing store succeeded")
	}
	now = now.Add(2 * time.Hour) // the next day
	c.Count(ctx, "t2", ErrorEvents, 3)
	store.fail = false
	if err := c.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	want := map[string]map[string]int64{
		"2026-12-04": {"reports_filed": 2, "grants_ended_revoked_by_customer": 1},
		"2026-12-05": {"error_events": 3},
	}
	got, _ := store.Days(ctx, "", now, now)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("totals (-want +got):\n%s", diff)
	}
	var nilCounter *Counter
	nilCounter.Count(ctx, "t", ReportsFiled, 1) // optional wiring: a nil counter counts nothing

	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() != "kind" {
					t.Errorf("metric %s has label %s; only kind is allowed (no tenant, no user)", mf.GetName(), l.GetName())
				}
			}
		}
	}
}

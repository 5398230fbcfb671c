// Package usage counts what the service does, per tenant and day, without user identifiers:
// the anonymous usage counts the vendor's policy promises. Callers count and move on; the
// counts are buffered in memory and written in batches, so counting never slows down or
// fails what is counted.
package usage

import (
	"context"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Kind is what is counted.
type Kind string

// The kinds counted. Grants ended are counted per reason: GrantsEnded(reason).
const (
	ReportsFiled     Kind = "reports_filed"
	ReportsDelivered Kind = "reports_delivered"
	ReportsFailed    Kind = "reports_failed"
	AccessRequested  Kind = "access_requested"
	AccessApproved   Kind = "access_approved"
	AccessDenied     Kind = "access_denied"
	AccessExpired    Kind = "access_expired"
	LogBytesServed   Kind = "log_bytes_served"
	ErrorEvents      Kind = "error_events"
)

// GrantsEnded is the kind of grants ended for reason (expired, revoked_by_customer, …).
func GrantsEnded(reason string) Kind { return Kind("grants_ended_" + reason) }

// Valid reports whether k is a kind this package counts: a fixed name, or grants ended
// with a reason of lower-case letters and underscores (so a caller's string can never put
// an identifier into the counts).
func (k Kind) Valid() bool {
	switch k {
	case ReportsFiled, ReportsDelivered, ReportsFailed, AccessRequested, AccessApproved,
		AccessDenied, AccessExpired, LogBytesServed, ErrorEvents:
		return true
	}
	r, ok := strings.CutPrefix(string(k), "grants_ended_")
	if !ok || r == "" || len(r) > 40 {
		return false
	}
	for _, c := range r {
		if (c < 'a' || c > 'z') && c != '_' {
			return false
		}
	}
	return true
}

// Retention is how long daily counts are kept.
const Retention = 400 * 24 * time.Hour

// Store keeps daily counts. *redisstore.Usage implements it.
type Store interface {
	// Add adds counts to the tenant's day of at, and to the day's total over all tenants.
	Add(ctx context.Context, tenant string, at time.Time, counts map[string]int64) error
	// Days returns the counts of each UTC day in [from, to], of one tenant or ("") of all.
	Days(ctx context.Context, tenant string, from, to time.Time) (map[string]map[string]int64, error)
}

type bucket struct {
	tenant, day string
}

// Counter buffers counts and flushes them to a Store. The zero value is not usable; a nil
// *Counter counts nothing, so optional wiring needs no checks at call sites.
type Counter struct {
	store Store
	now   func() time.Time
	log   *slog.Logger
	prom  *prometheus.CounterVec

	mu      sync.Mutex
	pending map[bucket]map[string]int64
	size    int
}

// maxPending bounds the buckets held while the store is unreachable; past it new counts
// are dropped (and logged), never the caller's request.
const maxPending = 100000

// NewCounter returns a Counter. reg, when set, gets supportbridge_usage_total{kind}: no
// tenant label, so metrics say nothing about who.
func NewCounter(store Store, reg prometheus.Registerer, now func() time.Time, log *slog.Logger) *Counter {
	if now == nil {
		now = time.Now
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	c := &Counter{store: store, now: now, log: log, pending: map[bucket]map[string]int64{},
		prom: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "supportbridge_usage_total", Help: "Usage events counted, by kind (no tenant label).",
		}, []string{"kind"})}
	if reg != nil {
		reg.MustRegister(c.prom)
	}
	return c
}

// Count adds n of kind for tenant today. It never blocks on I/O and never fails; an
// unknown kind or a non-positive n is ignored.
func (c *Counter) Count(_ context.Context, tenant string, kind Kind, n int64) {
	if c == nil || n <= 0 || tenant == "" || !kind.Valid() {
		return
	}
	c.prom.WithLabelValues(string(kind)).Add(float64(n))
	b := bucket{tenant: tenant, day: c.now().UTC().Format(time.DateOnly)}
	c.mu.Lock()
	defer c.mu.Unlock()
	m := c.pending[b]
	if m == nil {
		if c.size >= maxPending {
			return
		}
		m = map[string]int64{}
		c.pending[b] = m
		c.size++
	}
	m[string(kind)] += n
}

// Flush writes what is buffered. Counts that could not be written are kept for the next
// flush.
func (c *Counter) Flush(ctx context.Context) error {
	if c == nil {
		return nil
	}
	c.mu.Lock()
	batch := c.pending
	c.pending, c.size = map[bucket]map[string]int64{}, 0
	c.mu.Unlock()
	var firstErr error
	for b, counts := range batch {
		day, _ := time.Parse(time.DateOnly, b.day)
		if err := c.store.Add(ctx, b.tenant, day, counts); err != nil {
			if firstErr == nil {
				firstErr = err
			}
			c.mu.Lock()
			m := c.pending[b]
			if m == nil {
				m = map[string]int64{}
				c.pending[b] = m
				c.size++
			}
			for k, v := range counts {
				m[k] += v
			}
			c.mu.Unlock()
		}
	}
	if firstErr != nil {
		return fmt.Errorf("flush usage counts: %w", firstErr)
	}
	return nil
}

// Run flushes every interval until ctx ends, and once more then.
func (c *Counter) Run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
			if err := c.Flush(fctx); err != nil {
				c.log.Warn("usage_flush_failed", "error", err)
			}
			cancel()
			return
		case <-t.C:
			if err := c.Flush(ctx); err != nil {
				c.log.WarnContext(ctx, "usage_flush_failed", "error", err)
			}
		}
	}
}

// Day is one day of counts.
type Day struct {
	Date   string           `json:"date"`
	Counts map[string]int64 `json:"counts"`
}

// Stats is the answer of GET /api/v1/stats.
type Stats struct {
	From   string           `json:"from"`
	To     string           `json:"to"`
	Tenant string           `json:"tenantKeyHash,omitempty"`
	Days   []Day            `json:"days"`
	Totals map[string]int64 `json:"totals"`
}

// MaxRange bounds one stats query.
const MaxRange = 400

// Query reads the counts of [from, to] (UTC days), of one tenant or of all.
func Query(ctx context.Context, s Store, tenant string, from, to time.Time) (Stats, error) {
	days, err := s.Days(ctx, tenant, from, to)
	if err != nil {
		return Stats{}, fmt.Errorf("read usage: %w", err)
	}
	st := Stats{From: from.Format(time.DateOnly), To: to.Format(time.DateOnly), Days: []Day{}, Totals: map[string]int64{}}
	for d, counts := range days {
		st.Days = append(st.Days, Day{Date: d, Counts: counts})
		for k, v := range counts {
			st.Totals[k] += v
		}
	}
	sort.Slice(st.Days, func(i, j int) bool { return st.Days[i].Date < st.Days[j].Date })
	return st, nil
}

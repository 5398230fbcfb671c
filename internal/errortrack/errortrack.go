// Package errortrack is browser error tracking for the vendor's apps: it takes batches of
// error events the app's pages captured, scrubs them, groups them by fingerprint per tenant,
// and counts the people they hit only through an anonymous tracking id that changes every day.
//
// Nothing here knows HTTP or Redis: the HTTP layer parses and calls, and a Store (Redis in
// production) keeps the groups.
package errortrack

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/supportbridge/supportbridge/internal/usage"
)

// Kind says what the browser saw.
type Kind string

// The kinds of event a page reports.
const (
	KindError     Kind = "error"              // window "error": an uncaught exception
	KindRejection Kind = "unhandledrejection" // a promise rejected with nobody listening
	KindHTTP      Kind = "http"               // a fetch or XMLHttpRequest answered with a 5xx
)

// Event is one error a page captured, after parsing and scrubbing.
type Event struct {
	Kind      Kind
	Message   string
	Stack     string
	URL       string
	Status    int // HTTP status, kind http only
	RequestID string
	Time      time.Time // when the browser saw it; zero when it did not say
}

// Hit is one event ready for the store: its group and the anonymous id of who hit it.
type Hit struct {
	Fingerprint string
	Kind        Kind
	Message     string // scrubbed sample
	Frame       string // top stack frame, scrubbed
	URL         string // scrubbed
	Status      int
	RequestID   string // of a failed response, to find it in the service's logs
	TrackingID  string // empty when the token named no user
}

// Group is what the store knows of one fingerprint of one tenant.
type Group struct {
	Fingerprint string `json:"fingerprint"`
	Kind        Kind   `json:"kind"`
	Message     string `json:"message"`
	Frame       string `json:"frame,omitempty"`
	URL         string `json:"url,omitempty"`
	Status      int    `json:"status,omitempty"`
	// RequestID is the latest request id an event of the group carried.
	RequestID string    `json:"requestId,omitempty"`
	Count     int64     `json:"count"`
	FirstSeen time.Time `json:"firstSeen"`
	LastSeen  time.Time `json:"lastSeen"`
	// TrackingIDs are the anonymous daily ids that hit the group, at most MaxTrackingIDs.
	TrackingIDs []string `json:"trackingIds"`
	// TrackingIDsCapped is true once more ids hit the group than are kept.
	TrackingIDsCapped bool `json:"trackingIdsCapped"`
}

// Page is one page of a tenant's groups, newest last-seen first.
type Page struct {
	Groups []Group `json:"groups"`
	// NextCursor fetches the next page; empty on the last.
	NextCursor string `json:"nextCursor,omitempty"`
}

// Retention says how long a group and its ids are kept, how many of each.
type Retention struct {
	TTL            time.Duration // since the group's last hit
	MaxTrackingIDs int           // per group
	MaxGroups      int           // per tenant; the least recently hit go first
}

// Store keeps groups and counts the rate. *redisstore.Errors implements it.
type Store interface {
	// Reserve takes n events from the tenant's budget of limit per window starting at the
	// window that holds now. When they do not fit nothing is taken, and retryAfter says when
	// the next window starts.
	Reserve(ctx context.Context, tenant string, n, limit int, window time.Duration, now time.Time) (ok bool, retryAfter time.Duration, err error)
	// Record adds hits to the tenant's groups, refreshing their TTL.
	Record(ctx context.Context, tenant string, hits []Hit, now time.Time, r Retention) error
	// Groups lists the tenant's groups newest last-seen first, after the cursor.
	Groups(ctx context.Context, tenant, cursor string, limit int) (Page, error)
}

// Errors of the domain; the HTTP layer maps them.
var (
	// ErrBadCursor means a cursor that this service did not hand out.
	ErrBadCursor = errors.New("errortrack: invalid cursor")
)

// RateLimitedError refuses a batch over the tenant's budget.
type RateLimitedError struct{ RetryAfter time.Duration }

func (e *RateLimitedError) Error() string {
	return fmt.Sprintf("errortrack: tenant over its event budget, retry after %s", e.RetryAfter)
}

// Options configure a Service; zero values take the defaults.
type Options struct {
	// Key keys the tracking-id HMAC; derive it from SB_SECRET_KEY for this purpose only.
	Key []byte
	// PerWindow events per tenant per Window (default 600 a minute).
	PerWindow int
	Window    time.Duration
	Retention Retention // default 14 days, 100 ids, 1000 groups
	Now       func() time.Time
	// Usage counts accepted events anonymously (usage.ErrorEvents); nil counts nothing.
	Usage UsageCounter
}

// UsageCounter is the anonymous usage count; *usage.Counter implements it.
type UsageCounter interface {
	Count(ctx context.Context, tenant string, kind usage.Kind, n int64)
}

// Service accepts events and lists groups.
type Service struct {
	store Store
	key   []byte
	per   int
	win   time.Duration
	ret   Retention
	now   func() time.Time
	usage UsageCounter
}

// New returns a Service over store. A key shorter than 16 bytes is an error: tracking ids
// would be guessable from the accountId.
func New(store Store, o Options) (*Service, error) {
	if len(o.Key) < 16 {
		return nil, errors.New("errortrack: tracking-id key shorter than 16 bytes")
	}
	s := &Service{store: store, key: append([]byte(nil), o.Key...), per: o.PerWindow, win: o.Window, ret: o.Retention, now: o.Now, usage: o.Usage}
	if s.per <= 0 {
		s.per = 600
	}
	if s.win <= 0 {
		s.win = time.Minute
	}
	if s.ret.TTL <= 0 {
		s.ret.TTL = 14 * 24 * time.Hour
	}
	if s.ret.MaxTrackingIDs <= 0 {
		s.ret.MaxTrackingIDs = 100
	}
	if s.ret.MaxGroups <= 0 {
		s.ret.MaxGroups = 1000
	}
	if s.now == nil {
		s.now = time.Now
	}
	return s, nil
}

// TrackingID is the anonymous id of accountID in tenant on the UTC day of t: an HMAC, so
// it cannot be reversed or recomputed without the key, scoped to one tenant so ids cannot be
// joined across sites, and rotated daily so one person cannot be followed across days.
func (s *Service) TrackingID(tenant, accountID string, t time.Time) string {
	if accountID == "" {
		return ""
	}
	m := hmac.New(sha256.New, s.key)
	m.Write([]byte(tenant))
	m.Write([]byte{0})
	m.Write([]byte(accountID))
	m.Write([]byte{0})
	m.Write([]byte(t.UTC().Format(time.DateOnly)))
	return hex.EncodeToString(m.Sum(nil)[:12])
}

// Accept records events (already parsed and scrubbed by ParseBatch) for a user of a tenant
// and returns how many were accepted: all of them, or none with a *RateLimitedError.
func (s *Service) Accept(ctx context.Context, tenant, accountID string, events []Event) (int, error) {
	if len(events) == 0 {
		return 0, nil
	}
	now := s.now()
	ok, wait, err := s.store.Reserve(ctx, tenant, len(events), s.per, s.win, now)
	if err != nil {
		return 0, fmt.Errorf("reserve error budget: %w", err)
	}
	if !ok {
		return 0, &RateLimitedError{RetryAfter: wait}
	}
	id := s.TrackingID(tenant, accountID, now)
	hits := make([]Hit, len(events))
	for i, e := range events {
		hits[i] = Hit{
			Fingerprint: Fingerprint(e), Kind: e.Kind, Message: e.Message, Frame: TopFrame(e.Stack),
			URL: e.URL, Status: e.Status, RequestID: e.RequestID, TrackingID: id,
		}
	}
	if err := s.store.Record(ctx, tenant, hits, now, s.ret); err != nil {
		return 0, fmt.Errorf("record errors: %w", err)
	}
	if s.usage != nil {
		s.usage.Count(ctx, tenant, usage.ErrorEvents, int64(len(events)))
	}
	return len(events), nil
}

// Groups lists a tenant's groups, newest last-seen first; limit is clamped to 1..100.
func (s *Service) Groups(ctx context.Context, tenant, cursor string, limit int) (Page, error) {
	limit = min(max(limit, 1), 100)
	p, err := s.store.Groups(ctx, tenant, cursor, limit)
	if err != nil {
		return Page{}, err
	}
	if p.Groups == nil {
		p.Groups = []Group{}
	}
	return p, nil
}

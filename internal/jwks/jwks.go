// Package jwks caches the signing keys a token issuer publishes as a JSON Web Key Set. Forge
// Invocation Tokens and agent SSO tokens both name their key by kid, and the kid comes from
// an unauthenticated token: an unknown kid triggers a refresh, but refreshes start at most
// once per MinRefresh and concurrent callers share the one in flight, so garbage kids cannot
// make us fetch the set once per request.
package jwks

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"time"
)

// Errors of Key.
var (
	// ErrUnknownKey means the issuer's current set has no key with this kid.
	ErrUnknownKey = errors.New("jwks: unknown key id")
	// ErrUnavailable means the set could not be fetched and the kid is not cached: the kid
	// may be genuine, so callers answer 503 rather than 401.
	ErrUnavailable = errors.New("jwks: keys unavailable")
)

// MaxBytes bounds what a misbehaving JWKS server can make us read and parse.
const MaxBytes = 1 << 20

// Options configures a Set.
type Options[K any] struct {
	// Name tells the issuer apart in log lines ("forge", "agent").
	Name string
	URL  string
	// Client fetches the set; nil means a client of its own.
	Client *http.Client
	// Timeout bounds one fetch (default 5 s); MinRefresh spaces fetches (default 30 s);
	// MaxAge is how long a fetched set is trusted before the next use refreshes it, so
	// withdrawn keys stop working (default 1 h).
	Timeout, MinRefresh, MaxAge time.Duration
	// Parse turns a JWKS document into usable keys by kid.
	Parse  func(body []byte) (map[string]K, error)
	Now    func() time.Time
	Logger *slog.Logger
}

// Set is a cached key set; safe for concurrent use.
type Set[K any] struct {
	o Options[K]

	mu        sync.Mutex
	keys      map[string]K  // replaced whole on each successful fetch
	fetchedAt time.Time     // last successful fetch
	attempted time.Time     // start of the last fetch, good or bad; the rate limit counts from here
	lastErr   error         // outcome of the last fetch
	inflight  chan struct{} // closed when the running fetch ends; nil when none runs
}

// New returns an empty Set; the first Key call fetches.
func New[K any](o Options[K]) *Set[K] {
	if o.Client == nil {
		o.Client = &http.Client{}
	}
	if o.Timeout == 0 {
		o.Timeout = 5 * time.Second
	}
	if o.MinRefresh == 0 {
		o.MinRefresh = 30 * time.Second
	}
	if o.MaxAge == 0 {
		o.MaxAge = time.Hour
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return &Set[K]{o: o}
}

// Key returns the key for kid, refreshing the set when the kid is unknown or the set is older
// than MaxAge. A failed refresh keeps the keys we had.
func (s *Set[K]) Key(ctx context.Context, kid string) (K, error) {
	var zero K
	s.mu.Lock()
	k, known := s.keys[kid]
	if known && s.o.Now().Sub(s.fetchedAt) < s.o.MaxAge {
		s.mu.Unlock()
		return k, nil
	}
	done := s.startRefreshLocked(ctx)
	if done == nil { // rate limited
		defer s.mu.Unlock()
		if known {
			return k, nil // stale but the best we have
		}
		return zero, s.missingLocked()
	}
	s.mu.Unlock()

	select {
	case <-done:
	case <-ctx.Done():
		if known {
			return k, nil
		}
		return zero, fmt.Errorf("%w: %w", ErrUnavailable, ctx.Err())
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	if k, ok := s.keys[kid]; ok {
		return k, nil
	}
	return zero, s.missingLocked()
}

// missingLocked says why a kid is not in the set: after a failed fetch we cannot know whether
// the kid is real, otherwise the issuer does not have it.
func (s *Set[K]) missingLocked() error {
	if s.lastErr != nil {
		return fmt.Errorf("%w: %w", ErrUnavailable, s.lastErr)
	}
	return ErrUnknownKey
}

// startRefreshLocked starts a fetch unless one is running (then it returns that one's
// channel) or the last one started less than MinRefresh ago (then it returns nil).
func (s *Set[K]) startRefreshLocked(ctx context.Context) chan struct{} {
	if s.inflight != nil {
		return s.inflight
	}
	now := s.o.Now()
	if !s.attempted.IsZero() && now.Sub(s.attempted) < s.o.MinRefresh {
		return nil
	}
	s.attempted = now
	done := make(chan struct{})
	s.inflight = done
	// The fetch outlives the caller that started it: callers waiting on it must not fail
	// because the first one hung up.
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.o.Timeout)
	go func() {
		defer cancel()
		keys, err := s.fetch(fctx)
		s.mu.Lock()
		if err == nil {
			s.keys, s.fetchedAt = keys, s.o.Now()
		}
		s.lastErr = err
		s.inflight = nil
		s.mu.Unlock()
		close(done)
		if err != nil {
			s.o.Logger.Warn("jwks_fetch_failed", slog.String("issuer", s.o.Name), slog.String("jwks_url", s.o.URL), slog.Any("error", err))
		} else {
			s.o.Logger.Info("jwks_fetched", slog.String("issuer", s.o.Name), slog.Int("keys", len(keys)))
		}
	}()
	return done
}

// fetch downloads and parses the set.
func (s *Set[K]) fetch(ctx context.Context) (map[string]K, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.o.URL, nil)
	if err != nil {
		return nil, fmt.Errorf("build jwks request: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := s.o.Client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("get jwks: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("get jwks: status %d", resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxBytes+1))
	if err != nil {
		return nil, fmt.Errorf("read jwks: %w", err)
	}
	if len(body) > MaxBytes {
		return nil, errors.New("read jwks: body too large")
	}
	return s.o.Parse(body)
}

package forge

import (
	"context"
	"crypto/rsa"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"
)

const (
	// maxJWKSBytes bounds what a misbehaving JWKS server can make us read and parse.
	maxJWKSBytes = 1 << 20
	// minRSABits refuses keys too weak to trust, whatever the JWKS says.
	minRSABits = 2048
)

// keySet caches the FIT signing keys by kid. A kid we do not hold triggers a refresh, but
// refreshes start at most once per minRefresh and concurrent callers share the one in
// flight: the kid comes from an unauthenticated token, so without the limit anyone could make
// us fetch the JWKS once per request.
type keySet struct {
	url        string
	client     *http.Client
	timeout    time.Duration
	minRefresh time.Duration
	maxAge     time.Duration
	now        func() time.Time
	log        *slog.Logger

	mu        sync.Mutex
	keys      map[string]*rsa.PublicKey // replaced whole on each successful fetch
	fetchedAt time.Time                 // last successful fetch
	attempted time.Time                 // start of the last fetch, good or bad; the rate limit counts from here
	lastErr   error                     // outcome of the last fetch
	inflight  chan struct{}             // closed when the running fetch ends; nil when none runs
}

// key returns the public key for kid, refreshing the set when the kid is unknown or the set
// is older than maxAge.
func (s *keySet) key(ctx context.Context, kid string) (*rsa.PublicKey, error) {
	s.mu.Lock()
	k, known := s.keys[kid]
	if known && s.now().Sub(s.fetchedAt) < s.maxAge {
		s.mu.Unlock()
		return k, nil
	}
	done := s.startRefreshLocked(ctx)
	if done == nil { // rate limited
		defer s.mu.Unlock()
		if known {
			return k, nil // stale but the best we have
		}
		return nil, s.missingLocked()
	}
	s.mu.Unlock()

	select {
	case <-done:
	case <-ctx.Done():
		if known {
			return k, nil
		}
		return nil, fmt.Errorf("%w: %w", ErrKeysUnavailable, ctx.Err())
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	if k, ok := s.keys[kid]; ok {
		return k, nil
	}
	return nil, s.missingLocked()
}

// missingLocked says why a kid is not in the set: if the last fetch failed we cannot know
// whether the kid is real, otherwise the JWKS does not have it.
func (s *keySet) missingLocked() error {
	if s.lastErr != nil {
		return ErrKeysUnavailable
	}
	return invalid(ReasonUnknownKey)
}

// startRefreshLocked starts a fetch unless one is running (then it returns that one's channel)
// or the last one started less than minRefresh ago (then it returns nil).
func (s *keySet) startRefreshLocked(ctx context.Context) chan struct{} {
	if s.inflight != nil {
		return s.inflight
	}
	now := s.now()
	if !s.attempted.IsZero() && now.Sub(s.attempted) < s.minRefresh {
		return nil
	}
	s.attempted = now
	done := make(chan struct{})
	s.inflight = done
	// The fetch outlives the caller that started it: callers waiting on it must not fail
	// because the first one hung up.
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.timeout)
	go func() {
		defer cancel()
		keys, err := s.fetch(fctx)
		s.mu.Lock()
		if err == nil {
			s.keys, s.fetchedAt = keys, s.now()
		}
		s.lastErr = err
		s.inflight = nil
		s.mu.Unlock()
		close(done)
		if err != nil {
			s.log.Warn("forge jwks fetch failed", slog.String("jwks_url", s.url), slog.Any("error", err))
		} else {
			s.log.Info("forge jwks fetched", slog.Int("keys", len(keys)))
		}
	}()
	return done
}

// fetch downloads the JWKS and keeps the keys usable for RS256 signatures.
func (s *keySet) fetch(ctx context.Context) (map[string]*rsa.PublicKey, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.url, nil)
	if err != nil {
		return nil, fmt.Errorf("build jwks request: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("get jwks: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("get jwks: status %d", resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxJWKSBytes+1))
	if err != nil {
		return nil, fmt.Errorf("read jwks: %w", err)
	}
	if len(body) > maxJWKSBytes {
		return nil, errors.New("read jwks: body too large")
	}
	return parseJWKS(body)
}

// parseJWKS keeps the RSA public signing keys with a kid. Keys marked for another use or
// algorithm are skipped rather than trusted for RS256; the first key wins on a repeated kid.
// One entry we cannot parse (a new key type, a weak key) is skipped too, instead of failing
// the whole set and with it every tenant.
func parseJWKS(body []byte) (map[string]*rsa.PublicKey, error) {
	set, err := jwk.Parse(body, jwk.WithStrictKeySetParsing(false))
	if err != nil {
		return nil, fmt.Errorf("parse jwks: %w", err)
	}
	keys := make(map[string]*rsa.PublicKey, set.Len())
	for i := range set.Len() {
		k, ok := set.Key(i)
		if !ok || k.KeyType() != jwa.RSA() {
			continue
		}
		kid, ok := k.KeyID()
		if !ok || kid == "" {
			continue
		}
		if _, dup := keys[kid]; dup {
			continue
		}
		if use, ok := k.KeyUsage(); ok && use != "sig" {
			continue
		}
		if alg, ok := k.Algorithm(); ok && alg.String() != jwa.RS256().String() {
			continue
		}
		var pub rsa.PublicKey
		if err := jwk.Export(k, &pub); err != nil || pub.N == nil || pub.N.BitLen() < minRSABits {
			continue // a private key in a JWKS, or a weak one, is not something to trust
		}
		keys[kid] = &pub
	}
	if len(keys) == 0 {
		return nil, errors.New("parse jwks: no usable RS256 keys")
	}
	return keys, nil
}

package connect

import (
	"context"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

const (
	// maxCachedKeys bounds memory: Atlassian rotates install keys rarely, so a few hundred
	// entries hold every live key while junk kids cannot grow the cache without limit.
	maxCachedKeys = 256
	// maxKeyBytes is far above a 4096-bit PEM; more is not a key.
	maxKeyBytes = 16 << 10
	// minRSABits refuses keys too weak to trust with tenant installation.
	minRSABits = 2048
	// defaultKeyTimeout applies when NewKeyFetcher is given no timeout.
	defaultKeyTimeout = 5 * time.Second
	// The kid comes from an unauthenticated token, so every fresh kid would otherwise cost a
	// request to Atlassian. At most keyFetchLimit fetches start per keyFetchWindow, whatever
	// their kids; Atlassian uses a handful of keys, each cached after its first fetch.
	keyFetchLimit  = 5
	keyFetchWindow = time.Minute
	// A kid the key server has no usable key for is remembered for missingKIDTTL, so
	// repeating one forged token costs one fetch; maxMissingKIDs bounds that memory.
	missingKIDTTL  = time.Minute
	maxMissingKIDs = 1024
)

// KeyFetcher fetches the public keys Atlassian signs install and uninstall callbacks with,
// from <base>/<kid> (connect-install-keys.atlassian.com in production, a local key server in
// tests). A kid's key never changes, so successes are cached; an answer that there is no
// usable key is remembered for a minute; outages are not remembered, so they heal by
// themselves. Fetches are rate limited, so forged tokens with ever new kids cannot turn
// into a stream of requests to Atlassian.
type KeyFetcher struct {
	base    *url.URL
	client  *http.Client
	timeout time.Duration
	now     func() time.Time

	// fetchLimit fetches may start per fetchWindow; tests change them.
	fetchLimit  int
	fetchWindow time.Duration

	mu       sync.Mutex
	cache    map[string]*rsa.PublicKey
	order    []string // insertion order of cache, oldest first, for eviction
	inflight map[string]*keyCall
	missing  map[string]missingKID // kids without a usable key, until the entry expires
	started  []time.Time           // start times of the fetches in the current window
}

// missingKID remembers why a kid has no key, and until when.
type missingKID struct {
	err   error
	until time.Time
}

// keyCall is one fetch shared by every caller asking for the same kid meanwhile, so a burst
// of installs does not become a burst of requests to Atlassian.
type keyCall struct {
	done chan struct{}
	key  *rsa.PublicKey
	err  error
}

// NewKeyFetcher returns a fetcher for the key server at baseURL. A nil client means
// http.DefaultClient; timeout bounds each fetch (0 means 5 s).
func NewKeyFetcher(baseURL *url.URL, client *http.Client, timeout time.Duration) *KeyFetcher {
	if client == nil {
		client = http.DefaultClient
	}
	if timeout <= 0 {
		timeout = defaultKeyTimeout
	}
	var base *url.URL
	if baseURL != nil {
		b := *baseURL // a copy, so the caller cannot change where keys come from later
		base = &b
	}
	return &KeyFetcher{
		base:        base,
		client:      client,
		timeout:     timeout,
		now:         time.Now,
		fetchLimit:  keyFetchLimit,
		fetchWindow: keyFetchWindow,
		cache:       map[string]*rsa.PublicKey{},
		inflight:    map[string]*keyCall{},
		missing:     map[string]missingKID{},
	}
}

// Key returns the RSA public key for kid. Errors wrap ErrKeyUnavailable when the key server
// could not answer or the fetch rate limit is reached (retry later: the kid may be genuine)
// and ErrInvalidToken when it answered that there is no such usable key (the token is bad).
func (f *KeyFetcher) Key(ctx context.Context, kid string) (*rsa.PublicKey, error) {
	if !validKID(kid) {
		return nil, invalid(reasonInvalidKID)
	}
	if f.base == nil {
		return nil, errors.New("connect: key fetcher has no base URL")
	}

	f.mu.Lock()
	if k, ok := f.cache[kid]; ok {
		f.mu.Unlock()
		return k, nil
	}
	now := f.now()
	if m, ok := f.missing[kid]; ok {
		if now.Before(m.until) {
			f.mu.Unlock()
			return nil, m.err
		}
		delete(f.missing, kid)
	}
	c, ok := f.inflight[kid]
	if !ok {
		if !f.mayFetchLocked(now) {
			f.mu.Unlock()
			return nil, fmt.Errorf("%w: too many key fetches for unknown kids; retry later", ErrKeyUnavailable)
		}
		c = &keyCall{done: make(chan struct{})}
		f.inflight[kid] = c
		// The fetch outlives the first caller's cancellation, because others may be
		// waiting for it; its own timeout still bounds it.
		go f.fetchShared(context.WithoutCancel(ctx), kid, c)
	}
	f.mu.Unlock()

	select {
	case <-c.done:
		return c.key, c.err
	case <-ctx.Done():
		return nil, fmt.Errorf("%w: %w", ErrKeyUnavailable, ctx.Err())
	}
}

// mayFetchLocked reports whether a fetch may start at now, and counts it if so.
func (f *KeyFetcher) mayFetchLocked(now time.Time) bool {
	i := 0
	for i < len(f.started) && !now.Before(f.started[i].Add(f.fetchWindow)) {
		i++
	}
	f.started = f.started[i:]
	if len(f.started) >= f.fetchLimit {
		return false
	}
	f.started = append(f.started, now)
	return true
}

func (f *KeyFetcher) fetchShared(ctx context.Context, kid string, c *keyCall) {
	c.key, c.err = f.fetch(ctx, kid)

	f.mu.Lock()
	delete(f.inflight, kid)
	switch {
	case c.err == nil:
		if len(f.order) >= maxCachedKeys {
			delete(f.cache, f.order[0])
			f.order = f.order[1:]
		}
		f.cache[kid] = c.key
		f.order = append(f.order, kid)
	case errors.Is(c.err, ErrInvalidToken):
		// The server answered: no usable key by this id. Outages are not remembered.
		now := f.now()
		if len(f.missing) >= maxMissingKIDs {
			for k, m := range f.missing {
				if !now.Before(m.until) {
					delete(f.missing, k)
				}
			}
			if len(f.missing) >= maxMissingKIDs {
				clear(f.missing) // only forged kids fill it; forgetting them costs rate-limited fetches
			}
		}
		f.missing[kid] = missingKID{err: c.err, until: now.Add(missingKIDTTL)}
	}
	f.mu.Unlock()
	close(c.done)
}

func (f *KeyFetcher) fetch(ctx context.Context, kid string) (*rsa.PublicKey, error) {
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()

	u := *f.base
	u.Path = strings.TrimRight(u.Path, "/") + "/" + kid
	u.RawPath = strings.TrimRight(u.EscapedPath(), "/") + "/" + url.PathEscape(kid)
	u.RawQuery, u.Fragment = "", ""

	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, fmt.Errorf("connect: key request: %w", err)
	}
	resp, err := f.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrKeyUnavailable, err)
	}
	defer resp.Body.Close()

	switch {
	case resp.StatusCode == http.StatusOK:
	case resp.StatusCode == http.StatusRequestTimeout || resp.StatusCode == http.StatusTooManyRequests ||
		resp.StatusCode >= 500:
		return nil, fmt.Errorf("%w: key server answered %d", ErrKeyUnavailable, resp.StatusCode)
	case resp.StatusCode >= 400:
		// 404 from the server, 403 from the CDN in front of it: no key by that id.
		return nil, invalid(reasonUnknownKID)
	default:
		return nil, fmt.Errorf("%w: key server answered %d", ErrKeyUnavailable, resp.StatusCode)
	}

	body, err := io.ReadAll(io.LimitReader(resp.Body, maxKeyBytes+1))
	if err != nil {
		return nil, fmt.Errorf("%w: read key: %w", ErrKeyUnavailable, err)
	}
	if len(body) > maxKeyBytes {
		return nil, invalid(reasonUnusableKey)
	}
	return parseRSAPublicKeyPEM(body)
}

// parseRSAPublicKeyPEM accepts the PKIX "PUBLIC KEY" form Atlassian serves and the PKCS #1
// "RSA PUBLIC KEY" form some tools write.
func parseRSAPublicKeyPEM(b []byte) (*rsa.PublicKey, error) {
	block, _ := pem.Decode(b)
	if block == nil {
		return nil, invalid(reasonUnusableKey)
	}
	var key *rsa.PublicKey
	switch block.Type {
	case "PUBLIC KEY":
		pub, err := x509.ParsePKIXPublicKey(block.Bytes)
		if err != nil {
			return nil, invalid(reasonUnusableKey)
		}
		k, ok := pub.(*rsa.PublicKey)
		if !ok {
			return nil, invalid(reasonUnusableKey)
		}
		key = k
	case "RSA PUBLIC KEY":
		k, err := x509.ParsePKCS1PublicKey(block.Bytes)
		if err != nil {
			return nil, invalid(reasonUnusableKey)
		}
		key = k
	default:
		return nil, invalid(reasonUnusableKey)
	}
	if key.N.BitLen() < minRSABits {
		return nil, invalid(reasonUnusableKey)
	}
	return key, nil
}

// validKID keeps the kid, which comes from an unauthenticated token header, from steering
// the key request anywhere but one file under the key server's base: no separators, no
// dot segments, no escapes.
func validKID(kid string) bool {
	if kid == "" || len(kid) > 128 || kid == "." || kid == ".." {
		return false
	}
	for i := 0; i < len(kid); i++ {
		c := kid[i]
		if !('A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

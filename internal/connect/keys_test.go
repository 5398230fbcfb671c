package connect

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"testing"
	"time"
)

// fakeClock is a settable clock for the fetcher's rate limit and memory.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// A forged install token costs nothing to make, and its kid picks the URL we fetch: fresh kids
// must not become one request to Atlassian each.
func TestKeyFetcherLimitsFetchesForUnknownKIDs(t *testing.T) {
	key := newRSAKey(t, 2048)
	ks := newKeyServer(t, map[string][]byte{testKID: pkixPEM(t, &key.PublicKey)})
	clock := &fakeClock{t: testNow}
	f := NewKeyFetcher(ks.baseURL(t), ks.Client(), time.Second)
	f.now = clock.now
	if _, err := f.Key(context.Background(), testKID); err != nil {
		t.Fatal(err)
	}

	var unknown, unavailable int
	for i := range 30 {
		_, err := f.Key(context.Background(), "forged-"+strconv.Itoa(i))
		switch {
		case errors.Is(err, ErrInvalidToken):
			unknown++
		case errors.Is(err, ErrKeyUnavailable):
			unavailable++
		default:
			t.Fatalf("forged kid %d: err = %v", i, err)
		}
	}
	if got := ks.hits.Load(); got != keyFetchLimit {
		t.Errorf("30 forged kids made %d fetches, want %d (the limit per window)", got, keyFetchLimit)
	}
	if unknown != keyFetchLimit-1 || unavailable != 30-(keyFetchLimit-1) {
		t.Errorf("got %d unknown-kid and %d unavailable answers", unknown, unavailable)
	}
	// A cached key is unaffected by the limit.
	if _, err := f.Key(context.Background(), testKID); err != nil {
		t.Errorf("cached kid while limited: %v", err)
	}

	// The next window allows fetches again.
	clock.add(keyFetchWindow)
	before := ks.hits.Load()
	if _, err := f.Key(context.Background(), "forged-new"); !errors.Is(err, ErrInvalidToken) {
		t.Errorf("next window: err = %v, want an unknown kid", err)
	}
	if got := ks.hits.Load() - before; got != 1 {
		t.Errorf("next window: %d fetches, want 1", got)
	}
}

// Repeating one forged token costs one fetch while its "no such key" is remembered.
func TestKeyFetcherRemembersUnknownKID(t *testing.T) {
	ks := newKeyServer(t, nil)
	clock := &fakeClock{t: testNow}
	f := NewKeyFetcher(ks.baseURL(t), ks.Client(), time.Second)
	f.now = clock.now
	f.fetchLimit = 1000
	for i := range 30 {
		_, err := f.Key(context.Background(), "forged")
		wantReason(t, err, reasonUnknownKID)
		if i == 10 {
			clock.add(missingKIDTTL - time.Second)
		}
	}
	if got := ks.hits.Load(); got != 1 {
		t.Errorf("30 requests for one unknown kid made %d fetches, want 1", got)
	}
	clock.add(time.Second)
	_, err := f.Key(context.Background(), "forged")
	wantReason(t, err, reasonUnknownKID)
	if got := ks.hits.Load(); got != 2 {
		t.Errorf("after the memory expired: %d fetches, want 2", got)
	}

	// The memory is bounded.
	for i := range maxMissingKIDs + 10 {
		f.Key(context.Background(), "forged-"+strconv.Itoa(i))
	}
	f.mu.Lock()
	n := len(f.missing)
	f.mu.Unlock()
	if n > maxMissingKIDs {
		t.Errorf("%d remembered kids, want at most %d", n, maxMissingKIDs)
	}
}

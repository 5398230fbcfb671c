package connect

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/go-cmp/cmp"
)

const (
	testAudience  = "https://sb.example.com"
	testClientKey = "client-key-1"
	testKID       = "kid-1"
)

// installFixture is one Atlassian signing key behind a local key server.
type installFixture struct {
	key     *rsa.PrivateKey
	keys    *keyServer
	fetcher *KeyFetcher
	v       *InstallVerifier
}

func newInstallFixture(t *testing.T) *installFixture {
	t.Helper()
	key := newRSAKey(t, 2048)
	ks := newKeyServer(t, map[string][]byte{testKID: pkixPEM(t, &key.PublicKey)})
	f := NewKeyFetcher(ks.baseURL(t), ks.Client(), time.Second)
	return &installFixture{
		key:     key,
		keys:    ks,
		fetcher: f,
		v:       &InstallVerifier{Keys: f, Audience: testAudience, Now: fixedNow},
	}
}

// installClaims are the claims Atlassian sends with POST /connect/installed.
func installClaims() jwt.MapClaims {
	return jwt.MapClaims{
		"iss": testClientKey,
		"sub": "557058:atlassian",
		"aud": []string{testAudience},
		"qsh": QSH("POST", &url.URL{Path: PathInstalled}, ""),
		"iat": testNow.Add(-5 * time.Second).Unix(),
		"exp": testNow.Add(3 * time.Minute).Unix(),
	}
}

func TestInstallVerifier(t *testing.T) {
	fx := newInstallFixture(t)
	other := newRSAKey(t, 2048)
	installedURL := "https://sb.example.com" + PathInstalled

	with := func(k string, v any) jwt.MapClaims {
		c := installClaims()
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
		return c
	}
	tests := []struct {
		name       string
		header     string
		bodyClient string
		reason     string
	}{
		{name: "valid", header: "JWT " + signRS256(t, fx.key, testKID, installClaims())},
		{name: "scheme in any case", header: "jwt " + signRS256(t, fx.key, testKID, installClaims())},
		{name: "aud as string", header: "JWT " + signRS256(t, fx.key, testKID, with("aud", testAudience))},
		{name: "aud with trailing slash", header: "JWT " + signRS256(t, fx.key, testKID, with("aud", testAudience+"/"))},
		{name: "aud among others", header: "JWT " + signRS256(t, fx.key, testKID, with("aud", []string{"https://other.example", testAudience}))},
		{name: "no sub", header: "JWT " + signRS256(t, fx.key, testKID, with("sub", nil))},
		{name: "expired within leeway", header: "JWT " + signRS256(t, fx.key, testKID, with("exp", testNow.Add(-20*time.Second).Unix()))},
		{name: "iat in future within leeway", header: "JWT " + signRS256(t, fx.key, testKID, with("iat", testNow.Add(20*time.Second).Unix()))},

		{name: "no header", header: "", reason: reasonMissingToken},
		{name: "bearer scheme", header: "Bearer " + signRS256(t, fx.key, testKID, installClaims()), reason: reasonMissingToken},
		{name: "garbage", header: "JWT not-a-token", reason: reasonMalformed},
		{name: "HS256 signed with the public key", header: "JWT " + signHS256(t, pkixPEM(t, &fx.key.PublicKey), map[string]any{"kid": testKID}, installClaims()), reason: reasonAlgRS256},
		{name: "alg none", header: "JWT " + unsignedToken(t, map[string]any{"alg": "none", "kid": testKID}, installClaims()), reason: reasonAlgRS256},
		{name: "alg rs256 lower case", header: "JWT " + unsignedToken(t, map[string]any{"alg": "rs256", "kid": testKID}, installClaims()), reason: reasonAlgRS256},
		{name: "alg PS256", header: "JWT " + unsignedToken(t, map[string]any{"alg": "PS256", "kid": testKID}, installClaims()), reason: reasonAlgRS256},
		{name: "crit header", header: "JWT " + unsignedToken(t, map[string]any{"alg": "RS256", "kid": testKID, "crit": []string{"x"}}, installClaims()), reason: reasonMalformed},
		{name: "missing kid", header: "JWT " + signRS256(t, fx.key, "", installClaims()), reason: reasonMissingKID},
		{name: "kid with path traversal", header: "JWT " + signRS256(t, fx.key, "../"+testKID, installClaims()), reason: reasonInvalidKID},
		{name: "kid with slash", header: "JWT " + signRS256(t, fx.key, "a/b", installClaims()), reason: reasonInvalidKID},
		{name: "kid dot-dot", header: "JWT " + signRS256(t, fx.key, "..", installClaims()), reason: reasonInvalidKID},
		{name: "kid not a string", header: "JWT " + unsignedToken(t, map[string]any{"alg": "RS256", "kid": 7}, installClaims()), reason: reasonInvalidKID},
		{name: "unknown kid", header: "JWT " + signRS256(t, fx.key, "kid-404", installClaims()), reason: reasonUnknownKID},
		{name: "signed by another key", header: "JWT " + signRS256(t, other, testKID, installClaims()), reason: reasonSignature},
		{name: "wrong aud", header: "JWT " + signRS256(t, fx.key, testKID, with("aud", "https://evil.example")), reason: reasonAudience},
		{name: "no aud", header: "JWT " + signRS256(t, fx.key, testKID, with("aud", nil)), reason: reasonAudience},
		{name: "iss is another tenant", header: "JWT " + signRS256(t, fx.key, testKID, with("iss", "client-key-2")), reason: reasonIssuer},
		{name: "body has no clientKey", header: "JWT " + signRS256(t, fx.key, testKID, installClaims()), bodyClient: "-", reason: reasonIssuer},
		{name: "qsh of uninstalled", header: "JWT " + signRS256(t, fx.key, testKID, with("qsh", QSH("POST", &url.URL{Path: PathUninstalled}, ""))), reason: reasonQSH},
		{name: "context qsh", header: "JWT " + signRS256(t, fx.key, testKID, with("qsh", ContextQSH)), reason: reasonQSH},
		{name: "missing qsh", header: "JWT " + signRS256(t, fx.key, testKID, with("qsh", nil)), reason: reasonMissingQSH},
		{name: "wrong method", header: "JWT " + signRS256(t, fx.key, testKID, with("qsh", QSH("GET", &url.URL{Path: PathInstalled}, ""))), reason: reasonQSH},
		{name: "expired beyond leeway", header: "JWT " + signRS256(t, fx.key, testKID, with("exp", testNow.Add(-31*time.Second).Unix())), reason: reasonExpired},
		{name: "missing exp", header: "JWT " + signRS256(t, fx.key, testKID, with("exp", nil)), reason: reasonMissingExp},
		{name: "exp not a number", header: "JWT " + signRS256(t, fx.key, testKID, with("exp", "soon")), reason: reasonMalformed},
		{name: "iat in future", header: "JWT " + signRS256(t, fx.key, testKID, with("iat", testNow.Add(time.Minute).Unix())), reason: reasonIssuedInFuture},
		{name: "missing iat", header: "JWT " + signRS256(t, fx.key, testKID, with("iat", nil)), reason: reasonMissingIat},
		{name: "lifetime over an hour", header: "JWT " + signRS256(t, fx.key, testKID, with("exp", testNow.Add(2*time.Hour).Unix())), reason: reasonLifetime},
		{name: "nbf in future", header: "JWT " + signRS256(t, fx.key, testKID, with("nbf", testNow.Add(time.Minute).Unix())), reason: reasonNotYetValid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := testClientKey
			switch tt.bodyClient {
			case "-":
				body = ""
			case "":
			default:
				body = tt.bodyClient
			}
			got, err := fx.v.Verify(context.Background(), tt.header, "POST", mustURL(t, installedURL), body)
			wantReason(t, err, tt.reason)
			if err == nil && got.ClientKey != testClientKey {
				t.Errorf("got clientKey %q, want %q", got.ClientKey, testClientKey)
			}
		})
	}
}

func TestInstallVerifierClaims(t *testing.T) {
	fx := newInstallFixture(t)
	token := signRS256(t, fx.key, testKID, installClaims())
	got, err := fx.v.Verify(context.Background(), "JWT "+token, "POST", mustURL(t, testAudience+PathInstalled), testClientKey)
	if err != nil {
		t.Fatalf("verify: %v", err)
	}
	want := InstallClaims{
		ClientKey: testClientKey,
		Subject:   "557058:atlassian",
		KeyID:     testKID,
		Audience:  []string{testAudience},
		IssuedAt:  testNow.Add(-5 * time.Second),
		ExpiresAt: testNow.Add(3 * time.Minute),
	}
	if diff := cmp.Diff(want, got, cmp.Comparer(func(a, b time.Time) bool { return a.Equal(b) })); diff != "" {
		t.Errorf("claims (-want +got):\n%s", diff)
	}
}

// Behind a path prefix, aud is the full base URL and qsh leaves the prefix out.
func TestInstallVerifierBasePath(t *testing.T) {
	fx := newInstallFixture(t)
	fx.v.Audience = "https://apps.example.com/sb/"
	fx.v.BasePath = "/sb"
	c := installClaims()
	c["aud"] = "https://apps.example.com/sb"
	token := signRS256(t, fx.key, testKID, c)
	_, err := fx.v.Verify(context.Background(), "JWT "+token, "POST", mustURL(t, "https://apps.example.com/sb"+PathInstalled), testClientKey)
	wantReason(t, err, "")
}

func TestInstallVerifierCachesKeys(t *testing.T) {
	fx := newInstallFixture(t)
	u := mustURL(t, testAudience+PathInstalled)
	for i := range 3 {
		token := signRS256(t, fx.key, testKID, installClaims())
		if _, err := fx.v.Verify(context.Background(), "JWT "+token, "POST", u, testClientKey); err != nil {
			t.Fatalf("verify %d: %v", i, err)
		}
	}
	if got := fx.keys.hits.Load(); got != 1 {
		t.Errorf("got %d key server hits, want 1", got)
	}
}

// Tokens refused on their claims must not cost a request to Atlassian.
func TestInstallVerifierChecksClaimsBeforeFetching(t *testing.T) {
	fx := newInstallFixture(t)
	c := installClaims()
	c["aud"] = "https://evil.example"
	token := signRS256(t, fx.key, testKID, c)
	_, err := fx.v.Verify(context.Background(), "JWT "+token, "POST", mustURL(t, testAudience+PathInstalled), testClientKey)
	wantReason(t, err, reasonAudience)
	if got := fx.keys.hits.Load(); got != 0 {
		t.Errorf("got %d key server hits, want 0", got)
	}
}

func TestInstallVerifierKeyServerDown(t *testing.T) {
	fx := newInstallFixture(t)
	fx.keys.Close()
	token := signRS256(t, fx.key, testKID, installClaims())
	_, err := fx.v.Verify(context.Background(), "JWT "+token, "POST", mustURL(t, testAudience+PathInstalled), testClientKey)
	if !errors.Is(err, ErrKeyUnavailable) {
		t.Fatalf("got %v, want ErrKeyUnavailable", err)
	}
	if errors.Is(err, ErrInvalidToken) {
		t.Errorf("got %v, which is also ErrInvalidToken; Atlassian would not retry", err)
	}
}

func TestKeyFetcherStatus(t *testing.T) {
	key := newRSAKey(t, 2048)
	der := x509.MarshalPKCS1PublicKey(&key.PublicKey)
	pkcs1 := pem.EncodeToMemory(&pem.Block{Type: "RSA PUBLIC KEY", Bytes: der})
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	small := newRSAKey(t, 1024)

	tests := []struct {
		name        string
		status      int
		body        []byte
		unavailable bool
		reason      string
	}{
		{name: "PKIX PEM", status: 200, body: pkixPEM(t, &key.PublicKey)},
		{name: "PKCS1 PEM", status: 200, body: pkcs1},
		{name: "not PEM", status: 200, body: []byte("hello"), reason: reasonUnusableKey},
		{name: "certificate PEM type", status: 200, body: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), reason: reasonUnusableKey},
		{name: "EC key", status: 200, body: pkixPEM(t, &ec.PublicKey), reason: reasonUnusableKey},
		{name: "1024-bit key", status: 200, body: pkixPEM(t, &small.PublicKey), reason: reasonUnusableKey},
		{name: "too large", status: 200, body: make([]byte, maxKeyBytes+1), reason: reasonUnusableKey},
		{name: "404", status: 404, reason: reasonUnknownKID},
		{name: "403 from the CDN", status: 403, reason: reasonUnknownKID},
		{name: "500", status: 500, unavailable: true},
		{name: "503", status: 503, unavailable: true},
		{name: "429", status: 429, unavailable: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path != "/keys/"+testKID {
					t.Errorf("got path %q, want /keys/%s", r.URL.Path, testKID)
				}
				w.WriteHeader(tt.status)
				_, _ = w.Write(tt.body)
			}))
			t.Cleanup(srv.Close)
			f := NewKeyFetcher(mustURL(t, srv.URL+"/keys/"), srv.Client(), time.Second)
			got, err := f.Key(context.Background(), testKID)
			switch {
			case tt.unavailable:
				if !errors.Is(err, ErrKeyUnavailable) || errors.Is(err, ErrInvalidToken) {
					t.Fatalf("got %v, want only ErrKeyUnavailable", err)
				}
			default:
				wantReason(t, err, tt.reason)
				if err == nil && got.N.Cmp(key.N) != 0 {
					t.Errorf("got a different key")
				}
			}
		})
	}
}

func TestKeyFetcherTimeout(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) })
	f := NewKeyFetcher(mustURL(t, srv.URL), srv.Client(), 50*time.Millisecond)
	_, err := f.Key(context.Background(), testKID)
	if !errors.Is(err, ErrKeyUnavailable) {
		t.Fatalf("got %v, want ErrKeyUnavailable", err)
	}
}

// A caller that gives up gets an answer at once, and its cancellation does not spoil the
// shared fetch for the others.
func TestKeyFetcherCallerCancels(t *testing.T) {
	key := newRSAKey(t, 2048)
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-release
		_, _ = w.Write(pkixPEM(t, &key.PublicKey))
	}))
	t.Cleanup(srv.Close)
	f := NewKeyFetcher(mustURL(t, srv.URL), srv.Client(), 5*time.Second)

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := f.Key(ctx, testKID); !errors.Is(err, ErrKeyUnavailable) || !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want ErrKeyUnavailable and context.Canceled", err)
	}
	close(release)
	if _, err := f.Key(context.Background(), testKID); err != nil {
		t.Fatalf("second caller: %v", err)
	}
}

func TestKeyFetcherCoalescesConcurrentFetches(t *testing.T) {
	key := newRSAKey(t, 2048)
	var hits sync.WaitGroup
	hits.Add(1)
	release := make(chan struct{})
	var count int64
	var mu sync.Mutex
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		count++
		first := count == 1
		mu.Unlock()
		if first {
			hits.Done()
		}
		<-release
		_, _ = w.Write(pkixPEM(t, &key.PublicKey))
	}))
	t.Cleanup(srv.Close)
	f := NewKeyFetcher(mustURL(t, srv.URL), srv.Client(), 5*time.Second)

	const callers = 20
	errs := make(chan error, callers)
	for range callers {
		go func() {
			_, err := f.Key(context.Background(), testKID)
			errs <- err
		}()
	}
	hits.Wait()
	// Every caller has either joined the fetch in flight or will find the cache.
	close(release)
	for range callers {
		if err := <-errs; err != nil {
			t.Errorf("Key: %v", err)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if count != 1 {
		t.Errorf("got %d fetches, want 1", count)
	}
}

func TestKeyFetcherCacheIsBounded(t *testing.T) {
	key := newRSAKey(t, 2048)
	pems := map[string][]byte{}
	for i := range maxCachedKeys + 1 {
		pems["k"+strconv.Itoa(i)] = pkixPEM(t, &key.PublicKey)
	}
	ks := newKeyServer(t, pems)
	f := NewKeyFetcher(ks.baseURL(t), ks.Client(), time.Second)
	f.fetchLimit = 2 * maxCachedKeys // this test is about the cache, not the rate limit
	for i := range maxCachedKeys + 1 {
		if _, err := f.Key(context.Background(), "k"+strconv.Itoa(i)); err != nil {
			t.Fatalf("Key k%d: %v", i, err)
		}
	}
	f.mu.Lock()
	n := len(f.cache)
	f.mu.Unlock()
	if n != maxCachedKeys {
		t.Errorf("got %d cached keys, want %d", n, maxCachedKeys)
	}
	// The oldest went first, the newest is still there.
	before := ks.hits.Load()
	if _, err := f.Key(context.Background(), "k"+strconv.Itoa(maxCachedKeys)); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Key(context.Background(), "k0"); err != nil {
		t.Fatal(err)
	}
	if got := ks.hits.Load() - before; got != 1 {
		t.Errorf("got %d fetches, want 1 (k0 only)", got)
	}
}

func TestKeyFetcherFailuresNotCached(t *testing.T) {
	key := newRSAKey(t, 2048)
	var mu sync.Mutex
	status := http.StatusServiceUnavailable
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		s := status
		mu.Unlock()
		w.WriteHeader(s)
		if s == http.StatusOK {
			_, _ = w.Write(pkixPEM(t, &key.PublicKey))
		}
	}))
	t.Cleanup(srv.Close)
	f := NewKeyFetcher(mustURL(t, srv.URL), srv.Client(), time.Second)
	if _, err := f.Key(context.Background(), testKID); !errors.Is(err, ErrKeyUnavailable) {
		t.Fatalf("got %v, want ErrKeyUnavailable", err)
	}
	mu.Lock()
	status = http.StatusOK
	mu.Unlock()
	if _, err := f.Key(context.Background(), testKID); err != nil {
		t.Fatalf("after recovery: %v", err)
	}
}

func TestValidKID(t *testing.T) {
	long := make([]byte, 129)
	for i := range long {
		long[i] = 'a'
	}
	tests := []struct {
		kid  string
		want bool
	}{
		{"kid-1", true},
		{"0e50fccb239d5adb1e0e2e7a2c5a5e4b", true},
		{"a.b_c-D", true},
		{string(long[:128]), true},
		{string(long), false},
		{"", false},
		{".", false},
		{"..", false},
		{"../x", false},
		{"a/b", false},
		{"a%2Fb", false},
		{"a b", false},
		{"a?b", false},
		{"a#b", false},
		{"é", false},
	}
	for _, tt := range tests {
		if got := validKID(tt.kid); got != tt.want {
			t.Errorf("validKID(%q): got %v, want %v", tt.kid, got, tt.want)
		}
	}
}

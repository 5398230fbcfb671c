package connect

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// testNow is the fixed clock of every verifier under test.
var testNow = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func fixedNow() time.Time { return testNow }

func newRSAKey(t testing.TB, bits int) *rsa.PrivateKey {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, bits)
	if err != nil {
		t.Fatalf("generate RSA key: %v", err)
	}
	return k
}

func pkixPEM(t testing.TB, pub any) []byte {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatalf("marshal public key: %v", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

func mustURL(t testing.TB, raw string) *url.URL {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatalf("parse %q: %v", raw, err)
	}
	return u
}

// keyServer is a stand-in for connect-install-keys.atlassian.com: GET /<kid> answers the PEM
// registered for kid, 404 otherwise. hits counts every request.
type keyServer struct {
	*httptest.Server
	hits atomic.Int64
}

func newKeyServer(t testing.TB, pems map[string][]byte) *keyServer {
	t.Helper()
	ks := &keyServer{}
	ks.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ks.hits.Add(1)
		b, ok := pems[strings.TrimPrefix(r.URL.Path, "/")]
		if r.Method != http.MethodGet || !ok {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/x-pem-file")
		_, _ = w.Write(b)
	}))
	t.Cleanup(ks.Close)
	return ks
}

func (ks *keyServer) baseURL(t testing.TB) *url.URL {
	t.Helper()
	return mustURL(t, ks.URL)
}

func signRS256(t testing.TB, key *rsa.PrivateKey, kid string, c jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(jwt.SigningMethodRS256, c)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatalf("sign RS256: %v", err)
	}
	return s
}

func signHS256(t testing.TB, secret []byte, header map[string]any, c jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(jwt.SigningMethodHS256, c)
	for k, v := range header {
		tok.Header[k] = v
	}
	s, err := tok.SignedString(secret)
	if err != nil {
		t.Fatalf("sign HS256: %v", err)
	}
	return s
}

// unsignedToken builds a token with any header, the way an attacker would (alg "none").
func unsignedToken(t testing.TB, header map[string]any, c jwt.MapClaims) string {
	t.Helper()
	enc := func(v any) string {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatalf("marshal: %v", err)
		}
		return base64.RawURLEncoding.EncodeToString(b)
	}
	return enc(header) + "." + enc(c) + "."
}

// wantReason fails unless err is a *TokenError with reason (or err is nil when reason is "").
func wantReason(t testing.TB, err error, reason string) {
	t.Helper()
	if reason == "" {
		if err != nil {
			t.Fatalf("got error %v, want none", err)
		}
		return
	}
	var te *TokenError
	if !errors.As(err, &te) {
		t.Fatalf("got error %v, want TokenError %q", err, reason)
	}
	if te.Reason != reason {
		t.Fatalf("got reason %q, want %q", te.Reason, reason)
	}
	if !errors.Is(err, ErrInvalidToken) {
		t.Fatalf("got %v, which is not ErrInvalidToken", err)
	}
}

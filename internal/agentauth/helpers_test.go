package agentauth

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"
)

// testNow is the fixed clock of OIDC tests, so expiry checks do not depend on when they run.
var testNow = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

const (
	testIssuer   = "https://idp.example.test/realms/support"
	testAudience = "supportbridge"
	rsaKID       = "rsa-1"
	ecKID        = "ec-1"
)

func hashHex(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// writeFile writes v (a string, or anything else as JSON) to a file in a fresh temp dir.
func writeFile(t testing.TB, path string, v any) string {
	t.Helper()
	if path == "" {
		path = filepath.Join(t.TempDir(), "agents.json")
	}
	var b []byte
	switch x := v.(type) {
	case string:
		b = []byte(x)
	default:
		var err error
		if b, err = json.Marshal(v); err != nil {
			t.Fatal(err)
		}
	}
	// Write and rename, as an operator's editor or a Kubernetes secret update would, so a
	// concurrent reader never sees half a file.
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
	return path
}

// entry builds one tokens-file element for token.
func entry(name, email, role, token string) map[string]string {
	return map[string]string{"name": name, "email": email, "role": role, "tokenSha256": hashHex(token)}
}

// idp is a local identity provider: an RSA and a P-256 key served as a JWKS over real HTTP.
type idp struct {
	rsa     *rsa.PrivateKey
	ec      *ecdsa.PrivateKey
	srv     *httptest.Server
	fetches atomic.Int64
	down    atomic.Bool

	mu   sync.Mutex
	jwks []byte
}

// rsaKeyOnce shares one RSA key across tests: generating 2048-bit keys is the slow part.
var rsaKeyOnce = sync.OnceValue(func() *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return k
})

func newIDP(t testing.TB) *idp {
	t.Helper()
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	p := &idp{rsa: rsaKeyOnce(), ec: ec}
	p.setKeys(t, map[string]any{rsaKID: &p.rsa.PublicKey, ecKID: &p.ec.PublicKey})
	p.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.fetches.Add(1)
		if p.down.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		p.mu.Lock()
		b := p.jwks
		p.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.Write(b)
	}))
	t.Cleanup(p.srv.Close)
	return p
}

// setKeys replaces the published JWKS.
func (p *idp) setKeys(t testing.TB, keys map[string]any) {
	t.Helper()
	set := jwk.NewSet()
	for kid, pub := range keys {
		k, err := jwk.Import(pub)
		if err != nil {
			t.Fatal(err)
		}
		k.Set(jwk.KeyIDKey, kid)
		k.Set(jwk.KeyUsageKey, "sig")
		switch pub.(type) {
		case *rsa.PublicKey:
			k.Set(jwk.AlgorithmKey, jwa.RS256())
		case *ecdsa.PublicKey:
			k.Set(jwk.AlgorithmKey, jwa.ES256())
		}
		set.AddKey(k)
	}
	b, err := json.Marshal(set)
	if err != nil {
		t.Fatal(err)
	}
	p.mu.Lock()
	p.jwks = b
	p.mu.Unlock()
}

func (p *idp) options() *OIDCOptions {
	return &OIDCOptions{
		Issuer: testIssuer, Audience: testAudience, JWKSURL: p.srv.URL,
		HTTPClient: p.srv.Client(), Now: func() time.Time { return testNow },
	}
}

func (p *idp) authenticator(t testing.TB, tokensFile string) *Authenticator {
	t.Helper()
	a, err := New(Options{TokensFile: tokensFile, OIDC: p.options()})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// claims are valid claims of an agent; tests change what they exercise.
func claims() jwt.MapClaims {
	return jwt.MapClaims{
		"iss": testIssuer, "aud": testAudience, "sub": "u-123",
		"exp": testNow.Add(5 * time.Minute).Unix(), "iat": testNow.Add(-time.Minute).Unix(),
		"name": "Ada Agent", "email": "ada@vendor.example", DefaultRoleClaim: "agent",
	}
}

// sign signs c with the key matching method ("RS256" or "ES256") under kid.
func (p *idp) sign(t testing.TB, method, kid string, c jwt.MapClaims) string {
	t.Helper()
	var (
		m   jwt.SigningMethod
		key any
	)
	switch method {
	case "RS256":
		m, key = jwt.SigningMethodRS256, p.rsa
	case "ES256":
		m, key = jwt.SigningMethodES256, p.ec
	default:
		t.Fatalf("sign: unsupported method %s", method)
	}
	tok := jwt.NewWithClaims(m, c)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

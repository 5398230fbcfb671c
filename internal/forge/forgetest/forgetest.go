// Package forgetest stands in for Atlassian's side of Forge Remote in tests: a JWKS server
// over real HTTP and an issuer of Forge Invocation Tokens, valid or tampered, so that the real
// forge.Verifier is exercised end to end. It is not a _test file so that tests of other
// packages (httpapi, report) can sign FITs too.
package forgetest

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/supportbridge/supportbridge/internal/forge"
)

// Defaults used by Sign for every claim a test leaves empty. They look like real Forge values
// so that code downstream (tenant lookup, log paths) sees realistic shapes.
const (
	AppID           = "ari:cloud:ecosystem::app/6f1c8e5a-3b2d-4c1e-9a7f-2d4b6c8e0a1f"
	CloudID         = "4869c4ef-cb0d-4108-8243-8929ac7cc1fa"
	InstallationID  = "ari:cloud:ecosystem::installation/8d5f651a-b2e9-4b38-aac6-30abc7f3effb"
	EnvironmentID   = "ari:cloud:ecosystem::environment/6f1c8e5a-3b2d-4c1e-9a7f-2d4b6c8e0a1f/e62535ae-72f9-49da-a8d3-c0b82cab4ca1"
	EnvironmentType = "DEVELOPMENT"
	ModuleKey       = "supportbridge-report"
	ModuleType      = "jira:issuePanel"
	SiteURL         = "https://example.atlassian.net"
)

// Claims describes the FIT to sign. Zero fields take the defaults above; Principal stays
// empty unless set, which makes a system invocation (events, scheduled triggers).
type Claims struct {
	AppID           string // aud and app.id
	InstallationID  string
	CloudID         string // context.cloudId and the tail of the API base URL
	SiteURL         string
	Principal       string // account id of the acting user
	EnvironmentType string
	EnvironmentID   string
	ModuleKey       string
	ModuleType      string
	APIBaseURL      string        // default https://api.atlassian.com/ex/jira/<CloudID>
	TokenID         string        // jti; default random
	IssuedAt        time.Time     // iat and nbf; default the issuer's Now
	Lifetime        time.Duration // exp - iat; default 5 minutes
}

// SignOptions tampers with a token, for tests of what the verifier must refuse.
type SignOptions struct {
	// Alg is the header alg and the signing method: RS256 (default), HS256 (keyed with
	// HMACKey), none, ES256, EdDSA, PS256, ... An alg unknown to golang-jwt gets a junk signature.
	Alg string
	// KeyID is the header kid; default the current key's. The token is still signed with the
	// current key, so an unknown kid here is a token for a key the JWKS does not have.
	KeyID string
	// OmitKeyID leaves kid out of the header.
	OmitKeyID bool
	// HMACKey keys HS* algorithms; default the current public key in PEM, which is the
	// algorithm-confusion attack on verifiers that pass the RSA key to HMAC.
	HMACKey []byte
	// Mutate edits the header and payload just before signing; delete a key to drop a claim.
	Mutate func(header, payload map[string]any)
	// CorruptSignature flips a bit of the signature after signing.
	CorruptSignature bool
}

type signingKey struct {
	kid  string
	priv *rsa.PrivateKey
}

// Issuer signs FITs and serves its public keys as a JWKS over httptest.
type Issuer struct {
	// Now stamps iat, nbf and exp. Set it before use to the clock injected into the verifier
	// under test; the default is time.Now.
	Now func() time.Time

	t      testing.TB
	server *httptest.Server

	mu      sync.Mutex
	keys    []signingKey // all published; the last one signs
	down    bool
	latency time.Duration
	hits    int
}

// NewIssuer starts a JWKS server with one RSA key; it stops when the test ends.
func NewIssuer(t testing.TB) *Issuer {
	t.Helper()
	i := &Issuer{Now: time.Now, t: t}
	i.Rotate()
	i.server = httptest.NewServer(http.HandlerFunc(i.serveJWKS))
	t.Cleanup(i.server.Close)
	return i
}

// JWKSURL is the address of the JWKS.
func (i *Issuer) JWKSURL() string { return i.server.URL + "/.well-known/jwks.json" }

// KeyID is the kid of the key that signs now.
func (i *Issuer) KeyID() string {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.keys[len(i.keys)-1].kid
}

// Rotate publishes a new key, which signs from now on; older keys stay published, as during a
// real rotation. It returns the new kid.
func (i *Issuer) Rotate() string {
	i.t.Helper()
	priv, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		i.t.Fatalf("generate rsa key: %v", err)
	}
	i.mu.Lock()
	defer i.mu.Unlock()
	// Kids repeat across issuers on purpose: a second issuer is then an attacker signing
	// under a kid the verifier knows, which is the interesting case.
	kid := fmt.Sprintf("forgetest-%d", len(i.keys)+1)
	i.keys = append(i.keys, signingKey{kid: kid, priv: priv})
	return kid
}

// Retire stops publishing the key kid, as Atlassian does once a rotation is over.
func (i *Issuer) Retire(kid string) {
	i.mu.Lock()
	defer i.mu.Unlock()
	for n, k := range i.keys {
		if k.kid == kid && n < len(i.keys)-1 {
			i.keys = append(i.keys[:n], i.keys[n+1:]...)
			return
		}
	}
	i.t.Fatalf("retire %q: not a published key other than the current one", kid)
}

// Requests counts JWKS requests, so tests can prove the verifier's rate limit.
func (i *Issuer) Requests() int {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.hits
}

// SetDown makes the JWKS answer 503 (true) or serve keys again (false).
func (i *Issuer) SetDown(down bool) {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.down = down
}

// SetLatency delays every JWKS response, so concurrent verifiers overlap with the fetch.
func (i *Issuer) SetLatency(d time.Duration) {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.latency = d
}

// PublicKeyPEM is the current public key as PKIX PEM, the bytes an attacker would use as an
// HMAC secret.
func (i *Issuer) PublicKeyPEM() []byte {
	i.t.Helper()
	i.mu.Lock()
	pub := &i.keys[len(i.keys)-1].priv.PublicKey
	i.mu.Unlock()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		i.t.Fatalf("marshal public key: %v", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

// Verifier returns a forge.Verifier for this issuer: JWKSURL and AppID are filled in when
// opts leaves them empty.
func (i *Issuer) Verifier(opts forge.Options) *forge.Verifier {
	i.t.Helper()
	if opts.JWKSURL == "" {
		opts.JWKSURL = i.JWKSURL()
	}
	if opts.AppID == "" {
		opts.AppID = AppID
	}
	v, err := forge.NewVerifier(opts)
	if err != nil {
		i.t.Fatalf("new verifier: %v", err)
	}
	return v
}

// Sign returns a valid FIT for c.
func (i *Issuer) Sign(c Claims) string { return i.SignWith(c, SignOptions{}) }

// SignWith returns a FIT for c, tampered with as o says.
func (i *Issuer) SignWith(c Claims, o SignOptions) string {
	i.t.Helper()
	header, payload := i.build(c, o)
	if o.Mutate != nil {
		o.Mutate(header, payload)
	}
	return i.encode(header, payload, o)
}

// SignPayload signs arbitrary payload bytes with RS256 and the current key, for fuzzing the
// claim checks that only run once the signature holds. It returns an error instead of failing
// the issuer's test because a fuzz target may not fail through its *testing.F.
func (i *Issuer) SignPayload(payload []byte) (string, error) {
	h, err := json.Marshal(map[string]any{"alg": "RS256", "typ": "JWT", "kid": i.KeyID()})
	if err != nil {
		return "", err
	}
	signing := b64(h) + "." + b64(payload)
	sig, err := i.sign(signing, "RS256", nil)
	if err != nil {
		return "", err
	}
	return signing + "." + b64(sig), nil
}

func (i *Issuer) build(c Claims, o SignOptions) (header, payload map[string]any) {
	def := func(v *string, d string) {
		if *v == "" {
			*v = d
		}
	}
	def(&c.AppID, AppID)
	def(&c.InstallationID, InstallationID)
	def(&c.CloudID, CloudID)
	def(&c.SiteURL, SiteURL)
	def(&c.EnvironmentType, EnvironmentType)
	def(&c.EnvironmentID, EnvironmentID)
	def(&c.ModuleKey, ModuleKey)
	def(&c.ModuleType, ModuleType)
	def(&c.APIBaseURL, "https://api.atlassian.com/ex/jira/"+c.CloudID)
	def(&c.TokenID, randomHex(16))
	if c.IssuedAt.IsZero() {
		c.IssuedAt = i.Now()
	}
	if c.Lifetime == 0 {
		c.Lifetime = 5 * time.Minute
	}

	header = map[string]any{"alg": "RS256", "typ": "JWT", "kid": i.KeyID()}
	if o.Alg != "" {
		header["alg"] = o.Alg
	}
	if o.KeyID != "" {
		header["kid"] = o.KeyID
	}
	if o.OmitKeyID {
		delete(header, "kid")
	}
	payload = map[string]any{
		"iss": forge.Issuer,
		"aud": c.AppID,
		"iat": c.IssuedAt.Unix(),
		"nbf": c.IssuedAt.Unix(),
		"exp": c.IssuedAt.Add(c.Lifetime).Unix(),
		"jti": c.TokenID,
		"app": map[string]any{
			"id":             c.AppID,
			"installationId": c.InstallationID,
			"apiBaseUrl":     c.APIBaseURL,
			"environment":    map[string]any{"type": c.EnvironmentType, "id": c.EnvironmentID},
			"module":         map[string]any{"type": c.ModuleType, "key": c.ModuleKey},
		},
		"context": map[string]any{"cloudId": c.CloudID, "moduleKey": c.ModuleKey, "siteUrl": c.SiteURL},
	}
	if c.Principal != "" {
		payload["principal"] = c.Principal
	}
	return header, payload
}

func (i *Issuer) encode(header, payload map[string]any, o SignOptions) string {
	h, err := json.Marshal(header)
	if err != nil {
		i.t.Fatalf("marshal header: %v", err)
	}
	p, err := json.Marshal(payload)
	if err != nil {
		i.t.Fatalf("marshal payload: %v", err)
	}
	signing := b64(h) + "." + b64(p)
	alg, _ := header["alg"].(string)
	hmacKey := o.HMACKey
	if hmacKey == nil && strings.HasPrefix(alg, "HS") {
		hmacKey = i.PublicKeyPEM()
	}
	sig, err := i.sign(signing, alg, hmacKey)
	if err != nil {
		i.t.Fatalf("sign %s: %v", alg, err)
	}
	if o.CorruptSignature && len(sig) > 0 {
		sig[len(sig)/2] ^= 0x01
	}
	return signing + "." + b64(sig)
}

// sign signs with the key family the alg calls for; ES* and EdDSA get a fresh key, since
// no verifier of ours should ever accept them.
func (i *Issuer) sign(signing, alg string, hmacKey []byte) ([]byte, error) {
	method := jwt.GetSigningMethod(alg)
	if method == nil {
		return []byte("not-a-signature"), nil
	}
	var key any
	switch {
	case alg == "none":
		key = jwt.UnsafeAllowNoneSignatureType
	case strings.HasPrefix(alg, "HS"):
		key = hmacKey
	case strings.HasPrefix(alg, "ES"):
		curve := map[string]elliptic.Curve{"ES256": elliptic.P256(), "ES384": elliptic.P384(), "ES512": elliptic.P521()}[alg]
		k, err := ecdsa.GenerateKey(curve, rand.Reader)
		if err != nil {
			return nil, err
		}
		key = k
	case alg == "EdDSA":
		_, k, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return nil, err
		}
		key = k
	default: // RS*, PS*
		i.mu.Lock()
		key = i.keys[len(i.keys)-1].priv
		i.mu.Unlock()
	}
	return method.Sign(signing, key)
}

// serveJWKS writes the published keys the way Atlassian's JWKS does (RFC 7517).
func (i *Issuer) serveJWKS(w http.ResponseWriter, r *http.Request) {
	i.mu.Lock()
	i.hits++
	down, latency := i.down, i.latency
	type jwkJSON struct {
		Kty string `json:"kty"`
		Kid string `json:"kid"`
		Use string `json:"use"`
		Alg string `json:"alg"`
		N   string `json:"n"`
		E   string `json:"e"`
	}
	var set struct {
		Keys []jwkJSON `json:"keys"`
	}
	for _, k := range i.keys {
		pub := k.priv.PublicKey
		set.Keys = append(set.Keys, jwkJSON{
			Kty: "RSA", Kid: k.kid, Use: "sig", Alg: "RS256",
			N: b64(pub.N.Bytes()), E: b64(big.NewInt(int64(pub.E)).Bytes()),
		})
	}
	i.mu.Unlock()

	if latency > 0 {
		select {
		case <-time.After(latency):
		case <-r.Context().Done():
			return
		}
	}
	if down {
		http.Error(w, "unavailable", http.StatusServiceUnavailable)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(set)
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

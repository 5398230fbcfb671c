package agentauth

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/go-cmp/cmp"
)

func TestOIDCAccepts(t *testing.T) {
	p := newIDP(t)
	a := p.authenticator(t, "")
	tests := []struct {
		name   string
		method string
		kid    string
		edit   func(jwt.MapClaims)
		want   Agent
	}{
		{"RS256", "RS256", rsaKID, nil, Agent{Name: "Ada Agent", Email: "ada@vendor.example", Role: RoleAgent, Subject: "oidc:" + testIssuer + "|u-123"}},
		{"ES256", "ES256", ecKID, nil, Agent{Name: "Ada Agent", Email: "ada@vendor.example", Role: RoleAgent, Subject: "oidc:" + testIssuer + "|u-123"}},
		{"admin role", "RS256", rsaKID, func(c jwt.MapClaims) { c[DefaultRoleClaim] = "admin" },
			Agent{Name: "Ada Agent", Email: "ada@vendor.example", Role: RoleAdmin, Subject: "oidc:" + testIssuer + "|u-123"}},
		{"role array with agent", "RS256", rsaKID, func(c jwt.MapClaims) { c[DefaultRoleClaim] = []any{"viewer", "agent"} },
			Agent{Name: "Ada Agent", Email: "ada@vendor.example", Role: RoleAgent, Subject: "oidc:" + testIssuer + "|u-123"}},
		{"role array with both is admin", "RS256", rsaKID, func(c jwt.MapClaims) { c[DefaultRoleClaim] = []any{"agent", "admin"} },
			Agent{Name: "Ada Agent", Email: "ada@vendor.example", Role: RoleAdmin, Subject: "oidc:" + testIssuer + "|u-123"}},
		{"audience array", "ES256", ecKID, func(c jwt.MapClaims) { c["aud"] = []any{"other", testAudience} },
			Agent{Name: "Ada Agent", Email: "ada@vendor.example", Role: RoleAgent, Subject: "oidc:" + testIssuer + "|u-123"}},
		{"name from preferred_username", "RS256", rsaKID, func(c jwt.MapClaims) { delete(c, "name"); c["preferred_username"] = "ada.l" },
			Agent{Name: "ada.l", Email: "ada@vendor.example", Role: RoleAgent, Subject: "oidc:" + testIssuer + "|u-123"}},
		{"no name falls back to email", "RS256", rsaKID, func(c jwt.MapClaims) { delete(c, "name") },
			Agent{Name: "ada@vendor.example", Email: "ada@vendor.example", Role: RoleAgent, Subject: "oidc:" + testIssuer + "|u-123"}},
		{"expiry within leeway", "RS256", rsaKID, func(c jwt.MapClaims) { c["exp"] = testNow.Add(-10 * time.Second).Unix() },
			Agent{Name: "Ada Agent", Email: "ada@vendor.example", Role: RoleAgent, Subject: "oidc:" + testIssuer + "|u-123"}},
		{"iat slightly ahead", "RS256", rsaKID, func(c jwt.MapClaims) { c["iat"] = testNow.Add(10 * time.Second).Unix() },
			Agent{Name: "Ada Agent", Email: "ada@vendor.example", Role: RoleAgent, Subject: "oidc:" + testIssuer + "|u-123"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := claims()
			if tc.edit != nil {
				tc.edit(c)
			}
			got, err := a.Authenticate(context.Background(), "Bearer "+p.sign(t, tc.method, tc.kid, c))
			if err != nil {
				t.Fatalf("Authenticate: %v", err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("agent (-want +got):\n%s", diff)
			}
		})
	}
}

func TestOIDCRoleClaimPaths(t *testing.T) {
	p := newIDP(t)
	for _, tc := range []struct {
		claim string
		set   func(jwt.MapClaims)
	}{
		{"realm_access.roles", func(c jwt.MapClaims) { c["realm_access"] = map[string]any{"roles": []any{"offline", "admin"}} }},
		{"https://vendor.example/roles", func(c jwt.MapClaims) { c["https://vendor.example/roles"] = []any{"admin"} }},
	} {
		t.Run(tc.claim, func(t *testing.T) {
			opts := p.options()
			opts.RoleClaim = tc.claim
			a, err := New(Options{OIDC: opts})
			if err != nil {
				t.Fatal(err)
			}
			c := claims()
			delete(c, DefaultRoleClaim)
			tc.set(c)
			got, err := a.Authenticate(context.Background(), "Bearer "+p.sign(t, "RS256", rsaKID, c))
			if err != nil || got.Role != RoleAdmin {
				t.Fatalf("Authenticate = %+v, %v; want admin", got, err)
			}
		})
	}
}

func TestOIDCRejects(t *testing.T) {
	p := newIDP(t)
	a := p.authenticator(t, "")
	pubPEM := func() []byte {
		der, err := x509.MarshalPKIXPublicKey(&p.rsa.PublicKey)
		if err != nil {
			t.Fatal(err)
		}
		return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	}()
	signed := func(method, kid string, edit func(jwt.MapClaims)) func(t *testing.T) string {
		return func(t *testing.T) string {
			c := claims()
			if edit != nil {
				edit(c)
			}
			return p.sign(t, method, kid, c)
		}
	}
	other, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		token  func(t *testing.T) string
		kind   error
		reason string
	}{
		{"HS256 with the public key as secret", func(t *testing.T) string {
			tok := jwt.NewWithClaims(jwt.SigningMethodHS256, claims())
			tok.Header["kid"] = rsaKID
			s, err := tok.SignedString(pubPEM)
			if err != nil {
				t.Fatal(err)
			}
			return s
		}, ErrUnauthenticated, ReasonAlgorithm},
		{"alg none", func(t *testing.T) string {
			tok := jwt.NewWithClaims(jwt.SigningMethodNone, claims())
			tok.Header["kid"] = rsaKID
			s, err := tok.SignedString(jwt.UnsafeAllowNoneSignatureType)
			if err != nil {
				t.Fatal(err)
			}
			return s + "AAAA" // a bearer token needs a non-empty last segment to be JWT-shaped
		}, ErrUnauthenticated, ReasonAlgorithm},
		{"wrong issuer", signed("RS256", rsaKID, func(c jwt.MapClaims) { c["iss"] = "https://evil.example" }), ErrUnauthenticated, ReasonIssuer},
		{"no issuer", signed("RS256", rsaKID, func(c jwt.MapClaims) { delete(c, "iss") }), ErrUnauthenticated, ReasonIssuer},
		{"wrong audience", signed("ES256", ecKID, func(c jwt.MapClaims) { c["aud"] = "another-app" }), ErrUnauthenticated, ReasonAudience},
		{"no audience", signed("ES256", ecKID, func(c jwt.MapClaims) { delete(c, "aud") }), ErrUnauthenticated, ReasonAudience},
		{"expired", signed("RS256", rsaKID, func(c jwt.MapClaims) { c["exp"] = testNow.Add(-time.Minute).Unix() }), ErrUnauthenticated, ReasonExpired},
		{"no expiry", signed("RS256", rsaKID, func(c jwt.MapClaims) { delete(c, "exp") }), ErrUnauthenticated, ReasonNoExpiry},
		{"not yet valid", signed("RS256", rsaKID, func(c jwt.MapClaims) { c["nbf"] = testNow.Add(time.Minute).Unix() }), ErrUnauthenticated, ReasonNotYetValid},
		{"issued in the future", signed("RS256", rsaKID, func(c jwt.MapClaims) { c["iat"] = testNow.Add(time.Minute).Unix() }), ErrUnauthenticated, ReasonIssuedInFuture},
		{"exp of wrong type", signed("RS256", rsaKID, func(c jwt.MapClaims) { c["exp"] = "tomorrow" }), ErrUnauthenticated, ReasonInvalidClaimType},
		{"no subject", signed("RS256", rsaKID, func(c jwt.MapClaims) { delete(c, "sub") }), ErrUnauthenticated, ReasonNoSubject},
		{"name of wrong type", signed("RS256", rsaKID, func(c jwt.MapClaims) { c["name"] = 7 }), ErrUnauthenticated, ReasonInvalidClaimType},
		{"missing kid", signed("RS256", "", nil), ErrUnauthenticated, ReasonKeyIDMissing},
		{"unknown kid", signed("RS256", "rsa-unknown", nil), ErrUnauthenticated, ReasonUnknownKey},
		{"ES256 under the RSA kid", signed("ES256", rsaKID, nil), ErrUnauthenticated, ReasonAlgorithm},
		{"signed by another key", func(t *testing.T) string {
			tok := jwt.NewWithClaims(jwt.SigningMethodES256, claims())
			tok.Header["kid"] = ecKID
			s, err := tok.SignedString(other)
			if err != nil {
				t.Fatal(err)
			}
			return s
		}, ErrUnauthenticated, ReasonSignature},
		{"tampered payload", func(t *testing.T) string {
			parts := strings.Split(p.sign(t, "RS256", rsaKID, claims()), ".")
			c := claims()
			c[DefaultRoleClaim] = "admin"
			forged := strings.Split(p.sign(t, "RS256", rsaKID, c), ".")
			return parts[0] + "." + forged[1] + "." + parts[2]
		}, ErrUnauthenticated, ReasonSignature},
		{"crit header", func(t *testing.T) string {
			tok := jwt.NewWithClaims(jwt.SigningMethodRS256, claims())
			tok.Header["kid"] = rsaKID
			tok.Header["crit"] = []string{"exp"}
			s, err := tok.SignedString(p.rsa)
			if err != nil {
				t.Fatal(err)
			}
			return s
		}, ErrUnauthenticated, ReasonCritHeader},
		{"role missing", signed("RS256", rsaKID, func(c jwt.MapClaims) { delete(c, DefaultRoleClaim) }), ErrForbidden, ReasonNoRole},
		{"other role", signed("RS256", rsaKID, func(c jwt.MapClaims) { c[DefaultRoleClaim] = "superuser" }), ErrForbidden, ReasonNoRole},
		{"role array without ours", signed("RS256", rsaKID, func(c jwt.MapClaims) { c[DefaultRoleClaim] = []any{"viewer", "Admin"} }), ErrForbidden, ReasonNoRole},
		{"role of wrong type", signed("RS256", rsaKID, func(c jwt.MapClaims) { c[DefaultRoleClaim] = map[string]any{"admin": true} }), ErrForbidden, ReasonNoRole},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tok := tc.token(t)
			got, err := a.Authenticate(context.Background(), "Bearer "+tok)
			if err == nil {
				t.Fatalf("accepted: %+v", got)
			}
			checkRejected(t, err, tc.kind, tc.reason)
			if strings.Contains(err.Error(), tok) {
				t.Errorf("error quotes the token: %v", err)
			}
		})
	}
}

func TestOIDCKeyRefresh(t *testing.T) {
	p := newIDP(t)
	now := testNow
	opts := p.options()
	opts.Now = func() time.Time { return now }
	opts.MinRefreshInterval = time.Minute
	a, err := New(Options{OIDC: opts})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := a.Authenticate(ctx, "Bearer "+p.sign(t, "RS256", rsaKID, claims())); err != nil {
		t.Fatal(err)
	}
	if n := p.fetches.Load(); n != 1 {
		t.Fatalf("fetches after first use = %d, want 1", n)
	}

	// Made-up kids refresh at most once per interval.
	for range 5 {
		_, err := a.Authenticate(ctx, "Bearer "+p.sign(t, "RS256", "made-up", claims()))
		checkRejected(t, err, ErrUnauthenticated, ReasonUnknownKey)
	}
	if n := p.fetches.Load(); n != 1 {
		t.Fatalf("fetches after unknown kids inside the interval = %d, want 1", n)
	}

	// The provider rotates: a new kid is found by the refresh the unknown kid triggers.
	newKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	p.setKeys(t, map[string]any{"ec-2": &newKey.PublicKey})
	now = now.Add(2 * time.Minute)
	c := claims()
	c["exp"] = now.Add(5 * time.Minute).Unix()
	tok := jwt.NewWithClaims(jwt.SigningMethodES256, c)
	tok.Header["kid"] = "ec-2"
	s, err := tok.SignedString(newKey)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Authenticate(ctx, "Bearer "+s); err != nil {
		t.Fatalf("rotated key rejected: %v", err)
	}
	// The refresh dropped rsa-1, so its tokens no longer verify.
	_, err = a.Authenticate(ctx, "Bearer "+p.sign(t, "RS256", rsaKID, c))
	checkRejected(t, err, ErrUnauthenticated, ReasonUnknownKey)
}

func TestOIDCProviderDown(t *testing.T) {
	p := newIDP(t)
	a := p.authenticator(t, "")
	p.down.Store(true)
	_, err := a.Authenticate(context.Background(), "Bearer "+p.sign(t, "RS256", rsaKID, claims()))
	checkRejected(t, err, ErrUnavailable, ReasonKeysUnavailable)
}

func TestOIDCStaleKeysSurviveOutage(t *testing.T) {
	p := newIDP(t)
	now := testNow
	opts := p.options()
	opts.Now = func() time.Time { return now }
	opts.KeyMaxAge = time.Minute
	a, err := New(Options{OIDC: opts})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := a.Authenticate(ctx, "Bearer "+p.sign(t, "RS256", rsaKID, claims())); err != nil {
		t.Fatal(err)
	}
	p.down.Store(true)
	now = now.Add(2 * time.Minute) // keys are stale; the refresh fails
	c := claims()
	c["exp"] = now.Add(time.Minute).Unix()
	if _, err := a.Authenticate(ctx, "Bearer "+p.sign(t, "RS256", rsaKID, c)); err != nil {
		t.Fatalf("known key rejected during a provider outage: %v", err)
	}
}

func TestStaticThenOIDC(t *testing.T) {
	p := newIDP(t)
	path := writeFile(t, "", []any{entry("ada", "ada@vendor.example", "agent", adaToken)})
	a := p.authenticator(t, path)
	ctx := context.Background()
	if got, err := a.Authenticate(ctx, "Bearer "+adaToken); err != nil || got.Subject != "static:ada" {
		t.Errorf("static token: %+v, %v", got, err)
	}
	if got, err := a.Authenticate(ctx, "Bearer "+p.sign(t, "ES256", ecKID, claims())); err != nil || !strings.HasPrefix(got.Subject, "oidc:") {
		t.Errorf("OIDC token: %+v, %v", got, err)
	}
}

func TestNewRejectsBadOIDCOptions(t *testing.T) {
	_, err := New(Options{OIDC: &OIDCOptions{JWKSURL: "ftp://x"}})
	if err == nil {
		t.Fatal("New accepted OIDC options without issuer, audience or a usable JWKS URL")
	}
	for _, want := range []string{"issuer", "audience", "JWKS URL"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %s", err, want)
		}
	}
}

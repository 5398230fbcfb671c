package forge_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/supportbridge/supportbridge/internal/forge"
	"github.com/supportbridge/supportbridge/internal/forge/forgetest"
)

// clock is a settable time source shared by the issuer and the verifier under test.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 3, 14, 9, 26, 53, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// setup returns an issuer and a verifier that share a fake clock.
func setup(t *testing.T, opts forge.Options) (*forgetest.Issuer, *forge.Verifier, *clock) {
	t.Helper()
	clk := newClock()
	iss := forgetest.NewIssuer(t)
	iss.Now = clk.Now
	opts.Now = clk.Now
	return iss, iss.Verifier(opts), clk
}

// reason returns the InvalidTokenError reason of err, failing the test for any other error.
func reason(t *testing.T, err error) string {
	t.Helper()
	if err == nil {
		return ""
	}
	var ite *forge.InvalidTokenError
	if !errors.Is(err, forge.ErrInvalidToken) || !errors.As(err, &ite) {
		t.Fatalf("error %v: want an *InvalidTokenError matching ErrInvalidToken", err)
	}
	return ite.Reason
}

func TestVerifyAcceptsValidToken(t *testing.T) {
	iss, v, clk := setup(t, forge.Options{})
	tests := []struct {
		name   string
		claims forgetest.Claims
		mutate func(header, payload map[string]any)
		want   func(*forge.Invocation)
	}{
		{
			name:   "user invocation",
			claims: forgetest.Claims{Principal: "557058:6ea56496-8c9b-4e0a-bc03-7412dedb3304", TokenID: "jti-1"},
			want:   func(inv *forge.Invocation) { inv.Principal = "557058:6ea56496-8c9b-4e0a-bc03-7412dedb3304" },
		},
		{
			name:   "system invocation has no principal",
			claims: forgetest.Claims{TokenID: "jti-1"},
		},
		{
			name:   "principal as an object",
			claims: forgetest.Claims{TokenID: "jti-1"},
			mutate: func(_, p map[string]any) { p["principal"] = map[string]any{"accountId": "abc"} },
			want:   func(inv *forge.Invocation) { inv.Principal = "abc" },
		},
		{
			name:   "no context: cloud id from the api base url",
			claims: forgetest.Claims{TokenID: "jti-1"},
			mutate: func(_, p map[string]any) { delete(p, "context") },
			want:   func(inv *forge.Invocation) { inv.SiteURL = "" },
		},
		{
			name:   "aud as a list that contains the app",
			claims: forgetest.Claims{TokenID: "jti-1"},
			mutate: func(_, p map[string]any) { p["aud"] = []string{"ari:cloud:ecosystem::app/other", forgetest.AppID} },
		},
		{
			name:   "expired within the 10s leeway",
			claims: forgetest.Claims{TokenID: "jti-1", IssuedAt: clk.Now().Add(-5 * time.Minute).Add(-5 * time.Second)},
			want: func(inv *forge.Invocation) {
				inv.ExpiresAt = clk.Now().Add(-5 * time.Second)
			},
		},
		{
			name:   "nbf and iat ahead within the 10s leeway",
			claims: forgetest.Claims{TokenID: "jti-1", IssuedAt: clk.Now().Add(9 * time.Second)},
			want:   func(inv *forge.Invocation) { inv.ExpiresAt = clk.Now().Add(5*time.Minute + 9*time.Second) },
		},
		{
			name:   "unknown claims are ignored",
			claims: forgetest.Claims{TokenID: "jti-1"},
			mutate: func(_, p map[string]any) { p["license"] = map[string]any{"isActive": true}; p["icLabel"] = nil },
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			token := iss.SignWith(tt.claims, forgetest.SignOptions{Mutate: tt.mutate})
			got, err := v.Verify(context.Background(), token)
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			want := forge.Invocation{
				AppID:           forgetest.AppID,
				InstallationID:  forgetest.InstallationID,
				CloudID:         forgetest.CloudID,
				SiteURL:         forgetest.SiteURL,
				EnvironmentType: forgetest.EnvironmentType,
				EnvironmentID:   forgetest.EnvironmentID,
				ModuleKey:       forgetest.ModuleKey,
				ModuleType:      forgetest.ModuleType,
				APIBaseURL:      "https://api.atlassian.com/ex/jira/" + forgetest.CloudID,
				TokenID:         "jti-1",
				ExpiresAt:       clk.Now().Add(5 * time.Minute),
			}
			if tt.want != nil {
				tt.want(&want)
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("Verify mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestVerifyRejectsTamperedTokens(t *testing.T) {
	iss, _, clk := setup(t, forge.Options{})
	now := clk.Now()
	set := func(k string, v any) func(h, p map[string]any) { return func(_, p map[string]any) { p[k] = v } }
	del := func(k string) func(h, p map[string]any) { return func(_, p map[string]any) { delete(p, k) } }
	app := func(k string, v any) func(h, p map[string]any) {
		return func(_, p map[string]any) { p["app"].(map[string]any)[k] = v }
	}
	otherApp := "ari:cloud:ecosystem::app/00000000-0000-0000-0000-000000000bad"

	tests := []struct {
		name   string
		claims forgetest.Claims
		opts   forgetest.SignOptions
		raw    bool // use token as is instead of signing claims
		token  string
		want   string
	}{
		{name: "token of another app", claims: forgetest.Claims{AppID: otherApp}, want: forge.ReasonAudience},
		{name: "aud list without this app", opts: forgetest.SignOptions{Mutate: set("aud", []string{otherApp})}, want: forge.ReasonAudience},
		{name: "aud differs only in case", opts: forgetest.SignOptions{Mutate: set("aud", strings.ToUpper(forgetest.AppID))}, want: forge.ReasonAudience},
		{name: "aud with trailing space", opts: forgetest.SignOptions{Mutate: set("aud", forgetest.AppID+" ")}, want: forge.ReasonAudience},
		{name: "missing aud", opts: forgetest.SignOptions{Mutate: del("aud")}, want: forge.ReasonAudience},
		{name: "app.id of another app", opts: forgetest.SignOptions{Mutate: app("id", otherApp)}, want: forge.ReasonAppMismatch},
		{name: "wrong iss", opts: forgetest.SignOptions{Mutate: set("iss", "forge/other-token")}, want: forge.ReasonIssuer},
		{name: "missing iss", opts: forgetest.SignOptions{Mutate: del("iss")}, want: forge.ReasonIssuer},
		{name: "expired", claims: forgetest.Claims{IssuedAt: now.Add(-10 * time.Minute)}, want: forge.ReasonExpired},
		{name: "expired just past the leeway", claims: forgetest.Claims{IssuedAt: now.Add(-5*time.Minute - 11*time.Second)}, want: forge.ReasonExpired},
		{name: "missing exp", opts: forgetest.SignOptions{Mutate: del("exp")}, want: forge.ReasonNoExpiry},
		{name: "exp of the wrong type", opts: forgetest.SignOptions{Mutate: set("exp", "tomorrow")}, want: forge.ReasonMalformed},
		{name: "nbf in the future", opts: forgetest.SignOptions{Mutate: set("nbf", now.Add(time.Minute).Unix())}, want: forge.ReasonNotYetValid},
		{name: "iat in the future", opts: forgetest.SignOptions{Mutate: set("iat", now.Add(time.Minute).Unix())}, want: forge.ReasonIssuedInFuture},
		{name: "HS256 keyed with the public key (alg confusion)", opts: forgetest.SignOptions{Alg: "HS256"}, want: forge.ReasonAlgorithm},
		{name: "alg none", opts: forgetest.SignOptions{Alg: "none"}, want: forge.ReasonAlgorithm},
		{name: "alg None spelled oddly", opts: forgetest.SignOptions{Alg: "nOnE"}, want: forge.ReasonAlgorithm},
		{name: "ES256", opts: forgetest.SignOptions{Alg: "ES256"}, want: forge.ReasonAlgorithm},
		{name: "EdDSA", opts: forgetest.SignOptions{Alg: "EdDSA"}, want: forge.ReasonAlgorithm},
		{name: "PS256 with the right RSA key", opts: forgetest.SignOptions{Alg: "PS256"}, want: forge.ReasonAlgorithm},
		{name: "RS512 with the right RSA key", opts: forgetest.SignOptions{Alg: "RS512"}, want: forge.ReasonAlgorithm},
		{name: "alg missing", opts: forgetest.SignOptions{Mutate: func(h, _ map[string]any) { delete(h, "alg") }}, want: forge.ReasonAlgorithm},
		{name: "missing kid", opts: forgetest.SignOptions{OmitKeyID: true}, want: forge.ReasonKeyIDMissing},
		{name: "kid not a string", opts: forgetest.SignOptions{Mutate: func(h, _ map[string]any) { h["kid"] = 7 }}, want: forge.ReasonKeyIDMissing},
		{name: "unknown kid", opts: forgetest.SignOptions{KeyID: "not-in-the-jwks"}, want: forge.ReasonUnknownKey},
		{name: "bad signature", opts: forgetest.SignOptions{CorruptSignature: true}, want: forge.ReasonSignature},
		{name: "payload changed after signing", raw: true, token: swapPayload(t, iss), want: forge.ReasonSignature},
		{name: "signed by another key under our kid", raw: true, token: foreignToken(t, iss.KeyID()), want: forge.ReasonSignature},
		{name: "jku header pointing at the attacker is ignored", raw: true, token: foreignTokenWith(t, iss.KeyID(), "jku"), want: forge.ReasonSignature},
		{name: "crit header", opts: forgetest.SignOptions{Mutate: func(h, _ map[string]any) { h["crit"] = []string{"exp"} }}, want: forge.ReasonCritHeader},
		{name: "no installation id", opts: forgetest.SignOptions{Mutate: app("installationId", "")}, want: forge.ReasonNoInstallation},
		{name: "no site at all", opts: forgetest.SignOptions{Mutate: func(_, p map[string]any) {
			delete(p, "context")
			delete(p["app"].(map[string]any), "apiBaseUrl")
		}}, want: forge.ReasonNoSite},
		{name: "context and api base url name different sites", opts: forgetest.SignOptions{Mutate: app("apiBaseUrl", "https://api.atlassian.com/ex/jira/11111111-2222-3333-4444-555555555555")}, want: forge.ReasonSiteConflict},
		{name: "cloud id that is a path", claims: forgetest.Claims{CloudID: "../../etc"}, want: forge.ReasonBadSite},
		{name: "api base url over http", opts: forgetest.SignOptions{Mutate: app("apiBaseUrl", "http://api.atlassian.com/ex/jira/"+forgetest.CloudID)}, want: forge.ReasonBadAPIBaseURL},
		{name: "principal of the wrong type", opts: forgetest.SignOptions{Mutate: set("principal", 42)}, want: forge.ReasonInvalidClaimType},
		{name: "app of the wrong type", opts: forgetest.SignOptions{Mutate: set("app", "me")}, want: forge.ReasonMalformed},
		{name: "empty", raw: true, token: "", want: forge.ReasonMalformed},
		{name: "one segment", raw: true, token: "abc", want: forge.ReasonMalformed},
		{name: "four segments", raw: true, token: "a.b.c.d", want: forge.ReasonMalformed},
		{name: "not base64", raw: true, token: "!!.??.**", want: forge.ReasonMalformed},
		{name: "huge", raw: true, token: strings.Repeat("a", 70<<10) + ".b.c", want: forge.ReasonMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := iss.Verifier(forge.Options{Now: clk.Now})
			token := tt.token
			if !tt.raw {
				token = iss.SignWith(tt.claims, tt.opts)
			}
			got, err := v.Verify(context.Background(), token)
			if err == nil {
				t.Fatalf("Verify accepted the token: %+v", got)
			}
			if r := reason(t, err); r != tt.want {
				t.Errorf("reason = %q, want %q", r, tt.want)
			}
			if len(token) > 10 && strings.Contains(err.Error(), token[len(token)-10:]) {
				t.Errorf("error %q contains token text", err)
			}
			if diff := cmp.Diff(forge.Invocation{}, got); diff != "" {
				t.Errorf("rejected token still yielded an invocation:\n%s", diff)
			}
		})
	}
}

// swapPayload signs a token and then replaces its payload with another app's.
func swapPayload(t *testing.T, iss *forgetest.Issuer) string {
	t.Helper()
	good := strings.Split(iss.Sign(forgetest.Claims{}), ".")
	other := strings.Split(iss.Sign(forgetest.Claims{Principal: "someone-else"}), ".")
	return good[0] + "." + other[1] + "." + good[2]
}

// foreignToken is a well-formed FIT for our app, signed by a key the JWKS does not publish.
func foreignToken(t *testing.T, kid string) string { return foreignTokenWith(t, kid, "") }

func foreignTokenWith(t *testing.T, kid, extraHeader string) string {
	t.Helper()
	attacker := forgetest.NewIssuer(t)
	return attacker.SignWith(forgetest.Claims{}, forgetest.SignOptions{
		KeyID: kid,
		Mutate: func(h, _ map[string]any) {
			if extraHeader != "" {
				h[extraHeader] = attacker.JWKSURL()
			}
		},
	})
}

func TestNewVerifierRejectsBadOptions(t *testing.T) {
	tests := []struct {
		name string
		opts forge.Options
	}{
		{"no app id", forge.Options{JWKSURL: "https://example.com/jwks.json"}},
		{"no jwks url", forge.Options{AppID: forgetest.AppID}},
		{"relative jwks url", forge.Options{AppID: forgetest.AppID, JWKSURL: "/jwks.json"}},
		{"ftp jwks url", forge.Options{AppID: forgetest.AppID, JWKSURL: "ftp://example.com/jwks.json"}},
		{"negative interval", forge.Options{AppID: forgetest.AppID, JWKSURL: "https://example.com/j", MinRefreshInterval: -time.Second}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := forge.NewVerifier(tt.opts); err == nil {
				t.Error("NewVerifier accepted bad options")
			}
		})
	}
}

func TestTokenFromHeader(t *testing.T) {
	tests := []struct {
		header string
		want   string
		ok     bool
	}{
		{"Bearer abc.def.ghi", "abc.def.ghi", true},
		{"bearer abc", "abc", true},
		{"BEARER abc", "abc", true},
		{"  Bearer   abc  ", "abc", true},
		{"Bearer", "", false},
		{"Bearer ", "", false},
		{"Bearer a b", "", false},
		{"JWT abc", "", false},
		{"Basic dXNlcjpwYXNz", "", false},
		{"Bearerabc", "", false},
		{"", "", false},
	}
	for _, tt := range tests {
		got, ok := forge.TokenFromHeader(tt.header)
		if got != tt.want || ok != tt.ok {
			t.Errorf("TokenFromHeader(%q) = %q, %v; want %q, %v", tt.header, got, ok, tt.want, tt.ok)
		}
	}
}

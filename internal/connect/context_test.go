package connect

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/go-cmp/cmp"
)

// errTenantNotFound stands in for tenant.ErrNotFound, which connect must not import.
var errTenantNotFound = errors.New("tenant not found")

var testSecret = []byte("shared-secret-of-client-key-1-0123456789")

// newContextVerifier knows one tenant, testClientKey, and counts secret lookups.
func newContextVerifier(t *testing.T) (*ContextVerifier, *atomic.Int64) {
	t.Helper()
	var lookups atomic.Int64
	return &ContextVerifier{
		Secrets: func(_ context.Context, clientKey string) ([]byte, error) {
			lookups.Add(1)
			if clientKey != testClientKey {
				return nil, errTenantNotFound
			}
			return testSecret, nil
		},
		Now: fixedNow,
	}, &lookups
}

// contextClaims are the claims of a context token that AP.context.getToken() hands the app.
func contextClaims() jwt.MapClaims {
	return jwt.MapClaims{
		"iss":     testClientKey,
		"sub":     "5b10ac8d82e05b22cc7d4ef5",
		"qsh":     ContextQSH,
		"iat":     testNow.Add(-10 * time.Second).Unix(),
		"exp":     testNow.Add(15 * time.Minute).Unix(),
		"context": map[string]any{"jira": map[string]any{"project": map[string]any{"key": "SUP"}}},
	}
}

func claimsWith(c jwt.MapClaims, k string, v any) jwt.MapClaims {
	if v == nil {
		delete(c, k)
	} else {
		c[k] = v
	}
	return c
}

func TestContextVerifierAPIRoutes(t *testing.T) {
	rsaKey := newRSAKey(t, 2048)
	apiURL := "https://sb.example.com/api/v1/reports"
	exactQSH := QSH("POST", &url.URL{Path: "/api/v1/reports"}, "")

	tests := []struct {
		name   string
		token  string
		reason string
	}{
		{name: "valid", token: signHS256(t, testSecret, nil, contextClaims())},
		{name: "expired within leeway", token: signHS256(t, testSecret, nil, claimsWith(contextClaims(), "exp", testNow.Add(-25*time.Second).Unix()))},
		{name: "empty", token: "", reason: reasonMissingToken},
		{name: "garbage", token: "a.b.c", reason: reasonMalformed},
		{name: "RS256", token: signRS256(t, rsaKey, testKID, contextClaims()), reason: reasonAlgHS256},
		{name: "HS512", token: signWith(t, jwt.SigningMethodHS512, testSecret, contextClaims()), reason: reasonAlgHS256},
		{name: "alg none", token: unsignedToken(t, map[string]any{"alg": "none"}, contextClaims()), reason: reasonAlgHS256},
		{name: "wrong secret", token: signHS256(t, []byte("not-the-secret"), nil, contextClaims()), reason: reasonSignature},
		{name: "exact qsh where context-qsh is required", token: signHS256(t, testSecret, nil, claimsWith(contextClaims(), "qsh", exactQSH)), reason: reasonContextQSH},
		{name: "missing qsh", token: signHS256(t, testSecret, nil, claimsWith(contextClaims(), "qsh", nil)), reason: reasonMissingQSH},
		{name: "missing iss", token: signHS256(t, testSecret, nil, claimsWith(contextClaims(), "iss", nil)), reason: reasonMissingIssuer},
		{name: "expired", token: signHS256(t, testSecret, nil, claimsWith(contextClaims(), "exp", testNow.Add(-time.Minute).Unix())), reason: reasonExpired},
		{name: "missing exp", token: signHS256(t, testSecret, nil, claimsWith(contextClaims(), "exp", nil)), reason: reasonMissingExp},
		{name: "iat in future", token: signHS256(t, testSecret, nil, claimsWith(contextClaims(), "iat", testNow.Add(time.Minute).Unix())), reason: reasonIssuedInFuture},
		{name: "missing iat", token: signHS256(t, testSecret, nil, claimsWith(contextClaims(), "iat", nil)), reason: reasonMissingIat},
		{name: "lifetime of exactly an hour", token: signHS256(t, testSecret, nil, claimsWith(contextClaims(), "exp", testNow.Add(-10*time.Second+time.Hour).Unix()))},
		{name: "lifetime over an hour", token: signHS256(t, testSecret, nil, claimsWith(contextClaims(), "exp", testNow.Add(-9*time.Second+time.Hour).Unix())), reason: reasonLifetime},
		{name: "exp 10^12", token: signHS256(t, testSecret, nil, claimsWith(contextClaims(), "exp", int64(1e12))), reason: reasonLifetime},
		{name: "tampered claims", token: tamper(t, signHS256(t, testSecret, nil, contextClaims())), reason: reasonSignature},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, _ := newContextVerifier(t)
			got, err := v.Verify(context.Background(), tt.token, "POST", mustURL(t, apiURL), true)
			wantReason(t, err, tt.reason)
			if err != nil {
				return
			}
			want := Identity{
				ClientKey: testClientKey,
				AccountID: "5b10ac8d82e05b22cc7d4ef5",
				Context:   map[string]any{"jira": map[string]any{"project": map[string]any{"key": "SUP"}}},
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("identity (-want +got):\n%s", diff)
			}
		})
	}
}

// Module URL and lifecycle tokens (exact qsh) are bounded like context tokens.
func TestContextVerifierModuleTokenLifetime(t *testing.T) {
	u := mustURL(t, "https://sb.example.com"+PathReportDialog+"?lic=none")
	for name, tc := range map[string]struct {
		k      string
		v      any
		reason string
	}{
		"exp 10^12":   {"exp", int64(1e12), reasonLifetime},
		"missing iat": {"iat", nil, reasonMissingIat},
	} {
		t.Run(name, func(t *testing.T) {
			v, _ := newContextVerifier(t)
			c := claimsWith(contextClaims(), "qsh", QSH("GET", u, ""))
			_, err := v.Verify(context.Background(), signHS256(t, testSecret, nil, claimsWith(c, tc.k, tc.v)), "GET", u, false)
			wantReason(t, err, tc.reason)
		})
	}
}

// A module URL is loaded by Atlassian with the token in the jwt parameter; its qsh covers
// every other parameter.
func TestContextVerifierModuleURL(t *testing.T) {
	const query = "xdm_e=https%3A%2F%2Facme.atlassian.net&xdm_c=channel-report&cp=&lic=none&cv=1001.0.0&tz=Europe%2FBerlin&loc=de-DE"
	signed := &url.URL{Path: PathReportDialog, RawQuery: query}
	c := contextClaims()
	c["qsh"] = QSH("GET", signed, "")
	token := signHS256(t, testSecret, nil, c)

	tests := []struct {
		name   string
		url    string
		reason string
	}{
		{name: "token in query", url: "https://sb.example.com" + PathReportDialog + "?" + query + "&jwt=" + token},
		{name: "token first", url: "https://sb.example.com" + PathReportDialog + "?jwt=" + token + "&" + query},
		{name: "no jwt param", url: "https://sb.example.com" + PathReportDialog + "?" + query},
		{name: "extra param", url: "https://sb.example.com" + PathReportDialog + "?" + query + "&debug=1&jwt=" + token, reason: reasonQSH},
		{name: "param changed", url: "https://sb.example.com" + PathReportDialog + "?" + "xdm_e=https%3A%2F%2Fevil.example" + query[len("xdm_e=https%3A%2F%2Facme.atlassian.net"):], reason: reasonQSH},
		{name: "other path", url: "https://sb.example.com/connect/other?" + query, reason: reasonQSH},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, _ := newContextVerifier(t)
			u := mustURL(t, tt.url)
			got, err := v.Verify(context.Background(), token, "GET", u, false)
			wantReason(t, err, tt.reason)
			if err == nil && got.ClientKey != testClientKey {
				t.Errorf("got clientKey %q, want %q", got.ClientKey, testClientKey)
			}
		})
	}

	// A context token may not open a module URL: its fixed qsh proves nothing about the URL.
	v, _ := newContextVerifier(t)
	_, err := v.Verify(context.Background(), signHS256(t, testSecret, nil, contextClaims()), "GET", signed, false)
	wantReason(t, err, reasonQSH)
}

func TestContextVerifierSecretErrorsPassThrough(t *testing.T) {
	v, _ := newContextVerifier(t)
	token := signHS256(t, testSecret, nil, claimsWith(contextClaims(), "iss", "client-key-unknown"))
	_, err := v.Verify(context.Background(), token, "POST", mustURL(t, "/api/v1/reports"), true)
	if !errors.Is(err, errTenantNotFound) {
		t.Fatalf("got %v, want errTenantNotFound", err)
	}
	if errors.Is(err, ErrInvalidToken) {
		t.Errorf("got %v, which is also ErrInvalidToken", err)
	}
}

// Refusing on header and claims first keeps junk tokens from reaching storage.
func TestContextVerifierNoLookupForRefusedTokens(t *testing.T) {
	v, lookups := newContextVerifier(t)
	for _, token := range []string{
		"junk",
		signRS256(t, newRSAKey(t, 2048), testKID, contextClaims()),
		signHS256(t, testSecret, nil, claimsWith(contextClaims(), "exp", testNow.Add(-time.Hour).Unix())),
		signHS256(t, testSecret, nil, claimsWith(contextClaims(), "qsh", "x")),
	} {
		if _, err := v.Verify(context.Background(), token, "POST", mustURL(t, "/api/v1/reports"), true); !errors.Is(err, ErrInvalidToken) {
			t.Errorf("got %v, want ErrInvalidToken", err)
		}
	}
	if got := lookups.Load(); got != 0 {
		t.Errorf("got %d secret lookups, want 0", got)
	}
}

func TestContextVerifierEmptySecret(t *testing.T) {
	v := &ContextVerifier{
		Secrets: func(context.Context, string) ([]byte, error) { return nil, nil },
		Now:     fixedNow,
	}
	token := signHS256(t, nil, nil, contextClaims())
	_, err := v.Verify(context.Background(), token, "POST", mustURL(t, "/api/v1/reports"), true)
	if err == nil || errors.Is(err, ErrInvalidToken) {
		t.Fatalf("got %v, want a server-side error", err)
	}
}

func TestTokenFromRequest(t *testing.T) {
	tests := []struct {
		name   string
		auth   string
		target string
		want   string
		wantOK bool
	}{
		{name: "header", auth: "JWT abc.def.ghi", target: "/", want: "abc.def.ghi", wantOK: true},
		{name: "header scheme in any case", auth: "jwt  abc.def.ghi ", target: "/", want: "abc.def.ghi", wantOK: true},
		{name: "query", target: "/connect/report-dialog?xdm_e=x&jwt=abc.def.ghi", want: "abc.def.ghi", wantOK: true},
		{name: "header wins", auth: "JWT h.h.h", target: "/?jwt=q.q.q", want: "h.h.h", wantOK: true},
		{name: "bearer is not a Connect token", auth: "Bearer abc", target: "/"},
		{name: "bearer falls back to query", auth: "Bearer abc", target: "/?jwt=q.q.q", want: "q.q.q", wantOK: true},
		{name: "empty header value", auth: "JWT ", target: "/"},
		{name: "nothing", target: "/"},
		{name: "empty query value", target: "/?jwt="},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, tt.target, nil)
			if tt.auth != "" {
				r.Header.Set("Authorization", tt.auth)
			}
			got, ok := TokenFromRequest(r)
			if got != tt.want || ok != tt.wantOK {
				t.Errorf("got (%q, %v), want (%q, %v)", got, ok, tt.want, tt.wantOK)
			}
		})
	}
}

func signWith(t testing.TB, m jwt.SigningMethod, key any, c jwt.MapClaims) string {
	t.Helper()
	s, err := jwt.NewWithClaims(m, c).SignedString(key)
	if err != nil {
		t.Fatalf("sign %s: %v", m.Alg(), err)
	}
	return s
}

// tamper swaps the claims of token for others while keeping its signature.
func tamper(t testing.TB, token string) string {
	t.Helper()
	forged := unsignedToken(t, map[string]any{"alg": "HS256", "typ": "JWT"}, claimsWith(contextClaims(), "sub", "someone-else"))
	sig := token[strings.LastIndex(token, ".")+1:]
	return forged + sig
}

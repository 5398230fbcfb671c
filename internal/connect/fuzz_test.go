package connect

import (
	"context"
	"crypto/rsa"
	"errors"
	"net/url"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// FuzzCanonicalRequest checks that any URL canonicalises without panicking, the same way
// every time, and that the jwt parameter, wherever it sits, never changes the result (the
// token cannot be part of what it signs).
func FuzzCanonicalRequest(f *testing.F) {
	f.Add("GET", "/hello-world?lic=none&tz=Australia%2FSydney&jwt=abc.def.ghi", "", "x.y.z")
	f.Add("post", "https://sb.example.com/sb/connect/installed/", "/sb", "")
	f.Fuzz(func(t *testing.T, method, rawURL, basePath, jwtValue string) {
		u, err := url.Parse(rawURL)
		if err != nil {
			return
		}
		got := CanonicalRequest(method, u, basePath)
		if again := CanonicalRequest(method, u, basePath); again != got {
			t.Fatalf("not deterministic: %q then %q", got, again)
		}
		if QSH(method, u, basePath) != QSH(method, u, basePath) {
			t.Fatal("qsh not deterministic")
		}
		if !strings.HasPrefix(got, strings.ToUpper(method)+"&/") {
			t.Fatalf("%q does not start with method and path", got)
		}

		param := "jwt=" + url.QueryEscape(jwtValue)
		for _, q := range []string{
			joinQuery(u.RawQuery, param),
			joinQuery(param, u.RawQuery),
			joinQuery(joinQuery(param, u.RawQuery), "jwt"),
		} {
			withJWT := *u
			withJWT.RawQuery = q
			if other := CanonicalRequest(method, &withJWT, basePath); other != got {
				t.Fatalf("jwt parameter changed the result:\n%q\n%q", got, other)
			}
		}
		for _, pair := range strings.Split(canonicalQuery(u.RawQuery), "&") {
			if strings.HasPrefix(pair, "jwt=") {
				t.Fatalf("jwt parameter in %q", got)
			}
		}
	})
}

func joinQuery(a, b string) string {
	if a == "" || b == "" {
		return a + b
	}
	return a + "&" + b
}

// keyMap is an in-memory KeySource, so the fuzzer spends its time on parsing.
type keyMap map[string]*rsa.PublicKey

func (m keyMap) Key(_ context.Context, kid string) (*rsa.PublicKey, error) {
	if k, ok := m[kid]; ok {
		return k, nil
	}
	return nil, invalid(reasonUnknownKID)
}

// FuzzInstallVerify feeds arbitrary tokens to the install verifier. It must never panic, must
// refuse with ErrInvalidToken, and may accept only what was really signed.
func FuzzInstallVerify(f *testing.F) {
	key := newRSAKey(f, 2048)
	valid := signRS256(f, key, testKID, installClaims())
	f.Add(valid)
	f.Add(valid[:strings.LastIndex(valid, ".")+1])
	v := &InstallVerifier{Keys: keyMap{testKID: &key.PublicKey}, Audience: testAudience, Now: fixedNow}
	u := &url.URL{Scheme: "https", Host: "sb.example.com", Path: PathInstalled}
	f.Fuzz(func(t *testing.T, token string) {
		got, err := v.Verify(context.Background(), "JWT "+token, "POST", u, testClientKey)
		if err != nil {
			if !errors.Is(err, ErrInvalidToken) {
				t.Fatalf("got %v, want ErrInvalidToken", err)
			}
			return
		}
		// Base64 leaves slack in the last character, so a mutated token may decode to the
		// signed bytes; anything else accepted is a forgery.
		if got.ClientKey != testClientKey || got.Subject != "557058:atlassian" || got.KeyID != testKID {
			t.Fatalf("accepted forged claims %+v", got)
		}
	})
}

// FuzzContextVerify does the same for HS256 context tokens, with both qsh modes.
func FuzzContextVerify(f *testing.F) {
	f.Add(signHS256(f, testSecret, nil, contextClaims()), true)
	f.Add(signHS256(f, testSecret, nil, claimsWith(contextClaims(), "qsh", QSH("GET", &url.URL{Path: PathReportDialog}, ""))), false)
	v := &ContextVerifier{
		Secrets: func(_ context.Context, clientKey string) ([]byte, error) {
			if clientKey != testClientKey {
				return nil, errTenantNotFound
			}
			return testSecret, nil
		},
		Now: fixedNow,
	}
	want := Identity{
		ClientKey: testClientKey,
		AccountID: "5b10ac8d82e05b22cc7d4ef5",
		Context:   map[string]any{"jira": map[string]any{"project": map[string]any{"key": "SUP"}}},
	}
	f.Fuzz(func(t *testing.T, token string, requireContextQSH bool) {
		method, u := "POST", &url.URL{Path: "/api/v1/reports"}
		if !requireContextQSH {
			method, u = "GET", &url.URL{Path: PathReportDialog}
		}
		got, err := v.Verify(context.Background(), token, method, u, requireContextQSH)
		if err != nil {
			if !errors.Is(err, ErrInvalidToken) && !errors.Is(err, errTenantNotFound) {
				t.Fatalf("got %v, want ErrInvalidToken or the lookup error", err)
			}
			return
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Fatalf("accepted forged claims (-signed +got):\n%s", diff)
		}
	})
}

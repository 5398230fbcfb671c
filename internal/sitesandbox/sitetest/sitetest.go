// Package sitetest starts a sitesandbox site for a test. It is separate from sitesandbox
// because it links testing and net/http/httptest, which the production binary (serving the
// site in dev mode) must not; import it only from _test.go files.
package sitetest

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/supportbridge/supportbridge/internal/connect"
	"github.com/supportbridge/supportbridge/internal/sitesandbox"
)

// NewTestServer starts a site on a local port for a test, validated against Atlassian's
// platform spec. Unless o names a spec, it is found with sitesandbox.SpecPathFromEnv. A
// missing spec file fails the test in CI (CI=true), so validation cannot silently go missing
// there; elsewhere the test runs against an unvalidated site and says so in its log. When
// the test ends hanging calls are released, the server is closed, and the test fails if
// any call or answer broke the spec.
func NewTestServer(t testing.TB, o sitesandbox.Options) (*sitesandbox.Site, *httptest.Server) {
	t.Helper()
	if o.Spec == nil {
		o.Spec = findSpec(t, o.PlatformSpecPath, t.Log)
		o.PlatformSpecPath = ""
	}
	s, err := sitesandbox.New(o)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s)
	// Cleanups run last-in first-out: hangs are released, then the server closes (waiting
	// for in-flight calls), then the violations are read.
	t.Cleanup(func() {
		if v := s.Violations(); len(v) > 0 {
			t.Errorf("sitesandbox: %d call(s) broke Atlassian's spec:\n  %s", len(v), strings.Join(v, "\n  "))
		}
	})
	t.Cleanup(srv.Close)
	t.Cleanup(func() { s.SetDown(0) })
	return s, srv
}

// Spec loads the platform spec at path, or at sitesandbox.SpecPathFromEnv when path is
// empty, for tests of validation itself: a missing file skips the test (fails it in CI).
// Parsed specs are shared between the tests of a package.
func Spec(t testing.TB, path string) *sitesandbox.Spec {
	t.Helper()
	return findSpec(t, path, t.Skip)
}

// findSpec loads the spec, or fails the test in CI, or else calls missing and returns nil.
func findSpec(t testing.TB, path string, missing func(...any)) *sitesandbox.Spec {
	t.Helper()
	if path == "" {
		path, _ = sitesandbox.SpecPathFromEnv()
	}
	if _, err := os.Stat(path); path == "" || err != nil {
		msg := "sitesandbox: Atlassian platform spec " + path + " not found (set SB_JIRA_SPEC); not validating"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		missing(msg)
		return nil
	}
	sp, err := loadShared(path)
	if err != nil {
		t.Fatal(err)
	}
	return sp
}

// sharedSpecs memoises parsed specs by path. Parsing the 2.4 MB platform spec takes most of
// a second, a package may start dozens of sites, and a Spec is never mutated after loading,
// so sharing it cannot couple tests.
var sharedSpecs sync.Map // string → func() (*sitesandbox.Spec, error)

func loadShared(path string) (*sitesandbox.Spec, error) {
	load, _ := sharedSpecs.LoadOrStore(path,
		sync.OnceValues(func() (*sitesandbox.Spec, error) { return sitesandbox.LoadSpec(path) }))
	return load.(func() (*sitesandbox.Spec, error))()
}

// ConnectJWT signs req as a Connect app calling the site: HS256 with secret, iss appKey,
// expiring in three minutes, with the qsh of req relative to basePath (the path of the
// site's base URL, "" at the root). It sets the Authorization header.
func ConnectJWT(t testing.TB, req *http.Request, appKey string, secret []byte, basePath string) {
	t.Helper()
	now := time.Now()
	SignConnect(t, req, secret, jwt.MapClaims{
		"iss": appKey, "iat": now.Unix(), "exp": now.Add(3 * time.Minute).Unix(),
		"qsh": connect.QSH(req.Method, req.URL, basePath),
	})
}

// SignConnect sets "Authorization: JWT <token>" with the given claims signed HS256 with
// secret, for tests that need a wrong or expired claim.
func SignConnect(t testing.TB, req *http.Request, secret []byte, claims jwt.MapClaims) {
	t.Helper()
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(secret)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "JWT "+tok)
}

// QSH is connect.QSH for a raw URL, for tests building claims by hand.
func QSH(t testing.TB, method, rawURL, basePath string) string {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	return connect.QSH(method, u, basePath)
}

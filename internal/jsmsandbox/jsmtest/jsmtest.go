// Package jsmtest starts the JSM sandbox for other packages' tests. It lives apart from
// jsmsandbox so that the binary, which serves the sandbox in dev mode, links neither testing
// nor net/http/httptest.
package jsmtest

import (
	"fmt"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"github.com/supportbridge/supportbridge/internal/jsmsandbox"
)

// NewTestServer starts a sandbox on a local port for a test, validated against Atlassian's
// specs. Unless opts names specs, they are found with SpecPathsFromEnv; a missing spec file
// skips the test, except in CI (CI=true) where it fails it, so validation cannot silently
// go missing there. When the test ends the server is closed, and the test fails if any
// request broke the specs.
func NewTestServer(t testing.TB, opts jsmsandbox.Options) (*jsmsandbox.Sandbox, *httptest.Server) {
	t.Helper()
	if opts.Specs == nil {
		opts.Specs = specsForTest(t, opts.JSMSpecPath, opts.PlatformSpecPath)
	}
	s, err := jsmsandbox.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s)
	// Cleanups run last-in first-out: the server closes (waiting for in-flight calls)
	// before the violations are read.
	t.Cleanup(func() {
		if v := s.Violations(); len(v) > 0 {
			t.Errorf("jsmsandbox: %d call(s) broke Atlassian's spec:\n  %s", len(v), strings.Join(v, "\n  "))
		}
	})
	t.Cleanup(srv.Close)
	return s, srv
}

// specsForTest loads the specs at the given paths, or at SpecPathsFromEnv when both are
// empty, skipping the test when a file is missing (failing it in CI).
func specsForTest(t testing.TB, jsmPath, platformPath string) *jsmsandbox.Specs {
	t.Helper()
	if jsmPath == "" && platformPath == "" {
		jsmPath, platformPath = jsmsandbox.SpecPathsFromEnv()
	}
	for _, p := range []string{jsmPath, platformPath} {
		if _, err := os.Stat(p); p == "" || err != nil {
			msg := fmt.Sprintf("jsmsandbox: Atlassian spec %q not found (set SB_JSM_SPEC and SB_JIRA_SPEC)", p)
			if os.Getenv("CI") == "true" {
				t.Fatal(msg)
			}
			t.Skip(msg)
		}
	}
	specs, err := jsmsandbox.LoadSpecsOnce(jsmPath, platformPath)
	if err != nil {
		t.Fatal(err)
	}
	return specs
}

package jsmsandbox

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"
)

// NewTestServer starts a sandbox on a local port for a test, validated against Atlassian's
// specs. Unless opts names specs, they are found with SpecPathsFromEnv; a missing spec file
// skips the test, except in CI (CI=true) where it fails it, so validation cannot silently
// go missing there. When the test ends the server is closed, and the test fails if any
// request broke the specs.
func NewTestServer(t testing.TB, opts Options) (*Sandbox, *httptest.Server) {
	t.Helper()
	if opts.Specs == nil {
		opts.Specs = specsForTest(t, opts.JSMSpecPath, opts.PlatformSpecPath)
	}
	s, err := New(opts)
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
func specsForTest(t testing.TB, jsmPath, platformPath string) *Specs {
	t.Helper()
	if jsmPath == "" && platformPath == "" {
		jsmPath, platformPath = SpecPathsFromEnv()
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
	specs, err := loadSharedSpecs(jsmPath, platformPath)
	if err != nil {
		t.Fatal(err)
	}
	return specs
}

// keepCallsRunning bounds the call log of a long-running sandbox, which would otherwise keep
// every uploaded body for ever.
const keepCallsRunning = 1000

// Run serves a sandbox on addr until ctx is done, for `supportbridge jsm-sandbox` and dev
// mode. Without spec paths, or when a spec file is missing, it serves unvalidated and says
// so: a developer without the shared files can still run the product.
func Run(ctx context.Context, addr string, opts Options, logger *slog.Logger) error {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	opts.Logger = logger
	if opts.KeepCalls == 0 {
		opts.KeepCalls = keepCallsRunning
	}
	if opts.Specs == nil {
		for _, p := range []string{opts.JSMSpecPath, opts.PlatformSpecPath} {
			if _, err := os.Stat(p); p == "" || err != nil {
				opts.JSMSpecPath, opts.PlatformSpecPath = "", ""
			}
		}
		if opts.JSMSpecPath == "" {
			logger.Warn("jsm sandbox runs without spec validation: Atlassian spec files not found")
		}
	}
	s, err := New(opts)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("jsm sandbox listen: %w", err)
	}
	srv := &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second}
	logger.Info("jsm sandbox listening", "addr", ln.Addr().String(), "service_desk_id", s.opts.ServiceDeskID,
		"project_key", s.opts.ProjectKey)
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("jsm sandbox serve: %w", err)
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		srv.Close()
		return fmt.Errorf("jsm sandbox shutdown: %w", err)
	}
	return nil
}

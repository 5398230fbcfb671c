package httpapi

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/supportbridge/supportbridge/internal/browsertest"
)

// TestErrorCaptureInBrowser runs e2e/error-capture.spec.js: a real Chromium loads an app page
// (strict CSP, no inline script) that includes error-capture.js from the service and sends
// through the real router with a Connect context token. The page is served on the service's
// origin, as a Connect app's pages are, by a proxy in front of the router.
func TestErrorCaptureInBrowser(t *testing.T) {
	root, node := browsertest.Deps(t)
	eh := newErrHarness(t)
	token := contextToken(t, errTenantA, secretA, errAccountA, nil) // valid 3 minutes
	target, _ := url.Parse(eh.srv.URL)
	proxy := httputil.NewSingleHostReverseProxy(target)
	mux := http.NewServeMux()
	mux.HandleFunc("/app/page.html", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; connect-src 'self'")
		fmt.Fprintf(w, `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>app</title>
<script src="%s"></script><script src="/app/host.js"></script></head><body>app</body></html>`, eh.server.ErrorCaptureURL())
	})
	mux.HandleFunc("/app/host.js", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
		fmt.Fprintf(w, `'use strict';
window.__sbSent = [];
SupportbridgeErrors.start({ send: async (batch) => {
  const at = Date.now(); // when the batch is sent, which is what the throttle governs
  const r = await fetch('/api/v1/errors', { method: 'POST', body: JSON.stringify(batch),
    headers: { 'Content-Type': 'application/json', Authorization: 'JWT %s' } });
  window.__sbSent.push({ status: r.status, at, n: batch.events.length });
}});
setTimeout(() => { throw new TypeError('widget ' + 42 + ' is undefined'); }, 0);
Promise.reject(new Error('load failed for ada@customer.example'));
fetch('/app/fail?token=hunter2&n=1').catch(() => {});
`, token)
	})
	mux.HandleFunc("/app/fail", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Request-Id", "req-browser-502")
		w.WriteHeader(http.StatusBadGateway)
	})
	mux.Handle("/", proxy)
	app := httptest.NewServer(mux)
	t.Cleanup(app.Close)

	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, filepath.Join("e2e", "error-capture.spec.js"))
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "SB_E2E_PAGE_URL="+app.URL+"/app/page.html?session=hunter2#frag")
	out, err := cmd.CombinedOutput()
	t.Logf("error-capture.spec.js:\n%s", out)
	if err != nil {
		t.Fatalf("browser test failed: %v\nserver log:\n%s", err, eh.logs.String())
	}

	page := eh.groups(errTenantA, "")
	kinds := map[string]int{}
	for _, g := range page.Groups {
		kinds[string(g.Kind)]++
		if g.Kind == "http" && (g.Status != 502 || g.RequestID != "req-browser-502") {
			t.Errorf("http group: %+v", g)
		}
		if len(g.TrackingIDs) != 1 {
			t.Errorf("group %s: tracking ids %v", g.Fingerprint, g.TrackingIDs)
		}
	}
	if fmt.Sprint(kinds) != "map[error:1 http:1 unhandledrejection:1]" {
		t.Errorf("groups by kind %v: %+v", kinds, page.Groups)
	}
	for _, s := range []string{"hunter2", "ada@customer.example", errAccountA} {
		if dump := eh.redisDump(); strings.Contains(dump, s) {
			t.Errorf("Redis holds %q", s)
		}
	}
}

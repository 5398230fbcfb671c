package httpapi

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/supportbridge/supportbridge/internal/forge"
	"github.com/supportbridge/supportbridge/internal/forge/forgetest"
)

// A near-miss path must go through every middleware like any other 404: gin's redirects
// answered before them, without security headers, log line or metric, and echoed the path.
func TestTrailingSlashIsAPlainNotFound(t *testing.T) {
	h := newHarness(t)
	for _, tc := range []struct{ method, path string }{
		{"GET", "/healthz/"},
		{"GET", "/HEALTHZ"},
		{"GET", "/api/v1/reports/x/"},
		{"POST", "/connect/installed/"},
	} {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			req, err := http.NewRequest(tc.method, h.srv.URL+tc.path, nil)
			if err != nil {
				t.Fatal(err)
			}
			client := *h.srv.Client()
			client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != http.StatusNotFound {
				t.Fatalf("status = %d (Location %q), want 404", resp.StatusCode, resp.Header.Get("Location"))
			}
			if loc := resp.Header.Get("Location"); loc != "" {
				t.Errorf("Location = %q, want none", loc)
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/problem+json" {
				t.Errorf("Content-Type = %q, want application/problem+json", ct)
			}
			for _, name := range []string{"X-Content-Type-Options", "Content-Security-Policy", "X-Frame-Options", "Strict-Transport-Security", "X-Request-Id"} {
				if resp.Header.Get(name) == "" {
					t.Errorf("missing header %s", name)
				}
			}
		})
	}
	if logs := h.logs.String(); !strings.Contains(logs, `"path":"/healthz/`) || !strings.Contains(logs, `"status":404`) {
		t.Errorf("the near miss was not logged:\n%s", logs)
	}
	_, _, b := h.do("GET", "/metrics", nil, nil)
	if !strings.Contains(string(b), `route="unmatched",status="404"`) {
		t.Errorf("the near miss was not counted:\n%.2000s", b)
	}
}

// Invented methods and paths must not become label values: each would be a new series, and
// 300 requests with 60 KB methods once made /metrics 307 MB.
func TestMetricsLabelsComeFromNoClient(t *testing.T) {
	h := newHarness(t)
	_, _, before := h.do("GET", "/metrics", nil, nil)
	for i := range 40 {
		method := fmt.Sprintf("X%d%s", i, strings.Repeat("M", 8<<10))
		h.do(method, fmt.Sprintf("/healthz?i=%d", i), nil, nil)
		h.do(method, fmt.Sprintf("/invented/%d/%s", i, strings.Repeat("p", 1<<10)), nil, nil)
		h.do("get", "/healthz", nil, nil) // methods are case-sensitive: not GET
	}
	_, _, after := h.do("GET", "/metrics", nil, nil)
	if grew := len(after) - len(before); grew > 16<<10 {
		t.Errorf("/metrics grew by %d bytes after 120 requests", grew)
	}
	labels := regexp.MustCompile(`supportbridge_http_request_duration_seconds_count\{method="([^"]*)",route="([^"]*)",status="[0-9]+"\}`)
	found := labels.FindAllStringSubmatch(string(after), -1)
	if len(found) == 0 {
		t.Fatalf("no request series in /metrics:\n%.2000s", after)
	}
	routes := map[string]bool{"unmatched": true}
	for _, r := range h.server.Routes().Routes() {
		routes[r.Path] = true
	}
	sawOther := false
	for _, m := range found {
		switch m[1] {
		case "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "CONNECT", "TRACE":
		case "OTHER":
			sawOther = true
		default:
			t.Errorf("method label %.40q comes from the client", m[1])
		}
		if !routes[m[2]] {
			t.Errorf("route label %.40q is not a route template", m[2])
		}
	}
	if !sawOther {
		t.Error("invented methods were not counted as OTHER")
	}
	if strings.Contains(h.logs.String(), "MMMMMMMM") {
		t.Error("the access log holds an invented method")
	}
}

// With SB_METRICS_ADDR the main router's /metrics is a plain 404; metrics are served by
// MetricsHandler on the separate listener only.
func TestMetricsOnSeparateListener(t *testing.T) {
	h := newHarness(t, func(env map[string]string, _ *Options) { env["SB_METRICS_ADDR"] = "127.0.0.1:0" })
	h.do("GET", "/healthz", nil, nil)
	st, hdr, b := h.do("GET", "/metrics", nil, nil)
	if st != http.StatusNotFound {
		t.Fatalf("main /metrics: status %d, want 404", st)
	}
	decodeProblem(t, hdr, b)
	rec := httptest.NewRecorder()
	h.server.MetricsHandler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if rec.Code != 200 || !strings.Contains(rec.Body.String(), `route="/healthz"`) {
		t.Errorf("metrics handler: %d\n%.2000s", rec.Code, rec.Body.String())
	}
}

// The access log's client address is the peer's unless the peer is a trusted proxy: by
// default no X-Forwarded-For or X-Real-IP is believed.
func TestClientIPNotSpoofable(t *testing.T) {
	spoof := map[string]string{"X-Forwarded-For": "203.0.113.7", "X-Real-IP": "203.0.113.8"}
	remote := func(t *testing.T, h *harness) string {
		t.Helper()
		h.do("GET", "/healthz", spoof, nil)
		for _, line := range strings.Split(h.logs.String(), "\n") {
			var m map[string]any
			if json.Unmarshal([]byte(line), &m) == nil && m["msg"] == "http_request" {
				s, _ := m["remote"].(string)
				return s
			}
		}
		t.Fatalf("no access log line:\n%s", h.logs.String())
		return ""
	}
	t.Run("default trusts no proxy", func(t *testing.T) {
		if got := remote(t, newHarness(t)); got != "127.0.0.1" {
			t.Errorf("remote = %q, want the peer 127.0.0.1", got)
		}
	})
	t.Run("trusted proxy", func(t *testing.T) {
		h := newHarness(t, func(env map[string]string, _ *Options) { env["SB_TRUSTED_PROXIES"] = "10.0.0.0/8, 127.0.0.1/32" })
		if got := remote(t, h); got != "203.0.113.7" {
			t.Errorf("remote = %q, want 203.0.113.7 from the trusted proxy's X-Forwarded-For", got)
		}
	})
	t.Run("other proxies stay untrusted", func(t *testing.T) {
		h := newHarness(t, func(env map[string]string, _ *Options) { env["SB_TRUSTED_PROXIES"] = "10.0.0.0/8" })
		if got := remote(t, h); got != "127.0.0.1" {
			t.Errorf("remote = %q, want the peer 127.0.0.1", got)
		}
	})
}

// Forged install tokens with fresh kids must not each cost a request to Atlassian's key
// server: fetches are rate limited, and a throttled kid (which may be genuine) is a 503 so
// that Atlassian retries.
func TestForgedInstallKIDsAreThrottled(t *testing.T) {
	h := newHarness(t)
	statuses := map[int]int{}
	for i := range 30 {
		tok := h.installToken("POST", "/connect/installed", "client-kid", func(_ jwt.MapClaims, tok *jwt.Token) {
			tok.Header["kid"] = fmt.Sprintf("forged-%d", i)
		})
		st, hdr, b := h.do("POST", "/connect/installed", map[string]string{"Authorization": "JWT " + tok}, installBody("client-kid", secretA, nil))
		statuses[st]++
		if st == http.StatusServiceUnavailable && hdr.Get("Retry-After") == "" {
			t.Errorf("503 without Retry-After: %s", b)
		}
	}
	h.mu.Lock()
	hits := *h.keyHits
	h.mu.Unlock()
	if hits > 5 {
		t.Errorf("30 forged kids made %d key-server fetches, want at most 5", hits)
	}
	if statuses[401]+statuses[503] != 30 {
		t.Errorf("statuses = %v, want only 401 and 503", statuses)
	}
}

// A Connect token whose iss is a Forge-only tenant (no shared secret) is refused with 401,
// not a 500 logged at ERROR.
func TestConnectTokenForForgeOnlyTenant(t *testing.T) {
	iss := forgetest.NewIssuer(t)
	h := newHarness(t, withForge(iss))
	sys := iss.Sign(forgetest.Claims{})
	if st, _, b := h.do("POST", "/forge/lifecycle", map[string]string{"Authorization": "Bearer " + sys}, forgeEvent(forge.EventInstalled, forgetest.InstallationID, forgetest.CloudID)); st != 204 {
		t.Fatalf("forge installed: %d %s", st, b)
	}
	for _, secret := range []string{"", "any-secret-the-caller-likes-000"} {
		tok := contextToken(t, forgetest.CloudID, secret, "acct", nil)
		st, hdr, b := h.do("GET", "/api/v1/reports/x", map[string]string{"Authorization": "JWT " + tok}, nil)
		if st != http.StatusUnauthorized {
			t.Fatalf("secret %q: status %d (%s), want 401", secret, st, b)
		}
		decodeProblem(t, hdr, b)
	}
	enable := contextToken(t, forgetest.CloudID, "x", "", func(c jwt.MapClaims) { c["qsh"] = qshOf("POST", "/connect/disabled") })
	body := installBody(forgetest.CloudID, "", func(m map[string]any) { delete(m, "sharedSecret") })
	if st, _, b := h.do("POST", "/connect/disabled", map[string]string{"Authorization": "JWT " + enable}, body); st != http.StatusUnauthorized {
		t.Errorf("/connect/disabled: status %d (%s), want 401", st, b)
	}
	if strings.Contains(h.logs.String(), `"level":"ERROR"`) {
		t.Errorf("refusing a token was logged as an error:\n%s", h.logs.String())
	}
}

// A site administrator who disables the app stops it from filing reports; enabling it again
// restores it. Freshly installed tenants are enabled.
func TestDisabledTenantIsRefused(t *testing.T) {
	iss := forgetest.NewIssuer(t)
	h := newHarness(t, withForge(iss))
	install := h.installToken("POST", "/connect/installed", "client-off", nil)
	if st, _, b := h.do("POST", "/connect/installed", map[string]string{"Authorization": "JWT " + install},
		installBody("client-off", secretA, func(m map[string]any) { m["cloudId"] = forgetest.CloudID })); st != 204 {
		t.Fatalf("install: %d %s", st, b)
	}
	if st, _, b := h.do("POST", "/forge/lifecycle", map[string]string{"Authorization": "Bearer " + iss.Sign(forgetest.Claims{})},
		forgeEvent(forge.EventInstalled, forgetest.InstallationID, forgetest.CloudID)); st != 204 {
		t.Fatalf("forge installed: %d %s", st, b)
	}
	tok := "JWT " + contextToken(t, "client-off", secretA, "acct", nil)
	fit := "Bearer " + iss.Sign(forgetest.Claims{Principal: "acct"})
	report := []byte(`{"summary":"It broke","description":"Clicking save does nothing."}`)
	lifecycle := func(event string) {
		t.Helper()
		path := "/connect/" + event
		auth := contextToken(t, "client-off", secretA, "", func(c jwt.MapClaims) { c["qsh"] = qshOf("POST", path) })
		body := installBody("client-off", "", func(m map[string]any) { delete(m, "sharedSecret"); m["eventType"] = event })
		if st, _, b := h.do("POST", path, map[string]string{"Authorization": "JWT " + auth}, body); st != 204 {
			t.Fatalf("%s: %d %s", event, st, b)
		}
	}
	if st, _, b := h.do("GET", "/api/v1/reports/x", map[string]string{"Authorization": tok}, nil); st != 404 {
		t.Fatalf("freshly installed tenant: %d %s", st, b)
	}

	lifecycle("disabled")
	for _, r := range []struct {
		method, path, auth string
		body               []byte
	}{
		{"GET", "/api/v1/reports/x", tok, nil},
		{"POST", "/api/v1/reports", tok, report},
		{"GET", "/api/v1/reports/x", fit, nil},
		{"POST", "/api/v1/reports", fit, report},
	} {
		st, hdr, b := h.do(r.method, r.path, map[string]string{"Authorization": r.auth}, r.body)
		if st != http.StatusForbidden {
			t.Fatalf("%s %s (%.6s) while disabled: %d %s, want 403", r.method, r.path, r.auth, st, b)
		}
		if p := decodeProblem(t, hdr, b); p.Type != problemTypeBase+"app-disabled" {
			t.Errorf("type = %q, want app-disabled", p.Type)
		}
	}

	lifecycle("enabled")
	for _, auth := range []string{tok, fit} {
		if st, _, b := h.do("GET", "/api/v1/reports/x", map[string]string{"Authorization": auth}, nil); st != 404 {
			t.Errorf("after enabled (%.6s): %d %s, want 404", auth, st, b)
		}
	}
}

// Context tokens live minutes at Atlassian; one that claims to live for years, or does not
// say when it was issued, is refused.
func TestLongLivedContextTokenRefused(t *testing.T) {
	h := newHarness(t)
	h.install("client-life", secretA)
	for name, mutate := range map[string]func(jwt.MapClaims){
		"exp 10^12": func(c jwt.MapClaims) { c["exp"] = int64(1e12) },
		"no iat":    func(c jwt.MapClaims) { delete(c, "iat") },
		"two hours": func(c jwt.MapClaims) { c["exp"] = time.Now().Add(2 * time.Hour).Unix() },
	} {
		t.Run(name, func(t *testing.T) {
			tok := contextToken(t, "client-life", secretA, "acct", mutate)
			st, hdr, b := h.do("GET", "/api/v1/reports/x", map[string]string{"Authorization": "JWT " + tok}, nil)
			if st != http.StatusUnauthorized {
				t.Fatalf("status %d (%s), want 401", st, b)
			}
			decodeProblem(t, hdr, b)
		})
	}
}

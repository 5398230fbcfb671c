package httpapi

import (
	"net/http"
	"strings"
	"testing"
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

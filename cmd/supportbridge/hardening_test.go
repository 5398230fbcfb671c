package main

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/supportbridge/supportbridge/internal/redisstore/redistest"
)

// serveTestEnv is a minimal valid serve configuration on loopback.
func serveTestEnv(t *testing.T) map[string]string {
	t.Helper()
	return map[string]string{
		"SB_HTTP_ADDR":           "127.0.0.1:0",
		"SB_PUBLIC_BASE_URL":     "http://localhost:8080",
		"SB_REDIS_URL":           redistest.URL(t),
		"SB_SECRET_KEY":          "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
		"SB_JSM_BASE_URL":        "https://vendor.atlassian.net",
		"SB_JSM_EMAIL":           "svc@vendor.example",
		"SB_JSM_API_TOKEN":       "jsm-token",
		"SB_JSM_SERVICE_DESK_ID": "10",
		"SB_JSM_REQUEST_TYPE_ID": "11",
		"SB_JSM_PROJECT_KEY":     "SUP",
		"SB_CONNECT_APP_KEY":     "app",
	}
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// SB_METRICS_ADDR moves /metrics off the API's address onto a listener of its own.
func TestServeMetricsListener(t *testing.T) {
	env := serveTestEnv(t)
	env["SB_METRICS_ADDR"] = "127.0.0.1:0"
	addr, out, stop := startRun(t, []string{"serve", "--role", "api"}, env)
	metricsAddr := waitForLog(t, out, "metrics_listening")["addr"].(string)
	get(t, "http://"+addr+"/healthz")
	if st, _ := get(t, "http://"+addr+"/metrics"); st != http.StatusNotFound {
		t.Errorf("/metrics on the API listener: status %d, want 404", st)
	}
	st, body := get(t, "http://"+metricsAddr+"/metrics")
	if st != http.StatusOK || !strings.Contains(body, `route="/healthz"`) || !strings.Contains(body, "go_goroutines") {
		t.Errorf("/metrics on the metrics listener: status %d\n%.1000s", st, body)
	}
	if st, _ := get(t, "http://"+metricsAddr+"/healthz"); st != http.StatusNotFound {
		t.Errorf("the metrics listener serves /healthz: status %d, want 404", st)
	}
	if code := stop(); code != 0 {
		t.Errorf("exit code %d", code)
	}
}

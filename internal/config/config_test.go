package config

import (
	"bytes"
	"errors"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const key32 = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="

func serveEnv() map[string]string {
	return map[string]string{
		"SB_PUBLIC_BASE_URL": "https://sb.example.com/", "SB_REDIS_URL": "redis://:pw@redis:6379/0",
		"SB_SECRET_KEY": key32, "SB_JSM_BASE_URL": "https://vendor.atlassian.net", "SB_JSM_EMAIL": "svc@vendor.example",
		"SB_JSM_API_TOKEN": "jsm-token-canary", "SB_JSM_SERVICE_DESK_ID": "10", "SB_JSM_REQUEST_TYPE_ID": "11",
		"SB_JSM_PROJECT_KEY": "SUP", "SB_CONNECT_APP_KEY": "app",
	}
}

func getenv(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestLoadServe(t *testing.T) {
	c, err := Load(ModeServe, getenv(serveEnv()))
	if err != nil {
		t.Fatal(err)
	}
	if c.PublicBaseURL.String() != "https://sb.example.com" {
		t.Errorf("base url = %s, want the trailing slash trimmed", c.PublicBaseURL)
	}
	if len(c.SecretKey.Bytes()) != 32 || c.JSM.APIToken.Reveal() != "jsm-token-canary" || c.ShutdownTimeout != 20*time.Second {
		t.Errorf("unexpected config: %+v", c)
	}
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("config", "effective", c)
	for _, leak := range []string{"jsm-token-canary", key32, ":pw@"} {
		if strings.Contains(buf.String(), leak) {
			t.Errorf("effective config log leaks %q: %s", leak, buf.String())
		}
	}
}

func TestLoadReportsEveryProblemAtOnce(t *testing.T) {
	env := map[string]string{
		"SB_PUBLIC_BASE_URL": "http://sb.example.com", "SB_SHUTDOWN_TIMEOUT": "-1s", "SB_SECRET_KEY": "c2hvcnQ=",
		"SB_JSM_SERVICE_DESK_ID": "ten", "SB_ROLE": "boss", "SB_CONNECT_ALLOWED_HOSTS": "atlassian.net",
		"SB_FORGE_APP_ID": "my-app", "SB_AGENT_OIDC_ISSUER": "https://idp",
	}
	_, err := Load(ModeServe, getenv(env))
	cerr, ok := AsError(err)
	if !ok {
		t.Fatalf("err = %v, want *Error", err)
	}
	joined := strings.Join(cerr.Problems, "\n")
	for _, want := range []string{"SB_PUBLIC_BASE_URL", "must use https", "SB_SHUTDOWN_TIMEOUT", "SB_SECRET_KEY: must be base64 of exactly 32 bytes",
		"SB_REDIS_URL", "SB_JSM_SERVICE_DESK_ID", "SB_ROLE", "SB_CONNECT_ALLOWED_HOSTS", "SB_FORGE_APP_ID", "SB_AGENT_OIDC",
		"SB_JSM_EMAIL is required", "SB_CONNECT_APP_KEY is required"} {
		if !strings.Contains(joined, want) {
			t.Errorf("problems lack %q:\n%s", want, joined)
		}
	}
}

func TestSecretFiles(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "token")
	os.WriteFile(path, []byte("from-file-token\n"), 0o600)
	env := serveEnv()
	delete(env, "SB_JSM_API_TOKEN")
	env["SB_JSM_API_TOKEN_FILE"] = path
	c, err := Load(ModeServe, getenv(env))
	if err != nil || c.JSM.APIToken.Reveal() != "from-file-token" {
		t.Fatalf("token from file = %q, %v", c.JSM.APIToken.Reveal(), err)
	}
	env["SB_JSM_API_TOKEN"] = "also-set"
	if _, err := Load(ModeServe, getenv(env)); err == nil || !strings.Contains(err.Error(), "both set") {
		t.Errorf("both X and X_FILE: err = %v", err)
	}
	env = serveEnv()
	env["SB_SECRET_KEY"], env["SB_SECRET_KEY_FILE"] = "", filepath.Join(dir, "missing")
	var cerr *Error
	if _, err := Load(ModeServe, getenv(env)); !errors.As(err, &cerr) {
		t.Errorf("missing secret file: err = %v", err)
	}
}

func TestDevDefaults(t *testing.T) {
	c, err := Load(ModeDev, getenv(map[string]string{"SB_HTTP_ADDR": ":9090"}))
	if err != nil {
		t.Fatal(err)
	}
	if c.PublicBaseURL.String() != "http://localhost:9090" || c.ConnectAppKey == "" {
		t.Errorf("dev defaults: %s %q", c.PublicBaseURL, c.ConnectAppKey)
	}
	if _, err := Load(ModeDev, getenv(map[string]string{"SB_PUBLIC_BASE_URL": "http://127.0.0.1:1"})); err != nil {
		t.Errorf("http on loopback must be allowed: %v", err)
	}
}

func TestMetricsAddr(t *testing.T) {
	env := serveEnv()
	env["SB_METRICS_ADDR"] = "127.0.0.1:9090"
	if c, err := Load(ModeServe, getenv(env)); err != nil || c.MetricsAddr != "127.0.0.1:9090" {
		t.Fatalf("MetricsAddr = %q, %v", c.MetricsAddr, err)
	}
	for _, bad := range []string{"9090", "http://127.0.0.1:9090", ":8080"} {
		env["SB_METRICS_ADDR"] = bad
		if _, err := Load(ModeServe, getenv(env)); err == nil || !strings.Contains(err.Error(), "SB_METRICS_ADDR") {
			t.Errorf("SB_METRICS_ADDR=%q: err = %v, want a problem", bad, err)
		}
	}
}

func TestTrustedProxies(t *testing.T) {
	env := serveEnv()
	if c, err := Load(ModeServe, getenv(env)); err != nil || len(c.TrustedProxies) != 0 {
		t.Fatalf("default TrustedProxies = %v, %v; want none", c.TrustedProxies, err)
	}
	env["SB_TRUSTED_PROXIES"] = "10.0.0.0/8, 192.168.1.10,fd00::/8"
	c, err := Load(ModeServe, getenv(env))
	if err != nil || strings.Join(c.TrustedProxies, " ") != "10.0.0.0/8 192.168.1.10 fd00::/8" {
		t.Fatalf("TrustedProxies = %v, %v", c.TrustedProxies, err)
	}
	env["SB_TRUSTED_PROXIES"] = "10.0.0.0/33,proxy.internal,0.0.0.0/0,::/0"
	_, err = Load(ModeServe, getenv(env))
	cerr, ok := AsError(err)
	if !ok || len(cerr.Problems) != 4 {
		t.Fatalf("err = %v, want four SB_TRUSTED_PROXIES problems", err)
	}
}

// dev mode holds a demo tenant with a known secret: it must not listen on every interface
// unless told to.
func TestDevListensOnLoopback(t *testing.T) {
	c, err := Load(ModeDev, getenv(map[string]string{}))
	if err != nil {
		t.Fatal(err)
	}
	if c.HTTPAddr != "127.0.0.1:8080" || c.PublicBaseURL.String() != "http://localhost:8080" {
		t.Errorf("dev HTTPAddr = %q, base %s; want 127.0.0.1:8080, http://localhost:8080", c.HTTPAddr, c.PublicBaseURL)
	}
	if c, _ := Load(ModeDev, getenv(map[string]string{"SB_HTTP_ADDR": ":9000"})); c.HTTPAddr != ":9000" {
		t.Errorf("SB_HTTP_ADDR ignored in dev: %q", c.HTTPAddr)
	}
	if c, _ := Load(ModeServe, getenv(serveEnv())); c.HTTPAddr != ":8080" {
		t.Errorf("serve HTTPAddr = %q, want :8080", c.HTTPAddr)
	}
}

// The JSM API token and the keys every token is checked with must not travel over plain
// http, except to this machine; dev keeps its local http sandboxes.
func TestServeRequiresHTTPS(t *testing.T) {
	plain := map[string]string{
		"SB_JSM_BASE_URL":        "http://vendor.atlassian.net",
		"SB_CONNECT_KEYS_URL":    "http://keys.example.com",
		"SB_FORGE_JWKS_URL":      "http://forge.example.com/jwks.json",
		"SB_AGENT_OIDC_ISSUER":   "http://idp.example.com",
		"SB_AGENT_OIDC_AUDIENCE": "supportbridge",
		"SB_AGENT_OIDC_JWKS_URL": "http://idp.example.com/jwks",
	}
	env := serveEnv()
	for k, v := range plain {
		env[k] = v
	}
	_, err := Load(ModeServe, getenv(env))
	cerr, ok := AsError(err)
	if !ok {
		t.Fatalf("err = %v, want *Error", err)
	}
	joined := strings.Join(cerr.Problems, "\n")
	for name := range plain {
		if name != "SB_AGENT_OIDC_AUDIENCE" && !strings.Contains(joined, name+": ") {
			t.Errorf("no https problem for %s:\n%s", name, joined)
		}
	}
	if len(cerr.Problems) != 5 {
		t.Errorf("got %d problems, want 5 (all at once):\n%s", len(cerr.Problems), joined)
	}

	for _, host := range []string{"localhost", "127.0.0.1", "127.8.9.10", "[::1]"} {
		env := serveEnv()
		for k, v := range plain {
			if u, err := url.Parse(v); err == nil && u.Host != "" {
				u.Host = host + ":8443"
				v = u.String()
			}
			env[k] = v
		}
		if _, err := Load(ModeServe, getenv(env)); err != nil {
			t.Errorf("http on loopback host %s: %v", host, err)
		}
	}

	if _, err := Load(ModeDev, getenv(plain)); err != nil {
		t.Errorf("dev with http URLs: %v", err)
	}
}

func TestMaxInflightBytes(t *testing.T) {
	c, err := Load(ModeServe, getenv(serveEnv()))
	if err != nil || c.MaxInflightBytes != 64<<20 {
		t.Fatalf("default MaxInflightBytes = %d, %v; want 64 MiB", c.MaxInflightBytes, err)
	}
	env := serveEnv()
	env["SB_MAX_INFLIGHT_BYTES"] = "134217728"
	if c, err := Load(ModeServe, getenv(env)); err != nil || c.MaxInflightBytes != 128<<20 {
		t.Errorf("MaxInflightBytes = %d, %v; want 128 MiB", c.MaxInflightBytes, err)
	}
	for _, bad := range []string{"0", "-1", "64MiB", "1048576"} {
		env["SB_MAX_INFLIGHT_BYTES"] = bad
		if _, err := Load(ModeServe, getenv(env)); err == nil || !strings.Contains(err.Error(), "SB_MAX_INFLIGHT_BYTES") {
			t.Errorf("SB_MAX_INFLIGHT_BYTES=%q: err = %v, want a problem", bad, err)
		}
	}
}

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/supportbridge/supportbridge/internal/redisstore/redistest"
)

func TestMain(m *testing.M) { redistest.Main(m) }

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// waitForLog polls the JSON log for a message and returns its fields.
func waitForLog(t *testing.T, out *syncBuffer, msg string) map[string]any {
	t.Helper()
	// Generous: under -race on a shared 2-core machine, dev's start (Atlassian's specs are
	// loaded twice) has taken over 15 s.
	deadline := time.Now().Add(45 * time.Second)
	for time.Now().Before(deadline) {
		for _, line := range strings.Split(out.String(), "\n") {
			var m map[string]any
			if json.Unmarshal([]byte(line), &m) == nil && m["msg"] == msg {
				return m
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no %q log line; output:\n%s", msg, out.String())
	return nil
}

func startRun(t *testing.T, args []string, env map[string]string) (addr string, out *syncBuffer, stop func() int) {
	t.Helper()
	out = &syncBuffer{}
	var errOut syncBuffer
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	go func() { done <- run(ctx, args, func(k string) string { return env[k] }, out, &errOut) }()
	select {
	case code := <-done:
		cancel()
		t.Fatalf("run exited early with %d: %s %s", code, out.String(), errOut.String())
	default:
	}
	m := waitForLog(t, out, "listening")
	addr = strings.Replace(m["addr"].(string), "[::]", "127.0.0.1", 1)
	stop = func() int {
		cancel()
		select {
		case code := <-done:
			return code
		case <-time.After(30 * time.Second):
			t.Fatal("run did not stop after cancel")
			return -1
		}
	}
	return addr, out, stop
}

func TestServeStartsAndStopsGracefully(t *testing.T) {
	env := map[string]string{
		"SB_HTTP_ADDR":           "127.0.0.1:0",
		"SB_PUBLIC_BASE_URL":     "http://localhost:8080",
		"SB_REDIS_URL":           redistest.URL(t),
		"SB_SECRET_KEY":          "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
		"SB_JSM_BASE_URL":        "https://vendor.atlassian.net",
		"SB_JSM_EMAIL":           "svc@vendor.example",
		"SB_JSM_API_TOKEN":       "jsm-token-canary-123",
		"SB_JSM_SERVICE_DESK_ID": "10",
		"SB_JSM_REQUEST_TYPE_ID": "11",
		"SB_JSM_PROJECT_KEY":     "SUP",
		"SB_CONNECT_APP_KEY":     "app",
	}
	addr, out, stop := startRun(t, []string{"serve", "--role", "api"}, env)
	for _, path := range []string{"/healthz", "/readyz", "/atlassian-connect.json"} {
		resp, err := http.Get("http://" + addr + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Errorf("%s: %d", path, resp.StatusCode)
		}
	}
	if code := stop(); code != 0 {
		t.Errorf("exit code %d", code)
	}
	logs := out.String()
	for _, secret := range []string{"jsm-token-canary-123", env["SB_SECRET_KEY"]} {
		if strings.Contains(logs, secret) {
			t.Errorf("logs contain a secret")
		}
	}
	if !strings.Contains(logs, `"secret_key":"[redacted]"`) || !strings.Contains(logs, `"msg":"stopped"`) {
		t.Errorf("effective config or stop not logged:\n%s", logs)
	}
}

func TestServeReportsAllConfigErrorsAtOnce(t *testing.T) {
	var out, errOut syncBuffer
	code := run(context.Background(), []string{"serve"}, func(k string) string {
		return map[string]string{"SB_PUBLIC_BASE_URL": "ftp://x", "SB_SHUTDOWN_TIMEOUT": "soon", "SB_JSM_BASE_URL": "::"}[k]
	}, &out, &errOut)
	if code != 2 {
		t.Fatalf("exit code %d, want 2", code)
	}
	for _, want := range []string{"SB_SECRET_KEY is required", "SB_REDIS_URL", "SB_PUBLIC_BASE_URL", "SB_SHUTDOWN_TIMEOUT", "SB_JSM_BASE_URL", "SB_CONNECT_APP_KEY"} {
		if !strings.Contains(errOut.String(), want) {
			t.Errorf("stderr lacks %q:\n%s", want, errOut.String())
		}
	}
}

func TestDevInstallsDemoTenant(t *testing.T) {
	addr, out, stop := startRun(t, []string{"dev"}, map[string]string{"SB_HTTP_ADDR": "127.0.0.1:0", "SB_DEV_JSM_ADDR": "127.0.0.1:0"})
	waitForLog(t, out, "demo_tenant_installed")
	if !strings.Contains(out.String(), "embedded_redis_not_durable") {
		t.Error("dev mode did not warn that Redis is not durable")
	}
	resp, err := http.Get("http://" + addr + "/atlassian-connect.json")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("descriptor: %d", resp.StatusCode)
	}
	if code := stop(); code != 0 {
		t.Errorf("exit code %d", code)
	}
}

func TestUnknownCommand(t *testing.T) {
	var out, errOut syncBuffer
	if code := run(context.Background(), []string{"frobnicate"}, func(string) string { return "" }, &out, &errOut); code != 2 {
		t.Errorf("exit code %d, want 2", code)
	}
	if code := run(context.Background(), []string{"version"}, func(string) string { return "" }, &out, &errOut); code != 0 || !strings.Contains(out.String(), "supportbridge") {
		t.Errorf("version: %d %q", code, out.String())
	}
}

// TestBinaryLinksNoTestCode: dev mode embeds the sandboxes, but test helpers stay in their
// own packages, so the binary links neither testing nor net/http/httptest.
func TestBinaryLinksNoTestCode(t *testing.T) {
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("go command not found")
	}
	out, err := exec.Command(gobin, "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, dep := range strings.Fields(string(out)) {
		if dep == "testing" || dep == "net/http/httptest" {
			t.Errorf("the binary links %s", dep)
		}
	}
}

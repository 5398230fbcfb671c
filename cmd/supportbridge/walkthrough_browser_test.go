package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/supportbridge/supportbridge/internal/browsertest"
	"github.com/supportbridge/supportbridge/internal/redisstore/redistest"
)

// devWorld is `supportbridge dev` on free ports with a real Redis, as `make run` starts it.
type devWorld struct {
	*agentWorld
	jsmURL string
	out    *syncBuffer
	creds  map[string]string
}

func startDevWorld(t *testing.T) *devWorld {
	t.Helper()
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp) // dev writes the demo tenant's credentials under os.TempDir()
	env := map[string]string{
		"SB_HTTP_ADDR": "127.0.0.1:0", "SB_DEV_JSM_ADDR": "127.0.0.1:0", "SB_DEV_SITE_ADDR": "127.0.0.1:0",
		"SB_REDIS_URL": redistest.URL(t),
	}
	addr, out, stop := startRun(t, []string{"dev"}, env)
	t.Cleanup(func() { stop() })
	w := &devWorld{agentWorld: &agentWorld{addr: "http://" + addr}, out: out}
	w.siteURL = waitForLog(t, out, "demo_site_listening")["url"].(string)
	w.jsmURL = waitForLog(t, out, "jsm_sandbox_listening")["page"].(string)
	waitForLog(t, out, "demo_tenant_installed")
	b, err := os.ReadFile(filepath.Join(tmp, "supportbridge-dev", "demo-tenant.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &w.creds); err != nil {
		t.Fatal(err)
	}
	w.agentToken, w.adminToken = w.creds["agentToken"], w.creds["adminToken"]
	return w
}

var iframeSrcRE = regexp.MustCompile(`<iframe class="(report|admin)"[^>]* src="([^"]+)"`)

// TestDevHome: /dev frames the real dialog and admin page with tokens that load them, and the
// start-up log tells the walk-through with working links, without printing a token.
func TestDevHome(t *testing.T) {
	w := startDevWorld(t)
	resp, err := http.Get(w.siteURL + "/dev")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(resp.Header.Get("Content-Security-Policy"), "frame-src "+w.addr) {
		t.Fatalf("/dev: %d %v\n%s", resp.StatusCode, resp.Header, page)
	}
	frames := iframeSrcRE.FindAllSubmatch(page, -1)
	if len(frames) != 2 {
		t.Fatalf("/dev frames %d pages, want the dialog and the admin page:\n%s", len(frames), page)
	}
	for _, f := range frames {
		src := strings.ReplaceAll(string(f[2]), "&amp;", "&")
		r, err := http.Get(src)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(r.Body)
		r.Body.Close()
		if r.StatusCode != http.StatusOK || !bytes.Contains(body, []byte("<main")) {
			t.Errorf("the %s frame %s: %d %s", f[1], src, r.StatusCode, body)
		}
	}

	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(w.out.String(), "the walk-through") && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	text := w.out.String()
	for _, want := range []string{w.siteURL + "/dev", w.jsmURL, "export SB_URL=" + w.addr, "demo-tenant.json", "agent access request --ticket SUP-1",
		"agent logs <GRANT-ID>", "agent evidence --ticket SUP-1 --verify", "/dev/support-access?as=admin"} {
		if !strings.Contains(text, want) {
			t.Errorf("the walk-through lacks %q:\n%s", want, text)
		}
	}
	for _, secret := range []string{w.agentToken, w.adminToken, w.creds["sharedSecret"]} {
		if secret == "" || strings.Contains(text, secret) {
			t.Errorf("a secret is in the start-up output (or missing from the dev file)")
		}
	}
	// The shell line the walk-through prints reads the agent token from the dev file.
	line := regexp.MustCompile(`export SB_AGENT_TOKEN="\$\((sed .*)\)"`).FindStringSubmatch(text)
	if line == nil {
		t.Fatalf("no SB_AGENT_TOKEN line in:\n%s", text)
	}
	got, err := exec.Command("sh", "-c", line[1]).Output()
	if err != nil || strings.TrimSpace(string(got)) != w.agentToken {
		t.Errorf("the printed command reads %q (%v), not the agent token", got, err)
	}

	// Only this machine may open the demo site's pages.
	req, _ := http.NewRequest("GET", "/dev", nil)
	req.RemoteAddr = "192.0.2.7:5555"
	if fromLoopback(req) {
		t.Error("a remote client passes the loopback check")
	}
}

// TestDevWalkthroughInBrowser is the README's walk-through in a real Chromium against
// `supportbridge dev`: the widget in /dev files a report with a pasted screenshot, the ticket
// is on the JSM sandbox page, the agent CLI asks for access, the site administrator approves
// in the framed admin page (preview shown), the CLI reads pseudonymised logs, a revoke in the
// page cuts the CLI off, and the evidence pack verifies. axe-core checks every page.
// SB_E2E_SCREENSHOTS=<dir> writes the README's screenshots.
func TestDevWalkthroughInBrowser(t *testing.T) {
	root, node := browsertest.Deps(t)
	w := startDevWorld(t)
	browser := func(phase string, env ...string) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, node, filepath.Join("e2e", "dev-walkthrough.spec.js"))
		cmd.Dir = root
		cmd.Env = append(os.Environ(), append([]string{"SB_E2E_PHASE=" + phase, "SB_E2E_SITE_URL=" + w.siteURL,
			"SB_E2E_JSM_URL=" + w.jsmURL, "SB_E2E_SCREENSHOTS=" + os.Getenv("SB_E2E_SCREENSHOTS")}, env...)...)
		out, err := cmd.CombinedOutput()
		t.Logf("dev-walkthrough.spec.js %s:\n%s", phase, out)
		if err != nil {
			t.Fatalf("browser phase %s failed: %v\nservice output:\n%s", phase, err, w.out.String())
		}
		return string(out)
	}

	// 1, 2: the report, and its ticket on the sandbox page.
	out := browser("report")
	m := regexp.MustCompile(`RESULT (\{.*\})`).FindStringSubmatch(out)
	var res struct{ Ticket, Refused string }
	if m == nil || json.Unmarshal([]byte(m[1]), &res) != nil || res.Ticket == "" {
		t.Fatalf("the widget filed no ticket (refused: %q)", res.Refused)
	}
	w.ticket = res.Ticket
	browser("jsm", "SB_E2E_TICKET="+w.ticket)

	// 3: the agent asks.
	from := time.Now().UTC().AddDate(0, 0, -1).Truncate(24 * time.Hour).Format(time.RFC3339)
	to := time.Now().UTC().Add(-time.Minute).Format(time.RFC3339)
	code, stdout, errOut := w.agent(t, "access", "request", "--ticket", w.ticket, "--reason", "Export fails; need the app logs",
		"--streams", "app,sync", "--from", from, "--to", to, "--duration", "4h", "--json")
	var req struct{ ID, Status string }
	if code != 0 || json.Unmarshal([]byte(stdout), &req) != nil || req.Status != "pending" {
		t.Fatalf("access request: exit %d %s %s", code, stdout, errOut)
	}

	// 4: the site administrator approves in the framed admin page.
	browser("approve", "SB_E2E_REQUEST_ID="+req.ID)

	// 5: the agent reads, personal data pseudonymised.
	code, stdout, errOut = w.agent(t, "grants", "list", "--ticket", w.ticket, "--json")
	var grants []struct{ ID, Status string }
	if code != 0 || json.Unmarshal([]byte(stdout), &grants) != nil || len(grants) != 1 {
		// The list may be wrapped; fall back to finding the id.
		g := regexp.MustCompile(`"id":\s*"([^"]+)"`).FindStringSubmatch(stdout)
		if code != 0 || g == nil {
			t.Fatalf("grants list: exit %d %s %s", code, stdout, errOut)
		}
		grants = []struct{ ID, Status string }{{ID: g[1]}}
	}
	grantID := grants[0].ID
	code, stdout, errOut = w.agent(t, "logs", grantID, "--stream", "app")
	if code != 0 || !strings.Contains(stdout, "demo event") || regexp.MustCompile(`user\d@example\.com`).MatchString(stdout) {
		t.Fatalf("logs: exit %d, %d bytes, stderr %s\n%.400s", code, len(stdout), errOut, stdout)
	}

	// 6: the customer revokes in the page; the agent's next read is cut off.
	browser("revoke", "SB_E2E_REQUEST_ID="+req.ID)
	start := time.Now()
	code, _, errOut = w.agent(t, "logs", grantID, "--stream", "app")
	if code != 4 || !strings.Contains(errOut, "revoked") || time.Since(start) > 5*time.Second {
		t.Errorf("logs after the revoke: exit %d after %s, stderr: %s", code, time.Since(start), errOut)
	}

	// 7: the evidence pack verifies.
	code, stdout, errOut = w.agent(t, "evidence", "--ticket", w.ticket, "--verify")
	if code != 0 || !strings.Contains(stdout, "all checks passed") {
		t.Errorf("evidence --verify: exit %d\n%s\n%s", code, stdout, errOut)
	}
}

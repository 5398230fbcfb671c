package httpapi

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/supportbridge/supportbridge/internal/consent"
)

// TestConsentInBrowser runs e2e/consent.spec.js against the real router: a real Chromium
// opens the consent link the customer received, approves for less time than asked without
// JavaScript, revokes, and axe-core checks the pages. It needs /usr/bin/chromium and the e2e
// Node packages (scripts/ensure-deps.sh installs both); without them it skips, except in CI.
func TestConsentInBrowser(t *testing.T) {
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	missing := ""
	for _, p := range []string{"/usr/bin/chromium", filepath.Join(root, "e2e", "node_modules", "playwright-core"), filepath.Join(root, "e2e", "node_modules", "axe-core")} {
		if _, err := os.Stat(p); err != nil {
			missing = p
		}
	}
	node, err := exec.LookPath("node")
	if err != nil {
		missing = "node"
	}
	if missing != "" {
		msg := "browser test needs " + missing + " (run scripts/ensure-deps.sh)"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}

	ch := newConsentHarness(t)
	id, link := ch.newRequest(aliceToken, func(b map[string]any) { b["duration"] = "72h" })

	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, filepath.Join("e2e", "consent.spec.js"))
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "SB_E2E_URL="+ch.srv.URL+"/consent/"+link)
	out, err := cmd.CombinedOutput()
	t.Logf("consent.spec.js:\n%s", out)
	if err != nil {
		t.Fatalf("browser test failed: %v", err)
	}

	// What the browser did is what the service recorded.
	req, err := ch.svc.GetRequest(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	if req.Status != consent.RequestApproved || req.Duration.String() != "24h" {
		t.Errorf("request after the browser approved: status %s, duration %s; want approved for 24h", req.Status, req.Duration)
	}
	g, err := ch.svc.GetGrant(t.Context(), req.GrantID)
	if err != nil {
		t.Fatal(err)
	}
	if g.Status != consent.GrantRevoked || g.EndReason != consent.ReasonRevokedByCustomer {
		t.Errorf("grant after the browser revoked: %s %s", g.Status, g.EndReason)
	}
	ch.checkNoTokenLeak(t)
}

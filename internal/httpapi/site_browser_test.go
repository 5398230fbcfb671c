package httpapi

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/supportbridge/supportbridge/internal/browsertest"
	"github.com/supportbridge/supportbridge/internal/consent"
)

// TestSiteAdminPageInBrowser runs e2e/site-admin.spec.js against the real router: a real
// Chromium opens a stand-in of the customer's Jira site that frames the Connect admin page
// (loaded with an exact-qsh JWT, as Atlassian does), checks the preview, approves for less
// time than asked, approves a second request with the keyboard only, and axe-core checks the
// page. What the browser did is then checked against what the service recorded.
func TestSiteAdminPageInBrowser(t *testing.T) {
	root, node := browsertest.Deps(t)
	ch := newConsentHarness(t)
	id, _ := ch.newRequest(aliceToken, func(b map[string]any) { b["duration"] = "72h" })
	id2, _ := ch.newRequest(aliceToken, nil)

	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, filepath.Join("e2e", "site-admin.spec.js"))
	cmd.Dir = root
	cmd.Env = append(os.Environ(),
		"SB_E2E_ADMIN_URL="+ch.srv.URL+ch.pageURL(siteAdminAccount, "", nil),
		"SB_E2E_REQUEST_ID="+id, "SB_E2E_REQUEST_ID2="+id2,
		"SB_E2E_HOST_ORIGIN="+siteURL, "SB_E2E_ADMIN_ACCOUNT_ID="+siteAdminAccount, "SB_E2E_DURATION=4h")
	out, err := cmd.CombinedOutput()
	t.Logf("site-admin.spec.js:\n%s", out)
	if err != nil {
		t.Fatalf("browser test failed: %v\nserver log:\n%s", err, ch.logs.String())
	}
	for _, c := range []struct {
		id, duration string
	}{{id, "4h"}, {id2, ""}} {
		r, err := ch.svc.GetRequest(t.Context(), c.id)
		if err != nil {
			t.Fatal(err)
		}
		if r.Status != consent.RequestApproved || r.DecidedBy.AccountID != siteAdminAccount || (c.duration != "" && r.Duration.String() != c.duration) {
			t.Errorf("request %s after the browser: %s for %s by %+v", c.id, r.Status, r.Duration, r.DecidedBy)
		}
	}
}

// TestForgeAdminPageInBrowser builds the Forge Custom UI with @forge/bridge stood in and runs
// e2e/forge-admin.spec.js: the same page through the bridge transport.
func TestForgeAdminPageInBrowser(t *testing.T) {
	root, node := browsertest.Deps(t)
	if _, err := os.Stat(filepath.Join(root, "forge", "static", "site-admin", "node_modules", "esbuild")); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("the Forge UI needs its Node packages (run scripts/ensure-deps.sh)")
		}
		t.Skip("the Forge UI needs its Node packages (run scripts/ensure-deps.sh)")
	}
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, filepath.Join("e2e", "forge-admin.spec.js"))
	cmd.Dir = root
	out, err := cmd.CombinedOutput()
	t.Logf("forge-admin.spec.js:\n%s", out)
	if err != nil {
		t.Fatalf("browser test failed: %v", err)
	}
}

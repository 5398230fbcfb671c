package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/supportbridge/supportbridge/internal/config"
)

// walkthrough prints, once the demo tenant is installed, the story of the README in seven
// numbered steps with working links and CLI lines, so that `make run` shows what the service
// is for. The agent token stays in the private dev file: the CLI lines read it from there,
// so it never reaches the log.
func walkthrough(ctx context.Context, w io.Writer, cfg config.Config, serviceAddr, siteURL string) {
	since := time.Now().Add(-time.Second)
	creds := filepath.Join(os.TempDir(), "supportbridge-dev", "demo-tenant.json")
	// installDemoTenant writes the file after the install answered; a file from an earlier
	// run is older than this call.
	for {
		if fi, err := os.Stat(creds); err == nil && fi.ModTime().After(since) {
			break
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(100 * time.Millisecond):
		}
		if time.Since(since) > 30*time.Second {
			return // the install failed, and said so in the log
		}
	}
	b, _ := os.ReadFile(creds)
	hasAgent := strings.Contains(string(b), `"agentToken"`)
	fmt.Fprint(w, walkthroughText(cfg, "http://"+loopbackAddr(serviceAddr)+cfg.PublicBaseURL.Path, siteURL, creds, hasAgent, time.Now()))
}

// walkthroughText is the text walkthrough prints.
func walkthroughText(cfg config.Config, service, site, creds string, hasAgentToken bool, now time.Time) string {
	jsm := "(the JSM sandbox is off: SB_JSM_BASE_URL points at a real desk)"
	if cfg.JSM.BaseURL != nil {
		jsm = strings.TrimRight(cfg.JSM.BaseURL.String(), "/") + "/"
	}
	from := now.UTC().AddDate(0, 0, -1).Truncate(24 * time.Hour).Format(time.RFC3339)
	to := now.UTC().Truncate(time.Minute).Format(time.RFC3339) // the service reads only time that has passed
	token := fmt.Sprintf(`export SB_AGENT_TOKEN="$(sed -n 's/.*"agentToken": "\([^"]*\)".*/\1/p' %s)"`, creds)
	if !hasAgentToken {
		token = "export SB_AGENT_TOKEN=<your agent token>   # SB_AGENT_TOKENS_FILE or OIDC is configured, so dev made none"
	}
	var b strings.Builder
	fmt.Fprintf(&b, `
──── supportbridge dev: the walk-through ─────────────────────────────────────────
 The demo site (%s) is played at %s/dev.
 In another terminal, for the agent's steps:
   export SB_URL=%s
   %s
   alias sb='go run ./cmd/supportbridge'

 1  Report a problem with a screenshot: open %s/dev, paste a screenshot (Ctrl+V)
    into "Report a problem" and send. The dialog shows the ticket key when it exists.
 2  See the ticket, raised on behalf of Sam, in the JSM sandbox: %s
 3  Ask the customer for log access on that ticket (SUP-1 for the first report):
      sb agent access request --ticket SUP-1 --reason "Export fails; need the app logs" \
        --streams app,sync --from %s --to %s --duration 4h
 4  Approve it as the site administrator in %s/dev ("Support access", preview shown)
    (or alone: %s/dev/support-access?as=admin)
 5  Read the logs (personal data pseudonymised unless the customer allowed it):
      sb agent grants list --ticket SUP-1
      sb agent logs <GRANT-ID> --progress
 6  Revoke in the admin page, or: sb agent grants revoke <GRANT-ID>
    A running "sb agent logs" stops within a second and says why (exit code 4).
 7  Check the evidence pack and its hash chain:
      sb agent evidence --ticket SUP-1 --verify
──────────────────────────────────────────────────────────────────────────────────

`, strings.TrimPrefix(devBaseURL, "https://"), site, service, token, site, jsm, from, to, site, site)
	return b.String()
}

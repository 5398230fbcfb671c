package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/supportbridge/supportbridge/internal/browsertest"
	"github.com/supportbridge/supportbridge/internal/connect"
)

// dialogURL is the report dialog's URL as Atlassian opens it: a page-load token with the qsh
// of this exact URL, signed with the tenant's secret.
func dialogURL(t *testing.T, base, clientKey, secret, account string) string {
	t.Helper()
	u := &url.URL{Path: connect.PathReportDialog, RawQuery: "lic=none&xdm_e=https%3A%2F%2Fcustomer-site.atlassian.net"}
	tok := contextToken(t, clientKey, secret, account, func(c jwt.MapClaims) {
		c["qsh"] = connect.QSH(http.MethodGet, u, "")
		c["exp"] = time.Now().Add(10 * time.Minute).Unix()
	})
	return base + u.String() + "&jwt=" + url.QueryEscape(tok)
}

// TestReportDialogPage: the dialog is the widget, under a strict CSP, framed by the site only
// (and by local pages on a loopback base URL), with a context token only on loopback.
func TestReportDialogPage(t *testing.T) {
	h := newHarness(t)
	h.install("client-dialog", secretA)
	target := dialogURL(t, "", "client-dialog", secretA, "557058:dialog")
	st, hdr, body := h.do("GET", target, nil, nil)
	if st != http.StatusOK {
		t.Fatalf("dialog: %d %s", st, body)
	}
	csp := hdr.Get("Content-Security-Policy")
	for _, want := range []string{"default-src 'none'", "script-src 'self' https://connect-cdn.atl-paas.net;", "style-src 'self';", "frame-ancestors https://*.atlassian.net", "http://127.0.0.1:*"} {
		if !strings.Contains(csp, want) {
			t.Errorf("CSP %q lacks %q", csp, want)
		}
	}
	if strings.Contains(csp, "unsafe-inline") || hdr.Get("X-Frame-Options") != "" || hdr.Get("Cache-Control") != "no-store" {
		t.Errorf("headers: %v", hdr)
	}
	page := string(body)
	if strings.Contains(page, "<script>") || strings.Contains(page, "style=") {
		t.Errorf("inline script or style in the page:\n%s", page)
	}
	if strings.Contains(page, "connect-cdn.atl-paas.net") {
		t.Errorf("a loopback run loads all.js, which cannot load here:\n%s", page)
	}
	// The page's context token is a context token of the page's user and tenant.
	i := strings.Index(page, `name="sb-context-token" content="`)
	if i < 0 {
		t.Fatalf("no context token in the local page:\n%s", page)
	}
	tok := page[i+len(`name="sb-context-token" content="`):]
	tok = tok[:strings.IndexByte(tok, '"')]
	st, _, b := h.do("GET", "/api/v1/reports/r_00000000000000000000000000000000", map[string]string{"Authorization": "JWT " + tok}, nil)
	if st != http.StatusNotFound {
		t.Errorf("the page's context token on an app route: %d %s (want 404 for an unknown report)", st, b)
	}
	// Every script and style the page names is served, long-cached, with its type.
	for _, name := range []string{"connect.js", "widget.js", "widget.css"} {
		st, hdr, _ := h.do("GET", h.server.widget.url(name), nil, nil)
		if st != http.StatusOK || !strings.Contains(hdr.Get("Cache-Control"), "immutable") || hdr.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("%s: %d %v", name, st, hdr)
		}
		if name != "widget.js" && !strings.Contains(page, h.server.widget.url(name)) {
			t.Errorf("page does not load %s", h.server.widget.url(name))
		}
	}
	// A token for another URL is refused.
	other := strings.Replace(target, "lic=none", "lic=active", 1)
	if st, _, _ := h.do("GET", other, nil, nil); st != http.StatusUnauthorized {
		t.Errorf("a token with another qsh: %d", st)
	}
}

// TestReportWidgetInBrowser runs e2e/report-widget.spec.js against the real router, Redis,
// delivery worker and JSM sandbox: the site frames the dialog, a report with a pasted
// screenshot and the opted-in errors is filed once despite a double click and a lost answer,
// another is filed with the keyboard only, refusals are worded for a person, and axe-core
// checks each state. The desk is then checked for exactly those two tickets.
func TestReportWidgetInBrowser(t *testing.T) {
	root, node := browsertest.Deps(t)
	rh := newReportHarness(t, nil)
	rh.install("client-widget", secretA)
	rh.emails.setEmail("reporter@customer.example")

	ctx, cancel := context.WithTimeout(t.Context(), 4*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, filepath.Join("e2e", "report-widget.spec.js"))
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "SB_E2E_DIALOG_URL="+dialogURL(t, rh.srv.URL, "client-widget", secretA, "557058:reporter"),
		"SB_E2E_SCREENSHOTS="+os.Getenv("SB_E2E_SCREENSHOTS"))
	out, err := cmd.CombinedOutput()
	t.Logf("report-widget.spec.js:\n%s", out)
	if err != nil {
		t.Fatalf("browser test failed: %v\nserver log:\n%s", err, rh.logs.String())
	}
	var res struct{ Main, Keyboard, MainTicket, KeyboardTicket string }
	if i := bytes.LastIndex(out, []byte("RESULT ")); i >= 0 {
		line, _, _ := bytes.Cut(out[i+len("RESULT "):], []byte("\n"))
		if err := json.Unmarshal(line, &res); err != nil {
			t.Fatal(err)
		}
	}
	bySummary := map[string]int{}
	for _, r := range rh.sandbox.Requests() {
		bySummary[r.Summary]++
		switch r.Summary {
		case res.Main:
			if r.Key != res.MainTicket {
				t.Errorf("the dialog showed %s, the desk has %s", res.MainTicket, r.Key)
			}
			png := false
			for _, a := range r.Attachments {
				png = png || strings.HasPrefix(a.Filename, "screenshot-") && a.MediaType == "image/png" && a.Size > 0
			}
			if !png {
				t.Errorf("the pasted screenshot is not on %s: %+v", r.Key, r.Attachments)
			}
		case res.Keyboard:
			if r.Key != res.KeyboardTicket {
				t.Errorf("the dialog showed %s, the desk has %s", res.KeyboardTicket, r.Key)
			}
		}
	}
	if res.Main == "" || bySummary[res.Main] != 1 || bySummary[res.Keyboard] != 1 || len(bySummary) != 2 {
		t.Errorf("tickets by summary = %v, want one each of %q and %q and nothing else", bySummary, res.Main, res.Keyboard)
	}
	// The opted-in errors travelled with the report.
	var sawErrors bool
	for _, b := range rh.sandbox.AllBodies() {
		sawErrors = sawErrors || bytes.Contains(b, []byte("widget 42 exploded"))
	}
	if !sawErrors {
		t.Error("the opted-in recent errors are not in what reached the desk")
	}
}

// TestForgeReportWidgetInBrowser builds the Forge Custom UI of "Report a problem" with
// @forge/bridge stood in and runs e2e/forge-report-widget.spec.js: the same widget through
// the requestRemote transport.
func TestForgeReportWidgetInBrowser(t *testing.T) {
	root, node := browsertest.Deps(t)
	if _, err := os.Stat(filepath.Join(root, "forge", "static", "report-widget", "node_modules", "esbuild")); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("the Forge UI needs its Node packages (run scripts/ensure-deps.sh)")
		}
		t.Skip("the Forge UI needs its Node packages (run scripts/ensure-deps.sh)")
	}
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, filepath.Join("e2e", "forge-report-widget.spec.js"))
	cmd.Dir = root
	out, err := cmd.CombinedOutput()
	t.Logf("forge-report-widget.spec.js:\n%s", out)
	if err != nil {
		t.Fatalf("browser test failed: %v", err)
	}
}

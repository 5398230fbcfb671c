package httpapi

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/supportbridge/supportbridge/internal/tenant"
)

const secretA = "tenant-a-shared-secret-0123456789"

func TestInstallStoresTenantAndUninstallStopsTokens(t *testing.T) {
	h := newHarness(t)
	h.install("client-a", secretA)

	got, err := h.tenants.Lookup(context.Background(), "client-a")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"BaseURL": siteURL, "DisplayURL": siteURL, "ProductType": "jira", "Description": "Acme Jira",
		"ServiceEntitlementNumber": "SEN-1", "EntitlementID": "ent-1", "EntitlementNumber": "E-1",
		"OAuthClientID": "oauth-1", "InstallationID": "ari:cloud:ecosystem::installation/inst-client-a",
		"CloudID": "cloud-client-a", "Key": testAppKey,
	}
	gotFields := map[string]string{
		"BaseURL": got.BaseURL, "DisplayURL": got.DisplayURL, "ProductType": got.ProductType, "Description": got.Description,
		"ServiceEntitlementNumber": got.ServiceEntitlementNumber, "EntitlementID": got.EntitlementID,
		"EntitlementNumber": got.EntitlementNumber, "OAuthClientID": got.OAuthClientID,
		"InstallationID": got.InstallationID, "CloudID": got.CloudID, "Key": got.Key,
	}
	for k, v := range want {
		if gotFields[k] != v {
			t.Errorf("tenant %s = %q, want %q", k, gotFields[k], v)
		}
	}
	if got.SharedSecret.Reveal() != secretA || !got.Installed || !got.Enabled {
		t.Errorf("tenant not installed with its secret: %+v", got)
	}

	tok := contextToken(t, "client-a", secretA, "acct-1", nil)
	if st, _, body := h.do("GET", "/api/v1/reports/r1", map[string]string{"Authorization": "JWT " + tok}, nil); st != http.StatusNotFound {
		t.Fatalf("authenticated GET: status %d (%s), want 404", st, body)
	}

	un := h.installToken("POST", "/connect/uninstalled", "client-a", nil)
	body := installBody("client-a", "", func(m map[string]any) { m["eventType"] = "uninstalled"; delete(m, "sharedSecret") })
	if st, _, b := h.do("POST", "/connect/uninstalled", map[string]string{"Authorization": "JWT " + un}, body); st != http.StatusNoContent {
		t.Fatalf("uninstall: status %d (%s)", st, b)
	}
	st, hdr, b := h.do("GET", "/api/v1/reports/r1", map[string]string{"Authorization": "JWT " + tok}, nil)
	if st != http.StatusUnauthorized {
		t.Fatalf("token after uninstall: status %d, want 401", st)
	}
	if p := decodeProblem(t, hdr, b); !strings.Contains(p.Detail, "uninstalled") {
		t.Errorf("detail = %q, want it to say uninstalled", p.Detail)
	}

	// Reinstalling brings the tenant back with its new secret; the old secret no longer works.
	h.install("client-a", "a-brand-new-secret-value-xyz123")
	if st, _, _ := h.do("GET", "/api/v1/reports/r1", map[string]string{"Authorization": "JWT " + tok}, nil); st != http.StatusUnauthorized {
		t.Errorf("old-secret token after reinstall: status %d, want 401", st)
	}
	tok2 := contextToken(t, "client-a", "a-brand-new-secret-value-xyz123", "acct-1", nil)
	if st, _, _ := h.do("GET", "/api/v1/reports/r1", map[string]string{"Authorization": "JWT " + tok2}, nil); st != http.StatusNotFound {
		t.Errorf("new-secret token after reinstall: status %d, want 404", st)
	}
}

func TestSignedInstallRejections(t *testing.T) {
	h := newHarness(t)
	body := installBody("client-b", secretA, nil)
	cases := []struct {
		name   string
		token  func() string
		body   []byte
		status int
		detail string
	}{
		{"hs256", func() string {
			return h.installToken("POST", "/connect/installed", "client-b", func(_ jwt.MapClaims, tok *jwt.Token) {
				tok.Method = jwt.SigningMethodHS256
				tok.Header["alg"] = "HS256"
			})
		}, body, 401, "RS256"},
		{"none", func() string {
			return h.installToken("POST", "/connect/installed", "client-b", func(_ jwt.MapClaims, tok *jwt.Token) { tok.Method = jwt.SigningMethodNone; tok.Header["alg"] = "none" })
		}, body, 401, "RS256"},
		{"missing kid", func() string {
			return h.installToken("POST", "/connect/installed", "client-b", func(_ jwt.MapClaims, tok *jwt.Token) { delete(tok.Header, "kid") })
		}, body, 401, "kid"},
		{"path traversal kid", func() string {
			return h.installToken("POST", "/connect/installed", "client-b", func(_ jwt.MapClaims, tok *jwt.Token) { tok.Header["kid"] = "../admin" })
		}, body, 401, "kid"},
		{"unknown kid", func() string {
			return h.installToken("POST", "/connect/installed", "client-b", func(_ jwt.MapClaims, tok *jwt.Token) { tok.Header["kid"] = "other" })
		}, body, 401, "kid"},
		{"wrong aud", func() string {
			return h.installToken("POST", "/connect/installed", "client-b", func(c jwt.MapClaims, _ *jwt.Token) { c["aud"] = "https://evil.example" })
		}, body, 401, "audience"},
		{"iss differs from body clientKey", func() string {
			return h.installToken("POST", "/connect/installed", "client-other", nil)
		}, body, 401, "issuer"},
		{"wrong qsh", func() string {
			return h.installToken("POST", "/connect/installed", "client-b", func(c jwt.MapClaims, _ *jwt.Token) { c["qsh"] = "context-qsh" })
		}, body, 401, "qsh"},
		{"expired beyond leeway", func() string {
			return h.installToken("POST", "/connect/installed", "client-b", func(c jwt.MapClaims, _ *jwt.Token) { c["exp"] = time.Now().Add(-time.Minute).Unix() })
		}, body, 401, "expired"},
		{"missing exp", func() string {
			return h.installToken("POST", "/connect/installed", "client-b", func(c jwt.MapClaims, _ *jwt.Token) { delete(c, "exp") })
		}, body, 401, "exp"},
		{"missing authorization", func() string { return "" }, body, 401, ""},
		{"disallowed baseUrl", func() string { return h.installToken("POST", "/connect/installed", "client-b", nil) },
			installBody("client-b", secretA, func(m map[string]any) { m["baseUrl"] = "https://evil.example.com" }), 400, ""},
		{"http baseUrl", func() string { return h.installToken("POST", "/connect/installed", "client-b", nil) },
			installBody("client-b", secretA, func(m map[string]any) { m["baseUrl"] = "http://acme.atlassian.net" }), 400, ""},
		{"suffix trick baseUrl", func() string { return h.installToken("POST", "/connect/installed", "client-b", nil) },
			installBody("client-b", secretA, func(m map[string]any) { m["baseUrl"] = "https://acme.atlassian.net.evil.com" }), 400, ""},
		{"wrong app key", func() string { return h.installToken("POST", "/connect/installed", "client-b", nil) },
			installBody("client-b", secretA, func(m map[string]any) { m["key"] = "other-app" }), 400, ""},
		{"missing shared secret", func() string { return h.installToken("POST", "/connect/installed", "client-b", nil) },
			installBody("client-b", secretA, func(m map[string]any) { delete(m, "sharedSecret") }), 400, ""},
		{"malformed json", func() string { return h.installToken("POST", "/connect/installed", "client-b", nil) },
			[]byte(`{"clientKey": "client-b",`), 400, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			hdrs := map[string]string{}
			if tok := tc.token(); tok != "" {
				hdrs["Authorization"] = "JWT " + tok
			}
			st, hdr, b := h.do("POST", "/connect/installed", hdrs, tc.body)
			if st != tc.status {
				t.Fatalf("status = %d (%s), want %d", st, b, tc.status)
			}
			p := decodeProblem(t, hdr, b)
			if tc.detail != "" && !strings.Contains(p.Detail, tc.detail) {
				t.Errorf("detail = %q, want it to mention %q", p.Detail, tc.detail)
			}
			if tc.status == 400 && tc.name != "malformed json" && len(p.Errors) == 0 {
				t.Errorf("400 without field errors: %+v", p)
			}
		})
	}
	if _, err := h.tenants.Lookup(context.Background(), "client-b"); !errors.Is(err, tenant.ErrNotFound) {
		t.Errorf("a rejected install stored a tenant: err = %v", err)
	}
}

func TestInstallKeyServerDownIs503(t *testing.T) {
	h := newHarness(t)
	tok := h.installToken("POST", "/connect/installed", "client-c", nil)
	h.keyServer.Close()
	st, hdr, b := h.do("POST", "/connect/installed", map[string]string{"Authorization": "JWT " + tok}, installBody("client-c", secretA, nil))
	if st != http.StatusServiceUnavailable {
		t.Fatalf("status = %d (%s), want 503", st, b)
	}
	decodeProblem(t, hdr, b)
	if hdr.Get("Retry-After") == "" {
		t.Error("503 without Retry-After")
	}
}

func TestMalformedJSONGivesPosition(t *testing.T) {
	h := newHarness(t)
	tok := h.installToken("POST", "/connect/installed", "client-d", nil)
	st, hdr, b := h.do("POST", "/connect/installed", map[string]string{"Authorization": "JWT " + tok}, []byte(`{"clientKey": x}`))
	if st != http.StatusBadRequest {
		t.Fatalf("status = %d, want 400", st)
	}
	if p := decodeProblem(t, hdr, b); !strings.Contains(p.Detail, "offset 15") {
		t.Errorf("detail = %q, want the byte offset 15", p.Detail)
	}
	st, hdr, b = h.do("POST", "/connect/installed", map[string]string{"Authorization": "JWT " + tok}, []byte(`{"clientKey": 5}`))
	if st != http.StatusBadRequest {
		t.Fatalf("status = %d, want 400", st)
	}
	if p := decodeProblem(t, hdr, b); len(p.Errors) != 1 || p.Errors[0].Field != "/clientKey" {
		t.Errorf("errors = %+v, want one for /clientKey", p.Errors)
	}
}

func TestOversizedAndWrongContentType(t *testing.T) {
	h := newHarness(t)
	big := []byte(`{"clientKey":"` + strings.Repeat("a", 70000) + `"}`)
	st, hdr, b := h.do("POST", "/connect/installed", nil, big)
	if st != http.StatusRequestEntityTooLarge {
		t.Fatalf("oversized: status %d, want 413", st)
	}
	decodeProblem(t, hdr, b)

	// Without a Content-Length the limit still holds while reading.
	req, _ := http.NewRequest("POST", h.srv.URL+"/connect/installed", strings.NewReader(string(big)))
	req.ContentLength = -1
	req.Header.Set("Content-Type", "application/json")
	resp, err := h.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("chunked oversized: status %d, want 413", resp.StatusCode)
	}

	st, hdr, b = h.do("POST", "/connect/installed", map[string]string{"Content-Type": "text/plain"}, []byte("{}"))
	if st != http.StatusUnsupportedMediaType {
		t.Fatalf("text/plain: status %d, want 415", st)
	}
	decodeProblem(t, hdr, b)
}

func TestEnabledDisabledUseTenantSecret(t *testing.T) {
	h := newHarness(t)
	h.install("client-e", secretA)
	qshToken := func(path, secret string) string {
		return contextToken(t, "client-e", secret, "", func(c jwt.MapClaims) { c["qsh"] = qshOf("POST", path) })
	}
	body := installBody("client-e", "", func(m map[string]any) { delete(m, "sharedSecret"); m["eventType"] = "disabled" })
	if st, _, b := h.do("POST", "/connect/disabled", map[string]string{"Authorization": "JWT " + qshToken("/connect/disabled", "wrong-secret-wrong-secret")}, body); st != 401 {
		t.Fatalf("disabled with wrong secret: %d (%s)", st, b)
	}
	if st, _, b := h.do("POST", "/connect/disabled", map[string]string{"Authorization": "JWT " + qshToken("/connect/enabled", secretA)}, body); st != 401 {
		t.Fatalf("disabled with another route's qsh: %d (%s)", st, b)
	}
	if st, _, b := h.do("POST", "/connect/disabled", map[string]string{"Authorization": "JWT " + qshToken("/connect/disabled", secretA)}, body); st != 204 {
		t.Fatalf("disabled: %d (%s)", st, b)
	}
	if tn, _ := h.tenants.Lookup(context.Background(), "client-e"); tn.Enabled {
		t.Error("tenant still enabled")
	}
	if st, _, b := h.do("POST", "/connect/enabled", map[string]string{"Authorization": "JWT " + qshToken("/connect/enabled", secretA)}, body); st != 204 {
		t.Fatalf("enabled: %d (%s)", st, b)
	}
	if tn, _ := h.tenants.Lookup(context.Background(), "client-e"); !tn.Enabled {
		t.Error("tenant not enabled")
	}
}

func TestReportDialogNeedsExactQSH(t *testing.T) {
	h := newHarness(t)
	h.install("client-f", secretA)
	path := "/connect/report-dialog?lic=none&xdm_e=https%3A%2F%2Facme.atlassian.net&cp=&tz=Europe%2FBerlin"
	good := contextToken(t, "client-f", secretA, "acct-9", func(c jwt.MapClaims) { c["qsh"] = qshOf("GET", path) })
	st, hdr, b := h.do("GET", path+"&jwt="+good, nil, nil)
	if st != http.StatusOK || !strings.Contains(string(b), "Report a problem") {
		t.Fatalf("dialog: status %d, body %.200s", st, b)
	}
	if csp := hdr.Get("Content-Security-Policy"); !strings.Contains(csp, "frame-ancestors https://*.atlassian.net") {
		t.Errorf("dialog CSP = %q: Atlassian must be allowed to frame it", csp)
	}
	if st, _, _ := h.do("GET", path+"&tz=UTC&jwt="+good, nil, nil); st != http.StatusUnauthorized {
		t.Errorf("changed query: status %d, want 401", st)
	}
	ctxTok := contextToken(t, "client-f", secretA, "acct-9", nil)
	if st, _, _ := h.do("GET", path+"&jwt="+ctxTok, nil, nil); st != http.StatusUnauthorized {
		t.Errorf("context-qsh token on a module URL: status %d, want 401", st)
	}
	if st, _, _ := h.do("GET", "/connect/report-dialog", nil, nil); st != http.StatusUnauthorized {
		t.Errorf("no token: status %d, want 401", st)
	}
}

// TestInstallFieldErrorsArePointers: the service's field paths reach the caller as JSON
// pointers, all at once.
func TestInstallFieldErrorsArePointers(t *testing.T) {
	h := newHarness(t)
	tok := h.installToken("POST", "/connect/installed", "client-g", nil)
	body := installBody("client-g", "short", func(m map[string]any) { m["key"] = "other"; m["baseUrl"] = "http://acme.atlassian.net" })
	st, hdr, b := h.do("POST", "/connect/installed", map[string]string{"Authorization": "JWT " + tok}, body)
	if st != http.StatusBadRequest {
		t.Fatalf("status %d (%s), want 400", st, b)
	}
	var got []string
	for _, fe := range decodeProblem(t, hdr, b).Errors {
		got = append(got, fe.Field)
	}
	if want := []string{"/key", "/baseUrl", "/sharedSecret"}; strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("fields = %v, want %v", got, want)
	}
}

package httpapi

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/supportbridge/supportbridge/internal/connect"
)

func qshOf(method, path string) string {
	u, _ := url.Parse(path)
	return connect.QSH(method, u, "")
}

func TestAppAuthProblems(t *testing.T) {
	h := newHarness(t)
	h.install("client-g", secretA)
	h.install("client-gone", secretA)
	un := h.installToken("POST", "/connect/uninstalled", "client-gone", nil)
	if st, _, b := h.do("POST", "/connect/uninstalled", map[string]string{"Authorization": "JWT " + un}, installBody("client-gone", "", nil)); st != 204 {
		t.Fatalf("uninstall: %d %s", st, b)
	}
	cases := []struct {
		name   string
		auth   string
		status int
		detail string
	}{
		{"missing", "", 401, "context token"},
		{"garbled", "JWT not.a.token", 401, "malformed"},
		{"scheme only", "JWT", 401, "no token"},
		{"unknown scheme", "Basic dXNlcjpwYXNz", 401, "Unsupported"},
		{"unknown tenant", "JWT " + contextToken(t, "nobody", secretA, "a", nil), 401, "Unknown tenant"},
		{"uninstalled tenant", "JWT " + contextToken(t, "client-gone", secretA, "a", nil), 401, "uninstalled"},
		{"expired", "JWT " + contextToken(t, "client-g", secretA, "a", func(c jwt.MapClaims) { c["exp"] = time.Now().Add(-2 * time.Minute).Unix() }), 401, "expired"},
		{"wrong qsh", "JWT " + contextToken(t, "client-g", secretA, "a", func(c jwt.MapClaims) { c["qsh"] = qshOf("GET", "/api/v1/reports/x") }), 401, "qsh"},
		{"wrong secret", "JWT " + contextToken(t, "client-g", "another-secret-entirely-000", "a", nil), 401, "signature"},
		{"forge not configured", "Bearer abc.def.ghi", 401, "Forge"},
		{"valid", "JWT " + contextToken(t, "client-g", secretA, "a", nil), 404, "No report"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			st, hdr, b := h.do("GET", "/api/v1/reports/x", map[string]string{"Authorization": tc.auth}, nil)
			if st != tc.status {
				t.Fatalf("status = %d (%s), want %d", st, b, tc.status)
			}
			if p := decodeProblem(t, hdr, b); !strings.Contains(p.Detail, tc.detail) {
				t.Errorf("detail = %q, want it to mention %q", p.Detail, tc.detail)
			}
		})
	}
}

func TestLogsNeverHoldTokens(t *testing.T) {
	h := newHarness(t)
	h.install("client-h", secretA)
	tok := contextToken(t, "client-h", secretA, "acct", nil)
	h.do("GET", "/api/v1/reports/abc", map[string]string{"Authorization": "JWT " + tok}, nil)
	h.do("GET", "/connect/report-dialog?jwt="+tok, nil, nil)
	h.do("GET", "/no/such/route?jwt="+tok+"&token=zzz-secret", nil, nil)
	logs := h.logs.String()
	for _, bad := range []string{tok, secretA, "zzz-secret", "Authorization"} {
		if strings.Contains(logs, bad) {
			t.Errorf("logs contain %q", bad[:min(len(bad), 20)])
		}
	}
	if !strings.Contains(logs, `"route":"/api/v1/reports/:id"`) {
		t.Errorf("access log lacks the route template:\n%s", logs)
	}
	_ = http.StatusOK
}

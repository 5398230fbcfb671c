package sitesandbox_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/supportbridge/supportbridge/internal/sitesandbox"
	"github.com/supportbridge/supportbridge/internal/sitesandbox/sitetest"
)

// TestSpecValidation checks that calls Atlassian's spec does not allow are refused and
// recorded, whatever the site's own handlers would have done with them.
func TestSpecValidation(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, method, path, body string
		wantStatus               int
		wantViolation            string // substring
	}{
		{
			name: "globalPermissions not an array", method: "POST", path: "/rest/api/3/permissions/check",
			body: `{"accountId":"` + adminID + `","globalPermissions":"ADMINISTER"}`, wantStatus: 400,
			wantViolation: "POST /rest/api/3/permissions/check: request body has an error",
		},
		{
			name: "misspelt property", method: "POST", path: "/rest/api/3/permissions/check",
			body: `{"accountID":"` + adminID + `","globalPermissions":["ADMINISTER"]}`, wantStatus: 400,
			wantViolation: "accountID",
		},
		{
			name: "duplicate permission", method: "POST", path: "/rest/api/3/permissions/check",
			body: `{"accountId":"` + adminID + `","globalPermissions":["ADMINISTER","ADMINISTER"]}`, wantStatus: 400,
			wantViolation: "request body has an error",
		},
		{
			name: "no body", method: "POST", path: "/rest/api/3/permissions/check", wantStatus: 400,
			wantViolation: "request body has an error",
		},
		{
			name: "email without accountId", method: "GET", path: "/rest/api/3/user/email", wantStatus: 400,
			wantViolation: "accountId",
		},
		{
			name: "accountId too long", method: "GET", path: "/rest/api/3/user/email?accountId=" + strings.Repeat("a", 129),
			wantStatus: 400, wantViolation: "accountId",
		},
		{
			name: "unknown route", method: "GET", path: "/rest/api/3/user/emails?accountId=x", wantStatus: 400,
			wantViolation: "GET /rest/api/3/user/emails: no operation in Atlassian's spec",
		},
		{
			name: "in the spec but not in the site", method: "GET", path: "/rest/api/3/myself", wantStatus: 404,
			wantViolation: "operation not implemented by sitesandbox",
		},
		{
			name: "project permissions", method: "POST", path: "/rest/api/3/permissions/check",
			body:       `{"accountId":"` + adminID + `","projectPermissions":[{"permissions":["EDIT_ISSUES"],"projects":[10001]}]}`,
			wantStatus: 400, wantViolation: "projectPermissions not implemented by sitesandbox",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, srv := startUnchecked(t)
			res := do(t, nil, tt.method, srv.URL+tt.path, tt.body, connectAuth(""))
			if res.status != tt.wantStatus {
				t.Errorf("status %d (%s), want %d", res.status, res.body, tt.wantStatus)
			}
			v := s.Violations()
			if len(v) != 1 || !strings.Contains(v[0], tt.wantViolation) {
				t.Errorf("violations %q, want one containing %q", v, tt.wantViolation)
			}
		})
	}
}

// TestSpecValidationUnderPrefix checks that the Forge prefix is stripped before routing, so
// a prefixed call is validated like any other rather than failing to route.
func TestSpecValidationUnderPrefix(t *testing.T) {
	t.Parallel()
	s, srv := startUnchecked(t)
	res := do(t, nil, http.MethodPost, srv.URL+testPrefix+"/rest/api/3/permissions/check",
		`{"accountId":"x","globalPermissions":"ADMINISTER"}`, bearer(testToken))
	if res.status != 400 {
		t.Errorf("status %d (%s), want 400", res.status, res.body)
	}
	if v := s.Violations(); len(v) != 1 || !strings.HasPrefix(v[0], "POST /rest/api/3/permissions/check: request body") {
		t.Errorf("violations %q, want the body error on the unprefixed path", v)
	}
}

// startUnchecked serves a validated site without sitetest's violation check, for tests that
// provoke violations on purpose and assert them.
func startUnchecked(t *testing.T) (*sitesandbox.Site, *httptest.Server) {
	t.Helper()
	o := testOptions()
	o.Spec = sitetest.Spec(t, "")
	s, err := sitesandbox.New(o)
	if err != nil {
		t.Fatal(err)
	}
	s.AddUser(adminID, adminEmail, true)
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	return s, srv
}

package jsmsandbox

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestSpecValidation checks that calls Atlassian's spec does not allow are refused and
// recorded, whatever the sandbox's own handlers would have done with them.
func TestSpecValidation(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, method, path, contentType, body string
		header                                map[string]string
		wantStatus                            int
		wantViolation                         string // substring; empty means none
	}{
		{
			name: "requestFieldValues as a string", method: "POST", path: "/rest/servicedeskapi/request",
			contentType: "application/json", body: `{"serviceDeskId":"10","requestTypeId":"11","requestFieldValues":"It broke"}`,
			wantStatus: 400, wantViolation: "POST /rest/servicedeskapi/request: request body has an error",
		},
		{
			name: "misspelt property", method: "POST", path: "/rest/servicedeskapi/request",
			contentType: "application/json", body: `{"serviceDeskId":"10","requestTypeId":"11","raiseOnBehalfof":"x","requestFieldValues":{"summary":"s"}}`,
			wantStatus: 400, wantViolation: "raiseOnBehalfof",
		},
		{
			name: "unknown route", method: "GET", path: "/rest/servicedeskapi/customers",
			wantStatus: 400, wantViolation: "GET /rest/servicedeskapi/customers: no operation in Atlassian's spec",
		},
		{
			name: "wrong method", method: "DELETE", path: "/rest/servicedeskapi/request",
			wantStatus: 400, wantViolation: "no operation in Atlassian's spec",
		},
		{
			name: "non-boolean query parameter", method: "POST", path: "/rest/servicedeskapi/customer?strictConflictStatusCode=yes",
			contentType: "application/json", body: `{"email":"a@b.example","displayName":"A"}`,
			wantStatus: 400, wantViolation: "strictConflictStatusCode",
		},
		{
			name: "in the spec but not in the sandbox", method: "GET", path: "/rest/servicedeskapi/servicedesk",
			wantStatus: 404, wantViolation: "operation not implemented by jsmsandbox",
		},
		{
			name: "method in the spec but not in the sandbox", method: "DELETE", path: "/rest/servicedeskapi/servicedesk/10/customer",
			contentType: "application/json", body: `{"accountIds":["x"]}`,
			wantStatus: 404, wantViolation: "operation not implemented by jsmsandbox",
		},
		{
			name: "upload without file parts", method: "POST", path: "/rest/servicedeskapi/servicedesk/10/attachTemporaryFile",
			contentType: "multipart/form-data; boundary=XX", body: "--XX\r\nContent-Disposition: form-data; name=\"other\"\r\n\r\nv\r\n--XX--\r\n",
			header: map[string]string{"X-Atlassian-Token": "no-check"}, wantStatus: 400, wantViolation: "`file` parts",
		},
		{
			name: "upload as JSON", method: "POST", path: "/rest/servicedeskapi/servicedesk/10/attachTemporaryFile",
			contentType: "application/json", body: `{"file":"x"}`,
			header: map[string]string{"X-Atlassian-Token": "no-check"}, wantStatus: 400, wantViolation: "multipart/form-data",
		},
		{
			name: "valid create", method: "POST", path: "/rest/servicedeskapi/request",
			contentType: "application/json", body: `{"serviceDeskId":"10","requestTypeId":"11","requestFieldValues":{"summary":"s"}}`,
			wantStatus: 201,
		},
		{
			name: "valid search", method: "GET", path: `/rest/api/3/search/jql?jql=project%20%3D%20SUP&fields=summary,status&maxResults=10`,
			wantStatus: 200,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, srv := startSandbox(t, testOptions())
			header := map[string]string{"Content-Type": tt.contentType}
			for k, v := range tt.header {
				header[k] = v
			}
			res := apiClient{t: t, base: srv.URL}.do(tt.method, tt.path, strings.NewReader(tt.body), header)
			if res.status != tt.wantStatus {
				t.Errorf("status %d, want %d; body %s", res.status, tt.wantStatus, res.body)
			}
			v := s.Violations()
			switch {
			case tt.wantViolation == "" && len(v) > 0:
				t.Errorf("violations %q, want none", v)
			case tt.wantViolation != "" && (len(v) != 1 || !strings.Contains(v[0], tt.wantViolation)):
				t.Errorf("violations %q, want one containing %q", v, tt.wantViolation)
			}
		})
	}
}

// TestResponsesAreChecked shows that a sandbox answer breaking the spec would be caught:
// the flow tests rely on that to keep the sandbox's own shapes honest.
func TestResponsesAreChecked(t *testing.T) {
	t.Parallel()
	specs := specsForTest(t, "", "")
	r := httptest.NewRequest(http.MethodGet, "/rest/servicedeskapi/request/SUP-1", nil)
	check, err := specs.validateRequest(r, nil)
	if err != nil {
		t.Fatal(err)
	}
	rec := &recorder{ResponseWriter: httptest.NewRecorder()}
	writeJSON(rec, http.StatusOK, map[string]any{"issueKey": 1})
	if err := check.response(r, rec); err == nil || !strings.Contains(err.Error(), "CustomerRequestDTO") {
		t.Errorf("response check = %v, want a CustomerRequestDTO mismatch", err)
	}
}

// TestNoSpecsNoValidation checks the dev-mode fallback: without specs the handlers still
// enforce JSM's rules, and nothing is reported as a spec violation.
func TestNoSpecsNoValidation(t *testing.T) {
	t.Parallel()
	s, err := New(testOptions())
	if err != nil {
		t.Fatal(err)
	}
	srv := httptestServer(t, s)
	c := apiClient{t: t, base: srv.URL}
	res := c.do("POST", "/rest/servicedeskapi/request", strings.NewReader(`{"requestFieldValues":"x"}`),
		map[string]string{"Content-Type": "application/json"})
	wantStatus(t, "malformed create", res, http.StatusBadRequest)
	if v := s.Violations(); len(v) != 0 {
		t.Errorf("violations %q without specs", v)
	}
}

func TestSpecPathsFromEnv(t *testing.T) {
	t.Setenv("SB_JSM_SPEC", "/specs/jsm.json")
	t.Setenv("SB_JIRA_SPEC", "")
	jsm, platform := SpecPathsFromEnv()
	root := moduleRoot()
	if root == "" {
		t.Fatal("no module root above the test directory")
	}
	wantPlatform := filepath.Join(filepath.Dir(root), "shared", "jira-platform-openapi.json")
	if jsm != "/specs/jsm.json" || platform != wantPlatform {
		t.Errorf("SpecPathsFromEnv() = %q, %q; want /specs/jsm.json, %q", jsm, platform, wantPlatform)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Errorf("module root %s has no go.mod", root)
	}
}

func TestNewRequiresCredentials(t *testing.T) {
	t.Parallel()
	if _, err := New(Options{Email: testEmail}); err == nil {
		t.Error("New accepted options without an API token")
	}
	if _, err := New(Options{Email: testEmail, APIToken: testToken, JSMSpecPath: "/nonexistent.json", PlatformSpecPath: "/nonexistent.json"}); err == nil {
		t.Error("New accepted spec paths that do not exist")
	}
}

// TestXSRF checks that Atlassian's XSRF rule covers form bodies only, with the exact value.
func TestXSRF(t *testing.T) {
	t.Parallel()
	_, srv := NewTestServer(t, testOptions())
	c := apiClient{t: t, base: srv.URL}
	for _, token := range []string{"", "nocheck", "No-Check "} {
		res := c.upload("10", token, testFile{"a.txt", "text/plain", "a"})
		if res.status != http.StatusForbidden || !bytes.Equal(res.body, []byte("XSRF check failed")) {
			t.Errorf("token %q: status %d body %q, want 403 XSRF check failed", token, res.status, res.body)
		}
	}
	wantStatus(t, "JSON without a token", c.post("/rest/servicedeskapi/customer",
		map[string]string{"email": "a@b.example", "displayName": "A"}), http.StatusCreated)
}

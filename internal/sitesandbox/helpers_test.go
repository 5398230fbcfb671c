package sitesandbox_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/supportbridge/supportbridge/internal/sitesandbox"
	"github.com/supportbridge/supportbridge/internal/sitesandbox/sitetest"
)

const (
	testAppKey  = "com.vendor.supportbridge"
	testToken   = "forge-system-token"
	testPrefix  = "/ex/jira/0b7e3e6c-1d2f-4a55-9a0e-6f7f1c2b9d11"
	adminID     = "5b10a2844c20165700ede21g"
	memberID    = "5b10ac8d82e05b22cc7d4ef5"
	adminEmail  = "ada@customer.example"
	memberEmail = "max@customer.example"
)

var testSecret = []byte("tenant-shared-secret-of-32-bytes")

func testOptions() sitesandbox.Options {
	return sitesandbox.Options{AppKey: testAppKey, SharedSecret: testSecret, SystemToken: testToken, PathPrefix: testPrefix}
}

// startSite serves a validated site with an administrator and a member; the test fails if
// any call breaks Atlassian's spec.
func startSite(t *testing.T) (*sitesandbox.Site, *httptest.Server) {
	t.Helper()
	s, srv := sitetest.NewTestServer(t, testOptions())
	s.AddUser(adminID, adminEmail, true)
	s.AddUser(memberID, memberEmail, false)
	return s, srv
}

type response struct {
	status int
	header http.Header
	body   []byte
}

// auth signs a request; basePath is what a Connect signer treats as the site's base path.
type auth func(t *testing.T, req *http.Request)

func connectAuth(basePath string) auth {
	return func(t *testing.T, req *http.Request) {
		sitetest.ConnectJWT(t, req, testAppKey, testSecret, basePath)
	}
}

func bearer(token string) auth {
	return func(t *testing.T, req *http.Request) { req.Header.Set("Authorization", "Bearer "+token) }
}

func noAuth(*testing.T, *http.Request) {}

func do(t *testing.T, client *http.Client, method, url, body string, a auth) response {
	t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, r)
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	a(t, req)
	if client == nil {
		client = http.DefaultClient
	}
	res, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{status: res.StatusCode, header: res.Header, body: b}
}

// checkAdmin asks the site whether accountID holds ADMINISTER, as supportbridge does.
func checkAdmin(t *testing.T, base, accountID string, a auth) response {
	t.Helper()
	body, err := json.Marshal(map[string]any{"accountId": accountID, "globalPermissions": []string{"ADMINISTER"}})
	if err != nil {
		t.Fatal(err)
	}
	return do(t, nil, http.MethodPost, base+"/rest/api/3/permissions/check", string(body), a)
}

// grants decodes a BulkPermissionGrants answer strictly, so an extra or missing field fails.
func grants(t *testing.T, r response) []string {
	t.Helper()
	if r.status != http.StatusOK {
		t.Fatalf("status %d (%s), want 200", r.status, r.body)
	}
	var g struct {
		GlobalPermissions  []string `json:"globalPermissions"`
		ProjectPermissions []any    `json:"projectPermissions"`
	}
	dec := json.NewDecoder(bytes.NewReader(r.body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&g); err != nil {
		t.Fatalf("decode %s: %v", r.body, err)
	}
	if g.GlobalPermissions == nil || g.ProjectPermissions == nil {
		t.Fatalf("answer %s lacks an array BulkPermissionGrants requires", r.body)
	}
	return g.GlobalPermissions
}

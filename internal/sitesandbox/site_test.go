package sitesandbox_test

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/supportbridge/supportbridge/internal/connect"
	"github.com/supportbridge/supportbridge/internal/sitesandbox"
	"github.com/supportbridge/supportbridge/internal/sitesandbox/sitetest"
)

func TestConnectJWT(t *testing.T) {
	t.Parallel()
	_, srv := startSite(t)
	emailPath := "/rest/api/3/user/email?accountId=" + memberID
	now := time.Now()
	// signed builds claims for the request to path, with changes applied.
	signed := func(path string, change func(jwt.MapClaims), secret []byte) auth {
		return func(t *testing.T, req *http.Request) {
			c := jwt.MapClaims{"iss": testAppKey, "iat": now.Unix(), "exp": now.Add(time.Minute).Unix(),
				"qsh": sitetest.QSH(t, http.MethodGet, path, "")}
			if change != nil {
				change(c)
			}
			sitetest.SignConnect(t, req, secret, c)
		}
	}
	tests := []struct {
		name       string
		path       string
		auth       auth
		wantStatus int
	}{
		{"valid", emailPath, connectAuth(""), 200},
		{"valid under the prefix, signed relative to it", testPrefix + emailPath, connectAuth(testPrefix), 200},
		{"under the prefix, signed over the full path", testPrefix + emailPath, connectAuth(""), 401},
		{"qsh of another account", emailPath, signed("/rest/api/3/user/email?accountId="+adminID, nil, testSecret), 401},
		{"qsh of another method", emailPath, signed(emailPath, func(c jwt.MapClaims) {
			c["qsh"] = sitetest.QSH(t, http.MethodPost, emailPath, "")
		}, testSecret), 401},
		{"context qsh", emailPath, signed(emailPath, func(c jwt.MapClaims) { c["qsh"] = connect.ContextQSH }, testSecret), 401},
		{"no qsh", emailPath, signed(emailPath, func(c jwt.MapClaims) { delete(c, "qsh") }, testSecret), 401},
		{"wrong secret", emailPath, signed(emailPath, nil, []byte("another-tenant-secret-32-bytes!!")), 401},
		{"expired", emailPath, signed(emailPath, func(c jwt.MapClaims) {
			c["iat"], c["exp"] = now.Add(-time.Hour).Unix(), now.Add(-time.Minute).Unix()
		}, testSecret), 401},
		{"no exp", emailPath, signed(emailPath, func(c jwt.MapClaims) { delete(c, "exp") }, testSecret), 401},
		{"another app", emailPath, signed(emailPath, func(c jwt.MapClaims) { c["iss"] = "com.other.app" }, testSecret), 401},
		{"alg none", emailPath, func(t *testing.T, req *http.Request) {
			tok, err := jwt.NewWithClaims(jwt.SigningMethodNone, jwt.MapClaims{"iss": testAppKey,
				"exp": now.Add(time.Minute).Unix(), "qsh": sitetest.QSH(t, http.MethodGet, emailPath, "")}).
				SignedString(jwt.UnsafeAllowNoneSignatureType)
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Authorization", "JWT "+tok)
		}, 401},
		{"garbage", emailPath, func(t *testing.T, req *http.Request) { req.Header.Set("Authorization", "JWT x.y.z") }, 401},
		{"no credentials", emailPath, noAuth, 401},
		{"basic auth", emailPath, func(t *testing.T, req *http.Request) { req.SetBasicAuth("a@b.example", "token") }, 401},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := do(t, nil, http.MethodGet, srv.URL+tt.path, "", tt.auth)
			if res.status != tt.wantStatus {
				t.Errorf("status %d (%s), want %d", res.status, res.body, tt.wantStatus)
			}
		})
	}
}

func TestForgeSystemToken(t *testing.T) {
	t.Parallel()
	_, srv := startSite(t)
	tests := []struct {
		name       string
		base       string
		auth       auth
		wantStatus int
	}{
		{"under the apiBaseUrl prefix", srv.URL + testPrefix, bearer(testToken), 200},
		{"at the root", srv.URL, bearer(testToken), 200},
		{"wrong token", srv.URL + testPrefix, bearer("forge-system-tokem"), 401},
		{"token prefix", srv.URL + testPrefix, bearer(testToken[:5]), 401},
		{"empty bearer", srv.URL + testPrefix, bearer(""), 401},
		{"under another cloud id", srv.URL + "/ex/jira/other", bearer(testToken), 404},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := checkAdmin(t, tt.base, adminID, tt.auth)
			if res.status != tt.wantStatus {
				t.Fatalf("status %d (%s), want %d", res.status, res.body, tt.wantStatus)
			}
			if res.status == 200 {
				if diff := cmp.Diff(grants(t, res), []string{"ADMINISTER"}); diff != "" {
					t.Errorf("grants (-got +want):\n%s", diff)
				}
			}
		})
	}
}

// TestNoSystemToken checks that a site without a Forge token refuses every bearer, even an
// empty one that would equal the empty configured token.
func TestNoSystemToken(t *testing.T) {
	t.Parallel()
	o := testOptions()
	o.SystemToken = ""
	s, srv := sitetest.NewTestServer(t, o)
	s.AddUser(adminID, adminEmail, true)
	for _, tok := range []string{"", testToken} {
		if res := checkAdmin(t, srv.URL, adminID, bearer(tok)); res.status != 401 {
			t.Errorf("bearer %q: status %d, want 401", tok, res.status)
		}
	}
}

func TestPermissionsCheck(t *testing.T) {
	t.Parallel()
	_, srv := startSite(t)
	tests := []struct {
		name, body string
		want       []string
	}{
		{"administrator", `{"accountId":"` + adminID + `","globalPermissions":["ADMINISTER"]}`, []string{"ADMINISTER"}},
		{"member", `{"accountId":"` + memberID + `","globalPermissions":["ADMINISTER"]}`, []string{}},
		{"unknown account", `{"accountId":"557058:unknown","globalPermissions":["ADMINISTER"]}`, []string{}},
		// Without accountId Jira answers for the caller: the app's own user.
		{"no account id", `{"globalPermissions":["ADMINISTER"]}`, []string{}},
		{"administrator asked for something else", `{"accountId":"` + adminID + `","globalPermissions":["USER_PICKER"]}`, []string{}},
		{"administrator asked for nothing", `{"accountId":"` + adminID + `"}`, []string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := do(t, nil, http.MethodPost, srv.URL+"/rest/api/3/permissions/check", tt.body, connectAuth(""))
			if diff := cmp.Diff(grants(t, res), tt.want); diff != "" {
				t.Errorf("grants (-got +want):\n%s", diff)
			}
		})
	}

	t.Run("unrecognised permission", func(t *testing.T) {
		res := do(t, nil, http.MethodPost, srv.URL+"/rest/api/3/permissions/check",
			`{"accountId":"`+adminID+`","globalPermissions":["ADMINISTER","PERMISSION_123"]}`, connectAuth(""))
		if res.status != 400 || !strings.Contains(string(res.body), `"PERMISSION_123":"Unrecognized permission"`) {
			t.Errorf("got %d %s, want 400 naming PERMISSION_123", res.status, res.body)
		}
	})
}

// TestAdminFlip is the race the consent page must survive: the administrator loads the page,
// loses ADMINISTER, then decides; the site's answer must follow at once.
func TestAdminFlip(t *testing.T) {
	t.Parallel()
	s, srv := startSite(t)
	ask := func() []string { return grants(t, checkAdmin(t, srv.URL, adminID, connectAuth(""))) }
	if got := ask(); !cmp.Equal(got, []string{"ADMINISTER"}) {
		t.Fatalf("before the flip: %q, want ADMINISTER", got)
	}
	s.SetAdmin(adminID, false)
	if got := ask(); len(got) != 0 {
		t.Fatalf("after losing it: %q, want none", got)
	}
	s.SetAdmin(adminID, true)
	if got := ask(); !cmp.Equal(got, []string{"ADMINISTER"}) {
		t.Fatalf("after regaining it: %q, want ADMINISTER", got)
	}
	s.SetAdmin("557058:unknown", true)
	if got := grants(t, checkAdmin(t, srv.URL, "557058:unknown", connectAuth(""))); len(got) != 0 {
		t.Errorf("SetAdmin created an unknown account: %q", got)
	}
}

func TestUserEmail(t *testing.T) {
	t.Parallel()
	_, srv := startSite(t)
	res := do(t, nil, http.MethodGet, srv.URL+"/rest/api/3/user/email?accountId="+url.QueryEscape(adminID), "", connectAuth(""))
	if res.status != 200 {
		t.Fatalf("status %d (%s), want 200", res.status, res.body)
	}
	var got map[string]string
	if err := json.Unmarshal(res.body, &got); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(got, map[string]string{"accountId": adminID, "email": adminEmail}); diff != "" {
		t.Errorf("answer (-got +want):\n%s", diff)
	}
	res = do(t, nil, http.MethodGet, srv.URL+"/rest/api/3/user/email?accountId=557058:unknown", "", connectAuth(""))
	if res.status != 404 {
		t.Errorf("unknown account: status %d (%s), want 404", res.status, res.body)
	}
}

// TestHostClient runs the real client supportbridge uses against the site, at the root and
// at a base URL with a path, which the client must leave out of the qsh.
func TestHostClient(t *testing.T) {
	t.Parallel()
	_, srv := startSite(t)
	c := &connect.HostClient{AppKey: testAppKey, HTTP: srv.Client()}
	for _, base := range []string{srv.URL, srv.URL + testPrefix} {
		got, err := c.UserEmail(t.Context(), base, testSecret, memberID)
		if err != nil || got != memberEmail {
			t.Errorf("UserEmail at %s = %q, %v; want %q", base, got, err, memberEmail)
		}
	}
	if _, err := c.UserEmail(t.Context(), srv.URL, []byte("wrong-secret"), memberID); !errors.Is(err, connect.ErrEmailUnavailable) {
		t.Errorf("wrong secret: err %v, want ErrEmailUnavailable", err)
	}
}

func TestDown(t *testing.T) {
	t.Parallel()
	s, srv := startSite(t)
	s.SetDown(http.StatusServiceUnavailable)
	// An outage answers before authentication, so even a caller without credentials sees it.
	for _, a := range []auth{connectAuth(""), bearer(testToken), noAuth} {
		if res := checkAdmin(t, srv.URL, adminID, a); res.status != 503 {
			t.Errorf("down: status %d, want 503", res.status)
		}
	}
	s.SetDown(0)
	if got := grants(t, checkAdmin(t, srv.URL, adminID, connectAuth(""))); !cmp.Equal(got, []string{"ADMINISTER"}) {
		t.Errorf("back up: %q, want ADMINISTER", got)
	}
}

func TestHang(t *testing.T) {
	t.Parallel()
	s, srv := startSite(t)
	s.SetDown(sitesandbox.Hang)

	client := &http.Client{Timeout: 200 * time.Millisecond}
	req, err := http.NewRequest(http.MethodGet, srv.URL+"/rest/api/3/user/email?accountId="+memberID, nil)
	if err != nil {
		t.Fatal(err)
	}
	sitetest.ConnectJWT(t, req, testAppKey, testSecret, "")
	res, err := client.Do(req)
	if err == nil {
		res.Body.Close()
		t.Fatalf("hanging site answered %d", res.StatusCode)
	}
	var netErr interface{ Timeout() bool }
	if !errors.As(err, &netErr) || !netErr.Timeout() {
		t.Fatalf("err %v, want a timeout", err)
	}

	waitFor(t, func() bool { return len(s.Calls()) == 1 && s.Hanging() == 0 })

	// A call waiting when the site comes back is answered normally.
	req, err = http.NewRequest(http.MethodPost, srv.URL+"/rest/api/3/permissions/check",
		strings.NewReader(`{"accountId":"`+adminID+`","globalPermissions":["ADMINISTER"]}`))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+testToken)
	type result struct {
		r   response
		err error
	}
	done := make(chan result, 1)
	go func() {
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			done <- result{err: err}
			return
		}
		defer res.Body.Close()
		b, err := io.ReadAll(res.Body)
		done <- result{response{status: res.StatusCode, body: b}, err}
	}()
	waitFor(t, func() bool { return s.Hanging() == 1 })
	s.SetDown(0)
	got := <-done
	if got.err != nil {
		t.Fatal(got.err)
	}
	if g := grants(t, got.r); !cmp.Equal(g, []string{"ADMINISTER"}) {
		t.Errorf("released call: %q, want ADMINISTER", g)
	}
	calls := s.Calls()
	if len(calls) != 2 || calls[0].Status != 0 || calls[1].Status != 200 {
		t.Errorf("calls %+v, want the abandoned one with status 0, then a 200", calls)
	}
}

// waitFor polls cond until it holds, failing the test after a few seconds.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached in 5s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestCalls(t *testing.T) {
	t.Parallel()
	s, srv := startSite(t)
	checkAdmin(t, srv.URL, adminID, connectAuth(""))
	checkAdmin(t, srv.URL+testPrefix, adminID, bearer(testToken))
	checkAdmin(t, srv.URL, adminID, bearer("nope"))
	do(t, nil, http.MethodGet, srv.URL+"/rest/api/3/user/email?accountId="+adminID, "", noAuth)
	path := "/rest/api/3/permissions/check"
	want := []sitesandbox.Call{
		{Method: "POST", Path: path, Auth: sitesandbox.AuthConnect, Status: 200},
		{Method: "POST", Path: path, Prefixed: true, Auth: sitesandbox.AuthForge, Status: 200},
		{Method: "POST", Path: path, Auth: sitesandbox.AuthForge, Status: 401},
		{Method: "GET", Path: "/rest/api/3/user/email", Query: "accountId=" + adminID, Auth: sitesandbox.AuthNone, Status: 401},
	}
	if diff := cmp.Diff(s.Calls(), want, cmpopts.IgnoreFields(sitesandbox.Call{}, "Time")); diff != "" {
		t.Errorf("calls (-got +want):\n%s", diff)
	}
}

func TestNewRefusesBadOptions(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		o    sitesandbox.Options
	}{
		{"no credentials at all", sitesandbox.Options{AppKey: testAppKey}},
		{"secret without app key", sitesandbox.Options{SharedSecret: testSecret}},
		{"relative prefix", sitesandbox.Options{SystemToken: testToken, PathPrefix: "ex/jira/x"}},
		{"prefix under /rest", sitesandbox.Options{SystemToken: testToken, PathPrefix: "/rest/x"}},
		{"missing spec file", sitesandbox.Options{SystemToken: testToken, PlatformSpecPath: "/nonexistent/spec.json"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := sitesandbox.New(tt.o); err == nil {
				t.Error("New succeeded, want an error")
			}
		})
	}
}

package sitesandbox_test

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

// TestPage checks that the dev page lists users and calls and that what callers control is
// escaped, not interpreted.
func TestPage(t *testing.T) {
	t.Parallel()
	s, srv := startSite(t)
	evil := `<script>alert(1)</script>`
	s.AddUser("557058:"+evil, `x"><img src=x onerror=alert(1)>@customer.example`, false)
	do(t, nil, http.MethodGet, srv.URL+"/rest/api/3/user/email?accountId=%3Cscript%3E", "", noAuth)

	res, err := http.Get(srv.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	page := string(b)
	if res.StatusCode != 200 || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("got %d %s", res.StatusCode, res.Header.Get("Content-Type"))
	}
	for _, want := range []string{adminEmail, memberID, "&lt;script&gt;alert(1)&lt;/script&gt;", "/rest/api/3/user/email", "401"} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	for _, bad := range []string{"<script", "<img"} {
		if strings.Contains(page, bad) {
			t.Errorf("page contains %q unescaped", bad)
		}
	}
	if csp := res.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") {
		t.Errorf("CSP %q forbids nothing", csp)
	}
}

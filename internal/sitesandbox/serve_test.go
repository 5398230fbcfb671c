package sitesandbox_test

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/supportbridge/supportbridge/internal/sitesandbox"
)

// TestUnvalidated checks the dev-mode fallback: without Atlassian's spec the site still
// answers, and its own handlers still refuse a body of the wrong shape.
func TestUnvalidated(t *testing.T) {
	t.Parallel()
	s, err := sitesandbox.New(testOptions())
	if err != nil {
		t.Fatal(err)
	}
	s.AddUser(adminID, adminEmail, true)
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	if got := grants(t, checkAdmin(t, srv.URL, adminID, connectAuth(""))); !cmp.Equal(got, []string{"ADMINISTER"}) {
		t.Errorf("grants %q, want ADMINISTER", got)
	}
	res := do(t, nil, http.MethodPost, srv.URL+"/rest/api/3/permissions/check",
		`{"accountId":"`+adminID+`","globalPermissions":"ADMINISTER"}`, connectAuth(""))
	if res.status != 400 {
		t.Errorf("wrong shape: status %d (%s), want 400", res.status, res.body)
	}
}

// TestServe checks dev mode's server: it answers, and stops promptly when its context ends
// even with a call left hanging.
func TestServe(t *testing.T) {
	t.Parallel()
	s, err := sitesandbox.New(testOptions())
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	served := make(chan error, 1)
	go func() { served <- s.Serve(ctx, ln) }()
	base := "http://" + ln.Addr().String()
	if res := checkAdmin(t, base, adminID, bearer(testToken)); res.status != 200 {
		t.Fatalf("status %d (%s), want 200", res.status, res.body)
	}

	s.SetDown(sitesandbox.Hang)
	go http.Post(base+"/rest/api/3/permissions/check", "application/json", nil)
	waitFor(t, func() bool { return s.Hanging() == 1 })
	cancel()
	select {
	case err := <-served:
		if err != nil {
			t.Errorf("Serve: %v", err)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("Serve did not stop")
	}
}

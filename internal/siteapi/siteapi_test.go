package siteapi

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/supportbridge/supportbridge/internal/connect"
	"github.com/supportbridge/supportbridge/internal/consent"
	"github.com/supportbridge/supportbridge/internal/secret"
	"github.com/supportbridge/supportbridge/internal/tenant"
)

const (
	appKey     = "sb-app"
	siteSecret = "site-secret-0123456789abcdef0123456789"
	sysToken   = "forge-system-token"
)

// site answers permissions/check the way a Jira Cloud site does, checking the caller's
// credentials, and counts the calls.
type site struct {
	mu     sync.Mutex
	admins map[string]bool
	status int
	calls  int
	auth   []string
}

func (s *site) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls++
	if s.status != 0 {
		w.WriteHeader(s.status)
		return
	}
	auth := r.Header.Get("Authorization")
	switch {
	case auth == "Bearer "+sysToken:
		s.auth = append(s.auth, "forge")
	case strings.HasPrefix(auth, "JWT "):
		var c jwt.MapClaims
		_, err := jwt.ParseWithClaims(strings.TrimPrefix(auth, "JWT "), &c, func(*jwt.Token) (any, error) { return []byte(siteSecret), nil },
			jwt.WithValidMethods([]string{"HS256"}), jwt.WithIssuer(appKey))
		if err != nil || c["qsh"] != connect.QSH(r.Method, r.URL, "") {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		s.auth = append(s.auth, "connect")
	default:
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	var in struct {
		AccountID         string   `json:"accountId"`
		GlobalPermissions []string `json:"globalPermissions"`
	}
	if r.URL.Path != "/rest/api/3/permissions/check" || json.NewDecoder(r.Body).Decode(&in) != nil {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	out := []string{}
	if s.admins[in.AccountID] && len(in.GlobalPermissions) == 1 && in.GlobalPermissions[0] == "ADMINISTER" {
		out = append(out, "ADMINISTER")
	}
	json.NewEncoder(w).Encode(map[string]any{"globalPermissions": out, "projectPermissions": []any{}})
}

type tenants map[string]tenant.Tenant

func (t tenants) Get(_ context.Context, k string) (tenant.Tenant, error) {
	tn, ok := t[k]
	if !ok {
		return tenant.Tenant{}, tenant.ErrNotFound
	}
	return tn, nil
}

func TestCheckerRemembersYesForReadsOnly(t *testing.T) {
	s := &site{admins: map[string]bool{"admin": true}}
	srv := httptest.NewServer(s)
	defer srv.Close()
	now := time.Now() // the site checks the app JWT against its own clock
	c := &Checker{
		Tenants: tenants{"t1": {ClientKey: "t1", BaseURL: srv.URL, SharedSecret: secret.New(siteSecret), Installed: true}},
		AppKey:  appKey, Now: func() time.Time { return now },
	}
	ctx := context.Background()
	admin := consent.SiteAdmin{Tenant: "t1", AccountID: "admin", Via: "connect"}
	user := consent.SiteAdmin{Tenant: "t1", AccountID: "user", Via: "connect"}
	calls := func() int { s.mu.Lock(); defer s.mu.Unlock(); return s.calls }

	if err := c.Check(ctx, admin, false); err != nil {
		t.Fatal(err)
	}
	if err := c.Check(ctx, admin, false); err != nil || calls() != 1 {
		t.Errorf("second read check: %v, %d calls; want the remembered yes", err, calls())
	}
	if err := c.Check(ctx, admin, true); err != nil || calls() != 2 {
		t.Errorf("decision: %v, %d calls; want the site asked again", err, calls())
	}
	now = now.Add(YesTTL + time.Second) // still inside the app JWT's three minutes
	if err := c.Check(ctx, admin, false); err != nil || calls() != 3 {
		t.Errorf("read after the yes expired: %v, %d calls; want the site asked", err, calls())
	}
	for range 2 {
		if err := c.Check(ctx, user, false); !errors.Is(err, consent.ErrNotSiteAdmin) {
			t.Errorf("non-admin: %v", err)
		}
	}
	if calls() != 5 {
		t.Errorf("%d calls; a no must never be remembered", calls())
	}
	// The admin loses the permission: the next decision sees it, even inside the minute.
	s.mu.Lock()
	s.admins["admin"] = false
	s.mu.Unlock()
	if err := c.Check(ctx, admin, true); !errors.Is(err, consent.ErrNotSiteAdmin) {
		t.Errorf("decision after losing ADMINISTER: %v", err)
	}
	if err := c.Check(ctx, admin, false); !errors.Is(err, consent.ErrNotSiteAdmin) {
		t.Errorf("read after a decision said no: %v, want the yes forgotten", err)
	}
	s.mu.Lock()
	s.status = http.StatusServiceUnavailable
	s.mu.Unlock()
	if err := c.Check(ctx, admin, true); !errors.Is(err, consent.ErrSiteUnavailable) {
		t.Errorf("site down: %v", err)
	}
}

func TestCheckerForgeUsesSystemToken(t *testing.T) {
	s := &site{admins: map[string]bool{"admin": true}}
	srv := httptest.NewServer(s)
	defer srv.Close()
	c := &Checker{Tenants: tenants{}, AppKey: appKey}
	ctx := context.Background()
	who := consent.SiteAdmin{Tenant: "cloud-1", AccountID: "admin", Via: "forge", SystemToken: secret.New(sysToken), APIBaseURL: srv.URL}
	if err := c.Check(ctx, who, true); err != nil {
		t.Fatal(err)
	}
	if s.auth[0] != "forge" {
		t.Errorf("site saw %v", s.auth)
	}
	who.SystemToken = secret.Secret{}
	if err := c.Check(ctx, who, true); !errors.Is(err, consent.ErrSiteUnavailable) {
		t.Errorf("without a system token: %v, want unavailable", err)
	}
	who.SystemToken, who.APIBaseURL = secret.New(sysToken), "http://evil.example"
	if err := c.Check(ctx, who, true); !errors.Is(err, consent.ErrSiteUnavailable) {
		t.Errorf("plain http to a public host: %v, want refused", err)
	}
}

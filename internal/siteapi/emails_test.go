package siteapi

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/supportbridge/supportbridge/internal/connect"
	"github.com/supportbridge/supportbridge/internal/delivery"
	"github.com/supportbridge/supportbridge/internal/secret"
	"github.com/supportbridge/supportbridge/internal/sitesandbox"
	"github.com/supportbridge/supportbridge/internal/sitesandbox/sitetest"
	"github.com/supportbridge/supportbridge/internal/tenant"
)

// Emails asks the site sandbox (validated against Atlassian's platform spec) as a Connect
// app with a JWT and as a Forge app with the system token, and says "none" for what the site
// refuses.
func TestEmailsAsksTheReportersSite(t *testing.T) {
	site, srv := sitetest.NewTestServer(t, sitesandbox.Options{
		AppKey: appKey, SharedSecret: []byte(siteSecret), SystemToken: sysToken,
	})
	site.AddUser("acc-ann", "ann@customer.example", false)
	e := Emails{
		Host: &connect.HostClient{AppKey: appKey, HTTP: &http.Client{Timeout: 5 * time.Second}},
		HTTP: &http.Client{Timeout: 5 * time.Second},
	}
	connectTenant := tenant.Tenant{ClientKey: "ck", BaseURL: srv.URL, SharedSecret: secret.New(siteSecret), Installed: true}
	forgeTenant := tenant.Tenant{ClientKey: "cloud-1", CloudID: "cloud-1", Installed: true}
	ctx := context.Background()

	tests := []struct {
		name  string
		r     delivery.Reporter
		want  string
		wantE error // nil: want the email
	}{
		{"connect", delivery.Reporter{Tenant: connectTenant, AccountID: "acc-ann"}, "ann@customer.example", nil},
		{"connect unknown user", delivery.Reporter{Tenant: connectTenant, AccountID: "acc-nobody"}, "", delivery.ErrNoVerifiedEmail},
		{"forge", delivery.Reporter{Tenant: forgeTenant, AccountID: "acc-ann", SiteToken: secret.New(sysToken), SiteAPI: srv.URL}, "ann@customer.example", nil},
		{"forge wrong token", delivery.Reporter{Tenant: forgeTenant, AccountID: "acc-ann", SiteToken: secret.New("stolen"), SiteAPI: srv.URL}, "", delivery.ErrNoVerifiedEmail},
		{"forge without a token", delivery.Reporter{Tenant: forgeTenant, AccountID: "acc-ann"}, "", delivery.ErrNoVerifiedEmail},
		{"forge api not https", delivery.Reporter{Tenant: forgeTenant, AccountID: "acc-ann", SiteToken: secret.New(sysToken), SiteAPI: "http://api.example.com"}, "", delivery.ErrNoVerifiedEmail},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := e.VerifiedEmail(ctx, tt.r)
			if tt.wantE != nil {
				if !errors.Is(err, tt.wantE) {
					t.Errorf("err = %v, want %v", err, tt.wantE)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("got %q, %v; want %q", got, err, tt.want)
			}
		})
	}

	// A site that does not answer is not a refusal: the worker asks again later.
	site.SetDown(http.StatusServiceUnavailable)
	if _, err := e.VerifiedEmail(ctx, delivery.Reporter{Tenant: connectTenant, AccountID: "acc-ann"}); err == nil || errors.Is(err, delivery.ErrNoVerifiedEmail) {
		t.Errorf("site down: err = %v, want a transient error", err)
	}
	if _, err := e.VerifiedEmail(ctx, delivery.Reporter{Tenant: forgeTenant, AccountID: "acc-ann", SiteToken: secret.New(sysToken), SiteAPI: srv.URL}); err == nil || errors.Is(err, delivery.ErrNoVerifiedEmail) {
		t.Errorf("forge site down: err = %v, want a transient error", err)
	}
}

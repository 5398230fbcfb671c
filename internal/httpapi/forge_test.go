package httpapi

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/supportbridge/supportbridge/internal/forge"
	"github.com/supportbridge/supportbridge/internal/forge/forgetest"
)

func withForge(iss *forgetest.Issuer) harnessOption {
	return func(env map[string]string, o *Options) {
		env["SB_FORGE_APP_ID"] = forgetest.AppID
		env["SB_FORGE_JWKS_URL"] = iss.JWKSURL()
		v, err := forge.NewVerifier(forge.Options{JWKSURL: iss.JWKSURL(), AppID: forgetest.AppID, MinRefreshInterval: time.Second})
		if err != nil {
			panic(err)
		}
		o.Forge = v
	}
}

func forgeEvent(eventType, installationARI, cloudID string) []byte {
	id := installationARI[strings.LastIndex(installationARI, "/")+1:]
	b, _ := json.Marshal(map[string]any{
		"eventType": eventType, "id": id, "context": "ari:cloud:jira::site/" + cloudID,
		"installerAccountId": "acct-installer", "app": map[string]any{"id": forgetest.AppID, "version": "1.0.0"},
		"environment": map[string]any{"id": "env-1"},
	})
	return b
}

func TestForgeOnlyTenantLifecycleAndAuth(t *testing.T) {
	iss := forgetest.NewIssuer(t)
	h := newHarness(t, withForge(iss))
	sys := iss.Sign(forgetest.Claims{})
	auth := map[string]string{"Authorization": "Bearer " + sys}

	// A token of a site that has not installed the app names no tenant.
	user := iss.Sign(forgetest.Claims{Principal: "acct-forge-user"})
	if st, _, b := h.do("GET", "/api/v1/reports/x", map[string]string{"Authorization": "Bearer " + user}, nil); st != 401 {
		t.Fatalf("before install: %d %s", st, b)
	}
	for range 2 { // idempotent
		if st, _, b := h.do("POST", "/forge/lifecycle", auth, forgeEvent(forge.EventInstalled, forgetest.InstallationID, forgetest.CloudID)); st != 204 {
			t.Fatalf("installed: %d %s", st, b)
		}
	}
	tn, err := h.tenants.Lookup(context.Background(), forgetest.CloudID)
	if err != nil || !tn.Installed || tn.ForgeInstallationID != forgetest.InstallationID {
		t.Fatalf("forge-only tenant = %+v, %v", tn, err)
	}
	if st, _, b := h.do("GET", "/api/v1/reports/x", map[string]string{"Authorization": "Bearer " + user}, nil); st != 404 {
		t.Fatalf("forge user after install: %d %s", st, b)
	}
	// The body must agree with the token.
	if st, _, b := h.do("POST", "/forge/lifecycle", auth, forgeEvent(forge.EventInstalled, forgetest.InstallationID, "11111111-2222-3333-4444-555555555555")); st != 400 {
		t.Errorf("mismatched site: %d %s", st, b)
	}
	// Tampered tokens.
	for name, tok := range map[string]string{
		"wrong aud": iss.SignWith(forgetest.Claims{AppID: "ari:cloud:ecosystem::app/other"}, forgetest.SignOptions{}),
		"expired":   iss.Sign(forgetest.Claims{IssuedAt: time.Now().Add(-time.Hour)}),
		"hs256":     iss.SignWith(forgetest.Claims{}, forgetest.SignOptions{Alg: "HS256", HMACKey: iss.PublicKeyPEM()}),
	} {
		if st, _, _ := h.do("GET", "/api/v1/reports/x", map[string]string{"Authorization": "Bearer " + tok}, nil); st != 401 {
			t.Errorf("%s: status %d, want 401", name, st)
		}
	}
	if st, _, b := h.do("POST", "/forge/lifecycle", auth, forgeEvent(forge.EventUninstalled, forgetest.InstallationID, forgetest.CloudID)); st != 204 {
		t.Fatalf("uninstalled: %d %s", st, b)
	}
	if st, _, _ := h.do("GET", "/api/v1/reports/x", map[string]string{"Authorization": "Bearer " + user}, nil); st != 401 {
		t.Errorf("forge user after uninstall: %d, want 401", st)
	}
}

func TestForgeJWKSDownIs503(t *testing.T) {
	iss := forgetest.NewIssuer(t)
	h := newHarness(t, withForge(iss))
	iss.SetDown(true)
	st, hdr, b := h.do("GET", "/api/v1/reports/x", map[string]string{"Authorization": "Bearer " + iss.Sign(forgetest.Claims{})}, nil)
	if st != http.StatusServiceUnavailable {
		t.Fatalf("status %d (%s), want 503", st, b)
	}
	decodeProblem(t, hdr, b)
}

func TestForgeLinksToConnectTenant(t *testing.T) {
	for _, by := range []string{"installationId", "site"} {
		t.Run(by, func(t *testing.T) {
			iss := forgetest.NewIssuer(t)
			h := newHarness(t, withForge(iss))
			body := installBody("connect-ck", secretA, func(m map[string]any) {
				m["cloudId"] = forgetest.CloudID
				if by == "installationId" {
					m["installationId"] = forgetest.InstallationID
					m["cloudId"] = ""
				}
			})
			tok := h.installToken("POST", "/connect/installed", "connect-ck", nil)
			if st, _, b := h.do("POST", "/connect/installed", map[string]string{"Authorization": "JWT " + tok}, body); st != 204 {
				t.Fatalf("connect install: %d %s", st, b)
			}
			sys := iss.Sign(forgetest.Claims{})
			if st, _, b := h.do("POST", "/forge/lifecycle", map[string]string{"Authorization": "Bearer " + sys}, forgeEvent(forge.EventInstalled, forgetest.InstallationID, forgetest.CloudID)); st != 204 {
				t.Fatalf("forge installed: %d %s", st, b)
			}
			tn, err := h.tenants.Lookup(context.Background(), "connect-ck")
			if err != nil || tn.ForgeInstallationID != forgetest.InstallationID || tn.CloudID != forgetest.CloudID {
				t.Fatalf("connect tenant not linked: %+v %v", tn, err)
			}
			if _, err := h.tenants.Lookup(context.Background(), forgetest.CloudID); err == nil {
				t.Error("a separate Forge-only tenant was created")
			}
			// Forge and Connect tokens now reach the same tenant.
			user := iss.Sign(forgetest.Claims{Principal: "acct-1"})
			if st, _, b := h.do("GET", "/api/v1/reports/x", map[string]string{"Authorization": "Bearer " + user}, nil); st != 404 {
				t.Fatalf("forge token on linked tenant: %d %s", st, b)
			}
		})
	}
}

// TestForgeLinkRefusesAnotherSitesInstallation: a Connect tenant that recorded this Forge
// installation for another site is not joined by a token of this site (409, nothing stored).
func TestForgeLinkRefusesAnotherSitesInstallation(t *testing.T) {
	iss := forgetest.NewIssuer(t)
	h := newHarness(t, withForge(iss))
	body := installBody("connect-ck", secretA, func(m map[string]any) {
		m["installationId"] = forgetest.InstallationID
		m["cloudId"] = "11111111-2222-3333-4444-555555555555"
	})
	tok := h.installToken("POST", "/connect/installed", "connect-ck", nil)
	if st, _, b := h.do("POST", "/connect/installed", map[string]string{"Authorization": "JWT " + tok}, body); st != 204 {
		t.Fatalf("connect install: %d %s", st, b)
	}
	before, _ := h.tenants.Lookup(context.Background(), "connect-ck")
	sys := iss.Sign(forgetest.Claims{})
	st, hdr, b := h.do("POST", "/forge/lifecycle", map[string]string{"Authorization": "Bearer " + sys}, forgeEvent(forge.EventInstalled, forgetest.InstallationID, forgetest.CloudID))
	if st != http.StatusConflict {
		t.Fatalf("link: status %d (%s), want 409", st, b)
	}
	decodeProblem(t, hdr, b)
	if after, _ := h.tenants.Lookup(context.Background(), "connect-ck"); after.ForgeInstallationID != before.ForgeInstallationID || after.CloudID != before.CloudID {
		t.Errorf("refused link changed the tenant: %+v", after)
	}
	if _, err := h.tenants.Lookup(context.Background(), forgetest.CloudID); err == nil {
		t.Error("refused link created a Forge-only tenant")
	}
}

// TestForgeBodyDisagreementNamesFields: the fields of a body that disagrees with its token
// come back as JSON pointers.
func TestForgeBodyDisagreementNamesFields(t *testing.T) {
	iss := forgetest.NewIssuer(t)
	h := newHarness(t, withForge(iss))
	sys := iss.Sign(forgetest.Claims{})
	other := "ari:cloud:ecosystem::installation/00000000-0000-4000-8000-000000000000"
	st, hdr, b := h.do("POST", "/forge/lifecycle", map[string]string{"Authorization": "Bearer " + sys}, forgeEvent(forge.EventInstalled, other, forgetest.CloudID))
	if st != http.StatusBadRequest {
		t.Fatalf("status %d (%s), want 400", st, b)
	}
	if p := decodeProblem(t, hdr, b); len(p.Errors) != 1 || p.Errors[0].Field != "/id" {
		t.Errorf("errors = %+v, want one for /id", p.Errors)
	}
}

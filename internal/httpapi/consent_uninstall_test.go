package httpapi

import (
	"context"
	"net/http"
	"testing"
)

// TestUninstallEndsGrants: a tenant that uninstalls the app ends every grant on its tickets.
func TestUninstallEndsGrants(t *testing.T) {
	ch := newConsentHarness(t)
	id, _ := ch.newRequest(aliceToken, nil)
	ch.approve(id, "")
	grants, err := ch.svc.ListGrants(context.Background(), consentTicket)
	if err != nil || len(grants) != 1 || grants[0].Status != "active" {
		t.Fatalf("grant before uninstall: %+v %v", grants, err)
	}
	un := ch.installToken("POST", "/connect/uninstalled", consentTenant, nil)
	if st, _, b := ch.do("POST", "/connect/uninstalled", map[string]string{"Authorization": "JWT " + un}, installBody(consentTenant, "", nil)); st != http.StatusNoContent {
		t.Fatalf("uninstall: %d %s", st, b)
	}
	grants, err = ch.svc.ListGrants(context.Background(), consentTicket)
	if err != nil || len(grants) != 1 || grants[0].Status == "active" {
		t.Fatalf("grant after uninstall: %+v %v", grants, err)
	}
	if _, err := ch.svc.Authorize(context.Background(), grants[0].ID, grants[0].Agent, grants[0].Streams[0], grants[0].From, grants[0].From); err == nil {
		t.Error("Authorize allowed a read after the tenant uninstalled")
	}
}

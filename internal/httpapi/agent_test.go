package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/supportbridge/supportbridge/internal/agentauth"
	"github.com/supportbridge/supportbridge/internal/consent"
)

// TestAccessRequestValidation checks that every invalid field comes back with its JSON path,
// including the ticket and streams the domain looks up.
func TestAccessRequestValidation(t *testing.T) {
	ch := newConsentHarness(t)
	cases := []struct {
		name   string
		ticket string
		mutate func(map[string]any)
		fields []string
	}{
		{"unknown ticket", unknownTicket, nil, []string{"/ticketKey"}},
		{"closed ticket", closedTicket, nil, []string{"/ticketKey"}},
		{"unknown stream", consentTicket, func(b map[string]any) { b["streams"] = []string{"app", "secrets"} }, []string{"/streams/1"}},
		{"bad times", consentTicket, func(b map[string]any) { b["from"] = "yesterday"; b["to"] = "2026-13-01" }, []string{"/from", "/to"}},
		{"everything missing", consentTicket, func(b map[string]any) {
			for k := range b {
				delete(b, k)
			}
		}, []string{"/ticketKey", "/reason", "/streams", "/from", "/duration"}},
		{"too long", consentTicket, func(b map[string]any) { b["duration"] = "721h" }, []string{"/duration"}},
		{"wrong type", consentTicket, func(b map[string]any) { b["streams"] = "app" }, []string{"/streams"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			st, hdr, body := ch.agent("POST", "/api/v1/access-requests", bearer(aliceToken), ch.requestBody(c.ticket, c.mutate))
			if st != http.StatusBadRequest {
				t.Fatalf("status %d: %s", st, body)
			}
			p := decodeProblem(t, hdr, body)
			var got []string
			for _, f := range p.Errors {
				got = append(got, f.Field)
			}
			if diff := cmp.Diff(got, c.fields); diff != "" {
				t.Errorf("field paths (-got +want):\n%s", diff)
			}
		})
	}
	if st, _, body := ch.agent("POST", "/api/v1/access-requests", map[string]string{"Authorization": "Bearer " + aliceToken, "Content-Type": "text/plain"}, []byte("x")); st != http.StatusUnsupportedMediaType {
		t.Errorf("text body: %d %s", st, body)
	}
	if st, _, body := ch.agent("GET", "/api/v1/access-requests", bearer(aliceToken), nil); st != http.StatusBadRequest || !strings.Contains(string(body), "query:ticketKey") {
		t.Errorf("list without ticketKey: %d %s", st, body)
	}
	if len(ch.tickets.comments) != 0 {
		t.Errorf("invalid requests posted comments: %+v", ch.tickets.comments)
	}
}

// TestAccessRequestLifecycleForAgents covers what agents see: the created request, lists, cancellation rules, revocation rules and the evidence pack.
func TestAccessRequestLifecycleForAgents(t *testing.T) {
	ch := newConsentHarness(t)
	st, hdr, body := ch.agent("POST", "/api/v1/access-requests", bearer(aliceToken), ch.requestBody(consentTicket, nil))
	if st != http.StatusCreated {
		t.Fatalf("create: %d %s", st, body)
	}
	var created consent.AccessRequest
	json.Unmarshal(body, &created)
	if created.Status != consent.RequestPending || created.Agent.Name != "Alice Agent" || hdr.Get("Location") != "/api/v1/access-requests/"+created.ID {
		t.Errorf("created: %+v, Location %q", created, hdr.Get("Location"))
	}
	if id, _ := ch.tickets.lastAnnounced(t); id != created.ID {
		t.Errorf("the ticket announced %s, want %s", id, created.ID)
	}

	if st, _, body := ch.agent("GET", "/api/v1/access-requests/"+created.ID, bearer(bobToken), nil); st != http.StatusOK {
		t.Errorf("get: %d %s", st, body)
	}
	if st, _, body := ch.agent("GET", "/api/v1/access-requests/ar_00000000000000000000000000000000", bearer(aliceToken), nil); st != http.StatusNotFound {
		t.Errorf("get unknown: %d %s", st, body)
	}
	if st, _, body := ch.agent("GET", "/api/v1/grants?ticketKey="+otherTicket, bearer(aliceToken), nil); st != http.StatusOK || string(body) != `{"grants":[]}` {
		t.Errorf("grants of a ticket without any: %d %s", st, body)
	}

	// Approved requests cannot be cancelled; the grant can be revoked by its agent or an admin.
	ch.approve(created.ID, "")
	if st, _, body := ch.agent("DELETE", "/api/v1/access-requests/"+created.ID, bearer(aliceToken), nil); st != http.StatusConflict {
		t.Errorf("cancel decided: %d %s", st, body)
	}
	req, _ := ch.svc.GetRequest(t.Context(), created.ID)
	if st, _, body := ch.agent("POST", "/api/v1/grants/"+req.GrantID+"/revoke", bearer(bobToken), nil); st != http.StatusForbidden {
		t.Errorf("other agent revoke: %d %s", st, body)
	}
	if st, _, body := ch.agent("POST", "/api/v1/grants/"+req.GrantID+"/revoke", bearer(aliceToken), nil); st != http.StatusNoContent {
		t.Errorf("own revoke: %d %s", st, body)
	}
	if st, _, body := ch.agent("POST", "/api/v1/grants/"+req.GrantID+"/revoke", bearer(rootToken), nil); st != http.StatusForbidden && st != http.StatusConflict {
		t.Errorf("revoke of an ended grant: %d %s", st, body)
	}
	if st, _, body := ch.agent("POST", "/api/v1/grants/gr_00000000000000000000000000000000/revoke", bearer(rootToken), nil); st != http.StatusNotFound {
		t.Errorf("revoke unknown: %d %s", st, body)
	}

	st, _, body = ch.agent("GET", "/api/v1/tickets/"+consentTicket+"/evidence", bearer(bobToken), nil)
	if st != http.StatusOK {
		t.Fatalf("evidence: %d %s", st, body)
	}
	var ev consent.Evidence
	if err := json.Unmarshal(body, &ev); err != nil {
		t.Fatal(err)
	}
	if len(ev.Requests) != 1 || len(ev.Grants) != 1 || ev.Grants[0].Status != consent.GrantRevoked || !ev.ChainOK || len(ev.Audit) == 0 ||
		ev.Grants[0].ApprovedBy.AccountID != siteAdminAccount || !ev.Verification.TicketHeadsChecked || len(ev.Verification.TicketHeads) < 3 {
		t.Errorf("evidence: %s", body)
	}
	if st, _, body := ch.agent("GET", "/api/v1/tickets/"+otherTicket+"/evidence", bearer(bobToken), nil); st != http.StatusNotFound {
		t.Errorf("evidence of a ticket without consent: %d %s", st, body)
	}
}

// fakeAgents answers Authenticate with a fixed error, for outcomes the static token file
// cannot produce.
type fakeAgents struct{ err error }

func (f fakeAgents) Authenticate(context.Context, string) (agentauth.Agent, error) {
	return agentauth.Agent{}, f.err
}

func TestAgentAuthProblems(t *testing.T) {
	ch := newConsentHarness(t)
	st, hdr, body := ch.agent("GET", "/api/v1/grants?ticketKey=SUP-1", bearer("not-a-known-token"), nil)
	if st != http.StatusUnauthorized || hdr.Get("WWW-Authenticate") != `Bearer realm="supportbridge agents"` {
		t.Errorf("unknown token: %d %q %s", st, hdr.Get("WWW-Authenticate"), body)
	}
	if p := decodeProblem(t, hdr, body); !strings.Contains(p.Detail, agentauth.ReasonUnknownToken) {
		t.Errorf("detail %q does not say why", p.Detail)
	}

	for _, c := range []struct {
		err    error
		status int
	}{
		{&agentauth.Error{Kind: agentauth.ErrForbidden, Reason: agentauth.ReasonNoRole}, http.StatusForbidden},
		{&agentauth.Error{Kind: agentauth.ErrUnavailable, Reason: agentauth.ReasonKeysUnavailable, Cause: errors.New("dial tcp: refused")}, http.StatusServiceUnavailable},
		{errors.New("surprise"), http.StatusInternalServerError},
	} {
		h := newConsentHarness(t, func(d *ConsentDeps) { d.Agents = fakeAgents{c.err} })
		st, hdr, body := h.agent("GET", "/api/v1/grants?ticketKey=SUP-1", bearer(aliceToken), nil)
		if st != c.status {
			t.Errorf("%v: %d %s", c.err, st, body)
		}
		decodeProblem(t, hdr, body)
		if strings.Contains(string(body), "dial tcp") || strings.Contains(string(body), "surprise") {
			t.Errorf("internal error text in the answer: %s", body)
		}
		if c.status == http.StatusServiceUnavailable && hdr.Get("Retry-After") == "" {
			t.Error("503 without Retry-After")
		}
	}
}

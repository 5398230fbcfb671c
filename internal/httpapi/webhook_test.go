package httpapi

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/supportbridge/supportbridge/internal/consent"
	"github.com/supportbridge/supportbridge/internal/secret"
)

// jiraBody is a Jira issue webhook body, shaped like what Jira Cloud sends (trimmed).
func jiraBody(event, key, category string) []byte {
	b, _ := json.Marshal(map[string]any{
		"timestamp": 1767225600000, "webhookEvent": event, "issue_event_type_name": "issue_generic",
		"user": map[string]any{"accountId": "5b10ac8d82e05b22cc7d4ef5", "displayName": "Agent"},
		"issue": map[string]any{
			"id": "10001", "key": key,
			"fields": map[string]any{
				"summary": "Export fails",
				"status": map[string]any{
					"name": "Resolved", "id": "10002",
					"statusCategory": map[string]any{"id": 3, "key": category, "name": "Done"},
				},
			},
		},
		"changelog": map[string]any{"items": []map[string]any{{"field": "status", "fromString": "Open", "toString": "Resolved"}}},
	})
	return b
}

func sign(key string, body []byte) string {
	m := hmac.New(sha256.New, []byte(key))
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// TestJiraWebhook checks that only a correctly signed "done" event ends a ticket's grants,
// and that everything else is refused or acknowledged without effect.
func TestJiraWebhook(t *testing.T) {
	ch := newConsentHarness(t)
	approvedID, _ := ch.newRequest(aliceToken, nil)
	ch.approve(approvedID, "")
	pendingID, _ := ch.newRequest(aliceToken, nil)

	active := func() bool {
		st, _, body := ch.agent("GET", "/api/v1/grants?ticketKey="+consentTicket, bearer(aliceToken), nil)
		if st != http.StatusOK {
			t.Fatalf("grants: %d %s", st, body)
		}
		var out struct{ Grants []consent.Grant }
		json.Unmarshal(body, &out)
		return len(out.Grants) == 1 && out.Grants[0].Status == consent.GrantActive
	}
	done := jiraBody("jira:issue_updated", consentTicket, "done")
	refused := []struct {
		name string
		body []byte
		sig  string
	}{
		{"missing signature", done, ""},
		{"signature of another body", done, sign(webhookSecret, jiraBody("jira:issue_updated", otherTicket, "done"))},
		{"signature with another key", done, sign("not-the-secret", done)},
		{"sha1 prefix", done, strings.Replace(sign(webhookSecret, done), "sha256=", "sha1=", 1)},
		{"bare hex", done, strings.TrimPrefix(sign(webhookSecret, done), "sha256=")},
		{"truncated", done, sign(webhookSecret, done)[:40]},
		{"not hex", done, "sha256=" + strings.Repeat("zz", 32)},
		{"body changed after signing", append([]byte(" "), done...), sign(webhookSecret, done)},
	}
	for _, c := range refused {
		st, hdr, body := ch.do("POST", "/webhooks/jira", map[string]string{"X-Hub-Signature": c.sig}, c.body)
		if st != http.StatusUnauthorized {
			t.Errorf("%s: %d %s", c.name, st, body)
			continue
		}
		decodeProblem(t, hdr, body)
	}
	if !active() {
		t.Fatal("a refused webhook ended the grant")
	}

	acked := []struct {
		name string
		body []byte
	}{
		{"status not done", jiraBody("jira:issue_updated", consentTicket, "indeterminate")},
		{"issue created", jiraBody("jira:issue_created", consentTicket, "done")},
		{"comment event", jiraBody("comment_created", consentTicket, "done")},
		{"other ticket", jiraBody("jira:issue_updated", otherTicket, "done")},
		{"ticket without consent", jiraBody("jira:issue_updated", "ZZZ-42", "done")},
	}
	for _, c := range acked {
		st, _, body := ch.do("POST", "/webhooks/jira", map[string]string{"X-Hub-Signature": sign(webhookSecret, c.body)}, c.body)
		if st != http.StatusNoContent {
			t.Errorf("%s: %d %s", c.name, st, body)
		}
	}
	if !active() {
		t.Fatal("an event that is not a resolution ended the grant")
	}

	bad := []byte(`{"webhookEvent": "jira:issue_updated", "issue": `)
	if st, _, body := ch.do("POST", "/webhooks/jira", map[string]string{"X-Hub-Signature": sign(webhookSecret, bad)}, bad); st != http.StatusBadRequest {
		t.Errorf("malformed JSON: %d %s", st, body)
	}

	// Upper-case hex is the same signature.
	sig := "sha256=" + strings.ToUpper(strings.TrimPrefix(sign(webhookSecret, done), "sha256="))
	for i := range 2 { // a redelivery is harmless
		if st, _, body := ch.do("POST", "/webhooks/jira", map[string]string{"X-Hub-Signature": sig}, done); st != http.StatusNoContent {
			t.Fatalf("delivery %d: %d %s", i, st, body)
		}
	}
	if active() {
		t.Error("a signed resolution left the grant active")
	}
	page := ch.pageToken(siteAdminAccount)
	var view struct {
		Grant struct{ Status, EndReason string }
	}
	_, _, b := ch.siteCall(page, "GET", "/api/v1/site/access-requests/"+approvedID, nil)
	json.Unmarshal(b, &view)
	if view.Grant.EndReason != consent.ReasonTicketClosed {
		t.Errorf("admin page's grant after the ticket closed: %s", b)
	}
	st, _, b := ch.siteCall(page, "POST", "/api/v1/site/access-requests/"+pendingID+"/approve", nil)
	if st != http.StatusGone {
		t.Errorf("approving a request withdrawn by the ticket's closing: %d %s, want 410", st, b)
	}
}

// TestJiraWebhookWithoutSecret refuses every delivery when no secret is configured, instead
// of accepting unsigned ones.
func TestJiraWebhookWithoutSecret(t *testing.T) {
	ch := newConsentHarness(t, func(d *ConsentDeps) { d.WebhookSecret = secret.Secret{} })
	body := jiraBody("jira:issue_updated", consentTicket, "done")
	for _, sig := range []string{"", sign("", body)} {
		if st, _, b := ch.do("POST", "/webhooks/jira", map[string]string{"X-Hub-Signature": sig}, body); st != http.StatusUnauthorized {
			t.Errorf("signature %q: %d %s", sig, st, b)
		}
	}
}

func TestJiraEventTicketEnded(t *testing.T) {
	for _, c := range []struct {
		body    string
		key     string
		wantEnd bool
	}{
		{`{"webhookEvent":"jira:issue_updated","issue":{"key":"SUP-1","fields":{"status":{"statusCategory":{"key":"done"}}}}}`, "SUP-1", true},
		{`{"webhookEvent":"jira:issue_updated","issue":{"key":"SUP-1","fields":{"status":{"statusCategory":{"key":"new"}}}}}`, "", false},
		{`{"webhookEvent":"jira:issue_deleted","issue":{"key":"SUP-1"}}`, "SUP-1", true},
		{`{"webhookEvent":"jira:issue_updated","issue":{"fields":{"status":{"statusCategory":{"key":"done"}}}}}`, "", false},
		{`{"webhookEvent":"jira:issue_updated"}`, "", false},
	} {
		ev, err := parseJiraEvent([]byte(c.body))
		if err != nil {
			t.Fatal(err)
		}
		key, end := ev.ticketEnded()
		if end != c.wantEnd || (end && key != c.key) {
			t.Errorf("%s: ended %v %q, want %v %q", c.body, end, key, c.wantEnd, c.key)
		}
	}
}

// FuzzVerifyHubSignature: no header crashes the check, and only the true signature passes.
func FuzzVerifyHubSignature(f *testing.F) {
	body := jiraBody("jira:issue_updated", "SUP-1", "done")
	f.Add(body, sign(webhookSecret, body))
	f.Add(body, "sha256=")
	f.Add([]byte{}, "sha256="+strings.Repeat("0", 64))
	f.Add(body, "SHA256="+strings.Repeat("f", 64))
	f.Fuzz(func(t *testing.T, body []byte, header string) {
		ok := verifyHubSignature([]byte(webhookSecret), body, header)
		want := hmac.New(sha256.New, []byte(webhookSecret))
		want.Write(body)
		hexSig, has := strings.CutPrefix(strings.TrimSpace(header), "sha256=")
		got, err := hex.DecodeString(hexSig)
		if ok && (!has || err != nil || !hmac.Equal(got, want.Sum(nil))) {
			t.Errorf("accepted a wrong signature %q", header)
		}
		if !verifyHubSignature([]byte(webhookSecret), body, sign(webhookSecret, body)) {
			t.Error("refused the true signature")
		}
	})
}

// FuzzParseJiraEvent: no body crashes the parser, and a parsed event names a ticket only
// when it ends one.
func FuzzParseJiraEvent(f *testing.F) {
	f.Add(jiraBody("jira:issue_updated", "SUP-1", "done"))
	f.Add([]byte(`{"webhookEvent":"jira:issue_deleted","issue":{"key":"X-1"}}`))
	f.Add([]byte(`{"issue":{"fields":{"status":null}}}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, body []byte) {
		ev, err := parseJiraEvent(body)
		if err != nil {
			return
		}
		if key, ended := ev.ticketEnded(); ended && key == "" {
			t.Error("ended a ticket without a key")
		}
	})
}

package httpapi

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/supportbridge/supportbridge/internal/consent"
)

// signaturePrefix is how Jira (like GitHub) names the algorithm in X-Hub-Signature.
const signaturePrefix = "sha256="

// verifyHubSignature checks header against the HMAC-SHA256 of body under key. It decodes the
// hex first and compares bytes with hmac.Equal, so neither the case of the hex digits nor the
// position of the first wrong byte changes the answer or its timing.
func verifyHubSignature(key, body []byte, header string) bool {
	if len(key) == 0 {
		return false
	}
	hexSig, ok := strings.CutPrefix(strings.TrimSpace(header), signaturePrefix)
	if !ok {
		return false
	}
	got, err := hex.DecodeString(hexSig)
	if err != nil || len(got) != sha256.Size {
		return false
	}
	m := hmac.New(sha256.New, key)
	m.Write(body)
	return hmac.Equal(got, m.Sum(nil))
}

// jiraEvent is the part of a Jira issue webhook this service reads. Jira sends far more;
// unknown fields are ignored because Atlassian adds fields without notice.
type jiraEvent struct {
	WebhookEvent string `json:"webhookEvent"`
	Issue        struct {
		Key    string `json:"key"`
		Fields struct {
			Status struct {
				StatusCategory struct {
					Key string `json:"key"`
				} `json:"statusCategory"`
			} `json:"status"`
		} `json:"fields"`
	} `json:"issue"`
}

// ticketEnded says which ticket, if any, an event ends the grants of. Jira's status
// categories are "new", "indeterminate" and "done"; every resolved or closed workflow status
// is in "done" whatever it is called, so the category is what we test, not the status name.
// A deleted issue ends its grants too: there is no ticket left to justify access.
func (e jiraEvent) ticketEnded() (string, bool) {
	if e.Issue.Key == "" {
		return "", false
	}
	switch e.WebhookEvent {
	case "jira:issue_updated":
		return e.Issue.Key, e.Issue.Fields.Status.StatusCategory.Key == "done"
	case "jira:issue_deleted":
		return e.Issue.Key, true
	}
	return "", false
}

// parseJiraEvent decodes a webhook body that has already passed the signature check.
func parseJiraEvent(body []byte) (jiraEvent, error) {
	var e jiraEvent
	if err := json.Unmarshal(body, &e); err != nil {
		return jiraEvent{}, badRequest("The body is not a Jira webhook JSON document.")
	}
	return e, nil
}

// jiraWebhook receives Jira's issue events. The signature covers the raw bytes, so the body
// is read whole before anything parses it. Events that end no grant are acknowledged with
// 204 so Jira does not retry them.
func (s *Server) jiraWebhook(c *gin.Context) {
	body, err := io.ReadAll(c.Request.Body)
	if err != nil {
		s.fail(c, err)
		return
	}
	if s.consent.WebhookSecret.IsZero() {
		s.fail(c, unauthorized("This deployment accepts no Jira webhooks: SB_JIRA_WEBHOOK_SECRET is not set."))
		return
	}
	if !verifyHubSignature(s.consent.WebhookSecret.Bytes(), body, c.GetHeader("X-Hub-Signature")) {
		s.fail(c, unauthorized("X-Hub-Signature is missing or does not match the body (HMAC-SHA256, \"sha256=<hex>\")."))
		return
	}
	ev, err := parseJiraEvent(body)
	if err != nil {
		s.fail(c, err)
		return
	}
	key, ended := ev.ticketEnded()
	if !ended {
		c.Status(http.StatusNoContent)
		return
	}
	end := s.consent.Service.TicketClosed
	if ev.WebhookEvent == "jira:issue_deleted" {
		end = s.consent.Service.TicketDeleted
	}
	// A ticket with no requests is the common case (most tickets never ask for logs), and
	// not an error Jira could do anything about.
	if err := end(c.Request.Context(), key); err != nil && !errors.Is(err, consent.ErrTicketUnknown) && !errors.Is(err, consent.ErrNotFound) {
		s.fail(c, err)
		return
	}
	c.Status(http.StatusNoContent)
}

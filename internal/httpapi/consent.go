package httpapi

import (
	"context"
	"errors"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/supportbridge/supportbridge/internal/agentauth"
	"github.com/supportbridge/supportbridge/internal/consent"
	"github.com/supportbridge/supportbridge/internal/secret"
)

// ConsentService is what the consent routes need of the consent domain; *consent.Service
// implements it.
type ConsentService interface {
	RequestAccess(ctx context.Context, agent consent.Actor, in consent.RequestInput) (consent.AccessRequest, error)
	GetRequest(ctx context.Context, id string) (consent.AccessRequest, error)
	ListRequests(ctx context.Context, ticketKey string) ([]consent.AccessRequest, error)
	CancelRequest(ctx context.Context, by consent.Actor, id string) error
	View(ctx context.Context, token string) (consent.View, error)
	Approve(ctx context.Context, token, duration string) (consent.Grant, error)
	Deny(ctx context.Context, token, reason string) error
	RevokeByCustomer(ctx context.Context, token string) error
	ListGrants(ctx context.Context, ticketKey string) ([]consent.Grant, error)
	GetGrant(ctx context.Context, id string) (consent.Grant, error)
	RevokeGrant(ctx context.Context, by consent.Actor, grantID string) error
	TicketClosed(ctx context.Context, ticketKey string) error
	TenantUninstalled(ctx context.Context, tenant string) error
	Evidence(ctx context.Context, ticketKey string) (consent.Evidence, error)
}

// AgentAuthenticator says which support agent an Authorization header belongs to;
// *agentauth.Authenticator implements it.
type AgentAuthenticator interface {
	Authenticate(ctx context.Context, authorizationHeader string) (agentauth.Agent, error)
}

// ConsentDeps are the dependencies of the consent routes. The routes are always registered,
// so the router matches openapi.yaml in every deployment; without a Service they answer 503,
// without Agents every agent call is 401, and without WebhookSecret every webhook is 401.
type ConsentDeps struct {
	Service ConsentService
	Agents  AgentAuthenticator
	// WebhookSecret keys the HMAC of Jira's webhook (SB_JIRA_WEBHOOK_SECRET).
	WebhookSecret secret.Secret
}

// consentRoutes registers the agent-facing, customer-facing and webhook routes of consent.
// The agent routes sit under /api/v1 beside the app routes but on the engine, not in the app
// group, so they get agent authentication instead of Atlassian token authentication.
func (s *Server) consentRoutes(r *gin.Engine) {
	json := requireContentType("application/json")
	agent := []gin.HandlerFunc{s.consentConfigured(s.writeConsentProblem), s.agentAuth()}
	with := func(h ...gin.HandlerFunc) []gin.HandlerFunc {
		return append(append([]gin.HandlerFunc{}, agent...), h...)
	}
	r.POST("/api/v1/access-requests", with(json, s.createAccessRequest)...)
	r.GET("/api/v1/access-requests", with(s.listAccessRequests)...)
	r.GET("/api/v1/access-requests/:id", with(s.getAccessRequest)...)
	r.DELETE("/api/v1/access-requests/:id", with(s.cancelAccessRequest)...)
	r.GET("/api/v1/grants", with(s.listGrants)...)
	r.POST("/api/v1/grants/:id/revoke", with(s.revokeGrant)...)
	r.GET("/api/v1/tickets/:key/evidence", with(s.ticketEvidence)...)

	// Customer-facing: the token in the path is the only credential.
	page := s.consentPageHeaders()
	pageConfigured := s.consentConfigured(s.writeConsentUnconfiguredPage)
	form := s.consentForm()
	r.GET("/consent/:token", page, pageConfigured, s.consentPage)
	r.POST("/consent/:token/approve", page, pageConfigured, form, s.consentApprove)
	r.POST("/consent/:token/deny", page, pageConfigured, form, s.consentDeny)
	r.POST("/consent/:token/revoke", page, pageConfigured, form, s.consentRevoke)

	r.POST("/webhooks/jira", s.consentConfigured(s.writeConsentProblem), s.jiraWebhook)
}

// consentConfigured stops requests when the deployment has no consent service wired.
func (s *Server) consentConfigured(write func(*gin.Context)) gin.HandlerFunc {
	return func(c *gin.Context) {
		if s.consent.Service == nil {
			write(c)
			return
		}
		c.Next()
	}
}

func (s *Server) writeConsentProblem(c *gin.Context) {
	writeProblem(c, unavailable("Log-access consent is not configured on this deployment.", 0))
}

// failConsent answers with the problem for a consent error. Consent errors are mapped here
// first so the routes work whether or not consentProblem is among the server's mappers.
func (s *Server) failConsent(c *gin.Context, err error) {
	if p := consentProblem(err); p != nil {
		err = p
	}
	s.fail(c, err)
}

// consentProblem maps consent's domain errors to problems. Unknown ticket and stream are
// validation failures of the agent's request, reported on the field that named them.
func consentProblem(err error) *Problem {
	var ve *consent.ValidationError
	var p *Problem
	switch {
	case errors.As(err, &p):
		return nil // already a problem; problemFor passes it through
	case errors.As(err, &ve):
		return badRequest("The access request is invalid.",
			fieldErrors(ve.Fields, func(f consent.FieldError) (string, string) { return f.Path, f.Message })...)
	case errors.Is(err, consent.ErrTicketUnknown):
		return badRequest("The ticket is unknown.", FieldError{Field: "/ticketKey", Message: "no ticket with this key came from a known tenant"})
	case errors.Is(err, consent.ErrStreamUnknown):
		return badRequest("A log stream is unknown.", FieldError{Field: "/streams", Message: "names a stream the tenant does not have"})
	case errors.Is(err, consent.ErrNotFound):
		return notFound("No such access request, grant or ticket.")
	case errors.Is(err, consent.ErrForbidden):
		return forbidden("Only the agent who holds a grant, or an admin, may do this.")
	case errors.Is(err, consent.ErrAlreadyDecided):
		return problem(http.StatusConflict, "already-decided", "Already decided",
			"The request has already been decided, cancelled or ended; it cannot change again.")
	case errors.Is(err, consent.ErrGone):
		return problem(http.StatusGone, "gone", "No longer available",
			"The request expired or was withdrawn.")
	case errors.Is(err, consent.ErrNoActiveGrant):
		return forbidden("There is no active grant for this access.")
	case errors.Is(err, consent.ErrOutOfScope):
		return forbidden("The access is outside the grant's streams or log window.")
	}
	return nil
}

// actorOf turns an authenticated agent into the consent actor that acts for them.
func actorOf(a agentauth.Agent) consent.Actor {
	kind := consent.ActorAgent
	if a.IsAdmin() {
		kind = consent.ActorAdmin
	}
	return consent.Actor{Kind: kind, Name: a.Name, Email: a.Email, Subject: a.Subject}
}

package httpapi

import (
	"context"

	"github.com/gin-gonic/gin"

	"github.com/supportbridge/supportbridge/internal/agentauth"
	"github.com/supportbridge/supportbridge/internal/connect"
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
	SiteRequests(ctx context.Context, who consent.SiteAdmin, cursor string, limit int) ([]consent.AccessRequest, string, error)
	SiteView(ctx context.Context, who consent.SiteAdmin, id string) (consent.View, error)
	Approve(ctx context.Context, who consent.SiteAdmin, id, duration string) (consent.Grant, error)
	Deny(ctx context.Context, who consent.SiteAdmin, id, note string) (consent.AccessRequest, error)
	SiteGrants(ctx context.Context, who consent.SiteAdmin, cursor string, limit int) ([]consent.Grant, string, error)
	RevokeBySite(ctx context.Context, who consent.SiteAdmin, grantID string) (consent.Grant, error)
	ListGrants(ctx context.Context, ticketKey string) ([]consent.Grant, error)
	GetGrant(ctx context.Context, id string) (consent.Grant, error)
	RevokeGrant(ctx context.Context, by consent.Actor, grantID string) error
	TicketClosed(ctx context.Context, ticketKey string) error
	TicketDeleted(ctx context.Context, ticketKey string) error
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
	r.GET("/api/v1/grants/:id/logs", with(s.grantLogs)...)
	r.GET("/api/v1/tickets/:key/evidence", with(s.ticketEvidence)...)

	// Customer-facing: an administrator of the customer's site, in the app's admin page.
	r.GET(connect.PathSupportAccess, s.supportAccessPage)
	r.GET("/static/:version/:file", s.static)
	site := func(h ...gin.HandlerFunc) []gin.HandlerFunc {
		return append([]gin.HandlerFunc{s.consentConfigured(s.writeConsentProblem), s.siteAuth()}, h...)
	}
	r.GET("/api/v1/site/access-requests", site(s.siteListRequests)...)
	r.GET("/api/v1/site/access-requests/:id", site(s.siteGetRequest)...)
	r.POST("/api/v1/site/access-requests/:id/approve", site(s.siteApprove)...)
	r.POST("/api/v1/site/access-requests/:id/deny", site(s.siteDeny)...)
	r.GET("/api/v1/site/grants", site(s.siteListGrants)...)
	r.POST("/api/v1/site/grants/:id/revoke", site(s.siteRevoke)...)

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

// actorOf turns an authenticated agent into the consent actor that acts for them.
func actorOf(a agentauth.Agent) consent.Actor {
	kind := consent.ActorAgent
	if a.IsAdmin() {
		kind = consent.ActorAdmin
	}
	return consent.Actor{Kind: kind, Name: a.Name, Email: a.Email, Subject: a.Subject}
}

// endWords says why a grant ended, for the agent.
func endWords(reason string) string {
	switch reason {
	case consent.ReasonExpired:
		return "it expired"
	case consent.ReasonRevokedByCustomer:
		return "the customer revoked it"
	case consent.ReasonRevokedByAgent:
		return "you gave it up"
	case consent.ReasonRevokedByAdmin:
		return "a support administrator revoked it"
	case consent.ReasonTicketClosed:
		return "the ticket was resolved or closed"
	case consent.ReasonTicketDeleted:
		return "the ticket was deleted"
	case consent.ReasonTenantUninstalled:
		return "the app is uninstalled or disabled on the customer's site"
	case consent.ReasonNotReconfirmed:
		return "the customer did not confirm standing access again"
	}
	return "it ended"
}

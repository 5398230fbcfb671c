package httpapi

import (
	"github.com/gin-gonic/gin"
)

// middleware is the chain every route runs behind, in order.
func (s *Server) middleware() []gin.HandlerFunc {
	return []gin.HandlerFunc{withRequestID(), s.accessLog(), s.recoverPanics(), s.measure(), securityHeaders(), limitBody(s.cfg.MaxBodyBytes, s.bodyLimits)}
}

// Routes builds the router. Every route of the service is listed here, and openapi.yaml
// describes exactly these (a test keeps the two equal).
func (s *Server) Routes() *gin.Engine {
	r := s.newEngine()
	r.HandleMethodNotAllowed = true
	r.ContextWithFallback = true
	r.Use(s.middleware()...)
	r.NoRoute(func(c *gin.Context) { writeProblem(c, notFound("No route matches this path.")) })
	r.NoMethod(func(c *gin.Context) {
		writeProblem(c, problem(405, "method-not-allowed", "Method not allowed", "This path does not accept this method."))
	})

	// Operations.
	r.GET("/healthz", s.healthz)
	r.GET("/readyz", s.readyz)
	r.GET("/metrics", s.metricsHandler())
	r.GET("/openapi.yaml", s.openAPI)

	// Atlassian-facing.
	r.GET("/atlassian-connect.json", s.connectDescriptor)
	json := requireContentType("application/json")
	r.POST("/connect/installed", json, s.installed)
	r.POST("/connect/uninstalled", json, s.uninstalled)
	r.POST("/connect/enabled", json, s.enabled)
	r.POST("/connect/disabled", json, s.disabled)
	r.GET("/connect/report-dialog", s.reportDialog)
	r.POST("/forge/lifecycle", json, s.forgeLifecycle)

	// App-facing.
	app := r.Group("/api/v1", s.appAuth())
	app.POST("/reports", requireContentType("application/json", "multipart/form-data"), s.createReport)
	app.GET("/reports/:id", s.getReport)
	app.POST("/errors", json, s.postErrors)

	// Agent-facing: browser error groups of a tenant.
	r.GET("/api/v1/errors/groups", s.agentAuth(), s.errorGroups)

	// Admin-facing: retry a failed report.
	r.POST("/api/v1/reports/:id/retry", s.agentAuth(), s.retryReport)

	// Agent-facing, customer-facing and Jira webhook routes of log-access consent.
	s.consentRoutes(r)

	// Admin-facing: the data lifecycle (tenant purge and status, usage stats, erasure).
	s.lifecycleRoutes(r)
	return r
}

package httpapi

import (
	"net/http"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// healthz says the process is alive; it checks nothing else, so an orchestrator does not
// restart a healthy process because Redis blinked.
func (s *Server) healthz(c *gin.Context) {
	c.JSON(http.StatusOK, gin.H{"status": "ok"})
}

// readyz says whether this replica can serve: Redis answers, and the worker and JSM
// configuration are fine when they are part of the check.
func (s *Server) readyz(c *gin.Context) {
	if err := s.ready(c.Request.Context()); err != nil {
		s.log.WarnContext(c.Request.Context(), "not_ready", "error", err)
		writeProblem(c, unavailable(readinessDetail(err), 5))
		return
	}
	c.JSON(http.StatusOK, gin.H{"status": "ready"})
}

// ReadinessError is returned by a readiness check with a message safe to show operators.
type ReadinessError struct{ Detail string }

func (e *ReadinessError) Error() string { return e.Detail }

func readinessDetail(err error) string {
	if re, ok := err.(*ReadinessError); ok {
		return re.Detail
	}
	return "A dependency does not answer."
}

// metricsHandler serves /metrics on the main router, unless SB_METRICS_ADDR moved metrics to
// a listener of their own: then the route stays (it is part of the contract) and answers 404,
// so the API's public address does not expose them.
func (s *Server) metricsHandler() gin.HandlerFunc {
	if s.cfg.MetricsAddr != "" {
		return func(c *gin.Context) {
			writeProblem(c, notFound("No route matches this path.")) // as for any unknown path
		}
	}
	return gin.WrapH(s.MetricsHandler())
}

// MetricsHandler serves the registry in the Prometheus exposition format, for the separate
// metrics listener of SB_METRICS_ADDR.
func (s *Server) MetricsHandler() http.Handler {
	return promhttp.HandlerFor(s.registry, promhttp.HandlerOpts{})
}

func (s *Server) openAPI(c *gin.Context) {
	c.Data(http.StatusOK, "application/yaml", s.openapi)
}

func (s *Server) connectDescriptor(c *gin.Context) {
	c.Header("Cache-Control", "no-cache")
	c.JSON(http.StatusOK, s.descriptor)
}

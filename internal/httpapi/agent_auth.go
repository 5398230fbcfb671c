package httpapi

import (
	"encoding/json"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/supportbridge/supportbridge/internal/agentauth"
)

const agentKey = "sb.agent"

// agentOf returns the agent agentAuth put on the request.
func agentOf(c *gin.Context) agentauth.Agent {
	v, _ := c.Get(agentKey)
	a, _ := v.(agentauth.Agent)
	return a
}

// agentAuth authenticates agent-facing routes with "Authorization: Bearer <agent token>".
// An Atlassian app token is not an agent token: it fails here like any unknown token.
func (s *Server) agentAuth() gin.HandlerFunc {
	return func(c *gin.Context) {
		if s.consent.Agents == nil {
			s.writeAgentProblem(c, unauthorized("Agent authentication is not configured on this deployment."))
			return
		}
		a, err := s.consent.Agents.Authenticate(c.Request.Context(), c.GetHeader("Authorization"))
		if err != nil {
			p := agentProblem(err)
			if p == nil {
				s.fail(c, err)
				return
			}
			if p.Status == http.StatusServiceUnavailable {
				// The identity provider is down: operators need the cause, the caller does not.
				s.log.WarnContext(c.Request.Context(), "agent_auth_unavailable", "request_id", requestID(c), "error", err)
			}
			s.writeAgentProblem(c, p)
			return
		}
		c.Set(agentKey, a)
		c.Next()
	}
}

// writeAgentProblem is writeProblem with the Bearer challenge RFC 6750 asks of a 401, which
// writeProblem (made for Atlassian's JWT scheme) would name wrongly.
func (s *Server) writeAgentProblem(c *gin.Context, p *Problem) {
	if p.Status != http.StatusUnauthorized {
		writeProblem(c, p)
		return
	}
	p.RequestID = requestID(c)
	c.Header("WWW-Authenticate", `Bearer realm="supportbridge agents"`)
	b, _ := json.Marshal(p)
	c.Abort()
	c.Data(p.Status, "application/problem+json", b)
}

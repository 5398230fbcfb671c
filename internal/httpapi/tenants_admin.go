package httpapi

import (
	"context"
	"errors"
	"net/http"
	"unicode"
	"unicode/utf8"

	"github.com/gin-gonic/gin"

	"github.com/supportbridge/supportbridge/internal/lifecycle"
	"github.com/supportbridge/supportbridge/internal/usage"
)

// Purger purges tenants and says what is held of them; *lifecycle.Service implements it.
type Purger interface {
	Purge(ctx context.Context, tenant string) (lifecycle.Receipt, error)
	Describe(ctx context.Context, tenant string) (lifecycle.Status, error)
}

// Eraser answers erasure requests for one person; *lifecycle.Eraser implements it.
type Eraser interface {
	Erase(ctx context.Context, accountID, email string) (lifecycle.Erasure, error)
}

// DataLifecycleDeps wires the admin routes of the data lifecycle; a nil part answers 503.
type DataLifecycleDeps struct {
	Purger Purger
	Usage  usage.Store
	Eraser Eraser
}

// adminBodyLimit bounds the small JSON bodies of the lifecycle admin routes.
const adminBodyLimit = 4 << 10

// maxTenantKey bounds a tenant key in a path; Connect clientKeys and cloud ids are far
// shorter.
const maxTenantKey = 256

// lifecycleRoutes adds the admin routes of the data lifecycle.
func (s *Server) lifecycleRoutes(r *gin.Engine) {
	admin := []gin.HandlerFunc{s.agentAuth(), s.requireAdmin()}
	with := func(h ...gin.HandlerFunc) []gin.HandlerFunc {
		return append(append([]gin.HandlerFunc{}, admin...), h...)
	}
	r.GET("/api/v1/tenants/:tenant", with(s.getTenant)...)
	r.POST("/api/v1/tenants/:tenant/purge", with(requireContentType("application/json"), s.purgeTenant)...)
	r.GET("/api/v1/stats", with(s.getStats)...)
	r.POST("/api/v1/privacy/erase", with(requireContentType("application/json"), s.privacyErase)...)
}

// requireAdmin lets only agents with the admin role through.
func (s *Server) requireAdmin() gin.HandlerFunc {
	return func(c *gin.Context) {
		if !agentOf(c).IsAdmin() {
			s.writeAgentProblem(c, forbidden("Only admins may use this route."))
			return
		}
		c.Next()
	}
}

// tenantParam reads and checks the {tenant} path segment.
func tenantParam(c *gin.Context) (string, *Problem) {
	t := c.Param("tenant")
	if t == "" || len(t) > maxTenantKey || !utf8.ValidString(t) {
		return "", badRequest("The tenant key is invalid.", FieldError{Field: "path:tenant", Message: "must be a clientKey or cloud id of 1 to 256 characters"})
	}
	for _, r := range t {
		if unicode.IsControl(r) || unicode.IsSpace(r) {
			return "", badRequest("The tenant key is invalid.", FieldError{Field: "path:tenant", Message: "must not hold spaces or control characters"})
		}
	}
	return t, nil
}

// lifecycleProblem maps the lifecycle domain's errors.
func lifecycleProblem(err error) *Problem {
	switch {
	case errors.Is(err, lifecycle.ErrNotFound):
		return notFound("The service holds nothing of this tenant and never purged it.")
	case errors.Is(err, lifecycle.ErrSuperseded):
		return problem(http.StatusConflict, "purge-superseded", "Purge superseded",
			"Another purge of this tenant took over; read the tenant to see its tombstone.")
	}
	return nil
}

func (s *Server) failLifecycle(c *gin.Context, err error) {
	if p := lifecycleProblem(err); p != nil {
		writeProblem(c, p)
		return
	}
	s.fail(c, err)
}

// getTenant shows install state, the deletion date and counts of what is held.
func (s *Server) getTenant(c *gin.Context) {
	t, p := tenantParam(c)
	if p != nil {
		writeProblem(c, p)
		return
	}
	if s.dataLife.Purger == nil {
		s.fail(c, unavailable("Tenant administration is not configured on this replica.", 30))
		return
	}
	st, err := s.dataLife.Purger.Describe(c.Request.Context(), t)
	if err != nil {
		s.failLifecycle(c, err)
		return
	}
	c.JSON(http.StatusOK, st)
}

type purgeBody struct {
	Confirm *string `json:"confirm"`
}

// purgeTenant deletes a tenant's data now. The body repeats the tenant key, so a purge is
// never one mistyped path away.
func (s *Server) purgeTenant(c *gin.Context) {
	ctx := c.Request.Context()
	t, p := tenantParam(c)
	if p != nil {
		writeProblem(c, p)
		return
	}
	c.Request.Body = http.MaxBytesReader(c.Writer, c.Request.Body, adminBodyLimit)
	var b purgeBody
	if err := decodeJSON(c.Request.Body, &b); err != nil {
		s.fail(c, err)
		return
	}
	switch {
	case b.Confirm == nil:
		writeProblem(c, badRequest("Confirm the purge.", FieldError{Field: "/confirm", Message: "is required: the tenant key of the path"}))
		return
	case *b.Confirm != t:
		writeProblem(c, badRequest("The confirmation does not match.", FieldError{Field: "/confirm", Message: "must equal the tenant key of the path"}))
		return
	}
	if s.dataLife.Purger == nil {
		s.fail(c, unavailable("Tenant purges are not configured on this replica.", 30))
		return
	}
	r, err := s.dataLife.Purger.Purge(ctx, t)
	if err != nil {
		s.failLifecycle(c, err)
		return
	}
	s.log.InfoContext(ctx, "tenant_purge_requested", "request_id", requestID(c), "tenant_key_hash", r.TenantKeyHash, "by", agentOf(c).Subject)
	c.JSON(http.StatusOK, r)
}

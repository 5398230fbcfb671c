package httpapi

import (
	"context"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/supportbridge/supportbridge/internal/report"
)

// ReportReader reads the delivery status of a tenant's report.
type ReportReader interface {
	Status(ctx context.Context, tenantKey, id string) (report.Status, error)
}

// noReports answers before the report store is wired in.
type noReports struct{}

func (noReports) Status(context.Context, string, string) (report.Status, error) {
	return report.Status{}, report.ErrNotFound
}

func (s *Server) getReport(c *gin.Context) {
	p := principal(c)
	st, err := s.reports.Status(c.Request.Context(), p.TenantKey, c.Param("id"))
	if err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, st)
}

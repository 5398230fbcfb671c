package httpapi

import (
	"context"
	"io"
	"io/fs"
	"net/http"
	"strconv"

	"github.com/gin-gonic/gin"

	"github.com/supportbridge/supportbridge/internal/errortrack"
)

// ErrorTracker is what the error routes need of browser error tracking;
// *errortrack.Service implements it.
type ErrorTracker interface {
	Accept(ctx context.Context, tenantKey, accountID string, events []errortrack.Event) (int, error)
	Groups(ctx context.Context, tenantKey, cursor string, limit int) (errortrack.Page, error)
}

// errorTracking holds the error routes' dependencies: the tracker and the capture script.
type errorTracking struct {
	tracker ErrorTracker
	script  *staticFiles // nil when no script files were given
}

// errorsPath is the intake route; its body limit is errortrack's, not the server default.
const errorsPath = "/api/v1/errors"

func newErrorTracking(t ErrorTracker, script fs.FS, basePath string, bodyLimits map[string]int64) errorTracking {
	bodyLimits[errorsPath] = errortrack.MaxBodyBytes
	et := errorTracking{tracker: t}
	if script != nil {
		sf, err := newStaticFiles(script, basePath)
		if err != nil {
			panic(err) // the files are embedded in the binary: a broken set is a build defect
		}
		et.script = sf
	}
	return et
}

// ErrorCaptureURL is where error-capture.js is served (a path under the public base URL, with
// the content version in it), for pages that include it; empty when it is not configured.
func (s *Server) ErrorCaptureURL() string {
	if s.errs.script == nil {
		return ""
	}
	return s.errs.script.url("error-capture.js")
}

// errorsAccepted is the answer to an accepted batch.
type errorsAccepted struct {
	Accepted int `json:"accepted"`
}

// postErrors takes a batch of browser error events. Tenant and user come from the token;
// the user is stored only as a daily anonymous tracking id.
func (s *Server) postErrors(c *gin.Context) {
	if s.errs.tracker == nil {
		s.fail(c, unavailable("Error tracking is not configured on this deployment.", 0))
		return
	}
	body, err := io.ReadAll(c.Request.Body)
	if err != nil {
		s.fail(c, err)
		return
	}
	events, err := errortrack.ParseBatch(body)
	if err != nil {
		s.fail(c, err)
		return
	}
	p := principal(c)
	n, err := s.errs.tracker.Accept(c.Request.Context(), p.TenantKey, p.AccountID, events)
	if err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusAccepted, errorsAccepted{Accepted: n})
}

// errorGroups lists a tenant's error groups for support agents.
func (s *Server) errorGroups(c *gin.Context) {
	if s.errs.tracker == nil {
		s.fail(c, unavailable("Error tracking is not configured on this deployment.", 0))
		return
	}
	tenantKey := c.Query("tenant")
	if tenantKey == "" {
		s.fail(c, badRequest("Name the tenant whose errors to list.", FieldError{Field: "query:tenant", Message: "is required (the clientKey)"}))
		return
	}
	limit := 50
	if v := c.Query("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 100 {
			s.fail(c, badRequest("The limit is invalid.", FieldError{Field: "query:limit", Message: "must be an integer from 1 to 100"}))
			return
		}
		limit = n
	}
	page, err := s.errs.tracker.Groups(c.Request.Context(), tenantKey, c.Query("cursor"), limit)
	if err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, page)
}

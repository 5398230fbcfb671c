package httpapi

import (
	"context"
	"errors"
	"fmt"
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
		s.failErrors(c, unavailable("Error tracking is not configured on this deployment.", 0))
		return
	}
	body, err := io.ReadAll(c.Request.Body)
	if err != nil {
		s.failErrors(c, err)
		return
	}
	events, err := errortrack.ParseBatch(body)
	if err != nil {
		s.failErrors(c, err)
		return
	}
	p := principal(c)
	n, err := s.errs.tracker.Accept(c.Request.Context(), p.TenantKey, p.AccountID, events)
	if err != nil {
		s.failErrors(c, err)
		return
	}
	c.JSON(http.StatusAccepted, errorsAccepted{Accepted: n})
}

// errorGroups lists a tenant's error groups for support agents.
func (s *Server) errorGroups(c *gin.Context) {
	if s.errs.tracker == nil {
		s.failErrors(c, unavailable("Error tracking is not configured on this deployment.", 0))
		return
	}
	tenantKey := c.Query("tenant")
	if tenantKey == "" {
		s.failErrors(c, badRequest("Name the tenant whose errors to list.", FieldError{Field: "query:tenant", Message: "is required (the clientKey)"}))
		return
	}
	limit := 50
	if v := c.Query("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 100 {
			s.failErrors(c, badRequest("The limit is invalid.", FieldError{Field: "query:limit", Message: "must be an integer from 1 to 100"}))
			return
		}
		limit = n
	}
	page, err := s.errs.tracker.Groups(c.Request.Context(), tenantKey, c.Query("cursor"), limit)
	if err != nil {
		s.failErrors(c, err)
		return
	}
	c.JSON(http.StatusOK, page)
}

// failErrors maps error-tracking errors first, so the routes need no entry in the server's
// list of mappers.
func (s *Server) failErrors(c *gin.Context, err error) {
	if p := errortrackProblem(err); p != nil {
		err = p
	}
	s.fail(c, err)
}

// errortrackProblem maps errortrack's errors to problems.
func errortrackProblem(err error) *Problem {
	var ve *errortrack.ValidationError
	var se *errortrack.SyntaxError
	var rl *errortrack.RateLimitedError
	switch {
	case errors.As(err, &ve):
		return badRequest("The error batch is invalid; nothing was stored.",
			fieldErrors(ve.Fields, func(f errortrack.FieldError) (string, string) { return f.Path, f.Message })...)
	case errors.As(err, &se):
		return badRequest(fmt.Sprintf("Malformed JSON at byte offset %d.", se.Offset))
	case errors.As(err, &rl):
		p := problem(http.StatusTooManyRequests, "rate-limited", "Too many error events",
			"This site sent more error events than its budget allows; nothing of this batch was stored. Retry after the time in Retry-After.")
		p.RetryAfter = retryAfterSeconds(rl.RetryAfter)
		return p
	case errors.Is(err, errortrack.ErrBadCursor):
		return badRequest("The cursor is invalid.", FieldError{Field: "query:cursor", Message: "must be a nextCursor this service returned"})
	}
	return nil
}

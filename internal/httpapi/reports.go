package httpapi

import (
	"bytes"
	"context"
	"math"
	"mime"
	"net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/supportbridge/supportbridge/internal/bufpool"
	"github.com/supportbridge/supportbridge/internal/report"
)

func (s *Server) getReport(c *gin.Context) {
	if s.reports == nil {
		s.fail(c, report.ErrNotFound)
		return
	}
	p := principal(c)
	st, err := s.reports.Status(c.Request.Context(), p.TenantKey, c.Param("id"))
	if err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, st)
}

// reportAccepted is the answer to an accepted report.
type reportAccepted struct {
	ID        string       `json:"id"`
	Status    report.State `json:"status"`
	StatusURL string       `json:"statusUrl"`
}

// admitAfterReading is the largest declared body that is read before the rate limits are
// asked: below it, reading costs less than the extra Redis call.
const admitAfterReading = 64 << 10

// maxIdempotencyKey bounds the header; IETF's draft suggests UUIDs, so 255 is generous.
const maxIdempotencyKey = 255

// createReport decodes a problem report and hands it to report.Service, which stores and
// queues it before the 202. Tenant and user come from the verified token only.
func (s *Server) createReport(c *gin.Context) {
	ctx := c.Request.Context()
	if s.reports == nil {
		s.fail(c, unavailable("Report intake is not configured on this replica.", 30))
		return
	}
	idemKey := c.GetHeader("Idempotency-Key")
	if len(idemKey) > maxIdempotencyKey || strings.IndexFunc(idemKey, func(r rune) bool { return r < 0x21 || r > 0x7e }) >= 0 {
		s.fail(c, badRequest("The Idempotency-Key header is invalid.",
			FieldError{Field: "header:Idempotency-Key", Message: "must be 1-255 visible ASCII characters"}))
		return
	}
	p := principal(c)
	who := report.Submitter{
		TenantKey: p.TenantKey, AccountID: p.AccountID, UserAgent: c.GetHeader("User-Agent"), IdempotencyKey: idemKey,
		SiteToken: p.SiteToken, SiteAPI: p.SiteAPI,
	}

	// Refusals that need no body come before reading a large one: reading and decoding an
	// upload costs memory in proportion to its size, a rate limit costs one Redis call. A
	// small body costs less to read than that call, and the enqueue is held to the same
	// limits anyway, so it is read first.
	if n := c.Request.ContentLength; n < 0 || n > admitAfterReading {
		if err := s.reports.Admit(ctx, who); err != nil {
			s.refuseUnread(c, err)
			return
		}
	}
	release, err := s.admitBody(c)
	if err != nil {
		s.refuseUnread(c, err)
		return
	}
	// Everything this handler holds of the body (the attachments, the decoded and the
	// scrubbed report) is dropped when it returns, so the budget is given back then.
	defer release()

	in, atts, err := s.parseReport(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	// Scrubbing text attachments is the CPU-heavy part of intake: bound how much of it
	// runs at once, so a burst of large logs cannot starve the small reports.
	var text int64
	for _, a := range atts {
		if a.MediaType == "text/plain" || a.MediaType == "application/json" {
			text += a.Size
		}
	}
	if text > 0 {
		w, err := s.scrubGate.acquire(ctx.Done(), text)
		if err != nil {
			s.fail(c, err)
			return
		}
		defer s.scrubGate.release(w)
	}
	acc, err := s.reports.Submit(ctx, who, in, atts)
	if err != nil {
		s.fail(c, err)
		return
	}
	if acc.Replayed {
		c.Header("Idempotent-Replayed", "true")
	}
	statusURL := s.publicBase + "/api/v1/reports/" + acc.ID
	c.Header("Location", statusURL)
	c.JSON(http.StatusAccepted, reportAccepted{ID: acc.ID, Status: acc.State, StatusURL: statusURL})
}

// refuseUnread answers a request whose body was not read. It closes the connection after
// the answer: otherwise net/http reads up to 256 KiB of the unread body before it sends the
// answer, to keep the connection, which makes a slow uploader wait for its refusal and reads
// what the refusal is meant to spare.
func (s *Server) refuseUnread(c *gin.Context, err error) {
	if c.Request.ContentLength != 0 {
		c.Header("Connection", "close")
	}
	s.fail(c, err)
}

// parseReport reads a JSON body or a multipart body with a report part and attachments.
func (s *Server) parseReport(c *gin.Context) (report.Input, []report.Attachment, error) {
	mt, params, _ := mime.ParseMediaType(c.GetHeader("Content-Type"))
	if mt == "multipart/form-data" {
		return s.parser.ParseMultipartSized(c.Request.Body, params["boundary"], c.Request.ContentLength)
	}
	// The body is only read here: the parser copies what it keeps, so the buffer goes back
	// to the pool at once.
	buf := bufpool.Get()
	defer bufpool.Put(buf)
	if n := c.Request.ContentLength; n > 0 && n <= s.parser.Limits().MaxReportBytes {
		buf.Grow(int(n) + bytes.MinRead) // ReadFrom wants MinRead free to see the end
	}
	if _, err := buf.ReadFrom(c.Request.Body); err != nil {
		return report.Input{}, nil, err
	}
	in, err := s.parser.ParseJSON(buf.Bytes())
	return in, nil, err
}

func retryAfterSeconds(d time.Duration) int {
	return max(1, int(math.Ceil(d.Seconds())))
}

// ReportRetrier puts failed reports back on the queue (admins only).
type ReportRetrier interface {
	TenantOfReport(ctx context.Context, id string) (string, error)
	Retry(ctx context.Context, tenantKey, id string) error
}

// retryReport re-queues a failed report. Finished steps are not repeated, so a retry after
// fixing the JSM configuration completes the ticket instead of duplicating it.
func (s *Server) retryReport(c *gin.Context) {
	ctx := c.Request.Context()
	if !agentOf(c).IsAdmin() {
		s.writeAgentProblem(c, forbidden("Only admins may retry reports."))
		return
	}
	if s.retrier == nil {
		s.fail(c, unavailable("Report retries are not configured on this replica.", 30))
		return
	}
	id := c.Param("id")
	tenantKey, err := s.retrier.TenantOfReport(ctx, id)
	if err == nil {
		err = s.retrier.Retry(ctx, tenantKey, id)
	}
	if err != nil {
		s.fail(c, err)
		return
	}
	s.log.InfoContext(ctx, "report_retry_requested", "report_id", id, "by", agentOf(c).Subject)
	c.JSON(http.StatusAccepted, gin.H{"id": id, "status": report.StateQueued})
}

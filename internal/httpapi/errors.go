package httpapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/supportbridge/supportbridge/internal/agentauth"
	"github.com/supportbridge/supportbridge/internal/connect"
	"github.com/supportbridge/supportbridge/internal/consent"
	"github.com/supportbridge/supportbridge/internal/domain"
	"github.com/supportbridge/supportbridge/internal/errortrack"
	"github.com/supportbridge/supportbridge/internal/forge"
	"github.com/supportbridge/supportbridge/internal/logaccess"
	"github.com/supportbridge/supportbridge/internal/report"
	"github.com/supportbridge/supportbridge/internal/tenant"
)

// problemTypeBase prefixes every problem type; RFC 9457 wants a URI that names the kind.
const problemTypeBase = "urn:supportbridge:problem:"

// Problem is an RFC 9457 problem document. Detail is written for the caller and never holds
// library error text.
type Problem struct {
	Type      string       `json:"type"`
	Title     string       `json:"title"`
	Status    int          `json:"status"`
	Detail    string       `json:"detail,omitempty"`
	Instance  string       `json:"instance,omitempty"`
	RequestID string       `json:"requestId,omitempty"`
	Errors    []FieldError `json:"errors,omitempty"`
	// EndReason says why a grant is no longer active (expired, revoked_by_customer, …).
	EndReason  string `json:"endReason,omitempty"`
	RetryAfter int    `json:"-"`
}

// FieldError names one invalid field by its JSON path.
type FieldError struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

// Error lets a *Problem travel as an error from handlers to the one place that writes it.
func (p *Problem) Error() string { return fmt.Sprintf("%d %s: %s", p.Status, p.Title, p.Detail) }

func problem(status int, slug, title, detail string) *Problem {
	return &Problem{Type: problemTypeBase + slug, Title: title, Status: status, Detail: detail}
}

// Constructors of the problems handlers return; the mapping from domain errors is in
// problemFor.
func badRequest(detail string, fields ...FieldError) *Problem {
	p := problem(http.StatusBadRequest, "invalid-request", "Invalid request", detail)
	p.Errors = fields
	return p
}

func unauthorized(detail string) *Problem {
	return problem(http.StatusUnauthorized, "unauthorized", "Authentication failed", detail)
}

func forbidden(detail string) *Problem {
	return problem(http.StatusForbidden, "forbidden", "Not allowed", detail)
}

// appDisabled answers app calls of a tenant whose site administrator disabled the app: the
// token is fine, the site does not want the app to act.
func appDisabled() *Problem {
	return problem(http.StatusForbidden, "app-disabled", "App disabled",
		"The app is disabled on this site; a site administrator can enable it again under Manage apps.")
}

func notFound(detail string) *Problem {
	return problem(http.StatusNotFound, "not-found", "Not found", detail)
}

func unavailable(detail string, retryAfter int) *Problem {
	p := problem(http.StatusServiceUnavailable, "unavailable", "Temporarily unavailable", detail)
	p.RetryAfter = retryAfter
	return p
}

func internalError() *Problem {
	return problem(http.StatusInternalServerError, "internal", "Internal error",
		"The server could not complete the request. Quote the request id when reporting this.")
}

// writeProblem sends p as application/problem+json.
func writeProblem(c *gin.Context, p *Problem) {
	p.RequestID = requestID(c)
	if p.RetryAfter > 0 {
		c.Header("Retry-After", fmt.Sprint(p.RetryAfter))
	}
	if p.Status == http.StatusUnauthorized && c.GetHeader("Authorization") != "" {
		c.Header("WWW-Authenticate", `JWT realm="supportbridge"`)
	}
	b, _ := json.Marshal(p)
	c.Abort()
	c.Data(p.Status, "application/problem+json", b)
}

// fail answers the request with the problem for err; unknown errors are logged once here and
// become a 500 that says nothing internal.
func (s *Server) fail(c *gin.Context, err error) {
	p := s.problemFor(err)
	if p.Status >= 500 && p.Type == problemTypeBase+"internal" {
		s.log.ErrorContext(c.Request.Context(), "request_failed", "request_id", requestID(c), "route", c.FullPath(), "error", err)
	}
	writeProblem(c, p)
}

// failPage answers a page route (an iframe Atlassian shows to a person) with the same
// problem fail would give, as a small HTML page: a person reads it, not a client. The
// status, the words and the request id are the problem's.
func (s *Server) failPage(c *gin.Context, err error) {
	p := s.problemFor(err)
	if p.Status >= 500 && p.Type == problemTypeBase+"internal" {
		s.log.ErrorContext(c.Request.Context(), "request_failed", "request_id", requestID(c), "route", c.FullPath(), "error", err)
	}
	h := c.Writer.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", "default-src 'none'; frame-ancestors *")
	h.Set("Cache-Control", "no-store")
	h.Del("X-Frame-Options") // shown inside the customer's site, which frames the page
	if p.RetryAfter > 0 {
		h.Set("Retry-After", strconv.Itoa(p.RetryAfter))
	}
	c.Status(p.Status)
	_ = problemPage.Execute(c.Writer, struct {
		*Problem
		RequestID string
	}{p, requestID(c)})
	c.Abort()
}

var problemPage = template.Must(template.New("problem").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{{.Title}}</title></head>
<body><main><h1>{{.Title}}</h1><p>{{.Detail}}</p><p><small>Request id: {{.RequestID}}</small></p></main></body></html>
`))

// problemFor is the one mapping from errors to problems.
func (s *Server) problemFor(err error) *Problem {
	var p *Problem
	if errors.As(err, &p) {
		return p
	}
	var maxErr *http.MaxBytesError
	if errors.As(err, &maxErr) {
		return problem(http.StatusRequestEntityTooLarge, "too-large", "Request body too large",
			fmt.Sprintf("The request body is larger than %d bytes.", maxErr.Limit))
	}
	for _, m := range errorTable {
		if p := m(err); p != nil {
			return p
		}
	}
	return internalError()
}

// errorTable is the one mapping from the domain's errors to problem types, tried in order.
// Every handler answers errors through fail (or failPage for pages), so a new domain error
// gets its status, type and words here and nowhere else. Adapters translate their libraries'
// errors into domain ones before they get here (domain.ErrUnavailable, not a Redis error).
var errorTable = []func(error) *Problem{
	tenantProblem,     // installs and the Forge link (first: ErrIncomplete wraps a step's cause)
	authProblem,       // tokens of Atlassian and tenants' state
	agentProblem,      // agents' tokens
	reportProblem,     // report intake
	logProblem,        // reading logs under a grant (before consent: its words are the reader's)
	consentProblem,    // log-access consent and the site's decisions
	errortrackProblem, // browser error events
	forgeEventProblem, // Forge lifecycle events
	domainProblem,     // what every use case shares
}

// authProblem maps authentication errors. Reasons from the verifiers are fixed text safe to
// show, and make a broken integration debuggable.
func authProblem(err error) *Problem {
	var ce *connect.TokenError
	var fe *forge.InvalidTokenError
	switch {
	case errors.As(err, &ce):
		return unauthorized("Token rejected: " + ce.Reason + ".")
	case errors.As(err, &fe):
		return unauthorized("Token rejected: " + fe.Reason + ".")
	case errors.Is(err, connect.ErrInvalidToken), errors.Is(err, forge.ErrInvalidToken):
		return unauthorized("Token rejected.")
	case errors.Is(err, connect.ErrKeyUnavailable), errors.Is(err, forge.ErrKeysUnavailable):
		return unavailable("Atlassian's signing keys cannot be fetched right now; retry shortly.", 10)
	case errors.Is(err, tenant.ErrUninstalled):
		return unauthorized("The app is uninstalled from this site.")
	case errors.Is(err, tenant.ErrNotFound):
		return unauthorized("Unknown tenant: the app is not installed on this site.")
	case errors.Is(err, errNoConnectSecret):
		return unauthorized("The app is installed on this site through Forge only; send a Forge Invocation Token (Authorization: Bearer …).")
	}
	return nil
}

// agentProblem maps agentauth's errors. Their Reason is a fixed phrase written to be shown.
func agentProblem(err error) *Problem {
	reason := "token rejected"
	var ae *agentauth.Error
	if errors.As(err, &ae) && ae.Reason != "" {
		reason = ae.Reason
	}
	switch {
	case errors.Is(err, agentauth.ErrUnavailable):
		return unavailable("The agent identity provider cannot be reached to check the token; retry shortly.", 10)
	case errors.Is(err, agentauth.ErrForbidden):
		return forbidden("Agent token accepted but not allowed: " + reason + ".")
	case errors.Is(err, agentauth.ErrUnauthenticated):
		return unauthorized("Agent token rejected: " + reason + ".")
	}
	return nil
}

// reportProblem maps intake errors.
func reportProblem(err error) *Problem {
	var ve *report.ValidationError
	var se *report.SyntaxError
	var ue *report.UnsupportedAttachmentError
	var rl *report.RateLimitedError
	var ol *report.OverloadedError
	switch {
	case errors.Is(err, report.ErrNoUser):
		return forbidden("The token names no user; reports are raised on behalf of a user.")
	case errors.As(err, &ve):
		return badRequest("The report is invalid.",
			fieldErrors(ve.Fields, func(f report.FieldError) (string, string) { return f.Path, f.Message })...)
	case errors.As(err, &se):
		where := "body"
		if se.Part != "" {
			where = se.Part + " part"
		}
		return badRequest(fmt.Sprintf("Malformed %s at byte offset %d: %s", where, se.Offset, se.Msg))
	case errors.Is(err, report.ErrTooLarge):
		return problem(http.StatusRequestEntityTooLarge, "too-large", "Request body too large",
			"The report or its attachments are over the size limits (report 1 MiB; at most 5 attachments, 10 MiB in all).")
	case errors.As(err, &ue):
		return problem(http.StatusUnsupportedMediaType, "unsupported-attachment", "Unsupported attachment type",
			"Attachments may be PNG, JPEG, GIF, WebP, PDF, plain text or JSON; one file's content is "+ue.MediaType+".")
	case errors.Is(err, report.ErrIdempotencyMismatch):
		return problem(http.StatusUnprocessableEntity, "idempotency-mismatch", "Idempotency key reused",
			"This Idempotency-Key was used before with a different request; use a new key for a new report.")
	case errors.Is(err, report.ErrIdempotencyInFlight):
		return problem(http.StatusConflict, "idempotency-in-flight", "Request in progress",
			"A request with this Idempotency-Key is being processed; retry shortly.")
	case errors.As(err, &rl):
		p := problem(http.StatusTooManyRequests, "rate-limited", "Too many reports",
			"Too many reports from this "+rl.Scope+"; retry after the time in Retry-After.")
		p.RetryAfter = retryAfterSeconds(rl.RetryAfter)
		return p
	case errors.As(err, &ol):
		return unavailable("The report queue is full; nothing was stored. Retry after the time in Retry-After.", retryAfterSeconds(ol.RetryAfter))
	}
	return nil
}

// consentProblem maps consent's domain errors to problems. Unknown ticket and stream are
// validation failures of the agent's request, reported on the field that named them.
func consentProblem(err error) *Problem {
	var ve *consent.ValidationError
	var p *Problem
	var ng *consent.NoGrantError
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
	case errors.Is(err, consent.ErrNotSiteAdmin):
		return problem(http.StatusForbidden, "not-site-admin", "Not an administrator of this site",
			"Only people with the Administer Jira permission on this site can see and decide support access requests. Your site says you do not have it right now.")
	case errors.Is(err, consent.ErrSiteUnavailable):
		return unavailable("Your Atlassian site could not confirm your permission right now, so nothing was changed. Try again shortly.", 10)
	case errors.Is(err, consent.ErrTenantInactive):
		return problem(http.StatusForbidden, "tenant-inactive", "App not active on this site",
			"The app is uninstalled or disabled on this site, so support access cannot be requested, decided or used.")
	case errors.Is(err, consent.ErrAlreadyDecided):
		return problem(http.StatusConflict, "already-decided", "Already decided",
			"The request has already been decided, cancelled or ended; it cannot change again.")
	case errors.Is(err, consent.ErrGone):
		return problem(http.StatusGone, "gone", "No longer available",
			"The request expired or was withdrawn.")
	case errors.As(err, &ng):
		p := forbidden("There is no active grant for this access: " + endWords(ng.Reason) + ".")
		p.Type, p.EndReason = problemTypeBase+"grant-ended", ng.Reason
		return p
	case errors.Is(err, consent.ErrNoActiveGrant):
		return forbidden("There is no active grant for this access.")
	case errors.Is(err, consent.ErrOutOfScope):
		return forbidden("The access is outside the grant's streams or log window.")
	}
	return nil
}

// logProblem maps the read's own errors; consent's are mapped by consentProblem.
func logProblem(err error) *Problem {
	switch {
	case errors.Is(err, logaccess.ErrOutsideWindow):
		return problem(http.StatusRequestedRangeNotSatisfiable, "outside-window", "Outside the grant's window",
			"The asked time window does not overlap the log window the customer approved.")
	case errors.Is(err, logaccess.ErrStreamRequired):
		return badRequest("Name the stream to read.", FieldError{Field: "query:stream", Message: "is required: the grant covers several streams"})
	case errors.Is(err, logaccess.ErrBudgetSpent):
		p := forbidden("The grant has served all the log bytes it may (SB_GRANT_MAX_BYTES); ask the customer for a new grant.")
		p.Type, p.EndReason = problemTypeBase+"grant-ended", logaccess.EndBudget
		return p
	case errors.Is(err, consent.ErrOutOfScope):
		return forbidden("The grant does not cover this stream.")
	}
	return nil
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

// forgeEventProblem maps the field errors of a Forge lifecycle event.
func forgeEventProblem(err error) *Problem {
	var ve *forge.ValidationError
	if !errors.As(err, &ve) {
		return nil
	}
	return badRequest("The lifecycle event is invalid.", fieldErrors(ve.Fields, func(f forge.FieldError) (string, string) {
		return jsonPointer(f.Path), f.Message // forge names fields with dots
	})...)
}

// domainProblem maps domain sentinels that are not about authentication.
func domainProblem(err error) *Problem {
	switch {
	case errors.Is(err, report.ErrNotFailed):
		return problem(http.StatusConflict, "not-failed", "Report has not failed", "Only failed reports can be retried.")
	case errors.Is(err, report.ErrNotFound):
		return notFound("No report with this id exists for this site.")
	case errors.Is(err, domain.ErrUnavailable):
		return unavailable("Storage is temporarily unavailable; retry shortly.", 5)
	}
	return nil
}

// decodeJSON reads a JSON body strictly enough to give the caller a position for syntax
// errors and a field path for type errors.
func decodeJSON(r io.Reader, v any) error {
	dec := json.NewDecoder(r)
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		return jsonProblem(err)
	}
	if dec.More() {
		return badRequest("The body holds more than one JSON value.")
	}
	var extra json.RawMessage
	if err := dec.Decode(&extra); err != io.EOF && err != nil {
		return jsonProblem(err)
	}
	return nil
}

func jsonProblem(err error) error {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	var maxErr *http.MaxBytesError
	switch {
	case errors.As(err, &maxErr):
		return err
	case errors.Is(err, io.EOF):
		return badRequest("The request body is empty; a JSON document is required.")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return badRequest("The JSON document ends too early.")
	case errors.As(err, &syn):
		return badRequest(fmt.Sprintf("Malformed JSON at byte offset %d.", syn.Offset))
	case errors.As(err, &typ):
		field := typ.Field
		if field == "" {
			field = "/"
		}
		return badRequest(fmt.Sprintf("Wrong JSON type at byte offset %d.", typ.Offset),
			FieldError{Field: jsonPointer(field), Message: "must be " + jsonTypeName(typ.Type.Kind().String())})
	default:
		return badRequest("The body is not a valid JSON document.")
	}
}

// jsonPointer turns encoding/json's dotted field path into an RFC 6901 pointer.
func jsonPointer(dotted string) string {
	if dotted == "" {
		return ""
	}
	if strings.HasPrefix(dotted, "/") {
		return dotted
	}
	return "/" + strings.ReplaceAll(dotted, ".", "/")
}

func jsonTypeName(kind string) string {
	switch kind {
	case "string":
		return "a string"
	case "bool":
		return "a boolean"
	case "slice", "array":
		return "an array"
	case "map", "struct":
		return "an object"
	case "int", "int8", "int16", "int32", "int64", "uint", "uint8", "uint16", "uint32", "uint64", "float32", "float64":
		return "a number"
	}
	return "of another type"
}

// fieldErrors turns a domain package's field errors into problem field errors; an empty path
// means the body as a whole.
func fieldErrors[T any](items []T, get func(T) (path, message string)) []FieldError {
	out := make([]FieldError, 0, len(items))
	for _, it := range items {
		path, msg := get(it)
		if path == "" {
			path = "/"
		}
		out = append(out, FieldError{Field: path, Message: msg})
	}
	return out
}

// tenantProblem maps the errors of the tenant lifecycle. It runs before the other mappers:
// ErrIncomplete wraps the cause of a failed step, which must not decide the answer.
func tenantProblem(err error) *Problem {
	var ve *tenant.ValidationError
	switch {
	case errors.As(err, &ve):
		return badRequest("The lifecycle payload is invalid.", fieldErrors(ve.Fields, func(f tenant.FieldError) (string, string) {
			return jsonPointer(f.Path), f.Message
		})...)
	case errors.Is(err, tenant.ErrIdentityMismatch):
		return unauthorized("Token rejected: issuer does not match clientKey.")
	case errors.Is(err, tenant.ErrConflict):
		return problem(http.StatusConflict, "installation-conflict", "Installation conflict",
			"This installation is recorded for another site.")
	case errors.Is(err, tenant.ErrIncomplete):
		return unavailable("The change is saved but ending the site's access or scheduling its data deletion failed; retry the callback.", 10)
	}
	return nil
}

package httpapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"

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
	for _, m := range s.errorMappers {
		if p := m(err); p != nil {
			return p
		}
	}
	return internalError()
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

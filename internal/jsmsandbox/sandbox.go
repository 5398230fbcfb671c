// Package jsmsandbox is a local stand-in for the vendor's Jira Service Management (JSM) Cloud
// site: the handful of servicedeskapi and Jira platform endpoints supportbridge calls, with
// JSM's semantics (customer accounts, closed desks, temporary attachments, eventually
// consistent search) and its awkward edges (experimental-API and XSRF headers, 409 without
// the conflicting account).
//
// Atlassian cannot be reached from development machines or CI, so the real JSM client is
// exercised against this sandbox over real HTTP. To keep the sandbox from drifting into a
// service that accepts what JSM would reject, every request is checked against Atlassian's
// own OpenAPI specs when they are available, and every mismatch is recorded as a violation
// that fails the test (see NewTestServer). Faults (latency, 429/503 with Retry-After, a
// connection dropped after a request was created) can be switched on at run time to test
// retries and the exactly-once ticket rule.
package jsmsandbox

import (
	"bytes"
	"crypto/subtle"
	"errors"
	"fmt"
	"html/template"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"
)

// Defaults for the Options that have one. They match the examples in DESIGN.md so that dev
// mode works without configuration.
const (
	DefaultServiceDeskID     = "10"
	DefaultRequestTypeID     = "11"
	DefaultProjectKey        = "SUP"
	DefaultTempAttachmentTTL = time.Hour
)

// maxBodyBytes caps what one call may upload. JSM's own limit is configurable per site; the
// cap only keeps a runaway client from exhausting memory, since the sandbox keeps every body.
const maxBodyBytes = 64 << 20

// Options configures a Sandbox.
type Options struct {
	// BaseURL is the site URL used in _links; empty means "http://" + the request's Host, which
	// is right for httptest servers and local runs.
	BaseURL string
	// Email and APIToken are the only HTTP Basic credentials accepted on /rest calls, like a
	// JSM service account with an API token. Both are required.
	Email    string
	APIToken string
	// ServiceDeskID, RequestTypeID and ProjectKey describe the one desk the sandbox hosts.
	ServiceDeskID string
	RequestTypeID string
	ProjectKey    string
	// ClosedDesk makes the desk closed-access: requests may only be raised on behalf of
	// accounts that were added to the desk, which is how most vendors run support desks.
	ClosedDesk bool
	// SearchLag is how long after a change an issue becomes findable by JQL search, because
	// Jira's search index is eventually consistent and the client must cope with that.
	SearchLag time.Duration
	// TempAttachmentTTL is how long an uploaded temporary file can still be attached.
	TempAttachmentTTL time.Duration
	// JSMSpecPath and PlatformSpecPath are Atlassian's OpenAPI specs of the JSM and Jira
	// platform REST APIs. When both are set every request is validated against them.
	JSMSpecPath, PlatformSpecPath string
	// Specs, when set, is used instead of loading the spec paths; share one Specs between
	// many sandboxes because parsing the platform spec takes most of a second.
	Specs *Specs
	// KeepCalls bounds how many calls and bodies are remembered (the oldest are dropped);
	// zero keeps all of them, which is what tests want. Long-running sandboxes should set it.
	KeepCalls int
	// Now is the clock for timestamps, search lag and attachment expiry; nil means time.Now.
	Now func() time.Time
	// Logger receives one debug line per call; nil discards.
	Logger *slog.Logger
	// OnCall, when set, is told of every REST call once it has been answered (or dropped)
	// and recorded. Tests use it to stop a client at an exact point of its work.
	OnCall func(Call)
}

// Sandbox is an in-memory JSM site. It is an http.Handler; all methods are safe for
// concurrent use.
type Sandbox struct {
	opts   Options
	now    func() time.Time
	log    *slog.Logger
	specs  *Specs
	api    *http.ServeMux // the /rest handlers, after the checks every call goes through
	web    *http.ServeMux // the HTML pages, unauthenticated like a dev tool should be
	page   *template.Template
	faults faultInjector

	mu             sync.Mutex
	serviceAccount *account
	accounts       []*account // in creation order, which is the order JSM lists them
	issues         []*issue
	temps          map[string]*tempFile
	seq            int // source of issue, comment and attachment ids
	calls          []Call
	bodies         [][]byte
	violations     []string
}

// New returns a sandbox with an empty desk. It fails when credentials are missing or a spec
// path is set but cannot be loaded: silently running unvalidated would defeat the point.
func New(opts Options) (*Sandbox, error) {
	if opts.Email == "" || opts.APIToken == "" {
		return nil, errors.New("jsmsandbox: Email and APIToken are required")
	}
	if opts.ServiceDeskID == "" {
		opts.ServiceDeskID = DefaultServiceDeskID
	}
	if opts.RequestTypeID == "" {
		opts.RequestTypeID = DefaultRequestTypeID
	}
	if opts.ProjectKey == "" {
		opts.ProjectKey = DefaultProjectKey
	}
	if opts.TempAttachmentTTL <= 0 {
		opts.TempAttachmentTTL = DefaultTempAttachmentTTL
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	specs := opts.Specs
	if specs == nil && (opts.JSMSpecPath != "" || opts.PlatformSpecPath != "") {
		var err error
		if specs, err = LoadSpecs(opts.JSMSpecPath, opts.PlatformSpecPath); err != nil {
			return nil, err
		}
	}
	page, err := template.New("page").Funcs(pageFuncs).Parse(pageTemplate)
	if err != nil {
		return nil, fmt.Errorf("jsmsandbox: parse page: %w", err)
	}
	s := &Sandbox{
		opts:  opts,
		now:   opts.Now,
		log:   opts.Logger,
		specs: specs,
		page:  page,
		temps: make(map[string]*tempFile),
	}
	s.faults.set(Faults{})
	// The API caller is an Atlassian account too: it authors comments and is the reporter
	// of requests raised without raiseOnBehalfOf.
	s.serviceAccount = &account{id: newAtlassianAccountID(), email: opts.Email,
		displayName: "Support service account", accountType: accountTypeAtlassian}
	s.accounts = append(s.accounts, s.serviceAccount)
	s.routes()
	return s, nil
}

// ServeHTTP serves the REST API under /rest/ and the HTML pages elsewhere.
func (s *Sandbox) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if strings.HasPrefix(r.URL.Path, "/rest/") {
		s.serveREST(w, r)
		return
	}
	s.web.ServeHTTP(w, r)
}

// serveREST runs the checks of Atlassian's edge in the order a real site applies them, then
// the handler. Injected errors come after authentication and validation but before the
// handler, so a 429 or 503 never half-applies a change, as with the real rate limiter.
func (s *Sandbox) serveREST(w http.ResponseWriter, r *http.Request) {
	api := apiOf(r.URL.Path)
	rec := &recorder{ResponseWriter: w}
	body, readErr := io.ReadAll(http.MaxBytesReader(rec, r.Body, maxBodyBytes))
	// Deferred so that a call is recorded even when the connection is dropped on purpose.
	defer func() { s.recordCall(r, body, rec) }()
	if readErr != nil {
		api.writeError(rec, http.StatusRequestEntityTooLarge, "sd.attachment.too.large", "The request body is too large.")
		return
	}

	if d := s.faults.latency(); d > 0 {
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			return
		}
	}
	if !s.authenticated(r) {
		api.writeError(rec, http.StatusUnauthorized, "sd.api.unauthenticated", "Client must be authenticated to access this resource.")
		return
	}
	if isXSRFGuarded(r) && r.Header.Get("X-Atlassian-Token") != "no-check" {
		// Atlassian's XSRF filter answers before any REST resource, in plain text.
		rec.Header().Set("Content-Type", "text/plain;charset=UTF-8")
		rec.WriteHeader(http.StatusForbidden)
		io.WriteString(rec, "XSRF check failed")
		return
	}
	check, err := s.specs.validateRequest(r, body)
	if err != nil {
		reason := firstLine(err.Error())
		s.addViolation(r, reason)
		api.writeError(rec, http.StatusBadRequest, "sd.api.invalid.request", reason)
		return
	}
	if status, retryAfter := s.faults.injectedError(); status != 0 {
		writeInjectedError(rec, api, status, retryAfter)
		return
	}
	if _, pattern := s.api.Handler(r); pattern == "" {
		// The spec has the operation (or specs are off) but the sandbox does not implement
		// it: fail loudly, so a client never depends on behaviour nobody checked.
		s.addViolation(r, "operation not implemented by jsmsandbox")
		api.writeError(rec, http.StatusNotFound, "sd.api.not.found", "Operation not implemented by the sandbox.")
		return
	}
	// The handler reads the body again: it was consumed above to record and validate it.
	r.Body = io.NopCloser(bytes.NewReader(body))
	if r.Method == http.MethodPost && s.faults.takeLostAnswer() {
		s.api.ServeHTTP(&discardWriter{header: http.Header{}}, r)
		dropConnection(rec)
		return
	}
	if hold, ok := s.faults.takeTimeout(); r.Method == http.MethodPost && ok {
		s.api.ServeHTTP(&discardWriter{header: http.Header{}}, r)
		t := time.NewTimer(hold)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
		}
		dropConnection(rec)
		return
	}
	s.api.ServeHTTP(rec, r)
	if err := check.response(r, rec); err != nil {
		s.addViolation(r, "jsmsandbox bug, response breaks the spec: "+firstLine(err.Error()))
	}
}

// authenticated checks HTTP Basic credentials in constant time.
func (s *Sandbox) authenticated(r *http.Request) bool {
	email, token, ok := r.BasicAuth()
	if !ok {
		return false
	}
	e := subtle.ConstantTimeCompare([]byte(email), []byte(s.opts.Email))
	t := subtle.ConstantTimeCompare([]byte(token), []byte(s.opts.APIToken))
	return e&t == 1
}

// isXSRFGuarded reports whether Atlassian's XSRF protection applies: mutating requests whose
// body a browser form could send cross-site. Those need "X-Atlassian-Token: no-check"
// exactly; go-jira sends "nocheck", which the real filter rejects.
func isXSRFGuarded(r *http.Request) bool {
	if r.Method == http.MethodGet || r.Method == http.MethodHead || r.Method == http.MethodOptions {
		return false
	}
	ct := strings.ToLower(r.Header.Get("Content-Type"))
	return strings.HasPrefix(ct, "multipart/form-data") ||
		strings.HasPrefix(ct, "application/x-www-form-urlencoded") ||
		strings.HasPrefix(ct, "text/plain")
}

func (s *Sandbox) recordCall(r *http.Request, body []byte, rec *recorder) {
	status := rec.status
	if rec.dropped {
		status = 0
	}
	s.log.Debug("jsm_sandbox_call", "method", r.Method, "path", r.URL.Path, "status", status)
	call := Call{Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery, Status: status, Time: s.now()}
	s.mu.Lock()
	s.calls = append(s.calls, call)
	s.bodies = append(s.bodies, body)
	if n := s.opts.KeepCalls; n > 0 && len(s.calls) > n {
		s.calls = slices.Delete(s.calls, 0, len(s.calls)-n)
		s.bodies = slices.Delete(s.bodies, 0, len(s.bodies)-n)
	}
	s.mu.Unlock()
	if s.opts.OnCall != nil {
		s.opts.OnCall(call)
	}
}

func (s *Sandbox) addViolation(r *http.Request, reason string) {
	v := fmt.Sprintf("%s %s: %s", r.Method, r.URL.Path, reason)
	s.log.Warn("jsm_sandbox_violation", "violation", v)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.violations = append(s.violations, v)
}

// Violations lists the requests that matched no operation of Atlassian's specs or broke
// them, and any sandbox response that broke them, as "METHOD path: reason".
func (s *Sandbox) Violations() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.violations)
}

// Calls returns the /rest calls received so far, oldest first.
func (s *Sandbox) Calls() []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.calls)
}

// AllBodies returns the raw body of every /rest call received so far, so a test can assert
// that a secret never left supportbridge.
func (s *Sandbox) AllBodies() [][]byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([][]byte, len(s.bodies))
	for i, b := range s.bodies {
		out[i] = bytes.Clone(b)
	}
	return out
}

// recorder remembers the status and body of a response, for the call log and for response
// validation, and whether the connection was dropped on purpose.
type recorder struct {
	http.ResponseWriter
	status  int
	body    bytes.Buffer
	dropped bool
}

func (r *recorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	r.body.Write(b)
	return r.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection to hijack it.
func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// dropConnection closes the connection without an answer, as a proxy or a crashed node would
// after the request took effect: the client cannot tell whether it did.
func dropConnection(w http.ResponseWriter) {
	if rec, ok := w.(*recorder); ok {
		rec.dropped = true
	}
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		// HTTP/2 cannot hijack; aborting the handler resets the stream instead.
		panic(http.ErrAbortHandler)
	}
	conn.Close()
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return strings.TrimSpace(line)
}

// Package sitesandbox is a local stand-in for a customer's Atlassian (Jira Cloud) site: the
// two platform REST calls supportbridge makes to a tenant's site, the reporter's email
// (GET /rest/api/3/user/email) and whether a user is a Jira administrator
// (POST /rest/api/3/permissions/check with globalPermissions ["ADMINISTER"]).
//
// Atlassian cannot be reached from development machines or CI, so the real clients are
// exercised against this site over real HTTP. It authenticates calls as Jira does: a Connect
// app's HS256 JWT with the exact qsh of the request, or a Forge app's system token as a
// bearer token. Every call is checked against Atlassian's own platform OpenAPI spec when it
// is available, and every mismatch is recorded as a violation (see sitetest.NewTestServer,
// which fails the test on any). The site can be taken down or made to hang, to test how
// the service copes with a customer site that does not answer.
//
// The package must not link testing or net/http/httptest, since the production binary
// serves it in dev mode; the test-server helper lives in the sitetest sub-package.
package sitesandbox

import (
	"bytes"
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

// Hang is the SetDown status that makes the site accept calls and never answer them, until
// the client gives up or the site is brought back up: the timeout case.
const Hang = -1

// maxBodyBytes caps a request body; the two operations take a few hundred bytes.
const maxBodyBytes = 1 << 20

// Options configures a Site.
type Options struct {
	// AppKey is the Connect app key, the iss every Connect JWT must carry.
	AppKey string
	// SharedSecret is the Connect tenant's shared secret that signs the JWTs (HS256). Empty
	// means Connect calls are refused.
	SharedSecret []byte
	// SystemToken is the Forge app system token accepted as "Authorization: Bearer <token>";
	// empty means Forge calls are refused.
	SystemToken string
	// PathPrefix is where Forge's apiBaseUrl puts the site, such as "/ex/jira/<cloudId>".
	// Calls are accepted both under it and at the root, as the same site answers both
	// https://api.atlassian.com/ex/jira/<cloudId>/rest/… and https://<site>/rest/….
	PathPrefix string
	// PlatformSpecPath is Atlassian's Jira platform OpenAPI spec; when set, every call and
	// every answer is validated against it. Empty serves unvalidated.
	PlatformSpecPath string
	// Spec, when set, is used instead of loading PlatformSpecPath; share one Spec between
	// many sites because parsing the platform spec takes most of a second.
	Spec *Spec
	// KeepCalls bounds how many calls are remembered (the oldest are dropped); zero keeps
	// all, which is what tests want. Long-running sites should set it.
	KeepCalls int
	// Now is the clock for token expiry and call times; nil means time.Now.
	Now func() time.Time
	// Logger receives one debug line per call; nil discards.
	Logger *slog.Logger
}

// AuthKind is how a call authenticated itself.
type AuthKind string

// The kinds of authentication the site tells apart. A call is recorded with the kind it
// attempted even when the credentials were refused.
const (
	AuthNone    AuthKind = "none"
	AuthConnect AuthKind = "connect-jwt"
	AuthForge   AuthKind = "forge-system-token"
	AuthOther   AuthKind = "other"
)

// Call is one /rest call the site received.
type Call struct {
	Method string
	// Path is the API path with PathPrefix removed, so calls compare alike whichever way
	// they came; Prefixed says whether it was under PathPrefix.
	Path     string
	Prefixed bool
	Query    string
	Auth     AuthKind
	// Status is the answer's status; 0 when the site hung and the client gave up.
	Status int
	Time   time.Time
}

// user is an account of the site.
type user struct {
	accountID, email string
	admin            bool
}

// Site is an in-memory Jira Cloud site. It is an http.Handler; all methods are safe for
// concurrent use.
type Site struct {
	opts  Options
	now   func() time.Time
	log   *slog.Logger
	spec  *Spec
	api   *http.ServeMux
	page  *template.Template
	users map[string]*user

	mu         sync.Mutex
	order      []string // account ids in the order they were added, for the page
	down       int
	released   chan struct{} // closed when a hang ends
	hanging    int           // calls waiting in a hang now
	calls      []Call
	violations []string
}

// New returns a site without users. It fails when a spec path is set but cannot be loaded:
// silently running unvalidated would defeat the point.
func New(o Options) (*Site, error) {
	if len(o.SharedSecret) == 0 && o.SystemToken == "" {
		return nil, errors.New("sitesandbox: SharedSecret or SystemToken is required")
	}
	if len(o.SharedSecret) > 0 && o.AppKey == "" {
		return nil, errors.New("sitesandbox: AppKey is required with SharedSecret")
	}
	o.PathPrefix = strings.TrimRight(o.PathPrefix, "/")
	if o.PathPrefix != "" && (!strings.HasPrefix(o.PathPrefix, "/") || strings.HasPrefix(o.PathPrefix, "/rest")) {
		return nil, fmt.Errorf("sitesandbox: PathPrefix %q must start with / and not be under /rest", o.PathPrefix)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	o.SharedSecret = bytes.Clone(o.SharedSecret)
	spec := o.Spec
	if spec == nil && o.PlatformSpecPath != "" {
		var err error
		if spec, err = LoadSpec(o.PlatformSpecPath); err != nil {
			return nil, err
		}
	}
	page, err := template.New("page").Funcs(pageFuncs).Parse(pageTemplate)
	if err != nil {
		return nil, fmt.Errorf("sitesandbox: parse page: %w", err)
	}
	s := &Site{
		opts: o, now: o.Now, log: o.Logger, spec: spec, page: page,
		users:    make(map[string]*user),
		released: make(chan struct{}),
	}
	s.routes()
	return s, nil
}

// routes lists every operation the site implements. Any other /rest call is answered 404
// and recorded as a violation, so a client cannot come to depend on an unchecked endpoint.
func (s *Site) routes() {
	api := http.NewServeMux()
	api.HandleFunc("GET /rest/api/3/user/email", s.userEmail)
	api.HandleFunc("POST /rest/api/3/permissions/check", s.checkPermissions)
	s.api = api
}

// AddUser adds an account to the site, or replaces the one with that id.
func (s *Site) AddUser(accountID, email string, admin bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.users[accountID]; !ok {
		s.order = append(s.order, accountID)
	}
	s.users[accountID] = &user{accountID: accountID, email: email, admin: admin}
}

// SetAdmin grants or takes away the ADMINISTER global permission, effective for the next
// call: an administrator can lose it between loading a page and deciding on it. It does
// nothing for an account the site does not have.
func (s *Site) SetAdmin(accountID string, admin bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if u, ok := s.users[accountID]; ok {
		u.admin = admin
	}
}

// SetDown makes every call (authenticated or not) answer with status, as an outage in front
// of the site does; 0 brings the site back up, and Hang makes calls wait without an answer
// until the client gives up. Leaving Hang releases the calls still waiting, which then
// get the new answer.
func (s *Site) SetDown(status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.down == Hang && status != Hang {
		close(s.released)
		s.released = make(chan struct{})
	}
	s.down = status
}

// downState returns the outage status and, for a hang, the channel that ends it.
func (s *Site) downState() (int, <-chan struct{}) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.down, s.released
}

// hang waits until the hang ends (true) or the client gives up (false).
func (s *Site) hang(r *http.Request, released <-chan struct{}) bool {
	s.mu.Lock()
	s.hanging++
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.hanging--
		s.mu.Unlock()
	}()
	select {
	case <-r.Context().Done():
		return false
	case <-released:
		return true
	}
}

// Hanging returns how many calls are waiting in a hang now, so a test can tell that its
// client reached the site before it brings the site back or lets the client time out.
func (s *Site) Hanging() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.hanging
}

// Calls returns the /rest calls received so far, oldest first.
func (s *Site) Calls() []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.calls)
}

// Violations lists the calls that matched no operation of Atlassian's spec or broke it, and
// any answer of the site that broke it, as "METHOD path: reason".
func (s *Site) Violations() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.violations)
}

// ServeHTTP serves the REST API under /rest/ (and under PathPrefix + "/rest/") and the page
// at /.
func (s *Site) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	apiPath, prefixed := s.stripPrefix(r.URL.Path)
	switch {
	case strings.HasPrefix(apiPath, "/rest/"):
		s.serveREST(w, r, apiPath, prefixed)
	case r.URL.Path == "/" && (r.Method == http.MethodGet || r.Method == http.MethodHead):
		s.servePage(w, r)
	default:
		http.NotFound(w, r)
	}
}

// stripPrefix removes PathPrefix at a segment boundary.
func (s *Site) stripPrefix(path string) (string, bool) {
	p := s.opts.PathPrefix
	if p != "" && strings.HasPrefix(path, p+"/") {
		return path[len(p):], true
	}
	return path, false
}

// serveREST applies the site's checks in the order Atlassian's edge does: an outage answers
// before anything, then authentication, then the spec, then the operation.
func (s *Site) serveREST(w http.ResponseWriter, r *http.Request, apiPath string, prefixed bool) {
	rec := &recorder{ResponseWriter: w}
	call := Call{Method: r.Method, Path: apiPath, Prefixed: prefixed, Query: r.URL.RawQuery,
		Auth: authKindOf(r), Time: s.now()}
	defer func() { s.recordCall(call, rec) }()
	body, readErr := io.ReadAll(http.MaxBytesReader(rec, r.Body, maxBodyBytes))

	if status, released := s.downState(); status == Hang {
		if !s.hang(r, released) {
			return
		}
		status, _ = s.downState()
		if status != 0 && status != Hang {
			writeError(rec, status, http.StatusText(status))
			return
		}
	} else if status != 0 {
		writeError(rec, status, http.StatusText(status))
		return
	}
	if readErr != nil {
		writeError(rec, http.StatusRequestEntityTooLarge, "The request body is too large.")
		return
	}
	if err := s.authenticate(r); err != nil {
		s.log.Debug("site_sandbox_refused_credentials", "auth", string(call.Auth), "reason", err.Error())
		writeError(rec, http.StatusUnauthorized, "Client must be authenticated to access this resource.")
		return
	}

	// Route and validate the call as the site sees it, without the Forge path prefix.
	ar := r.Clone(r.Context())
	ar.URL.Path, ar.URL.RawPath = apiPath, ""
	check, err := s.spec.validateRequest(ar, body)
	if err != nil {
		reason := firstLine(err.Error())
		s.addViolation(r.Method, apiPath, reason)
		writeError(rec, http.StatusBadRequest, reason)
		return
	}
	if _, pattern := s.api.Handler(ar); pattern == "" {
		s.addViolation(r.Method, apiPath, "operation not implemented by sitesandbox")
		writeError(rec, http.StatusNotFound, "Operation not implemented by the sandbox.")
		return
	}
	ar.Body = io.NopCloser(bytes.NewReader(body))
	s.api.ServeHTTP(rec, ar)
	if err := check.response(ar, rec); err != nil {
		s.addViolation(r.Method, apiPath, "sitesandbox bug, response breaks the spec: "+firstLine(err.Error()))
	}
}

func (s *Site) recordCall(call Call, rec *recorder) {
	call.Status = rec.status
	s.log.Debug("site_sandbox_call", "method", call.Method, "path", call.Path, "auth", string(call.Auth), "status", call.Status)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls = append(s.calls, call)
	if n := s.opts.KeepCalls; n > 0 && len(s.calls) > n {
		s.calls = slices.Delete(s.calls, 0, len(s.calls)-n)
	}
}

func (s *Site) addViolation(method, path, reason string) {
	v := fmt.Sprintf("%s %s: %s", method, path, reason)
	s.log.Warn("site_sandbox_violation", "violation", v)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.violations = append(s.violations, v)
}

// recorder remembers the status and body of an answer, for the call log and for response
// validation.
type recorder struct {
	http.ResponseWriter
	status int
	body   bytes.Buffer
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

// Unwrap lets http.ResponseController reach the underlying writer.
func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return strings.TrimSpace(line)
}

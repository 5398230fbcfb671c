// Package jsm is supportbridge's client for the vendor's Jira Service Management desk: it
// finds or creates the reporting customer and raises requests, comments and attachments on
// their behalf.
//
// Every failure is an *Error whose Kind tells the delivery worker what to do. The package
// never repeats a write whose outcome is unknown (a second create would be a second ticket);
// it reports Ambiguous instead, and the worker looks for the request's marker with
// FindByMarker before creating again. Reads and harmless writes are retried here, honouring
// Retry-After, with bounded attempts.
package jsm

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"time"

	jira "github.com/andygrunwald/go-jira"
	"github.com/hashicorp/go-retryablehttp"

	"github.com/supportbridge/supportbridge/internal/secret"
)

// Config says which desk to use and how hard to try.
type Config struct {
	BaseURL       string        // the site, e.g. https://vendor.atlassian.net
	Email         string        // the service account (basic auth user)
	APIToken      secret.Secret // its API token
	ServiceDeskID string        // numeric id of the desk reports land in
	RequestTypeID string        // numeric id of the request type used for reports
	ProjectKey    string        // key of the desk's project, used by FindByMarker
	Timeout       time.Duration // per attempt; default 30s
	MaxAttempts   int           // attempts per call including the first; default 4
	MaxRetryWait  time.Duration // longest wait between attempts, Retry-After included; default 30s
	MinRetryWait  time.Duration // first backoff step; default 500ms
	Logger        *slog.Logger  // default: discard
	// HTTPClient optionally supplies the base transport (its Transport only; tests pass one
	// that reaches an httptest server). Timeouts, retries and auth are added on top.
	HTTPClient *http.Client
	// Now reads the clock for Retry-After dates; default time.Now.
	Now func() time.Time
}

// Client talks to one JSM desk. It is safe for concurrent use.
type Client struct {
	jira   *jira.Client
	desk   string
	rtype  string
	pkey   string
	now    func() time.Time
	logger *slog.Logger
}

var (
	numericRE    = regexp.MustCompile(`^[0-9]+$`)
	projectKeyRE = regexp.MustCompile(`^[A-Z][A-Z0-9_]*$`)
)

const (
	maxResponseBytes = 4 << 20 // larger answers than any we decode mean something is wrong
	maxAttemptsLimit = 10
)

// New checks cfg, reporting every problem at once, and builds the client: go-jira on top of
// a retryablehttp client on top of an authenticating transport.
func New(cfg Config) (*Client, error) {
	var errs []error
	u, err := url.Parse(cfg.BaseURL)
	switch {
	case err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "":
		errs = append(errs, errors.New("jsm: BaseURL must be an absolute http(s) URL"))
	case u.User != nil || u.RawQuery != "" || u.Fragment != "":
		// Credentials in a URL end up in logs; a query would be lost by go-jira.
		errs = append(errs, errors.New("jsm: BaseURL must not carry credentials, a query or a fragment"))
	}
	if cfg.Email == "" {
		errs = append(errs, errors.New("jsm: Email is required"))
	}
	if cfg.APIToken.IsZero() {
		errs = append(errs, errors.New("jsm: APIToken is required"))
	}
	if !numericRE.MatchString(cfg.ServiceDeskID) {
		errs = append(errs, errors.New("jsm: ServiceDeskID must be numeric"))
	}
	if !numericRE.MatchString(cfg.RequestTypeID) {
		errs = append(errs, errors.New("jsm: RequestTypeID must be numeric"))
	}
	if !projectKeyRE.MatchString(cfg.ProjectKey) {
		// Also what keeps the key safe to place inside JQL.
		errs = append(errs, errors.New("jsm: ProjectKey must be an upper-case Jira project key"))
	}
	if cfg.MaxAttempts < 0 || cfg.MaxAttempts > maxAttemptsLimit {
		errs = append(errs, fmt.Errorf("jsm: MaxAttempts must be between 1 and %d", maxAttemptsLimit))
	}
	if cfg.Timeout < 0 || cfg.MaxRetryWait < 0 || cfg.MinRetryWait < 0 {
		errs = append(errs, errors.New("jsm: durations must not be negative"))
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}

	if cfg.Timeout == 0 {
		cfg.Timeout = 30 * time.Second
	}
	if cfg.MaxAttempts == 0 {
		cfg.MaxAttempts = 4
	}
	if cfg.MaxRetryWait == 0 {
		cfg.MaxRetryWait = 30 * time.Second
	}
	if cfg.MinRetryWait == 0 {
		cfg.MinRetryWait = 500 * time.Millisecond
	}
	cfg.MinRetryWait = min(cfg.MinRetryWait, cfg.MaxRetryWait)
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}

	var base http.RoundTripper = http.DefaultTransport.(*http.Transport).Clone()
	if cfg.HTTPClient != nil && cfg.HTTPClient.Transport != nil {
		base = cfg.HTTPClient.Transport
	}
	// The per-attempt client: a timeout per attempt, credentials only for our site, and no
	// redirects (a redirected POST silently becomes a GET; a moved site is a config fix).
	attempt := &http.Client{
		Transport: &basicAuth{
			scheme: u.Scheme, host: u.Host,
			user: cfg.Email, token: cfg.APIToken, next: base,
		},
		Timeout:       cfg.Timeout,
		CheckRedirect: noRedirect,
	}
	policy := retryPolicy{maxWait: cfg.MaxRetryWait, now: cfg.Now}
	rc := &retryablehttp.Client{
		HTTPClient:   attempt,
		Logger:       slogLeveled{cfg.Logger},
		RetryWaitMin: cfg.MinRetryWait,
		RetryWaitMax: cfg.MaxRetryWait,
		RetryMax:     cfg.MaxAttempts - 1,
		CheckRetry:   policy.check,
		Backoff:      policy.backoff,
		// Return the last response as it is, so its status (and Retry-After) can be read.
		ErrorHandler: retryablehttp.PassthroughErrorHandler,
	}
	std := rc.StandardClient()
	std.CheckRedirect = noRedirect
	jc, err := jira.NewClient(std, u.String())
	if err != nil {
		return nil, fmt.Errorf("jsm: %w", err)
	}
	return &Client{
		jira:   jc,
		desk:   cfg.ServiceDeskID,
		rtype:  cfg.RequestTypeID,
		pkey:   cfg.ProjectKey,
		now:    cfg.Now,
		logger: cfg.Logger,
	}, nil
}

func noRedirect(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

// basicAuth adds the service account's credentials. Unlike go-jira's BasicAuthTransport it
// adds them only for our own site, so no redirect or absolute link can carry them elsewhere,
// and it sits below retryablehttp, so no retry log line ever sees the header.
type basicAuth struct {
	scheme, host string
	user         string
	token        secret.Secret
	next         http.RoundTripper
}

// RoundTrip implements http.RoundTripper.
func (t *basicAuth) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Scheme != t.scheme || req.URL.Host != t.host {
		return t.next.RoundTrip(req)
	}
	r := req.Clone(req.Context()) // a RoundTripper must not modify its request
	r.SetBasicAuth(t.user, t.token.Reveal())
	return t.next.RoundTrip(r)
}

// call describes one REST call.
type call struct {
	op      string // for errors and logs
	method  string
	path    string // relative to the site, may carry an encoded query
	body    any    // JSON-encoded when not nil
	retry   retryable
	headers map[string]string
	// multipart, when set, is sent instead of body with contentType.
	multipart   *bytes.Buffer
	contentType string
}

// do runs c and decodes a 2xx JSON answer into out (when not nil). Any other outcome is
// an *Error classified by status or transport failure; of an error body only a 400's is
// read, for its Subject, and none of its text is kept because it may echo personal data.
func (c *Client) do(ctx context.Context, cl call, out any) error {
	if err := ctx.Err(); err != nil {
		return &Error{Op: cl.op, Kind: Transient, cause: err}
	}
	ctx = withRetry(ctx, cl.retry)
	var (
		req *http.Request
		err error
	)
	if cl.multipart != nil {
		// go-jira's multipart helper sets X-Atlassian-Token: nocheck; JSM documents no-check,
		// which we set below.
		req, err = c.jira.NewMultiPartRequestWithContext(ctx, cl.method, cl.path, cl.multipart)
		if err == nil {
			req.Header.Set("Content-Type", cl.contentType)
		}
	} else {
		req, err = c.jira.NewRequestWithContext(ctx, cl.method, cl.path, cl.body)
	}
	if err != nil {
		return invalid(cl.op, "build request: %v", err)
	}
	req.Header.Set("Accept", "application/json")
	for k, v := range cl.headers {
		req.Header.Set(k, v)
	}
	writeOnceCall := cl.retry == writeOnce

	start := c.now()
	// go-jira's Do only adds a status-code error for non-2xx; the body is ours to read.
	resp, err := c.jira.Do(req, nil)
	if resp == nil || resp.Response == nil {
		e := transportError(cl.op, err, writeOnceCall)
		// Debug only: the caller handles (and logs) the returned error once.
		c.logger.LogAttrs(ctx, slog.LevelDebug, "jsm call failed",
			slog.String("op", cl.op), slog.String("kind", e.Kind.String()),
			slog.String("error", scrubQuery(e.Error())))
		return e
	}
	defer func() {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxResponseBytes))
		_ = resp.Body.Close()
	}()
	c.logger.LogAttrs(ctx, slog.LevelDebug, "jsm call",
		slog.String("op", cl.op), slog.String("method", cl.method),
		slog.Int("status", resp.StatusCode), slog.Duration("elapsed", c.now().Sub(start)))

	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		e := statusError(cl.op, resp.Response, writeOnceCall, c.now())
		if resp.StatusCode == http.StatusBadRequest {
			// Read only to learn what was refused (the desk, the customer, a field); none
			// of the text is kept, since it may echo personal data.
			body, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBodyBytes))
			e.Subject = subjectOf(body)
		}
		return e
	}
	if out == nil {
		return nil
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes))
	if err == nil {
		err = json.Unmarshal(data, out)
	}
	if err != nil {
		// The server answered 2xx, so a write did happen; we just cannot read what it made.
		kind := Transient
		if writeOnceCall {
			kind = Ambiguous
		}
		return &Error{Op: cl.op, Status: resp.StatusCode, Kind: kind}
	}
	return nil
}

// Ping checks the configuration the way readiness needs it, with two cheap reads that
// every delivery depends on anyway: the desk's customer list (credentials, desk id, the
// service account's desk permission) and a JQL search bounded to ProjectKey (which Jira
// answers 400 for an unknown project). A Permanent error means an operator must fix
// SB_JSM_*. The request type is only checked by the first create, which answers 400.
func (c *Client) Ping(ctx context.Context) error {
	const op = "ping"
	q := url.Values{"limit": {"1"}}
	err := c.do(ctx, call{
		op: op, method: http.MethodGet, retry: repeatable,
		path:    "rest/servicedeskapi/servicedesk/" + url.PathEscape(c.desk) + "/customer?" + q.Encode(),
		headers: map[string]string{"X-ExperimentalApi": "opt-in"},
	}, nil)
	if err != nil {
		return err
	}
	q = url.Values{"jql": {fmt.Sprintf(`project = "%s"`, c.pkey)}, "fields": {"id"}, "maxResults": {"1"}}
	return c.do(ctx, call{
		op: op, method: http.MethodGet, retry: repeatable,
		path: "rest/api/3/search/jql?" + q.Encode(),
	}, nil)
}

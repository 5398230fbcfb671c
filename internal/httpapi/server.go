// Package httpapi is supportbridge's HTTP surface: the only package that imports gin. routes.go
// lists every route, errors.go maps every error to an RFC 9457 problem, and the handlers call
// the domain packages.
package httpapi

import (
	"cmp"
	"context"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/supportbridge/supportbridge/internal/config"
	"github.com/supportbridge/supportbridge/internal/connect"
	"github.com/supportbridge/supportbridge/internal/forge"
	"github.com/supportbridge/supportbridge/internal/pagetoken"
	"github.com/supportbridge/supportbridge/internal/report"
	"github.com/supportbridge/supportbridge/internal/tenant"
)

// Tenants is what the HTTP layer needs of the tenant directory: authentication reads it;
// changes go through the lifecycle service.
type Tenants interface {
	Get(ctx context.Context, clientKey string) (tenant.Tenant, error)
	FindByCloudID(ctx context.Context, cloudID string) (tenant.Tenant, error)
}

// ForgeVerifier verifies Forge Invocation Tokens.
type ForgeVerifier interface {
	Verify(ctx context.Context, token string) (forge.Invocation, error)
}

// Options wires a Server. Zero-valued optional parts switch their routes' features off.
type Options struct {
	Config  config.Config
	Logger  *slog.Logger
	Tenants Tenants
	// Lifecycle installs, uninstalls, enables and links tenants; the lifecycle routes need it.
	Lifecycle *tenant.Service
	// InstallKeys fetches Atlassian's install-signing keys.
	InstallKeys connect.KeySource
	// Forge is nil when SB_FORGE_APP_ID is not set; Bearer tokens are then refused.
	Forge ForgeVerifier
	// Ready reports whether dependencies answer; /readyz calls it.
	Ready func(ctx context.Context) error
	// Registry collects metrics; /metrics serves it.
	Registry *prometheus.Registry
	// OpenAPI is the contract document served at /openapi.yaml.
	OpenAPI []byte
	// Intake is where accepted reports are stored and queued; the server puts report.Service
	// (the intake use case) in front of it with the limits of Config. nil answers the report
	// routes with 503 and 404.
	Intake report.Queue
	// ReportUsage counts filed reports anonymously; nil counts nothing.
	ReportUsage report.UsageCounter
	// Retrier re-queues failed reports for admins.
	Retrier ReportRetrier
	// Consent wires the agent, customer and webhook routes of log-access consent.
	Consent ConsentDeps
	// PageTokens mints and checks the tokens of the customer's admin page; nil refuses
	// page tokens (Forge Invocation Tokens still work).
	PageTokens *pagetoken.Signer
	// Logs reads customers' logs under grants; nil answers the log route with 503.
	Logs LogReader
	// SiteUI holds web/site-admin: page.html and the files it loads; nil leaves the
	// Connect admin page unavailable.
	SiteUI fs.FS
	// Errors takes browser error events and lists their groups; nil answers those routes
	// with 503.
	Errors ErrorTracker
	// ErrorCapture holds web/error-capture, the script apps include to capture errors.
	ErrorCapture fs.FS
	// DataLifecycle wires the admin routes of the data lifecycle (purge, stats, erasure).
	DataLifecycle DataLifecycleDeps
	// ReportWidget holds web/report-widget, the "Report a problem" dialog; nil takes the
	// files embedded in the binary.
	ReportWidget fs.FS
	Now          func() time.Time
}

// Server holds the dependencies of the handlers.
type Server struct {
	cfg      config.Config
	log      *slog.Logger
	tenants  Tenants
	install  *connect.InstallVerifier
	context  *connect.ContextVerifier
	forge    ForgeVerifier
	ready    func(ctx context.Context) error
	registry *prometheus.Registry
	metrics  *metrics
	openapi  []byte
	reports  *report.Service
	// inflight bounds the bodies of large-body routes being read at once.
	inflight *bodyBudget
	// scrubGate bounds the text attachments being scrubbed at once.
	scrubGate  *scrubGate
	retrier    ReportRetrier
	parser     *report.Parser
	bodyLimits map[string]int64
	consent    ConsentDeps
	pageTokens *pagetoken.Signer
	logReader  LogReader
	siteUI     *siteUI
	widget     *reportWidget
	errs       errorTracking
	dataLife   DataLifecycleDeps
	// grantMaxBytes is shown on the admin page: how much one grant may read.
	grantMaxBytes int64
	// loopbackBase is true when the public base URL is a loopback host (local runs, tests).
	loopbackBase bool
	now          func() time.Time
	basePath     string
	publicBase   string // SB_PUBLIC_BASE_URL as a string, for status URLs
	descriptor   map[string]any

	// lifecycle decides the Connect and Forge lifecycle callbacks.
	lifecycle *tenant.Service
}

// New builds a Server.
func New(o Options) *Server {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Registry == nil {
		o.Registry = prometheus.NewRegistry()
	}
	if o.Ready == nil {
		o.Ready = func(context.Context) error { return nil }
	}
	base := o.Config.PublicBaseURL
	if base == nil {
		base = &url.URL{Scheme: "http", Host: "localhost"}
	}
	s := &Server{
		cfg: o.Config, log: o.Logger, tenants: o.Tenants, lifecycle: o.Lifecycle, forge: o.Forge, ready: o.Ready,
		registry: o.Registry, openapi: o.OpenAPI,
		consent: o.Consent, retrier: o.Retrier, dataLife: o.DataLifecycle,
		now: o.Now, basePath: base.Path, publicBase: base.String(), pageTokens: o.PageTokens, logReader: o.Logs,
		grantMaxBytes: cmp.Or(o.Config.GrantMaxBytes, 256<<20), loopbackBase: isLoopbackHost(base.Hostname()),
	}
	if o.SiteUI != nil {
		ancestors := frameAncestors(o.Config.ConnectAllowedHosts)
		if s.loopbackBase {
			// Local runs and tests frame the page from a local host page.
			ancestors += " 'self' http://localhost:* http://127.0.0.1:*"
		}
		ui, err := newSiteUI(o.SiteUI, base.Path, ancestors)
		if err != nil {
			panic(err) // the files are embedded in the binary: a broken set is a build defect
		}
		s.siteUI = ui
	}
	ancestors := frameAncestors(o.Config.ConnectAllowedHosts)
	if s.loopbackBase {
		ancestors += " 'self' http://localhost:* http://127.0.0.1:*" // local runs frame it from a local page
	}
	widget, err := newReportWidget(o.ReportWidget, base.Path, ancestors)
	if err != nil {
		panic(err) // the files are embedded in the binary: a broken set is a build defect
	}
	s.widget = widget
	s.metrics = newMetrics(o.Registry)
	s.inflight = newBodyBudget(cmp.Or(o.Config.MaxInflightBytes, config.DefaultMaxInflightBytes), s.metrics.bodyBytes)
	s.scrubGate = newScrubGate(scrubBytesAtOnce)
	s.install = &connect.InstallVerifier{Keys: o.InstallKeys, Audience: base.String(), BasePath: base.Path, Now: o.Now}
	s.context = &connect.ContextVerifier{Secrets: s.tenantSecret, BasePath: base.Path, Now: o.Now}
	s.descriptor = connect.Descriptor(connect.DescriptorConfig{
		Key: o.Config.ConnectAppKey, Name: o.Config.ConnectAppName, BaseURL: base.String(),
		Scopes: o.Config.ConnectScopes, VendorName: "supportbridge",
	})
	s.parser = report.NewParser(report.ParserLimits{})
	pl := s.parser.Limits()
	// A multipart report carries its JSON part and up to the attachment cap, plus framing.
	s.bodyLimits = map[string]int64{"/api/v1/reports": pl.MaxReportBytes + pl.MaxAttachmentBytes + 64<<10}
	s.errs = newErrorTracking(o.Errors, o.ErrorCapture, base.Path, s.bodyLimits)
	if o.Intake != nil {
		s.reports = report.NewService(report.ServiceOptions{
			Queue: o.Intake, Secrets: tenantSecrets{o.Tenants}, Now: o.Now, Usage: o.ReportUsage,
			Limits: report.Limits{
				PerUser: o.Config.Reports.RatePerUser, PerTenant: o.Config.Reports.RatePerTenant,
				Window: o.Config.Reports.RateWindow, MaxQueueLength: o.Config.Reports.MaxQueueLength,
				MaxAttachmentBytes: o.Config.Reports.MaxAttachmentBytes, IdempotencyTTL: o.Config.Reports.IdempotencyTTL,
			},
		})
	}
	return s
}

// tenantSecrets gives report intake the tenant's shared secret to scrub, from the cached
// directory.
type tenantSecrets struct{ tenants Tenants }

func (t tenantSecrets) SharedSecret(ctx context.Context, key string) (string, error) {
	tn, err := t.tenants.Get(ctx, key)
	if err != nil {
		return "", err
	}
	return tn.SharedSecret.Reveal(), nil
}

// tenantSecret feeds the Connect verifier from the cached directory, so a verified request
// costs no Redis round trip. A Forge-only tenant (keyed by its cloud id) has no shared
// secret: a Connect token naming it is the caller's mistake or a probe, not broken data.
func (s *Server) tenantSecret(ctx context.Context, clientKey string) ([]byte, error) {
	t, err := s.tenants.Get(ctx, clientKey)
	if err != nil {
		return nil, err
	}
	if t.SharedSecret.IsZero() {
		return nil, errNoConnectSecret
	}
	return t.SharedSecret.Bytes(), nil
}

// newEngine is the bare gin engine Routes adds to. Gin's trailing-slash and fixed-path
// redirects answer before any middleware runs: no security headers, no access log line, no
// metric, and a Location that echoes the client's path. Without them a near miss such as
// /healthz/ is an ordinary 404 problem that passes through every middleware.
func (s *Server) newEngine() *gin.Engine {
	r := gin.New()
	r.RedirectTrailingSlash = false
	r.RedirectFixedPath = false
	// Gin believes X-Forwarded-For from every peer by default, so any client could choose
	// the address the access log records. Only SB_TRUSTED_PROXIES (validated by config) are
	// believed; without it, none.
	if err := r.SetTrustedProxies(s.cfg.TrustedProxies); err != nil {
		s.log.Error("trusted_proxies_refused", "error", err)
		_ = r.SetTrustedProxies(nil)
	}
	return r
}

// Handler returns the router as an http.Handler.
func (s *Server) Handler() http.Handler { return s.Routes() }

// requestURL is the URL the qsh is computed over: the path as the client sent it.
func requestURL(c *gin.Context) *url.URL { return c.Request.URL }

// isLoopbackHost reports whether host is localhost or a loopback address.
func isLoopbackHost(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

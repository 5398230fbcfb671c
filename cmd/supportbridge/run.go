package main

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os/signal"
	"runtime/debug"
	"sync"
	"syscall"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/redis/go-redis/v9"

	"github.com/supportbridge/supportbridge"
	"github.com/supportbridge/supportbridge/internal/agentauth"
	"github.com/supportbridge/supportbridge/internal/agentcli"
	"github.com/supportbridge/supportbridge/internal/audit"
	"github.com/supportbridge/supportbridge/internal/config"
	"github.com/supportbridge/supportbridge/internal/connect"
	"github.com/supportbridge/supportbridge/internal/consent"
	"github.com/supportbridge/supportbridge/internal/delivery"
	"github.com/supportbridge/supportbridge/internal/errortrack"
	"github.com/supportbridge/supportbridge/internal/forge"
	"github.com/supportbridge/supportbridge/internal/httpapi"
	"github.com/supportbridge/supportbridge/internal/jsm"
	"github.com/supportbridge/supportbridge/internal/lifecycle"
	"github.com/supportbridge/supportbridge/internal/logaccess"
	"github.com/supportbridge/supportbridge/internal/logstore"
	"github.com/supportbridge/supportbridge/internal/pagetoken"
	"github.com/supportbridge/supportbridge/internal/redisstore"
	"github.com/supportbridge/supportbridge/internal/report"
	"github.com/supportbridge/supportbridge/internal/seal"
	"github.com/supportbridge/supportbridge/internal/siteapi"
	"github.com/supportbridge/supportbridge/internal/tenant"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

const usage = `usage: supportbridge <command> [flags]

commands:
  serve         run the service (production; configured by SB_ environment variables)
  dev           run with embedded defaults: in-memory Redis, the JSM sandbox and a demo tenant
  jsm-sandbox   run the local JSM stand-in on its own
  agent         the support agent's CLI: access requests, grants, logs, evidence (agent --help)
  version       print the version
`

// run is the whole program; main only calls it, so tests can run it in process.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	gin.SetMode(gin.ReleaseMode)
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	var err error
	switch args[0] {
	case "serve":
		err = runServe(ctx, args[1:], getenv, stdout, stderr)
	case "dev":
		err = runDev(ctx, args[1:], getenv, stdout, stderr)
	case "jsm-sandbox":
		err = runSandbox(ctx, args[1:], getenv, stdout, stderr)
	case "agent":
		// The CLI has exit codes of its own (4: the grant ended while reading), so it
		// returns one instead of an error.
		return agentcli.Run(ctx, args[1:], getenv, stdout, stderr)
	case "version", "--version", "-v":
		fmt.Fprintln(stdout, "supportbridge", buildVersion())
		return 0
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "unknown command %q\n\n%s", args[0], usage)
		return 2
	}
	var cerr *config.Error
	switch {
	case err == nil:
		return 0
	case errors.As(err, &cerr):
		fmt.Fprintln(stderr, "supportbridge: configuration errors:")
		for _, p := range cerr.Problems {
			fmt.Fprintln(stderr, "  -", p)
		}
		return 2
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, errUsage):
		return 2
	default:
		fmt.Fprintln(stderr, "supportbridge:", err)
		return 1
	}
}

var errUsage = errors.New("usage")

func buildVersion() string {
	if version != "dev" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 12 {
				return "dev-" + s.Value[:12]
			}
		}
	}
	return version
}

func newLogger(w io.Writer, level slog.Level) *slog.Logger {
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: level}))
}

// parseFlags reads the flags serve and dev share.
func parseFlags(name string, args []string, stderr io.Writer) (role string, err error) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&role, "role", "", "all (API and worker), api, or worker; default SB_ROLE or all")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return "", err
		}
		return "", errUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "unexpected arguments: %v\n", fs.Args())
		return "", errUsage
	}
	switch role {
	case "", "all", "api", "worker":
	default:
		fmt.Fprintf(stderr, "--role must be all, api or worker\n")
		return "", errUsage
	}
	return role, nil
}

func runServe(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	role, err := parseFlags("serve", args, stderr)
	if err != nil {
		return err
	}
	cfg, err := config.Load(config.ModeServe, getenv)
	if err != nil {
		return err
	}
	if role != "" {
		cfg.Delivery.Role = role
	}
	log := newLogger(stdout, cfg.LogLevel)
	rdb, err := redisstore.NewClient(cfg.Redis)
	if err != nil {
		return err
	}
	return serve(ctx, cfg, rdb, log, devHooks{})
}

// devHooks are what dev mode adds to serve: a callback once the listener is open, and where
// calls to the demo tenant's site really go.
type devHooks struct {
	listening   func(addr string)
	siteRewrite func(baseURL string) string
}

// app is a running service: its HTTP server and the background loops it needs.
type app struct {
	cfg     config.Config
	log     *slog.Logger
	rdb     redis.UniversalClient
	server  *httpapi.Server
	tenants *tenant.Directory
	consent *consent.Service
	agents  *agentauth.Authenticator
	jsm     *jsm.Client
	reports *redisstore.Reports
	worker  *delivery.Worker // nil on api-only replicas
	sites   *siteapi.Checker
	logs    *logaccess.Service
	life    *lifecycleParts
}

// previewFunc adapts a function to consent.Previewer: the log reader that computes
// previews needs the consent service, which needs the previewer, so one of them is late.
type previewFunc func(ctx context.Context, r consent.AccessRequest) consent.Preview

func (f previewFunc) Preview(ctx context.Context, r consent.AccessRequest) consent.Preview {
	return f(ctx, r)
}

// logSource is where the customers' logs are: read under grants, deleted by a purge.
type logSource interface {
	logstore.Source
	lifecycle.LogPurger
}

// openLogSource is the configured log source, opened once for the reader and the purge: a
// bucket when SB_LOG_S3_BUCKET is set, otherwise the directory SB_LOG_DIR (possibly none,
// which holds no streams).
func openLogSource(cfg config.Config) (logSource, error) {
	if b := cfg.LogS3; b.Bucket != "" {
		var opts []logstore.BucketOption
		if b.Endpoint != "" {
			opts = append(opts, logstore.WithEndpoint(b.Endpoint))
		}
		if b.PathStyle {
			opts = append(opts, logstore.WithPathStyle())
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		bucket, err := logstore.NewBucket(ctx, b.Bucket, b.Prefix, opts...)
		if err != nil {
			return nil, err
		}
		return bucket, nil
	}
	return logstore.NewDir(cfg.LogDir), nil
}

// deriveKey makes an independent key for one purpose from SB_SECRET_KEY.
func deriveKey(master []byte, purpose string) []byte {
	m := hmac.New(sha256.New, master)
	m.Write([]byte(purpose))
	return m.Sum(nil)
}

// buildApp wires the service from configuration; serve and dev share it. siteRewrite, set in
// dev mode only, sends calls meant for the demo tenant's site to the local site sandbox.
func buildApp(cfg config.Config, rdb redis.UniversalClient, log *slog.Logger, reg *prometheus.Registry, siteRewrite func(string) string) (*app, error) {
	sealer, err := seal.New(cfg.SecretKey.Bytes())
	if err != nil {
		return nil, err
	}
	dir := tenant.NewDirectory(redisstore.NewTenants(rdb, sealer), redisstore.PublishTenantChanged(rdb), 5*time.Minute, nil)
	httpClient := &http.Client{Timeout: cfg.KeyFetchTimeout}
	var fv httpapi.ForgeVerifier
	if cfg.ForgeAppID != "" {
		v, err := forge.NewVerifier(forge.Options{
			JWKSURL: cfg.ForgeJWKSURL.String(), AppID: cfg.ForgeAppID, HTTPClient: httpClient,
			MinRefreshInterval: cfg.ForgeJWKSMinRefresh, Timeout: cfg.KeyFetchTimeout, Logger: log,
		})
		if err != nil {
			return nil, err
		}
		fv = v
	}
	a := &app{cfg: cfg, log: log, rdb: rdb, tenants: dir}

	if cfg.JSM.BaseURL != nil {
		// Keep a connection per concurrent delivery instead of net/http's default two.
		transport := http.DefaultTransport.(*http.Transport).Clone()
		transport.MaxIdleConnsPerHost = cfg.Delivery.Concurrency + 4
		a.jsm, err = jsm.New(jsm.Config{
			BaseURL: cfg.JSM.BaseURL.String(), Email: cfg.JSM.Email, APIToken: cfg.JSM.APIToken,
			ServiceDeskID: cfg.JSM.ServiceDeskID, RequestTypeID: cfg.JSM.RequestTypeID, ProjectKey: cfg.JSM.ProjectKey,
			Timeout: cfg.Delivery.CallTimeout, Logger: log, HTTPClient: &http.Client{Transport: transport},
		})
		if err != nil {
			return nil, err
		}
	}
	tokenSealer, err := seal.New(deriveKey(cfg.SecretKey.Bytes(), "report-site-token"))
	if err != nil {
		return nil, err
	}
	a.reports = redisstore.NewReports(rdb, redisstore.ReportsOptions{
		CustomerKey: deriveKey(cfg.SecretKey.Bytes(), "customer-cache"), Sealer: tokenSealer,
	})
	logSrc, err := openLogSource(cfg)
	if err != nil {
		return nil, err
	}
	if a.life, err = buildLifecycle(cfg, rdb, a.reports, logSrc, reg, log); err != nil {
		return nil, err
	}
	// The worker asks the reporter's site for their email; intake never waits on it.
	sites := siteapi.Emails{Rewrite: siteRewrite, HTTP: &http.Client{Timeout: 5 * time.Second}}
	if cfg.EmailFromHost {
		sites.Host = &connect.HostClient{AppKey: cfg.ConnectAppKey, HTTP: &http.Client{Timeout: 5 * time.Second}}
	}
	if a.jsm != nil && cfg.Delivery.Role != "api" {
		a.worker = delivery.NewWorker(delivery.Options{
			Store: a.reports, JSM: jsm.ForDelivery(a.jsm), Sites: sites, Usage: a.life.counter, Tenants: dir,
			Render:      report.Renderer{AppKey: cfg.ConnectAppKey},
			Concurrency: cfg.Delivery.Concurrency, MaxAttempts: cfg.Delivery.MaxAttempts,
			SearchPatience: cfg.Delivery.SearchPatience, ClaimIdle: cfg.Delivery.ClaimIdle,
			Logger: log, Registerer: reg,
		})
	}

	agentOpts := agentauth.Options{TokensFile: cfg.AgentTokensFile, Logger: log}
	if cfg.AgentOIDCIssuer != "" {
		agentOpts.OIDC = &agentauth.OIDCOptions{
			Issuer: cfg.AgentOIDCIssuer, Audience: cfg.AgentOIDCAudience, JWKSURL: cfg.AgentOIDCJWKSURL.String(),
			RoleClaim: cfg.AgentOIDCRoleClaim, HTTPClient: httpClient,
		}
	}
	if a.agents, err = agentauth.New(agentOpts); err != nil {
		return nil, err
	}
	logs := logstore.New(logSrc)
	var (
		consentDeps httpapi.ConsentDeps
		logReader   httpapi.LogReader
	)
	if a.jsm != nil {
		tickets := redisstore.NewTickets(rdb)
		a.sites = &siteapi.Checker{Tenants: dir, AppKey: cfg.ConnectAppKey,
			HTTP: &http.Client{Timeout: 5 * time.Second}, Rewrite: siteRewrite}
		a.consent = consent.NewService(consent.Options{
			Store:       redisstore.NewConsent(rdb),
			Tickets:     jsm.Tickets{Client: a.jsm, TenantOf: tickets.TenantOf},
			Streams:     logs,
			Preview:     previewFunc(func(ctx context.Context, r consent.AccessRequest) consent.Preview { return a.logs.Preview(ctx, r) }),
			Audit:       audit.New(redisstore.NewAudit(rdb), deriveKey(cfg.SecretKey.Bytes(), "audit-chain"), nil),
			Sites:       a.sites,
			Tenants:     siteapi.ConsentTenants{Dir: dir, AppKey: cfg.ConnectAppKey},
			ClaimWindow: cfg.Consent.ClaimWindow,
			Logger:      log,
			Usage:       a.life.counter,
		})
		consentDeps = httpapi.ConsentDeps{Service: a.consent, Agents: a.agents, WebhookSecret: cfg.JiraWebhookSecret}
		a.logs, err = logaccess.New(logaccess.Options{
			Consent: a.consent, Logs: logs, Secrets: logaccess.TenantSecrets{Dir: dir},
			PseudonymKey: deriveKey(cfg.SecretKey.Bytes(), "log-pseudonyms"), MaxBytes: cfg.GrantMaxBytes, Logger: log,
			Usage: a.life.counter,
		})
		if err != nil {
			return nil, err
		}
		logReader = a.logs
	}
	pages, err := pagetoken.New(deriveKey(cfg.SecretKey.Bytes(), "site-admin-page-token"), pagetoken.MaxTTL, nil)
	if err != nil {
		return nil, err
	}

	errs, err := errortrack.New(redisstore.NewErrors(rdb), errortrack.Options{Key: deriveKey(cfg.SecretKey.Bytes(), "error-tracking-ids"), Usage: a.life.counter})
	if err != nil {
		return nil, err
	}
	errScript, err := fs.Sub(supportbridge.ErrorCapture, "web/error-capture")
	if err != nil {
		return nil, err
	}
	lifecycle := tenant.ServiceOptions{Store: dir.Fresh(), AppKey: cfg.ConnectAppKey,
		AllowedHosts: cfg.ConnectAllowedHosts, Logger: log,
		// Uninstall marks the tenant's data for deletion after the retention period; a
		// reinstall within it unmarks.
		Retention: a.life.svc, RetentionPeriod: cfg.Lifecycle.Retention}
	if a.consent != nil { // a nil *consent.Service must not become a non-nil interface
		lifecycle.Consent = a.consent
	}
	a.server = httpapi.New(httpapi.Options{
		Config:      cfg,
		Logger:      log,
		Tenants:     dir,
		Lifecycle:   tenant.NewService(lifecycle),
		InstallKeys: connect.NewKeyFetcher(cfg.ConnectKeysURL, httpClient, cfg.KeyFetchTimeout),
		Forge:       fv,
		Ready:       a.ready,
		Intake:      a.reports,
		ReportUsage: a.life.counter,
		Retrier:     a.reports,
		Registry:    reg,
		OpenAPI:     supportbridge.OpenAPI,
		Consent:     consentDeps,
		PageTokens:  pages,
		Logs:        logReader,
		SiteUI:      siteUI(),

		Errors:        errs,
		ErrorCapture:  errScript,
		DataLifecycle: a.life.deps(errs.TrackingID),
	})
	return a, nil
}

// ready is the readiness check: Redis answers and, on replicas that deliver, the worker runs
// and JSM has not answered that our configuration is wrong.
func (a *app) ready(ctx context.Context) error {
	if err := redisstore.Ping(ctx, a.rdb); err != nil {
		return err
	}
	if a.worker != nil {
		if err := a.worker.Healthy(); err != nil {
			return &httpapi.ReadinessError{Detail: err.Error()}
		}
	}
	return nil
}

// serve runs the service until ctx ends, then shuts down gracefully: stop accepting, finish
// in-flight requests within the shutdown timeout, stop background loops, close Redis.
// dev.listening, if not nil, receives the bound address once the listener is open.
func serve(ctx context.Context, cfg config.Config, rdb redis.UniversalClient, log *slog.Logger, dev devHooks) error {
	defer rdb.Close()
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	a, err := buildApp(cfg, rdb, log, reg, dev.siteRewrite)
	if err != nil {
		return err
	}
	log.Info("config", "effective", cfg)

	bgCtx, stopBackground := context.WithCancel(context.WithoutCancel(ctx))
	defer stopBackground()
	var bg sync.WaitGroup
	bg.Go(func() {
		redisstore.WatchTenantChanges(bgCtx, rdb, log, a.tenants.Invalidate, a.tenants.InvalidateAll, nil)
	})
	a.agents.WatchSIGHUP(bgCtx, log)
	a.life.start(bgCtx, &bg)
	if a.worker != nil {
		bg.Go(func() {
			if err := a.worker.Run(bgCtx); err != nil {
				log.Error("delivery_worker_stopped", "error", err)
			}
		})
	}
	if a.consent != nil {
		// Requests of the capability-link flow are withdrawn, with a comment, on every
		// start; once none are left this finds nothing. It runs beside serving because
		// its comments wait on JSM.
		bg.Go(func() {
			n, err := a.consent.WithdrawLegacyRequests(bgCtx)
			switch {
			case err != nil:
				log.Warn("consent_legacy_withdraw_incomplete", "withdrawn", n, "error", err)
			case n > 0:
				log.Info("consent_legacy_requests_withdrawn", "withdrawn", n)
			}
		})
	}
	if a.consent != nil && cfg.Delivery.Role != "api" {
		// Expiry comments go out within a minute of a grant's end; a Redis lease makes one
		// replica run the scheduler at a time.
		bg.Go(func() { a.consent.RunScheduler(bgCtx, 15*time.Second) })
	}

	ln, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.HTTPAddr, err)
	}
	hs := &http.Server{
		Handler:           a.server.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       60 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	log.Info("listening", "addr", ln.Addr().String(), "version", buildVersion(), "role", cfg.Delivery.Role)
	if dev.listening != nil {
		dev.listening(ln.Addr().String())
	}
	errc := make(chan error, 2)
	go func() { errc <- hs.Serve(ln) }()

	// SB_METRICS_ADDR gives metrics a listener of their own (the main router's /metrics then
	// answers 404), so they can stay off the address the internet reaches.
	var ms *http.Server
	if cfg.MetricsAddr != "" {
		mln, err := net.Listen("tcp", cfg.MetricsAddr)
		if err != nil {
			hs.Close()
			return fmt.Errorf("listen on %s: %w", cfg.MetricsAddr, err)
		}
		mux := http.NewServeMux()
		mux.Handle("GET /metrics", a.server.MetricsHandler())
		ms = &http.Server{
			Handler:           mux,
			ReadHeaderTimeout: 10 * time.Second,
			WriteTimeout:      60 * time.Second,
			MaxHeaderBytes:    16 << 10,
			ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		}
		log.Info("metrics_listening", "addr", mln.Addr().String())
		go func() { errc <- ms.Serve(mln) }()
	}

	select {
	case err := <-errc:
		hs.Close()
		if ms != nil {
			ms.Close()
		}
		return fmt.Errorf("http server: %w", err)
	case <-ctx.Done():
	}
	log.Info("shutting_down", "timeout", cfg.ShutdownTimeout)
	shutCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.ShutdownTimeout)
	defer cancel()
	if ms != nil {
		ms.Close() // a scrape in flight loses nothing that the next scrape does not bring
	}
	err = hs.Shutdown(shutCtx)
	stopBackground()
	bg.Wait()
	if err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	log.Info("stopped")
	return nil
}

// Package config reads supportbridge's configuration from SB_ environment variables into a
// typed struct. Every problem is collected and reported at once, so an operator fixes a
// deployment in one round instead of one restart per mistake.
package config

import (
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/supportbridge/supportbridge/internal/secret"
)

// Mode says which defaults apply: serve insists on production settings, dev fills them in.
type Mode int

const (
	// ModeServe is production: no embedded defaults for secrets or Redis.
	ModeServe Mode = iota
	// ModeDev runs with embedded Redis, the JSM sandbox and a demo tenant.
	ModeDev
)

// Defaults that are Atlassian's production endpoints.
const (
	DefaultConnectKeysURL = "https://connect-install-keys.atlassian.com"
	DefaultForgeJWKSURL   = "https://forge.cdn.prod.atlassian-dev.net/.well-known/jwks.json"
)

// Bounds of SB_MAX_INFLIGHT_BYTES. The minimum is one report of the largest size: a 1 MiB
// report part, 10 MiB of attachments and room for the multipart framing.
const (
	DefaultMaxInflightBytes = 64 << 20
	MinInflightBytes        = 12 << 20
)

// Config is the whole effective configuration.
type Config struct {
	HTTPAddr string
	// MetricsAddr, when set, is the only listener that serves /metrics; the main router's
	// /metrics then answers 404, so metrics need not be reachable where the API is.
	MetricsAddr string
	// TrustedProxies are the CIDRs (or addresses) whose X-Forwarded-For and X-Real-IP are
	// believed for the client address; empty trusts none, so a client cannot choose the
	// address the access log records.
	TrustedProxies []string
	PublicBaseURL  *url.URL
	MaxBodyBytes   int64
	// MaxInflightBytes bounds the request bodies being read at once, over all requests:
	// without it, concurrent uploads each holding their bytes add up past the container's
	// memory limit.
	MaxInflightBytes int64
	ShutdownTimeout  time.Duration
	LogLevel         slog.Level

	Redis Redis

	SecretKey secret.Secret // 32 raw bytes

	JSM JSM

	ConnectAppKey       string
	ConnectAppName      string
	ConnectKeysURL      *url.URL
	ConnectAllowedHosts []string
	ConnectScopes       []string
	KeyFetchTimeout     time.Duration
	// EmailFromHost asks Connect sites for the reporter's email (needs ACCESS_EMAIL_ADDRESSES).
	EmailFromHost bool

	ForgeAppID          string
	ForgeJWKSURL        *url.URL
	ForgeJWKSMinRefresh time.Duration
	// ForgeAdminModuleKey is the key of the Forge jira:adminPage module whose invocation
	// tokens may call the site routes; a FIT from any other module is refused there.
	ForgeAdminModuleKey string

	AgentTokensFile    string
	AgentOIDCIssuer    string
	AgentOIDCAudience  string
	AgentOIDCJWKSURL   *url.URL
	AgentOIDCRoleClaim string

	LogDir            string
	JiraWebhookSecret secret.Secret
	// GrantMaxBytes is how many log bytes one grant may serve in all.
	GrantMaxBytes int64
	// LogS3 is set when logs live in an S3-compatible bucket instead of under LogDir.
	LogS3 LogS3

	Reports  Reports
	Delivery Delivery
	Consent  Consent

	// Lifecycle holds the data-retention settings.
	Lifecycle Lifecycle
}

// Lifecycle says how long tenant data is kept and what a purge deletes.
type Lifecycle struct {
	// Retention is how long an uninstalled tenant's data stays (SB_RETENTION, default 30 days).
	Retention time.Duration
	// PurgeLogs makes a purge delete the tenant's log files too (SB_PURGE_LOGS).
	PurgeLogs bool
	// PurgeInterval is how often the purge job looks for tenants due (SB_PURGE_INTERVAL).
	PurgeInterval time.Duration
}

// Redis says how to reach Redis: one URL, or a Sentinel or Cluster address list.
type Redis struct {
	URL        string // redis:// or rediss://
	Addrs      []string
	MasterName string
	Username   string
	Password   secret.Secret
}

// JSM is the vendor's Jira Service Management site and where reports land.
type JSM struct {
	BaseURL       *url.URL
	Email         string
	APIToken      secret.Secret
	ServiceDeskID string
	RequestTypeID string
	ProjectKey    string
}

// Reports holds intake limits.
type Reports struct {
	RatePerUser        int // reports per user per RateWindow
	RatePerTenant      int // reports per tenant per RateWindow
	RateWindow         time.Duration
	MaxQueueLength     int64 // backpressure: queued reports
	MaxAttachmentBytes int64 // backpressure: attachment bytes held in Redis
	IdempotencyTTL     time.Duration
}

// Delivery holds worker settings.
type Delivery struct {
	Role           string // all, api or worker
	Concurrency    int
	MaxAttempts    int
	ClaimIdle      time.Duration
	SearchPatience time.Duration // how long to search for a marker before creating again
	CallTimeout    time.Duration
}

// Consent holds access-request settings.
type Consent struct {
	ClaimWindow time.Duration
}

// Error lists every configuration problem found.
type Error struct{ Problems []string }

func (e *Error) Error() string {
	return "configuration: " + strings.Join(e.Problems, "; ")
}

type loader struct {
	getenv   func(string) string
	readFile func(string) ([]byte, error)
	problems []string
}

func (l *loader) fail(format string, args ...any) {
	l.problems = append(l.problems, fmt.Sprintf(format, args...))
}

func (l *loader) str(name, def string) string {
	if v := strings.TrimSpace(l.getenv(name)); v != "" {
		return v
	}
	return def
}

// secret reads X or X_FILE; giving both is an error because one would silently win.
func (l *loader) secret(name string) secret.Secret {
	v, file := l.getenv(name), l.getenv(name+"_FILE")
	switch {
	case v != "" && file != "":
		l.fail("%s and %s_FILE are both set; set one", name, name)
	case file != "":
		b, err := l.readFile(file)
		if err != nil {
			l.fail("%s_FILE: cannot read %q", name, file)
			return secret.Secret{}
		}
		return secret.New(strings.TrimRight(string(b), "\r\n"))
	}
	return secret.New(v)
}

func (l *loader) duration(name string, def time.Duration) time.Duration {
	v := l.str(name, "")
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		l.fail("%s: %q is not a positive duration like 30s or 5m", name, v)
		return def
	}
	return d
}

func (l *loader) integer(name string, def int64) int64 {
	v := l.str(name, "")
	if v == "" {
		return def
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n <= 0 {
		l.fail("%s: %q is not a positive whole number", name, v)
		return def
	}
	return n
}

func (l *loader) url(name, def string, required bool) *url.URL {
	v := l.str(name, def)
	if v == "" {
		if required {
			l.fail("%s is required", name)
		}
		return nil
	}
	u, err := url.Parse(v)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		l.fail("%s: %q is not an absolute http(s) URL", name, v)
		return nil
	}
	return u
}

// requireHTTPS refuses a plain-http URL unless it names this machine, the rule
// SB_PUBLIC_BASE_URL follows too. A nil u (unset or already refused) passes.
func (l *loader) requireHTTPS(name string, u *url.URL) {
	if u != nil && u.Scheme != "https" && !IsLoopback(u.Hostname()) {
		l.fail("%s: %q must use https (http is allowed only on loopback hosts)", name, u.Redacted())
	}
}

func list(v string) []string {
	var out []string
	for _, p := range strings.Split(v, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// IsLoopback reports whether host names this machine, where plain http is acceptable.
func IsLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Load reads the configuration. getenv is os.Getenv in production and a map in tests.
func Load(mode Mode, getenv func(string) string) (Config, error) {
	return load(mode, getenv, os.ReadFile)
}

func load(mode Mode, getenv func(string) string, readFile func(string) ([]byte, error)) (Config, error) {
	l := &loader{getenv: getenv, readFile: readFile}
	dev := mode == ModeDev
	var c Config

	// dev serves a demo tenant whose secret sits in a temp file, and agent tokens beside it:
	// it listens on loopback only unless SB_HTTP_ADDR says otherwise.
	defAddr := ":8080"
	if dev {
		defAddr = "127.0.0.1:8080"
	}
	c.HTTPAddr = l.str("SB_HTTP_ADDR", defAddr)
	defBase := ""
	if dev {
		defBase = "http://localhost" + portOf(c.HTTPAddr)
	}
	c.PublicBaseURL = l.url("SB_PUBLIC_BASE_URL", defBase, true)
	if u := c.PublicBaseURL; u != nil {
		if u.Scheme != "https" && !IsLoopback(u.Hostname()) {
			l.fail("SB_PUBLIC_BASE_URL: %q must use https (http is allowed only on loopback hosts)", u.String())
		}
		if u.RawQuery != "" || u.Fragment != "" {
			l.fail("SB_PUBLIC_BASE_URL: %q must not have a query or fragment", u.String())
		}
		u.Path = strings.TrimSuffix(u.Path, "/")
	}
	c.MetricsAddr = l.str("SB_METRICS_ADDR", "")
	if c.MetricsAddr != "" {
		if _, port, err := net.SplitHostPort(c.MetricsAddr); err != nil {
			l.fail("SB_METRICS_ADDR: %q is not a listen address like 127.0.0.1:9090 or :9090", c.MetricsAddr)
		} else if c.MetricsAddr == c.HTTPAddr && port != "0" {
			l.fail("SB_METRICS_ADDR: %q is also SB_HTTP_ADDR; give metrics a listener of their own", c.MetricsAddr)
		}
	}
	c.TrustedProxies = list(l.getenv("SB_TRUSTED_PROXIES"))
	for _, p := range c.TrustedProxies {
		if _, n, err := net.ParseCIDR(p); err == nil {
			if ones, _ := n.Mask.Size(); ones == 0 {
				l.fail("SB_TRUSTED_PROXIES: %q trusts every address; name the proxies' networks", p)
			}
		} else if net.ParseIP(p) == nil {
			l.fail("SB_TRUSTED_PROXIES: %q is not a CIDR such as 10.0.0.0/8 or an IP address", p)
		}
	}
	c.MaxBodyBytes = l.integer("SB_MAX_BODY_BYTES", 1<<20)
	c.MaxInflightBytes = l.integer("SB_MAX_INFLIGHT_BYTES", DefaultMaxInflightBytes)
	if c.MaxInflightBytes < MinInflightBytes {
		// A budget below one report of the largest size would refuse such reports forever
		// with a 503 that tells the client to retry.
		l.fail("SB_MAX_INFLIGHT_BYTES: must be at least %d (one report of the largest size)", int64(MinInflightBytes))
	}
	c.ShutdownTimeout = l.duration("SB_SHUTDOWN_TIMEOUT", 20*time.Second)
	if lv := l.str("SB_LOG_LEVEL", "info"); c.LogLevel.UnmarshalText([]byte(lv)) != nil {
		l.fail("SB_LOG_LEVEL: %q is not one of debug, info, warn, error", lv)
	}

	c.Redis = Redis{
		URL:        l.str("SB_REDIS_URL", ""),
		Addrs:      list(l.getenv("SB_REDIS_ADDRS")),
		MasterName: l.str("SB_REDIS_MASTER_NAME", ""),
		Username:   l.str("SB_REDIS_USERNAME", ""),
		Password:   l.secret("SB_REDIS_PASSWORD"),
	}
	switch {
	case c.Redis.URL != "" && len(c.Redis.Addrs) > 0:
		l.fail("SB_REDIS_URL and SB_REDIS_ADDRS are both set; set one")
	case c.Redis.URL != "":
		if u, err := url.Parse(c.Redis.URL); err != nil || (u.Scheme != "redis" && u.Scheme != "rediss" && u.Scheme != "unix") {
			l.fail("SB_REDIS_URL: not a redis://, rediss:// or unix:// URL")
		}
	case len(c.Redis.Addrs) > 0:
	case !dev:
		l.fail("SB_REDIS_URL (or SB_REDIS_ADDRS) is required")
	}

	c.SecretKey = l.secret("SB_SECRET_KEY")
	if c.SecretKey.IsZero() {
		if !dev {
			l.fail("SB_SECRET_KEY is required (base64 of 32 random bytes: openssl rand -base64 32)")
		}
	} else if raw, err := base64.StdEncoding.DecodeString(c.SecretKey.Reveal()); err != nil || len(raw) != 32 {
		l.fail("SB_SECRET_KEY: must be base64 of exactly 32 bytes")
	} else {
		c.SecretKey = secret.New(string(raw))
	}

	c.JSM = JSM{
		BaseURL:       l.url("SB_JSM_BASE_URL", "", false),
		Email:         l.str("SB_JSM_EMAIL", ""),
		APIToken:      l.secret("SB_JSM_API_TOKEN"),
		ServiceDeskID: l.str("SB_JSM_SERVICE_DESK_ID", ""),
		RequestTypeID: l.str("SB_JSM_REQUEST_TYPE_ID", ""),
		ProjectKey:    l.str("SB_JSM_PROJECT_KEY", ""),
	}
	if !dev {
		for name, v := range map[string]string{
			"SB_JSM_EMAIL": c.JSM.Email, "SB_JSM_SERVICE_DESK_ID": c.JSM.ServiceDeskID,
			"SB_JSM_REQUEST_TYPE_ID": c.JSM.RequestTypeID, "SB_JSM_PROJECT_KEY": c.JSM.ProjectKey,
		} {
			if v == "" {
				l.fail("%s is required", name)
			}
		}
		if c.JSM.BaseURL == nil && l.getenv("SB_JSM_BASE_URL") == "" {
			l.fail("SB_JSM_BASE_URL is required")
		}
		if c.JSM.APIToken.IsZero() {
			l.fail("SB_JSM_API_TOKEN is required")
		}
	}
	for name, v := range map[string]string{"SB_JSM_SERVICE_DESK_ID": c.JSM.ServiceDeskID, "SB_JSM_REQUEST_TYPE_ID": c.JSM.RequestTypeID} {
		if v != "" {
			if _, err := strconv.ParseUint(v, 10, 63); err != nil {
				l.fail("%s: %q is not a numeric id", name, v)
			}
		}
	}

	c.ConnectAppKey = l.str("SB_CONNECT_APP_KEY", "")
	if c.ConnectAppKey == "" {
		if dev {
			c.ConnectAppKey = "supportbridge-dev"
		} else {
			l.fail("SB_CONNECT_APP_KEY is required")
		}
	}
	c.ConnectAppName = l.str("SB_CONNECT_APP_NAME", "supportbridge")
	c.ConnectKeysURL = l.url("SB_CONNECT_KEYS_URL", DefaultConnectKeysURL, true)
	c.ConnectAllowedHosts = list(l.str("SB_CONNECT_ALLOWED_HOSTS", ".atlassian.net,.jira.com,.jira-dev.com"))
	for _, h := range c.ConnectAllowedHosts {
		if !strings.HasPrefix(h, ".") {
			l.fail("SB_CONNECT_ALLOWED_HOSTS: %q must start with a dot (a host suffix such as .atlassian.net)", h)
		}
	}
	c.ConnectScopes = list(l.str("SB_CONNECT_SCOPES", "READ,WRITE,ACCESS_EMAIL_ADDRESSES"))
	c.KeyFetchTimeout = l.duration("SB_KEY_FETCH_TIMEOUT", 3*time.Second)
	// Dev mode's demo site answers user/email too, so the default is the same everywhere.
	switch v := l.str("SB_EMAIL_FROM_HOST", "true"); v {
	case "true", "1", "yes":
		c.EmailFromHost = slices.Contains(c.ConnectScopes, "ACCESS_EMAIL_ADDRESSES")
	case "false", "0", "no":
	default:
		l.fail("SB_EMAIL_FROM_HOST: %q is not true or false", v)
	}

	c.ForgeAppID = l.str("SB_FORGE_APP_ID", "")
	if c.ForgeAppID != "" && !strings.HasPrefix(c.ForgeAppID, "ari:cloud:ecosystem::app/") {
		l.fail("SB_FORGE_APP_ID: %q is not a Forge app ARI (ari:cloud:ecosystem::app/<uuid>)", c.ForgeAppID)
	}
	c.ForgeJWKSURL = l.url("SB_FORGE_JWKS_URL", DefaultForgeJWKSURL, true)
	c.ForgeJWKSMinRefresh = l.duration("SB_FORGE_JWKS_MIN_REFRESH", 30*time.Second)
	c.ForgeAdminModuleKey = l.str("SB_FORGE_ADMIN_MODULE_KEY", "support-access")

	c.AgentTokensFile = l.str("SB_AGENT_TOKENS_FILE", "")
	c.AgentOIDCIssuer = l.str("SB_AGENT_OIDC_ISSUER", "")
	c.AgentOIDCAudience = l.str("SB_AGENT_OIDC_AUDIENCE", "")
	c.AgentOIDCJWKSURL = l.url("SB_AGENT_OIDC_JWKS_URL", "", false)
	c.AgentOIDCRoleClaim = l.str("SB_AGENT_OIDC_ROLE_CLAIM", "supportbridge_role")
	if (c.AgentOIDCIssuer != "" || c.AgentOIDCAudience != "" || c.AgentOIDCJWKSURL != nil) &&
		(c.AgentOIDCIssuer == "" || c.AgentOIDCAudience == "" || c.AgentOIDCJWKSURL == nil) {
		l.fail("SB_AGENT_OIDC_ISSUER, SB_AGENT_OIDC_AUDIENCE and SB_AGENT_OIDC_JWKS_URL go together; set all three")
	}

	c.LogDir = l.str("SB_LOG_DIR", "")
	c.JiraWebhookSecret = l.secret("SB_JIRA_WEBHOOK_SECRET")
	c.GrantMaxBytes = l.integer("SB_GRANT_MAX_BYTES", 256<<20)
	c.LogS3 = LogS3{Bucket: l.str("SB_LOG_S3_BUCKET", ""), Prefix: l.str("SB_LOG_S3_PREFIX", ""),
		Endpoint: l.str("SB_LOG_S3_ENDPOINT", "")}
	switch v := l.str("SB_LOG_S3_PATH_STYLE", "false"); v {
	case "true", "1", "yes":
		c.LogS3.PathStyle = true
	case "false", "0", "no":
	default:
		l.fail("SB_LOG_S3_PATH_STYLE: %q is not true or false", v)
	}
	if c.LogS3.Bucket != "" && c.LogDir != "" {
		l.fail("SB_LOG_DIR and SB_LOG_S3_BUCKET are both set; logs come from one store")
	}
	if c.LogS3.Bucket == "" && (c.LogS3.Prefix != "" || c.LogS3.Endpoint != "") {
		l.fail("SB_LOG_S3_PREFIX and SB_LOG_S3_ENDPOINT need SB_LOG_S3_BUCKET")
	}
	if c.GrantMaxBytes < 1<<10 {
		l.fail("SB_GRANT_MAX_BYTES: must be at least 1024")
	}

	c.Reports = Reports{
		RatePerUser:        int(l.integer("SB_REPORT_RATE_PER_USER", 10)),
		RatePerTenant:      int(l.integer("SB_REPORT_RATE_PER_TENANT", 300)),
		RateWindow:         l.duration("SB_REPORT_RATE_WINDOW", time.Hour),
		MaxQueueLength:     l.integer("SB_REPORT_MAX_QUEUE", 10000),
		MaxAttachmentBytes: l.integer("SB_REPORT_MAX_ATTACHMENT_BYTES", 2<<30),
		IdempotencyTTL:     l.duration("SB_IDEMPOTENCY_TTL", 24*time.Hour),
	}
	c.Delivery = Delivery{
		Role:           l.str("SB_ROLE", "all"),
		Concurrency:    int(l.integer("SB_WORKER_CONCURRENCY", 8)),
		MaxAttempts:    int(l.integer("SB_DELIVERY_MAX_ATTEMPTS", 8)),
		ClaimIdle:      l.duration("SB_DELIVERY_CLAIM_IDLE", 2*time.Minute),
		SearchPatience: l.duration("SB_DELIVERY_SEARCH_PATIENCE", 45*time.Second),
		CallTimeout:    l.duration("SB_JSM_CALL_TIMEOUT", 20*time.Second),
	}
	switch c.Delivery.Role {
	case "all", "api", "worker":
	default:
		l.fail("SB_ROLE: %q is not one of all, api, worker", c.Delivery.Role)
	}
	c.Consent = Consent{ClaimWindow: l.duration("SB_CONSENT_CLAIM_WINDOW", 72*time.Hour)}

	c.Lifecycle = Lifecycle{
		Retention:     l.duration("SB_RETENTION", 30*24*time.Hour),
		PurgeInterval: l.duration("SB_PURGE_INTERVAL", time.Minute),
	}
	switch v := l.str("SB_PURGE_LOGS", "false"); v {
	case "true", "1", "yes":
		c.Lifecycle.PurgeLogs = true
	case "false", "0", "no":
	default:
		l.fail("SB_PURGE_LOGS: %q is not true or false", v)
	}
	if c.Lifecycle.Retention <= 0 || c.Lifecycle.PurgeInterval <= 0 {
		l.fail("SB_RETENTION and SB_PURGE_INTERVAL must be positive")
	}

	if !dev {
		// These carry the JSM API token, or return the keys every token is checked with:
		// over plain http anyone on the path reads the one or swaps the other. dev keeps its
		// local http sandboxes, which are on loopback anyway.
		l.requireHTTPS("SB_JSM_BASE_URL", c.JSM.BaseURL)
		l.requireHTTPS("SB_CONNECT_KEYS_URL", c.ConnectKeysURL)
		l.requireHTTPS("SB_FORGE_JWKS_URL", c.ForgeJWKSURL)
		l.requireHTTPS("SB_AGENT_OIDC_JWKS_URL", c.AgentOIDCJWKSURL)
		if c.AgentOIDCIssuer != "" {
			if u, err := url.Parse(c.AgentOIDCIssuer); err != nil || u.Host == "" {
				l.fail("SB_AGENT_OIDC_ISSUER: %q is not an absolute https URL", c.AgentOIDCIssuer)
			} else {
				l.requireHTTPS("SB_AGENT_OIDC_ISSUER", u)
			}
		}
	}

	if len(l.problems) > 0 {
		return c, &Error{Problems: l.problems}
	}
	return c, nil
}

func portOf(addr string) string {
	_, port, err := net.SplitHostPort(addr)
	if err != nil || port == "" || port == "0" {
		return ":8080"
	}
	return ":" + port
}

// LogValue shows the effective configuration; secrets print as [redacted].
func (c Config) LogValue() slog.Value {
	u := func(x *url.URL) string {
		if x == nil {
			return ""
		}
		y := *x
		y.User = nil
		return y.String()
	}
	redisURL := ""
	if c.Redis.URL != "" {
		if ru, err := url.Parse(c.Redis.URL); err == nil {
			if ru.User != nil {
				ru.User = url.User("[redacted]")
			}
			redisURL = ru.String()
		}
	}
	return slog.GroupValue(
		slog.String("http_addr", c.HTTPAddr),
		slog.String("metrics_addr", c.MetricsAddr),
		slog.Any("trusted_proxies", c.TrustedProxies),
		slog.String("public_base_url", u(c.PublicBaseURL)),
		slog.Int64("max_body_bytes", c.MaxBodyBytes),
		slog.Int64("max_inflight_bytes", c.MaxInflightBytes),
		slog.Duration("shutdown_timeout", c.ShutdownTimeout),
		slog.String("redis_url", redisURL),
		slog.Any("redis_addrs", c.Redis.Addrs),
		slog.String("redis_master_name", c.Redis.MasterName),
		slog.Any("redis_password", c.Redis.Password),
		slog.Any("secret_key", c.SecretKey),
		slog.String("jsm_base_url", u(c.JSM.BaseURL)),
		slog.Bool("jsm_email_set", c.JSM.Email != ""),
		slog.Any("jsm_api_token", c.JSM.APIToken),
		slog.String("jsm_service_desk_id", c.JSM.ServiceDeskID),
		slog.String("jsm_request_type_id", c.JSM.RequestTypeID),
		slog.String("jsm_project_key", c.JSM.ProjectKey),
		slog.String("connect_app_key", c.ConnectAppKey),
		slog.String("connect_keys_url", u(c.ConnectKeysURL)),
		slog.Any("connect_allowed_hosts", c.ConnectAllowedHosts),
		slog.Any("connect_scopes", c.ConnectScopes),
		slog.String("forge_app_id", c.ForgeAppID),
		slog.String("forge_jwks_url", u(c.ForgeJWKSURL)),
		slog.String("forge_admin_module_key", c.ForgeAdminModuleKey),
		slog.String("agent_tokens_file", c.AgentTokensFile),
		slog.String("agent_oidc_issuer", c.AgentOIDCIssuer),
		slog.String("log_dir", c.LogDir),
		slog.Int64("grant_max_bytes", c.GrantMaxBytes),
		slog.String("log_s3_bucket", c.LogS3.Bucket),
		slog.String("log_s3_prefix", c.LogS3.Prefix),
		slog.String("log_s3_endpoint", c.LogS3.Endpoint),
		slog.Any("jira_webhook_secret", c.JiraWebhookSecret),
		slog.String("role", c.Delivery.Role),
		slog.Int("worker_concurrency", c.Delivery.Concurrency),
		slog.Duration("retention", c.Lifecycle.Retention),
		slog.Bool("purge_logs", c.Lifecycle.PurgeLogs),
	)
}

// ErrProblems is matched by errors.As on *Error.
var _ error = (*Error)(nil)

// AsError reports whether err is a configuration error and returns it.
func AsError(err error) (*Error, bool) {
	var e *Error
	ok := errors.As(err, &e)
	return e, ok
}

// LogS3 locates logs in S3 or an S3-compatible store; credentials and region come from the
// standard AWS configuration chain.
type LogS3 struct {
	Bucket, Prefix string
	// Endpoint is an S3-compatible server's URL; empty means AWS.
	Endpoint  string
	PathStyle bool
}

package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/golang-jwt/jwt/v5"
	"github.com/redis/go-redis/v9"

	"github.com/supportbridge/supportbridge/internal/config"
	"github.com/supportbridge/supportbridge/internal/connect"
	"github.com/supportbridge/supportbridge/internal/jsmsandbox"
)

// Demo tenant of dev mode. Its site is on an allowed Atlassian host so the install goes
// through the same checks as a real one; nothing is ever sent there.
const (
	devClientKey = "demo-client-key"
	devBaseURL   = "https://supportbridge-demo.atlassian.net"
	devKID       = "supportbridge-dev-key"
)

// runDev starts the whole service with embedded defaults: in-memory Redis (not durable), a
// local install-key server with a dev key, and a demo tenant installed through the real
// signed-install path.
func runDev(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	role, err := parseFlags("dev", args, stderr)
	if err != nil {
		return err
	}
	env := map[string]string{}
	devGetenv := func(k string) string {
		if v := getenv(k); v != "" {
			return v
		}
		return env[k]
	}

	var mr *miniredis.Miniredis
	if getenv("SB_REDIS_URL") == "" && getenv("SB_REDIS_ADDRS") == "" {
		mr = miniredis.NewMiniRedis()
		if err := mr.Start(); err != nil {
			return fmt.Errorf("start embedded redis: %w", err)
		}
		defer mr.Close()
		env["SB_REDIS_URL"] = "redis://" + mr.Addr()
	}
	if getenv("SB_SECRET_KEY") == "" && getenv("SB_SECRET_KEY_FILE") == "" {
		env["SB_SECRET_KEY"] = base64.StdEncoding.EncodeToString(randomBytes(32))
	}

	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return err
	}
	keySrv, keyURL, err := startKeyServer(&key.PublicKey)
	if err != nil {
		return err
	}
	defer keySrv.Close()
	if getenv("SB_CONNECT_KEYS_URL") == "" {
		env["SB_CONNECT_KEYS_URL"] = keyURL
	}

	devDir := filepath.Join(os.TempDir(), "supportbridge-dev")
	if err := os.MkdirAll(devDir, 0o700); err != nil {
		return err
	}
	creds := map[string]string{}
	if getenv("SB_LOG_DIR") == "" {
		logDir := filepath.Join(devDir, "logs")
		if err := writeDemoLogs(logDir, time.Now()); err != nil {
			return err
		}
		env["SB_LOG_DIR"] = logDir
	}
	if getenv("SB_AGENT_TOKENS_FILE") == "" && getenv("SB_AGENT_OIDC_ISSUER") == "" {
		path, tokens, err := writeDevAgentTokens(devDir)
		if err != nil {
			return err
		}
		env["SB_AGENT_TOKENS_FILE"] = path
		maps.Copy(creds, tokens)
	}
	if getenv("SB_JIRA_WEBHOOK_SECRET") == "" && getenv("SB_JIRA_WEBHOOK_SECRET_FILE") == "" {
		env["SB_JIRA_WEBHOOK_SECRET"] = base64.RawURLEncoding.EncodeToString(randomBytes(24))
		creds["jiraWebhookSecret"] = env["SB_JIRA_WEBHOOK_SECRET"]
	}

	bootLog := newLogger(stdout, slog.LevelInfo)
	if getenv("SB_JSM_BASE_URL") == "" {
		sbSrv, err := startDevSandbox(getenv, env, bootLog)
		if err != nil {
			return err
		}
		defer sbSrv.Close()
	}

	cfg, err := config.Load(config.ModeDev, devGetenv)
	if err != nil {
		return err
	}
	if role != "" {
		cfg.Delivery.Role = role
	}
	log := newLogger(stdout, cfg.LogLevel)
	if mr != nil {
		log.Warn("embedded_redis_not_durable",
			"message", "DEV MODE: Redis is in memory; every report, grant and tenant is lost when this process stops. Never use dev in production.")
	}
	rdb := redis.NewClient(mustRedisOptions(cfg.Redis.URL))

	// The demo tenant's site: answers user/email and permissions/check for an admin and a
	// non-admin demo user, and opens the admin page as either (dev only, loopback only).
	sharedSecret := base64.RawURLEncoding.EncodeToString(randomBytes(32))
	site, err := startDevSite(ctx, getenv, cfg, sharedSecret, log)
	if err != nil {
		return err
	}
	defer site.srv.Close()
	listening := func(addr string) {
		site.setService(addr, cfg)
		go walkthrough(ctx, stdout, cfg, addr, site.url) // walkthrough.go
		go func() {
			if err := installDemoTenant(ctx, cfg, addr, key, sharedSecret, creds, log); err != nil {
				log.Error("demo_tenant_install_failed", "error", err)
			}
		}()
	}
	return serve(ctx, cfg, rdb, log, devHooks{listening: listening, siteRewrite: site.rewrite})
}

func mustRedisOptions(u string) *redis.Options {
	o, err := redis.ParseURL(u)
	if err != nil {
		panic(err) // config.Load validated the URL
	}
	return o
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

// startKeyServer serves the dev public key the way Atlassian's install-key server does:
// GET <base>/<kid> answers a PEM.
func startKeyServer(pub *rsa.PublicKey) (*http.Server, string, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, "", err
	}
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, "", err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{kid}", func(w http.ResponseWriter, r *http.Request) {
		if r.PathValue("kid") != devKID {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/x-pem-file")
		w.Write(pemBytes)
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	return srv, "http://" + ln.Addr().String(), nil
}

// installDemoTenant posts a signed install, exactly as Atlassian would, to the running
// service, then writes the demo tenant's credentials to a private file for local testing.
func installDemoTenant(ctx context.Context, cfg config.Config, addr string, key *rsa.PrivateKey, sharedSecret string, creds map[string]string, log *slog.Logger) error {
	body, _ := json.Marshal(map[string]any{
		"key": cfg.ConnectAppKey, "clientKey": devClientKey, "sharedSecret": sharedSecret,
		"baseUrl": devBaseURL, "displayUrl": devBaseURL, "productType": "jira",
		"description": "supportbridge demo site", "eventType": "installed",
		"serviceEntitlementNumber": "SEN-DEMO-1", "entitlementId": "demo-entitlement",
		"entitlementNumber": "E-DEMO-1", "installationId": "ari:cloud:ecosystem::installation/00000000-0000-4000-8000-000000000001",
		"cloudId": "00000000-0000-4000-8000-0000000000c1",
	})
	base := *cfg.PublicBaseURL
	target := "http://" + loopbackAddr(addr) + base.Path + connect.PathInstalled
	u, _ := url.Parse(target)
	now := time.Now()
	tok := jwt.NewWithClaims(jwt.SigningMethodRS256, jwt.MapClaims{
		"iss": devClientKey, "aud": base.String(), "iat": now.Unix(), "exp": now.Add(3 * time.Minute).Unix(),
		"qsh": connect.QSH(http.MethodPost, u, base.Path),
	})
	tok.Header["kid"] = devKID
	signed, err := tok.SignedString(key)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "JWT "+signed)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		return fmt.Errorf("install answered %d", resp.StatusCode)
	}
	path, err := writeDemoCredentials(sharedSecret, creds)
	if err != nil {
		return err
	}
	log.Info("demo_tenant_installed", "client_key", devClientKey, "base_url", devBaseURL, "credentials_file", path)
	return nil
}

// writeDemoCredentials stores the demo tenant's secret in a file only this user can read, so
// developers can sign context tokens without it ever reaching a log.
func writeDemoCredentials(sharedSecret string, extra map[string]string) (string, error) {
	dir := filepath.Join(os.TempDir(), "supportbridge-dev")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	path := filepath.Join(dir, "demo-tenant.json")
	all := map[string]string{
		"clientKey": devClientKey, "sharedSecret": sharedSecret, "baseUrl": devBaseURL,
		"hint": "sign an HS256 JWT with iss=clientKey, sub=<accountId>, qsh=context-qsh, exp; send it as Authorization: JWT <token>. Agents: Authorization: Bearer <agentToken>.",
	}
	maps.Copy(all, extra)
	b, _ := json.MarshalIndent(all, "", "  ")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		return "", err
	}
	return path, nil
}

// loopbackAddr turns a wildcard listen address into one a client can dial.
func loopbackAddr(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	if host == "" || host == "::" || host == "0.0.0.0" || strings.HasPrefix(host, "[::]") {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port)
}

// Credentials of the dev sandbox's service account; the sandbox accepts only these.
const (
	devJSMEmail = "supportbridge-dev@example.com"
	devJSMToken = "dev-sandbox-api-token"
)

// sandboxOptions describes the desk the sandbox hosts, from the same SB_JSM_ variables the
// service reads, so the two agree without extra settings.
func sandboxOptions(getenv func(string) string) jsmsandbox.Options {
	jsmSpec, jiraSpec := jsmsandbox.SpecPathsFromEnv()
	or := func(k, def string) string {
		if v := getenv(k); v != "" {
			return v
		}
		return def
	}
	return jsmsandbox.Options{
		Email: or("SB_JSM_EMAIL", devJSMEmail), APIToken: or("SB_JSM_API_TOKEN", devJSMToken),
		ServiceDeskID: or("SB_JSM_SERVICE_DESK_ID", jsmsandbox.DefaultServiceDeskID),
		RequestTypeID: or("SB_JSM_REQUEST_TYPE_ID", jsmsandbox.DefaultRequestTypeID),
		ProjectKey:    or("SB_JSM_PROJECT_KEY", jsmsandbox.DefaultProjectKey),
		ClosedDesk:    true, SearchLag: 2 * time.Second,
		JSMSpecPath: jsmSpec, PlatformSpecPath: jiraSpec,
	}
}

// startDevSandbox serves the JSM sandbox next to the service and points SB_JSM_* at it.
func startDevSandbox(getenv func(string) string, env map[string]string, log *slog.Logger) (*http.Server, error) {
	addr := getenv("SB_DEV_JSM_ADDR")
	if addr == "" {
		addr = "127.0.0.1:8081"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("jsm sandbox: listen on %s (set SB_DEV_JSM_ADDR): %w", addr, err)
	}
	opts := sandboxOptions(getenv)
	for _, p := range []string{opts.JSMSpecPath, opts.PlatformSpecPath} {
		if _, err := os.Stat(p); err != nil {
			opts.JSMSpecPath, opts.PlatformSpecPath = "", ""
		}
	}
	opts.KeepCalls, opts.Logger = 1000, log
	sb, err := jsmsandbox.New(opts)
	if err != nil {
		ln.Close()
		return nil, err
	}
	srv := &http.Server{Handler: sb, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	base := "http://" + ln.Addr().String()
	env["SB_JSM_BASE_URL"] = base
	env["SB_JSM_EMAIL"], env["SB_JSM_API_TOKEN"] = opts.Email, opts.APIToken
	env["SB_JSM_SERVICE_DESK_ID"], env["SB_JSM_REQUEST_TYPE_ID"], env["SB_JSM_PROJECT_KEY"] = opts.ServiceDeskID, opts.RequestTypeID, opts.ProjectKey
	log.Info("jsm_sandbox_listening", "url", base, "page", base+"/", "validated", opts.JSMSpecPath != "")
	return srv, nil
}

// runSandbox serves the JSM sandbox on its own, for pointing a separately run service at it.
func runSandbox(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("jsm-sandbox", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "127.0.0.1:8081", "listen address")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return errUsage
	}
	log := newLogger(stdout, slog.LevelInfo)
	return jsmsandbox.Run(ctx, *addr, sandboxOptions(getenv), log)
}

// writeDemoLogs generates two days of logs in two streams for the demo tenant, in the layout
// of the log store, so consent can be tried end to end.
func writeDemoLogs(root string, now time.Time) error {
	for _, stream := range []string{"app", "sync"} {
		dir := filepath.Join(root, devClientKey, stream)
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return err
		}
		for d := 1; d >= 0; d-- {
			day := now.UTC().AddDate(0, 0, -d).Truncate(24 * time.Hour)
			var b strings.Builder
			for i := range 48 {
				t := day.Add(time.Duration(i) * 30 * time.Minute)
				fmt.Fprintf(&b, `{"time":%q,"level":"info","stream":%q,"msg":"demo event %d","user":"user%d@example.com"}`+"\n",
					t.Format(time.RFC3339), stream, i, i%3)
			}
			if err := os.WriteFile(filepath.Join(dir, day.Format("2006-01-02")+".log"), []byte(b.String()), 0o600); err != nil {
				return err
			}
		}
	}
	return nil
}

// writeDevAgentTokens makes an agent and an admin token for dev mode and writes the tokens
// file (hashes only); the tokens themselves go to the private credentials file.
func writeDevAgentTokens(dir string) (string, map[string]string, error) {
	agent := base64.RawURLEncoding.EncodeToString(randomBytes(24))
	admin := base64.RawURLEncoding.EncodeToString(randomBytes(24))
	hash := func(s string) string { h := sha256.Sum256([]byte(s)); return hex.EncodeToString(h[:]) }
	b, _ := json.MarshalIndent([]map[string]string{
		{"name": "Dev Agent", "email": "agent@supportbridge.invalid", "role": "agent", "tokenSha256": hash(agent)},
		{"name": "Dev Admin", "email": "admin@supportbridge.invalid", "role": "admin", "tokenSha256": hash(admin)},
	}, "", "  ")
	path := filepath.Join(dir, "agent-tokens.json")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		return "", nil, err
	}
	return path, map[string]string{"agentToken": agent, "adminToken": admin}, nil
}

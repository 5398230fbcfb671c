package httpapi

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/golang-jwt/jwt/v5"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/supportbridge/supportbridge"
	"github.com/supportbridge/supportbridge/internal/config"
	"github.com/supportbridge/supportbridge/internal/connect"
	"github.com/supportbridge/supportbridge/internal/redisstore"
	"github.com/supportbridge/supportbridge/internal/redisstore/redistest"
	"github.com/supportbridge/supportbridge/internal/seal"
	"github.com/supportbridge/supportbridge/internal/tenant"
)

func TestMain(m *testing.M) {
	gin.SetMode(gin.ReleaseMode)
	redistest.Main(m)
}

const (
	testBaseURL = "http://localhost:8080"
	testAppKey  = "supportbridge-test"
	testKID     = "test-kid-1"
	siteURL     = "https://acme.atlassian.net"
)

// lockedBuffer collects log output from concurrent handlers.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// harness is the full service over real HTTP and a real Redis, with a local Atlassian
// install-key server.
type harness struct {
	t         testing.TB
	srv       *httptest.Server
	server    *Server
	tenants   *tenant.Directory
	key       *rsa.PrivateKey
	keyServer *httptest.Server
	keyHits   *int64
	logs      *lockedBuffer
	cfg       config.Config
	now       func() time.Time
	mu        sync.Mutex
}

type harnessOption func(env map[string]string, o *Options)

func newHarness(t testing.TB, opts ...harnessOption) *harness {
	t.Helper()
	h := &harness{t: t, logs: &lockedBuffer{}, now: time.Now}
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	h.key = key
	der, _ := x509.MarshalPKIXPublicKey(&key.PublicKey)
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	var hits int64
	h.keyHits = &hits
	h.keyServer = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.mu.Lock()
		hits++
		h.mu.Unlock()
		if r.URL.Path != "/"+testKID {
			http.NotFound(w, r)
			return
		}
		w.Write(pemBytes)
	}))
	t.Cleanup(h.keyServer.Close)

	env := map[string]string{
		"SB_PUBLIC_BASE_URL":  testBaseURL,
		"SB_REDIS_URL":        redistest.URL(t),
		"SB_SECRET_KEY":       base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{9}, 32)),
		"SB_CONNECT_APP_KEY":  testAppKey,
		"SB_CONNECT_KEYS_URL": h.keyServer.URL,
		"SB_MAX_BODY_BYTES":   "65536",
	}
	o := Options{}
	for _, opt := range opts {
		opt(env, &o)
	}
	cfg, err := config.Load(config.ModeDev, func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	h.cfg = cfg
	rdb, err := redisstore.NewClient(cfg.Redis)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rdb.Close() })
	sealer, _ := seal.New(cfg.SecretKey.Bytes())
	h.tenants = tenant.NewDirectory(redisstore.NewTenants(rdb, sealer), redisstore.PublishTenantChanged(rdb), time.Minute, nil)
	o.Config = cfg
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewJSONHandler(h.logs, nil))
	}
	o.Tenants = h.tenants
	if o.Lifecycle == nil {
		lo := tenant.ServiceOptions{Store: h.tenants.Fresh(), AppKey: cfg.ConnectAppKey, AllowedHosts: cfg.ConnectAllowedHosts,
			Now: func() time.Time { return h.now() }, Logger: o.Logger}
		if ce, ok := o.Consent.Service.(tenant.ConsentEnder); ok {
			lo.Consent = ce
		}
		o.Lifecycle = tenant.NewService(lo)
	}
	o.InstallKeys = connect.NewKeyFetcher(cfg.ConnectKeysURL, nil, time.Second)
	if o.Ready == nil {
		o.Ready = func(ctx context.Context) error { return redisstore.Ping(ctx, rdb) }
	}
	o.Registry = prometheus.NewRegistry()
	o.OpenAPI = supportbridge.OpenAPI
	o.Now = func() time.Time { return h.now() }
	h.server = New(o)
	h.srv = httptest.NewServer(h.server.Handler())
	t.Cleanup(h.srv.Close)
	return h
}

// installToken signs a lifecycle token the way Atlassian does (RS256, kid, qsh, aud).
func (h *harness) installToken(method, path, iss string, mutate func(claims jwt.MapClaims, tok *jwt.Token)) string {
	h.t.Helper()
	u, _ := url.Parse(path)
	claims := jwt.MapClaims{
		"iss": iss, "aud": testBaseURL, "iat": time.Now().Unix(), "exp": time.Now().Add(3 * time.Minute).Unix(),
		"qsh": connect.QSH(method, u, ""),
	}
	tok := jwt.NewWithClaims(jwt.SigningMethodRS256, claims)
	tok.Header["kid"] = testKID
	if mutate != nil {
		mutate(claims, tok)
	}
	var s string
	var err error
	switch tok.Method.Alg() {
	case "HS256":
		s, err = tok.SignedString([]byte("some-shared-secret-value"))
	case "none":
		s, err = tok.SignedString(jwt.UnsafeAllowNoneSignatureType)
	default:
		s, err = tok.SignedString(h.key)
	}
	if err != nil {
		h.t.Fatal(err)
	}
	return s
}

// contextToken signs an HS256 token with a tenant secret; qsh defaults to context-qsh.
func contextToken(t testing.TB, clientKey, secret, sub string, mutate func(jwt.MapClaims)) string {
	t.Helper()
	claims := jwt.MapClaims{
		"iss": clientKey, "sub": sub, "iat": time.Now().Unix(), "exp": time.Now().Add(3 * time.Minute).Unix(),
		"qsh": connect.ContextQSH,
	}
	if mutate != nil {
		mutate(claims)
	}
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString([]byte(secret))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func installBody(clientKey, secret string, mutate func(map[string]any)) []byte {
	b := map[string]any{
		"key": testAppKey, "clientKey": clientKey, "sharedSecret": secret, "baseUrl": siteURL,
		"displayUrl": siteURL, "productType": "jira", "description": "Acme Jira", "eventType": "installed",
		"serviceEntitlementNumber": "SEN-1", "entitlementId": "ent-1", "entitlementNumber": "E-1",
		"oauthClientId": "oauth-1", "installationId": "ari:cloud:ecosystem::installation/inst-" + clientKey,
		"cloudId": "cloud-" + clientKey,
	}
	if mutate != nil {
		mutate(b)
	}
	out, _ := json.Marshal(b)
	return out
}

// do sends a request and returns the status, headers and body.
func (h *harness) do(method, path string, headers map[string]string, body []byte) (int, http.Header, []byte) {
	h.t.Helper()
	req, err := http.NewRequest(method, h.srv.URL+path, bytes.NewReader(body))
	if err != nil {
		h.t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range headers {
		if v == "" {
			req.Header.Del(k)
		} else {
			req.Header.Set(k, v)
		}
	}
	resp, err := h.srv.Client().Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, b
}

// install runs a valid signed install of clientKey with secret.
func (h *harness) install(clientKey, secret string) {
	h.t.Helper()
	tok := h.installToken("POST", "/connect/installed", clientKey, nil)
	st, _, body := h.do("POST", "/connect/installed", map[string]string{"Authorization": "JWT " + tok}, installBody(clientKey, secret, nil))
	if st != http.StatusNoContent {
		h.t.Fatalf("install: status %d, body %s", st, body)
	}
}

func decodeProblem(t testing.TB, hdr http.Header, body []byte) Problem {
	t.Helper()
	if ct := hdr.Get("Content-Type"); ct != "application/problem+json" {
		t.Errorf("Content-Type = %q, want application/problem+json (body %s)", ct, body)
	}
	var p Problem
	if err := json.Unmarshal(body, &p); err != nil {
		t.Fatalf("problem body %q: %v", body, err)
	}
	if p.Title == "" || p.Status == 0 || !strings.HasPrefix(p.Type, problemTypeBase) {
		t.Errorf("incomplete problem: %+v", p)
	}
	return p
}

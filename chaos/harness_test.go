//go:build chaos

package chaos

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"mime/multipart"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/supportbridge/supportbridge/internal/connect"
	"github.com/supportbridge/supportbridge/internal/jsmsandbox"
)

// binary is the service built once for the package by TestMain.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "chaos-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "chaos:", err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "supportbridge")
	build := exec.Command("go", "build", "-o", binary, "./cmd/supportbridge")
	build.Dir = ".."
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "chaos: build:", err)
		os.Exit(1)
	}
	if _, err := exec.LookPath("redis-server"); err != nil {
		fmt.Fprintln(os.Stderr, "chaos: redis-server not on PATH (scripts/ensure-deps.sh installs it)")
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

const (
	appKey      = "com.vendor.supportbridge.chaos"
	clientKey   = "chaos-client-key"
	siteBaseURL = "https://chaos-site.atlassian.net"
	kid         = "chaos-key"
	jsmEmail    = "svc@vendor.example"
	jsmToken    = "chaos-jsm-token"
	secretKey   = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
)

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// waitFor polls cond every 50 ms until it holds or d passes; it reports which.
func waitFor(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// redisProc is one redis-server the test controls: it can be shut down, killed, paused and
// started again on the same port and directory, so AOF files survive restarts.
type redisProc struct {
	t    *testing.T
	port int
	dir  string
	args []string
	mu   sync.Mutex
	cmd  *exec.Cmd
}

func (r *redisProc) Addr() string { return "127.0.0.1:" + strconv.Itoa(r.port) }

// startRedis starts redis-server on a free port in a temp dir with the extra args.
func startRedis(t *testing.T, extra ...string) *redisProc {
	t.Helper()
	r := &redisProc{t: t, port: freePort(t), dir: t.TempDir(), args: extra}
	r.start()
	t.Cleanup(func() {
		r.mu.Lock()
		defer r.mu.Unlock()
		if r.cmd != nil {
			r.cmd.Process.Signal(syscall.SIGCONT)
			r.cmd.Process.Kill()
			r.cmd.Wait()
		}
	})
	return r
}

func (r *redisProc) start() {
	r.t.Helper()
	args := append([]string{"--port", strconv.Itoa(r.port), "--bind", "127.0.0.1", "--dir", r.dir,
		"--save", "", "--logfile", filepath.Join(r.dir, "redis.log")}, r.args...)
	cmd := exec.Command("redis-server", args...)
	if err := cmd.Start(); err != nil {
		r.t.Fatal(err)
	}
	r.mu.Lock()
	r.cmd = cmd
	r.mu.Unlock()
	if !waitFor(15*time.Second, func() bool { return r.cli("PING") == "PONG" }) {
		b, _ := os.ReadFile(filepath.Join(r.dir, "redis.log"))
		r.t.Fatalf("redis-server on %d did not answer PING:\n%s", r.port, tail(string(b), 2000))
	}
}

// cli runs one redis-cli command and returns its trimmed output.
func (r *redisProc) cli(args ...string) string {
	out, _ := exec.Command("redis-cli", append([]string{"-p", strconv.Itoa(r.port), "--no-raw"}, args...)...).CombinedOutput()
	s := strings.TrimSpace(string(out))
	return strings.Trim(s, `"`)
}

// shutdown stops the server gracefully (SHUTDOWN, which fsyncs the AOF) and waits for it.
func (r *redisProc) shutdown() {
	r.t.Helper()
	r.cli("SHUTDOWN")
	r.wait(10 * time.Second)
}

// kill stops the server with SIGKILL: whatever the AOF had not fsynced is gone.
func (r *redisProc) kill() {
	r.mu.Lock()
	r.cmd.Process.Kill()
	r.mu.Unlock()
	r.wait(10 * time.Second)
}

func (r *redisProc) wait(d time.Duration) {
	r.t.Helper()
	r.mu.Lock()
	cmd := r.cmd
	r.mu.Unlock()
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(d):
		cmd.Process.Kill()
		<-done
		r.t.Errorf("redis-server on %d did not stop within %v; killed", r.port, d)
	}
	r.mu.Lock()
	r.cmd = nil
	r.mu.Unlock()
}

func (r *redisProc) signal(s syscall.Signal) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.cmd.Process.Signal(s)
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// newSandbox serves an in-process JSM sandbox, spec-validated when Atlassian's specs are
// available (CI has them), so the test can read every request, comment and call.
func newSandbox(t *testing.T) (*jsmsandbox.Sandbox, string) {
	t.Helper()
	opts := jsmsandbox.Options{
		Email: jsmEmail, APIToken: jsmToken,
		ServiceDeskID: jsmsandbox.DefaultServiceDeskID, RequestTypeID: jsmsandbox.DefaultRequestTypeID,
		ProjectKey: jsmsandbox.DefaultProjectKey, SearchLag: time.Second,
	}
	jsmSpec, jiraSpec := jsmsandbox.SpecPathsFromEnv()
	if exists(jsmSpec) && exists(jiraSpec) {
		opts.JSMSpecPath, opts.PlatformSpecPath = jsmSpec, jiraSpec
	}
	sb, err := jsmsandbox.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(sb)
	t.Cleanup(srv.Close)
	t.Cleanup(func() {
		for _, v := range sb.Violations() {
			t.Errorf("jsm sandbox: spec violation: %s", v)
		}
	})
	return sb, srv.URL
}

func exists(p string) bool {
	if p == "" {
		return false
	}
	_, err := os.Stat(p)
	return err == nil
}

// keyServer serves an RSA public key the way Atlassian's install-key server does.
func keyServer(t *testing.T) (*rsa.PrivateKey, string) {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKIXPublicKey(&key.PublicKey)
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/"+kid {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/x-pem-file")
		w.Write(pemBytes)
	}))
	t.Cleanup(srv.Close)
	return key, srv.URL
}

// env is a world the service runs in: one sandbox, one key server, and a Redis setting.
type env struct {
	t            *testing.T
	sandbox      *jsmsandbox.Sandbox
	jsmURL       string
	key          *rsa.PrivateKey
	keysURL      string
	redis        map[string]string // SB_REDIS_URL or SB_REDIS_ADDRS
	sharedSecret string
	extra        map[string]string
	installExtra map[string]any // more fields of the install payload
}

func newEnv(t *testing.T, redisVars map[string]string) *env {
	t.Helper()
	sb, jsmURL := newSandbox(t)
	key, keysURL := keyServer(t)
	secret := make([]byte, 32)
	rand.Read(secret)
	return &env{t: t, sandbox: sb, jsmURL: jsmURL, key: key, keysURL: keysURL, redis: redisVars,
		sharedSecret: base64.RawURLEncoding.EncodeToString(secret), extra: map[string]string{}}
}

// service is one running `supportbridge serve` process.
type service struct {
	t    *testing.T
	base string
	cmd  *exec.Cmd
	log  *syncBuffer
	done chan struct{}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// start runs the binary with serve and the env's configuration, and waits for /healthz.
func (e *env) start(args ...string) *service {
	t := e.t
	t.Helper()
	port := freePort(t)
	base := "http://127.0.0.1:" + strconv.Itoa(port)
	vars := map[string]string{
		"SB_HTTP_ADDR":                "127.0.0.1:" + strconv.Itoa(port),
		"SB_PUBLIC_BASE_URL":          base,
		"SB_SECRET_KEY":               secretKey,
		"SB_JSM_BASE_URL":             e.jsmURL,
		"SB_JSM_EMAIL":                jsmEmail,
		"SB_JSM_API_TOKEN":            jsmToken,
		"SB_JSM_SERVICE_DESK_ID":      jsmsandbox.DefaultServiceDeskID,
		"SB_JSM_REQUEST_TYPE_ID":      jsmsandbox.DefaultRequestTypeID,
		"SB_JSM_PROJECT_KEY":          jsmsandbox.DefaultProjectKey,
		"SB_CONNECT_APP_KEY":          appKey,
		"SB_CONNECT_KEYS_URL":         e.keysURL,
		"SB_EMAIL_FROM_HOST":          "false",
		"SB_REPORT_RATE_PER_USER":     "1000000",
		"SB_REPORT_RATE_PER_TENANT":   "1000000",
		"SB_DELIVERY_CLAIM_IDLE":      "5s",
		"SB_DELIVERY_SEARCH_PATIENCE": "15s",
		"SB_JSM_CALL_TIMEOUT":         "5s",
		"SB_SHUTDOWN_TIMEOUT":         "5s",
		"SB_LOG_LEVEL":                "info",
	}
	for k, v := range e.redis {
		vars[k] = v
	}
	for k, v := range e.extra {
		vars[k] = v
	}
	cmd := exec.Command(binary, append([]string{"serve"}, args...)...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
	for k, v := range vars {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	s := &service{t: t, base: base, cmd: cmd, log: &syncBuffer{}, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = s.log, s.log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { cmd.Wait(); close(s.done) }()
	t.Cleanup(s.stop)
	if !waitFor(20*time.Second, func() bool {
		select {
		case <-s.done:
			return true
		default:
		}
		resp, err := http.Get(base + "/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}) {
		t.Fatalf("service did not become healthy:\n%s", tail(s.log.String(), 4000))
	}
	select {
	case <-s.done:
		t.Fatalf("service exited at start:\n%s", tail(s.log.String(), 4000))
	default:
	}
	return s
}

// stop ends the service with SIGTERM (SIGKILL after 10 s) and checks its log: a CROSSSLOT
// error or a panic anywhere fails the test.
func (s *service) stop() {
	select {
	case <-s.done:
	default:
		s.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-s.done:
		case <-time.After(10 * time.Second):
			s.cmd.Process.Kill()
			<-s.done
		}
	}
	out := s.log.String()
	for _, bad := range []string{"CROSSSLOT", "panic:", "DATA RACE"} {
		if strings.Contains(out, bad) {
			s.t.Errorf("service log contains %q:\n%s", bad, tail(out, 6000))
			return
		}
	}
	if testing.Verbose() && s.t.Failed() {
		s.t.Logf("service log tail:\n%s", tail(out, 3000))
	}
}

// install posts a signed install for the chaos tenant, exactly as Atlassian would.
func (e *env) install(s *service) {
	e.t.Helper()
	e.lifecycle(s, "installed", connect.PathInstalled)
}

// lifecycle posts a signed lifecycle event (installed, uninstalled) for the chaos tenant.
func (e *env) lifecycle(s *service, event, path string) {
	t := e.t
	t.Helper()
	payload := map[string]any{
		"key": appKey, "clientKey": clientKey, "sharedSecret": e.sharedSecret,
		"baseUrl": siteBaseURL, "displayUrl": siteBaseURL, "productType": "jira",
		"description": "chaos site", "eventType": event,
		"serviceEntitlementNumber": "SEN-CHAOS-1",
	}
	for k, v := range e.installExtra {
		payload[k] = v
	}
	body, _ := json.Marshal(payload)
	base, _ := url.Parse(s.base)
	target := s.base + path
	u, _ := url.Parse(target)
	now := time.Now()
	tok := jwt.NewWithClaims(jwt.SigningMethodRS256, jwt.MapClaims{
		"iss": clientKey, "aud": base.String(), "iat": now.Unix(), "exp": now.Add(3 * time.Minute).Unix(),
		"qsh": connect.QSH(http.MethodPost, u, base.Path),
	})
	tok.Header["kid"] = kid
	signed, err := tok.SignedString(e.key)
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodPost, target, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "JWT "+signed)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("%s answered %d: %s", event, resp.StatusCode, b)
	}
}

// contextToken is the HS256 Connect context token the app holds for a user.
func (e *env) contextToken(accountID string) string {
	now := time.Now()
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
		"iss": clientKey, "sub": accountID, "iat": now.Unix(), "exp": now.Add(3 * time.Minute).Unix(),
		"qsh": connect.ContextQSH,
	}).SignedString([]byte(e.sharedSecret))
	if err != nil {
		e.t.Fatal(err)
	}
	return s
}

// filed is the outcome of one report the client sent.
type filed struct {
	summary string
	status  int
	id      string
	sent    time.Time
	done    time.Time
	err     error
}

func (f filed) latency() time.Duration { return f.done.Sub(f.sent) }

var reportClient = &http.Client{Timeout: 10 * time.Second}

// fileReport sends one report whose summary is unique; files, when given, go as multipart
// attachments.
func (e *env) fileReport(base, summary string, files map[string][]byte) filed {
	js, _ := json.Marshal(map[string]any{
		"summary": summary, "description": "Filed by the chaos test; the summary is the marker.",
		"email":     "chaos-user@customer.example",
		"operation": map[string]any{"name": "chaos.intake", "httpStatus": 500, "errorMessage": "boom"},
		"environment": map[string]any{"locale": "en-GB", "timezone": "UTC", "screen": "1x1",
			"url": siteBaseURL + "/jira/chaos"},
	})
	var body io.Reader = bytes.NewReader(js)
	ct := "application/json"
	if len(files) > 0 {
		var buf bytes.Buffer
		mw := multipart.NewWriter(&buf)
		pw, _ := mw.CreateFormField("report")
		pw.Write(js)
		for name, content := range files {
			fw, _ := mw.CreateFormFile("attachment", name)
			fw.Write(content)
		}
		mw.Close()
		body, ct = &buf, mw.FormDataContentType()
	}
	req, _ := http.NewRequest(http.MethodPost, base+"/api/v1/reports", body)
	req.Header.Set("Content-Type", ct)
	req.Header.Set("Authorization", "JWT "+e.contextToken("chaos-account-1"))
	req.Header.Set("Idempotency-Key", summary)
	f := filed{summary: summary, sent: time.Now()}
	resp, err := reportClient.Do(req)
	f.done = time.Now()
	if err != nil {
		f.err = err
		return f
	}
	defer resp.Body.Close()
	f.status = resp.StatusCode
	var out struct{ ID string }
	json.NewDecoder(resp.Body).Decode(&out)
	f.id = out.ID
	return f
}

// reportState asks the service for a report's state; "" with the status code when it is
// not answered with 200.
func (e *env) reportState(base, id string) (string, int) {
	req, _ := http.NewRequest(http.MethodGet, base+"/api/v1/reports/"+id, nil)
	req.Header.Set("Authorization", "JWT "+e.contextToken("chaos-account-1"))
	resp, err := reportClient.Do(req)
	if err != nil {
		return "", 0
	}
	defer resp.Body.Close()
	var out struct{ Status string }
	json.NewDecoder(resp.Body).Decode(&out)
	if resp.StatusCode != http.StatusOK {
		return "", resp.StatusCode
	}
	return out.Status, resp.StatusCode
}

// requestsBySummary counts the sandbox's requests per summary.
func (e *env) requestsBySummary() map[string][]jsmsandbox.Request {
	out := map[string][]jsmsandbox.Request{}
	for _, r := range e.sandbox.Requests() {
		out[r.Summary] = append(out[r.Summary], r)
	}
	return out
}

// readyz reports /readyz's status code and how long it took to answer (0 on a transport error).
func readyz(base string) (int, time.Duration) {
	c := &http.Client{Timeout: 5 * time.Second}
	start := time.Now()
	resp, err := c.Get(base + "/readyz")
	if err != nil {
		return 0, time.Since(start)
	}
	resp.Body.Close()
	return resp.StatusCode, time.Since(start)
}

// steadyIntake files reports at a steady rate until ctx ends and returns every outcome.
func (e *env) steadyIntake(ctx context.Context, base, prefix string, every time.Duration) <-chan []filed {
	out := make(chan []filed, 1)
	go func() {
		var (
			mu  sync.Mutex
			all []filed
			wg  sync.WaitGroup
		)
		tick := time.NewTicker(every)
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-ctx.Done():
				wg.Wait()
				out <- all
				return
			case <-tick.C:
			}
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				f := e.fileReport(base, fmt.Sprintf("%s-%05d", prefix, i), nil)
				mu.Lock()
				all = append(all, f)
				mu.Unlock()
			}(i)
		}
	}()
	return out
}

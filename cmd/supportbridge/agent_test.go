package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/supportbridge/supportbridge/internal/redisstore/redistest"
)

// agentWorld is a dev-mode service started for one test, with the demo tenant's
// credentials and a ticket that a real report created.
type agentWorld struct {
	addr, siteURL string
	agentToken    string
	adminToken    string
	ticket        string
	reportID      string
	logFrom       time.Time
	bigLines      int
}

// smallLines is how many lines the "app" stream holds in the test's log window.
const smallLines = 120

// startAgentWorld starts `supportbridge dev` on free ports with a private TMPDIR, real
// Redis and logs of its own: a small stream ("app") to read whole and a big one ("big") that
// a read cannot finish before the test revokes the grant.
func startAgentWorld(t *testing.T) *agentWorld {
	t.Helper()
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp) // dev writes the demo tenant's credentials under os.TempDir()
	w := &agentWorld{bigLines: 250_000}
	day := time.Now().UTC().AddDate(0, 0, -1).Truncate(24 * time.Hour)
	w.logFrom = day
	logDir := filepath.Join(tmp, "logs")
	writeStream(t, logDir, "app", day, smallLines, func(i int, b *strings.Builder) {
		fmt.Fprintf(b, "demo event %d for user%d@example.com", i, i%3)
	})
	rng := rand.New(rand.NewPCG(1, 2))
	// Random numbers compress poorly, so the gzip'd stream is far bigger than the socket
	// buffers and the service is still sending when the grant is revoked.
	writeStream(t, logDir, "big", day, w.bigLines, func(i int, b *strings.Builder) {
		fmt.Fprintf(b, "op %d took %d ms on node %d after %d retries, queue %d", i, rng.IntN(1e9), rng.IntN(1e6), rng.IntN(1e6), rng.IntN(1e9))
	})
	env := map[string]string{
		"SB_HTTP_ADDR": "127.0.0.1:0", "SB_DEV_JSM_ADDR": "127.0.0.1:0", "SB_DEV_SITE_ADDR": "127.0.0.1:0",
		"SB_REDIS_URL": redistest.URL(t), "SB_LOG_DIR": logDir,
	}
	addr, out, stop := startRun(t, []string{"dev"}, env)
	t.Cleanup(func() { stop() })
	w.addr = "http://" + addr
	w.siteURL = waitForLog(t, out, "demo_site_listening")["url"].(string)
	waitForLog(t, out, "demo_tenant_installed")

	b, err := os.ReadFile(filepath.Join(tmp, "supportbridge-dev", "demo-tenant.json"))
	if err != nil {
		t.Fatal(err)
	}
	var creds map[string]string
	if err := json.Unmarshal(b, &creds); err != nil {
		t.Fatal(err)
	}
	w.agentToken, w.adminToken = creds["agentToken"], creds["adminToken"]
	w.reportID, w.ticket = fileReport(t, w.addr, creds["clientKey"], creds["sharedSecret"])
	return w
}

// writeStream writes n lines of one stream, all on day, in the log store's layout.
func writeStream(t *testing.T, root, stream string, day time.Time, n int, msg func(int, *strings.Builder)) {
	t.Helper()
	dir := filepath.Join(root, devClientKey, stream)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	step := 20 * time.Hour / time.Duration(n)
	for i := range n {
		fmt.Fprintf(&b, `{"time":%q,"level":"info","msg":"`, day.Add(time.Duration(i)*step).Format(time.RFC3339Nano))
		msg(i, &b)
		b.WriteString("\"}\n")
	}
	if err := os.WriteFile(filepath.Join(dir, day.Format("2006-01-02")+".log"), []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
}

// fileReport files a report as the demo tenant's app would (a Connect context token signed
// with the shared secret) and waits until it is a JSM ticket. With startAgentWorld it is the
// test of the binary's own wiring (run → buildApp, real Redis, the JSM and site sandboxes):
// a report carried to delivered, then an access request through approval.
func fileReport(t *testing.T, base, clientKey, secret string) (id, ticket string) {
	t.Helper()
	sign := func() string {
		now := time.Now()
		s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
			"iss": clientKey, "sub": devUserAccount, "qsh": "context-qsh", "iat": now.Unix(), "exp": now.Add(time.Minute).Unix(),
		}).SignedString([]byte(secret))
		if err != nil {
			t.Fatal(err)
		}
		return "JWT " + s
	}
	var created struct{ ID string }
	status := doJSON(t, http.MethodPost, base+"/api/v1/reports", sign(),
		`{"summary":"Sync fails for the CLI test","email":"sam.user@customer.example"}`, &created)
	if status != http.StatusAccepted {
		t.Fatalf("report: status %d", status)
	}
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		var st struct{ Status, TicketKey, EmailSource string }
		doJSON(t, http.MethodGet, base+"/api/v1/reports/"+created.ID, sign(), "", &st)
		if st.Status == "delivered" && st.TicketKey != "" {
			// The binary's worker asked the demo site (buildApp's siteapi.Emails) and raised
			// the request on behalf of the email it confirmed.
			if st.EmailSource != "site" {
				t.Errorf("delivered with emailSource %q, want site", st.EmailSource)
			}
			return created.ID, st.TicketKey
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatal("the report did not become a ticket in 30 s")
	return "", ""
}

func doJSON(t *testing.T, method, url, auth, body string, out any) int {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", auth)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if out != nil && resp.StatusCode < 300 {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s: %v: %s", method, url, err, b)
		}
	}
	return resp.StatusCode
}

var pageTokenRE = regexp.MustCompile(`<meta name="sb-page-token" content="([^"]+)">`)

// approve decides a request the way a site administrator does: the demo site opens the
// admin page as its administrator, and the page's token approves.
func (w *agentWorld) approve(t *testing.T, requestID string) string {
	t.Helper()
	resp, err := http.Get(w.siteURL + "/dev/support-access?as=admin&request=" + requestID)
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	m := pageTokenRE.FindSubmatch(page)
	if m == nil {
		t.Fatalf("admin page (%d) has no page token", resp.StatusCode)
	}
	var v struct{ Grant struct{ ID string } }
	if status := doJSON(t, http.MethodPost, w.addr+"/api/v1/site/access-requests/"+requestID+"/approve", "Bearer "+string(m[1]), "{}", &v); status != http.StatusOK {
		t.Fatalf("approve: status %d", status)
	}
	return v.Grant.ID
}

// agentRun runs `supportbridge agent args…` in process, as the agent unless env says otherwise.
func (w *agentWorld) agentRun(t *testing.T, env map[string]string, stdout io.Writer, args ...string) (code int, errOut string) {
	t.Helper()
	getenv := func(k string) string {
		if v, ok := env[k]; ok {
			return v
		}
		return map[string]string{"SB_URL": w.addr, "SB_AGENT_TOKEN": w.agentToken}[k]
	}
	var stderr syncBuffer
	code = run(context.Background(), append([]string{"agent"}, args...), getenv, stdout, &stderr)
	return code, stderr.String()
}

func (w *agentWorld) agent(t *testing.T, args ...string) (code int, out, errOut string) {
	t.Helper()
	var stdout syncBuffer
	code, errOut = w.agentRun(t, nil, &stdout, args...)
	return code, stdout.String(), errOut
}

// blockingWriter holds the first write until released, like a terminal that stopped
// scrolling; the service is then still streaming when the test revokes the grant.
type blockingWriter struct {
	once    sync.Once
	started chan struct{}
	release chan struct{}
	mu      sync.Mutex
	n       int
}

func (b *blockingWriter) Write(p []byte) (int, error) {
	b.once.Do(func() { close(b.started) })
	<-b.release
	b.mu.Lock()
	b.n += strings.Count(string(p), "\n")
	b.mu.Unlock()
	return len(p), nil
}

// TestAgentCLIConsentFlow walks an agent through the consent flow with the CLI against the
// real service: request, list, approval by the customer's administrator, a complete read,
// a read the agent's own revocation ends, and the evidence pack verified locally.
func TestAgentCLIConsentFlow(t *testing.T) {
	w := startAgentWorld(t)
	from := w.logFrom.Format(time.RFC3339)
	to := time.Now().UTC().Add(-time.Minute).Format(time.RFC3339)

	code, out, errOut := w.agent(t, "access", "request", "--ticket", w.ticket, "--reason", "sync fails since Monday, need the logs",
		"--streams", "app,big", "--from", from, "--to", to, "--duration", "4h", "--json")
	if code != 0 {
		t.Fatalf("access request: exit %d: %s", code, errOut)
	}
	var req struct{ ID, Status string }
	if err := json.Unmarshal([]byte(out), &req); err != nil || req.Status != "pending" {
		t.Fatalf("access request --json printed %q (%v), want the pending request", out, err)
	}

	code, out, errOut = w.agent(t, "access", "list", "--ticket", w.ticket)
	if code != 0 || !strings.Contains(out, req.ID) || !strings.Contains(out, "pending") || !strings.HasPrefix(out, "ID") {
		t.Fatalf("access list: exit %d, stdout:\n%s\nstderr: %s", code, out, errOut)
	}

	grantID := w.approve(t, req.ID)
	code, out, _ = w.agent(t, "grants", "list", "--ticket", w.ticket)
	if code != 0 || !strings.Contains(out, grantID) || !strings.Contains(out, "active") {
		t.Fatalf("grants list: exit %d:\n%s", code, out)
	}

	// A complete read, to a file: all lines, mode 0600, no .partial left.
	file := filepath.Join(t.TempDir(), "app.log")
	code, _, errOut = w.agent(t, "logs", grantID, "--stream", "app", "-o", file)
	if code != 0 {
		t.Fatalf("logs: exit %d: %s", code, errOut)
	}
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Count(string(b), "\n"); got != smallLines {
		t.Errorf("logs wrote %d lines, want %d", got, smallLines)
	}
	if !strings.Contains(string(b), "demo event 7 ") || strings.Contains(string(b), "user1@example.com") {
		t.Errorf("the lines are not the scrubbed log lines:\n%.300s", b)
	}
	if info, err := os.Stat(file); err != nil || info.Mode().Perm() != 0o600 {
		t.Errorf("output file mode: %v %v", info.Mode(), err)
	}
	if _, err := os.Stat(file + ".partial"); !os.IsNotExist(err) {
		t.Errorf("a .partial file is left after a complete read: %v", err)
	}
	sum := regexp.MustCompile(`sha256 ([0-9a-f]{64})`).FindStringSubmatch(errOut)
	if sum == nil {
		t.Fatalf("logs did not print the sha256 of what it received: %s", errOut)
	}

	// A read that the grant's revocation ends: exit 4 with the reason, lines kept as .partial.
	bw := &blockingWriter{started: make(chan struct{}), release: make(chan struct{})}
	type result struct {
		code   int
		errOut string
	}
	done := make(chan result, 1)
	go func() {
		code, errOut := w.agentRun(t, nil, bw, "logs", grantID, "--stream", "big")
		done <- result{code, errOut}
	}()
	select {
	case <-bw.started:
	case r := <-done:
		t.Fatalf("the big read ended before writing: exit %d: %s", r.code, r.errOut)
	case <-time.After(30 * time.Second):
		t.Fatal("the big read wrote nothing in 30 s")
	}
	if code, _, errOut := w.agent(t, "grants", "revoke", grantID); code != 0 {
		t.Fatalf("grants revoke: exit %d: %s", code, errOut)
	}
	time.Sleep(1500 * time.Millisecond) // the service re-checks the grant every half second
	close(bw.release)
	var r result
	select {
	case r = <-done:
	case <-time.After(60 * time.Second):
		t.Fatal("the read did not end after the revocation")
	}
	if r.code != 4 || !strings.Contains(r.errOut, "revoked_by_agent") {
		t.Fatalf("revoked read: exit %d, want 4 with the reason; stderr: %s", r.code, r.errOut)
	}
	if bw.n == 0 || bw.n >= w.bigLines {
		t.Errorf("revoked read wrote %d of %d lines, want some but not all", bw.n, w.bigLines)
	}

	// The evidence pack has both reads, the complete one with the hash the CLI printed.
	code, out, errOut = w.agent(t, "evidence", "--ticket", w.ticket, "--json")
	if code != 0 {
		t.Fatalf("evidence --json: exit %d: %s", code, errOut)
	}
	var pack struct {
		Accesses []struct{ SHA256, End string }
	}
	if err := json.Unmarshal([]byte(out), &pack); err != nil {
		t.Fatal(err)
	}
	var ends []string
	matched := false
	for _, a := range pack.Accesses {
		ends = append(ends, a.End)
		matched = matched || (a.SHA256 == sum[1] && a.End == "complete")
	}
	if !matched || len(pack.Accesses) != 2 {
		t.Errorf("evidence reads %v: want a complete read with sha256 %s and the revoked one", ends, sum[1])
	}
	code, out, errOut = w.agent(t, "evidence", "--ticket", w.ticket, "--verify")
	if code != 0 || !strings.Contains(out, "all checks passed") || !strings.Contains(out, "HMAC") {
		t.Errorf("evidence --verify: exit %d, stdout:\n%s\nstderr: %s", code, out, errOut)
	}

	// Reading under the revoked grant: the service refuses with the grant's end, exit 4.
	code, _, errOut = w.agent(t, "logs", grantID, "--stream", "app")
	if code != 4 || !strings.Contains(errOut, "revoked_by_agent") {
		t.Errorf("logs under a revoked grant: exit %d, stderr: %s", code, errOut)
	}
}

// TestAgentCLIErrors: usage mistakes are exit 2 before any call; the service's refusals are
// exit 1 with the problem's title, detail and field errors, never a Go error.
func TestAgentCLIErrors(t *testing.T) {
	w := startAgentWorld(t)
	to := time.Now().UTC().Add(-time.Minute).Format(time.RFC3339)
	from := w.logFrom.Format(time.RFC3339)
	loose := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(loose, []byte(w.agentToken), 0o644); err != nil {
		t.Fatal(err)
	}
	private := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(private, []byte(w.agentToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	code, out, _ := w.agent(t, "access", "request", "--ticket", w.ticket, "--reason", "the nightly sync needs a look",
		"--streams", "app", "--from", from, "--to", to, "--duration", "2h", "--json")
	var pending struct{ ID string }
	if code != 0 || json.Unmarshal([]byte(out), &pending) != nil {
		t.Fatalf("access request: exit %d %s", code, out)
	}

	tests := []struct {
		name     string
		env      map[string]string
		args     []string
		wantCode int
		wantErr  []string // in stderr
		wantOut  string   // in stdout
	}{
		{"no command", nil, []string{}, 2, []string{"usage: supportbridge agent"}, ""},
		{"unknown command", nil, []string{"frobnicate"}, 2, []string{`unknown command "frobnicate"`}, ""},
		{"list without ticket", nil, []string{"access", "list"}, 2, []string{"--ticket is required"}, ""},
		{"grants without ticket", nil, []string{"grants", "list"}, 2, []string{"--ticket is required"}, ""},
		{"cancel without id", nil, []string{"access", "cancel"}, 2, []string{"expects 1 argument"}, ""},
		{"request missing flags", nil, []string{"access", "request", "--ticket", w.ticket}, 2, []string{"missing --reason, --streams, --from, --to, --duration"}, ""},
		{"request bad time", nil, []string{"access", "request", "--ticket", w.ticket, "--reason", "r", "--streams", "app", "--from", "yesterday", "--to", to, "--duration", "1h"}, 2, []string{"--from must be an RFC 3339 time"}, ""},
		{"no url", map[string]string{"SB_URL": ""}, []string{"grants", "list", "--ticket", w.ticket}, 2, []string{"set SB_URL"}, ""},
		{"no token", map[string]string{"SB_AGENT_TOKEN": ""}, []string{"grants", "list", "--ticket", w.ticket}, 2, []string{"no agent token"}, ""},
		{"token file readable by others", map[string]string{"SB_AGENT_TOKEN": ""}, []string{"grants", "list", "--ticket", w.ticket, "--token-file", loose}, 2, []string{"readable by others"}, ""},
		{"token file private", map[string]string{"SB_AGENT_TOKEN": ""}, []string{"grants", "list", "--ticket", w.ticket, "--token-file", private}, 0, nil, "no grants"},
		{"flag overrides env", map[string]string{"SB_URL": "http://127.0.0.1:1"}, []string{"grants", "list", "--ticket", w.ticket, "--url", w.addr}, 0, nil, "no grants"},
		{"help", nil, []string{"--help"}, 0, nil, "access request"},
		{"command help", nil, []string{"logs", "--help"}, 0, []string{"-stream", "examples:"}, ""},
		{"wrong token", map[string]string{"SB_AGENT_TOKEN": "not-a-token"}, []string{"grants", "list", "--ticket", w.ticket}, 1, []string{"error: Authentication failed (HTTP 401)"}, ""},
		{"invalid request", nil, []string{"access", "request", "--ticket", w.ticket, "--reason", "short", "--streams", "app", "--from", from, "--to", to, "--duration", "4h"},
			1, []string{"error: Invalid request (HTTP 400)", "The access request is invalid.", "/reason: must be at least 10 characters"}, ""},
		{"unknown stream", nil, []string{"access", "request", "--ticket", w.ticket, "--reason", "the nightly sync needs a look", "--streams", "app,nosuch", "--from", from, "--to", to, "--duration", "4h"},
			1, []string{"(HTTP 400)", "/streams/1:"}, ""},
		{"unknown request", nil, []string{"access", "cancel", "ar_00000000000000000000000000000000"}, 1, []string{"(HTTP 404)"}, ""},
		{"retry needs admin", nil, []string{"reports", "retry", w.reportID}, 1, []string{"(HTTP 403)"}, ""},
		{"retry a delivered report", map[string]string{"SB_AGENT_TOKEN": w.adminToken}, []string{"reports", "retry", w.reportID}, 1, []string{"(HTTP 409)"}, ""},
		{"service unreachable", map[string]string{"SB_URL": "http://127.0.0.1:1"}, []string{"grants", "list", "--ticket", w.ticket}, 3, []string{"the service is unreachable"}, ""},
		{"cancel", nil, []string{"access", "cancel", pending.ID}, 0, nil, "cancelled " + pending.ID},
		{"cancel twice", nil, []string{"access", "cancel", pending.ID}, 1, []string{"(HTTP 4"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout syncBuffer
			code, errOut := w.agentRun(t, tt.env, &stdout, tt.args...)
			if code != tt.wantCode {
				t.Errorf("exit %d, want %d; stderr: %s", code, tt.wantCode, errOut)
			}
			for _, want := range tt.wantErr {
				if !strings.Contains(errOut+stdout.String(), want) {
					t.Errorf("output lacks %q; stderr:\n%s", want, errOut)
				}
			}
			if tt.wantOut != "" && !strings.Contains(stdout.String(), tt.wantOut) {
				t.Errorf("stdout lacks %q:\n%s", tt.wantOut, stdout.String())
			}
			for _, leak := range []string{w.agentToken, w.adminToken, "Get \"", "Post \"", "*url.Error"} {
				if strings.Contains(errOut+stdout.String(), leak) {
					t.Errorf("output contains %q", leak)
				}
			}
		})
	}
}

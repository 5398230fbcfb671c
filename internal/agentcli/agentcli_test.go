package agentcli

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

const testToken = "agent-token-canary-42"

// fakeService answers each "METHOD path" with a handler; anything else is a 404 problem.
// Every call must carry the agent token.
func fakeService(t *testing.T, routes map[string]http.HandlerFunc) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+testToken {
			t.Errorf("%s %s: Authorization %q", r.Method, r.URL.Path, r.Header.Get("Authorization"))
		}
		if h, ok := routes[r.Method+" "+r.URL.Path]; ok {
			h(w, r)
			return
		}
		writeJSON(w, 404, "application/problem+json", `{"type":"urn:supportbridge:problem:not-found","title":"Not found","status":404}`)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

func writeJSON(w http.ResponseWriter, status int, ctype, body string) {
	w.Header().Set("Content-Type", ctype)
	w.WriteHeader(status)
	io.WriteString(w, body)
}

// runCLI runs one command against base with the test token and returns what it printed.
func runCLI(t *testing.T, ctx context.Context, base string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	env := map[string]string{"SB_URL": base, "SB_AGENT_TOKEN": testToken}
	code = Run(ctx, args, func(k string) string { return env[k] }, &out, &errOut)
	if strings.Contains(out.String()+errOut.String(), testToken) {
		t.Errorf("the token was printed")
	}
	return code, out.String(), errOut.String()
}

const requestsJSON = `{"requests":[{"id":"ar_0123456789abcdef0123456789abcdef","tenant":"t","ticketKey":"SUP-1","reason":"why not",` +
	`"streams":["app","audit"],"from":"2026-03-01T00:00:00Z","to":"2026-03-02T00:00:00Z","personalData":false,"duration":"4h",` +
	`"agent":{"kind":"agent","name":"Dev Agent"},"status":"approved","createdAt":"2026-03-02T10:00:00Z","expiresAt":"2026-03-09T10:00:00Z",` +
	`"grantId":"gr_0123456789abcdef0123456789abcdef"},` +
	`{"id":"ar_ffffffffffffffffffffffffffffffff","tenant":"t","ticketKey":"SUP-1","reason":"again","streams":["app"],` +
	`"from":"2026-03-01T00:00:00Z","to":"2026-03-02T00:00:00Z","personalData":true,"duration":"until-revoked",` +
	`"agent":{"kind":"agent","email":"a@vendor.example"},"status":"denied","createdAt":"2026-03-03T10:00:00Z","expiresAt":"2026-03-10T10:00:00Z","denyReason":"not now"}]}`

const grantsJSON = `{"grants":[{"id":"gr_0123456789abcdef0123456789abcdef","requestId":"ar_0123456789abcdef0123456789abcdef","tenant":"t",` +
	`"ticketKey":"SUP-1","streams":["app"],"from":"2026-03-01T00:00:00Z","to":"2026-03-02T00:00:00Z","personalData":false,` +
	`"agent":{"kind":"agent","name":"Dev Agent"},"start":"2026-03-02T11:00:00Z","end":"2026-03-02T15:00:00Z","untilRevoked":false,` +
	`"status":"revoked","endReason":"revoked_by_customer"}]}`

func TestTablesAndJSON(t *testing.T) {
	base := fakeService(t, map[string]http.HandlerFunc{
		"GET /api/v1/access-requests": func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Query().Get("ticketKey") != "SUP-1" {
				t.Errorf("ticketKey %q", r.URL.Query().Get("ticketKey"))
			}
			writeJSON(w, 200, "application/json", requestsJSON)
		},
		"GET /api/v1/grants": func(w http.ResponseWriter, r *http.Request) {
			writeJSON(w, 200, "application/json", grantsJSON)
		},
		"POST /api/v1/access-requests": func(w http.ResponseWriter, r *http.Request) {
			var in map[string]any
			json.NewDecoder(r.Body).Decode(&in)
			want := map[string]any{"ticketKey": "SUP-1", "reason": "sync fails since Monday", "streams": []any{"app", "audit"},
				"from": "2026-03-01T00:00:00Z", "to": "2026-03-02T00:00:00Z", "duration": "4h", "personalData": true}
			if diff := cmp.Diff(in, want); diff != "" {
				t.Errorf("request body (-got +want):\n%s", diff)
			}
			var v struct{ Requests []json.RawMessage }
			json.Unmarshal([]byte(requestsJSON), &v)
			writeJSON(w, 201, "application/json", string(v.Requests[0]))
		},
		"POST /api/v1/reports/rep_1/retry": func(w http.ResponseWriter, r *http.Request) {
			writeJSON(w, 202, "application/json", `{"id":"rep_1","status":"queued"}`)
		},
	})
	tests := []struct {
		name string
		args []string
		want []string // lines of stdout, each as a prefix after collapsing spaces
	}{
		{"access list", []string{"access", "list", "--ticket", "SUP-1"}, []string{
			"ID STATUS STREAMS WINDOW DURATION AGENT CREATED GRANT/NOTE",
			"ar_0123456789abcdef0123456789abcdef approved app,audit 2026-03-01 00:00Z – 2026-03-02 00:00Z 4h Dev Agent 2026-03-02 10:00Z gr_0123456789abcdef0123456789abcdef",
			"ar_ffffffffffffffffffffffffffffffff denied app 2026-03-01 00:00Z – 2026-03-02 00:00Z until-revoked a@vendor.example 2026-03-03 10:00Z not now",
		}},
		{"grants list", []string{"grants", "list", "--ticket", "SUP-1"}, []string{
			"ID STATUS STREAMS WINDOW PERSONAL DATA AGENT UNTIL END REASON",
			"gr_0123456789abcdef0123456789abcdef revoked app 2026-03-01 00:00Z – 2026-03-02 00:00Z pseudonymised Dev Agent 2026-03-02 15:00Z revoked_by_customer",
		}},
		{"access request", []string{"access", "request", "--ticket", "SUP-1", "--reason", "sync fails since Monday", "--streams", "app, audit",
			"--from", "2026-03-01T00:00:00Z", "--to", "2026-03-02T00:00:00Z", "--duration", "4h", "--personal-data"}, []string{
			"id: ar_0123456789abcdef0123456789abcdef", "status: approved", "ticket: SUP-1",
		}},
		{"reports retry", []string{"reports", "retry", "rep_1"}, []string{"report rep_1: queued"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errOut := runCLI(t, context.Background(), base, tt.args...)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, errOut)
			}
			lines := strings.Split(out, "\n")
			for i, want := range tt.want {
				if i >= len(lines) {
					t.Fatalf("stdout has %d lines, want at least %d:\n%s", len(lines), len(tt.want), out)
				}
				if got := strings.Join(strings.Fields(lines[i]), " "); got != want {
					t.Errorf("line %d:\n got %q\nwant %q", i, got, want)
				}
			}
		})
	}

	// --json is the service's document, byte for byte.
	code, out, _ := runCLI(t, context.Background(), base, "access", "list", "--ticket", "SUP-1", "--json")
	if code != 0 || out != requestsJSON+"\n" {
		t.Errorf("--json: exit %d, stdout differs from the service's body:\n%s", code, out)
	}
}

func TestProblemsAndExitCodes(t *testing.T) {
	base := fakeService(t, map[string]http.HandlerFunc{
		"POST /api/v1/access-requests": func(w http.ResponseWriter, r *http.Request) {
			writeJSON(w, 400, "application/problem+json", `{"type":"urn:supportbridge:problem:invalid-request","title":"Invalid request",`+
				`"status":400,"detail":"The access request is invalid.","requestId":"req-9",`+
				`"errors":[{"field":"/reason","message":"must be at least 10 characters"},{"field":"/streams/1","message":"unknown stream"}]}`)
		},
		"GET /api/v1/grants": func(w http.ResponseWriter, r *http.Request) {
			writeJSON(w, 503, "application/problem+json", `{"title":"Temporarily unavailable","status":503,"detail":"JSM cannot be reached."}`)
		},
		"DELETE /api/v1/access-requests/ar_1": func(w http.ResponseWriter, r *http.Request) {
			writeJSON(w, 502, "text/html", "<html>bad gateway</html>")
		},
		"POST /api/v1/grants/gr_1/revoke": func(w http.ResponseWriter, r *http.Request) {
			writeJSON(w, 403, "application/problem+json", `{"title":"Not allowed","status":403,"detail":"Only the grant's agent may revoke it."}`)
		},
	})
	request := []string{"access", "request", "--ticket", "SUP-1", "--reason", "short", "--streams", "app,x",
		"--from", "2026-03-01T00:00:00Z", "--to", "2026-03-02T00:00:00Z", "--duration", "4h"}
	tests := []struct {
		name       string
		args       []string
		wantCode   int
		wantStderr string
	}{
		{"field errors", request, ExitRefused, "error: Invalid request (HTTP 400)\n  The access request is invalid.\n" +
			"  /reason: must be at least 10 characters\n  /streams/1: unknown stream\n  request id: req-9\n"},
		{"5xx problem", []string{"grants", "list", "--ticket", "SUP-1"}, ExitUnavailable,
			"error: Temporarily unavailable (HTTP 503)\n  JSM cannot be reached.\n"},
		{"not a problem body", []string{"access", "cancel", "ar_1"}, ExitUnavailable, "error: Bad Gateway (HTTP 502)\n"},
		{"forbidden", []string{"grants", "revoke", "gr_1"}, ExitRefused, "error: Not allowed (HTTP 403)\n  Only the grant's agent may revoke it.\n"},
		{"problem without fields", []string{"access", "cancel", "ar_2"}, ExitRefused, "error: Not found (HTTP 404)\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errOut := runCLI(t, context.Background(), base, tt.args...)
			if code != tt.wantCode {
				t.Errorf("exit %d, want %d", code, tt.wantCode)
			}
			if diff := cmp.Diff(errOut, tt.wantStderr); diff != "" {
				t.Errorf("stderr (-got +want):\n%s", diff)
			}
			if out != "" {
				t.Errorf("stdout on error: %q", out)
			}
		})
	}
}

func TestTokenFile(t *testing.T) {
	base := fakeService(t, map[string]http.HandlerFunc{
		"GET /api/v1/grants": func(w http.ResponseWriter, r *http.Request) { writeJSON(w, 200, "application/json", `{"grants":[]}`) },
	})
	dir := t.TempDir()
	tests := []struct {
		name     string
		mode     os.FileMode
		wantCode int
		wantErr  string
	}{
		{"private", 0o600, ExitOK, ""},
		{"group readable", 0o640, ExitUsage, "readable by others (mode 0640); run: chmod 600"},
		{"world readable", 0o604, ExitUsage, "readable by others"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(tt.name, " ", "-"))
			if err := os.WriteFile(path, []byte(testToken+"\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			os.Chmod(path, tt.mode)
			var out, errOut bytes.Buffer
			code := Run(context.Background(), []string{"grants", "list", "--ticket", "SUP-1", "--token-file", path, "--url", base},
				func(string) string { return "" }, &out, &errOut)
			if code != tt.wantCode || !strings.Contains(errOut.String(), tt.wantErr) {
				t.Errorf("exit %d, stderr %q; want %d with %q", code, errOut.String(), tt.wantCode, tt.wantErr)
			}
			if strings.Contains(out.String()+errOut.String(), testToken) {
				t.Error("the token was printed")
			}
		})
	}
	var errOut bytes.Buffer
	code := Run(context.Background(), []string{"grants", "list", "--ticket", "SUP-1", "--token-file", filepath.Join(dir, "none")},
		func(k string) string { return map[string]string{"SB_URL": base}[k] }, io.Discard, &errOut)
	if code != ExitUsage || !strings.Contains(errOut.String(), "token file: no such file or directory") {
		t.Errorf("missing token file: exit %d, %q", code, errOut.String())
	}
}

// ndjsonLogs serves records then the end (none when end is ""), gzip'd when asked.
func ndjsonLogs(t *testing.T, lines []string, end string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Accept") != "application/x-ndjson" {
			t.Errorf("Accept %q", r.Header.Get("Accept"))
		}
		if r.URL.Query().Get("stream") != "app" {
			t.Errorf("stream %q", r.URL.Query().Get("stream"))
		}
		w.Header().Set("Content-Type", "application/x-ndjson")
		var out io.Writer = w
		if r.Header.Get("Accept-Encoding") == "gzip" {
			w.Header().Set("Content-Encoding", "gzip")
			gz := gzip.NewWriter(w)
			defer gz.Close()
			out = gz
		}
		for _, l := range lines {
			b, _ := json.Marshal(map[string]string{"time": "2026-03-01T00:00:00Z", "stream": "app", "line": l})
			out.Write(append(b, '\n'))
		}
		if end != "" {
			fmt.Fprintf(out, "{\"end\":%q}\n", end)
		}
	}
}

func TestLogs(t *testing.T) {
	lines := []string{"first line", `with "quotes" and \ backslash`, "ünïcödé", ""}
	var records bytes.Buffer
	for _, l := range lines {
		b, _ := json.Marshal(map[string]string{"time": "2026-03-01T00:00:00Z", "stream": "app", "line": l})
		records.Write(append(b, '\n'))
	}
	sum := sha256.Sum256(records.Bytes())
	base := fakeService(t, map[string]http.HandlerFunc{
		"GET /api/v1/grants/gr_ok/logs":      ndjsonLogs(t, lines, "complete"),
		"GET /api/v1/grants/gr_revoked/logs": ndjsonLogs(t, lines, "revoked_by_customer"),
		"GET /api/v1/grants/gr_budget/logs":  ndjsonLogs(t, lines, "budget"),
		"GET /api/v1/grants/gr_cut/logs":     ndjsonLogs(t, lines, ""),
		"GET /api/v1/grants/gr_ended/logs": func(w http.ResponseWriter, r *http.Request) {
			writeJSON(w, 403, "application/problem+json", `{"type":"urn:supportbridge:problem:grant-ended","title":"Grant ended",`+
				`"status":403,"detail":"The grant is no longer active.","endReason":"expired"}`)
		},
	})
	want := strings.Join(lines, "\n") + "\n"
	dir := t.TempDir()
	tests := []struct {
		name       string
		grant      string
		toFile     bool
		wantCode   int
		wantStderr string
		wantFile   string // the name the lines end up under
	}{
		{"complete to stdout", "gr_ok", false, ExitOK, "complete: 4 lines, " + fmt.Sprint(records.Len()) + " bytes, sha256 " + hex.EncodeToString(sum[:]), ""},
		{"complete to file", "gr_ok", true, ExitOK, "written to", "out"},
		{"revoked", "gr_revoked", true, ExitGrantEnded, "revoked_by_customer (the customer revoked the grant); 4 lines received; they are in", "out.partial"},
		{"budget to stdout", "gr_budget", false, ExitGrantEnded, "budget (the grant has served all the bytes it may", ""},
		{"stream cut", "gr_cut", true, ExitUnavailable, "stopped before its end record", "out.partial"},
		{"ended before the read", "gr_ended", false, ExitGrantEnded, "error: Grant ended (HTTP 403)\n  The grant is no longer active.\nsupportbridge agent logs: the grant has ended: expired (the grant expired)", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := filepath.Join(dir, tt.grant+"-out")
			args := []string{"logs", tt.grant, "--stream", "app"}
			if tt.toFile {
				args = append(args, "-o", out)
			}
			code, stdout, stderr := runCLI(t, context.Background(), base, args...)
			if code != tt.wantCode || !strings.Contains(stderr, tt.wantStderr) {
				t.Errorf("exit %d, stderr:\n%s\nwant %d with %q", code, stderr, tt.wantCode, tt.wantStderr)
			}
			if !tt.toFile {
				if tt.grant != "gr_ended" && stdout != want {
					t.Errorf("stdout %q, want %q", stdout, want)
				}
				return
			}
			if stdout != "" {
				t.Errorf("stdout %q with -o", stdout)
			}
			for _, name := range []string{tt.grant + "-out", tt.grant + "-out.partial"} {
				_, err := os.Stat(filepath.Join(dir, name))
				if exists := err == nil; exists != (name == tt.grant+"-"+tt.wantFile) {
					t.Errorf("%s exists: %v", name, exists)
				}
			}
			path := filepath.Join(dir, tt.grant+"-"+tt.wantFile)
			b, err := os.ReadFile(path)
			if err != nil || string(b) != want {
				t.Errorf("%s: %q %v, want the lines", path, b, err)
			}
			if info, _ := os.Stat(path); info.Mode().Perm() != 0o600 {
				t.Errorf("%s mode %v, want 0600", path, info.Mode().Perm())
			}
		})
	}
}

func TestLogsJSONKeepsRecords(t *testing.T) {
	base := fakeService(t, map[string]http.HandlerFunc{"GET /api/v1/grants/gr_ok/logs": ndjsonLogs(t, []string{"a", "b"}, "complete")})
	code, out, errOut := runCLI(t, context.Background(), base, "logs", "gr_ok", "--stream", "app", "--json")
	want := `{"line":"a","stream":"app","time":"2026-03-01T00:00:00Z"}` + "\n" + `{"line":"b","stream":"app","time":"2026-03-01T00:00:00Z"}` + "\n"
	if code != 0 || out != want {
		t.Errorf("exit %d (%s), stdout:\n%s\nwant the records without the end:\n%s", code, errOut, out, want)
	}
}

// TestLogsInterruptAndProgress: Ctrl-C (the context ending) stops a read that is waiting
// on the service, keeps what was read as .partial, and progress shows while it runs.
func TestLogsInterruptAndProgress(t *testing.T) {
	sent := make(chan struct{})
	base := fakeService(t, map[string]http.HandlerFunc{
		"GET /api/v1/grants/gr_slow/logs": func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/x-ndjson")
			io.WriteString(w, `{"time":"2026-03-01T00:00:00Z","stream":"app","line":"one"}`+"\n")
			w.(http.Flusher).Flush()
			close(sent)
			<-r.Context().Done() // the service would go on; the agent stops
		},
	})
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		<-sent
		time.Sleep(1200 * time.Millisecond) // long enough for one progress line
		cancel()
	}()
	out := filepath.Join(t.TempDir(), "slow.log")
	code, _, stderr := runCLI(t, ctx, base, "logs", "gr_slow", "--stream", "app", "-o", out, "--progress")
	if code != ExitRefused || !strings.Contains(stderr, "interrupted") {
		t.Errorf("exit %d, stderr %q; want %d, interrupted", code, stderr, ExitRefused)
	}
	if !strings.Contains(stderr, "1 lines") || !strings.Contains(stderr, "/s") {
		t.Errorf("no progress on stderr: %q", stderr)
	}
	if b, err := os.ReadFile(out + ".partial"); err != nil || string(b) != "one\n" {
		t.Errorf(".partial: %q %v", b, err)
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Errorf("an interrupted read left %s: %v", out, err)
	}
}

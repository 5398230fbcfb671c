package jsm

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/supportbridge/supportbridge/internal/jsmsandbox"
	"github.com/supportbridge/supportbridge/internal/jsmsandbox/jsmtest"
	"github.com/supportbridge/supportbridge/internal/secret"
)

const (
	testEmail = "support-bot@vendor.example"
	testToken = "canary-api-token-4d1f"
)

// testClock is a clock tests move by hand; the sandbox's search lag follows it.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// lockedBuffer collects log output written from the client's goroutines.
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

// seenRequest is what the wire transport saw of one attempt (never the Authorization header).
type seenRequest struct {
	Method, Path string
	Header       http.Header
}

// wire sits between the client and the sandbox: it records what each attempt carried and
// lets a test act just before or after an attempt (a racing worker, a fault that clears).
type wire struct {
	next   http.RoundTripper
	mu     sync.Mutex
	seen   []seenRequest
	before func(*http.Request)
	after  func(*http.Request, *http.Response)
}

func (w *wire) RoundTrip(req *http.Request) (*http.Response, error) {
	h := req.Header.Clone()
	h.Del("Authorization")
	w.mu.Lock()
	w.seen = append(w.seen, seenRequest{Method: req.Method, Path: req.URL.Path, Header: h})
	before, after := w.before, w.after
	w.mu.Unlock()
	if before != nil {
		before(req)
	}
	resp, err := w.next.RoundTrip(req)
	if after != nil && err == nil {
		after(req, resp)
	}
	return resp, err
}

func (w *wire) hooks(before func(*http.Request), after func(*http.Request, *http.Response)) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.before, w.after = before, after
}

// lastSeen returns the last attempt to path.
func (w *wire) lastSeen(t *testing.T, method, path string) seenRequest {
	t.Helper()
	w.mu.Lock()
	defer w.mu.Unlock()
	for i := len(w.seen) - 1; i >= 0; i-- {
		if s := w.seen[i]; s.Method == method && s.Path == path {
			return s
		}
	}
	t.Fatalf("no %s %s was sent", method, path)
	return seenRequest{}
}

// env is a client wired to a fresh sandbox.
type env struct {
	c     *Client
	sb    *jsmsandbox.Sandbox
	wire  *wire
	logs  *lockedBuffer
	clock *testClock
}

// newEnv starts a sandbox (validated against Atlassian's specs) and a client for it with
// short waits, so retry tests take about the Retry-After they inject.
func newEnv(t *testing.T, opts jsmsandbox.Options, edit func(*Config)) *env {
	t.Helper()
	clock := &testClock{t: time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)}
	opts.Email, opts.APIToken = testEmail, testToken
	opts.ServiceDeskID, opts.RequestTypeID, opts.ProjectKey = "10", "11", "SUP"
	opts.Now = clock.Now
	sb, srv := jsmtest.NewTestServer(t, opts)
	w := &wire{next: srv.Client().Transport}
	logs := &lockedBuffer{}
	cfg := Config{
		BaseURL: srv.URL, Email: testEmail, APIToken: secret.New(testToken),
		ServiceDeskID: "10", RequestTypeID: "11", ProjectKey: "SUP",
		Timeout: 5 * time.Second, MaxAttempts: 3,
		MinRetryWait: 10 * time.Millisecond, MaxRetryWait: 2 * time.Second,
		Logger:     slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		HTTPClient: &http.Client{Transport: w},
	}
	if edit != nil {
		edit(&cfg)
	}
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &env{c: c, sb: sb, wire: w, logs: logs, clock: clock}
}

// calls counts the sandbox calls with method and path.
func (e *env) calls(method, path string) []jsmsandbox.Call {
	var out []jsmsandbox.Call
	for _, c := range e.sb.Calls() {
		if c.Method == method && c.Path == path {
			out = append(out, c)
		}
	}
	return out
}

// droppedCalls waits until the sandbox has recorded n calls to method and path and returns
// them. The sandbox records a call whose connection it drops only after closing it, so the
// client can see the failure first; other calls are recorded before their answer is sent.
func (e *env) droppedCalls(t *testing.T, method, path string, n int) []jsmsandbox.Call {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		got := e.calls(method, path)
		if len(got) >= n || time.Now().After(deadline) {
			return got
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// customer resolves a fresh customer for tests about requests.
func (e *env) customer(t *testing.T, email string) string {
	t.Helper()
	id, err := e.c.ResolveCustomer(context.Background(), email, "Test Customer")
	if err != nil {
		t.Fatalf("ResolveCustomer(%s): %v", email, err)
	}
	return id
}

// ticket raises a request carrying marker for a fresh customer.
func (e *env) ticket(t *testing.T, marker string) Ticket {
	t.Helper()
	id := e.customer(t, "dana@customer.example")
	tk, err := e.c.CreateRequest(context.Background(), NewRequest{
		Summary: "Export fails", Description: "h3. What happened\nIt broke.\n\n" + marker, RaiseOnBehalfOf: id,
	})
	if err != nil {
		t.Fatalf("CreateRequest: %v", err)
	}
	return tk
}

package jsmsandbox

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"testing"
	"time"
)

// TestInjectedErrorsChangeNothing checks that an injected 429/503 carries Retry-After and
// never half-applies the call it replaced.
func TestInjectedErrorsChangeNothing(t *testing.T) {
	t.Parallel()
	s, srv := NewTestServer(t, testOptions())
	c := apiClient{t: t, base: srv.URL}
	s.SetFaults(Faults{ErrorRate: 1, ErrorStatuses: []int{http.StatusTooManyRequests}, RetryAfter: 1500 * time.Millisecond})

	res := c.post("/rest/servicedeskapi/request", map[string]any{"serviceDeskId": "10", "requestTypeId": "11",
		"requestFieldValues": map[string]any{"summary": "Rate limited"}})
	wantStatus(t, "create under rate limiting", res, http.StatusTooManyRequests)
	if got := res.header.Get("Retry-After"); got != "2" {
		t.Errorf("Retry-After %q, want 2 (seconds, rounded up)", got)
	}
	var e errorResponse
	res.decode(t, &e)
	if e.ErrorMessage == "" {
		t.Errorf("429 body %s is not a JSM error", res.body)
	}
	if n := len(s.Requests()); n != 0 {
		t.Errorf("%d requests created by a call answered 429", n)
	}

	s.SetFaults(Faults{})
	createTestRequest(t, c, "After the storm", "")
}

// TestErrorRateIsSeeded checks that a partial error rate hits some calls and not others,
// the same ones for the same seed, and that exactly the successful calls took effect.
func TestErrorRateIsSeeded(t *testing.T) {
	t.Parallel()
	run := func() (statuses []int, customers int) {
		s, srv := NewTestServer(t, testOptions())
		c := apiClient{t: t, base: srv.URL}
		s.SetFaults(Faults{ErrorRate: 0.5, Seed: 42})
		for i := range 20 {
			res := c.post("/rest/servicedeskapi/customer", map[string]string{
				"email": fmt.Sprintf("user%d@customer.example", i), "displayName": "User"})
			statuses = append(statuses, res.status)
		}
		return statuses, len(s.Customers()) - 1 // minus the service account
	}
	first, customers := run()
	second, _ := run()
	counts := map[int]int{}
	for _, st := range first {
		counts[st]++
	}
	if counts[http.StatusCreated] == 0 || counts[http.StatusCreated] == len(first) {
		t.Errorf("statuses %v, want a mix of successes and injected errors", first)
	}
	if counts[http.StatusCreated]+counts[http.StatusTooManyRequests]+counts[http.StatusServiceUnavailable] != len(first) {
		t.Errorf("statuses %v, want only 201, 429 and 503", first)
	}
	if customers != counts[http.StatusCreated] {
		t.Errorf("%d customers stored for %d successful creates", customers, counts[http.StatusCreated])
	}
	if fmt.Sprint(first) != fmt.Sprint(second) {
		t.Errorf("same seed, different faults:\n%v\n%v", first, second)
	}
}

// TestDropAfterCreate checks the ambiguous outcome: the request exists, the client saw a
// broken connection, and the call log says nothing was answered.
func TestDropAfterCreate(t *testing.T) {
	t.Parallel()
	s, srv := NewTestServer(t, testOptions())
	s.SetFaults(Faults{DropAfterCreate: true, DropFirstCreateOnly: true})
	body, _ := json.Marshal(map[string]any{"serviceDeskId": "10", "requestTypeId": "11",
		"requestFieldValues": map[string]any{"summary": "Dropped"}})

	post := func() (*http.Response, error) {
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/rest/servicedeskapi/request", bytes.NewReader(body))
		req.SetBasicAuth(testEmail, testToken)
		req.Header.Set("Content-Type", "application/json")
		return srv.Client().Do(req)
	}
	if res, err := post(); err == nil {
		res.Body.Close()
		t.Fatalf("first create answered %d, want a connection error", res.StatusCode)
	}
	if n := len(s.Requests()); n != 1 {
		t.Fatalf("%d requests after a dropped create, want 1", n)
	}
	calls := recordedCalls(t, s, 1)
	if last := calls[len(calls)-1]; last.Method != http.MethodPost || last.Path != "/rest/servicedeskapi/request" || last.Status != 0 {
		t.Errorf("last call %+v, want the create with status 0", last)
	}

	res, err := post()
	if err != nil {
		t.Fatalf("second create: %v", err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusCreated || len(s.Requests()) != 2 {
		t.Errorf("second create answered %d with %d requests stored, want 201 and 2", res.StatusCode, len(s.Requests()))
	}
}

// TestLostAnswer checks that a write whose answer is lost took effect all the same, and
// that the call log records it unanswered.
func TestLostAnswer(t *testing.T) {
	t.Parallel()
	s, srv := NewTestServer(t, testOptions())
	s.SetFaults(Faults{LostAnswerRate: 1})
	body, _ := json.Marshal(map[string]string{"email": "lost@customer.example", "displayName": "Lost"})
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/rest/servicedeskapi/customer", bytes.NewReader(body))
	req.SetBasicAuth(testEmail, testToken)
	req.Header.Set("Content-Type", "application/json")
	if res, err := srv.Client().Do(req); err == nil {
		res.Body.Close()
		t.Fatalf("customer create answered %d, want a connection error", res.StatusCode)
	}
	found := false
	for _, c := range s.Customers() {
		found = found || c.Email == "lost@customer.example"
	}
	if !found {
		t.Errorf("customers %+v lack the one whose answer was lost", s.Customers())
	}
	calls := recordedCalls(t, s, 1)
	if last := calls[len(calls)-1]; last.Path != "/rest/servicedeskapi/customer" || last.Status != 0 {
		t.Errorf("last call %+v, want the customer create with status 0", last)
	}
}

// TestTimeout checks that a write held unanswered took effect and is ended by the client's
// own timeout.
func TestTimeout(t *testing.T) {
	t.Parallel()
	s, srv := NewTestServer(t, testOptions())
	s.SetFaults(Faults{TimeoutRate: 1})
	body, _ := json.Marshal(map[string]string{"email": "slow@customer.example", "displayName": "Slow"})
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, srv.URL+"/rest/servicedeskapi/customer", bytes.NewReader(body))
	req.SetBasicAuth(testEmail, testToken)
	req.Header.Set("Content-Type", "application/json")
	start := time.Now()
	if res, err := srv.Client().Do(req); err == nil {
		res.Body.Close()
		t.Fatalf("customer create answered %d, want the client's timeout", res.StatusCode)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("client gave up after %v, want about its 200ms timeout", d)
	}
	found := false
	for _, c := range s.Customers() {
		found = found || c.Email == "slow@customer.example"
	}
	if !found {
		t.Errorf("customers %+v lack the one whose answer timed out", s.Customers())
	}
}

func TestLatency(t *testing.T) {
	t.Parallel()
	s, srv := NewTestServer(t, testOptions())
	s.SetFaults(Faults{Latency: 50 * time.Millisecond})
	start := time.Now()
	apiClient{t: t, base: srv.URL}.get("/rest/api/3/issue/SUP-1", nil)
	if d := time.Since(start); d < 50*time.Millisecond {
		t.Errorf("call took %v, want at least the injected 50ms", d)
	}
}

// TestRun serves the sandbox standalone and stops it with the context.
func TestRun(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Run(ctx, addr, testOptions(), nil) }()

	var res *http.Response
	for deadline := time.Now().Add(5 * time.Second); ; {
		if res, err = http.Get("http://" + addr + "/"); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("sandbox did not start: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Errorf("page answered %d", res.StatusCode)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run returned %v after cancel", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not stop after cancel")
	}
}

// recordedCalls waits until at least n calls are recorded. The client sees a dropped
// connection before the handler returns and records the call, so a test that reads the
// record right after the client's error must wait for it.
func recordedCalls(t *testing.T, s *Sandbox, n int) []Call {
	t.Helper()
	calls := s.Calls()
	for deadline := time.Now().Add(5 * time.Second); len(calls) < n && time.Now().Before(deadline); calls = s.Calls() {
		time.Sleep(5 * time.Millisecond)
	}
	if len(calls) < n {
		t.Fatalf("%d calls recorded, want at least %d", len(calls), n)
	}
	return calls
}

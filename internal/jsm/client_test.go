package jsm

import (
	"context"
	"encoding/base64"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf16"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/supportbridge/supportbridge/internal/jsmsandbox"
)

const (
	pathCustomer     = "/rest/servicedeskapi/customer"
	pathDeskCustomer = "/rest/servicedeskapi/servicedesk/10/customer"
	pathUserSearch   = "/rest/api/3/user/search"
	pathRequest      = "/rest/servicedeskapi/request"
	pathTempFile     = "/rest/servicedeskapi/servicedesk/10/attachTemporaryFile"
	pathSearch       = "/rest/api/3/search/jql"
)

func TestResolveCustomerCreatesAndAddsToClosedDesk(t *testing.T) {
	e := newEnv(t, jsmsandbox.Options{ClosedDesk: true}, nil)
	ctx := context.Background()

	id, err := e.c.ResolveCustomer(ctx, "ann@customer.example", "Ann Example")
	if err != nil {
		t.Fatal(err)
	}
	var got *jsmsandbox.Customer
	for _, c := range e.sb.Customers() {
		if c.Email == "ann@customer.example" {
			got = &c
		}
	}
	want := &jsmsandbox.Customer{AccountID: id, Email: "ann@customer.example", DisplayName: "Ann Example",
		AccountType: "customer", InDesk: true}
	if diff := cmp.Diff(got, want); diff != "" {
		t.Errorf("customer (-got +want):\n%s", diff)
	}
	// The experimental desk search was opted into (the sandbox refuses it otherwise).
	if h := e.wire.lastSeen(t, http.MethodGet, pathDeskCustomer).Header.Get("X-ExperimentalApi"); h != "opt-in" {
		t.Errorf("desk customer search sent X-ExperimentalApi %q; want opt-in", h)
	}
	for _, c := range e.calls(http.MethodGet, pathDeskCustomer) {
		if c.Status != http.StatusOK {
			t.Errorf("desk customer search answered %d; want 200", c.Status)
		}
	}

	// On a closed desk only desk customers may be reporters: this works because of the add.
	tk, err := e.c.CreateRequest(ctx, NewRequest{Summary: "Hi", Description: "x", RaiseOnBehalfOf: id})
	if err != nil {
		t.Fatalf("CreateRequest on a closed desk: %v", err)
	}
	if r := e.sb.Requests()[0]; r.Key != tk.Key || r.ReporterAccountID != id {
		t.Errorf("request %s reported by %s; want %s reported by %s", r.Key, r.ReporterAccountID, tk.Key, id)
	}

	// Known now: found by the desk search alone, whatever the case of the address.
	before := len(e.sb.Calls())
	again, err := e.c.ResolveCustomer(ctx, "ANN@customer.example", "")
	if err != nil || again != id {
		t.Fatalf("second ResolveCustomer = %q, %v; want %q", again, err, id)
	}
	if n := len(e.sb.Calls()) - before; n != 1 {
		t.Errorf("second ResolveCustomer made %d calls; want 1 (desk search)", n)
	}
}

func TestResolveCustomerReusesAtlassianAccount(t *testing.T) {
	e := newEnv(t, jsmsandbox.Options{ClosedDesk: true}, nil)
	want := e.sb.AddUser("Bob.Staff@vendor.example", "Bob")
	// A second account whose email merely contains the first must not match.
	e.sb.AddUser("xbob.staff@vendor.example.org", "Not Bob")

	got, err := e.c.ResolveCustomer(context.Background(), "bob.staff@vendor.example", "Bob")
	if err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Errorf("ResolveCustomer = %q; want the existing account %q", got, want)
	}
	if n := len(e.calls(http.MethodPost, pathCustomer)); n != 0 {
		t.Errorf("created a customer %d times for an existing account", n)
	}
	if n := len(e.calls(http.MethodPost, pathDeskCustomer)); n != 1 {
		t.Errorf("added to the desk %d times; want 1", n)
	}
}

func TestResolveCustomerAfterConflict(t *testing.T) {
	e := newEnv(t, jsmsandbox.Options{}, nil)
	const email = "race@customer.example"
	var (
		once   sync.Once
		racing string
	)
	// Another worker creates the same customer between our search and our create.
	e.wire.hooks(func(r *http.Request) {
		if r.Method == http.MethodPost && r.URL.Path == pathCustomer {
			once.Do(func() { racing = e.sb.AddUser(email, "Racer") })
		}
	}, nil)

	got, err := e.c.ResolveCustomer(context.Background(), email, "Race")
	if err != nil {
		t.Fatal(err)
	}
	if got != racing {
		t.Errorf("ResolveCustomer = %q; want the racing worker's account %q", got, racing)
	}
	creates := e.calls(http.MethodPost, pathCustomer)
	if len(creates) != 1 || creates[0].Status != http.StatusConflict {
		t.Errorf("customer creates = %+v; want one answered 409", creates)
	}
	if q := creates[0].Query; q != "strictConflictStatusCode=true" {
		t.Errorf("customer create query = %q; want strictConflictStatusCode=true", q)
	}
	if n := len(e.calls(http.MethodGet, pathUserSearch)); n != 2 {
		t.Errorf("user searches = %d; want 2 (before create, after 409)", n)
	}
}

func TestResolveCustomerRejectsNonAddress(t *testing.T) {
	e := newEnv(t, jsmsandbox.Options{}, nil)
	_, err := e.c.ResolveCustomer(context.Background(), "Ann <ann@x.example>", "Ann")
	if KindOf(err) != Permanent || len(e.sb.Calls()) != 0 {
		t.Errorf("err = %v after %d calls; want Permanent without calls", err, len(e.sb.Calls()))
	}
}

func TestCreateRequestRaisesOnBehalf(t *testing.T) {
	e := newEnv(t, jsmsandbox.Options{}, nil)
	id := e.customer(t, "erin@customer.example")

	tk, err := e.c.CreateRequest(context.Background(), NewRequest{
		Summary:         "Export\nfails",
		Description:     "h3. Steps\n# open\n# export\n\nsb-marker-7Q2",
		RaiseOnBehalfOf: id,
	})
	if err != nil {
		t.Fatal(err)
	}
	reqs := e.sb.Requests()
	if len(reqs) != 1 {
		t.Fatalf("sandbox holds %d requests; want 1", len(reqs))
	}
	r := reqs[0]
	if tk.Key != r.Key || tk.ID != r.ID || tk.Key == "" {
		t.Errorf("ticket %+v; want key %q id %q", tk, r.Key, r.ID)
	}
	if !strings.Contains(tk.WebURL, r.Key) {
		t.Errorf("ticket WebURL %q does not lead to %s", tk.WebURL, r.Key)
	}
	got := []string{r.ReporterAccountID, r.Summary, r.Description, r.ServiceDeskID, r.RequestTypeID}
	want := []string{id, "Export fails", "h3. Steps\n# open\n# export\n\nsb-marker-7Q2", "10", "11"}
	if diff := cmp.Diff(got, want); diff != "" {
		t.Errorf("request (-got +want):\n%s", diff)
	}
}

// A 400 to a create says what JSM refused, so the worker can tell a wrong desk setting
// (every report fails) from one report's customer or fields; the body's text is not kept.
func TestCreateRefusalsNameTheirSubject(t *testing.T) {
	tests := []struct {
		name string
		edit func(*Config)
		req  func(id string) NewRequest
		want Subject
	}{
		{"wrong request type", func(c *Config) { c.RequestTypeID = "99" },
			func(id string) NewRequest { return NewRequest{Summary: "s", Description: "d", RaiseOnBehalfOf: id} }, SubjectConfig},
		{"account deleted since it was cached", nil,
			func(string) NewRequest {
				return NewRequest{Summary: "s", Description: "d", RaiseOnBehalfOf: "557058:0000-deleted"}
			}, SubjectCustomer},
		{"description too long", nil,
			func(id string) NewRequest {
				return NewRequest{Summary: "s", Description: strings.Repeat("x", 40000), RaiseOnBehalfOf: id}
			}, SubjectInput},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, jsmsandbox.Options{}, tt.edit)
			id := e.customer(t, "hal@customer.example")
			_, err := e.c.CreateRequest(context.Background(), tt.req(id))
			var je *Error
			if !errors.As(err, &je) || je.Status != http.StatusBadRequest || je.Kind != Permanent || je.Subject != tt.want {
				t.Fatalf("err = %#v; want a Permanent 400 about %v", err, tt.want)
			}
			if strings.Contains(err.Error(), "does not exist") || strings.Contains(err.Error(), "557058") {
				t.Errorf("error text %q repeats the response body", err)
			}
		})
	}
}

// Jira's 255-character summary limit counts UTF-16 code units: a title of 255 emoji is
// shortened to fit instead of being refused.
func TestCreateRequestFitsEmojiSummary(t *testing.T) {
	e := newEnv(t, jsmsandbox.Options{}, nil)
	id := e.customer(t, "ivy@customer.example")
	_, err := e.c.CreateRequest(context.Background(), NewRequest{
		Summary: strings.Repeat("😀", 255), Description: "d", RaiseOnBehalfOf: id,
	})
	if err != nil {
		t.Fatalf("CreateRequest: %v", err)
	}
	got := e.sb.Requests()[0].Summary
	if n := len(utf16.Encode([]rune(got))); n > maxSummary || !strings.HasSuffix(got, "😀…") {
		t.Errorf("summary has %d UTF-16 units: %q", n, got)
	}
}

func TestAttachTemporaryFiles(t *testing.T) {
	e := newEnv(t, jsmsandbox.Options{}, nil)
	tk := e.ticket(t, "m1")
	ctx := context.Background()

	logID, err := e.c.UploadTemporary(ctx, `C:\Users\ann\app.log`, []byte("line 1\nline 2\n"))
	if err != nil {
		t.Fatal(err)
	}
	if h := e.wire.lastSeen(t, http.MethodPost, pathTempFile).Header.Get("X-Atlassian-Token"); h != "no-check" {
		t.Errorf("upload sent X-Atlassian-Token %q; want no-check", h)
	}
	pngID, err := e.c.UploadTemporary(ctx, "shot.png", []byte("\x89PNG\r\n\x1a\n...."))
	if err != nil {
		t.Fatal(err)
	}
	if err := e.c.AttachTemporary(ctx, tk.Key, []string{logID}, true); err != nil {
		t.Fatal(err)
	}
	if err := e.c.AttachTemporary(ctx, tk.Key, []string{pngID}, false); err != nil {
		t.Fatal(err)
	}

	got := e.sb.Requests()[0].Attachments
	want := []jsmsandbox.Attachment{
		{Filename: "app.log", Public: true, Size: 14},
		{Filename: "shot.png", Public: false, Size: 12},
	}
	opt := cmpopts.IgnoreFields(jsmsandbox.Attachment{}, "ID", "MediaType", "Content")
	if diff := cmp.Diff(got, want, opt); diff != "" {
		t.Errorf("attachments (-got +want):\n%s", diff)
	}
	// Temporary files are single use: attaching again is a plain 400, and Permanent.
	err = e.c.AttachTemporary(ctx, tk.Key, []string{logID}, true)
	if KindOf(err) != Permanent {
		t.Errorf("reattach err = %v; want Permanent", err)
	}
}

func TestAddComment(t *testing.T) {
	e := newEnv(t, jsmsandbox.Options{}, nil)
	tk := e.ticket(t, "m2")
	ctx := context.Background()

	pubID, err := e.c.AddComment(ctx, tk.Key, "We are looking into it.", true)
	if err != nil {
		t.Fatal(err)
	}
	intID, err := e.c.AddComment(ctx, tk.Key, "*Account data*\n||key||value||", false)
	if err != nil {
		t.Fatal(err)
	}
	got := e.sb.Requests()[0].Comments
	want := []jsmsandbox.Comment{
		{ID: pubID, Body: "We are looking into it.", Public: true},
		{ID: intID, Body: "*Account data*\n||key||value||", Public: false},
	}
	if diff := cmp.Diff(got, want, cmpopts.IgnoreFields(jsmsandbox.Comment{}, "Created")); diff != "" {
		t.Errorf("comments (-got +want):\n%s", diff)
	}
}

func TestRequestStatus(t *testing.T) {
	e := newEnv(t, jsmsandbox.Options{}, nil)
	tk := e.ticket(t, "m3")
	ctx := context.Background()

	got, err := e.c.RequestStatus(ctx, tk.Key)
	if err != nil {
		t.Fatal(err)
	}
	if got.Done || got.Category != "NEW" {
		t.Errorf("new request status = %+v; want category NEW, not done", got)
	}
	if err := e.sb.SetIssueStatus(tk.Key, "Resolved", "done"); err != nil {
		t.Fatal(err)
	}
	got, err = e.c.RequestStatus(ctx, tk.Key)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(got, Status{Name: "Resolved", Category: "DONE", Done: true}); diff != "" {
		t.Errorf("resolved status (-got +want):\n%s", diff)
	}
	_, err = e.c.RequestStatus(ctx, "SUP-999")
	if KindOf(err) != Permanent {
		t.Errorf("status of a missing request: err = %v; want Permanent", err)
	}
}

// TestRetryAfterHonoured injects one 429 or 503 with Retry-After and checks the call is
// repeated once and succeeds; it asserts call counts, never timings.
func TestRetryAfterHonoured(t *testing.T) {
	tests := []struct {
		name   string
		status int
		method string
		path   func(tk Ticket) string
		call   func(e *env, tk Ticket) error
	}{
		{"429 on a read", http.StatusTooManyRequests, http.MethodGet,
			func(tk Ticket) string { return pathRequest + "/" + tk.Key },
			func(e *env, tk Ticket) error { _, err := e.c.RequestStatus(context.Background(), tk.Key); return err }},
		// Atlassian sheds load with 503 + Retry-After before doing the work, so even a
		// write that must not be duplicated may be repeated.
		{"503 on a comment", http.StatusServiceUnavailable, http.MethodPost,
			func(tk Ticket) string { return pathRequest + "/" + tk.Key + "/comment" },
			func(e *env, tk Ticket) error {
				_, err := e.c.AddComment(context.Background(), tk.Key, "hello", true)
				return err
			}},
		{"429 on a create", http.StatusTooManyRequests, http.MethodPost,
			func(Ticket) string { return pathRequest },
			func(e *env, tk Ticket) error {
				_, err := e.c.CreateRequest(context.Background(),
					NewRequest{Summary: "again", Description: "m", RaiseOnBehalfOf: e.sb.Requests()[0].ReporterAccountID})
				return err
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, jsmsandbox.Options{}, nil)
			tk := e.ticket(t, "m4")
			path := tt.path(tk)
			e.sb.SetFaults(jsmsandbox.Faults{ErrorRate: 1, ErrorStatuses: []int{tt.status}, RetryAfter: time.Second})
			// The fault clears once the first refusal is on its way back.
			e.wire.hooks(nil, func(r *http.Request, resp *http.Response) {
				if resp.StatusCode == tt.status {
					e.sb.SetFaults(jsmsandbox.Faults{})
				}
			})
			if err := tt.call(e, tk); err != nil {
				t.Fatalf("call after one %d: %v", tt.status, err)
			}
			var statuses []int
			for _, c := range e.calls(tt.method, path) {
				statuses = append(statuses, c.Status)
			}
			want := []int{tt.status, http.StatusOK}
			if tt.method == http.MethodPost {
				want[1] = http.StatusCreated
			}
			if tt.path(tk) == pathRequest {
				want = append([]int{http.StatusCreated}, want...) // the helper's own create
			}
			if diff := cmp.Diff(statuses, want); diff != "" {
				t.Errorf("statuses of %s %s (-got +want):\n%s", tt.method, path, diff)
			}
		})
	}
}

func TestRetryAfterBeyondBudget(t *testing.T) {
	e := newEnv(t, jsmsandbox.Options{}, func(c *Config) { c.MaxAttempts = 2 })
	tk := e.ticket(t, "m5")
	e.sb.SetFaults(jsmsandbox.Faults{ErrorRate: 1, ErrorStatuses: []int{429}, RetryAfter: time.Second})

	_, err := e.c.RequestStatus(context.Background(), tk.Key)
	var je *Error
	if !errors.As(err, &je) || je.Kind != Transient || je.Status != 429 || je.RetryAfter != time.Second {
		t.Fatalf("err = %#v; want Transient 429 with RetryAfter 1s", err)
	}
	if n := len(e.calls(http.MethodGet, pathRequest+"/"+tk.Key)); n != 2 {
		t.Errorf("attempts = %d; want MaxAttempts (2)", n)
	}
}

// TestWritesNotRepeatedWhenOutcomeUnknown is the exactly-once rule: a write that may have
// happened is sent once and reported Ambiguous.
func TestWritesNotRepeatedWhenOutcomeUnknown(t *testing.T) {
	tests := []struct {
		name    string
		faults  jsmsandbox.Faults
		comment bool
	}{
		{"create dropped after it took effect", jsmsandbox.Faults{DropAfterCreate: true}, false},
		{"create answered 500", jsmsandbox.Faults{ErrorRate: 1, ErrorStatuses: []int{500}}, false},
		{"create answered bare 503", jsmsandbox.Faults{ErrorRate: 1, ErrorStatuses: []int{503}}, false},
		{"comment answered 502", jsmsandbox.Faults{ErrorRate: 1, ErrorStatuses: []int{502}}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, jsmsandbox.Options{}, nil)
			ctx := context.Background()
			tk := e.ticket(t, "warmup")
			e.sb.SetFaults(tt.faults)
			var err error
			if tt.comment {
				_, err = e.c.AddComment(ctx, tk.Key, "once", false)
			} else {
				_, err = e.c.CreateRequest(ctx, NewRequest{Summary: "s", Description: "sb-42",
					RaiseOnBehalfOf: e.sb.Requests()[0].ReporterAccountID})
			}
			if KindOf(err) != Ambiguous {
				t.Fatalf("err = %v (kind %v); want Ambiguous", err, KindOf(err))
			}
			path, earlier := pathRequest, 1 // the warmup's create
			if tt.comment {
				path, earlier = pathRequest+"/"+tk.Key+"/comment", 0
			}
			if n := len(e.droppedCalls(t, http.MethodPost, path, earlier+1)) - earlier; n != 1 {
				t.Errorf("sent %d calls; want exactly 1", n)
			}
			// The rule itself: at most one ticket (warmup + this one), however it ended.
			if n := len(e.sb.Requests()); n > 2 {
				t.Errorf("sandbox holds %d requests; want at most 2", n)
			}
		})
	}
}

func TestDroppedCreateIsFoundByMarker(t *testing.T) {
	e := newEnv(t, jsmsandbox.Options{}, nil)
	ctx := context.Background()
	id := e.customer(t, "finn@customer.example")
	e.sb.SetFaults(jsmsandbox.Faults{DropAfterCreate: true})

	_, err := e.c.CreateRequest(ctx, NewRequest{Summary: "s", Description: "text\n\nsb-Xy_9-drop", RaiseOnBehalfOf: id})
	if KindOf(err) != Ambiguous {
		t.Fatalf("err = %v; want Ambiguous", err)
	}
	creates := e.droppedCalls(t, http.MethodPost, pathRequest, 1)
	if len(creates) != 1 || creates[0].Status != 0 || len(e.sb.Requests()) != 1 {
		t.Fatalf("creates = %+v; want one, dropped", creates)
	}
	tk, ok, err := e.c.FindByMarker(ctx, "sb-Xy_9-drop")
	if err != nil || !ok {
		t.Fatalf("FindByMarker = %v, %v", ok, err)
	}
	if want := e.sb.Requests()[0].Key; tk.Key != want || tk.WebURL == "" {
		t.Errorf("found %+v; want key %s with a web link", tk, want)
	}
}

func TestFindByMarkerAfterSearchLag(t *testing.T) {
	e := newEnv(t, jsmsandbox.Options{SearchLag: 30 * time.Second}, nil)
	ctx := context.Background()
	tk := e.ticket(t, "sb-lag-1")
	e.ticket(t, "sb-lag-10") // a marker that starts with ours is another report

	if _, ok, err := e.c.FindByMarker(ctx, "sb-lag-1"); err != nil || ok {
		t.Fatalf("FindByMarker before the index caught up = %v, %v; want not found", ok, err)
	}
	e.clock.Advance(31 * time.Second)
	got, ok, err := e.c.FindByMarker(ctx, "sb-lag-1")
	if err != nil || !ok {
		t.Fatalf("FindByMarker after the lag = %v, %v; want found", ok, err)
	}
	if diff := cmp.Diff(got, tk); diff != "" {
		t.Errorf("found (-got +want):\n%s", diff)
	}
	if _, ok, err := e.c.FindByMarker(ctx, "sb-never"); err != nil || ok {
		t.Errorf("FindByMarker of an unknown marker = %v, %v; want not found", ok, err)
	}
}

func TestPermanentErrorsFailFast(t *testing.T) {
	tests := []struct {
		name   string
		opts   jsmsandbox.Options
		faults jsmsandbox.Faults
		edit   func(*Config)
		status int
	}{
		{"wrong request type", jsmsandbox.Options{}, jsmsandbox.Faults{}, func(c *Config) { c.RequestTypeID = "99" }, 400},
		{"forbidden", jsmsandbox.Options{}, jsmsandbox.Faults{ErrorRate: 1, ErrorStatuses: []int{403}}, nil, 403},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, tt.opts, tt.edit)
			id := e.customer(t, "gus@customer.example")
			e.sb.SetFaults(tt.faults)
			_, err := e.c.CreateRequest(context.Background(), NewRequest{Summary: "s", Description: "d", RaiseOnBehalfOf: id})
			var je *Error
			if !errors.As(err, &je) || je.Kind != Permanent || je.Status != tt.status {
				t.Fatalf("err = %v; want Permanent %d", err, tt.status)
			}
			if n := len(e.calls(http.MethodPost, pathRequest)); n != 1 {
				t.Errorf("creates = %d; want 1", n)
			}
			if strings.Contains(err.Error(), "request type") || strings.Contains(err.Error(), "Forbidden") {
				t.Errorf("error text %q repeats the response body", err)
			}
		})
	}
}

func TestWrongCredentialsArePermanent(t *testing.T) {
	e := newEnv(t, jsmsandbox.Options{}, func(c *Config) { c.Email = "someone-else@vendor.example" })
	err := e.c.Ping(context.Background())
	var je *Error
	if !errors.As(err, &je) || je.Kind != Permanent || je.Status != http.StatusUnauthorized {
		t.Fatalf("Ping err = %v; want Permanent 401", err)
	}
	if n := len(e.sb.Calls()); n != 1 {
		t.Errorf("calls = %d; want 1", n)
	}
}

func TestPing(t *testing.T) {
	e := newEnv(t, jsmsandbox.Options{}, nil)
	if err := e.c.Ping(context.Background()); err != nil {
		t.Errorf("Ping = %v", err)
	}
	for name, edit := range map[string]func(*Config){
		"wrong desk":    func(c *Config) { c.ServiceDeskID = "77" },
		"wrong project": func(c *Config) { c.ProjectKey = "NOPE" },
	} {
		bad := newEnv(t, jsmsandbox.Options{}, edit)
		if err := bad.c.Ping(context.Background()); KindOf(err) != Permanent {
			t.Errorf("%s: Ping = %v; want Permanent", name, err)
		}
	}
}

// TestLogsCarryNoSecrets drives retries, transport failures and customer searches with
// debug logging on, and checks that neither the credentials nor the customer's email
// (which travels in query strings) reach the log.
func TestLogsCarryNoSecrets(t *testing.T) {
	e := newEnv(t, jsmsandbox.Options{}, func(c *Config) { c.Timeout = 300 * time.Millisecond; c.MaxAttempts = 2 })
	ctx := context.Background()
	const email = "hana.private@customer.example"

	// Timeouts on the customer search: retryablehttp logs the *url.Error, query included.
	e.sb.SetFaults(jsmsandbox.Faults{Latency: time.Second})
	if _, err := e.c.ResolveCustomer(ctx, email, "Hana"); KindOf(err) != Transient {
		t.Fatalf("ResolveCustomer under latency: err = %v; want Transient", err)
	}
	// 429s with Retry-After, then a dropped create.
	e.sb.SetFaults(jsmsandbox.Faults{ErrorRate: 1, ErrorStatuses: []int{429}, RetryAfter: time.Second})
	_, _ = e.c.ResolveCustomer(ctx, email, "Hana")
	e.sb.SetFaults(jsmsandbox.Faults{})
	id := e.customer(t, email)
	e.sb.SetFaults(jsmsandbox.Faults{DropAfterCreate: true})
	_, _ = e.c.CreateRequest(ctx, NewRequest{Summary: "s", Description: "d", RaiseOnBehalfOf: id})

	logs := e.logs.String()
	for _, want := range []string{"retrying request", "request failed", "?[redacted]"} {
		if !strings.Contains(logs, want) {
			t.Errorf("logs lack %q, so the test did not exercise retry logging:\n%s", want, logs)
		}
	}
	basic := base64.StdEncoding.EncodeToString([]byte(testEmail + ":" + testToken))
	for _, secret := range []string{testToken, basic, "Basic ", "Authorization", email, "hana.private"} {
		if strings.Contains(logs, secret) {
			t.Errorf("logs contain %q:\n%s", secret, logs)
		}
	}
}

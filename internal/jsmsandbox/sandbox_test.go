package jsmsandbox

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	jira "github.com/andygrunwald/go-jira"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// TestCustomerToRequestFlow walks the delivery path of one report: resolve the customer,
// raise the request on their behalf, upload and attach files, comment. NewTestServer fails
// the test if any call (or any sandbox answer with a schema) breaks Atlassian's spec.
func TestCustomerToRequestFlow(t *testing.T) {
	t.Parallel()
	clock := newTestClock()
	opts := testOptions()
	opts.Now = clock.Now
	opts.ClosedDesk = true
	s, srv := NewTestServer(t, opts)
	c := apiClient{t: t, base: srv.URL}
	optIn := map[string]string{"X-ExperimentalApi": "opt-in"}

	// Create the customer; a second create with the same email conflicts without saying
	// which account owns it.
	res := c.post("/rest/servicedeskapi/customer?strictConflictStatusCode=true",
		map[string]string{"email": "ada@customer.example", "displayName": "Ada Lovelace"})
	wantStatus(t, "create customer", res, http.StatusCreated)
	var customer struct {
		AccountID    string `json:"accountId"`
		EmailAddress string `json:"emailAddress"`
	}
	res.decode(t, &customer)
	if !strings.HasPrefix(customer.AccountID, "qm:") || customer.EmailAddress != "ada@customer.example" {
		t.Fatalf("created customer %+v, want a qm: account id and the email", customer)
	}
	res = c.post("/rest/servicedeskapi/customer?strictConflictStatusCode=true",
		map[string]string{"email": "ada@customer.example", "displayName": "Ada again"})
	wantStatus(t, "duplicate customer, strict", res, http.StatusConflict)
	if bytes.Contains(res.body, []byte(customer.AccountID)) {
		t.Errorf("409 body %s reveals the account id", res.body)
	}
	res = c.post("/rest/servicedeskapi/customer", map[string]string{"email": "ada@customer.example", "displayName": "Ada"})
	wantStatus(t, "duplicate customer, not strict", res, http.StatusBadRequest)

	// Find the account: user search finds it at once; the desk does not list it until added.
	res = c.get("/rest/api/3/user/search?query="+url.QueryEscape("ada@customer.example"), nil)
	wantStatus(t, "user search", res, http.StatusOK)
	var users []struct{ AccountID, AccountType string }
	res.decode(t, &users)
	if diff := cmp.Diff([]struct{ AccountID, AccountType string }{{customer.AccountID, "customer"}}, users); diff != "" {
		t.Errorf("user search (-want +got):\n%s", diff)
	}
	deskCustomers := "/rest/servicedeskapi/servicedesk/10/customer?query=ADA"
	wantStatus(t, "desk customers without opt-in", c.get(deskCustomers, nil), http.StatusBadRequest)
	res = c.get(deskCustomers, optIn)
	wantStatus(t, "desk customers", res, http.StatusOK)
	if n := pageSize(t, res); n != 0 {
		t.Fatalf("desk lists %d customers before any was added", n)
	}

	// A closed desk refuses requests on behalf of accounts that are not its customers.
	createBody := map[string]any{
		"serviceDeskId": "10", "requestTypeId": "11", "raiseOnBehalfOf": customer.AccountID,
		"requestFieldValues": map[string]any{"summary": "Export fails <b>bold</b>", "description": "Steps:\n1. export"},
	}
	wantStatus(t, "create before joining the desk", c.post("/rest/servicedeskapi/request", createBody), http.StatusBadRequest)
	res = c.post("/rest/servicedeskapi/servicedesk/10/customer", map[string]any{"accountIds": []string{customer.AccountID}})
	wantStatus(t, "add to desk", res, http.StatusNoContent)
	if n := pageSize(t, c.get(deskCustomers, optIn)); n != 1 {
		t.Fatalf("desk lists %d customers after adding one", n)
	}

	res = c.post("/rest/servicedeskapi/request", createBody)
	wantStatus(t, "create request", res, http.StatusCreated)
	var created struct {
		IssueKey      string `json:"issueKey"`
		Reporter      struct{ AccountID string }
		CurrentStatus struct{ Status, StatusCategory string }
		Links         struct{ Web string } `json:"_links"`
	}
	res.decode(t, &created)
	if created.IssueKey != "SUP-1" || created.Reporter.AccountID != customer.AccountID ||
		created.CurrentStatus.StatusCategory != "NEW" || created.Links.Web != srv.URL+"/servicedesk/customer/portal/10/SUP-1" {
		t.Errorf("created request %+v", created)
	}
	// Real JSM answers field values of several JSON types, which go-jira cannot decode.
	if err := json.Unmarshal(res.body, new(jira.Request)); err == nil {
		t.Error("go-jira decoded the create response; real JSM responses break its RequestFieldValue")
	}

	// Temporary files: go-jira's "nocheck" fails Atlassian's XSRF check, "no-check" passes.
	log := testFile{"app.log", "text/plain", "line one\nline two\n"}
	shot := testFile{"screen.png", "image/png", "\x89PNG fake"}
	res = c.upload("10", "nocheck", log)
	wantStatus(t, "upload with nocheck", res, http.StatusForbidden)
	res = c.upload("10", "no-check", log, shot)
	wantStatus(t, "upload", res, http.StatusCreated)
	var temps struct {
		TemporaryAttachments []struct{ TemporaryAttachmentID, FileName string }
	}
	res.decode(t, &temps)
	if len(temps.TemporaryAttachments) != 2 {
		t.Fatalf("upload answered %s, want two temporary attachments", res.body)
	}
	logID, shotID := temps.TemporaryAttachments[0].TemporaryAttachmentID, temps.TemporaryAttachments[1].TemporaryAttachmentID

	res = c.post("/rest/servicedeskapi/request/SUP-1/attachment", map[string]any{
		"temporaryAttachmentIds": []string{shotID}, "public": true,
		"additionalComment": map[string]string{"body": "Your screenshot"}})
	wantStatus(t, "attach public", res, http.StatusCreated)
	clock.Advance(time.Minute)
	res = c.post("/rest/servicedeskapi/request/SUP-1/attachment", map[string]any{
		"temporaryAttachmentIds": []string{logID}, "public": false})
	wantStatus(t, "attach internal", res, http.StatusCreated)
	res = c.post("/rest/servicedeskapi/request/SUP-1/attachment", map[string]any{
		"temporaryAttachmentIds": []string{logID}, "public": false})
	wantStatus(t, "attach a used temporary file", res, http.StatusBadRequest)
	res = c.post("/rest/servicedeskapi/request/SUP-1/comment", map[string]any{"body": "tenant: acme", "public": false})
	wantStatus(t, "internal comment", res, http.StatusCreated)
	res = c.post("/rest/servicedeskapi/request/SUP-1/comment", map[string]any{"body": "no visibility"})
	wantStatus(t, "comment without public", res, http.StatusBadRequest)

	res = c.get("/rest/servicedeskapi/request/SUP-1/comment?internal=false", nil)
	wantStatus(t, "public comments", res, http.StatusOK)
	if n := pageSize(t, res); n != 1 {
		t.Errorf("%d public comments, want 1", n)
	}
	res = c.get("/rest/servicedeskapi/request/"+s.Requests()[0].ID, nil)
	wantStatus(t, "get request by id", res, http.StatusOK)

	start := clock.Now().Add(-time.Minute)
	want := []Request{{
		Key: "SUP-1", ServiceDeskID: "10", RequestTypeID: "11",
		Summary: "Export fails <b>bold</b>", Description: "Steps:\n1. export", ReporterAccountID: customer.AccountID,
		Status: "Waiting for support", StatusCategory: "new", Created: start,
		Comments: []Comment{
			{Body: "Your screenshot [^screen.png] _(9 B)_", Public: true, Created: start},
			{Body: "[^app.log] _(18 B)_", Public: false, Created: start.Add(time.Minute)},
			{Body: "tenant: acme", Public: false, Created: start.Add(time.Minute)},
		},
		Attachments: []Attachment{
			{Filename: "screen.png", MediaType: "image/png", Size: 9, Public: true, Content: []byte(shot.content)},
			{Filename: "app.log", MediaType: "text/plain", Size: 18, Public: false, Content: []byte(log.content)},
		},
	}}
	ignoreIDs := cmp.Options{
		cmpopts.IgnoreFields(Request{}, "ID"), cmpopts.IgnoreFields(Comment{}, "ID"), cmpopts.IgnoreFields(Attachment{}, "ID"),
	}
	if diff := cmp.Diff(want, s.Requests(), ignoreIDs); diff != "" {
		t.Errorf("requests (-want +got):\n%s", diff)
	}

	// The page shows the request, escaping what end users wrote.
	page := c.get("/", nil)
	wantStatus(t, "page", page, http.StatusOK)
	for _, want := range []string{"SUP-1", "Export fails &lt;b&gt;bold&lt;/b&gt;", "tenant: acme", "app.log", "internal"} {
		if !strings.Contains(string(page.body), want) {
			t.Errorf("page lacks %q", want)
		}
	}
	if !bytes.Contains(bytes.Join(s.AllBodies(), nil), []byte("line two")) {
		t.Error("AllBodies lacks the uploaded log")
	}
}

func pageSize(t *testing.T, res response) int {
	t.Helper()
	var page struct {
		Size   int               `json:"size"`
		Values []json.RawMessage `json:"values"`
	}
	res.decode(t, &page)
	if page.Size != len(page.Values) {
		t.Fatalf("page size %d but %d values", page.Size, len(page.Values))
	}
	return page.Size
}

func TestCreateRequestRejects(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		change func(body map[string]any, fields map[string]any)
	}{
		{"wrong service desk", func(b, _ map[string]any) { b["serviceDeskId"] = "99" }},
		{"wrong request type", func(b, _ map[string]any) { b["requestTypeId"] = "99" }},
		{"unknown account", func(b, _ map[string]any) { b["raiseOnBehalfOf"] = "qm:nobody" }},
		{"no summary", func(_, f map[string]any) { delete(f, "summary") }},
		{"summary with a newline", func(_, f map[string]any) { f["summary"] = "two\nlines" }},
		{"summary too long", func(_, f map[string]any) { f["summary"] = strings.Repeat("x", 256) }},
		// Jira counts UTF-16 code units, as Java does: 255 emoji are 510 characters to it.
		{"summary too long in UTF-16", func(_, f map[string]any) { f["summary"] = strings.Repeat("😀", 128) }},
		{"description not a string", func(_, f map[string]any) { f["description"] = map[string]any{"type": "doc"} }},
		{"field not on the request type", func(_, f map[string]any) { f["customfield_10010"] = "x" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, srv := NewTestServer(t, testOptions())
			fields := map[string]any{"summary": "It broke", "description": "details"}
			body := map[string]any{"serviceDeskId": "10", "requestTypeId": "11", "requestFieldValues": fields}
			tt.change(body, fields)
			res := apiClient{t: t, base: srv.URL}.post("/rest/servicedeskapi/request", body)
			wantStatus(t, "create", res, http.StatusBadRequest)
			var e errorResponse
			res.decode(t, &e)
			if e.ErrorMessage == "" {
				t.Errorf("error body %s has no errorMessage", res.body)
			}
			if n := len(s.Requests()); n != 0 {
				t.Errorf("%d requests stored after a rejected create", n)
			}
		})
	}
}

func TestClosedDeskAcceptsOnlyItsCustomers(t *testing.T) {
	t.Parallel()
	opts := testOptions()
	opts.ClosedDesk = true
	s, srv := NewTestServer(t, opts)
	c := apiClient{t: t, base: srv.URL}
	outsider := s.AddUser("grace@customer.example", "Grace Hopper")
	create := map[string]any{"serviceDeskId": "10", "requestTypeId": "11", "raiseOnBehalfOf": outsider,
		"requestFieldValues": map[string]any{"summary": "Help"}}

	wantStatus(t, "create for an outsider", c.post("/rest/servicedeskapi/request", create), http.StatusBadRequest)
	wantStatus(t, "add to desk", c.post("/rest/servicedeskapi/servicedesk/10/customer",
		map[string]any{"accountIds": []string{outsider}}), http.StatusNoContent)
	wantStatus(t, "create for a customer", c.post("/rest/servicedeskapi/request", create), http.StatusCreated)

	got := s.Customers()
	i := slices.IndexFunc(got, func(c Customer) bool { return c.AccountID == outsider })
	if i < 0 || !got[i].InDesk || got[i].AccountType != "atlassian" {
		t.Errorf("customers %+v, want %s in the desk as an atlassian account", got, outsider)
	}
}

func TestBasicAuth(t *testing.T) {
	t.Parallel()
	_, srv := NewTestServer(t, testOptions())
	tests := []struct {
		name, path   string
		email, token string
		noAuth       bool
		want         int
		wantShape    string
	}{
		{name: "no credentials", path: "/rest/servicedeskapi/request/SUP-1", noAuth: true, want: 401, wantShape: "errorMessage"},
		{name: "wrong token", path: "/rest/servicedeskapi/request/SUP-1", email: testEmail, token: "nope", want: 401, wantShape: "errorMessage"},
		{name: "wrong email", path: "/rest/api/3/issue/SUP-1", email: "x@vendor.example", token: testToken, want: 401, wantShape: "errorMessages"},
		{name: "right credentials", path: "/rest/api/3/issue/SUP-1", email: testEmail, token: testToken, want: 404, wantShape: "errorMessages"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequest(http.MethodGet, srv.URL+tt.path, nil)
			if err != nil {
				t.Fatal(err)
			}
			if !tt.noAuth {
				req.SetBasicAuth(tt.email, tt.token)
			}
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			var body map[string]any
			if err := json.NewDecoder(res.Body).Decode(&body); err != nil {
				t.Fatal(err)
			}
			if _, ok := body[tt.wantShape]; res.StatusCode != tt.want || !ok {
				t.Errorf("status %d body %v, want %d with %q", res.StatusCode, body, tt.want, tt.wantShape)
			}
		})
	}
}

func TestTemporaryAttachmentsExpire(t *testing.T) {
	t.Parallel()
	clock := newTestClock()
	opts := testOptions()
	opts.Now = clock.Now
	opts.TempAttachmentTTL = 10 * time.Minute
	_, srv := NewTestServer(t, opts)
	c := apiClient{t: t, base: srv.URL}
	key := createTestRequest(t, c, "Slow upload", "")

	res := c.upload("10", "no-check", testFile{"a.txt", "text/plain", "a"})
	wantStatus(t, "upload", res, http.StatusCreated)
	var temps struct {
		TemporaryAttachments []struct{ TemporaryAttachmentID string }
	}
	res.decode(t, &temps)
	clock.Advance(10 * time.Minute)
	res = c.post("/rest/servicedeskapi/request/"+key+"/attachment", map[string]any{
		"temporaryAttachmentIds": []string{temps.TemporaryAttachments[0].TemporaryAttachmentID}, "public": true})
	wantStatus(t, "attach an expired file", res, http.StatusBadRequest)
}

func TestIssueStatus(t *testing.T) {
	t.Parallel()
	s, srv := NewTestServer(t, testOptions())
	c := apiClient{t: t, base: srv.URL}
	key := createTestRequest(t, c, "Done soon", "")
	if err := s.SetIssueStatus(key, "Resolved", "done"); err != nil {
		t.Fatal(err)
	}
	if err := s.SetIssueStatus(key, "Resolved", "finished"); err == nil {
		t.Error("SetIssueStatus accepted an unknown category")
	}

	res := c.get("/rest/api/3/issue/"+key+"?fields=status", nil)
	wantStatus(t, "get issue", res, http.StatusOK)
	var issue struct {
		Key    string
		Fields map[string]struct {
			Name           string
			StatusCategory struct{ Key string }
		}
	}
	res.decode(t, &issue)
	if st := issue.Fields["status"]; issue.Key != key || st.Name != "Resolved" || st.StatusCategory.Key != "done" || len(issue.Fields) != 1 {
		t.Errorf("issue %+v, want only status Resolved/done", issue)
	}
	res = c.get("/rest/servicedeskapi/request/"+key, nil)
	var req struct {
		CurrentStatus struct{ Status, StatusCategory string }
	}
	res.decode(t, &req)
	if req.CurrentStatus.Status != "Resolved" || req.CurrentStatus.StatusCategory != "DONE" {
		t.Errorf("JSM status %+v, want Resolved/DONE", req.CurrentStatus)
	}
}

// TestConcurrentCreates checks that parallel clients get distinct, gap-free keys while
// faults are being changed under them.
func TestConcurrentCreates(t *testing.T) {
	t.Parallel()
	s, srv := NewTestServer(t, testOptions())
	body := `{"serviceDeskId":"10","requestTypeId":"11","requestFieldValues":{"summary":"Parallel"}}`
	const n = 20
	keys := make(chan string, n)
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			s.SetFaults(Faults{Latency: time.Millisecond})
			req, _ := http.NewRequest(http.MethodPost, srv.URL+"/rest/servicedeskapi/request", strings.NewReader(body))
			req.SetBasicAuth(testEmail, testToken)
			req.Header.Set("Content-Type", "application/json")
			res, err := srv.Client().Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			defer res.Body.Close()
			var out struct{ IssueKey string }
			if err := json.NewDecoder(res.Body).Decode(&out); err != nil || res.StatusCode != http.StatusCreated {
				t.Errorf("create answered %d (%v)", res.StatusCode, err)
			}
			keys <- out.IssueKey
		})
	}
	wg.Wait()
	close(keys)
	seen := map[string]bool{}
	for k := range keys {
		seen[k] = true
	}
	for i := 1; i <= n; i++ {
		if !seen[fmt.Sprintf("SUP-%d", i)] {
			t.Errorf("no SUP-%d among %v", i, seen)
		}
	}
}

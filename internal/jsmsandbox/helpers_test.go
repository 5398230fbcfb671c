package jsmsandbox

import (
	"bytes"
	"encoding/json"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/textproto"
	"sync"
	"testing"
	"time"
)

const (
	testEmail = "support-bot@vendor.example"
	testToken = "sandbox-api-token"
)

// testClock is a clock tests move by hand.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func newTestClock() *testClock {
	return &testClock{t: time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)}
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

func testOptions() Options {
	return Options{Email: testEmail, APIToken: testToken}
}

// startSandbox serves a validated sandbox without NewTestServer's violation check, for
// tests that provoke violations on purpose and assert them.
func startSandbox(t *testing.T, opts Options) (*Sandbox, *httptest.Server) {
	t.Helper()
	opts.Specs = specsForTest(t, "", "")
	s, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	return s, srv
}

// apiClient makes authenticated calls the way a JSM client would.
type apiClient struct {
	t    *testing.T
	base string
}

type response struct {
	status int
	header http.Header
	body   []byte
}

// decode unmarshals the body, failing the test when it is not the JSON expected.
func (r response) decode(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("decode %s: %v", r.body, err)
	}
}

func (c apiClient) do(method, path string, body io.Reader, header map[string]string) response {
	c.t.Helper()
	req, err := http.NewRequest(method, c.base+path, body)
	if err != nil {
		c.t.Fatal(err)
	}
	req.SetBasicAuth(testEmail, testToken)
	for k, v := range header {
		req.Header.Set(k, v)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		c.t.Fatal(err)
	}
	return response{status: res.StatusCode, header: res.Header, body: b}
}

func (c apiClient) get(path string, header map[string]string) response {
	c.t.Helper()
	return c.do(http.MethodGet, path, nil, header)
}

func (c apiClient) post(path string, in any) response {
	c.t.Helper()
	b, err := json.Marshal(in)
	if err != nil {
		c.t.Fatal(err)
	}
	return c.do(http.MethodPost, path, bytes.NewReader(b), map[string]string{"Content-Type": "application/json"})
}

type testFile struct {
	name, contentType, content string
}

// upload posts files as attachTemporaryFile expects them, with the given XSRF header value.
func (c apiClient) upload(deskID, xsrfToken string, files ...testFile) response {
	c.t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	for _, f := range files {
		h := textproto.MIMEHeader{}
		h.Set("Content-Disposition", `form-data; name="file"; filename="`+f.name+`"`)
		h.Set("Content-Type", f.contentType)
		pw, err := mw.CreatePart(h)
		if err != nil {
			c.t.Fatal(err)
		}
		io.WriteString(pw, f.content)
	}
	mw.Close()
	header := map[string]string{"Content-Type": mw.FormDataContentType()}
	if xsrfToken != "" {
		header["X-Atlassian-Token"] = xsrfToken
	}
	return c.do(http.MethodPost, "/rest/servicedeskapi/servicedesk/"+deskID+"/attachTemporaryFile", &buf, header)
}

// wantStatus fails the test when a call answered another status.
func wantStatus(t *testing.T, what string, got response, want int) {
	t.Helper()
	if got.status != want {
		t.Fatalf("%s: status %d, want %d; body %s", what, got.status, want, got.body)
	}
}

// createTestRequest raises a request on behalf of the service account.
func createTestRequest(t *testing.T, c apiClient, summary, description string) string {
	t.Helper()
	res := c.post("/rest/servicedeskapi/request", map[string]any{
		"serviceDeskId": DefaultServiceDeskID, "requestTypeId": DefaultRequestTypeID,
		"requestFieldValues": map[string]any{"summary": summary, "description": description},
	})
	wantStatus(t, "create request", res, http.StatusCreated)
	var out struct {
		IssueKey string `json:"issueKey"`
	}
	res.decode(t, &out)
	return out.IssueKey
}

func httptestServer(t *testing.T, h http.Handler) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

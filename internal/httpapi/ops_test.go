package httpapi

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/gin-gonic/gin"
	"github.com/google/go-cmp/cmp"
	"gopkg.in/yaml.v3"

	"github.com/supportbridge/supportbridge"
)

// TestOpenAPIMatchesRouter keeps the contract true: every route is described, and every
// described operation exists.
func TestOpenAPIMatchesRouter(t *testing.T) {
	h := newHarness(t)
	var doc struct {
		Paths map[string]map[string]any `yaml:"paths"`
	}
	if err := yaml.Unmarshal(supportbridge.OpenAPI, &doc); err != nil {
		t.Fatal(err)
	}
	var documented []string
	for path, ops := range doc.Paths {
		for method := range ops {
			switch method {
			case "get", "post", "put", "patch", "delete", "head", "options":
				documented = append(documented, strings.ToUpper(method)+" "+path)
			}
		}
	}
	var routed []string
	for _, r := range h.server.Routes().Routes() {
		segs := strings.Split(r.Path, "/")
		for i, s := range segs {
			if strings.HasPrefix(s, ":") || strings.HasPrefix(s, "*") {
				segs[i] = "{" + s[1:] + "}"
			}
		}
		routed = append(routed, r.Method+" "+strings.Join(segs, "/"))
	}
	sort.Strings(documented)
	sort.Strings(routed)
	if diff := cmp.Diff(documented, routed); diff != "" {
		t.Errorf("openapi.yaml (-) and routes.go (+) differ:\n%s", diff)
	}
}

func TestOperationsEndpoints(t *testing.T) {
	h := newHarness(t)
	st, hdr, b := h.do("GET", "/healthz", map[string]string{"X-Request-Id": "req-123"}, nil)
	if st != 200 || hdr.Get("X-Request-Id") != "req-123" {
		t.Errorf("healthz: %d, request id %q", st, hdr.Get("X-Request-Id"))
	}
	for _, name := range []string{"X-Content-Type-Options", "Content-Security-Policy", "Referrer-Policy", "X-Frame-Options"} {
		if hdr.Get(name) == "" {
			t.Errorf("missing security header %s", name)
		}
	}
	_, hdr, _ = h.do("GET", "/healthz", map[string]string{"X-Request-Id": "bad id\twith spaces"}, nil)
	if id := hdr.Get("X-Request-Id"); id == "" || strings.Contains(id, " ") {
		t.Errorf("malformed request id echoed: %q", id)
	}
	if st, _, b = h.do("GET", "/readyz", nil, nil); st != 200 {
		t.Errorf("readyz: %d %s", st, b)
	}
	if st, hdr, b = h.do("GET", "/openapi.yaml", nil, nil); st != 200 || !strings.Contains(string(b), "openapi: 3") {
		t.Errorf("openapi.yaml: %d", st)
	}
	st, _, b = h.do("GET", "/atlassian-connect.json", nil, nil)
	for _, want := range []string{`"signed-install":true`, `"context-qsh":true`, `"/connect/report-dialog"`, `"baseUrl":"` + testBaseURL + `"`, `"key":"` + testAppKey + `"`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("descriptor lacks %s: %s", want, b)
		}
	}
	h.do("GET", "/api/v1/reports/x", nil, nil)
	st, _, b = h.do("GET", "/metrics", nil, nil)
	if st != 200 || !strings.Contains(string(b), `supportbridge_http_request_duration_seconds_bucket{method="GET",route="/api/v1/reports/:id",status="401"`) {
		t.Errorf("metrics lack the per-route histogram:\n%.2000s", b)
	}
	st, hdr, b = h.do("GET", "/nope", nil, nil)
	if st != 404 {
		t.Errorf("unknown route: %d", st)
	}
	decodeProblem(t, hdr, b)
	st, hdr, b = h.do("DELETE", "/healthz", nil, nil)
	if st != 405 {
		t.Errorf("wrong method: %d", st)
	}
	decodeProblem(t, hdr, b)
}

func TestReadyzReportsDependencyDown(t *testing.T) {
	h := newHarness(t, func(_ map[string]string, o *Options) {
		o.Ready = func(context.Context) error { return errors.New("dial tcp 10.0.0.1:6379: connection refused") }
	})
	st, hdr, b := h.do("GET", "/readyz", nil, nil)
	if st != 503 {
		t.Fatalf("readyz: %d", st)
	}
	if p := decodeProblem(t, hdr, b); strings.Contains(p.Detail, "10.0.0.1") {
		t.Errorf("readyz leaks internal text: %q", p.Detail)
	}
}

func TestPanicBecomesProblem(t *testing.T) {
	h := newHarness(t)
	r := h.server.Routes()
	r.GET("/test-panic", func(*gin.Context) { panic("secret internal state") })
	rec := httptest.NewRecorder()
	r.ServeHTTP(rec, httptest.NewRequest("GET", "/test-panic", nil))
	if rec.Code != http.StatusInternalServerError {
		t.Fatalf("status = %d, want 500", rec.Code)
	}
	p := decodeProblem(t, rec.Header(), rec.Body.Bytes())
	if strings.Contains(rec.Body.String(), "secret internal state") || p.RequestID == "" {
		t.Errorf("500 body leaks or lacks a request id: %s", rec.Body.String())
	}
	if !strings.Contains(h.logs.String(), "secret internal state") {
		t.Error("the panic was not logged")
	}
}

func TestOpenAPIDocumentIsValid(t *testing.T) {
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(supportbridge.OpenAPI)
	if err != nil {
		t.Fatal(err)
	}
	if err := doc.Validate(loader.Context); err != nil {
		t.Errorf("openapi.yaml is not a valid OpenAPI 3 document: %v", err)
	}
}

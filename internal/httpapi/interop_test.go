package httpapi

import (
	"bytes"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// These tests sign with Atlassian's own atlassian-jwt npm package (interop/sign.js), so the
// service is checked against an implementation nobody on this project wrote. make test
// installs the package; in CI its absence is a failure, elsewhere a skip.

type signRequest struct {
	Kind          string         `json:"kind"`
	PrivateKeyPem string         `json:"privateKeyPem,omitempty"`
	KID           *string        `json:"kid,omitempty"`
	Alg           string         `json:"alg,omitempty"`
	Secret        string         `json:"secret,omitempty"`
	Claims        map[string]any `json:"claims"`
	QSHFor        *qshFor        `json:"qshFor,omitempty"`
}

type qshFor struct {
	Method string `json:"method"`
	URL    string `json:"url"`
}

func atlassianSign(t *testing.T, reqs []signRequest) []string {
	t.Helper()
	dir, _ := filepath.Abs("../../interop")
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "atlassian-jwt")); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("interop: %s/node_modules/atlassian-jwt is missing; make test installs it", dir)
		}
		t.Skipf("interop: %s/node_modules/atlassian-jwt is missing; run make deps", dir)
	}
	node, err := exec.LookPath("node")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("interop: node is not installed")
		}
		t.Skip("interop: node is not installed")
	}
	in, _ := json.Marshal(reqs)
	cmd := exec.Command(node, filepath.Join(dir, "sign.js"))
	cmd.Stdin = bytes.NewReader(in)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("interop: sign.js: %v: %s", err, stderr.String())
	}
	var toks []string
	if err := json.Unmarshal(out, &toks); err != nil || len(toks) != len(reqs) {
		t.Fatalf("interop: sign.js output %q: %v", out, err)
	}
	return toks
}

func strptr(s string) *string { return &s }

func TestInteropAtlassianSignedInstall(t *testing.T) {
	h := newHarness(t)
	keyPem := string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(h.key)}))
	now := time.Now().Unix()
	claims := func(mut func(map[string]any)) map[string]any {
		c := map[string]any{"iss": "interop-client", "aud": testBaseURL, "iat": now, "exp": now + 180}
		if mut != nil {
			mut(c)
		}
		return c
	}
	install := qshFor{Method: "POST", URL: "/connect/installed"}
	cases := []struct {
		name   string
		req    signRequest
		body   []byte
		status int
	}{
		{"tampered aud", signRequest{Kind: "install", KID: strptr(testKID), Claims: claims(func(c map[string]any) { c["aud"] = "https://other.example" }), QSHFor: &install}, nil, 401},
		{"tampered iss", signRequest{Kind: "install", KID: strptr(testKID), Claims: claims(func(c map[string]any) { c["iss"] = "someone-else" }), QSHFor: &install}, nil, 401},
		{"tampered qsh", signRequest{Kind: "install", KID: strptr(testKID), Claims: claims(nil), QSHFor: &qshFor{Method: "POST", URL: "/connect/uninstalled"}}, nil, 401},
		{"expired", signRequest{Kind: "install", KID: strptr(testKID), Claims: claims(func(c map[string]any) { c["exp"] = now - 120 }), QSHFor: &install}, nil, 401},
		{"alg HS256", signRequest{Kind: "install", Alg: "HS256", Secret: "interop-secret-interop-secret", KID: strptr(testKID), Claims: claims(nil), QSHFor: &install}, nil, 401},
		{"unknown kid", signRequest{Kind: "install", KID: strptr("not-a-key"), Claims: claims(nil), QSHFor: &install}, nil, 401},
		{"no kid", signRequest{Kind: "install", Claims: claims(nil), QSHFor: &install}, nil, 401},
		{"body clientKey differs", signRequest{Kind: "install", KID: strptr(testKID), Claims: claims(nil), QSHFor: &install},
			installBody("another-client", secretA, nil), 401},
		// The valid install goes last so that earlier cases cannot pass by an existing tenant.
		{"valid", signRequest{Kind: "install", KID: strptr(testKID), Claims: claims(nil), QSHFor: &install}, nil, 204},
	}
	reqs := make([]signRequest, len(cases))
	for i, tc := range cases {
		tc.req.PrivateKeyPem = keyPem
		reqs[i] = tc.req
	}
	toks := atlassianSign(t, reqs)
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			body := tc.body
			if body == nil {
				body = installBody("interop-client", secretA, nil)
			}
			st, _, b := h.do("POST", "/connect/installed", map[string]string{"Authorization": "JWT " + toks[i]}, body)
			if st != tc.status {
				t.Errorf("status = %d (%s), want %d", st, b, tc.status)
			}
		})
	}
}

func TestInteropAtlassianContextTokens(t *testing.T) {
	h := newHarness(t)
	h.install("interop-ctx", secretA)
	now := time.Now().Unix()
	claims := func(mut func(map[string]any)) map[string]any {
		c := map[string]any{"iss": "interop-ctx", "sub": "557058:acct", "iat": now, "exp": now + 180, "qsh": "context-qsh"}
		if mut != nil {
			mut(c)
		}
		return c
	}
	dialog := "/connect/report-dialog?xdm_e=https%3A%2F%2Facme.atlassian.net&lic=none&cp=&repeated=b&repeated=a"
	type tc struct {
		name   string
		req    signRequest
		method string
		path   string
		status int
	}
	cases := []tc{
		{"api valid", signRequest{Kind: "context", Secret: secretA, Claims: claims(nil)}, "GET", "/api/v1/reports/r", 404},
		{"api tampered iss", signRequest{Kind: "context", Secret: secretA, Claims: claims(func(c map[string]any) { c["iss"] = "unknown" })}, "GET", "/api/v1/reports/r", 401},
		{"api expired", signRequest{Kind: "context", Secret: secretA, Claims: claims(func(c map[string]any) { c["exp"] = now - 120 })}, "GET", "/api/v1/reports/r", 401},
		{"api alg HS512", signRequest{Kind: "context", Alg: "HS512", Secret: secretA, Claims: claims(nil)}, "GET", "/api/v1/reports/r", 401},
		{"api wrong secret", signRequest{Kind: "context", Secret: "not-the-tenant-secret-at-all", Claims: claims(nil)}, "GET", "/api/v1/reports/r", 401},
		{"module exact qsh", signRequest{Kind: "context", Secret: secretA, Claims: claims(nil), QSHFor: &qshFor{Method: "GET", URL: dialog}}, "GET", dialog, 200},
		{"module qsh of another url", signRequest{Kind: "context", Secret: secretA, Claims: claims(nil), QSHFor: &qshFor{Method: "GET", URL: "/connect/report-dialog?lic=active"}}, "GET", dialog, 401},
		{"module with context-qsh", signRequest{Kind: "context", Secret: secretA, Claims: claims(nil)}, "GET", dialog, 401},
	}
	reqs := make([]signRequest, len(cases))
	for i, c := range cases {
		reqs[i] = c.req
	}
	toks := atlassianSign(t, reqs)
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var st int
			var b []byte
			if c.path == dialog {
				st, _, b = h.do(c.method, c.path+"&jwt="+toks[i], nil, nil)
			} else {
				st, _, b = h.do(c.method, c.path, map[string]string{"Authorization": "JWT " + toks[i]}, nil)
			}
			if st != c.status {
				t.Errorf("status = %d (%.200s), want %d", st, b, c.status)
			}
		})
	}
	_ = http.StatusOK
}

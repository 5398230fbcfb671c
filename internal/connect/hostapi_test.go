package connect

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestHostClientUserEmailSignsExactQSH(t *testing.T) {
	secret := []byte("tenant-secret-for-host-calls-123")
	var verr error
	site := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Verify as the host product would: HS256 with the shared secret, qsh of this request.
		v := ContextVerifier{Secrets: func(context.Context, string) ([]byte, error) { return secret, nil }, BasePath: "/jira"}
		if _, verr = v.Verify(r.Context(), r.Header.Get("Authorization")[len("JWT "):], r.Method, r.URL, false); verr != nil {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		if r.URL.Path != "/jira/rest/api/3/user/email" {
			http.NotFound(w, r)
			return
		}
		json.NewEncoder(w).Encode(map[string]string{"accountId": r.URL.Query().Get("accountId"), "email": "user@example.com"})
	}))
	defer site.Close()
	c := &HostClient{AppKey: "app", HTTP: site.Client(), Now: time.Now}
	got, err := c.UserEmail(context.Background(), site.URL+"/jira", secret, "557058:abc/def")
	if err != nil || got != "user@example.com" {
		t.Fatalf("UserEmail = %q, %v (site verify: %v)", got, err, verr)
	}
	if _, err := c.UserEmail(context.Background(), site.URL+"/jira", []byte("wrong"), "x"); !errors.Is(err, ErrEmailUnavailable) {
		t.Errorf("wrong secret: err = %v, want ErrEmailUnavailable", err)
	}
	site.Close()
	_, err = c.UserEmail(context.Background(), site.URL+"/jira", secret, "557058:account-canary")
	if !errors.Is(err, ErrEmailUnavailable) {
		t.Errorf("site down: err = %v, want ErrEmailUnavailable", err)
	}
	if errors.Is(err, ErrEmailRefused) {
		t.Errorf("site down counted as a refusal: %v", err)
	}
	// The error is logged by the worker: it must not quote the URL, whose query names the account.
	if err != nil && strings.Contains(err.Error(), "account-canary") {
		t.Errorf("error quotes the account: %v", err)
	}
}

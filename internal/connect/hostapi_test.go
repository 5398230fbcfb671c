package connect

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
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
	if _, err := c.UserEmail(context.Background(), site.URL+"/jira", secret, "x"); !errors.Is(err, ErrEmailUnavailable) {
		t.Errorf("site down: err = %v, want ErrEmailUnavailable", err)
	}
}

package connect

import (
	"context"
	"errors"
	"net/url"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// TestVerifiedTokenCacheHonoursExpiryAndSecret: a remembered token still expires, and stops
// working when the tenant's secret changes or the tenant goes away.
func TestVerifiedTokenCacheHonoursExpiryAndSecret(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	secret := []byte("first-secret-first-secret")
	var lookupErr error
	v := &ContextVerifier{
		Secrets: func(context.Context, string) ([]byte, error) { return secret, lookupErr },
		Now:     func() time.Time { return now },
	}
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
		"iss": "ck", "sub": "acct", "qsh": ContextQSH, "iat": now.Unix(), "exp": now.Add(time.Minute).Unix(),
	}).SignedString(secret)
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse("/api/v1/reports/x")
	verify := func() error { _, err := v.Verify(context.Background(), tok, "GET", u, true); return err }
	for range 2 { // the second call is served from the cache
		if err := verify(); err != nil {
			t.Fatalf("fresh token: %v", err)
		}
	}
	lookupErr = errors.New("tenant uninstalled")
	if err := verify(); err == nil {
		t.Error("cached token accepted after the tenant went away")
	}
	lookupErr = nil
	secret = []byte("second-secret-second-secret")
	if err := verify(); !errors.Is(err, ErrInvalidToken) {
		t.Errorf("cached token after a secret change: err = %v, want ErrInvalidToken", err)
	}
	secret = []byte("first-secret-first-secret")
	now = now.Add(2 * time.Minute)
	if err := verify(); !errors.Is(err, ErrInvalidToken) {
		t.Errorf("cached token after expiry: err = %v, want ErrInvalidToken", err)
	}
}

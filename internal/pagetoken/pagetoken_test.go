package pagetoken

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

var key = []byte("page-token-test-key-0123456789abcdef")

func TestMintVerify(t *testing.T) {
	now := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	s, err := New(key, 10*time.Minute, clock)
	if err != nil {
		t.Fatal(err)
	}
	tok, exp, err := s.Mint("tenant-1", "acc-1", PurposeSiteAdmin)
	if err != nil {
		t.Fatal(err)
	}
	if !exp.Equal(now.Add(10 * time.Minute)) {
		t.Errorf("expires %v, want 10 minutes from now", exp)
	}
	c, err := s.Verify(tok, PurposeSiteAdmin)
	if err != nil {
		t.Fatal(err)
	}
	if c.Tenant != "tenant-1" || c.AccountID != "acc-1" || c.Purpose != PurposeSiteAdmin {
		t.Errorf("claims = %+v", c)
	}

	other, _ := New([]byte("another-key-0123456789abcdef-0123456"), 0, clock)
	forged, _, _ := other.Mint("tenant-1", "acc-1", PurposeSiteAdmin)
	otherPurpose, _, _ := s.Mint("tenant-1", "acc-1", "report-dialog")
	none := jwt.NewWithClaims(jwt.SigningMethodNone, jwt.MapClaims{"iss": issuer, "aud": PurposeSiteAdmin, "sub": "acc-1", "tnt": "tenant-1", "pur": PurposeSiteAdmin, "iat": now.Unix(), "exp": now.Add(time.Minute).Unix()})
	none.Header["typ"] = typ
	noneTok, _ := none.SignedString(jwt.UnsafeAllowNoneSignatureType)
	long := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"iss": issuer, "aud": PurposeSiteAdmin, "sub": "acc-1", "tnt": "tenant-1", "pur": PurposeSiteAdmin, "iat": now.Unix(), "exp": now.Add(time.Hour).Unix()})
	long.Header["typ"] = typ
	longTok, _ := long.SignedString(key)
	untyped := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"iss": issuer, "aud": PurposeSiteAdmin, "sub": "acc-1", "tnt": "tenant-1", "pur": PurposeSiteAdmin, "iat": now.Unix(), "exp": now.Add(time.Minute).Unix()})
	untypedTok, _ := untyped.SignedString(key)

	for name, tc := range map[string]struct {
		tok, reason string
	}{
		"other key":      {forged, "invalid page token"},
		"other purpose":  {otherPurpose, "page token is for another purpose"},
		"alg none":       {noneTok, "invalid page token"},
		"too long lived": {longTok, "invalid page token"},
		"no typ":         {untypedTok, "invalid page token"},
		"garbage":        {"a.b.c", "invalid page token"},
		"huge":           {strings.Repeat("a", 5000), "malformed token"},
	} {
		_, err := s.Verify(tc.tok, PurposeSiteAdmin)
		var pe *Error
		if !errors.As(err, &pe) || pe.Reason != tc.reason || !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: Verify = %v, want reason %q", name, err, tc.reason)
		}
	}

	now = now.Add(11 * time.Minute)
	if _, err := s.Verify(tok, PurposeSiteAdmin); err == nil || !strings.Contains(err.Error(), "expired") {
		t.Errorf("Verify after expiry = %v, want expired", err)
	}
}

func TestTTLIsCapped(t *testing.T) {
	now := time.Now()
	s, _ := New(key, 2*time.Hour, func() time.Time { return now })
	_, exp, _ := s.Mint("t", "a", PurposeSiteAdmin)
	if exp.Sub(now.Truncate(time.Second)) != MaxTTL {
		t.Errorf("lifetime %v, want capped at %v", exp.Sub(now), MaxTTL)
	}
	if _, err := New([]byte("short"), 0, nil); err == nil {
		t.Error("New accepted a short key")
	}
}

func FuzzVerify(f *testing.F) {
	s, _ := New(key, 0, nil)
	tok, _, _ := s.Mint("t", "a", PurposeSiteAdmin)
	f.Add(tok)
	f.Add("eyJhbGciOiJIUzI1NiJ9.e30.x")
	f.Fuzz(func(t *testing.T, in string) {
		if c, err := s.Verify(in, PurposeSiteAdmin); err == nil && (c.Tenant == "" || c.AccountID == "") {
			t.Fatalf("accepted a token without tenant or account: %q", in)
		}
	})
}

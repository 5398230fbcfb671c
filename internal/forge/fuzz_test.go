package forge_test

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/supportbridge/supportbridge/internal/forge"
	"github.com/supportbridge/supportbridge/internal/forge/forgetest"
)

// FuzzVerify feeds arbitrary strings as tokens. None may panic or be accepted: this run's key
// is fresh, and the committed seeds are signed by other keys under the same kid, so mutations
// of them reach the signature check. Errors must be one of the two sentinels and never quote
// the token.
func FuzzVerify(f *testing.F) {
	iss := forgetest.NewIssuer(f)
	// A long interval keeps made-up kids from fetching the JWKS on every input.
	v := iss.Verifier(forge.Options{MinRefreshInterval: time.Hour})
	for _, s := range []string{"", ".", "..", "a.b.c", "Bearer a.b.c", "eyJhbGciOiJSUzI1NiJ9.e30."} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, token string) {
		_, _ = forge.TokenFromHeader(token)
		inv, err := v.Verify(context.Background(), token)
		if err == nil {
			t.Fatalf("Verify accepted a token signed by no key of ours: %+v", inv)
		}
		if !errors.Is(err, forge.ErrInvalidToken) && !errors.Is(err, forge.ErrKeysUnavailable) {
			t.Fatalf("Verify error %v matches neither sentinel", err)
		}
		if len(token) >= 16 && strings.Contains(err.Error(), token) {
			t.Fatalf("error quotes the token: %v", err)
		}
	})
}

// FuzzVerifyClaims signs arbitrary payloads with the real key, to reach the claim checks that
// only run once the signature holds. Whatever it accepts must satisfy the rules.
func FuzzVerifyClaims(f *testing.F) {
	iss := forgetest.NewIssuer(f)
	v := iss.Verifier(forge.Options{})
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, payload []byte) {
		token, err := iss.SignPayload(payload)
		if err != nil {
			t.Fatalf("SignPayload: %v", err)
		}
		inv, err := v.Verify(context.Background(), token)
		if err != nil {
			if !errors.Is(err, forge.ErrInvalidToken) {
				t.Fatalf("Verify error %v does not match ErrInvalidToken", err)
			}
			return
		}
		var c struct {
			Iss string          `json:"iss"`
			Aud json.RawMessage `json:"aud"`
		}
		if err := json.Unmarshal(payload, &c); err != nil {
			t.Fatalf("accepted a payload encoding/json cannot read: %v", err)
		}
		var auds []string
		if json.Unmarshal(c.Aud, &auds) != nil {
			var one string
			_ = json.Unmarshal(c.Aud, &one)
			auds = []string{one}
		}
		switch {
		case c.Iss != forge.Issuer:
			t.Fatalf("accepted iss %q", c.Iss)
		case !slices.Contains(auds, forgetest.AppID):
			t.Fatalf("accepted aud %s", c.Aud)
		case inv.AppID != forgetest.AppID:
			t.Fatalf("accepted app id %q", inv.AppID)
		case inv.InstallationID == "" || inv.CloudID == "":
			t.Fatalf("accepted an invocation without installation or site: %+v", inv)
		case strings.ContainsAny(inv.CloudID, "./\\ "):
			t.Fatalf("accepted cloud id %q", inv.CloudID)
		case inv.ExpiresAt.Before(time.Now().Add(-time.Minute)):
			t.Fatalf("accepted a token that expired at %v", inv.ExpiresAt)
		}
	})
}

// FuzzParseLifecycleEvent checks that any body either parses into an event with its required
// fields or fails with a *ValidationError, and never panics.
func FuzzParseLifecycleEvent(f *testing.F) {
	f.Add([]byte(installedBody))
	f.Fuzz(func(t *testing.T, body []byte) {
		ev, err := forge.ParseLifecycleEvent(body)
		if err != nil {
			var ve *forge.ValidationError
			if !errors.As(err, &ve) || len(ve.Fields) == 0 {
				t.Fatalf("error %v is not a non-empty *ValidationError", err)
			}
			return
		}
		switch {
		case ev.EventType != forge.EventInstalled && ev.EventType != forge.EventUpgraded && ev.EventType != forge.EventUninstalled:
			t.Fatalf("accepted event type %q", ev.EventType)
		case ev.InstallationID == "" || ev.CloudID == "":
			t.Fatalf("accepted an event without installation or site: %+v", ev)
		case strings.ContainsAny(ev.CloudID, "./\\ "):
			t.Fatalf("accepted cloud id %q", ev.CloudID)
		}
	})
}

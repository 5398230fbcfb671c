package forge_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/supportbridge/supportbridge/internal/forge"
	"github.com/supportbridge/supportbridge/internal/forge/forgetest"
)

const refresh = 30 * time.Second

func mustVerify(t *testing.T, v *forge.Verifier, token string) {
	t.Helper()
	if _, err := v.Verify(context.Background(), token); err != nil {
		t.Fatalf("Verify: %v", err)
	}
}

func wantRequests(t *testing.T, iss *forgetest.Issuer, want int) {
	t.Helper()
	if got := iss.Requests(); got != want {
		t.Fatalf("JWKS requests = %d, want %d", got, want)
	}
}

func TestKeyRotationRefreshesOnce(t *testing.T) {
	iss, v, clk := setup(t, forge.Options{MinRefreshInterval: refresh})
	oldToken := iss.Sign(forgetest.Claims{})
	mustVerify(t, v, oldToken)
	mustVerify(t, v, oldToken)
	wantRequests(t, iss, 1)

	iss.Rotate()
	clk.Advance(refresh)
	newToken := iss.Sign(forgetest.Claims{})
	mustVerify(t, v, newToken) // unknown kid: one refresh
	wantRequests(t, iss, 2)
	mustVerify(t, v, newToken)
	mustVerify(t, v, oldToken) // the old key is still published
	wantRequests(t, iss, 2)
}

func TestKeyRotationInsideRateLimitWindowWaits(t *testing.T) {
	// A kid that appears right after a fetch is refused until the window passes: that is the
	// price of the rate limit, and Forge tokens are short-lived enough for it to be brief.
	iss, v, clk := setup(t, forge.Options{MinRefreshInterval: refresh})
	mustVerify(t, v, iss.Sign(forgetest.Claims{}))
	iss.Rotate()
	_, err := v.Verify(context.Background(), iss.Sign(forgetest.Claims{}))
	if r := reason(t, err); r != forge.ReasonUnknownKey {
		t.Fatalf("reason = %q, want %q", r, forge.ReasonUnknownKey)
	}
	wantRequests(t, iss, 1)
	clk.Advance(refresh)
	mustVerify(t, v, iss.Sign(forgetest.Claims{}))
	wantRequests(t, iss, 2)
}

func TestUnknownKidFloodIsRateLimited(t *testing.T) {
	iss, v, clk := setup(t, forge.Options{MinRefreshInterval: refresh})
	mustVerify(t, v, iss.Sign(forgetest.Claims{}))
	wantRequests(t, iss, 1)

	flood := func(round int) {
		t.Helper()
		good := iss.Sign(forgetest.Claims{})
		var wg sync.WaitGroup
		errs := make(chan error, 200)
		for n := range 200 {
			wg.Go(func() {
				// The kid is looked up before the signature is checked, so re-signing is not needed.
				token := withKid(t, good, fmt.Sprintf("garbage-%d-%d", round, n))
				_, err := v.Verify(context.Background(), token)
				errs <- err
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if r := reason(t, err); r != forge.ReasonUnknownKey {
				t.Fatalf("reason = %q, want %q", r, forge.ReasonUnknownKey)
			}
		}
		mustVerify(t, v, good) // known kids never wait for, or trigger, a fetch
	}

	flood(1)
	wantRequests(t, iss, 1) // the first fetch started now, so none is allowed yet
	clk.Advance(refresh - time.Second)
	flood(2)
	wantRequests(t, iss, 1)
	clk.Advance(time.Second)
	flood(3)
	wantRequests(t, iss, 2) // one per interval, however many garbage kids arrive
	flood(4)
	wantRequests(t, iss, 2)
	clk.Advance(10 * refresh)
	flood(5)
	wantRequests(t, iss, 3)
}

// withKid rewrites the kid of a token's header, leaving payload and signature alone.
func withKid(t *testing.T, token, kid string) string {
	t.Helper()
	parts := strings.SplitN(token, ".", 2)
	h, err := base64.RawURLEncoding.DecodeString(parts[0])
	if err != nil {
		t.Fatalf("decode header: %v", err)
	}
	var header map[string]any
	if err := json.Unmarshal(h, &header); err != nil {
		t.Fatalf("unmarshal header: %v", err)
	}
	header["kid"] = kid
	if h, err = json.Marshal(header); err != nil {
		t.Fatalf("marshal header: %v", err)
	}
	return base64.RawURLEncoding.EncodeToString(h) + "." + parts[1]
}

func TestConcurrentColdStartCoalesces(t *testing.T) {
	iss, v, _ := setup(t, forge.Options{MinRefreshInterval: refresh})
	iss.SetLatency(100 * time.Millisecond) // every caller arrives while the fetch is in flight
	token := iss.Sign(forgetest.Claims{})
	var wg sync.WaitGroup
	errs := make(chan error, 50)
	for range 50 {
		wg.Go(func() {
			_, err := v.Verify(context.Background(), token)
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("Verify: %v", err)
		}
	}
	wantRequests(t, iss, 1)
}

func TestJWKSDown(t *testing.T) {
	iss, v, clk := setup(t, forge.Options{MinRefreshInterval: refresh})
	good := iss.Sign(forgetest.Claims{})
	mustVerify(t, v, good)
	iss.SetDown(true)
	clk.Advance(refresh)

	mustVerify(t, v, good) // cached key: no fetch needed
	wantRequests(t, iss, 1)

	unknown := iss.SignWith(forgetest.Claims{}, forgetest.SignOptions{KeyID: "rotated-while-down"})
	for range 3 { // the first fetches and fails; the others are rate limited but still unknowable
		_, err := v.Verify(context.Background(), unknown)
		if !errors.Is(err, forge.ErrKeysUnavailable) || errors.Is(err, forge.ErrInvalidToken) {
			t.Fatalf("Verify error = %v, want ErrKeysUnavailable only", err)
		}
	}
	wantRequests(t, iss, 2)
	mustVerify(t, v, good)

	iss.SetDown(false)
	clk.Advance(refresh)
	_, err := v.Verify(context.Background(), unknown)
	if r := reason(t, err); r != forge.ReasonUnknownKey {
		t.Fatalf("reason after recovery = %q, want %q", r, forge.ReasonUnknownKey)
	}
	wantRequests(t, iss, 3)
}

func TestJWKSDownAtColdStart(t *testing.T) {
	iss, v, _ := setup(t, forge.Options{})
	iss.SetDown(true)
	_, err := v.Verify(context.Background(), iss.Sign(forgetest.Claims{}))
	if !errors.Is(err, forge.ErrKeysUnavailable) {
		t.Fatalf("Verify error = %v, want ErrKeysUnavailable", err)
	}
}

func TestJWKSFetchTimesOut(t *testing.T) {
	iss, v, _ := setup(t, forge.Options{Timeout: 50 * time.Millisecond})
	iss.SetLatency(5 * time.Second)
	start := time.Now()
	_, err := v.Verify(context.Background(), iss.Sign(forgetest.Claims{}))
	if !errors.Is(err, forge.ErrKeysUnavailable) {
		t.Fatalf("Verify error = %v, want ErrKeysUnavailable", err)
	}
	if elapsed := time.Since(start); elapsed > 2*time.Second {
		t.Errorf("Verify took %v despite a 50ms fetch timeout", elapsed)
	}
}

func TestCallerGivingUpDoesNotFailOthers(t *testing.T) {
	iss, v, _ := setup(t, forge.Options{})
	iss.SetLatency(200 * time.Millisecond)
	token := iss.Sign(forgetest.Claims{})

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := v.Verify(ctx, token); !errors.Is(err, forge.ErrKeysUnavailable) {
		t.Fatalf("impatient Verify error = %v, want ErrKeysUnavailable", err)
	}
	mustVerify(t, v, token) // joins the fetch the first caller started
	wantRequests(t, iss, 1)
}

func TestStaleKeysAreRefreshedAndWithdrawnKeysStopVerifying(t *testing.T) {
	iss, v, clk := setup(t, forge.Options{MinRefreshInterval: refresh, KeyMaxAge: time.Hour})
	oldKid := iss.KeyID()
	longLived := iss.Sign(forgetest.Claims{Lifetime: 3 * time.Hour})
	mustVerify(t, v, longLived)
	wantRequests(t, iss, 1)

	// Past the maximum age with the JWKS down, the cached key keeps working.
	iss.SetDown(true)
	clk.Advance(time.Hour)
	mustVerify(t, v, longLived)
	wantRequests(t, iss, 2)

	// Once the JWKS is back without the old key, tokens under it stop verifying.
	iss.SetDown(false)
	iss.Rotate()
	iss.Retire(oldKid)
	clk.Advance(refresh)
	_, err := v.Verify(context.Background(), longLived)
	if r := reason(t, err); r != forge.ReasonUnknownKey {
		t.Fatalf("reason = %q, want %q", r, forge.ReasonUnknownKey)
	}
	mustVerify(t, v, iss.Sign(forgetest.Claims{}))
	wantRequests(t, iss, 3)
}

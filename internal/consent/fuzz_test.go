package consent_test

import (
	"testing"

	"github.com/supportbridge/supportbridge/internal/consent"
)

// FuzzParseDuration feeds the customer's duration field: whatever comes in, a parsed duration
// is inside the allowed range and survives a round trip through its text form, which is
// what the approval form sends back.
func FuzzParseDuration(f *testing.F) {
	for _, s := range []string{"1h", "720h", "until-revoked", "90m", "1h30m", "0h", "-1h", "721h", "1e9h", " 24h ", "1h0.5s"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := consent.ParseDuration(s)
		if err != nil {
			return
		}
		if !d.UntilRevoked && (d.D < consent.MinDuration || d.D > consent.MaxDuration) {
			t.Fatalf("ParseDuration(%q) = %v, outside the allowed range", s, d.D)
		}
		again, err := consent.ParseDuration(d.String())
		if err != nil || again != d {
			t.Fatalf("round trip of %q: %v -> %q -> %v, %v", s, d, d.String(), again, err)
		}
		if !d.AtMost(consent.Duration{UntilRevoked: true}) || !d.AtMost(d) {
			t.Fatalf("AtMost is not reflexive or bounded by until-revoked for %v", d)
		}
	})
}

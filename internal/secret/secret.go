// Package secret holds the one type every credential in supportbridge travels in, so that
// no log line, JSON document or fmt verb can print a secret by accident.
package secret

import (
	"crypto/subtle"
	"log/slog"
)

const masked = "[redacted]"

// Secret is a credential. Every printing path shows "[redacted]"; Reveal is the only way out.
type Secret struct{ v string }

// New wraps a credential.
func New(v string) Secret { return Secret{v: v} }

// Reveal returns the credential itself, for the one place that needs it (signing, a header).
func (s Secret) Reveal() string { return s.v }

// Bytes returns the credential as bytes, for HMAC keys.
func (s Secret) Bytes() []byte { return []byte(s.v) }

// IsZero reports whether no credential is set.
func (s Secret) IsZero() bool { return s.v == "" }

// Equal compares two secrets in constant time.
func (s Secret) Equal(o Secret) bool {
	return subtle.ConstantTimeCompare([]byte(s.v), []byte(o.v)) == 1
}

// String never shows the credential.
func (s Secret) String() string {
	if s.v == "" {
		return ""
	}
	return masked
}

// GoString keeps %#v from printing the credential.
func (s Secret) GoString() string { return s.String() }

// LogValue keeps slog from printing the credential.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.String()) }

// MarshalJSON keeps encoding/json from printing the credential.
func (s Secret) MarshalJSON() ([]byte, error) { return []byte(`"` + s.String() + `"`), nil }

// MarshalText keeps text encoders from printing the credential.
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

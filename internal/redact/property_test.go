package redact

import (
	"encoding/json"
	"math/rand/v2"
	"strings"
	"testing"
)

// fragments are pieces of the text reports carry; random text strings them together so
// that a canary lands next to every kind of neighbour a rule might react to.
var fragments = []string{
	" ", "\n", "=", ":", ": ", "&", "?", "@", "://", "\"", "'", "\\", "\\\"", "{", "}", "[", "]",
	",", ";", "-", ".", "/", "%40", "password", "token", "Authorization", "Bearer ", "Basic ",
	"JWT ", "https://", "user:pass@host", "eyJ", "ATATT3", "-----BEGIN RSA PRIVATE KEY-----",
	"-----END RSA PRIVATE KEY-----", "4111", "1111 ", "4111111111111111", "bob@acme.example",
	"reporter@customer.example", "2025-03-14T09:26:53Z", "level=info", "[redacted]", "[email]",
	"cookie", "jwt", "sig", "code", "key", "session", "id", "null", "x", "é", "\x00", "\xff",
}

const canaryAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_+/=."

func randomCanary(r *rand.Rand) string {
	for {
		b := make([]byte, 8+r.IntN(33))
		for i := range b {
			b[i] = canaryAlphabet[r.IntN(len(canaryAlphabet))]
		}
		if c := string(b); !strings.Contains(marker, c) {
			return c
		}
	}
}

func randomText(r *rand.Rand) string {
	var b strings.Builder
	for range r.IntN(40) {
		if r.IntN(4) == 0 {
			b.WriteByte(byte(r.IntN(128)))
		} else {
			b.WriteString(fragments[r.IntN(len(fragments))])
		}
	}
	return b.String()
}

func insertAt(r *rand.Rand, s, canary string) string {
	i := r.IntN(len(s) + 1)
	return s[:i] + canary + s[i:]
}

// TestCanaryNeverSurvivesText: a caller's secret inserted anywhere in random text is gone
// after scrubbing, and the result is stable under a second scrub.
func TestCanaryNeverSurvivesText(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 11))
	for range 20000 {
		canary := randomCanary(r)
		in := randomText(r)
		for range 1 + r.IntN(3) {
			in = insertAt(r, in, canary)
		}
		opts := Options{KeepEmail: testKeep, Secrets: []string{canary}}
		out := New(opts).String(in)
		if strings.Contains(out, canary) {
			t.Fatalf("canary %q survived\n  in %q\n out %q", canary, in, out)
		}
		if again := New(opts).String(out); again != out {
			t.Fatalf("not idempotent\n   in %q\n  out %q\nagain %q", in, out, again)
		}
	}
}

func randomJSON(r *rand.Rand, depth int) any {
	switch n := r.IntN(6); {
	case depth > 3 || n == 0:
		return randomText(r)
	case n == 1:
		return r.Float64() * 1e6
	case n == 2:
		a := make([]any, r.IntN(4))
		for i := range a {
			a[i] = randomJSON(r, depth+1)
		}
		return a
	default:
		m := make(map[string]any)
		for range r.IntN(5) {
			k := fragments[r.IntN(len(fragments))]
			if r.IntN(2) == 0 {
				k = randomText(r)
			}
			m[k] = randomJSON(r, depth+1)
		}
		return m
	}
}

// plant puts the canary into one randomly chosen string (key or value) of v, returning false
// when v holds no string to plant it in.
func plant(r *rand.Rand, v any, canary string) (any, bool) {
	switch t := v.(type) {
	case string:
		return insertAt(r, t, canary), true
	case []any:
		if len(t) == 0 {
			return v, false
		}
		i := r.IntN(len(t))
		nv, ok := plant(r, t[i], canary)
		t[i] = nv
		return t, ok
	case map[string]any:
		for k, e := range t {
			if r.IntN(3) == 0 {
				delete(t, k)
				t[insertAt(r, k, canary)] = e
				return t, true
			}
			nv, ok := plant(r, e, canary)
			t[k] = nv
			return t, ok
		}
	}
	return v, false
}

// TestCanaryNeverSurvivesJSON: the same for JSON-decoded data scrubbed with Value, checked on
// its encoding so that keys and values are both covered.
func TestCanaryNeverSurvivesJSON(t *testing.T) {
	r := rand.New(rand.NewPCG(13, 17))
	planted := 0
	for range 5000 {
		canary := randomCanary(r)
		v, ok := plant(r, randomJSON(r, 0), canary)
		if !ok {
			continue
		}
		planted++
		opts := Options{Secrets: []string{canary}}
		out := New(opts).Value(v)
		enc, err := json.Marshal(out)
		if err != nil {
			t.Fatal(err)
		}
		plain := strings.NewReplacer(`\u0026`, "&", `\u003c`, "<", `\u003e`, ">", `\\`, `\`, `\"`, `"`).Replace(string(enc))
		if strings.Contains(plain, canary) {
			t.Fatalf("canary %q survived in %s", canary, enc)
		}
	}
	if planted < 1000 {
		t.Fatalf("only %d documents got a canary; the generator is broken", planted)
	}
}

package redact

import (
	"encoding/json"
	"strings"
	"testing"
)

// FuzzScrub checks the properties every input must keep: scrubbing never panics, never
// leaves a caller's secret behind, and is idempotent, for text and for JSON documents.
// Seeds live in testdata/fuzz/FuzzScrub.
func FuzzScrub(f *testing.F) {
	f.Add("password=hunter2 Authorization: Bearer abc https://u:p@h.example/?jwt=x bob@acme.example", "hunter2-secret", testKeep)
	f.Fuzz(func(t *testing.T, text, secret, keep string) {
		opts := Options{KeepEmail: keep, Secrets: []string{secret}}
		honoured := len(secret) >= minSecretLen && !strings.Contains(marker, secret)

		out := New(opts).String(text)
		if honoured && strings.Contains(out, secret) {
			t.Fatalf("secret %q survived: %q", secret, out)
		}
		if again := New(opts).String(out); again != out {
			t.Fatalf("not idempotent\n  out %q\nagain %q", out, again)
		}

		var doc any
		if json.Unmarshal([]byte(text), &doc) != nil {
			return
		}
		v := New(opts).Value(doc)
		walkStrings(v, func(s string) {
			if honoured && strings.Contains(s, secret) {
				t.Fatalf("secret %q survived in %q", secret, s)
			}
		})
		enc, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		var redecoded any
		if err := json.Unmarshal(enc, &redecoded); err != nil {
			t.Fatal(err)
		}
		again, err := json.Marshal(New(opts).Value(redecoded))
		if err != nil {
			t.Fatal(err)
		}
		if string(again) != string(enc) {
			t.Fatalf("Value not idempotent\n  out %s\nagain %s", enc, again)
		}
	})
}

// walkStrings calls fn for every string in JSON-decoded data, keys included.
func walkStrings(v any, fn func(string)) {
	switch t := v.(type) {
	case string:
		fn(t)
	case []any:
		for _, e := range t {
			walkStrings(e, fn)
		}
	case map[string]any:
		for k, e := range t {
			fn(k)
			walkStrings(e, fn)
		}
	}
}

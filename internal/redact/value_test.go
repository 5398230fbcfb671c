package redact

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func decode(t *testing.T, s string) any {
	t.Helper()
	d := json.NewDecoder(strings.NewReader(s))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		t.Fatal(err)
	}
	return v
}

func TestValue(t *testing.T) {
	in := `{
		"password": "hunter2",
		"Authorization": "Bearer abc",
		"headers": {"Cookie": ["a=b", "c=d"], "authorization": ["Basic dXNlcjpwYXNz"], "Accept": ["*/*"]},
		"token": null, "session": "", "authenticated": true, "credentials": {"user": "u", "pass": "p"},
		"otp_secret": 123456,
		"author": "Bob", "authority": "ca", "tokenizer": "bpe",
		"note": "mail bob@acme.example, jwt=abc, from reporter@customer.example",
		"card": 4111111111111111, "cardText": "4111 1111 1111 1111", "count": 4111111111111112,
		"bob@acme.example": 1, "alice@acme.example": 2,
		"list": ["x", {"api_key": "k"}, 3.5, false]
	}`
	want := decode(t, `{
		"password": "[redacted]",
		"Authorization": "Bearer [redacted]",
		"headers": {"Cookie": ["[redacted]", "[redacted]"], "authorization": ["Basic [redacted]"], "Accept": ["*/*"]},
		"token": null, "session": "", "authenticated": true, "credentials": "[redacted]",
		"otp_secret": "[redacted]",
		"author": "Bob", "authority": "ca", "tokenizer": "bpe",
		"note": "mail [email], jwt=[redacted], from reporter@customer.example",
		"card": "[redacted]", "cardText": "[redacted]", "count": 4111111111111112,
		"[email]": 2, "[email]#2": 1,
		"list": ["x", {"api_key": "[redacted]"}, 3.5, false]
	}`)
	orig := decode(t, in)
	s := newTestScrubber()
	got := s.Value(orig)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Value mismatch (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(decode(t, in), orig); diff != "" {
		t.Errorf("Value modified its input (-before +after):\n%s", diff)
	}
	wantCounts := map[string]int{"secret_key": 7, "authorization": 2, "email": 3, "card_number": 2}
	if diff := cmp.Diff(wantCounts, s.Counts()); diff != "" {
		t.Errorf("Counts() mismatch (-want +got):\n%s", diff)
	}
	if again := newTestScrubber().Value(got); !cmp.Equal(got, again) {
		t.Errorf("Value not idempotent:\n%s", cmp.Diff(got, again))
	}
}

func TestValueNumbers(t *testing.T) {
	s := New(Options{Secrets: []string{"987654321012"}})
	for _, tc := range []struct {
		in, want any
	}{
		{float64(4111111111111111), marker},
		{float64(1700000000000), float64(1700000000000)},
		{1.5, 1.5},
		{int64(5500000000000004), marker},
		{4111111111111111, marker},
		{json.Number("4111111111111111"), marker},
		{json.Number("987654321012"), marker}, // the caller's secret, spelled as a number
		{json.Number("12.5"), json.Number("12.5")},
		{true, true},
		{nil, nil},
	} {
		if got := s.Value(tc.in); got != tc.want {
			t.Errorf("Value(%#v) = %#v, want %#v", tc.in, got, tc.want)
		}
	}
}

// TestValueKeepsPlaceholders: the value of a secret-named key that plainly is no secret
// survives in JSON as it does in text, and one that merely resembles a placeholder does not;
// a name/value pair is judged by its name.
func TestValueKeepsPlaceholders(t *testing.T) {
	in := decode(t, `{
		"password": "${DB_PASSWORD}", "token": "<your-token-here>", "secret": "********",
		"apiKey": "process.env.STRIPE_KEY", "credentialsId": "jenkins-nexus",
		"db_password": "${DB_PASSWORD:-hunter2}", "client_secret": "s3cr3t-Value",
		"env": [{"name": "DB_PASSWORD", "value": "hunter22"}, {"name": "DB_HOST", "value": "db"}]
	}`)
	want := decode(t, `{
		"password": "${DB_PASSWORD}", "token": "<your-token-here>", "secret": "********",
		"apiKey": "process.env.STRIPE_KEY", "credentialsId": "jenkins-nexus",
		"db_password": "[redacted]", "client_secret": "[redacted]",
		"env": [{"name": "DB_PASSWORD", "value": "[redacted]"}, {"name": "DB_HOST", "value": "db"}]
	}`)
	if diff := cmp.Diff(want, New(Options{}).Value(in)); diff != "" {
		t.Errorf("Value mismatch (-want +got):\n%s", diff)
	}
}

package logstore

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/supportbridge/supportbridge/internal/secret"
)

const (
	testSharedSecret = "Zk3Jm9QpX2wVt7LsR4nB8cYd1Hf6Ga0EuTo5Wi2Kx"
	grantKeyA        = "grant-key-a-0123456789abcdef"
	grantKeyB        = "grant-key-b-0123456789abcdef"
)

func newRedactor(t testing.TB, key string, personalData bool) *Redactor {
	t.Helper()
	r, err := NewRedactor(RedactorOptions{
		GrantKey:     secret.New(key),
		SharedSecret: secret.New(testSharedSecret),
		PersonalData: personalData,
	})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// pn computes a pseudonym the way the contract states it, independently of the Redactor.
func pn(key, kind, normalised string) string {
	m := hmac.New(sha256.New, []byte(key))
	m.Write([]byte(kind + "\x00" + normalised))
	return "[" + kind + ":" + hex.EncodeToString(m.Sum(nil))[:8] + "]"
}

func TestRedactorPseudonymises(t *testing.T) {
	k := grantKeyA
	for _, tc := range []struct {
		name, in, want string
	}{
		{"email in text", "2026-12-04T10:00:00Z user Bob.Smith@Acme.example logged in.",
			"2026-12-04T10:00:00Z user " + pn(k, "email", "bob.smith@acme.example") + " logged in."},
		{"json personal keys", `{"time":"2026-12-04T10:00:00Z","displayName":"Bob Smith","first_name":"Bob","email":"bob@acme.example","phone":"+1 555-0100","zip":12345,"city":"Graz"}`,
			`{"time":"2026-12-04T10:00:00Z","displayName":"` + pn(k, "name", "bob smith") + `","first_name":"` + pn(k, "name", "bob") +
				`","email":"` + pn(k, "email", "bob@acme.example") + `","phone":"` + pn(k, "phone", "15550100") +
				`","zip":"` + pn(k, "address", "12345") + `","city":"` + pn(k, "address", "graz") + `"}`},
		{"json with spaces and escapes", `{"name" : "Bob \"B\" Smith", "level": "info"}`,
			`{"name" : "` + pn(k, "name", `bob \"b\" smith`) + `", "level": "info"}`},
		{"ipv4 and ipv6", "from 203.0.113.7:443 and [2001:DB8::1]:8080, ::ffff:10.0.0.1 too",
			"from " + pn(k, "ip", "203.0.113.7") + ":443 and [" + pn(k, "ip", "2001:db8::1") + "]:8080, " + pn(k, "ip", "10.0.0.1") + " too"},
		{"ip json key", `{"ip":"10.1.2.3","n":1}`, `{"ip":"` + pn(k, "ip", "10.1.2.3") + `","n":1}`},
		{"account ids", `account 5b10ac8d82e05b22cc7d4ef5 and 557058:f58131cb-b67d-43c7-b30d-6b58d40bd077`,
			"account " + pn(k, "account", "5b10ac8d82e05b22cc7d4ef5") + " and " + pn(k, "account", "557058:f58131cb-b67d-43c7-b30d-6b58d40bd077")},
		{"accountId key", `{"accountId":"712020:abc","x":1}`, `{"accountId":"` + pn(k, "account", "712020:abc") + `","x":1}`},
		{"secret still removed", "token " + testSharedSecret + " for bob@acme.example",
			"token [redacted] for " + pn(k, "email", "bob@acme.example")},
		{"not personal", "2026-12-04T10:00:00.123Z v1.2.3.4.5 pkg@1.2.3 user@localhost trace=4bf92f3577b34da6a3ce929d0e0e4736 id=f58131cb-b67d-43c7-b30d-6b58d40bd077 mac=aa:bb:cc:dd:ee:ff 12:30:45 std::vector",
			"2026-12-04T10:00:00.123Z v1.2.3.4.5 pkg@1.2.3 user@localhost trace=4bf92f3577b34da6a3ce929d0e0e4736 id=f58131cb-b67d-43c7-b30d-6b58d40bd077 mac=aa:bb:cc:dd:ee:ff 12:30:45 std::vector"},
		{"non-personal keys untouched", `{"level":"info","msg":"ok","issueKey":"SD-1","null":null,"name":null}`,
			`{"level":"info","msg":"ok","issueKey":"SD-1","null":null,"name":null}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := newRedactor(t, k, false).String(tc.in)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestPseudonymsStableWithinGrantDifferentAcross(t *testing.T) {
	a := newRedactor(t, grantKeyA, false)
	p1 := a.String("bob@acme.example")
	p2 := a.String("first line\nthen BOB@ACME.EXAMPLE again")
	if !strings.Contains(p2, p1) {
		t.Errorf("same address, same grant: %q and %q", p1, p2)
	}
	if other := a.String("alice@acme.example"); other == p1 {
		t.Errorf("different addresses share pseudonym %q", p1)
	}
	b := newRedactor(t, grantKeyB, false)
	if q := b.String("bob@acme.example"); q == p1 {
		t.Errorf("pseudonym %q repeats across grants", q)
	}
	if diff := cmp.Diff(map[string]int{"email": 3}, a.Counts()); diff != "" {
		t.Errorf("counts (-want +got):\n%s", diff)
	}
}

func TestPersonalDataAllowedKeepsItButNotSecrets(t *testing.T) {
	r := newRedactor(t, "", true)
	in := `{"email":"bob@acme.example","ip":"10.0.0.1","msg":"auth with ` + testSharedSecret + `","Authorization":"Bearer abcdefghijklmnopqrstuvwxyz0123456789"}`
	got := r.String(in)
	for _, keep := range []string{"bob@acme.example", "10.0.0.1"} {
		if !strings.Contains(got, keep) {
			t.Errorf("personal data %q removed although allowed: %s", keep, got)
		}
	}
	for _, gone := range []string{testSharedSecret, "abcdefghijklmnopqrstuvwxyz0123456789"} {
		if strings.Contains(got, gone) {
			t.Errorf("secret %q kept: %s", gone, got)
		}
	}
	c := r.Counts()
	if c["shared_secret"] != 1 || c["email"] != 0 {
		t.Errorf("counts = %v", c)
	}
}

func TestRedactorCountsMerge(t *testing.T) {
	r := newRedactor(t, grantKeyA, false)
	r.String("2026-12-04T10:00:00Z bob@acme.example from 10.0.0.1 used " + testSharedSecret)
	r.String(`{"name":"Bob","password":"hunter22"}`)
	want := map[string]int{"email": 1, "ip": 1, "name": 1, "shared_secret": 1, "secret_key": 1}
	if diff := cmp.Diff(want, r.Counts()); diff != "" {
		t.Errorf("counts (-want +got):\n%s", diff)
	}
}

func TestRedactorNeedsGrantKey(t *testing.T) {
	if _, err := NewRedactor(RedactorOptions{GrantKey: secret.New("short")}); err == nil {
		t.Error("a short grant key was accepted: pseudonyms could be reversed by guessing")
	}
}

// TestPseudonymsSurviveCacheReset walks past the pseudonym cache's bound, which empties it,
// and checks that every kind still gets the contract's pseudonym and is counted.
func TestPseudonymsSurviveCacheReset(t *testing.T) {
	r := newRedactor(t, grantKeyA, false)
	const n = maxCache + 100
	for i := range n {
		for _, round := range []int{i, i / 2} { // new values, then ones that may be cached or gone
			mail := fmt.Sprintf("user%d@acme.example", round)
			ip := fmt.Sprintf("10.0.%d.%d", round/250%250, round%250)
			in := fmt.Sprintf(`{"email":%q,"ip":%q,"city":"c%d"} from %s`, mail, ip, round, mail)
			want := fmt.Sprintf(`{"email":"%s","ip":"%s","city":"%s"} from %s`, pn(grantKeyA, "email", mail),
				pn(grantKeyA, "ip", ip), pn(grantKeyA, "address", fmt.Sprintf("c%d", round)), pn(grantKeyA, "email", mail))
			if got := r.String(in); got != want {
				t.Fatalf("String(%q) = %q, want %q", in, got, want)
			}
		}
	}
	if c := r.Counts(); c["email"] != 4*n || c["ip"] != 2*n || c["address"] != 2*n {
		t.Errorf("counts = %v", c)
	}
}

// TestLongValuesAreNotCached: a value under a personal key may be as long as a record; it
// gets the same pseudonym each time without the cache keeping it.
func TestLongValuesAreNotCached(t *testing.T) {
	r := newRedactor(t, grantKeyA, false)
	long := strings.Repeat("Bob Smith ", 2000)
	in := fmt.Sprintf(`{"name":%q}`, long)
	want := fmt.Sprintf(`{"name":"%s"}`, pn(grantKeyA, "name", strings.ToLower(strings.TrimSpace(long))))
	for range 3 {
		if got := r.String(in); got != want {
			t.Fatalf("String() = %.80q…, want %q", got, want)
		}
	}
	if r.cached != 0 {
		t.Errorf("the cache holds %d entries after a %d-byte value", r.cached, len(long))
	}
	short := `{"name":"Bob Smith"}`
	r.String(short)
	if r.cached != 1 {
		t.Errorf("the cache holds %d entries after a short value, want 1", r.cached)
	}
}

// TestManySpansInOneRecord: the spans of the different finders are ordered by hand when a
// line has a few and by a sort when a record has many; both give the line's own redaction,
// including a JSON value and the address inside it, which start together.
func TestManySpansInOneRecord(t *testing.T) {
	const unit = `{"ip":"10.0.0.1","user":"bob@acme.example","email":"Ann@acme.example"} `
	r := newRedactor(t, grantKeyA, false)
	want := r.String(unit)
	if strings.Contains(want, "acme.example") || strings.Contains(want, "10.0.0.1") {
		t.Fatalf("String(%q) = %q: personal data kept", unit, want)
	}
	for _, n := range []int{2, 3, 4, 40} { // five spans a unit (finders overlap): 10 to 200
		if got := r.String(strings.Repeat(unit, n)); got != strings.Repeat(want, n) {
			t.Errorf("%d units: got %q, want the unit's redaction %d times", n, got, n)
		}
	}
}

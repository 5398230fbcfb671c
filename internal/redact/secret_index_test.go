package redact

import (
	"math/rand/v2"
	"strings"
	"testing"
)

// exactSecret.index takes two routes, an anchor byte or strings.Index, by what the secret is
// made of; both must find exactly what strings.Index finds, from every start.

func checkSecretIndex(t *testing.T, sec, text string) {
	t.Helper()
	e := newExactSecret(sec)
	for from := 0; from <= len(text); from++ {
		want := strings.Index(text[from:], sec)
		if want >= 0 {
			want += from
		}
		if got := e.index(text, from); got != want {
			t.Fatalf("index(%q in %q, from %d) = %d, want %d (common %v)", sec, text, from, got, want, e.common)
		}
	}
}

func TestSecretIndexMatchesStringsIndex(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	secrets := []string{
		"tenant-consent-shared-secret-0123456789", "Zk3Jm9QpX2wVt7LsR4nB8cYd1Hf6Ga0EuTo5Wi2Kx",
		"aaaaaaaa", "abababab", "01234567", "ab-ab-ab", "AAAAAAAA", "a!aaaaaa", "[br]acket",
	}
	for range 200 {
		n := 8 + r.IntN(40)
		var sb strings.Builder
		for range n {
			sb.WriteByte("abc01-_XYZ!"[r.IntN(11)])
		}
		secrets = append(secrets, sb.String())
	}
	for _, sec := range secrets {
		for range 20 {
			// Text made of the secret's own bytes, pieces of it and whole copies, so that
			// near misses and overlapping occurrences are common.
			var sb strings.Builder
			for range r.IntN(12) {
				switch r.IntN(4) {
				case 0:
					sb.WriteString(sec)
				case 1:
					sb.WriteString(sec[:r.IntN(len(sec))])
				case 2:
					sb.WriteString(sec[r.IntN(len(sec)):])
				default:
					sb.WriteString(`2026-12-01T10:00:00.123Z {"ip":"10.0.0.1"} `)
				}
			}
			checkSecretIndex(t, sec, sb.String())
		}
	}
}

func FuzzSecretIndexMatchesStringsIndex(f *testing.F) {
	f.Add("tenant-consent-shared-secret-0123456789", "x tenant-consent-shared-secret-012345678 tenant-consent-shared-secret-0123456789")
	f.Add("Zk3Jm9QpX2wVt7LsR4nB8cYd1Hf6Ga0EuTo5Wi2Kx", "Zk3J Zk3Jm9QpX2wVt7LsR4nB8cYd1Hf6Ga0EuTo5Wi2Kx")
	f.Fuzz(func(t *testing.T, sec, text string) {
		if len(sec) < minSecretLen || len(text) > 4096 {
			return
		}
		checkSecretIndex(t, sec, text)
	})
}

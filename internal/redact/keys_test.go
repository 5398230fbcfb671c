package redact

import (
	"math/rand/v2"
	"strings"
	"testing"
)

// TestMayBeSecretKeyIsSafe holds the quick test to its contract: whenever it says no,
// classifyWords must say keyPlain, or a secret key would be waved through unclassified.
// Keys are built from the words the rules know, in every case and joined every way.
func TestMayBeSecretKeyIsSafe(t *testing.T) {
	var words []string
	words = append(words, strongSubstrings[:]...)
	words = append(words, headWords[:]...)
	words = append(words, keyQualifiers[:]...)
	words = append(words, "cookie", "authorization", "session", "time", "level", "user", "id", "x", "2")
	r := rand.New(rand.NewPCG(11, 12))
	seps := []string{"", "_", "-", ".", " "}
	for range 200000 {
		var sb strings.Builder
		for range 1 + r.IntN(3) {
			w := words[r.IntN(len(words))]
			switch r.IntN(3) {
			case 0:
				w = strings.ToUpper(w)
			case 1:
				w = strings.ToUpper(w[:1]) + w[1:]
			}
			if sb.Len() > 0 {
				sb.WriteString(seps[r.IntN(len(seps))])
			}
			sb.WriteString(w)
		}
		k := sb.String()
		if !mayBeSecretKey(k) && classifyWords(k) != keyPlain {
			t.Fatalf("mayBeSecretKey(%q) = false, but classifyWords says %v", k, classifyWords(k))
		}
	}
}

package redact

import (
	"regexp"
	"slices"
	"testing"
)

// atlassianToken is findAtlassianTokens written the obvious way: the prefix and the run of
// base64url or '=' after it, matches not overlapping, kept when the run has 8 bytes or more.
var atlassianToken = regexp.MustCompile(`AT[AC]TT3[A-Za-z0-9_=-]*`)

func atlassianTokenSpans(in string) []span {
	var want []span
	for _, m := range atlassianToken.FindAllStringIndex(in, -1) {
		if m[1]-m[0] >= 6+8 {
			want = append(want, span{start: m[0], end: m[1], kind: kindAtlassianToken})
		}
	}
	return want
}

func FuzzAtlassianTokensMatchRegexp(f *testing.F) {
	for _, s := range []string{
		"token ATATT3xFfGF0abcdefgh1234 used",
		"ATCTT3abcdefgh=ATATT3zzzzzzzz",
		"2026-12-04T15:01:06Z ATATT3short ATATT",
		"xATATT3ATATT3abcdefghij",
		"AATATT3abcdefgh-_", "ATAT", "",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		s := New(Options{})
		s.spans = s.spans[:0]
		s.findAtlassianTokens(in)
		if want := atlassianTokenSpans(in); !slices.Equal(s.spans, want) {
			t.Fatalf("findAtlassianTokens(%q) = %v, want %v", in, s.spans, want)
		}
	})
}

package errortrack

import (
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"strings"
	"unicode"
)

// maxNormalised bounds the part of a message that decides its group.
const maxNormalised = 256

// Fingerprint names the group of an event: the same message (up to the numbers and ids in
// it) thrown from the same place is one problem, however often and by whom. For kind http
// the place is the request's URL path with its ids blanked, plus the status.
func Fingerprint(e Event) string {
	h := sha256.New()
	h.Write([]byte(e.Kind))
	h.Write([]byte{0})
	h.Write([]byte(NormaliseMessage(e.Message)))
	h.Write([]byte{0})
	if e.Kind == KindHTTP {
		h.Write([]byte(normalisePath(e.URL)))
		h.Write([]byte{0})
		h.Write([]byte(strconv.Itoa(e.Status)))
	} else {
		h.Write([]byte(TopFrame(e.Stack)))
	}
	return hex.EncodeToString(h.Sum(nil)[:10])
}

// NormaliseMessage blanks what varies between occurrences of one error: every word that
// holds a digit (numbers, ids, hashes, UUID parts) becomes "#", runs of space become one.
func NormaliseMessage(m string) string {
	var b strings.Builder
	space := false
	for _, w := range strings.FieldsFunc(m, unicode.IsSpace) {
		if space {
			b.WriteByte(' ')
		}
		space = true
		b.WriteString(blankDigitWords(w))
		if b.Len() >= maxNormalised {
			break
		}
	}
	s := b.String()
	if len(s) > maxNormalised {
		s = s[:maxNormalised]
	}
	return s
}

// blankDigitWords replaces each alphanumeric run that contains a digit with "#".
func blankDigitWords(w string) string {
	var b strings.Builder
	start := -1
	flush := func(end int) {
		run := w[start:end]
		if strings.IndexFunc(run, unicode.IsDigit) >= 0 {
			b.WriteByte('#')
		} else {
			b.WriteString(run)
		}
		start = -1
	}
	for i, r := range w {
		alnum := unicode.IsLetter(r) || unicode.IsDigit(r)
		if alnum && start < 0 {
			start = i
		} else if !alnum {
			if start >= 0 {
				flush(i)
			}
			b.WriteRune(r)
		}
	}
	if start >= 0 {
		flush(len(w))
	}
	return b.String()
}

// TopFrame is the first frame of a stack trace (V8's "at f (file:1:2)", or Firefox and
// Safari's "f@file:1:2"), without cache-busting query strings; empty when there is none.
func TopFrame(stack string) string {
	for _, line := range strings.Split(stack, "\n") {
		line = strings.TrimSpace(line)
		if strings.HasPrefix(line, "at ") || (strings.Contains(line, "@") && strings.Contains(line, ":")) {
			return stripQueries(line)
		}
	}
	return ""
}

// stripQueries drops "?…" up to the next ':' or ')' so app.js?v=3:10:5 is app.js:10:5.
func stripQueries(s string) string {
	var b strings.Builder
	skip := false
	for _, r := range s {
		switch {
		case r == '?':
			skip = true
			continue
		case skip && (r == ':' || r == ')' || r == ' '):
			skip = false
		case skip:
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// normalisePath is the origin and path of a URL with ids blanked.
func normalisePath(u string) string {
	u, _, _ = strings.Cut(u, "?")
	segs := strings.Split(u, "/")
	for i, s := range segs {
		if i > 2 { // keep scheme and host
			segs[i] = blankDigitWords(s)
		}
	}
	return strings.Join(segs, "/")
}

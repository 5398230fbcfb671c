// Package redact scrubs secrets and personal data out of problem-report fields before
// anything is stored or forwarded to the support desk.
//
// It only ever replaces: a sensitive value becomes "[redacted]" (an address becomes
// "[email]") and every other byte stays as it was, so support staff still see the shape of a
// log line or a JSON document, and which key held a secret. Scrubbing is idempotent, which
// lets a report be scrubbed again (on retry, or after it was edited) without drift.
//
// A value is recognised by what names it (a secret-named key, an Authorization header, a
// password flag, the name of a Kubernetes env var), by its own shape (a JWT, a PEM private
// key, a card number, a vendor token whose prefix announces it, such as "ghp_" or "AKIA"), or
// by where it sits (a URL's userinfo, a webhook URL's path). A value that a key names but
// that plainly is no secret, such as "${DB_PASSWORD}", "<your-token-here>" or
// "PAYMENTS-DB-PASSWORD", is left alone: configs name secrets far more often than they hold
// them. testdata/corpus.txt measures both sides; TestCorpus holds them to their targets.
//
// Detection is done by hand-written scanners rather than regular expressions: reports carry
// multi-megabyte logs, and Go's regexp engine is an order of magnitude too slow for them.
// Each rule first looks for a cheap trigger (a fixed substring found with strings.Index, a
// trigger byte found eight bytes at a time, one byte in 13 for card numbers), and only
// then inspects the few bytes around it. Every scanner runs in time linear in its input,
// however hostile: BenchmarkPathological keeps that honest.
package redact

import (
	"cmp"
	"slices"
	"strings"
)

const (
	// marker replaces every redacted value; it contains neither '@' nor a separator a
	// rule reacts to, which is what makes a second scrub a no-op.
	marker = "[redacted]"
	// emailMarker tells support that an address was there, without whose it was.
	emailMarker = "[email]"
	// minSecretLen is the shortest caller-supplied secret that is honoured: shorter strings
	// occur by chance in ordinary text, and real shared secrets are far longer.
	minSecretLen = 8
)

// kind names a rule. The order is the priority when spans of different rules overlap: the
// merged span is counted under the first kind.
type kind uint8

const (
	kindSharedSecret kind = iota
	kindPrivateKey
	kindJWT
	kindAtlassianToken
	kindToken
	kindWebhook
	kindCommandLine
	kindAuthorization
	kindSecretKey
	kindURLCredentials
	kindURLQuery
	kindCardNumber
	kindEmail
	numKinds
)

var kindNames = [numKinds]string{
	kindSharedSecret:   "shared_secret",
	kindPrivateKey:     "private_key",
	kindJWT:            "jwt",
	kindAtlassianToken: "atlassian_token",
	kindToken:          "service_token",
	kindWebhook:        "webhook_url",
	kindCommandLine:    "command_line",
	kindAuthorization:  "authorization",
	kindSecretKey:      "secret_key",
	kindURLCredentials: "url_credentials",
	kindURLQuery:       "url_query",
	kindCardNumber:     "card_number",
	kindEmail:          "email",
}

// span is a half-open byte range of the input that a rule wants replaced.
type span struct {
	start, end int
	kind       kind
}

// Options is what a Scrubber knows about the one report it scrubs.
type Options struct {
	// KeepEmail is the reporter's own address. Support needs it to answer, so it survives
	// (compared case-insensitively); every other address becomes "[email]".
	KeepEmail string
	// KeepEmails keeps every email address: the log reader sets it when the customer allowed
	// personal data, and pseudonymises addresses itself otherwise.
	KeepEmails bool
	// Secrets are exact strings, such as the tenant's sharedSecret, removed wherever they
	// occur verbatim. Strings shorter than 8 bytes are ignored because they occur by chance
	// in ordinary text, and so is a string that "[redacted]" itself contains, because no
	// replacement could hide it.
	Secrets []string
}

// Scrubber scrubs the fields of one report and counts what it removed. It holds per-report
// state (the counts and scratch buffers), so it is not safe for concurrent use: make one per
// report. The detection tables it uses are shared and immutable.
type Scrubber struct {
	keepEmail  string
	keepEmails bool
	secrets    []exactSecret
	// bracketed is set when a secret contains '[' or ']': only such a secret can be spelled
	// anew by a marker and its neighbours, so only then is the output searched again.
	bracketed bool
	counts    [numKinds]int

	// Scratch reused across calls so that scrubbing many small fields does not allocate.
	spans  []span
	atSkip []int // the '@' of URL userinfo, which findEmails must not take for an address
	marks  []int // where apply wrote its markers
	lines  []span
	// bracketFail is how far matchBracket has looked in vain in the current text.
	bracketFail int
}

// New returns a Scrubber for one report.
func New(opts Options) *Scrubber {
	s := &Scrubber{keepEmail: strings.TrimSpace(opts.KeepEmail), keepEmails: opts.KeepEmails}
	for _, sec := range opts.Secrets {
		if len(sec) < minSecretLen || strings.Contains(marker, sec) ||
			slices.ContainsFunc(s.secrets, func(e exactSecret) bool { return e.s == sec }) {
			continue
		}
		s.secrets = append(s.secrets, newExactSecret(sec))
		s.bracketed = s.bracketed || strings.ContainsAny(sec, "[]")
	}
	return s
}

// Counts reports how many values each rule replaced so far, keyed by rule name
// ("secret_key", "authorization", "url_credentials", "url_query", "jwt", "atlassian_token",
// "private_key", "card_number", "shared_secret", "email"; "service_token" for credentials
// that identify themselves by a vendor prefix such as "ghp_", "xoxb-" or "AKIA",
// "webhook_url" for the secret path of a Slack, Teams or Discord webhook, "command_line" for
// a password given as a flag such as curl's "-u user:pass"). Rules that found nothing are
// absent. Only numbers are kept: the replaced values themselves are never retained.
func (s *Scrubber) Counts() map[string]int {
	m := make(map[string]int)
	for k, n := range s.counts {
		if n > 0 {
			m[kindNames[k]] = n
		}
	}
	return m
}

// String returns in with every secret and foreign email address replaced.
func (s *Scrubber) String(in string) string {
	// The caller's exact secrets go first, on their own: they can sit anywhere, even inside
	// a word, and the other rules must see the text with them already gone.
	t, ok := s.removeSecrets(in)
	if !ok {
		return marker
	}
	out := t
	if s.detect(t) {
		out = s.settle(s.apply(t))
	}
	// A secret containing '[' or ']' can in theory be spelled by a marker and its
	// neighbours. Losing the whole field is better than leaking it.
	if s.bracketed && s.containsSecret(out) {
		s.counts[kindSharedSecret]++
		return marker
	}
	return out
}

// detect records the spans of every rule but the caller's secrets, and reports whether
// there were any.
func (s *Scrubber) detect(t string) bool {
	s.spans = s.spans[:0]
	s.atSkip = s.atSkip[:0]
	s.bracketFail = 0
	s.scan(t)
	s.findAtlassianTokens(t)
	s.findXMLElements(t)
	s.findCards(t)
	if !s.keepEmails { // every address would be kept: nothing to look for
		s.findEmails(t) // after scan, which records the '@' of URL userinfo
	}
	return len(s.spans) > 0
}

// maxSettleRounds bounds settle; real text settles in one round, and a line that has not
// settled by then is replaced whole.
const maxSettleRounds = 4

// settle makes out a fixed point of detect, which is what makes String idempotent.
//
// Replacing a span changes what its neighbours look like to the other rules: in
// "bob@acme.example-----BEGIN RSA PRIVATE KEY-----…" the domain runs into the key's dashes
// and is no address, but once the key is "[redacted]" it is one. So the lines that received
// a marker are scanned again until nothing more is found. Every rule except private keys
// stops at a line break, and a private key always leaves a marker on its lines, so the
// lines without a marker are already settled.
func (s *Scrubber) settle(out string) string {
	for round := 0; len(s.marks) > 0; round++ {
		s.lines = s.lines[:0]
		end := 0
		for _, m := range s.marks {
			if m < end {
				continue // on the line just taken
			}
			start := end + strings.LastIndexByte(out[end:m], '\n') + 1
			end = len(out)
			if i := strings.IndexByte(out[m:], '\n'); i >= 0 {
				end = m + i
			}
			s.lines = append(s.lines, span{start: start, end: end})
		}
		var b strings.Builder
		var marks []int
		last := 0
		for _, ln := range s.lines {
			line := out[ln.start:ln.end]
			if !s.detect(line) {
				continue
			}
			repl := marker
			if round < maxSettleRounds {
				if repl = s.apply(line); repl == line {
					continue // a rule matched a marker exactly: nothing new
				}
			} else {
				s.marks = append(s.marks[:0], 0)
			}
			if b.Cap() == 0 {
				b.Grow(len(out) + 64)
			}
			b.WriteString(out[last:ln.start])
			for _, m := range s.marks {
				marks = append(marks, b.Len()+m)
			}
			b.WriteString(repl)
			last = ln.end
		}
		if b.Cap() == 0 {
			break
		}
		b.WriteString(out[last:])
		out = b.String()
		s.marks = append(s.marks[:0], marks...)
	}
	return out
}

// removeSecrets replaces every occurrence of the caller's secrets. Replacing can only create
// a new occurrence when a secret contains a bracket, so the loop almost always runs once;
// ok is false when the secrets could not be driven out and the whole field must go.
func (s *Scrubber) removeSecrets(in string) (out string, ok bool) {
	if len(s.secrets) == 0 {
		return in, true
	}
	t := in
	for range 4 {
		s.spans = s.spans[:0]
		for _, sec := range s.secrets {
			for i := 0; ; {
				j := sec.index(t, i)
				if j < 0 {
					break
				}
				s.add(j, j+len(sec.s), kindSharedSecret)
				i = j + 1 // overlapping occurrences must be covered too
			}
		}
		if len(s.spans) == 0 {
			return t, true
		}
		t = s.apply(t)
	}
	if s.containsSecret(t) {
		s.counts[kindSharedSecret]++
		return "", false
	}
	return t, true
}

func (s *Scrubber) containsSecret(t string) bool {
	for _, sec := range s.secrets {
		if strings.Contains(t, sec.s) {
			return true
		}
	}
	return false
}

// exactSecret is a caller's secret with the byte to search for first. strings.Index looks
// for the first byte, which in a log is often a common letter; a secret's rarest-looking
// byte (punctuation, then an upper-case letter) gives far fewer false starts.
//
// A secret of only lower-case letters, digits and common punctuation (such as
// "tenant-shared-secret-0123456789") has no rare byte: in a log full of timestamps and ids
// its anchor turns up every few bytes, and each false start costs a call. strings.Index
// soon gives up on its first byte in that case and compares with vector instructions, which
// in the route's benchmark was four times as fast; such a secret is left to it.
type exactSecret struct {
	s      string
	off    int  // index of the anchor byte in s
	common bool // even the anchor is a common byte: use strings.Index
}

func newExactSecret(sec string) exactSecret {
	rank := func(c byte) int {
		switch {
		case isLower(c), strings.IndexByte(" -:./_=,\"\n", c) >= 0:
			return 3
		case isDigit(c):
			return 2
		case isUpper(c):
			return 1
		}
		return 0
	}
	off := 0
	for i := range len(sec) {
		if rank(sec[i]) < rank(sec[off]) {
			off = i
		}
	}
	return exactSecret{s: sec, off: off, common: rank(sec[off]) >= 2}
}

// index returns the first occurrence of the secret in t at or after from, or -1.
func (e exactSecret) index(t string, from int) int {
	if e.common {
		if j := strings.Index(t[from:], e.s); j >= 0 {
			return from + j
		}
		return -1
	}
	anchor := e.s[e.off]
	for k := from + e.off; k < len(t); {
		j := strings.IndexByte(t[k:], anchor)
		if j < 0 {
			return -1
		}
		p := k + j - e.off
		if p+len(e.s) <= len(t) && t[p:p+len(e.s)] == e.s {
			return p
		}
		k += j + 1
	}
	return -1
}

// add records a span. A span that overlaps the previous one of the same kind extends it, so
// that a run of overlapping matches (a secret like "aaaaaaaa" in "aaaa…") stays one entry.
func (s *Scrubber) add(start, end int, k kind) {
	if start >= end {
		return
	}
	if n := len(s.spans); n > 0 {
		last := &s.spans[n-1]
		if last.kind == k && start >= last.start && start < last.end {
			last.end = max(last.end, end)
			return
		}
	}
	s.spans = append(s.spans, span{start, end, k})
}

// apply replaces the recorded spans. Overlapping spans of different rules are merged into
// one: the union is what must disappear, and replacing it whole never leaves a fragment of
// either value behind.
func (s *Scrubber) apply(in string) string {
	sp := s.spans
	s.marks = s.marks[:0]
	slices.SortFunc(sp, func(a, b span) int { return cmp.Compare(a.start, b.start) })
	var b strings.Builder
	b.Grow(len(in))
	last := 0
	for i := 0; i < len(sp); {
		g := sp[i]
		i++
		for ; i < len(sp) && sp[i].start < g.end; i++ {
			g.end = max(g.end, sp[i].end)
			g.kind = min(g.kind, sp[i].kind)
		}
		b.WriteString(in[last:g.start])
		s.marks = append(s.marks, b.Len())
		if g.kind == kindEmail {
			b.WriteString(emailMarker)
		} else {
			b.WriteString(marker)
		}
		s.counts[g.kind]++
		last = g.end
	}
	b.WriteString(in[last:])
	return b.String()
}

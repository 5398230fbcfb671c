package logstore

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"hash"
	"net/netip"
	"slices"
	"strings"

	"github.com/supportbridge/supportbridge/internal/redact"
	"github.com/supportbridge/supportbridge/internal/secret"
)

// A log line leaves the service only through a Redactor. Secrets always go (the redact
// package finds them); personal data, unless the customer allowed it, becomes a pseudonym
// such as "[email:3f9a1c2b]": the same address gives the same pseudonym throughout one
// grant, so support can still follow one user through the logs, but the pseudonym is an
// HMAC under the grant's key, so it cannot be looked up, and differs in the next grant.
//
// Like redact, detection is hand-written: each rule waits for a cheap trigger byte ('@',
// ':', '.', one byte in 24 for hex ids) found with IndexByte, and only then looks at the
// bytes around it.

// Kinds of personal data, as they appear in pseudonyms and in Counts.
const (
	kindEmail piiKind = iota
	kindIP
	kindAccount
	kindName
	kindPhone
	kindAddress
	numKinds
	noKind = numKinds
)

// piiKind is a kind of personal data; a number rather than its name, so that a span of it
// holds no pointer and counts and caches are arrays.
type piiKind uint8

var kindNames = [numKinds]string{"email", "ip", "account", "name", "phone", "address"}

func (k piiKind) String() string { return kindNames[k] }

// personalKind returns the kind of personal data held under a JSON key, lower-cased and
// without '_' and '-', or noKind.
func personalKind(key string) piiKind {
	switch key {
	case "name", "firstname", "lastname", "displayname", "fullname", "givenname", "familyname",
		"surname", "username", "nickname", "author", "reporter", "assignee":
		return kindName
	case "email", "emailaddress", "mail", "useremail":
		return kindEmail
	case "phone", "phonenumber", "mobile", "mobilephone", "tel", "telephone", "fax":
		return kindPhone
	case "address", "streetaddress", "street", "city", "zip", "zipcode", "postcode",
		"postalcode", "addressline1", "addressline2":
		return kindAddress
	case "ip", "ipaddress", "clientip", "remoteip", "remoteaddr", "remoteaddress",
		"xforwardedfor", "sourceip":
		return kindIP
	case "accountid", "atlassianaccountid", "userid", "useraccountid":
		return kindAccount
	}
	return noKind
}

// maxKeyLen is the longest key personalKeys can match after normalising.
const maxKeyLen = 24

// maxCache bounds the pseudonym cache; it is cleared when full, which only costs HMACs.
const maxCache = 4096

// maxCachedValue is the longest value the cache keeps: a value under a personal key can be
// as long as a record, and 4096 of those would hold gigabytes. Longer values, which do not
// repeat the way addresses and ids do, are hashed each time.
const maxCachedValue = 256

// RedactorOptions configures the Redactor of one grant.
type RedactorOptions struct {
	// GrantKey keys the pseudonyms; each grant has its own, so that pseudonyms cannot be
	// joined across grants. At least 16 bytes unless PersonalData is set.
	GrantKey secret.Secret
	// SharedSecret is the tenant's Connect shared secret, removed wherever it appears.
	SharedSecret secret.Secret
	// PersonalData is set when the customer allowed personal data: then only secrets go.
	PersonalData bool
}

// Redactor scrubs the records read under one grant and counts what it replaced. It keeps
// scratch buffers and a pseudonym cache, so it is not safe for concurrent use.
type Redactor struct {
	scrub        *redact.Scrubber
	pseudonymise bool
	mac          hash.Hash
	// counts are the replacements of each kind of personal data.
	counts [numKinds]int
	// cache holds the digests of the pseudonyms made so far, one map per kind, so that a
	// look-up hashes only the value; cached counts their entries, whose keys are cut from
	// keys.
	cache  [numKinds]map[string]digest
	cached int
	keys   arena
	spans  []piiSpan
	out    []byte
	texts  arena
	sum    []byte
	norm   []byte
}

// piiSpan is a byte range of personal data; quote is set for a JSON number that becomes a
// (quoted) pseudonym, so that the document stays valid JSON.
type piiSpan struct {
	start, end int
	kind       piiKind
	quote      bool
}

// NewRedactor returns the Redactor for one grant.
func NewRedactor(opts RedactorOptions) (*Redactor, error) {
	r := &Redactor{
		pseudonymise: !opts.PersonalData,
	}
	var secrets []string
	if !opts.SharedSecret.IsZero() {
		secrets = []string{opts.SharedSecret.Reveal()}
	}
	// Email addresses are left to the pseudonymiser, or kept when personal data is allowed.
	r.scrub = redact.New(redact.Options{Secrets: secrets, KeepEmails: true})
	if r.pseudonymise {
		key := opts.GrantKey.Bytes()
		if len(key) < 16 {
			return nil, errors.New("logstore: grant key shorter than 16 bytes")
		}
		r.mac = hmac.New(sha256.New, key)
		for i := range r.cache {
			r.cache[i] = make(map[string]digest)
		}
	}
	return r, nil
}

// Counts reports how many values of each kind were replaced so far: redact's rule names
// ("secret_key", "jwt", …) and the kinds of personal data ("email", "ip", "account",
// "name", "phone", "address").
func (r *Redactor) Counts() map[string]int {
	m := r.scrub.Counts()
	for i, n := range r.counts {
		if n > 0 {
			m[kindNames[i]] += n
		}
	}
	return m
}

// Record returns rec with its text redacted.
func (r *Redactor) Record(rec Record) Record {
	rec.Text = r.String(rec.Text)
	return rec
}

// String returns text with secrets removed and, unless allowed, personal data replaced by
// pseudonyms.
func (r *Redactor) String(text string) string {
	// Secrets go first, so that they never reach the HMAC and a personal-data value that
	// holds a secret is already "[redacted]" when it is looked at.
	s := r.scrub.String(text)
	if !r.pseudonymise {
		return s
	}
	r.spans = r.spans[:0]
	r.findColons(s)
	r.findEmails(s)
	r.findIPv4(s)
	r.findHexIDs(s)
	if len(r.spans) == 0 {
		return s
	}
	return r.replace(s)
}

// replace writes s with every span replaced by its pseudonym. Where spans overlap, the one
// that starts first wins, and of two that start together the longer: a JSON value under a
// personal key covers the address inside it.
func (r *Redactor) replace(s string) string {
	byStart := func(a, b piiSpan) int {
		if a.start != b.start {
			return a.start - b.start
		}
		return b.end - a.end
	}
	// Each finder records its spans in order, so a line with one kind is sorted already.
	if !slices.IsSortedFunc(r.spans, byStart) {
		slices.SortStableFunc(r.spans, byStart)
	}
	r.out = r.out[:0]
	last := 0
	for _, sp := range r.spans {
		if sp.start < last {
			continue
		}
		r.out = append(r.out, s[last:sp.start]...)
		if sp.quote {
			r.out = append(r.out, '"')
		}
		r.out = r.appendPseudonym(r.out, sp.kind, s[sp.start:sp.end])
		if sp.quote {
			r.out = append(r.out, '"')
		}
		r.counts[sp.kind]++
		last = sp.end
	}
	r.out = append(r.out, s[last:]...)
	return r.texts.string(r.out)
}

// digest is the hex part of a pseudonym.
type digest [8]byte

// appendPseudonym appends "[kind:xxxxxxxx]": the first 8 hex digits of HMAC-SHA256 under
// the grant key of kind, a NUL, and the normalised value.
func (r *Redactor) appendPseudonym(dst []byte, kind piiKind, value string) []byte {
	slot := r.cache[kind]
	h, ok := slot[value]
	if !ok {
		r.norm = append(append(r.norm[:0], kind.String()...), 0)
		r.norm = normalise(r.norm, kind, value)
		r.mac.Reset()
		r.mac.Write(r.norm)
		r.sum = r.mac.Sum(r.sum[:0])
		hex.Encode(h[:], r.sum[:4])
		if len(value) <= maxCachedValue {
			if r.cached >= maxCache {
				for _, m := range r.cache {
					clear(m)
				}
				r.cached = 0
			}
			// Copied: the value is a slice of a whole record, which the cache must not
			// keep alive.
			slot[r.keys.cut(value)] = h
			r.cached++
		}
	}
	dst = append(dst, '[')
	dst = append(dst, kind.String()...)
	dst = append(dst, ':')
	dst = append(dst, h[:]...)
	return append(dst, ']')
}

// normalise maps the spellings of one value to one form, so that they share a pseudonym:
// case is ignored everywhere, an IP address is written canonically, and a phone number is
// only its digits.
func normalise(dst []byte, kind piiKind, v string) []byte {
	v = strings.TrimSpace(v)
	switch kind {
	case kindIP:
		if a, err := netip.ParseAddr(v); err == nil {
			return a.Unmap().AppendTo(dst)
		}
	case kindPhone:
		for i := 0; i < len(v); i++ {
			if isDigitByte(v[i]) {
				dst = append(dst, v[i])
			}
		}
		return dst
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		dst = append(dst, c)
	}
	return dst
}

func (r *Redactor) add(start, end int, kind piiKind, quote bool) {
	r.spans = append(r.spans, piiSpan{start: start, end: end, kind: kind, quote: quote})
}

// findColons handles what a colon starts or sits in: a JSON key naming personal data, a
// legacy Atlassian account id ("557058:" and a UUID), an IPv6 address.
func (r *Redactor) findColons(s string) {
	for i := 0; ; {
		j := strings.IndexByte(s[i:], ':')
		if j < 0 {
			return
		}
		c := i + j
		i = c + 1
		if c > 0 && s[c-1] == '"' || c > 1 && s[c-1] == ' ' && s[c-2] == '"' {
			if end := r.jsonValue(s, c); end > 0 {
				i = end
				continue
			}
		}
		if end := r.legacyAccountID(s, c); end > 0 {
			i = end
			continue
		}
		if end := r.ipv6(s, c); end > 0 {
			i = end
		}
	}
}

// jsonValue looks at the key before the colon at c and, if it names personal data, records
// its string or number value; it returns where the value ends, or 0.
func (r *Redactor) jsonValue(s string, c int) int {
	k := c - 1
	for s[k] == ' ' {
		k--
	}
	// s[k] is the key's closing quote; keys are short and unescaped.
	ks := strings.LastIndexByte(s[max(0, k-maxKeyLen-8):k], '"')
	if ks < 0 {
		return 0
	}
	ks += max(0, k-maxKeyLen-8) + 1
	var buf [maxKeyLen]byte
	n := 0
	for _, b := range []byte(s[ks:k]) {
		switch {
		case b == '_' || b == '-':
			continue
		case n == len(buf):
			return 0
		case b >= 'A' && b <= 'Z':
			b += 'a' - 'A'
		}
		buf[n] = b
		n++
	}
	kind := personalKind(string(buf[:n]))
	if kind == noKind {
		return 0
	}
	v := c + 1
	for v < len(s) && (s[v] == ' ' || s[v] == '\t') {
		v++
	}
	if v >= len(s) {
		return 0
	}
	switch b := s[v]; {
	case b == '"':
		end := jsonStringEnd(s, v+1)
		if end < 0 {
			return 0
		}
		val := s[v+1 : end]
		if val == "" || isMarker(val) {
			return end
		}
		r.add(v+1, end, kind, false)
		return end + 1
	case isDigitByte(b) || b == '+' || b == '-':
		end := v + 1
		for end < len(s) && (isDigitByte(s[end]) || s[end] == '.') {
			end++
		}
		r.add(v, end, kind, true)
		return end
	}
	return 0
}

// isMarker reports a value another rule already replaced.
func isMarker(v string) bool {
	return v == "[redacted]" || v == "[email]"
}

// jsonStringEnd returns the index of the quote that closes the JSON string starting at i,
// or -1.
func jsonStringEnd(s string, i int) int {
	for {
		j := strings.IndexByte(s[i:], '"')
		if j < 0 {
			return -1
		}
		q := i + j
		bs := 0
		for k := q - 1; k >= i && s[k] == '\\'; k-- {
			bs++
		}
		if bs%2 == 0 {
			return q
		}
		i = q + 1
	}
}

// legacyAccountID records "557058:f58131cb-b67d-43c7-b30d-6b58d40bd077" around the colon at
// c and returns its end, or 0.
func (r *Redactor) legacyAccountID(s string, c int) int {
	const uuidLen = 36
	if c < 6 || c+1+uuidLen > len(s) || (c > 6 && isWordByte(s[c-7])) {
		return 0
	}
	for k := c - 6; k < c; k++ {
		if !isDigitByte(s[k]) {
			return 0
		}
	}
	u := s[c+1 : c+1+uuidLen]
	for k := 0; k < uuidLen; k++ {
		if k == 8 || k == 13 || k == 18 || k == 23 {
			if u[k] != '-' {
				return 0
			}
		} else if !isHexByte(u[k]) {
			return 0
		}
	}
	end := c + 1 + uuidLen
	if end < len(s) && isWordByte(s[end]) {
		return 0
	}
	r.add(c-6, end, kindAccount, false)
	return end
}

// ipv6 records the IPv6 address whose colon is at c and returns its end, or 0. Times
// ("15:01:06") and MAC addresses share the alphabet; netip decides, after a cheap filter
// that turns away nearly all of them.
func (r *Redactor) ipv6(s string, c int) int {
	// Each side of an address's colon is a hex digit or another colon.
	if c == 0 || c+1 >= len(s) || !isHexByte(s[c-1]) && s[c-1] != ':' || !isHexByte(s[c+1]) && s[c+1] != ':' {
		return 0
	}
	// A group has at most four digits, and a word byte before the address ("T15:04") means
	// it is not one; both are checked before the costlier walk forward.
	st := c
	for st > 0 && c-st < 5 && isHexByte(s[st-1]) {
		st--
	}
	if st > 0 && s[st-1] != ':' && s[st-1] != '.' && isWordByte(s[st-1]) {
		return 0
	}
	for st > 0 && c-st < 45 && (isHexByte(s[st-1]) || s[st-1] == ':' || s[st-1] == '.') {
		st--
	}
	en := c + 1
	for en < len(s) && en-c < 45 && (isHexByte(s[en]) || s[en] == ':' || s[en] == '.') {
		en++
	}
	for en > c+1 && s[en-1] == '.' {
		en-- // a full stop after the address
	}
	if st > 0 && isWordByte(s[st-1]) || en < len(s) && isWordByte(s[en]) {
		return 0
	}
	cand := s[st:en]
	colons := strings.Count(cand, ":")
	if colons < 2 || colons < 7 && !strings.Contains(cand, "::") || len(cand) < 3 {
		return 0
	}
	a, err := netip.ParseAddr(cand)
	if err != nil || !a.Is6() || a.IsUnspecified() {
		return 0
	}
	r.add(st, en, kindIP, false)
	return en
}

// findEmails records addresses: a local part, '@', and a domain with an alphabetic top-level
// label (which "pkg@1.2.3" and "user@localhost" lack).
func (r *Redactor) findEmails(s string) {
	for i := 0; ; {
		j := strings.IndexByte(s[i:], '@')
		if j < 0 {
			return
		}
		at := i + j
		i = at + 1
		ls := at
		for ls > 0 && at-ls < 64 && isLocalByte(s[ls-1]) {
			ls--
		}
		for ls < at && s[ls] == '.' {
			ls++
		}
		if ls == at {
			continue
		}
		de := at + 1
		for de < len(s) && de-at < 255 && (isAlnumByte(s[de]) || s[de] == '-' || s[de] == '.') {
			de++
		}
		for de > at+1 && (s[de-1] == '.' || s[de-1] == '-') {
			de--
		}
		dot := strings.LastIndexByte(s[at+1:de], '.')
		if dot <= 0 || !isAlnumByte(s[at+1]) {
			continue
		}
		if tld := s[at+1+dot+1 : de]; len(tld) < 2 || !allAlpha(tld) {
			continue
		}
		r.add(ls, de, kindEmail, false)
		i = de
	}
}

// findIPv4 records dotted quads (each part at most 255) that are not part of a longer
// dotted number such as a version or an OID.
func (r *Redactor) findIPv4(s string) {
	for i := 0; ; {
		j := strings.IndexByte(s[i:], '.')
		if j < 0 {
			return
		}
		d := i + j
		i = d + 1
		if d == 0 || !isDigitByte(s[d-1]) {
			continue
		}
		st := d - 1
		for st > 0 && d-st < 3 && isDigitByte(s[st-1]) {
			st--
		}
		if st > 0 && (isWordByte(s[st-1]) || s[st-1] == '.') {
			continue
		}
		end, ok := dottedQuad(s, st)
		if !ok {
			continue
		}
		r.add(st, end, kindIP, false)
		i = end
	}
}

// dottedQuad parses four dot-separated numbers of up to three digits, each at most 255,
// starting at i, and returns their end.
func dottedQuad(s string, i int) (int, bool) {
	for part := range 4 {
		if part > 0 {
			if i >= len(s) || s[i] != '.' {
				return 0, false
			}
			i++
		}
		v, n := 0, 0
		for i < len(s) && n < 4 && isDigitByte(s[i]) {
			v = v*10 + int(s[i]-'0')
			i++
			n++
		}
		if n == 0 || n > 3 || v > 255 {
			return 0, false
		}
	}
	if i < len(s) && (isWordByte(s[i]) || s[i] == '.' && i+1 < len(s) && isDigitByte(s[i+1])) {
		return 0, false
	}
	return i, true
}

// findHexIDs records Atlassian account ids of 24 lower-case hex digits. Such an id covers 24
// consecutive bytes, so looking at every 24th byte is enough to land in each.
func (r *Redactor) findHexIDs(s string) {
	const n = 24
	for i := n - 1; i < len(s); {
		if !isLowerHexByte(s[i]) {
			i += n
			continue
		}
		en := i + 1
		for en < len(s) && en-i < n && isLowerHexByte(s[en]) {
			en++
		}
		// A run of exactly n through i starts at en-n: check its two ends before walking
		// back over it.
		if st := en - n; st >= 0 && en-i < n && (en == len(s) || !isWordByte(s[en])) &&
			(st == 0 || !isWordByte(s[st-1])) && isLowerHexByte(s[st]) && allLowerHex(s[st:i]) && mixedHex(s[st:en]) {
			r.add(st, en, kindAccount, false)
		}
		for en < len(s) && isLowerHexByte(s[en]) {
			en++
		}
		i = en + n - 1
	}
}

// mixedHex reports whether an id has both digits and letters, as real ids do and words
// and long numbers do not.
func mixedHex(s string) bool {
	var digit, letter bool
	for i := 0; i < len(s); i++ {
		if isDigitByte(s[i]) {
			digit = true
		} else {
			letter = true
		}
	}
	return digit && letter
}

// Byte classes, looked up in one table because the scanners test most bytes of the logs.
const (
	cDigit    uint8 = 1 << iota // 0-9
	cLowerHex                   // 0-9 a-f
	cHex                        // 0-9 a-f A-F
	cAlpha                      // A-Z a-z
	cWord                       // A-Z a-z 0-9 _
	cLocal                      // an email local part: A-Z a-z 0-9 . _ % + -
)

// byteClasses is immutable after package initialisation.
var byteClasses = func() (t [256]uint8) {
	set := func(c uint8, chars string) {
		for i := range len(chars) {
			t[chars[i]] |= c
		}
	}
	const (
		upper  = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
		lower  = "abcdefghijklmnopqrstuvwxyz"
		digits = "0123456789"
	)
	set(cDigit, digits)
	set(cLowerHex, digits+"abcdef")
	set(cHex, digits+"abcdefABCDEF")
	set(cAlpha, upper+lower)
	set(cWord, upper+lower+digits+"_")
	set(cLocal, upper+lower+digits+"._%+-")
	return t
}()

func isDigitByte(c byte) bool    { return byteClasses[c]&cDigit != 0 }
func isLowerHexByte(c byte) bool { return byteClasses[c]&cLowerHex != 0 }
func isHexByte(c byte) bool      { return byteClasses[c]&cHex != 0 }
func isAlphaByte(c byte) bool    { return byteClasses[c]&cAlpha != 0 }
func isAlnumByte(c byte) bool    { return byteClasses[c]&(cAlpha|cDigit) != 0 }
func isWordByte(c byte) bool     { return byteClasses[c]&cWord != 0 }
func isLocalByte(c byte) bool    { return byteClasses[c]&cLocal != 0 }

func allLowerHex(s string) bool {
	for i := 0; i < len(s); i++ {
		if !isLowerHexByte(s[i]) {
			return false
		}
	}
	return true
}

func allAlpha(s string) bool {
	for i := 0; i < len(s); i++ {
		if !isAlphaByte(s[i]) {
			return false
		}
	}
	return true
}

package redact

import "strings"

// Every finder below records spans on the Scrubber and never edits the text: String merges
// overlapping spans and applies them once, and settle rechecks the lines that changed. Every
// rule but private keys stops at a line break, which is what lets settle work line by line.

// scan is the one pass over every byte. Bytes that cannot start anything are skipped eight
// at a time; at the rest, the rule the byte may trigger looks at the bytes around it.
// Separators ('=', ':') may end a secret-named key or start a URL's "://"; 'B' and 'J', in
// either case, may start a PEM "-----BEGIN", a JWT's "eyJ" or an authentication scheme;
// '_', '-' and '.' may end a vendor token's prefix ("ghp_", "glpat-", "SG.") and '-' may
// start a command-line flag; 'A' may start "AKIA", "AIza" or "ATBB", and '~' may be the
// marker of an Azure AD client secret. Searching for each of
// those with strings.Index would cost a pass each, and for prefixes that start with a
// common byte ("eyJ", "bearer") more than this whole loop. Digits, a third of a typical log,
// are left to findCards, which reads only one byte in 13.
//
// The separators are in most blocks of eight bytes of a log (dates, UUIDs, host names), so
// the skip ORs eight table reads rather than testing for zero bytes in a word, which needed
// a test per trigger byte; and a separator is passed over inline unless the two bytes before
// it end a known prefix.
func (s *Scrubber) scan(in string) {
	for i := 0; i < len(in); {
		// Eight bytes at a time while none of them can be a trigger.
		for i+8 <= len(in) {
			_ = in[i+7]
			if triggers[in[i]]|triggers[in[i+1]]|triggers[in[i+2]]|triggers[in[i+3]]|
				triggers[in[i+4]]|triggers[in[i+5]]|triggers[in[i+6]]|triggers[in[i+7]] != 0 {
				break
			}
			i += 8
		}
		for i < len(in) && triggers[in[i]] == 0 {
			i++
		}
		if i == len(in) {
			return
		}
		switch c := in[i]; c {
		case '=', ':':
			i = s.keyValue(in, i)
		case '_', '-', '.':
			switch {
			case c == '-' && (i == 0 || in[i-1] == ' ' || in[i-1] == '\t' || in[i-1] == '\n'):
				i = s.flag(in, i)
			case i >= 2 && mayEndPrefix(in, i):
				i = s.separator(in, i)
			default:
				i++
			}
		case '~':
			i = s.azureSecret(in, i)
		case 'A':
			if i > 0 && isAlnum(in[i-1]) {
				i++ // inside a word, as in "WARN"
				continue
			}
			i = s.upperA(in, i)
		default: // 'B', 'b', 'J', 'j'
			if (c == 'b' || c == 'j') && i > 0 && isAlnum(in[i-1]) {
				i++ // inside a word, as in every hex id: the common case, kept inline
				continue
			}
			i = s.letter(in, i)
		}
	}
}

// triggers are the bytes at which scan stops (1) or not (0); bytes rather than bools, so that
// eight lookups combine with OR into one test.
var triggers = func() (t [256]uint8) {
	for c := range 256 {
		if is(byte(c), cTrigger) {
			t[c] = 1
		}
	}
	return t
}()

// letter handles a 'B', 'b', 'J' or 'j': a PEM "-----BEGIN", the "J" of a JWT's "eyJ", or
// an authentication scheme.
func (s *Scrubber) letter(in string, i int) int {
	switch {
	case in[i] == 'J' && i >= 2 && in[i-2] == 'e' && in[i-1] == 'y':
		// On failure too, the run of base64url is skipped: an "eyJ" later in the same run
		// would fail the same way, and trying each would be quadratic.
		return s.jwt(in, i-2)
	case in[i] == 'B' && i >= len(pemDash) && in[i-len(pemDash):i] == pemDash && strings.HasPrefix(in[i:], "BEGIN "):
		return s.privateKey(in, i-len(pemDash))
	}
	if i > 0 && (isAlnum(in[i-1]) || in[i-1] == '_') {
		return i + 1
	}
	for _, w := range schemeWords {
		if hasPrefixFold(in[i:], w) {
			return s.scheme(in, i+len(w), w == "jwt")
		}
	}
	return i + 1
}

const (
	pemBegin = "-----BEGIN "
	pemEnd   = "-----END "
	pemDash  = "-----"
	// pemMaxBody bounds how far a private key may run: large enough for any real key block,
	// small enough that a truncated key cannot swallow the rest of a long log.
	pemMaxBody = 64 << 10
)

// privateKey removes a PEM private key block of any flavour (RSA, EC, DSA, PKCS#8,
// encrypted, OpenSSH, PGP) starting at b: whatever the label, it contains "PRIVATE KEY".
// Certificates and public keys are public and stay.
func (s *Scrubber) privateKey(in string, b int) int {
	ls := b + len(pemBegin)
	le := pemLabelEnd(in, ls)
	if le < 0 || !strings.Contains(in[ls:le], "PRIVATE KEY") {
		return ls
	}
	end := pemBlockEnd(in, le+len(pemDash))
	s.add(b, end, kindPrivateKey)
	return end
}

// pemLabelEnd returns the index of the "-----" closing a PEM label, or -1.
func pemLabelEnd(in string, from int) int {
	for k := from; k < len(in) && k-from < 80; k++ {
		switch in[k] {
		case '-':
			if strings.HasPrefix(in[k:], pemDash) {
				return k
			}
			return -1
		case '\n', '\r':
			return -1
		}
	}
	return -1
}

// pemBlockEnd finds the end of a private key body starting at body: just past its END line
// when there is one nearby, otherwise past the base64 that follows (a log line cut short).
func pemBlockEnd(in string, body int) int {
	// Only the next "-----" that starts a BEGIN or END line matters: looking further would
	// make a run of BEGIN lines quadratic.
	lim := min(len(in), body+pemMaxBody)
	for k := body; k < lim; {
		j := strings.Index(in[k:lim], pemDash)
		if j < 0 {
			break
		}
		k += j
		if strings.HasPrefix(in[k:], pemBegin) {
			break
		}
		if strings.HasPrefix(in[k:], pemEnd) {
			ls := k + len(pemEnd)
			if le := pemLabelEnd(in, ls); le >= 0 && strings.Contains(in[ls:le], "PRIVATE KEY") {
				return le + len(pemDash)
			}
			break
		}
		k++
	}
	return pemTruncatedEnd(in, body)
}

// pemTruncatedEnd consumes base64 words separated by white space or escaped newlines ("\n"
// inside a JSON string). It errs on the side of taking a following base64-looking word too.
func pemTruncatedEnd(in string, body int) int {
	end := body
	lim := min(len(in), body+pemMaxBody)
	for k := body; k < lim; {
		c := in[k]
		switch {
		case is(c, cSpace):
			k++
		case c == '\\' && k+1 < lim && (in[k+1] == 'n' || in[k+1] == 'r'):
			k += 2
		case is(c, cB64Std):
			for k < lim && is(in[k], cB64Std) {
				k++
			}
			end = k
		default:
			return end
		}
	}
	return end
}

// jwt records a JSON Web Token (or a five-part JWE) starting at p: a base64url header that,
// being JSON, always starts with "eyJ", then a payload and a signature. It returns where
// scanning goes on.
func (s *Scrubber) jwt(in string, p int) int {
	e1 := scanClass(in, p, cB64URL)
	if e1-p < 10 || e1 >= len(in) || in[e1] != '.' {
		return e1
	}
	e2 := scanClass(in, e1+1, cB64URL)
	if e2-e1-1 < 2 || e2 >= len(in) || in[e2] != '.' {
		return e1
	}
	end := scanClass(in, e2+1, cB64URL)
	for range 2 { // JWE: encrypted key, iv, ciphertext, tag
		if end+1 < len(in) && in[end] == '.' && is(in[end+1], cB64URL) {
			end = scanClass(in, end+1, cB64URL)
		}
	}
	s.add(p, end, kindJWT)
	return end
}

// findAtlassianTokens records Atlassian API tokens, which identify themselves by prefix:
// "ATATT3" for API tokens, "ATCTT3" for organisation admin API keys. The search is for their
// 'A', which is rare in logs; 'T' is in every ISO time.
func (s *Scrubber) findAtlassianTokens(in string) {
	for i := 0; ; {
		j := strings.IndexByte(in[i:], 'A')
		if j < 0 {
			return
		}
		p := i + j
		i = p + 1
		if p+6 > len(in) || in[p+1] != 'T' || in[p+2] != 'A' && in[p+2] != 'C' || in[p+3:p+6] != "TT3" {
			continue
		}
		end := p + 6
		for end < len(in) && (is(in[end], cB64URL) || in[end] == '=') {
			end++
		}
		if end-(p+6) >= 8 { // a mention of the prefix in documentation stays
			s.add(p, end, kindAtlassianToken)
		}
		i = end
	}
}

// urlCredentials removes the userinfo of the URL whose authority starts at a, just after
// "://". The '@' it used is remembered so that findEmails does not read "pass@host" as an
// address.
func (s *Scrubber) urlCredentials(in string, a int) {
	at := -1
	for k := a; k < len(in) && k-a < 512 && !is(in[k], cTermAuth); k++ {
		if in[k] == '@' {
			at = k // the last '@': a password may contain an unencoded '@'
		}
	}
	if at > a && in[a:at] != marker {
		s.add(a, at, kindURLCredentials)
		s.atSkip = append(s.atSkip, at)
	}
	s.webhook(in, max(a, at+1))
}

// findEmails replaces addresses other than the reporter's, also when percent-encoded
// ("bob%40example.com" in a query string).
func (s *Scrubber) findEmails(in string) {
	skip := s.atSkip // ascending, as urlCredentials found them
	for i := 0; ; {
		j := strings.IndexByte(in[i:], '@')
		if j < 0 {
			break
		}
		p := i + j
		i = p + 1
		for len(skip) > 0 && skip[0] < p {
			skip = skip[1:]
		}
		if len(skip) > 0 && skip[0] == p {
			continue
		}
		s.email(in, p, p+1)
	}
	for i := 0; ; {
		j := strings.Index(in[i:], "%40")
		if j < 0 {
			break
		}
		p := i + j
		i = p + 3
		s.email(in, p, p+3)
	}
}

// email checks for an address whose local part ends at at and whose domain starts at dom.
func (s *Scrubber) email(in string, at, dom int) {
	ls := at
	for ls > 0 && at-ls < 256 && is(in[ls-1], cLocal) {
		ls--
	}
	for ls < at && in[ls] == '.' {
		ls++
	}
	if ls == at {
		return
	}
	de := dom
	for de < len(in) && de-dom < 256 && is(in[de], cDomain) {
		de++
	}
	for de > dom && (in[de-1] == '.' || in[de-1] == '-') {
		de--
	}
	if de == dom || !isAlnum(in[dom]) {
		return
	}
	dot := strings.LastIndexByte(in[dom:de], '.')
	if dot <= 0 {
		return // "user@localhost" or a package version: not an address anyone reads
	}
	tld := in[dom+dot+1 : de]
	if len(tld) < 2 || scanClass(tld, 0, cAlpha) != len(tld) {
		return // "pkg@1.2.3"
	}
	if s.isKeptEmail(in[ls:at], in[dom:de]) {
		return
	}
	s.add(ls, de, kindEmail)
}

func (s *Scrubber) isKeptEmail(local, domain string) bool {
	if s.keepEmails {
		return true
	}
	k := s.keepEmail
	return len(k) == len(local)+1+len(domain) && k[len(local)] == '@' &&
		strings.EqualFold(k[:len(local)], local) && strings.EqualFold(k[len(local)+1:], domain)
}

// The credentials that travel behind these words outside an Authorization header, as in a
// log line "calling jira with Bearer abc…".
var schemeWords = [...]string{"bearer", "basic", "jwt"}

// scheme records the credential after a bare "Bearer", "Basic" or "JWT" that ends at i. In
// prose those words are common ("Basic authentication failed"), so the next word must look
// like a credential, unlike after an Authorization key, where anything goes.
func (s *Scrubber) scheme(in string, i int, jwt bool) int {
	cs := i
	for cs < len(in) && cs-i < 4 && isBlank(in[cs]) {
		cs++
	}
	if cs == i {
		return i
	}
	ce := cs
	for ce < len(in) && isToken68(in[ce]) {
		ce++
	}
	if looksLikeCredential(in[cs:ce], jwt) {
		s.add(cs, ce, kindAuthorization)
	}
	return cs
}

// isToken68 is RFC 7235's credential alphabet.
func isToken68(c byte) bool {
	return isAlnum(c) || c == '-' || c == '.' || c == '_' || c == '~' || c == '+' || c == '/' || c == '='
}

// looksLikeCredential separates "Bearer 9f8e7d6c…" and "Basic dXNlcjpwYXNz" from "Basic
// authentication": a credential is at least 8 characters and has a digit, base64
// punctuation, an upper-case letter after the first, or 20 characters. A credential after
// "JWT" has the two dots of a JWS.
func looksLikeCredential(c string, jwt bool) bool {
	if len(c) < 8 {
		return false
	}
	if jwt {
		return strings.Count(c, ".") >= 2
	}
	if strings.Contains(strings.TrimRight(c, "="), "=") {
		return false // "token_type=Bearer expires_in=3599": the next field, not a credential
	}
	if len(c) >= 20 || strings.ContainsAny(c, "0123456789=+/") {
		return true
	}
	hasLower := false
	innerUpper := false
	for i := range len(c) {
		switch {
		case isLower(c[i]):
			hasLower = true
		case isUpper(c[i]) && i > 0:
			innerUpper = true
		}
	}
	return hasLower && innerUpper
}

// scanClass returns the end of the run of class bytes that starts at i.
func scanClass(in string, i int, class uint16) int {
	for i < len(in) && is(in[i], class) {
		i++
	}
	return i
}

// keyValue handles the separator at p: if the key before it names a secret, the value after
// it is recorded. It returns where scanning goes on.
func (s *Scrubber) keyValue(in string, p int) int {
	next := p + 1
	sep := in[p]
	if p+1 < len(in) {
		if n := in[p+1]; n == sep || n == '>' || sep == ':' && n == '=' {
			return p + 2 // "==" (base64 padding, comparisons), "=>", "::", ":="
		}
		if sep == ':' && strings.HasPrefix(in[p+1:], "//") {
			s.urlCredentials(in, p+3)
			return p + 3
		}
	}
	if p > 0 {
		if c := in[p-1]; c == '!' || c == '<' || c == '>' || c == sep {
			return next
		}
		if sep == ':' && isDigit(in[p-1]) && p+1 < len(in) {
			if isDigit(in[p+1]) {
				return next // a time of day or a host:port, the most common ':' in a log
			}
			if strings.HasPrefix(in[p+1:], "AA") && s.telegramToken(in, p) {
				return p + 36
			}
		}
	}

	// The key: unquoted, or in quotes as in JSON ("key": …), possibly escaped (\"key\": …).
	ke := p
	for ke > 0 && p-ke < 4 && isBlank(in[ke-1]) {
		ke--
	}
	spaced := ke < p
	if ke == 0 {
		return next
	}
	var key string
	var ks, before int // key start, index of the byte before the key (and its quote)
	quoted, maybe := false, false
	if q := in[ke-1]; q == '"' || q == '\'' {
		quoted = true
		ks = ke - 1
		for ks > 0 && ke-1-ks < 64 && in[ks-1] != q && in[ks-1] != '\n' {
			ks--
		}
		if ks == 0 || in[ks-1] != q {
			return next
		}
		key = strings.TrimSuffix(in[ks:ke-1], `\`)
		before = ks - 2
		maybe = mayBeSecretKey(key)
	} else {
		// mayBeSecretKey folded into the backward scan: this runs for every separator.
		// The first two steps look up trigrams with a non-letter in them, which are never
		// set, so no step needs a condition.
		ks = ke
		t, hit := uint(0), byte(0)
		for ks > 0 && ke-ks <= 64 && is(in[ks-1], cKey) {
			ks--
			t = uint(letterIndex[in[ks]])*27*27 + t/27
			hit |= trigrams[t/8] & (1 << (t % 8))
		}
		maybe = hit != 0
		if ke-ks > 64 {
			return next // a base64 blob with padding, not a key
		}
		key = in[ks:ke]
		before = ks - 1
	}
	if key == "" {
		return next
	}

	query := false
	if !quoted {
		if before >= 1 && in[before] == '/' && in[before-1] == '/' {
			return next // scheme://user:pass@ is urlCredentials' business
		}
		if sep == ':' && before >= 0 && in[before] == ':' && p+1 < len(in) && !isBlank(in[p+1]) {
			return next // a part of an ARN or URN: "arn:aws:secretsmanager:eu-west-1:…"
		}
		if before >= 0 && in[before] == '\\' && hasPrefixFold(key, "u0026") {
			key, query = key[5:], true // a JSON-escaped '&'
		} else if sep == '=' && before >= 0 {
			switch in[before] {
			case '?', '&':
				query = true
			case ';':
				query = strings.HasSuffix(in[:before], "&amp")
			}
		}
	}

	class := keyPlain
	if maybe {
		class = classifyWords(key)
	}
	if query && class == keyPlain && isQueryName(key) {
		class = keySecret
	}
	if class == keyPlain && !quoted && (isWord(key, "key") || isWord(key, "id")) {
		// "private key: …", "API key = …", "session id: …"
		if ks >= 2 && in[ks-1] == ' ' {
			ws := ks - 1
			for ws > 0 && ks-1-ws < 16 && is(in[ws-1], cAlpha) {
				ws--
			}
			if ws < ks-1 {
				class = classifyKey(in[ws:ke])
			}
		}
	}
	if class == keyPlain && isWord(key, "value") {
		switch {
		case quoted:
			class = namedByField(in, ks)
		case sep == '=':
			class = namedByAttribute(in, ks)
		default:
			class = namedByPreviousLine(in, ks)
		}
	}
	if class == keyPlain {
		return next
	}
	if sep == ':' && !quoted && !spaced && inURLAuthority(in, ks) {
		return next // "https://deploy-token-42:pass@host": urlCredentials takes the userinfo
	}

	v := p + 1
	if sep == ':' || spaced {
		// "key: value" and "key = value"; but "key= " with nothing is an empty value.
		for v < len(in) && isBlank(in[v]) {
			v++
		}
	}
	if v >= len(in) {
		return next
	}
	var vs, ve int
	var ok bool
	k := kindSecretKey
	switch {
	case class == keyAuthorization:
		vs, ve, ok = authValue(in, v)
		k = kindAuthorization
	case class == keyCookie:
		vs, ve, ok = lineValue(in, v)
	case !query && startsWithTokenScheme(in, v):
		// "auth: Bearer abc": the value ends at the blank after the scheme, which would
		// leave the credential itself to looksLikeCredential's guess.
		vs, ve, ok = authValue(in, v)
	default:
		vs, ve, ok = s.plainValue(in, v, query)
		ok = ok && !isHarmlessValue(in, vs, ve, key)
	}
	if !ok {
		return next
	}
	if query {
		k = kindURLQuery
	}
	// Scanning goes on after the value: what is inside it goes anyway, and looking again
	// from every separator inside a long value would make the scan quadratic.
	s.add(vs, ve, k)
	return max(next, ve)
}

// plainValue finds a value: quoted, bracketed (a JSON object or array, taken whole) or a run
// of bytes up to the next field delimiter. A value that already starts with the marker was
// scrubbed before and is left alone.
func (s *Scrubber) plainValue(in string, v int, query bool) (vs, ve int, ok bool) {
	if strings.HasPrefix(in[v:], marker) {
		return 0, 0, false
	}
	switch c := in[v]; {
	case c == '"' || c == '\'':
		return quotedValue(in, v+1, c)
	case c == '\\' && v+1 < len(in) && in[v+1] == '"':
		return escapedQuotedValue(in, v+2)
	case c == '$' && v+1 < len(in) && in[v+1] == '{':
		// "${DB_PASSWORD}" and "${{ secrets.TOKEN }}" are taken whole, so that a default
		// ("${DB_PASSWORD:-hunter2}") goes with them and a reference is judged whole.
		if e := strings.IndexAny(in[v:min(len(in), v+maxHarmless)], "}\n"); e > 0 && in[v+e] == '}' {
			e += v + 1
			if e < len(in) && in[e] == '}' {
				e++
			}
			return v, e, true
		}
	case !query && (c == '{' || c == '['):
		e := s.matchBracket(in, v)
		if e < 0 || e == v+2 {
			return 0, 0, false // multi-line or empty: the keys inside are scanned on their own
		}
		term := cTermValue
		for e < len(in) && !is(in[e], term) {
			e++
		}
		return v, e, true
	}
	term := cTermValue
	if query {
		term = cTermQuery
	}
	e := v
	for e < len(in) && !is(in[e], term) {
		e++
	}
	switch in[v:e] {
	case "", "null", "true", "false", "nil", "None", "undefined":
		return 0, 0, false
	}
	return v, e, true
}

// quotedValue returns the content of a string whose opening quote q ends just before from.
// An unterminated string runs to the end of the line.
func quotedValue(in string, from int, q byte) (vs, ve int, ok bool) {
	k := from
	for k < len(in) && in[k] != q && in[k] != '\n' {
		if in[k] == '\\' && k+1 < len(in) && in[k+1] != '\n' {
			k++
		}
		k++
	}
	k = min(k, len(in))
	if k == from || in[from:k] == marker {
		return 0, 0, false
	}
	return from, k, true
}

// escapedQuotedValue is quotedValue for JSON embedded in a JSON string: \"value\".
func escapedQuotedValue(in string, from int) (vs, ve int, ok bool) {
	k := from
	for k < len(in) && in[k] != '\n' && !strings.HasPrefix(in[k:], `\"`) {
		k++
	}
	if k == from || in[from:k] == marker {
		return 0, 0, false
	}
	return from, k, true
}

// matchBracket returns the index just past the bracket that closes the one at v, on the same
// line and within maxBracket bytes, or -1.
//
// A failed search remembers how far it looked: a bracket inside that stretch would be
// searched over the same bytes again, and a line of "token=[token=[…" would be quadratic.
// Giving up on such a bracket only means its key's value is left to the other rules.
func (s *Scrubber) matchBracket(in string, v int) int {
	if v < s.bracketFail {
		return -1
	}
	depth := 0
	k := v
	for ; k < len(in) && k-v < maxBracket; k++ {
		switch in[k] {
		case '{', '[':
			depth++
		case '}', ']':
			depth--
			if depth == 0 {
				return k + 1
			}
		case '"':
			for k++; k < len(in) && in[k] != '"' && in[k] != '\n'; k++ {
				if in[k] == '\\' {
					k++
				}
			}
			if k >= len(in) || in[k] == '\n' {
				s.bracketFail = k
				return -1
			}
		case '\n':
			s.bracketFail = k
			return -1
		}
	}
	s.bracketFail = k
	return -1
}

// maxBracket bounds a JSON object or array taken whole as a secret key's value.
const maxBracket = 16 << 10

// lineValue is a value that runs to the end of its line, like a Cookie header with its
// "a=b; c=d" pairs. In a JSON string the line ends at the escaped newline or closing quote.
func lineValue(in string, v int) (vs, ve int, ok bool) {
	if strings.HasPrefix(in[v:], marker) {
		return 0, 0, false
	}
	switch c := in[v]; {
	case c == '"' || c == '\'':
		return quotedValue(in, v+1, c)
	case c == '\\' && v+1 < len(in) && in[v+1] == '"':
		return escapedQuotedValue(in, v+2)
	}
	e := lineEnd(in, v)
	if e == v {
		return 0, 0, false
	}
	return v, e, true
}

// lineEnd returns the end of the line starting at v, without trailing blanks.
func lineEnd(in string, v int) int {
	e := v
	for e < len(in) && in[e] != '\n' && in[e] != '\r' && in[e] != '"' && in[e] != '\\' {
		e++
	}
	for e > v && isBlank(in[e-1]) {
		e--
	}
	return e
}

// authValue finds the credential in the value of an Authorization header that starts at v.
func authValue(in string, v int) (cs, ce int, ok bool) {
	if strings.HasPrefix(in[v:], marker) {
		return 0, 0, false
	}
	var rs, re int
	switch c := in[v]; {
	case c == '"' || c == '\'':
		rs, re, ok = quotedValue(in, v+1, c)
	case c == '\\' && v+1 < len(in) && in[v+1] == '"':
		rs, re, ok = escapedQuotedValue(in, v+2)
	default:
		// Parameters of Digest and the like are quoted, so only the line ends the value;
		// credential finds that end itself, and only when it needs it.
		rs, re, ok = v, len(in), true
	}
	if !ok {
		return 0, 0, false
	}
	return credential(in, rs, re)
}

// Schemes whose credential is a single token; after any other scheme (Digest, AWS4-HMAC-
// SHA256, OAuth) the credential is a list of parameters, so the rest of the value goes.
var tokenSchemes = [...]string{"bearer", "basic", "jwt", "token"}

func isTokenScheme(w string) bool {
	for _, t := range tokenSchemes {
		if strings.EqualFold(w, t) {
			return true
		}
	}
	return false
}

// startsWithTokenScheme reports whether a "bearer", "basic", "jwt" or "token" and a blank
// start at v.
func startsWithTokenScheme(in string, v int) bool {
	k := v
	for k < len(in) && k-v < 6 && is(in[k], cAlpha) {
		k++
	}
	return k < len(in) && isBlank(in[k]) && isTokenScheme(in[v:k])
}

// lineStop reports whether k ends an Authorization value that may run to the end of its
// line: the bound re, or a line break, raw or escaped inside a JSON string.
func lineStop(in string, k, re int) bool {
	return k >= re || in[k] == '\n' || in[k] == '\r' || in[k] == '\\' && k+1 < re && in[k+1] == 'n'
}

// credential finds the credential in an Authorization value that starts at rs and ends at re
// or at the end of its line, keeping the scheme so that support can still see how a request
// was authenticated.
func credential(in string, rs, re int) (cs, ce int, ok bool) {
	k := rs
	for k < re && (isAlnum(in[k]) || in[k] == '-' || in[k] == '_') {
		k++
	}
	if k > rs && k < re && isBlank(in[k]) && is(in[rs], cAlpha) {
		cs = k
		for cs < re && isBlank(in[cs]) {
			cs++
		}
		if lineStop(in, cs, re) || strings.HasPrefix(in[cs:re], marker) {
			return 0, 0, false
		}
		ce = cs
		if isTokenScheme(in[rs:k]) {
			// A quote ends the credential too: no token contains one, and in
			// -H "Authorization: Bearer …" it closes the header's argument.
			for ce < re && !is(in[ce], cSpace) && in[ce] != ',' && in[ce] != ';' && in[ce] != '"' && in[ce] != '\'' {
				ce++
			}
			if isPlaceholder(strings.TrimRight(in[cs:ce], `"'\`)) {
				return 0, 0, false // "Bearer $TOKEN", "Bearer <token>" in a how-to
			}
			return cs, ce, true
		}
		for !lineStop(in, ce, re) {
			ce++
		}
		for ce > cs && isBlank(in[ce-1]) {
			ce--
		}
		return cs, ce, true
	}
	if strings.HasPrefix(in[rs:re], marker) || lineStop(in, k, re) && isTokenScheme(in[rs:k]) {
		return 0, 0, false // already scrubbed, or a scheme without credential
	}
	ce = rs
	for ce < re && !is(in[ce], cSpace) && in[ce] != ',' && in[ce] != ';' {
		ce++
	}
	return rs, ce, ce > rs
}

// inURLAuthority reports whether the key starting at ks is inside the userinfo of a URL,
// just after its "://".
func inURLAuthority(in string, ks int) bool {
	k := ks
	for k > 0 && ks-k < 256 && !is(in[k-1], cTermAuth) {
		k--
	}
	return k >= 3 && in[k-3:k] == "://"
}

// namedByAttribute classifies the XML attribute value="…" whose name starts at ks by the
// name the element gives it in an earlier attribute, as Java and .NET configs do:
// <property name="password" value="…"/>, <add key="SmtpPassword" value="…"/>.
func namedByAttribute(in string, ks int) keyClass {
	ls := max(0, ks-256)
	line := in[ls:ks]
	if i := strings.LastIndexByte(line, '<'); i >= 0 {
		line = line[i:]
	} else {
		return keyPlain
	}
	for _, attr := range [...]string{` name="`, ` key="`} {
		i := strings.Index(line, attr)
		if i < 0 {
			continue
		}
		name := line[i+len(attr):]
		if j := strings.IndexByte(name, '"'); j >= 0 {
			return classifyKey(name[:j])
		}
	}
	return keyPlain
}

// namedByField classifies the JSON field "value" whose key (with its quote) starts at ks by
// a "name" or "key" field before it in the same object, as in Kubernetes' JSON and Postman's
// collections: {"name": "DB_PASSWORD", "value": "…"}, {"key": "token", "value": "…"}.
func namedByField(in string, ks int) keyClass {
	obj := in[max(0, ks-256):ks]
	i := strings.LastIndexByte(obj, '{')
	if i < 0 || strings.ContainsAny(obj[i:], "}\n") {
		return keyPlain
	}
	obj = obj[i:]
	for _, field := range [...]string{`"name"`, `"key"`} {
		j := strings.Index(obj, field)
		if j < 0 {
			continue
		}
		rest := strings.TrimLeft(obj[j+len(field):], " ")
		if rest, ok := strings.CutPrefix(rest, ":"); ok {
			rest = strings.TrimLeft(rest, " ")
			if rest, ok := strings.CutPrefix(rest, `"`); ok {
				if e := strings.IndexByte(rest, '"'); e >= 0 {
					return classifyKey(rest[:e])
				}
			}
		}
	}
	return keyPlain
}

// namedByPreviousLine classifies the YAML "value:" whose key starts at ks by the "name:" on
// the line before, as in a Kubernetes container's environment:
//
//   - name: DB_PASSWORD
//     value: …
func namedByPreviousLine(in string, ks int) keyClass {
	ls := strings.LastIndexByte(in[max(0, ks-256):ks], '\n')
	if ls < 0 || strings.TrimLeft(in[max(0, ks-256)+ls:ks], " \t\n-") != "" {
		return keyPlain // "value" is not the first key on its line
	}
	ls += max(0, ks-256)
	prev := in[max(0, ls-256):ls]
	prev = strings.TrimSpace(prev[strings.LastIndexByte(prev, '\n')+1:])
	name, ok := strings.CutPrefix(strings.TrimPrefix(prev, "- "), "name:")
	if !ok {
		return keyPlain
	}
	return classifyKey(strings.Trim(strings.TrimSpace(name), `"'`))
}

// findXMLElements records the content of XML elements with a secret name, as in a Maven
// settings.xml: <password>…</password>. Closing tags are what is searched for, because "</"
// is rare in a log and names the element right away.
func (s *Scrubber) findXMLElements(in string) {
	for i := 0; ; {
		j := strings.Index(in[i:], "</")
		if j < 0 {
			return
		}
		c := i + j
		i = c + 2
		ne := i
		for ne < len(in) && ne-i < 64 && is(in[ne], cKey) {
			ne++
		}
		if ne == i || ne >= len(in) || in[ne] != '>' || classifyKey(in[i:ne]) != keySecret {
			continue
		}
		name := in[i:ne]
		// The content runs back to the '>' of the opening tag, on the same line.
		gt := c - 1
		for gt >= 0 && c-gt <= 1024 && in[gt] != '>' && in[gt] != '<' && in[gt] != '\n' {
			gt--
		}
		if gt < 0 || in[gt] != '>' || gt < len(name)+1 || in[gt-len(name)-1] != '<' || in[gt-len(name):gt] != name {
			continue
		}
		vs, ve := gt+1, c
		if vs == ve || in[vs:ve] == marker || isHarmlessValue(in, vs, ve, name) {
			continue
		}
		s.add(vs, ve, kindSecretKey)
	}
}

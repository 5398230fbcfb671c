package redact

import "strings"

// keyClass says what a key's name implies about its value.
type keyClass uint8

const (
	keyPlain         keyClass = iota
	keySecret                 // the whole value is a secret
	keyCookie                 // a cookie header: the value runs to the end of the line
	keyAuthorization          // an Authorization header: keep the scheme, drop the credential
)

// Words that make a key secret wherever they occur in it, even inside a longer word
// ("sharedSecret", "db_password", "x-amz-credential").
var strongSubstrings = [...]string{"password", "passwd", "passphrase", "secret", "credential", "privatekey", "apikey"}

// Words that make a key secret only as its last word, the noun the key names: "accessToken"
// and "cloud.session.token" are secrets, "tokenCount", "sessionTimeout" and "authorName" are
// not. Matching whole words is also what lets "author", "authority", "authenticated" and
// "tokenizer" through: none of them is the word "auth" or "token".
var headWords = [...]string{
	"token", "jwt", "acpt", "auth", "session", "sessionid", "sessid", "jsessionid", "phpsessid",
	"csrf", "xsrf", "signature", "sig", "pwd", "creds",
}

// Qualifiers that turn a trailing "key" into a secret; a bare "key" is usually an issue or
// project key, and "public key" is public.
// "AccountKey" and "SharedAccessKey" are Azure's names for storage and Service Bus keys.
var keyQualifiers = [...]string{"api", "private", "secret", "signing", "encryption", "account", "access", "master"}

// Words that, after a strong word, make the key name something about a secret rather than
// the secret itself: "SECRET_PATH", "credentialsId", "passwordFile", "credential.helper",
// "client_secret_expires_at". An identifier ("id") is only a name here: Vault's secret_id is
// the exception, and its values are left to the other rules.
var metadataWords = [...]string{
	"id", "ids", "name", "names", "file", "path", "ref", "arn", "url", "uri", "type", "length",
	"len", "policy", "provider", "manager", "field", "label", "version", "variable", "var", "env",
	"property", "count", "expiry", "expiration", "expires", "expired", "age", "ttl", "rotation",
	"required", "enabled", "changed", "reset", "hint", "prompt", "strength", "regex", "pattern",
	"mode", "helper", "stdin", "source", "location", "min", "max", "at", "in", "days", "timeout",
	"format", "algorithm", "prefix", "suffix", "backend", "mount", "engine", "store",
	// Exception and error types name what went wrong, and are followed by a message:
	// "BadCredentialsException: 401", "InvalidPasswordError: too short".
	"exception", "error",
}

// Words before a trailing "token" that make it a position in a list or a handle, not a
// credential: "nextPageToken", "continuationToken", "syncToken".
var handleQualifiers = [...]string{"page", "continuation", "sync", "cancellation", "resume", "pagination", "cursor"}

// Words that contain a strong substring but name no secret.
var strongExceptions = [...]string{"secretary", "secretaries"}

// Query parameters that carry credentials in URLs. Most are secret-named keys anyway; these
// are too common as ordinary keys ("errorCode", "key=PROJ-1") to redact everywhere, so they
// count only after '?' or '&'. TestQueryNames keeps the full list from the issue covered.
var queryOnlyNames = [...]string{"code", "key"}

// trigrams holds, as a bit set, every three-letter sequence (case folded) that starts one of
// the words above. A key without any of them cannot be secret, which settles the great
// majority of keys in a log ("ts", "status", "dur", "request_id") with a few table lookups
// instead of splitting the key into words.
var trigrams = func() (t [27*27*27/8 + 1]byte) {
	add := func(w string) {
		i := trigram(w[0], w[1], w[2])
		t[i/8] |= 1 << (i % 8)
	}
	for _, w := range strongSubstrings {
		add(w)
	}
	for _, w := range headWords {
		add(w)
	}
	for _, w := range keyQualifiers {
		add(w)
	}
	for _, w := range [...]string{"cookie", "authorization", "session"} {
		add(w)
	}
	return t
}()

// letterIndex numbers letters 1–26, folding case; every other byte is 0.
var letterIndex = func() (t [256]uint8) {
	for c := 'a'; c <= 'z'; c++ {
		t[c] = uint8(c-'a') + 1
		t[c-'a'+'A'] = uint8(c-'a') + 1
	}
	return t
}()

func trigram(a, b, c byte) uint {
	return uint(letterIndex[a])*27*27 + uint(letterIndex[b])*27 + uint(letterIndex[c])
}

// mayBeSecretKey is the quick test: false means classifyKey would return keyPlain.
func mayBeSecretKey(k string) bool {
	if len(k) < 3 {
		return false
	}
	// Each trigram is computed from its own three bytes rather than rolled from the one
	// before: the steps then do not wait for each other, and this runs for every key of
	// every JSON line.
	for i := 2; i < len(k); i++ {
		t := trigram(k[i-2], k[i-1], k[i])
		if trigrams[t/8]&(1<<(t%8)) != 0 {
			return true
		}
	}
	return false
}

// word is a half-open range of a key.
type word struct{ a, b uint8 }

// classifyKey decides from a key's name whether its value is secret. The name is split into
// words at separators, camelCase humps and letter/digit boundaries, so "clientSecret",
// "client_secret", "client-secret" and "CLIENT_SECRET" are the same key. Trailing digits of
// a word are ignored ("token2").
func classifyKey(k string) keyClass {
	if !mayBeSecretKey(k) {
		return keyPlain
	}
	return classifyWords(k)
}

// classifyWords is classifyKey without the quick test, for callers that made it already.
func classifyWords(k string) keyClass {
	if len(k) == 0 || len(k) > 64 {
		return keyPlain
	}
	var words [32]word
	n := 0
	push := func(a, b int) {
		for b > a && isDigit(k[b-1]) {
			b--
		}
		if b > a && n < len(words) {
			words[n] = word{uint8(a), uint8(b)}
			n++
		}
	}
	start := -1
	for i := range len(k) {
		c := k[i]
		if !isAlnum(c) {
			if start >= 0 {
				push(start, i)
				start = -1
			}
			continue
		}
		if start < 0 {
			start = i
			continue
		}
		p := k[i-1]
		if isUpper(c) && (isLower(p) || isDigit(p)) ||
			isUpper(c) && isUpper(p) && i+1 < len(k) && isLower(k[i+1]) ||
			isLower(c) && isDigit(p) {
			push(start, i)
			start = i
		}
	}
	if start >= 0 {
		push(start, len(k))
	}
	if n == 0 {
		return keyPlain
	}
	w := func(i int) string { return k[words[i].a:words[i].b] }

	for i := range n {
		if hasStrongSubstring(w(i)) {
			for j := i + 1; j < n; j++ {
				if isOneOf(w(j), metadataWords[:]) {
					return keyPlain
				}
			}
			return keySecret
		}
	}
	last := w(n - 1)
	switch {
	case strings.EqualFold(last, "cookie") || strings.EqualFold(last, "cookies"):
		return keyCookie
	case strings.EqualFold(last, "authorization"):
		return keyAuthorization
	}
	for _, h := range headWords {
		if strings.EqualFold(last, h) {
			if n >= 2 && isOneOf(w(n-2), handleQualifiers[:]) {
				return keyPlain
			}
			return keySecret
		}
	}
	if n >= 2 {
		prev := w(n - 2)
		if strings.EqualFold(last, "key") {
			for _, q := range keyQualifiers {
				if strings.EqualFold(prev, q) {
					return keySecret
				}
			}
		}
		if strings.EqualFold(last, "id") && strings.EqualFold(prev, "session") {
			return keySecret
		}
	}
	return keyPlain
}

func hasStrongSubstring(w string) bool {
	if len(w) < 6 {
		return false // shorter than every strong substring; most words end here
	}
	for _, e := range strongExceptions {
		if strings.EqualFold(w, e) {
			return false
		}
	}
	for _, s := range strongSubstrings {
		if containsFold(w, s) {
			return true
		}
	}
	return false
}

// isQueryName reports whether a URL query parameter that classifyKey let through carries
// credentials all the same.
func isQueryName(name string) bool {
	for _, q := range queryOnlyNames {
		if len(q) == len(name) && strings.EqualFold(name, q) {
			return true
		}
	}
	return false
}

// isOneOf reports whether w is one of the lower-case words ws, ignoring case.
func isOneOf(w string, ws []string) bool {
	for _, x := range ws {
		if isWord(w, x) {
			return true
		}
	}
	return false
}

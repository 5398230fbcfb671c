package connect

import (
	"crypto/sha256"
	"encoding/hex"
	"net/url"
	"slices"
	"strings"
	"unicode/utf8"
)

// ContextQSH is the fixed qsh of context tokens. With the "context-qsh" API migration
// Atlassian puts this value in tokens that an app's frontend sends to its own back end, so
// a context token can never be replayed as a token for one specific request.
const ContextQSH = "context-qsh"

// jwtParam is the query parameter that carries the token itself; it cannot be part of the
// hash it is signed over.
const jwtParam = "jwt"

// QSH returns the query string hash Atlassian puts in the qsh claim: the lower-case hex
// SHA-256 of CanonicalRequest.
func QSH(method string, u *url.URL, basePath string) string {
	sum := sha256.Sum256([]byte(CanonicalRequest(method, u, basePath)))
	return hex.EncodeToString(sum[:])
}

// CanonicalRequest renders a request the way Atlassian's atlassian-jwt library does before
// hashing it: "METHOD&path&query". basePath is the path of the app's base URL ("" or "/sb"),
// which Atlassian leaves out because it signs paths relative to the descriptor's baseUrl.
//
// It never fails: a request that Atlassian could not have signed simply hashes to a value no
// token carries.
func CanonicalRequest(method string, u *url.URL, basePath string) string {
	var path, rawQuery string
	if u != nil {
		path, rawQuery = u.EscapedPath(), u.RawQuery
	}
	return strings.ToUpper(method) + "&" + canonicalPath(path, basePath) + "&" + canonicalQuery(rawQuery)
}

// canonicalPath takes the path as sent on the wire (still percent-encoded), because that is
// what the signer saw.
func canonicalPath(path, basePath string) string {
	// Strip the base path only at a segment boundary: "/sbx" is not under "/sb".
	if base := strings.TrimRight(basePath, "/"); base != "" {
		if path == base || strings.HasPrefix(path, base+"/") {
			path = path[len(base):]
		}
	}
	if path == "" {
		return "/"
	}
	// '&' separates the three parts of the canonical request; left raw, "/a&b" with query
	// "c" and "/a" with query "b&c" would hash alike.
	path = strings.ReplaceAll(path, "&", "%26")
	if !strings.HasPrefix(path, "/") {
		path = "/" + path
	}
	if len(path) > 1 && strings.HasSuffix(path, "/") {
		path = path[:len(path)-1]
	}
	return path
}

// canonicalQuery parses the raw query itself instead of using url.ParseQuery, which drops
// pairs containing ';' or bad escapes; the signer keeps them, so dropping them here would
// let parameters escape the hash.
func canonicalQuery(rawQuery string) string {
	params := map[string][]string{}
	for rawQuery != "" {
		var pair string
		pair, rawQuery, _ = strings.Cut(rawQuery, "&")
		if pair == "" {
			continue
		}
		k, v, _ := strings.Cut(pair, "=")
		k, v = unescapeQuery(k), unescapeQuery(v)
		if k == jwtParam {
			continue
		}
		params[k] = append(params[k], v)
	}
	if len(params) == 0 {
		return ""
	}
	keys := make([]string, 0, len(params))
	for k := range params {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, compareUTF16)

	var b strings.Builder
	for i, k := range keys {
		if i > 0 {
			b.WriteByte('&')
		}
		b.WriteString(percentEncode(k))
		b.WriteByte('=')
		vals := params[k]
		slices.SortFunc(vals, compareUTF16)
		for j, v := range vals {
			if j > 0 {
				b.WriteByte(',')
			}
			b.WriteString(percentEncode(v))
		}
	}
	return b.String()
}

// unescapeQuery decodes like Node's querystring, which atlassian-jwt uses: '+' is a space and
// a '%' not followed by two hex digits stays literal rather than voiding the pair.
func unescapeQuery(s string) string {
	if !strings.ContainsAny(s, "+%") {
		return s
	}
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '+':
			b = append(b, ' ')
		case c == '%' && i+2 < len(s) && isHex(s[i+1]) && isHex(s[i+2]):
			b = append(b, unhex(s[i+1])<<4|unhex(s[i+2]))
			i += 2
		default:
			b = append(b, c)
		}
	}
	return string(b)
}

// percentEncode is RFC 3986 encoding as atlassian-jwt does it: only A-Z a-z 0-9 - . _ ~ stay
// literal, so '*', '+', ',' and space (as %20, never '+') are all encoded. Invalid UTF-8 is
// encoded byte by byte, which keeps the encoding one-to-one.
func percentEncode(s string) string {
	const hexDigits = "0123456789ABCDEF"
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		if isUnreserved(c) {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hexDigits[c>>4])
		b.WriteByte(hexDigits[c&0xf])
	}
	return b.String()
}

func isUnreserved(c byte) bool {
	return 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' ||
		c == '-' || c == '.' || c == '_' || c == '~'
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case '0' <= c && c <= '9':
		return c - '0'
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10
	default:
		return c - 'A' + 10
	}
}

// compareUTF16 orders strings as JavaScript's Array.prototype.sort does (by UTF-16 code
// units), which is how atlassian-jwt sorts keys and values. It differs from Go's byte order
// only in placing characters above U+FFFF before U+E000–U+FFFF.
func compareUTF16(a, b string) int {
	for a != "" && b != "" {
		wa, na := utf16Weight(a)
		wb, nb := utf16Weight(b)
		if wa != wb {
			if wa < wb {
				return -1
			}
			return 1
		}
		a, b = a[na:], b[nb:]
	}
	return len(a) - len(b)
}

// utf16Weight maps the first character to a number whose order is its UTF-16 order. Bytes
// that are not UTF-8 sort last, each by its value, so the order stays total and equal weights
// mean equal bytes.
func utf16Weight(s string) (weight int, size int) {
	r, n := utf8.DecodeRuneInString(s)
	switch {
	case r == utf8.RuneError && n == 1:
		return 0x300000 + int(s[0]), 1
	case r >= 0xE000 && r <= 0xFFFF:
		return 0x200000 + int(r), n
	default:
		return int(r), n
	}
}

package redact

import (
	"encoding/json"
	"maps"
	"math"
	"slices"
	"strconv"
)

// Value returns a scrubbed copy of JSON-decoded data: map[string]any, []any, strings,
// numbers (float64, json.Number, int, int64), bools and nil. The input is not modified.
//
// A value under a secret-named key is replaced by "[redacted]" whatever it looks like, except
// nil, "" and booleans, which carry no secret and tell support whether something was set,
// and strings that are plainly no secret ("${DB_PASSWORD}", "<your-token-here>"). An
// array under such a key keeps its shape (header maps decode to arrays of strings), and an
// Authorization value keeps its scheme. Every other string goes through String, keys
// included. Two keys that scrub to the same text (two addresses becoming "[email]") are kept
// apart by a "#2", "#3" suffix rather than one silently overwriting the other.
func (s *Scrubber) Value(v any) any {
	switch t := v.(type) {
	case string:
		return s.String(t)
	case map[string]any:
		return s.object(t)
	case []any:
		out := make([]any, len(t))
		for i, e := range t {
			out[i] = s.Value(e)
		}
		return out
	case json.Number:
		return s.number(string(t), v)
	case float64:
		// Only integers can be card numbers; float64 holds 16-digit ones exactly.
		if t == math.Trunc(t) && math.Abs(t) < 1e19 {
			return s.number(strconv.FormatFloat(t, 'f', -1, 64), v)
		}
	case int:
		return s.number(strconv.Itoa(t), v)
	case int64:
		return s.number(strconv.FormatInt(t, 10), v)
	}
	return v
}

func (s *Scrubber) object(m map[string]any) map[string]any {
	out := make(map[string]any, len(m))
	// Sorted, so that which of two colliding keys gets the suffix does not depend on map order.
	for _, k := range slices.Sorted(maps.Keys(m)) {
		nk := s.String(k)
		if _, dup := out[nk]; dup {
			for i := 2; ; i++ {
				c := nk + "#" + strconv.Itoa(i)
				if _, dup := out[c]; !dup {
					nk = c
					break
				}
			}
		}
		class := classifyKey(k)
		if class == keyPlain && k == "value" && namesSecret(m) {
			class = keySecret
		}
		switch class {
		case keyPlain:
			out[nk] = s.Value(m[k])
		default:
			out[nk] = s.secretValue(m[k], k, class == keyAuthorization)
		}
	}
	return out
}

// secretValue replaces the value of the secret-named key, unless it is plainly no secret
// (a placeholder, a reference, a mask), by the same rules as in text.
func (s *Scrubber) secretValue(v any, key string, auth bool) any {
	switch t := v.(type) {
	case nil, bool:
		return v
	case string:
		if t == "" || t == marker {
			return t
		}
		if isHarmlessValue(t, 0, len(t), key) {
			return s.String(t) // it may still hold an address or a caller's secret
		}
		if auth {
			if cs, ce, ok := credential(t, 0, len(t)); ok {
				s.counts[kindAuthorization]++
				t = t[:cs] + marker + t[ce:]
			}
			return s.String(t) // whatever follows the credential is still text
		}
	case []any:
		out := make([]any, len(t))
		for i, e := range t {
			out[i] = s.secretValue(e, key, auth)
		}
		return out
	}
	s.counts[kindSecretKey]++
	return marker
}

// number redacts a number that is a card number or contains a caller's secret; the digits
// are what a JSON encoder would write, so that is what is checked.
func (s *Scrubber) number(digits string, orig any) any {
	if isCardNumber(digits) {
		s.counts[kindCardNumber]++
		return marker
	}
	if s.containsSecret(digits) {
		s.counts[kindSharedSecret]++
		return marker
	}
	return orig
}

// namesSecret reports whether an object is a name/value pair whose name is secret, as in a
// Kubernetes container's environment ({"name": "DB_PASSWORD", "value": "…"}) or a Postman
// collection ({"key": "token", "value": "…"}).
func namesSecret(m map[string]any) bool {
	for _, f := range [...]string{"name", "key"} {
		if n, ok := m[f].(string); ok && classifyKey(n) == keySecret {
			return true
		}
	}
	return false
}

package connect

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"

	"github.com/golang-jwt/jwt/v5"
)

// maxTokenLen bounds the work an unauthenticated caller can make us do. Atlassian's tokens
// are a few hundred bytes; context tokens with a large context claim stay well under this.
const maxTokenLen = 16 << 10

// claims are the claims Atlassian puts in Connect tokens.
type claims struct {
	jwt.RegisteredClaims
	QSH     string         `json:"qsh"`
	Context map[string]any `json:"context,omitempty"`
}

// header is the JOSE header, decoded by hand so that tokens with an algorithm jwt/v5 does not
// know (or "none") still get a precise reason instead of a parse error.
type header struct {
	Alg string
	Kid string
}

// parseUnverified decodes header and claims without checking the signature, so that cheap
// checks can refuse a token before any key lookup or network call.
func parseUnverified(token string) (header, *claims, error) {
	if token == "" {
		return header{}, nil, invalid(reasonMissingToken)
	}
	if len(token) > maxTokenLen || strings.Count(token, ".") != 2 {
		return header{}, nil, invalid(reasonMalformed)
	}
	parts := strings.Split(token, ".")
	var h struct {
		Alg  any `json:"alg"`
		Kid  any `json:"kid"`
		Crit any `json:"crit"`
	}
	if err := decodeSegment(parts[0], &h); err != nil {
		return header{}, nil, err
	}
	// RFC 7515 §4.1.11: a token that names extensions we do not implement must be refused.
	if h.Crit != nil {
		return header{}, nil, invalid(reasonMalformed)
	}
	alg, _ := h.Alg.(string)
	kid, _ := h.Kid.(string)
	if h.Kid != nil && kid == "" {
		return header{}, nil, invalid(reasonInvalidKID)
	}
	var c claims
	if err := decodeSegment(parts[1], &c); err != nil {
		return header{}, nil, err
	}
	return header{Alg: alg, Kid: kid}, &c, nil
}

// decodeSegment decodes one base64url JSON part of a token the way jwt/v5 will when it
// verifies it (no padding), so both passes see the same claims.
func decodeSegment(seg string, v any) error {
	b, err := base64.RawURLEncoding.DecodeString(seg)
	if err != nil {
		return invalid(reasonMalformed)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return invalid(reasonMalformed)
	}
	return nil
}

// TokenFromRequest finds a Connect JWT where Atlassian puts one: in "Authorization: JWT <t>"
// for server-to-server calls and app API calls, or in the "jwt" query parameter when
// Atlassian loads a module URL in an iframe.
func TokenFromRequest(r *http.Request) (token string, ok bool) {
	if r == nil {
		return "", false
	}
	if t, ok := tokenFromAuthorization(r.Header.Get("Authorization")); ok {
		return t, true
	}
	if r.URL == nil {
		return "", false
	}
	if t := r.URL.Query().Get(jwtParam); t != "" {
		return t, true
	}
	return "", false
}

// tokenFromAuthorization accepts the scheme in any case, as RFC 9110 §11.1 requires.
func tokenFromAuthorization(h string) (string, bool) {
	scheme, rest, ok := strings.Cut(strings.TrimSpace(h), " ")
	if !ok || !strings.EqualFold(scheme, "JWT") {
		return "", false
	}
	t := strings.TrimSpace(rest)
	return t, t != ""
}

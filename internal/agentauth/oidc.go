package agentauth

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"

	"github.com/supportbridge/supportbridge/internal/jwks"
)

const (
	// leeway absorbs clock skew between the identity provider and us. It is small because an
	// access token lives minutes and a stolen one should die quickly.
	leeway = 30 * time.Second

	// DefaultRoleClaim is the claim read for the role when OIDCOptions.RoleClaim is empty; it
	// matches the default of SB_AGENT_OIDC_ROLE_CLAIM.
	DefaultRoleClaim = "supportbridge_role"

	minRSABits  = 2048
	maxEmailLen = 254
)

// OIDCOptions configures identity-provider tokens. Issuer, Audience and JWKSURL are required.
type OIDCOptions struct {
	// Issuer must equal the token's iss exactly; it also prefixes Agent.Subject, so subjects
	// of two identity providers never collide.
	Issuer string
	// Audience must be one of the token's aud values: tokens the provider minted for other
	// applications are not ours to accept.
	Audience string
	// JWKSURL is where the provider publishes its signing keys. Keys named in a token header
	// (jku, x5u, jwk) are never used.
	JWKSURL string
	// RoleClaim names the claim holding the role, as a string or an array of strings
	// containing "admin" or "agent" (default DefaultRoleClaim). A dotted name such as
	// "realm_access.roles" is followed into nested objects when no claim has that exact name.
	RoleClaim string
	// HTTPClient fetches the JWKS; nil means a client of its own.
	HTTPClient *http.Client
	// Now is the clock; nil means time.Now. Tests inject it.
	Now func() time.Time
	// MinRefreshInterval is the least time between two JWKS fetches (default 30s): the kid
	// comes from an unauthenticated token, so without a limit anyone could make us fetch the
	// JWKS on every request.
	MinRefreshInterval time.Duration
	// Timeout bounds one JWKS fetch (default 5s).
	Timeout time.Duration
	// KeyMaxAge is how long fetched keys are trusted before the next use refreshes them
	// (default 1h), so a withdrawn key stops verifying. If that refresh fails the old keys
	// keep working, so a provider outage does not lock out agents holding valid tokens.
	KeyMaxAge time.Duration
}

// oidcVerifier checks identity-provider JWTs.
type oidcVerifier struct {
	issuer    string
	roleClaim string
	keys      *keySet
	parser    *jwt.Parser
}

func newOIDCVerifier(o OIDCOptions, log *slog.Logger) (*oidcVerifier, error) {
	var problems []string
	if strings.TrimSpace(o.Issuer) == "" {
		problems = append(problems, "OIDC issuer is required")
	}
	if strings.TrimSpace(o.Audience) == "" {
		problems = append(problems, "OIDC audience is required")
	}
	if u, err := url.Parse(o.JWKSURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		problems = append(problems, fmt.Sprintf("OIDC JWKS URL %q is not an absolute http(s) URL", o.JWKSURL))
	}
	if o.MinRefreshInterval < 0 || o.Timeout < 0 || o.KeyMaxAge < 0 {
		problems = append(problems, "OIDC durations must not be negative")
	}
	if len(problems) > 0 {
		return nil, errorf("%s", strings.Join(problems, "; "))
	}
	if o.RoleClaim == "" {
		o.RoleClaim = DefaultRoleClaim
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &oidcVerifier{
		issuer:    o.Issuer,
		roleClaim: o.RoleClaim,
		keys: &keySet{set: jwks.New(jwks.Options[jwksKey]{
			Name: "agent", URL: o.JWKSURL, Client: o.HTTPClient, Timeout: o.Timeout,
			MinRefresh: o.MinRefreshInterval, MaxAge: o.KeyMaxAge, Parse: parseJWKS, Now: o.Now, Logger: log,
		})},
		// The method allowlist is checked before the key lookup, so HS256 and "none" never
		// reach the key cache and a public key can never serve as an HMAC secret.
		parser: jwt.NewParser(
			jwt.WithValidMethods([]string{jwt.SigningMethodRS256.Alg(), jwt.SigningMethodES256.Alg()}),
			jwt.WithIssuer(o.Issuer),
			jwt.WithAudience(o.Audience),
			jwt.WithExpirationRequired(),
			jwt.WithIssuedAt(),
			jwt.WithLeeway(leeway),
			jwt.WithTimeFunc(o.Now),
			jwt.WithStrictDecoding(),
		),
	}, nil
}

// verify checks signature and claims and builds the Agent.
func (v *oidcVerifier) verify(ctx context.Context, token string) (Agent, error) {
	claims := jwt.MapClaims{}
	tok, err := v.parser.ParseWithClaims(token, claims, func(t *jwt.Token) (any, error) {
		if _, ok := t.Header["crit"]; ok {
			return nil, unauthenticated(ReasonCritHeader)
		}
		kid, _ := t.Header["kid"].(string)
		if kid == "" {
			// Providers rotate keys; without a kid we would have to try every key we hold.
			return nil, unauthenticated(ReasonKeyIDMissing)
		}
		k, err := v.keys.key(ctx, kid)
		if err != nil {
			return nil, err
		}
		return k.forAlg(t.Method.Alg())
	})
	if err != nil {
		return Agent{}, classify(tok, claims, err)
	}
	return v.agent(claims)
}

// classify turns a library error into ours. Our own errors from the key lookup come first,
// then structural problems, then claim checks.
func classify(tok *jwt.Token, c jwt.MapClaims, err error) error {
	var ae *Error
	switch {
	case errors.As(err, &ae):
		return ae
	case errors.Is(err, jwt.ErrTokenMalformed):
		return unauthenticated(ReasonMalformed)
	case tok != nil && tok.Header["alg"] != jwt.SigningMethodRS256.Alg() && tok.Header["alg"] != jwt.SigningMethodES256.Alg():
		return unauthenticated(ReasonAlgorithm)
	case errors.Is(err, jwt.ErrTokenSignatureInvalid), errors.Is(err, jwt.ErrTokenUnverifiable):
		return unauthenticated(ReasonSignature)
	case errors.Is(err, jwt.ErrTokenExpired):
		return unauthenticated(ReasonExpired)
	case errors.Is(err, jwt.ErrTokenNotValidYet):
		return unauthenticated(ReasonNotYetValid)
	case errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		return unauthenticated(ReasonIssuedInFuture)
	case errors.Is(err, jwt.ErrTokenInvalidIssuer):
		return unauthenticated(ReasonIssuer)
	case errors.Is(err, jwt.ErrTokenInvalidAudience):
		return unauthenticated(ReasonAudience)
	case errors.Is(err, jwt.ErrInvalidType):
		return unauthenticated(ReasonInvalidClaimType)
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		switch {
		case c["exp"] == nil:
			return unauthenticated(ReasonNoExpiry)
		case c["iss"] == nil:
			return unauthenticated(ReasonIssuer)
		default:
			return unauthenticated(ReasonAudience)
		}
	default:
		return unauthenticated(ReasonInvalid)
	}
}

// agent reads identity and role from verified claims.
func (v *oidcVerifier) agent(c jwt.MapClaims) (Agent, error) {
	sub, ok := stringClaim(c, "sub")
	if !ok {
		return Agent{}, unauthenticated(ReasonInvalidClaimType)
	}
	if sub == "" {
		return Agent{}, unauthenticated(ReasonNoSubject)
	}
	var names [3]string
	for i, k := range []string{"name", "preferred_username", "email"} {
		s, ok := stringClaim(c, k)
		if !ok || !printable(s) {
			return Agent{}, unauthenticated(ReasonInvalidClaimType)
		}
		names[i] = s
	}
	if len(names[2]) > maxEmailLen {
		return Agent{}, unauthenticated(ReasonInvalidClaimType)
	}
	a := Agent{Email: names[2], Subject: "oidc:" + v.issuer + "|" + sub}
	// The display name falls back to the email and then the subject, so audit entries never
	// name an empty actor.
	for _, n := range []string{names[0], names[1], names[2], sub} {
		if n = strings.TrimSpace(n); n != "" {
			a.Name = truncate(n, maxNameLen)
			break
		}
	}
	role, ok := roleOf(lookupClaim(c, v.roleClaim))
	if !ok {
		return Agent{}, &Error{Kind: ErrForbidden, Reason: ReasonNoRole}
	}
	a.Role = role
	return a, nil
}

// stringClaim returns a claim that must be a string when present; false means another type.
func stringClaim(c jwt.MapClaims, key string) (string, bool) {
	v, present := c[key]
	if !present || v == nil {
		return "", true
	}
	s, ok := v.(string)
	return s, ok
}

// lookupClaim finds the role claim by its exact name, or else by following a dotted path
// into nested objects (Keycloak's realm_access.roles). Exact names win because namespaced
// claims such as "https://example.com/roles" contain dots too.
func lookupClaim(c jwt.MapClaims, name string) any {
	if v, ok := c[name]; ok {
		return v
	}
	var cur any = map[string]any(c)
	for _, part := range strings.Split(name, ".") {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		if cur, ok = m[part]; !ok {
			return nil
		}
	}
	return cur
}

// roleOf accepts "admin" or "agent" as a string, or an array holding either; an array with
// both means admin. Anything else grants nothing.
func roleOf(v any) (Role, bool) {
	switch x := v.(type) {
	case string:
		r := Role(x)
		return r, r.valid()
	case []any:
		var agent bool
		for _, e := range x {
			switch e {
			case string(RoleAdmin):
				return RoleAdmin, true
			case string(RoleAgent):
				agent = true
			}
		}
		if agent {
			return RoleAgent, true
		}
	}
	return "", false
}

// truncate shortens s to at most n bytes without splitting a UTF-8 sequence.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !isRuneStart(s[n]) {
		n--
	}
	return s[:n]
}

func isRuneStart(b byte) bool { return b&0xC0 != 0x80 }

// jwksKey is one usable signing key. alg is empty when the JWKS did not restrict the key.
type jwksKey struct {
	pub crypto.PublicKey
	alg string
}

// forAlg returns the key for verifying alg, refusing a key of the wrong type or one the JWKS
// reserved for another algorithm.
func (k jwksKey) forAlg(alg string) (any, error) {
	if k.alg != "" && k.alg != alg {
		return nil, unauthenticated(ReasonAlgorithm)
	}
	switch pub := k.pub.(type) {
	case *rsa.PublicKey:
		if alg == jwt.SigningMethodRS256.Alg() {
			return pub, nil
		}
	case *ecdsa.PublicKey:
		if alg == jwt.SigningMethodES256.Alg() {
			return pub, nil
		}
	}
	return nil, unauthenticated(ReasonAlgorithm)
}

// keySet is the provider's signing keys (internal/jwks), with its errors in this package's
// terms.
type keySet struct{ set *jwks.Set[jwksKey] }

func (s *keySet) key(ctx context.Context, kid string) (jwksKey, error) {
	k, err := s.set.Key(ctx, kid)
	switch {
	case errors.Is(err, jwks.ErrUnknownKey):
		return jwksKey{}, unauthenticated(ReasonUnknownKey)
	case err != nil:
		return jwksKey{}, &Error{Kind: ErrUnavailable, Reason: ReasonKeysUnavailable, Cause: err}
	}
	return k, nil
}

// parseJWKS keeps RSA (2048 bits or more) and P-256 signing keys that have a kid. A key the
// set marks for encryption or another algorithm is skipped rather than trusted, and so is one
// we cannot parse, instead of failing the whole set; the first key wins on a repeated kid.
func parseJWKS(body []byte) (map[string]jwksKey, error) {
	set, err := jwk.Parse(body, jwk.WithStrictKeySetParsing(false))
	if err != nil {
		return nil, fmt.Errorf("parse jwks: %w", err)
	}
	keys := make(map[string]jwksKey, set.Len())
	for i := range set.Len() {
		k, ok := set.Key(i)
		if !ok {
			continue
		}
		kid, ok := k.KeyID()
		if !ok || kid == "" {
			continue
		}
		if _, dup := keys[kid]; dup {
			continue
		}
		if use, ok := k.KeyUsage(); ok && use != "sig" {
			continue
		}
		alg := ""
		if a, ok := k.Algorithm(); ok {
			alg = a.String()
		}
		switch k.KeyType() {
		case jwa.RSA():
			var pub rsa.PublicKey
			if alg != "" && alg != jwt.SigningMethodRS256.Alg() {
				continue
			}
			if err := jwk.Export(k, &pub); err != nil || pub.N == nil || pub.N.BitLen() < minRSABits {
				continue
			}
			keys[kid] = jwksKey{pub: &pub, alg: alg}
		case jwa.EC():
			var pub ecdsa.PublicKey
			if alg != "" && alg != jwt.SigningMethodES256.Alg() {
				continue
			}
			if err := jwk.Export(k, &pub); err != nil || pub.Curve == nil || pub.Curve.Params().Name != "P-256" {
				continue
			}
			keys[kid] = jwksKey{pub: &pub, alg: alg}
		}
	}
	if len(keys) == 0 {
		return nil, errors.New("parse jwks: no usable RS256 or ES256 keys")
	}
	return keys, nil
}

package connect

import (
	"errors"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// ErrInvalidToken means the request is not authenticated: the caller answers 401. Every
// *TokenError wraps it.
var ErrInvalidToken = errors.New("invalid token")

// ErrKeyUnavailable means Atlassian's install-key server could not be asked (network error,
// timeout, 5xx). The token may be fine, so the caller answers 503 and Atlassian retries the
// install instead of giving up on it.
var ErrKeyUnavailable = errors.New("connect: install key unavailable")

// TokenError says why a token was refused. Reason is fixed text chosen here, never token
// content or library error text, so a handler may show it to the client to make a broken
// integration debuggable.
type TokenError struct {
	Reason string
}

// Error reads "invalid token: <reason>".
func (e *TokenError) Error() string { return "invalid token: " + e.Reason }

// Unwrap makes errors.Is(err, ErrInvalidToken) true, so callers need only the sentinel.
func (e *TokenError) Unwrap() error { return ErrInvalidToken }

// The reasons a token is refused; tests compare against them.
const (
	reasonMissingToken   = "missing token"
	reasonMalformed      = "malformed token"
	reasonAlgRS256       = "algorithm must be RS256"
	reasonAlgHS256       = "algorithm must be HS256"
	reasonMissingKID     = "missing kid"
	reasonInvalidKID     = "invalid kid"
	reasonUnknownKID     = "unknown kid"
	reasonUnusableKey    = "signing key is not a usable RSA public key"
	reasonIssuer         = "issuer does not match clientKey"
	reasonMissingIssuer  = "missing issuer"
	reasonAudience       = "audience does not match"
	reasonMissingQSH     = "missing qsh"
	reasonQSH            = "qsh does not match the request"
	reasonContextQSH     = "qsh must be context-qsh"
	reasonMissingExp     = "missing exp"
	reasonMissingIat     = "missing iat"
	reasonLifetime       = "token lifetime (exp - iat) exceeds 1 hour"
	reasonExpired        = "token expired"
	reasonIssuedInFuture = "token issued in the future"
	reasonNotYetValid    = "token not valid yet"
	reasonSignature      = "invalid signature"
)

func invalid(reason string) error { return &TokenError{Reason: reason} }

// leeway absorbs clock skew between Atlassian and us, as Atlassian's own libraries allow.
const leeway = 30 * time.Second

// timeOptions are the jwt/v5 checks every Connect token gets: exp is mandatory (a token
// without one would be valid forever) and iat may not lie in the future.
func timeOptions(now func() time.Time) []jwt.ParserOption {
	if now == nil {
		now = time.Now
	}
	return []jwt.ParserOption{
		jwt.WithLeeway(leeway),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithTimeFunc(now),
	}
}

// maxLifetime bounds exp - iat. Atlassian's tokens live minutes (context tokens 15, install
// callbacks 3); a token that claims to live longer was not minted by Atlassian's libraries,
// and a leaked one must not stay good for years.
const maxLifetime = time.Hour

// checkLifetime refuses tokens without iat, whose lifetime cannot be told, and tokens whose
// exp lies more than maxLifetime after iat. Call it after the time checks, which make exp
// mandatory.
func checkLifetime(c *claims) error {
	if c.IssuedAt == nil {
		return invalid(reasonMissingIat)
	}
	if c.ExpiresAt != nil && c.ExpiresAt.Sub(c.IssuedAt.Time) > maxLifetime {
		return invalid(reasonLifetime)
	}
	return nil
}

// fromJWTError turns a jwt/v5 error into a reason without echoing the library's text.
func fromJWTError(err error) error {
	switch {
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		return invalid(reasonSignature)
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		return invalid(reasonMissingExp)
	case errors.Is(err, jwt.ErrTokenExpired):
		return invalid(reasonExpired)
	case errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		return invalid(reasonIssuedInFuture)
	case errors.Is(err, jwt.ErrTokenNotValidYet):
		return invalid(reasonNotYetValid)
	default:
		return invalid(reasonMalformed)
	}
}

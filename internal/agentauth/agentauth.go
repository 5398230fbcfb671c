// Package agentauth says which support agent is calling an agent-facing route. Agents present
// "Authorization: Bearer <token>", where the token is either a static token listed (as its
// SHA-256) in SB_AGENT_TOKENS_FILE, for small deployments, or a JWT from the vendor's own
// identity provider (OIDC), verified against its JWKS. Either way the result is an Agent with
// a role; routes decide what each role may do.
package agentauth

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
)

// Role is what an agent may do: agents handle tickets, admins also purge tenants and read stats.
type Role string

// The two roles. There is deliberately no default: a token that carries neither is forbidden.
const (
	RoleAgent Role = "agent"
	RoleAdmin Role = "admin"
)

// valid reports whether r is one of the two roles.
func (r Role) valid() bool { return r == RoleAgent || r == RoleAdmin }

// Agent is an authenticated support agent.
type Agent struct {
	Name  string
	Email string
	Role  Role
	// Subject is stable across renames and token rotations, so audit entries and grants can
	// name who acted: "static:<name>" or "oidc:<iss>|<sub>".
	Subject string
}

// IsAdmin reports whether the agent holds the admin role.
func (a Agent) IsAdmin() bool { return a.Role == RoleAdmin }

// LogValue leaves the email out, because log lines must never carry an email address.
func (a Agent) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("name", a.Name),
		slog.String("role", string(a.Role)),
		slog.String("subject", a.Subject),
	)
}

var (
	// ErrUnauthenticated means the caller did not prove who they are (HTTP 401).
	ErrUnauthenticated = errors.New("agent not authenticated")
	// ErrForbidden means the identity is genuine but carries no role supportbridge knows
	// (HTTP 403): re-authenticating will not help, an administrator has to grant a role.
	ErrForbidden = errors.New("agent has no supportbridge role")
	// ErrUnavailable means the token may well be good but the identity provider's keys could
	// not be fetched to check it (HTTP 503).
	ErrUnavailable = errors.New("agent identity provider unavailable")
)

// Error is every rejection Authenticate returns. Reason is one of the Reason constants: a
// fixed phrase safe to show the caller, never token text or library error text. Kind is one
// of the three sentinels, which errors.Is matches; Cause, when set, is for the server's log.
type Error struct {
	Kind   error
	Reason string
	Cause  error
}

// Error names the kind and the reason, and leaves the cause out: the text may reach a client.
func (e *Error) Error() string {
	if e.Reason == "" {
		return e.Kind.Error()
	}
	return e.Kind.Error() + ": " + e.Reason
}

// Unwrap lets errors.Is match the sentinel and, for logging, the cause.
func (e *Error) Unwrap() []error {
	if e.Cause == nil {
		return []error{e.Kind}
	}
	return []error{e.Kind, e.Cause}
}

// Reasons for a rejection. They are the whole vocabulary that reaches a client.
const (
	ReasonMissing          = "missing bearer token"
	ReasonMalformed        = "malformed bearer token"
	ReasonUnknownToken     = "unknown token"
	ReasonNotConfigured    = "agent authentication is not configured"
	ReasonAlgorithm        = "algorithm must be RS256 or ES256"
	ReasonKeyIDMissing     = "signing key id (kid) is required"
	ReasonCritHeader       = "unsupported critical header"
	ReasonUnknownKey       = "unknown signing key"
	ReasonSignature        = "invalid signature"
	ReasonExpired          = "token expired"
	ReasonNoExpiry         = "token has no expiry"
	ReasonNotYetValid      = "token not valid yet"
	ReasonIssuedInFuture   = "token issued in the future"
	ReasonIssuer           = "issuer does not match"
	ReasonAudience         = "audience does not match"
	ReasonNoSubject        = "token has no subject"
	ReasonInvalidClaimType = "token has a claim of the wrong type"
	ReasonInvalid          = "invalid token"
	ReasonNoRole           = "token carries no supportbridge role"
	ReasonKeysUnavailable  = "signing keys unavailable"
)

func unauthenticated(reason string) error { return &Error{Kind: ErrUnauthenticated, Reason: reason} }

// maxTokenBytes bounds the work an unauthenticated caller can make us do: hashing, base64 and
// JSON decoding. Identity-provider tokens with many groups can be large, hence the margin.
const maxTokenBytes = 16 << 10

// Options configures an Authenticator. At least one of TokensFile and OIDC should be set;
// with neither, every request is rejected as unauthenticated.
type Options struct {
	// TokensFile is SB_AGENT_TOKENS_FILE: a JSON array of static tokens.
	TokensFile string
	// OIDC enables identity-provider tokens; nil disables them.
	OIDC *OIDCOptions
	// Logger receives key fetches and reloads; nil discards them.
	Logger *slog.Logger
}

// Authenticator turns an Authorization header into an Agent. It is safe for concurrent use;
// create one per server so the static token set and the JWKS cache are shared.
type Authenticator struct {
	tokensFile string
	static     *staticTokens // nil without a tokens file
	oidc       *oidcVerifier // nil without OIDC
	log        *slog.Logger
}

// New reads the token file and prepares OIDC verification. An invalid token file is an error
// here, so a typo stops startup instead of locking every agent out later. It does no network
// I/O: the JWKS is fetched on first use, so an identity-provider outage does not stop the server.
func New(opts Options) (*Authenticator, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	a := &Authenticator{tokensFile: opts.TokensFile, log: opts.Logger}
	if opts.TokensFile != "" {
		set, err := loadTokenFile(opts.TokensFile)
		if err != nil {
			return nil, err
		}
		a.static = &staticTokens{}
		a.static.set.Store(set)
	}
	if opts.OIDC != nil {
		v, err := newOIDCVerifier(*opts.OIDC, opts.Logger)
		if err != nil {
			return nil, err
		}
		a.oidc = v
	}
	return a, nil
}

// Authenticate checks an Authorization header value. Static tokens are looked up first for
// every token (the lookup takes the same time whatever the token), then JWT-shaped tokens go
// to the identity provider. Errors are *Error values matching ErrUnauthenticated,
// ErrForbidden or ErrUnavailable.
func (a *Authenticator) Authenticate(ctx context.Context, authorizationHeader string) (Agent, error) {
	token, err := bearerToken(authorizationHeader)
	if err != nil {
		return Agent{}, err
	}
	if a.static == nil && a.oidc == nil {
		return Agent{}, unauthenticated(ReasonNotConfigured)
	}
	if a.static != nil {
		if agent, ok := a.static.lookup(token); ok {
			return agent, nil
		}
	}
	if a.oidc != nil && jwtShaped(token) {
		return a.oidc.verify(ctx, token)
	}
	return Agent{}, unauthenticated(ReasonUnknownToken)
}

// bearerToken extracts the token from "Bearer <token>". The scheme is case-insensitive (RFC
// 9110); the token must be RFC 6750 token68 characters, which also keeps control characters
// and spaces out of everything downstream.
func bearerToken(header string) (string, error) {
	header = strings.TrimSpace(header)
	if header == "" {
		return "", unauthenticated(ReasonMissing)
	}
	scheme, token, ok := strings.Cut(header, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", unauthenticated(ReasonMissing)
	}
	token = strings.TrimLeft(token, " ")
	if token == "" {
		return "", unauthenticated(ReasonMissing)
	}
	if len(token) > maxTokenBytes || !isToken68(token) {
		return "", unauthenticated(ReasonMalformed)
	}
	return token, nil
}

// isToken68 reports whether s matches 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"=".
func isToken68(s string) bool {
	body := strings.TrimRight(s, "=")
	if body == "" {
		return false
	}
	for i := 0; i < len(body); i++ {
		c := body[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case c == '-' || c == '.' || c == '_' || c == '~' || c == '+' || c == '/':
		default:
			return false
		}
	}
	return true
}

// jwtShaped reports whether a token looks like a compact JWS: three base64url segments, the
// first non-empty. Opaque static tokens (hex or base64 from a random generator) never do.
func jwtShaped(token string) bool {
	parts := strings.Split(token, ".")
	if len(parts) != 3 || parts[0] == "" || parts[1] == "" {
		return false
	}
	for _, p := range parts {
		for i := 0; i < len(p); i++ {
			c := p[i]
			if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}

// errorf builds a configuration error of this package.
func errorf(format string, args ...any) error {
	return fmt.Errorf("agentauth: "+format, args...)
}

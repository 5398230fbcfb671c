// Package forge authenticates calls from Atlassian Forge: it verifies the Forge Invocation
// Token (FIT) that Forge Remote sends as "Authorization: Bearer <FIT>", and parses the bodies of
// Forge lifecycle events. Every tenant and user identity supportbridge acts on for a Forge app
// comes out of a verified Invocation, never out of a request body.
package forge

import (
	"context"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/supportbridge/supportbridge/internal/jwks"
)

const (
	// Issuer is the iss claim of every FIT; Atlassian signs nothing else with the Forge keys
	// that we should accept as an invocation.
	Issuer = "forge/invocation-token"

	// leeway absorbs clock skew between Atlassian and us; kept small because a FIT lives
	// only minutes and a replayed one should die quickly.
	leeway = 10 * time.Second

	// maxTokenBytes bounds the work an unauthenticated caller can make us do. FITs carry a
	// context claim that can grow, so the bound is generous compared with a typical token.
	maxTokenBytes = 64 << 10
)

var (
	// ErrInvalidToken means the caller is not authenticated (HTTP 401). Every rejection of a
	// token is an *InvalidTokenError, which matches this with errors.Is.
	ErrInvalidToken = errors.New("invalid forge invocation token")

	// ErrKeysUnavailable means the token names a signing key we do not hold and the JWKS
	// server could not be reached to fetch it (HTTP 503): the token may well be good.
	ErrKeysUnavailable = errors.New("forge signing keys unavailable")
)

// InvalidTokenError says why a token was rejected. Reason is a fixed phrase that is safe to
// show the client: it never contains token text or library error text.
type InvalidTokenError struct {
	Reason string
}

func (e *InvalidTokenError) Error() string { return ErrInvalidToken.Error() + ": " + e.Reason }

// Is makes every InvalidTokenError match ErrInvalidToken, so callers map one sentinel to 401.
func (e *InvalidTokenError) Is(target error) bool { return target == ErrInvalidToken }

// Reasons a token is rejected. They are exported so handlers and tests can compare them, and
// they are the whole vocabulary: nothing else reaches a client.
const (
	ReasonMalformed        = "malformed token"
	ReasonAlgorithm        = "algorithm must be RS256"
	ReasonKeyIDMissing     = "signing key id (kid) is required"
	ReasonCritHeader       = "unsupported critical header"
	ReasonUnknownKey       = "unknown signing key"
	ReasonSignature        = "invalid signature"
	ReasonExpired          = "token expired"
	ReasonNoExpiry         = "token has no expiry"
	ReasonNotYetValid      = "token not valid yet"
	ReasonIssuedInFuture   = "token issued in the future"
	ReasonIssuer           = "issuer must be " + Issuer
	ReasonAudience         = "audience does not match this app"
	ReasonAppMismatch      = "app id does not match this app"
	ReasonNoInstallation   = "token has no installation id"
	ReasonNoSite           = "token has no cloud id"
	ReasonBadSite          = "token has an invalid cloud id"
	ReasonSiteConflict     = "token names two different sites"
	ReasonBadAPIBaseURL    = "token has an invalid api base url"
	ReasonInvalidClaimType = "token has a claim of the wrong type"
	ReasonInvalid          = "invalid token"
)

func invalid(reason string) error { return &InvalidTokenError{Reason: reason} }

// Options configures a Verifier. JWKSURL and AppID are required; the rest have defaults.
type Options struct {
	// JWKSURL is where Atlassian publishes the FIT signing keys.
	JWKSURL string
	// AppID is this app's ARI from configuration. It is the only accepted aud: taking the
	// audience from the token would let any Forge app's tokens in.
	AppID string
	// HTTPClient fetches the JWKS; nil means a client of its own.
	HTTPClient *http.Client
	// MinRefreshInterval is the least time between two JWKS fetches (default 30s), so that
	// tokens with made-up kids cannot make us hammer the JWKS server.
	MinRefreshInterval time.Duration
	// Timeout bounds one JWKS fetch (default 5s).
	Timeout time.Duration
	// KeyMaxAge is how long fetched keys are trusted before the next use refreshes them
	// (default 1h), so a key Atlassian withdraws stops verifying. If that refresh fails the
	// old keys keep working: an outage of the JWKS server must not lock out every tenant.
	KeyMaxAge time.Duration
	// Now is the clock; nil means time.Now. Tests inject it.
	Now func() time.Time
	// Logger receives JWKS fetch outcomes; nil discards them.
	Logger *slog.Logger
}

// Verifier checks Forge Invocation Tokens. It is safe for concurrent use; create one per
// server so the key cache and its rate limit are shared by all requests.
type Verifier struct {
	appID  string
	keys   *keySet
	parser *jwt.Parser
}

// NewVerifier checks the options and returns a Verifier. It does no I/O: keys are fetched on
// first use, so a JWKS outage at startup does not stop the server.
func NewVerifier(opts Options) (*Verifier, error) {
	if strings.TrimSpace(opts.AppID) == "" {
		return nil, errors.New("forge verifier: AppID is required")
	}
	u, err := url.Parse(opts.JWKSURL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, fmt.Errorf("forge verifier: JWKSURL %q is not an absolute http(s) URL", opts.JWKSURL)
	}
	if opts.MinRefreshInterval < 0 || opts.Timeout < 0 || opts.KeyMaxAge < 0 {
		return nil, errors.New("forge verifier: durations must not be negative")
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	return &Verifier{
		appID: opts.AppID,
		keys: &keySet{set: jwks.New(jwks.Options[*rsa.PublicKey]{
			Name: "forge", URL: opts.JWKSURL, Client: opts.HTTPClient, Timeout: opts.Timeout,
			MinRefresh: opts.MinRefreshInterval, MaxAge: opts.KeyMaxAge, Parse: parseJWKS,
			Now: opts.Now, Logger: opts.Logger,
		})},
		// The method allowlist is checked before the key is looked up, so HS256 or "none"
		// tokens never reach the key cache, and an RSA public key can never be used as an
		// HMAC secret (algorithm confusion).
		parser: jwt.NewParser(
			jwt.WithValidMethods([]string{jwt.SigningMethodRS256.Alg()}),
			jwt.WithIssuer(Issuer),
			jwt.WithAudience(opts.AppID),
			jwt.WithExpirationRequired(),
			jwt.WithIssuedAt(),
			jwt.WithLeeway(leeway),
			jwt.WithTimeFunc(opts.Now),
			jwt.WithStrictDecoding(),
		),
	}, nil
}

// Invocation is what a verified FIT says about a call: which installation of which app on
// which site, on behalf of whom.
type Invocation struct {
	AppID          string // app ARI, equal to the configured AppID
	InstallationID string // installation ARI (ari:cloud:ecosystem::installation/<uuid>)
	CloudID        string // the site; the tenant key of Forge-only installations
	SiteURL        string // e.g. https://example.atlassian.net; only some modules send it
	// Principal is the Atlassian account id of the user who caused the call. It is empty for
	// system invocations (events, scheduled triggers), which act for no user.
	Principal       string
	EnvironmentType string // DEVELOPMENT, STAGING or PRODUCTION
	EnvironmentID   string
	ModuleKey       string
	ModuleType      string
	APIBaseURL      string // where calls back to Atlassian APIs for this installation go
	TokenID         string // jti, for audit records
	ExpiresAt       time.Time
}

// claims mirrors the FIT payload. Context and principal stay raw because their shape varies
// by module, and a shape we do not use must not make a genuine token unparseable.
type claims struct {
	jwt.RegisteredClaims
	App struct {
		ID             string `json:"id"`
		InstallationID string `json:"installationId"`
		APIBaseURL     string `json:"apiBaseUrl"`
		Environment    struct {
			Type string `json:"type"`
			ID   string `json:"id"`
		} `json:"environment"`
		Module struct {
			Type string `json:"type"`
			Key  string `json:"key"`
		} `json:"module"`
	} `json:"app"`
	Context   json.RawMessage `json:"context"`
	Principal json.RawMessage `json:"principal"`
}

// Verify checks the token's signature, algorithm and claims and returns what it says. Errors
// match ErrInvalidToken (the caller is not authenticated) or ErrKeysUnavailable (we cannot
// tell right now).
func (v *Verifier) Verify(ctx context.Context, token string) (Invocation, error) {
	if token == "" || len(token) > maxTokenBytes {
		return Invocation{}, invalid(ReasonMalformed)
	}
	var c claims
	tok, err := v.parser.ParseWithClaims(token, &c, func(t *jwt.Token) (any, error) {
		// jku, x5u and jwk headers are deliberately ignored: keys come only from JWKSURL.
		if _, ok := t.Header["crit"]; ok {
			return nil, invalid(ReasonCritHeader)
		}
		kid, _ := t.Header["kid"].(string)
		if kid == "" {
			return nil, invalid(ReasonKeyIDMissing)
		}
		return v.keys.key(ctx, kid)
	})
	if err != nil {
		return Invocation{}, classify(tok, &c, err)
	}
	return v.invocation(&c)
}

// classify turns a library error into one of ours. Order matters: our own errors from the key
// lookup come first, then structural problems, then the claim checks.
func classify(tok *jwt.Token, c *claims, err error) error {
	var ite *InvalidTokenError
	switch {
	case errors.Is(err, ErrKeysUnavailable):
		return ErrKeysUnavailable // the cause was logged where it happened
	case errors.As(err, &ite):
		return ite
	case errors.Is(err, jwt.ErrTokenMalformed):
		return invalid(ReasonMalformed)
	case tok != nil && tok.Header["alg"] != jwt.SigningMethodRS256.Alg():
		return invalid(ReasonAlgorithm)
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		return invalid(ReasonSignature)
	case errors.Is(err, jwt.ErrTokenExpired):
		return invalid(ReasonExpired)
	case errors.Is(err, jwt.ErrTokenNotValidYet):
		return invalid(ReasonNotYetValid)
	case errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		return invalid(ReasonIssuedInFuture)
	case errors.Is(err, jwt.ErrTokenInvalidIssuer):
		return invalid(ReasonIssuer)
	case errors.Is(err, jwt.ErrTokenInvalidAudience):
		return invalid(ReasonAudience)
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		switch {
		case c.ExpiresAt == nil:
			return invalid(ReasonNoExpiry)
		case c.Issuer == "":
			return invalid(ReasonIssuer)
		default:
			return invalid(ReasonAudience)
		}
	case errors.Is(err, jwt.ErrInvalidType):
		return invalid(ReasonInvalidClaimType)
	default:
		return invalid(ReasonInvalid)
	}
}

// invocation checks the Forge-specific claims of a token whose signature and registered
// claims are already good.
func (v *Verifier) invocation(c *claims) (Invocation, error) {
	// aud is what Forge binds the token to, but app.id is what the rest of the payload
	// describes; both must be us or the payload speaks for another app.
	if c.App.ID != v.appID {
		return Invocation{}, invalid(ReasonAppMismatch)
	}
	if c.App.InstallationID == "" {
		return Invocation{}, invalid(ReasonNoInstallation)
	}
	principal, ok := accountID(c.Principal)
	if !ok {
		return Invocation{}, invalid(ReasonInvalidClaimType)
	}
	site := readContext(c.Context)
	inv := Invocation{
		AppID:           c.App.ID,
		InstallationID:  c.App.InstallationID,
		CloudID:         site.cloudID,
		SiteURL:         site.siteURL,
		Principal:       principal,
		EnvironmentType: c.App.Environment.Type,
		EnvironmentID:   c.App.Environment.ID,
		ModuleKey:       c.App.Module.Key,
		ModuleType:      c.App.Module.Type,
		APIBaseURL:      c.App.APIBaseURL,
		TokenID:         c.ID,
		ExpiresAt:       c.ExpiresAt.Time,
	}
	if inv.ModuleKey == "" {
		inv.ModuleKey = site.moduleKey
	}
	apiCloudID := ""
	if inv.APIBaseURL != "" {
		u, err := url.Parse(inv.APIBaseURL)
		// We send app tokens to this URL, so it must be HTTPS even though Atlassian signed it.
		if err != nil || u.Scheme != "https" || u.Host == "" || u.User != nil {
			return Invocation{}, invalid(ReasonBadAPIBaseURL)
		}
		apiCloudID = cloudIDFromAPIBaseURL(u.Path)
	}
	// Events and scheduled triggers may carry no context; the API base URL
	// (https://api.atlassian.com/ex/<product>/<cloudId>) still names the site.
	switch {
	case inv.CloudID == "":
		inv.CloudID = apiCloudID
	case apiCloudID != "" && apiCloudID != inv.CloudID:
		return Invocation{}, invalid(ReasonSiteConflict)
	}
	if inv.CloudID == "" {
		return Invocation{}, invalid(ReasonNoSite)
	}
	// The cloud id names a tenant's folder in the log store, so it must be a plain token.
	if !validCloudID(inv.CloudID) {
		return Invocation{}, invalid(ReasonBadSite)
	}
	return inv, nil
}

// cloudIDFromAPIBaseURL returns <cloudId> from a path of the form /ex/<product>/<cloudId>.
func cloudIDFromAPIBaseURL(path string) string {
	parts := strings.Split(strings.Trim(path, "/"), "/")
	if len(parts) == 3 && parts[0] == "ex" && parts[1] != "" {
		return parts[2]
	}
	return ""
}

// TokenFromHeader extracts the token from an Authorization header value "Bearer <token>".
// The scheme is case-insensitive (RFC 9110); anything else, including a Connect "JWT"
// header, returns false so the caller can try the other scheme.
func TokenFromHeader(authorization string) (string, bool) {
	scheme, token, ok := strings.Cut(strings.TrimSpace(authorization), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	token = strings.TrimLeft(token, " ")
	if token == "" || strings.ContainsAny(token, " \t\r\n") {
		return "", false
	}
	return token, true
}

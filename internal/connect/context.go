package connect

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// ContextVerifier checks the HS256 tokens Atlassian signs with a tenant's shared secret:
// context tokens the app frontend sends to our API (qsh "context-qsh"), module URLs Atlassian
// loads in an iframe, and the enabled/disabled callbacks (qsh of that exact request).
type ContextVerifier struct {
	// Secrets returns the shared secret of an installed tenant. Its errors reach the
	// caller wrapped, so tenant.ErrNotFound and the like can be mapped to responses.
	Secrets func(ctx context.Context, clientKey string) ([]byte, error)
	// BasePath is the path of the public base URL, left out of the qsh.
	BasePath string
	// Now is the clock; nil means time.Now.
	Now func() time.Time

	// verified remembers context tokens that passed, so an app that sends the same token on
	// many calls (Atlassian's context tokens live for minutes) pays for parsing and the HMAC
	// once. A hit still checks expiry and asks Secrets, so an uninstall or a new secret
	// takes effect at once.
	mu       sync.Mutex
	verified map[string]verifiedToken
}

type verifiedToken struct {
	id      Identity
	expires time.Time
	secret  []byte
}

// maxVerified bounds the cache; past it the cache starts again empty.
const maxVerified = 10000

// Identity is who a verified context token speaks for. It comes only from the token, never
// from a request body.
type Identity struct {
	// ClientKey is the tenant (iss).
	ClientKey string
	// AccountID is the Atlassian account of the user (sub); empty for calls made by the
	// product itself, such as lifecycle callbacks.
	AccountID string
	// Context is Atlassian's context claim (e.g. the Jira project or issue on screen), if any.
	Context map[string]any
}

// Verify authenticates token for the request method and u. With requireContextQSH the token
// must be a context token (qsh "context-qsh"), as on /api routes; without it the qsh must be
// that of this exact request, as on module URLs and lifecycle callbacks, so a token lifted
// from one iframe URL cannot open another.
//
// Errors wrap ErrInvalidToken, or are the Secrets error wrapped.
func (v *ContextVerifier) Verify(ctx context.Context, token string, method string, u *url.URL, requireContextQSH bool) (Identity, error) {
	if v.Secrets == nil {
		return Identity{}, errors.New("connect: context verifier needs Secrets")
	}
	if requireContextQSH {
		if id, ok, err := v.cached(ctx, token); ok || err != nil {
			return id, err
		}
	}
	hdr, c, err := parseUnverified(token)
	if err != nil {
		return Identity{}, err
	}
	switch {
	case hdr.Alg != jwt.SigningMethodHS256.Alg():
		return Identity{}, invalid(reasonAlgHS256)
	case c.Issuer == "":
		return Identity{}, invalid(reasonMissingIssuer)
	case c.QSH == "":
		return Identity{}, invalid(reasonMissingQSH)
	case requireContextQSH && c.QSH != ContextQSH:
		return Identity{}, invalid(reasonContextQSH)
	case !requireContextQSH && c.QSH != QSH(method, u, v.BasePath):
		return Identity{}, invalid(reasonQSH)
	}
	if err := jwt.NewValidator(timeOptions(v.Now)...).Validate(c); err != nil {
		return Identity{}, fromJWTError(err)
	}
	if err := checkLifetime(c); err != nil {
		return Identity{}, err
	}

	secret, err := v.Secrets(ctx, c.Issuer)
	if err != nil {
		return Identity{}, fmt.Errorf("connect: shared secret: %w", err)
	}
	// An empty HMAC key would let anyone sign; that is our data being wrong, not the token.
	if len(secret) == 0 {
		return Identity{}, errors.New("connect: empty shared secret")
	}

	// The claims above were already decoded and checked; all that is left is the HMAC over
	// the same bytes. Checking it here, rather than parsing the token a second time through
	// jwt/v5, halves the cost of authenticating a request.
	if !validHS256(token, secret) {
		return Identity{}, invalid(reasonSignature)
	}
	verified := c
	if requireContextQSH && c.ExpiresAt != nil {
		v.remember(token, verifiedToken{
			id:      Identity{ClientKey: c.Issuer, AccountID: c.Subject, Context: c.Context},
			expires: c.ExpiresAt.Time.Add(leeway), secret: secret,
		})
	}
	return Identity{
		ClientKey: verified.Issuer,
		AccountID: verified.Subject,
		Context:   verified.Context,
	}, nil
}

// validHS256 checks the HS256 signature of a compact JWT in constant time.
func validHS256(token string, secret []byte) bool {
	dot := strings.LastIndexByte(token, '.')
	if dot < 0 {
		return false
	}
	sig, err := base64.RawURLEncoding.DecodeString(token[dot+1:])
	if err != nil {
		return false
	}
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(token[:dot]))
	return hmac.Equal(sig, m.Sum(nil))
}

// cached answers for a context token verified before: ok is false on a miss. The token must
// not have expired and its tenant must still have the secret it was verified with.
func (v *ContextVerifier) cached(ctx context.Context, token string) (Identity, bool, error) {
	v.mu.Lock()
	e, ok := v.verified[token]
	v.mu.Unlock()
	if !ok {
		return Identity{}, false, nil
	}
	now := time.Now
	if v.Now != nil {
		now = v.Now
	}
	if !now().Before(e.expires) {
		return Identity{}, false, nil // let the full check say why
	}
	secret, err := v.Secrets(ctx, e.id.ClientKey)
	if err != nil {
		return Identity{}, true, fmt.Errorf("connect: shared secret: %w", err)
	}
	if !hmac.Equal(secret, e.secret) {
		return Identity{}, false, nil
	}
	return e.id, true, nil
}

func (v *ContextVerifier) remember(token string, e verifiedToken) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.verified == nil || len(v.verified) >= maxVerified {
		v.verified = map[string]verifiedToken{}
	}
	v.verified[token] = e
}

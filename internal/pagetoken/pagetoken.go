// Package pagetoken mints and checks the short-lived tokens of the customer's admin page.
//
// The Support access page runs in a third-party iframe inside the customer's Atlassian site,
// where browsers block cookies, so it cannot keep a session. When Atlassian loads the page
// with a verified, exact-qsh JWT, the service mints a page token bound to the tenant, the
// person's Atlassian accountId and a purpose; the page sends it as a Bearer token on its JSON
// calls. The token proves who loaded the page, never that they may decide: the customer's
// site is asked about that at every decision.
package pagetoken

import (
	"errors"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// PurposeSiteAdmin is the purpose of tokens minted by the Support access page.
const PurposeSiteAdmin = "site-admin"

// MaxTTL is the longest a page token lives; an admin who keeps the page open longer
// reloads it, and Atlassian authenticates them again.
const MaxTTL = 15 * time.Minute

// issuer and typ mark our page tokens, so a token of another kind signed with another key
// is never mistaken for one.
const (
	issuer = "supportbridge/page"
	typ    = "sb-page+jwt"
)

// ErrInvalid means the token is not a valid page token for the purpose. Reason says why in a
// fixed phrase safe to show.
var ErrInvalid = errors.New("invalid page token")

// Error is a rejected token.
type Error struct{ Reason string }

func (e *Error) Error() string { return ErrInvalid.Error() + ": " + e.Reason }

// Is makes every Error match ErrInvalid.
func (e *Error) Is(target error) bool { return target == ErrInvalid }

// Claims is what a page token says.
type Claims struct {
	Tenant    string
	AccountID string
	Purpose   string
	Expires   time.Time
}

// Signer mints and checks page tokens with one key. The key must be derived for this use
// alone from SB_SECRET_KEY, so a page token cannot pass as anything else.
type Signer struct {
	key []byte
	ttl time.Duration
	now func() time.Time
}

// New returns a Signer. ttl is capped at MaxTTL; now nil means time.Now.
func New(key []byte, ttl time.Duration, now func() time.Time) (*Signer, error) {
	if len(key) < 32 {
		return nil, errors.New("pagetoken: key shorter than 32 bytes")
	}
	if ttl <= 0 || ttl > MaxTTL {
		ttl = MaxTTL
	}
	if now == nil {
		now = time.Now
	}
	return &Signer{key: append([]byte(nil), key...), ttl: ttl, now: now}, nil
}

type claims struct {
	jwt.RegisteredClaims
	Tenant  string `json:"tnt"`
	Purpose string `json:"pur"`
}

// Mint returns a token for accountID of tenant for purpose, and when it expires.
func (s *Signer) Mint(tenant, accountID, purpose string) (string, time.Time, error) {
	if tenant == "" || accountID == "" || purpose == "" {
		return "", time.Time{}, errors.New("pagetoken: tenant, account and purpose are required")
	}
	now := s.now().Truncate(time.Second)
	exp := now.Add(s.ttl)
	tok := jwt.NewWithClaims(jwt.SigningMethodHS256, claims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer: issuer, Subject: accountID, Audience: jwt.ClaimStrings{purpose},
			IssuedAt: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(exp),
		},
		Tenant: tenant, Purpose: purpose,
	})
	tok.Header["typ"] = typ
	signed, err := tok.SignedString(s.key)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("sign page token: %w", err)
	}
	return signed, exp, nil
}

// Verify checks token for purpose and returns its claims. Every failure is an *Error.
func (s *Signer) Verify(token, purpose string) (Claims, error) {
	if len(token) > 4096 {
		return Claims{}, &Error{Reason: "malformed token"}
	}
	var c claims
	parsed, err := jwt.ParseWithClaims(token, &c, func(t *jwt.Token) (any, error) {
		if t.Header["typ"] != typ {
			return nil, errors.New("not a page token")
		}
		return s.key, nil
	},
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
		jwt.WithIssuer(issuer), jwt.WithAudience(purpose), jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(), jwt.WithTimeFunc(s.now), jwt.WithLeeway(5*time.Second),
	)
	switch {
	case errors.Is(err, jwt.ErrTokenExpired):
		return Claims{}, &Error{Reason: "page token expired; reload the page"}
	case errors.Is(err, jwt.ErrTokenInvalidAudience):
		return Claims{}, &Error{Reason: "page token is for another purpose"}
	case err != nil || !parsed.Valid:
		return Claims{}, &Error{Reason: "invalid page token"}
	}
	if c.Purpose != purpose || c.Tenant == "" || c.Subject == "" || c.IssuedAt == nil ||
		c.ExpiresAt.Sub(c.IssuedAt.Time) > MaxTTL {
		return Claims{}, &Error{Reason: "invalid page token"}
	}
	return Claims{Tenant: c.Tenant, AccountID: c.Subject, Purpose: c.Purpose, Expires: c.ExpiresAt.Time}, nil
}

package connect

import (
	"context"
	"crypto/rsa"
	"errors"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// KeySource returns Atlassian's install-signing public key for a kid. *KeyFetcher is the
// production implementation; tests may serve keys from memory.
type KeySource interface {
	Key(ctx context.Context, kid string) (*rsa.PublicKey, error)
}

// InstallVerifier checks the RS256 JWT on the installed and uninstalled lifecycle callbacks
// (the "signed-install" API migration). Those requests create and delete tenants, and their
// body carries the shared secret, so they are proven to come from Atlassian by Atlassian's
// own key rather than by a secret the request itself brings.
type InstallVerifier struct {
	// Keys looks up the signing key by the token's kid.
	Keys KeySource
	// Audience is SB_PUBLIC_BASE_URL, the descriptor baseUrl Atlassian puts in aud.
	Audience string
	// BasePath is the path of the public base URL, left out of the qsh.
	BasePath string
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// InstallClaims is what a verified install token says.
type InstallClaims struct {
	// ClientKey is the tenant's id (iss), equal to the clientKey in the request body.
	ClientKey string
	// Subject is the sub claim, if any.
	Subject string
	// KeyID is the kid of the key that signed the token, for the audit trail.
	KeyID string
	// Audience, IssuedAt and ExpiresAt are kept for the audit record of the install.
	Audience  []string
	IssuedAt  time.Time
	ExpiresAt time.Time
}

// Verify authenticates a lifecycle callback. authHeader is the Authorization header, method
// and u the request, bodyClientKey the clientKey from the JSON body (the token must be issued
// by that tenant, or one tenant could install over another).
//
// Errors wrap ErrInvalidToken (answer 401) or ErrKeyUnavailable (answer 503, so that
// Atlassian retries).
func (v *InstallVerifier) Verify(ctx context.Context, authHeader string, method string, u *url.URL, bodyClientKey string) (InstallClaims, error) {
	if v.Keys == nil || v.Audience == "" {
		return InstallClaims{}, errors.New("connect: install verifier needs Keys and Audience")
	}
	token, ok := tokenFromAuthorization(authHeader)
	if !ok {
		return InstallClaims{}, invalid(reasonMissingToken)
	}
	hdr, c, err := parseUnverified(token)
	if err != nil {
		return InstallClaims{}, err
	}

	// Everything that needs no key is checked first, so a forged token costs no request
	// to the key server.
	switch {
	case hdr.Alg != jwt.SigningMethodRS256.Alg():
		return InstallClaims{}, invalid(reasonAlgRS256)
	case hdr.Kid == "":
		return InstallClaims{}, invalid(reasonMissingKID)
	case !validKID(hdr.Kid):
		return InstallClaims{}, invalid(reasonInvalidKID)
	case bodyClientKey == "" || c.Issuer != bodyClientKey:
		return InstallClaims{}, invalid(reasonIssuer)
	case !audienceContains(c.Audience, v.Audience):
		return InstallClaims{}, invalid(reasonAudience)
	case c.QSH == "":
		return InstallClaims{}, invalid(reasonMissingQSH)
	case c.QSH != QSH(method, u, v.BasePath):
		return InstallClaims{}, invalid(reasonQSH)
	}
	if err := jwt.NewValidator(timeOptions(v.Now)...).Validate(c); err != nil {
		return InstallClaims{}, fromJWTError(err)
	}
	if err := checkLifetime(c); err != nil {
		return InstallClaims{}, err
	}

	key, err := v.Keys.Key(ctx, hdr.Kid)
	if err != nil {
		return InstallClaims{}, err
	}

	// The signature and times are checked again by jwt/v5 on the bytes it verifies, so the
	// claims returned are exactly the signed ones.
	var verified claims
	opts := append(timeOptions(v.Now), jwt.WithValidMethods([]string{jwt.SigningMethodRS256.Alg()}))
	_, err = jwt.NewParser(opts...).ParseWithClaims(token, &verified, func(*jwt.Token) (any, error) {
		return key, nil
	})
	if err != nil {
		return InstallClaims{}, fromJWTError(err)
	}
	return InstallClaims{
		ClientKey: verified.Issuer,
		Subject:   verified.Subject,
		KeyID:     hdr.Kid,
		Audience:  slices.Clone([]string(verified.Audience)),
		IssuedAt:  numericTime(verified.IssuedAt),
		ExpiresAt: numericTime(verified.ExpiresAt),
	}, nil
}

// audienceContains compares with and without a trailing slash, because the descriptor
// baseUrl and the configured public URL are easily written one way and the other.
func audienceContains(aud jwt.ClaimStrings, want string) bool {
	want = strings.TrimRight(want, "/")
	if want == "" {
		return false
	}
	for _, a := range aud {
		if strings.TrimRight(a, "/") == want {
			return true
		}
	}
	return false
}

func numericTime(d *jwt.NumericDate) time.Time {
	if d == nil {
		return time.Time{}
	}
	return d.Time
}

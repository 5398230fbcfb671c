package sitesandbox

import (
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/golang-jwt/jwt/v5"

	"github.com/supportbridge/supportbridge/internal/connect"
)

// maxTokenLen bounds the work a caller can make the site do before it is authenticated.
const maxTokenLen = 16 << 10

// authKindOf tells from the Authorization scheme what the caller tried, before any check.
func authKindOf(r *http.Request) AuthKind {
	scheme, _, _ := strings.Cut(strings.TrimSpace(r.Header.Get("Authorization")), " ")
	switch {
	case scheme == "":
		return AuthNone
	case strings.EqualFold(scheme, "JWT"):
		return AuthConnect
	case strings.EqualFold(scheme, "Bearer"):
		return AuthForge
	default:
		return AuthOther
	}
}

// authenticate accepts a Connect app JWT or the Forge system token; the error says why a
// call was refused, for the debug log only (the caller gets a bare 401, like Jira's).
func (s *Site) authenticate(r *http.Request) error {
	scheme, cred, _ := strings.Cut(strings.TrimSpace(r.Header.Get("Authorization")), " ")
	cred = strings.TrimSpace(cred)
	switch {
	case scheme == "":
		return errors.New("no credentials")
	case strings.EqualFold(scheme, "JWT"):
		return s.verifyConnect(r, cred)
	case strings.EqualFold(scheme, "Bearer"):
		// Compared in constant time; an empty configured token accepts nothing.
		if s.opts.SystemToken == "" || subtle.ConstantTimeCompare([]byte(cred), []byte(s.opts.SystemToken)) != 1 {
			return errors.New("unknown bearer token")
		}
		return nil
	default:
		return errors.New("unsupported scheme")
	}
}

// connectClaims are the claims of a Connect app's JWT for a call to the product.
type connectClaims struct {
	jwt.RegisteredClaims
	QSH string `json:"qsh"`
}

// verifyConnect checks an app's JWT as Jira does: HS256 with the tenant's shared secret,
// issued by the app, not expired, and bound by its qsh to this exact method, path and query.
// The qsh is computed on the path relative to the site's base URL, which for a call under
// PathPrefix is the prefix, as connect.HostClient signs it. A context token (qsh
// "context-qsh") is for an app's own back end and is refused here.
func (s *Site) verifyConnect(r *http.Request, token string) error {
	if len(s.opts.SharedSecret) == 0 {
		return errors.New("connect jwt not accepted by this site")
	}
	if token == "" || len(token) > maxTokenLen {
		return errors.New("malformed connect jwt")
	}
	var c connectClaims
	_, err := jwt.ParseWithClaims(token, &c, func(*jwt.Token) (any, error) { return s.opts.SharedSecret, nil },
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
		jwt.WithIssuer(s.opts.AppKey),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithTimeFunc(s.now),
	)
	if err != nil {
		return fmt.Errorf("connect jwt: %w", err)
	}
	basePath := ""
	if _, prefixed := s.stripPrefix(r.URL.Path); prefixed {
		basePath = s.opts.PathPrefix
	}
	want := connect.QSH(r.Method, r.URL, basePath)
	if subtle.ConstantTimeCompare([]byte(c.QSH), []byte(want)) != 1 {
		return errors.New("connect jwt: qsh does not match the request")
	}
	return nil
}

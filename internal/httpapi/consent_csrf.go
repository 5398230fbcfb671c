package httpapi

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"net/http"

	"github.com/gin-gonic/gin"
)

// The consent forms use a double-submit cookie whose hidden-field twin is an HMAC rather than
// a copy. A plain copy would let anyone who can plant a cookie on our host (a sibling
// subdomain can, for a cookie that is not __Host-) pick both halves; with the HMAC they would
// also need the server key. Binding the field to the token's hash keeps a field read from one
// consent page from working on another.
const (
	csrfCookieName = "sb_consent_csrf"
	csrfFieldName  = "csrf"
	// csrfCookieBytes is the cookie's entropy; 256 bits like the consent token itself.
	csrfCookieBytes = 32
)

// csrfKeyLabel separates the CSRF key from every other HMAC derived from SB_SECRET_KEY.
const csrfKeyLabel = "supportbridge consent csrf v1"

// csrfKey derives the key of the field HMAC from the service secret key. Without one (a dev
// run without SB_SECRET_KEY) the key is the label alone: the cookie still has to match, so
// cross-site posts fail, only the planted-cookie defence is lost.
func (s *Server) csrfKey() []byte {
	m := hmac.New(sha256.New, s.cfg.SecretKey.Bytes())
	m.Write([]byte(csrfKeyLabel))
	return m.Sum(nil)
}

// csrfField is the hidden-field value that goes with a cookie value on the page of token.
func csrfField(key []byte, cookie, token string) string {
	th := sha256.Sum256([]byte(token))
	m := hmac.New(sha256.New, key)
	m.Write([]byte(cookie))
	m.Write([]byte{0})
	m.Write(th[:])
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// csrfCookie returns the browser's CSRF cookie, minting and setting a new one when it has
// none or a malformed one. A SameSite=Strict cookie is not sent when the customer arrives
// from the notification email (a cross-site navigation), so minting here is the normal path.
func (s *Server) csrfCookie(c *gin.Context) string {
	if v, err := c.Cookie(csrfCookieName); err == nil && validCSRFCookie(v) {
		return v
	}
	var b [csrfCookieBytes]byte
	rand.Read(b[:])
	v := base64.RawURLEncoding.EncodeToString(b[:])
	http.SetCookie(c.Writer, &http.Cookie{
		Name: csrfCookieName, Value: v, Path: "/consent/",
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: s.secureCookies(),
	})
	return v
}

// secureCookies is true when customers reach us over https, which is every deployment but a
// loopback test or dev run (config refuses plain http elsewhere).
func (s *Server) secureCookies() bool {
	return s.cfg.PublicBaseURL != nil && s.cfg.PublicBaseURL.Scheme == "https"
}

func validCSRFCookie(v string) bool {
	b, err := base64.RawURLEncoding.DecodeString(v)
	return err == nil && len(b) == csrfCookieBytes
}

// checkCSRF reports whether a consent form post carries the cookie and the matching field.
// The comparison is constant-time so the field cannot be guessed byte by byte.
func (s *Server) checkCSRF(c *gin.Context, token string) bool {
	cookie, err := c.Cookie(csrfCookieName)
	if err != nil || !validCSRFCookie(cookie) {
		return false
	}
	want := csrfField(s.csrfKey(), cookie, token)
	got := c.Request.PostFormValue(csrfFieldName)
	return subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
}

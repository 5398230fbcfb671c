package connect

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// ErrEmailUnavailable means the host product did not tell us the user's email: the app lacks
// the ACCESS_EMAIL_ADDRESSES scope, the user hides it, or the site did not answer. Callers
// fall back to an email the user typed.
var ErrEmailUnavailable = errors.New("connect: user email unavailable from the host product")

// ErrEmailRefused is joined to ErrEmailUnavailable when the site answered and will not give
// the email (the scope is not granted, the account is unknown or hides it): asking again
// will not change that, unlike a site that did not answer.
var ErrEmailRefused = errors.New("connect: the site gives no email for this account")

// HostClient calls a tenant's Atlassian site as the app itself: each request carries an
// HS256 JWT signed with the tenant's shared secret, with the qsh of that exact request.
type HostClient struct {
	// AppKey is the descriptor key; Atlassian expects it as the token's issuer.
	AppKey string
	// HTTP sends the requests; its timeout bounds how long a report waits for an email.
	HTTP *http.Client
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// UserEmail asks the site at baseURL for the email of accountID
// (GET /rest/api/3/user/email, which needs the ACCESS_EMAIL_ADDRESSES scope).
func (c *HostClient) UserEmail(ctx context.Context, baseURL string, sharedSecret []byte, accountID string) (string, error) {
	base, err := url.Parse(strings.TrimSuffix(baseURL, "/"))
	if err != nil || base.Host == "" {
		return "", fmt.Errorf("%w: bad base url", ErrEmailUnavailable)
	}
	u := *base
	u.Path = base.Path + "/rest/api/3/user/email"
	u.RawQuery = url.Values{"accountId": {accountID}}.Encode()
	now := time.Now
	if c.Now != nil {
		now = c.Now
	}
	t := now()
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
		"iss": c.AppKey, "iat": t.Unix(), "exp": t.Add(3 * time.Minute).Unix(),
		"qsh": QSH(http.MethodGet, &u, base.Path),
	}).SignedString(sharedSecret)
	if err != nil {
		return "", fmt.Errorf("sign host token: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrEmailUnavailable, err)
	}
	req.Header.Set("Authorization", "JWT "+tok)
	req.Header.Set("Accept", "application/json")
	client := c.HTTP
	if client == nil {
		client = &http.Client{Timeout: 3 * time.Second}
	}
	resp, err := client.Do(req)
	if err != nil {
		// The transport error quotes the URL, whose query names the account: keep only
		// the cause, so the error can be logged.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return "", fmt.Errorf("%w: %w", ErrEmailUnavailable, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		switch resp.StatusCode {
		case http.StatusUnauthorized, http.StatusForbidden, http.StatusNotFound:
			return "", fmt.Errorf("%w: %w: status %d", ErrEmailUnavailable, ErrEmailRefused, resp.StatusCode)
		}
		return "", fmt.Errorf("%w: status %d", ErrEmailUnavailable, resp.StatusCode)
	}
	var body struct {
		AccountID string `json:"accountId"`
		Email     string `json:"email"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&body); err != nil || body.Email == "" {
		return "", fmt.Errorf("%w: %w: unreadable answer", ErrEmailUnavailable, ErrEmailRefused)
	}
	if body.AccountID != "" && body.AccountID != accountID {
		return "", fmt.Errorf("%w: %w: answer for another account", ErrEmailUnavailable, ErrEmailRefused)
	}
	return body.Email, nil
}

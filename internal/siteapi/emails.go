package siteapi

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

	"github.com/supportbridge/supportbridge/internal/connect"
	"github.com/supportbridge/supportbridge/internal/delivery"
)

// Emails implements delivery.Sites: it asks the reporter's site for the email of their
// accountId (GET /rest/api/3/user/email). A Connect tenant is asked with an app JWT signed
// with its shared secret (scope ACCESS_EMAIL_ADDRESSES); a Forge installation with the app
// system token Forge sent with the report, at the installation's API base URL. Without
// either there is nobody to ask, and the email stays unconfirmed.
type Emails struct {
	// Host asks Connect sites; nil asks none (SB_EMAIL_FROM_HOST=false).
	Host *connect.HostClient
	// HTTP sends the Forge calls; nil means a client with a 5 s timeout.
	HTTP *http.Client
	// Rewrite, when set, maps a site's base URL (or a Forge API base URL) to where it is
	// reached (dev mode's demo site); production leaves it nil.
	Rewrite func(baseURL string) string
}

// VerifiedEmail returns the site's answer; delivery.ErrNoVerifiedEmail when the site will
// not give one, another error when it did not answer.
func (e Emails) VerifiedEmail(ctx context.Context, r delivery.Reporter) (string, error) {
	if !r.SiteToken.IsZero() && r.SiteAPI != "" {
		return e.forgeEmail(ctx, r)
	}
	t := r.Tenant
	if e.Host == nil {
		return "", fmt.Errorf("%w: asking Connect sites is switched off (SB_EMAIL_FROM_HOST)", delivery.ErrNoVerifiedEmail)
	}
	if t.SharedSecret.IsZero() || t.BaseURL == "" {
		return "", fmt.Errorf("%w: a Forge installation sent no app system token", delivery.ErrNoVerifiedEmail)
	}
	email, err := e.Host.UserEmail(ctx, e.rewrite(t.BaseURL), t.SharedSecret.Bytes(), r.AccountID)
	if errors.Is(err, connect.ErrEmailRefused) {
		return "", fmt.Errorf("%w: %w", delivery.ErrNoVerifiedEmail, err)
	}
	return email, err
}

func (e Emails) rewrite(base string) string {
	if e.Rewrite != nil {
		return e.Rewrite(base)
	}
	return base
}

// forgeEmail asks a Forge installation's API base URL as the app (system token).
func (e Emails) forgeEmail(ctx context.Context, r delivery.Reporter) (string, error) {
	base, err := siteURL(e.rewrite(r.SiteAPI))
	if err != nil {
		return "", fmt.Errorf("%w: %w", delivery.ErrNoVerifiedEmail, err)
	}
	u := *base
	u.Path = strings.TrimRight(base.Path, "/") + "/rest/api/3/user/email"
	u.RawQuery = url.Values{"accountId": {r.AccountID}}.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return "", err
	}
	req.Header.Set("Authorization", "Bearer "+r.SiteToken.Reveal())
	req.Header.Set("Accept", "application/json")
	client := e.HTTP
	if client == nil {
		client = &http.Client{Timeout: 5 * time.Second}
	}
	resp, err := client.Do(req)
	if err != nil {
		return "", fmt.Errorf("ask the site for the reporter's email: %w", scrubURLError(err))
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusOK:
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden || resp.StatusCode == http.StatusNotFound:
		io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		return "", fmt.Errorf("%w: the site answered %d", delivery.ErrNoVerifiedEmail, resp.StatusCode)
	default:
		io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		return "", fmt.Errorf("ask the site for the reporter's email: status %d", resp.StatusCode)
	}
	var body struct {
		AccountID string `json:"accountId"`
		Email     string `json:"email"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&body); err != nil || body.Email == "" ||
		(body.AccountID != "" && body.AccountID != r.AccountID) {
		return "", fmt.Errorf("%w: unreadable answer", delivery.ErrNoVerifiedEmail)
	}
	return body.Email, nil
}

// scrubURLError drops the URL (with its query) from a transport error.
func scrubURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

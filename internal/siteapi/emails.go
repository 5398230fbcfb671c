package siteapi

import (
	"context"
	"errors"
	"fmt"

	"github.com/supportbridge/supportbridge/internal/connect"
	"github.com/supportbridge/supportbridge/internal/delivery"
	"github.com/supportbridge/supportbridge/internal/tenant"
)

// Emails implements delivery.Sites: it asks a Connect tenant's site for the email of an
// accountId (GET /rest/api/3/user/email, scope ACCESS_EMAIL_ADDRESSES, app JWT with the
// tenant's shared secret). A Forge-only installation has no secret to sign with and no token
// the worker could use later, so its reporters' emails are never confirmed.
type Emails struct {
	Host *connect.HostClient
	// Rewrite, when set, maps the site's base URL to where it is reached (dev mode's demo
	// site); production leaves it nil.
	Rewrite func(baseURL string) string
}

// VerifiedEmail returns the site's answer; delivery.ErrNoVerifiedEmail when the site will
// not give one, another error when it did not answer.
func (e Emails) VerifiedEmail(ctx context.Context, t tenant.Tenant, accountID string) (string, error) {
	if t.SharedSecret.IsZero() || t.BaseURL == "" {
		return "", fmt.Errorf("%w: a Forge-only installation", delivery.ErrNoVerifiedEmail)
	}
	base := t.BaseURL
	if e.Rewrite != nil {
		base = e.Rewrite(base)
	}
	email, err := e.Host.UserEmail(ctx, base, t.SharedSecret.Bytes(), accountID)
	if errors.Is(err, connect.ErrEmailRefused) {
		return "", fmt.Errorf("%w: %w", delivery.ErrNoVerifiedEmail, err)
	}
	return email, err
}

package siteapi

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/supportbridge/supportbridge/internal/connect"
	"github.com/supportbridge/supportbridge/internal/consent"
	"github.com/supportbridge/supportbridge/internal/tenant"
)

// ConsentTenants tells consent which installations may take part and where each site's
// administrators decide: the Connect admin page, or the Forge app's admin page.
type ConsentTenants struct {
	Dir    Tenants
	AppKey string
}

var _ consent.Tenants = ConsentTenants{}

// Active is nil for an installed, enabled tenant and consent.ErrTenantInactive otherwise.
func (t ConsentTenants) Active(ctx context.Context, key string) error {
	tn, err := t.Dir.Get(ctx, key)
	if errors.Is(err, tenant.ErrUninstalled) || errors.Is(err, tenant.ErrNotFound) {
		return consent.ErrTenantInactive
	}
	if err != nil {
		return err
	}
	if !tn.Installed || !tn.Enabled {
		return consent.ErrTenantInactive
	}
	return nil
}

// AdminPageURL is the deep link a ticket comment gives: into the customer's own site, where
// only its administrators can use it.
func (t ConsentTenants) AdminPageURL(ctx context.Context, key, requestID string) (string, error) {
	tn, err := t.Dir.Get(ctx, key)
	if err != nil {
		return "", err
	}
	base := strings.TrimRight(tn.BaseURL, "/")
	if base == "" {
		return "", fmt.Errorf("tenant has no site url")
	}
	if !tn.SharedSecret.IsZero() { // a Connect installation
		return base + "/plugins/servlet/ac/" + url.PathEscape(t.AppKey) + "/" + connect.SupportAccessKey +
			"?ac.request=" + url.QueryEscape(requestID), nil
	}
	app := strings.TrimPrefix(tn.ForgeAppID, "ari:cloud:ecosystem::app/")
	if app == "" || tn.ForgeEnvironmentID == "" {
		// Without the environment the page cannot be named; the site's apps admin lists it.
		return base + "/jira/settings/apps", nil
	}
	return base + "/jira/settings/apps/" + url.PathEscape(app) + "/" + url.PathEscape(tn.ForgeEnvironmentID), nil
}

// Package tenant holds installations of the app (account data) and the in-process directory
// that answers "who is this tenant and what is its secret" without a Redis round trip on
// every authenticated request.
package tenant

import (
	"context"
	"errors"
	"time"

	"github.com/supportbridge/supportbridge/internal/secret"
)

// Sentinel errors of the tenant domain.
var (
	// ErrNotFound means no installation has this id.
	ErrNotFound = errors.New("tenant not found")
	// ErrUninstalled means the app was uninstalled from this site; its tokens stop working.
	ErrUninstalled = errors.New("tenant uninstalled")
)

// Tenant is one installation of the app on an Atlassian site. The Connect clientKey is its
// id; a Forge-only installation uses its cloud id.
type Tenant struct {
	ClientKey                string `json:"clientKey"`
	Key                      string `json:"key"` // the app key
	BaseURL                  string `json:"baseUrl"`
	DisplayURL               string `json:"displayUrl,omitempty"`
	ProductType              string `json:"productType,omitempty"`
	Description              string `json:"description,omitempty"`
	ServiceEntitlementNumber string `json:"serviceEntitlementNumber,omitempty"`
	EntitlementID            string `json:"entitlementId,omitempty"`
	EntitlementNumber        string `json:"entitlementNumber,omitempty"`
	OAuthClientID            string `json:"oauthClientId,omitempty"`
	InstallationID           string `json:"installationId,omitempty"` // Connect's ARI, shared with Forge on migrated apps
	CloudID                  string `json:"cloudId,omitempty"`
	ForgeInstallationID      string `json:"forgeInstallationId,omitempty"`
	ForgeAppID               string `json:"forgeAppId,omitempty"`
	// ForgeEnvironmentID is the Forge environment of the installation; with the app id it
	// makes the URL of the app's admin page in the site.
	ForgeEnvironmentID string        `json:"forgeEnvironmentId,omitempty"`
	SharedSecret       secret.Secret `json:"-"` // stored sealed by the adapter, never serialised here
	Enabled            bool          `json:"enabled"`
	Installed          bool          `json:"installed"`
	InstalledAt        time.Time     `json:"installedAt"`
	UpdatedAt          time.Time     `json:"updatedAt"`
	UninstalledAt      time.Time     `json:"uninstalledAt,omitzero"`
}

// Active reports whether tokens of this tenant may be accepted.
func (t Tenant) Active() bool { return t.Installed }

// Store is what the tenant domain needs from persistence.
type Store interface {
	Get(ctx context.Context, clientKey string) (Tenant, error)
	Save(ctx context.Context, t Tenant) error
	FindByCloudID(ctx context.Context, cloudID string) (Tenant, error)
	FindByInstallationID(ctx context.Context, installationID string) (Tenant, error)
}

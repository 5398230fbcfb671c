package report

import (
	"cmp"
	"encoding/json"
	"strings"
	"time"

	"github.com/supportbridge/supportbridge/internal/tenant"
)

// BundleSchemaVersion is the version of the support bundle format that
// api/support-bundle.schema.json describes; it changes when a consumer would have to.
const BundleSchemaVersion = 1

// Bundle is the support bundle: one JSON document with everything support knows about a
// report, attached to the JSM request so that tools can read it. It is built field by field
// from the tenant, never by embedding tenant.Tenant, so that a field added there (the shared
// secret above all) cannot end up here by accident.
type Bundle struct {
	SchemaVersion int              `json:"schemaVersion"`
	ReportID      string           `json:"reportId"`
	Marker        string           `json:"marker"`
	ReceivedAt    time.Time        `json:"receivedAt"`
	Summary       string           `json:"summary"`
	Description   string           `json:"description,omitempty"`
	Account       BundleAccount    `json:"account"`
	Reporter      BundleReporter   `json:"reporter"`
	Operation     Operation        `json:"operation"`
	RecentErrors  []RecentError    `json:"recentErrors"`
	Environment   Environment      `json:"environment"`
	Attachments   []AttachmentMeta `json:"attachments"`
	// Redactions counts what scrubbing removed, per kind; the values themselves are gone.
	Redactions map[string]int `json:"redactions"`
}

// BundleAccount is the account data: which installation of which app on which site.
type BundleAccount struct {
	AppKey                   string `json:"appKey,omitempty"`
	ProductType              string `json:"productType,omitempty"`
	ClientKey                string `json:"clientKey"`
	BaseURL                  string `json:"baseUrl,omitempty"`
	DisplayURL               string `json:"displayUrl,omitempty"`
	ServiceEntitlementNumber string `json:"serviceEntitlementNumber,omitempty"`
	EntitlementID            string `json:"entitlementId,omitempty"`
	EntitlementNumber        string `json:"entitlementNumber,omitempty"`
	OAuthClientID            string `json:"oauthClientId,omitempty"`
	InstallationID           string `json:"installationId,omitempty"`
	CloudID                  string `json:"cloudId,omitempty"`
	ForgeInstallationID      string `json:"forgeInstallationId,omitempty"`
	ForgeAppID               string `json:"forgeAppId,omitempty"`
}

// BundleReporter is who reported. The address is the one the reporter's site confirmed,
// which support needs to answer them; with emailSource "unverified" there is none, and
// support answers through the request. A typed, unconfirmed address is never in the bundle.
type BundleReporter struct {
	AccountID   string      `json:"accountId"`
	Email       string      `json:"email,omitempty"`
	EmailSource EmailSource `json:"emailSource"`
}

// NewBundle assembles the support bundle of a built report. appKey is the app the report
// was filed through; when empty, the tenant's own key is used.
//
// As a last line of defence the tenant's shared secret is removed from every string again,
// even though Build already scrubbed the report: a Report put together by other code, or a
// tenant record with the secret copied into another field, must not leak it either.
func NewBundle(r Report, t tenant.Tenant, appKey string) Bundle {
	if appKey == "" {
		appKey = t.Key
	}
	hide := secretHider(t.SharedSecret.Reveal())
	b := Bundle{
		SchemaVersion: BundleSchemaVersion,
		ReportID:      hide(r.ID),
		Marker:        hide(r.Marker),
		ReceivedAt:    r.ReceivedAt.UTC(),
		Summary:       hide(r.Summary),
		Description:   hide(r.Description),
		Account: BundleAccount{
			AppKey:                   hide(appKey),
			ProductType:              hide(t.ProductType),
			ClientKey:                hide(t.ClientKey),
			BaseURL:                  hide(t.BaseURL),
			DisplayURL:               hide(t.DisplayURL),
			ServiceEntitlementNumber: hide(t.ServiceEntitlementNumber),
			EntitlementID:            hide(t.EntitlementID),
			EntitlementNumber:        hide(t.EntitlementNumber),
			OAuthClientID:            hide(t.OAuthClientID),
			InstallationID:           hide(t.InstallationID),
			CloudID:                  hide(t.CloudID),
			ForgeInstallationID:      hide(t.ForgeInstallationID),
			ForgeAppID:               hide(t.ForgeAppID),
		},
		Reporter: BundleReporter{
			AccountID:   hide(r.AccountID),
			Email:       hide(r.Email),
			EmailSource: cmp.Or(r.EmailSource, EmailUnverified), // nobody asked the site
		},
		Operation: Operation{
			Name:         hide(r.Operation.Name),
			OccurredAt:   r.Operation.OccurredAt.UTC(),
			HTTPStatus:   r.Operation.HTTPStatus,
			ErrorMessage: hide(r.Operation.ErrorMessage),
			Stack:        hide(r.Operation.Stack),
		},
		Environment: Environment{
			Locale:         hide(r.Environment.Locale),
			Timezone:       hide(r.Environment.Timezone),
			Screen:         hide(r.Environment.Screen),
			URL:            hide(r.Environment.URL),
			UserAgent:      hide(r.Environment.UserAgent),
			Browser:        hide(r.Environment.Browser),
			BrowserVersion: hide(r.Environment.BrowserVersion),
			OS:             hide(r.Environment.OS),
		},
		// Empty, not null: consumers iterate without a nil check.
		RecentErrors: make([]RecentError, 0, len(r.RecentErrors)),
		Attachments:  make([]AttachmentMeta, 0, len(r.Attachments)),
		Redactions:   make(map[string]int, len(r.Redactions)),
	}
	for _, id := range r.Operation.RequestIDs {
		b.Operation.RequestIDs = append(b.Operation.RequestIDs, hide(id))
	}
	for _, e := range r.RecentErrors {
		b.RecentErrors = append(b.RecentErrors, RecentError{
			Message: hide(e.Message), OccurredAt: e.OccurredAt.UTC(), Source: hide(e.Source),
		})
	}
	for _, a := range r.Attachments {
		a.ID, a.Filename, a.MediaType = hide(a.ID), hide(a.Filename), hide(a.MediaType)
		b.Attachments = append(b.Attachments, a)
	}
	for k, n := range r.Redactions {
		b.Redactions[hide(k)] = n
	}
	return b
}

// JSON encodes the bundle, indented: agents open it as a file.
func (b Bundle) JSON() ([]byte, error) {
	return json.MarshalIndent(b, "", "  ")
}

// minHiddenSecret mirrors the scrubber: shorter strings occur in ordinary text by chance,
// and hiding them would mangle the bundle without protecting anything real.
const minHiddenSecret = 8

// secretHider returns a function that replaces every occurrence of secret. A secret that the
// marker itself contains cannot be hidden by any replacement and is left alone, as the
// scrubber does.
func secretHider(secret string) func(string) string {
	if len(secret) < minHiddenSecret || strings.Contains("[redacted]", secret) {
		return func(s string) string { return s }
	}
	return func(s string) string {
		// Repeat: with a secret containing brackets, a marker and its neighbours can spell
		// the secret anew. If that does not settle, the whole string goes.
		for range 4 {
			if !strings.Contains(s, secret) {
				return s
			}
			s = strings.ReplaceAll(s, secret, "[redacted]")
		}
		if strings.Contains(s, secret) {
			return "[redacted]"
		}
		return s
	}
}

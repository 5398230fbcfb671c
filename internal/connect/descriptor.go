package connect

import "strings"

// Paths Atlassian calls, relative to the descriptor baseUrl. httpapi registers the same
// paths, so they are named once here.
const (
	PathInstalled    = "/connect/installed"
	PathUninstalled  = "/connect/uninstalled"
	PathEnabled      = "/connect/enabled"
	PathDisabled     = "/connect/disabled"
	PathReportDialog = "/connect/report-dialog"
	// PathSupportAccess is the admin page where a site administrator decides on log access.
	PathSupportAccess = "/connect/support-access"
)

// Module keys; the web item opens the dialog by its key.
const (
	reportDialogKey  = "report-problem-dialog"
	reportWebItemKey = "report-problem"
	// SupportAccessKey is the admin page's module key; ticket comments link to it as
	// <site>/plugins/servlet/ac/<app key>/<module key>.
	SupportAccessKey = "support-access"
)

// DescriptorConfig is what varies between deployments of the descriptor.
type DescriptorConfig struct {
	// Key is the app key (SB_CONNECT_APP_KEY); Atlassian identifies the app by it.
	Key string
	// Name is shown to administrators and must match the Marketplace listing.
	Name string
	// BaseURL is SB_PUBLIC_BASE_URL; every module and lifecycle URL is relative to it.
	BaseURL string
	// Scopes are Connect scopes such as "read" or "WRITE"; they are upper-cased.
	Scopes []string
	// VendorName and VendorURL fill the optional vendor block.
	VendorName string
	VendorURL  string
}

// Descriptor builds atlassian-connect.json. It opts into the "signed-install" and
// "context-qsh" API migrations, because InstallVerifier accepts only RS256 installs and
// ContextVerifier only tokens with a qsh.
func Descriptor(c DescriptorConfig) map[string]any {
	scopes := make([]string, 0, len(c.Scopes))
	for _, s := range c.Scopes {
		if s = strings.ToUpper(strings.TrimSpace(s)); s != "" {
			scopes = append(scopes, s)
		}
	}
	d := map[string]any{
		"key":  c.Key,
		"name": c.Name,
		// Relative URLs are appended to baseUrl; a trailing slash would double it.
		"baseUrl":        strings.TrimRight(c.BaseURL, "/"),
		"apiVersion":     1,
		"authentication": map[string]any{"type": "jwt"},
		"lifecycle": map[string]any{
			"installed":   PathInstalled,
			"uninstalled": PathUninstalled,
			"enabled":     PathEnabled,
			"disabled":    PathDisabled,
		},
		"apiMigrations": map[string]any{
			"signed-install": true,
			"context-qsh":    true,
		},
		"scopes": scopes,
		"modules": map[string]any{
			"dialogs": []any{
				map[string]any{
					"key": reportDialogKey,
					"url": PathReportDialog,
					"options": map[string]any{
						"size": "medium",
						// The page draws its own form and buttons.
						"chrome": false,
						"header": map[string]any{"value": "Report a problem"},
					},
				},
			},
			"webItems": []any{
				map[string]any{
					"key":      reportWebItemKey,
					"name":     map[string]any{"value": "Report a problem"},
					"location": "system.top.navigation.bar",
					"context":  "addon",
					"url":      PathReportDialog,
					"target": map[string]any{
						"type":    "dialogmodule",
						"options": map[string]any{"key": reportDialogKey},
					},
				},
			},
			// Where a site administrator decides on support's requests to read logs.
			// Atlassian shows admin pages to administrators only, but that is a courtesy:
			// the service asks the site about the person at every decision.
			"adminPages": []any{
				map[string]any{
					"key":  SupportAccessKey,
					"name": map[string]any{"value": "Support access"},
					"url":  PathSupportAccess,
				},
			},
		},
	}
	if c.VendorName != "" {
		vendor := map[string]any{"name": c.VendorName}
		if c.VendorURL != "" {
			vendor["url"] = c.VendorURL
		}
		d["vendor"] = vendor
	}
	return d
}

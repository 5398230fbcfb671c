package httpapi

import (
	"context"
	"errors"
	"html/template"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/supportbridge/supportbridge/internal/connect"
	"github.com/supportbridge/supportbridge/internal/forge"
	"github.com/supportbridge/supportbridge/internal/secret"
	"github.com/supportbridge/supportbridge/internal/tenant"
)

// lifecyclePayload is the body Atlassian posts to the Connect lifecycle URLs.
type lifecyclePayload struct {
	Key                      string `json:"key"`
	ClientKey                string `json:"clientKey"`
	SharedSecret             string `json:"sharedSecret"`
	BaseURL                  string `json:"baseUrl"`
	DisplayURL               string `json:"displayUrl"`
	ProductType              string `json:"productType"`
	Description              string `json:"description"`
	ServiceEntitlementNumber string `json:"serviceEntitlementNumber"`
	EntitlementID            string `json:"entitlementId"`
	EntitlementNumber        string `json:"entitlementNumber"`
	OAuthClientID            string `json:"oauthClientId"`
	InstallationID           string `json:"installationId"`
	CloudID                  string `json:"cloudId"`
	EventType                string `json:"eventType"`
}

// readLifecycle decodes the body and authenticates it. The body is parsed first because the
// token's issuer must equal the body's clientKey.
func (s *Server) readLifecycle(c *gin.Context, signedInstall bool) (lifecyclePayload, error) {
	var p lifecyclePayload
	if err := decodeJSON(c.Request.Body, &p); err != nil {
		return p, err
	}
	if strings.TrimSpace(p.ClientKey) == "" || len(p.ClientKey) > 256 {
		return p, badRequest("The lifecycle payload is invalid.", FieldError{Field: "/clientKey", Message: "is required (at most 256 characters)"})
	}
	if signedInstall {
		if _, err := s.install.Verify(c.Request.Context(), c.GetHeader("Authorization"), c.Request.Method, requestURL(c), p.ClientKey); err != nil {
			return p, err
		}
		return p, nil
	}
	token, ok := connect.TokenFromRequest(c.Request)
	if !ok {
		return p, unauthorized("A lifecycle callback needs a JWT in the Authorization header.")
	}
	id, err := s.context.Verify(c.Request.Context(), token, c.Request.Method, requestURL(c), false)
	if err != nil {
		return p, err
	}
	if id.ClientKey != p.ClientKey {
		return p, unauthorized("Token rejected: issuer does not match clientKey.")
	}
	return p, nil
}

// validateInstall checks what an install may set; the baseUrl matters most, because the
// service later sends signed requests there.
func (s *Server) validateInstall(p lifecyclePayload, installing bool) error {
	var fields []FieldError
	if p.Key != s.cfg.ConnectAppKey {
		fields = append(fields, FieldError{Field: "/key", Message: "must be this app's key"})
	}
	if err := checkBaseURL(p.BaseURL, s.cfg.ConnectAllowedHosts); err != "" {
		fields = append(fields, FieldError{Field: "/baseUrl", Message: err})
	}
	if p.DisplayURL != "" {
		if err := checkBaseURL(p.DisplayURL, s.cfg.ConnectAllowedHosts); err != "" {
			fields = append(fields, FieldError{Field: "/displayUrl", Message: err})
		}
	}
	if installing && len(p.SharedSecret) < 16 {
		fields = append(fields, FieldError{Field: "/sharedSecret", Message: "is required (at least 16 characters)"})
	}
	for name, v := range map[string]string{"/productType": p.ProductType, "/description": p.Description,
		"/installationId": p.InstallationID, "/cloudId": p.CloudID, "/oauthClientId": p.OAuthClientID} {
		if len(v) > 1024 {
			fields = append(fields, FieldError{Field: name, Message: "is too long"})
		}
	}
	if len(fields) > 0 {
		return badRequest("The lifecycle payload is invalid.", fields...)
	}
	return nil
}

// checkBaseURL accepts https URLs on an allowed host suffix and returns why not otherwise.
func checkBaseURL(raw string, suffixes []string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return "must be an absolute URL"
	}
	if u.Scheme != "https" {
		return "must use https"
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return "must not carry credentials, a query or a fragment"
	}
	host := strings.ToLower(u.Hostname())
	for _, suf := range suffixes {
		if strings.HasSuffix(host, strings.ToLower(suf)) && len(host) > len(suf) {
			return ""
		}
	}
	return "host is not an Atlassian site (" + strings.Join(suffixes, ", ") + ")"
}

func (s *Server) installed(c *gin.Context) {
	ctx := c.Request.Context()
	p, err := s.readLifecycle(c, true)
	if err == nil {
		err = s.validateInstall(p, true)
	}
	if err != nil {
		s.fail(c, err)
		return
	}
	now := s.now().UTC()
	t, err := s.tenants.Lookup(ctx, p.ClientKey)
	switch {
	case errors.Is(err, tenant.ErrNotFound):
		t = tenant.Tenant{ClientKey: p.ClientKey, InstalledAt: now}
	case err != nil:
		s.fail(c, err)
		return
	}
	t.Key, t.BaseURL, t.DisplayURL, t.ProductType, t.Description = p.Key, p.BaseURL, p.DisplayURL, p.ProductType, p.Description
	t.ServiceEntitlementNumber, t.EntitlementID, t.EntitlementNumber = p.ServiceEntitlementNumber, p.EntitlementID, p.EntitlementNumber
	t.OAuthClientID, t.InstallationID = p.OAuthClientID, p.InstallationID
	if p.CloudID != "" {
		t.CloudID = p.CloudID
	}
	t.SharedSecret = secret.New(p.SharedSecret)
	t.Installed, t.Enabled, t.UpdatedAt, t.UninstalledAt = true, true, now, time.Time{}
	if t.InstalledAt.IsZero() {
		t.InstalledAt = now
	}
	if err := s.tenants.Save(ctx, t); err != nil {
		s.fail(c, err)
		return
	}
	s.log.InfoContext(ctx, "tenant_installed", "client_key", t.ClientKey, "product", t.ProductType)
	c.Status(http.StatusNoContent)
}

func (s *Server) uninstalled(c *gin.Context) {
	ctx := c.Request.Context()
	p, err := s.readLifecycle(c, true)
	if err != nil {
		s.fail(c, err)
		return
	}
	t, err := s.tenants.Lookup(ctx, p.ClientKey)
	if errors.Is(err, tenant.ErrNotFound) {
		c.Status(http.StatusNoContent) // nothing to forget; Atlassian must not retry
		return
	}
	if err != nil {
		s.fail(c, err)
		return
	}
	now := s.now().UTC()
	t.Installed, t.Enabled, t.UninstalledAt, t.UpdatedAt = false, false, now, now
	if err := s.tenants.Save(ctx, t); err != nil {
		s.fail(c, err)
		return
	}
	if err := s.endConsent(ctx, t.ClientKey); err != nil {
		s.fail(c, err)
		return
	}
	s.log.InfoContext(ctx, "tenant_uninstalled", "client_key", t.ClientKey)
	c.Status(http.StatusNoContent)
}

// endConsent ends the tenant's grants and pending requests when it uninstalls. A failure is
// answered with 503 so that Atlassian repeats the callback; ending is idempotent.
func (s *Server) endConsent(ctx context.Context, tenantKey string) error {
	if s.consent.Service == nil {
		return nil
	}
	if err := s.consent.Service.TenantUninstalled(ctx, tenantKey); err != nil {
		s.log.ErrorContext(ctx, "end_consent_on_uninstall_failed", "client_key", tenantKey, "error", err)
		return unavailable("Ending the site's log-access grants failed; retry the callback.", 10)
	}
	return nil
}

func (s *Server) enabled(c *gin.Context)  { s.setEnabled(c, true) }
func (s *Server) disabled(c *gin.Context) { s.setEnabled(c, false) }

func (s *Server) setEnabled(c *gin.Context, on bool) {
	ctx := c.Request.Context()
	p, err := s.readLifecycle(c, false)
	if err != nil {
		s.fail(c, err)
		return
	}
	t, err := s.tenants.Get(ctx, p.ClientKey)
	if err != nil {
		s.fail(c, err)
		return
	}
	t.Enabled, t.UpdatedAt = on, s.now().UTC()
	if err := s.tenants.Save(ctx, t); err != nil {
		s.fail(c, err)
		return
	}
	c.Status(http.StatusNoContent)
}

var dialogPage = template.Must(template.New("dialog").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Report a problem</title></head>
<body><main><h1>Report a problem</h1>
<p>Tell us what went wrong. The report form arrives with the reporting widget; your site is connected.</p>
</main></body></html>`))

// reportDialog serves the "Report a problem" dialog that Atlassian frames. Its token comes in
// the jwt query parameter and must carry the qsh of this exact URL.
func (s *Server) reportDialog(c *gin.Context) {
	token := c.Query("jwt")
	if token == "" {
		s.failPage(c, unauthorized("The dialog URL needs the jwt query parameter Atlassian adds."))
		return
	}
	if _, err := s.context.Verify(c.Request.Context(), token, c.Request.Method, requestURL(c), false); err != nil {
		s.failPage(c, err)
		return
	}
	c.Header("Content-Security-Policy", "default-src 'self'; script-src 'self' https://connect-cdn.atl-paas.net; style-src 'self'; frame-ancestors "+frameAncestors(s.cfg.ConnectAllowedHosts))
	c.Header("X-Frame-Options", "") // superseded by frame-ancestors, which allows the host product
	c.Writer.Header().Del("X-Frame-Options")
	c.Header("Content-Type", "text/html; charset=utf-8")
	c.Status(http.StatusOK)
	if err := dialogPage.Execute(c.Writer, nil); err != nil {
		s.log.WarnContext(c.Request.Context(), "render_failed", "error", err)
	}
}

func frameAncestors(suffixes []string) string {
	out := make([]string, 0, len(suffixes))
	for _, s := range suffixes {
		out = append(out, "https://*"+s)
	}
	return strings.Join(out, " ")
}

// forgeLifecycle handles Forge lifecycle events. Identity comes from the verified token; the
// body is only accepted where it agrees with the token.
func (s *Server) forgeLifecycle(c *gin.Context) {
	ctx := c.Request.Context()
	if s.forge == nil {
		s.fail(c, unauthorized("Forge is not configured on this deployment (SB_FORGE_APP_ID)."))
		return
	}
	token, ok := forge.TokenFromHeader(c.GetHeader("Authorization"))
	if !ok {
		s.fail(c, unauthorized("Send the Forge Invocation Token as Authorization: Bearer …"))
		return
	}
	inv, err := s.forge.Verify(ctx, token)
	if err != nil {
		s.fail(c, err)
		return
	}
	body, err := io.ReadAll(c.Request.Body)
	if err != nil {
		s.fail(c, err)
		return
	}
	ev, err := forge.ParseLifecycleEvent(body)
	if err == nil {
		err = ev.MatchesInvocation(inv)
	}
	if err != nil {
		s.fail(c, err)
		return
	}
	switch ev.EventType {
	case forge.EventInstalled, forge.EventUpgraded:
		err = s.linkForgeInstallation(c, inv)
	case forge.EventUninstalled:
		err = s.unlinkForgeInstallation(c, inv)
	default:
		// Other events need nothing from us; acknowledging them keeps Forge from retrying.
	}
	if err != nil {
		s.fail(c, err)
		return
	}
	c.Status(http.StatusNoContent)
}

// linkForgeInstallation records a Forge installation. It joins an existing Connect tenant that
// carried the same installation id, or else one on the same site; otherwise the site becomes a
// Forge-only tenant keyed by its cloud id. Repeating it changes nothing.
func (s *Server) linkForgeInstallation(c *gin.Context, inv forge.Invocation) error {
	ctx := c.Request.Context()
	t, err := s.tenants.FindByInstallationID(ctx, inv.InstallationID)
	if errors.Is(err, tenant.ErrNotFound) {
		t, err = s.tenants.FindByCloudID(ctx, inv.CloudID)
		if errors.Is(err, tenant.ErrUninstalled) {
			err = nil // a reinstall on a site whose Connect app was removed
		}
	}
	if errors.Is(err, tenant.ErrUninstalled) {
		err = nil
	}
	now := s.now().UTC()
	switch {
	case errors.Is(err, tenant.ErrNotFound):
		t, err = s.tenants.Lookup(ctx, inv.CloudID)
		if errors.Is(err, tenant.ErrNotFound) {
			t, err = tenant.Tenant{ClientKey: inv.CloudID, InstalledAt: now}, nil
		}
		if err != nil {
			return err
		}
	case err != nil:
		return err
	}
	if t.ForgeInstallationID == inv.InstallationID && t.CloudID == inv.CloudID && t.Installed && t.ForgeAppID == inv.AppID &&
		(inv.EnvironmentID == "" || t.ForgeEnvironmentID == inv.EnvironmentID) {
		return nil
	}
	t.ForgeInstallationID, t.ForgeAppID, t.CloudID = inv.InstallationID, inv.AppID, inv.CloudID
	if inv.EnvironmentID != "" {
		t.ForgeEnvironmentID = inv.EnvironmentID
	}
	if t.BaseURL == "" && inv.SiteURL != "" {
		t.BaseURL = inv.SiteURL
	}
	if t.Key == "" {
		t.Key = s.cfg.ConnectAppKey
	}
	t.Installed, t.Enabled, t.UpdatedAt, t.UninstalledAt = true, true, now, time.Time{}
	if err := s.tenants.Save(ctx, t); err != nil {
		return err
	}
	s.log.InfoContext(ctx, "forge_installation_linked", "client_key", t.ClientKey, "forge_only", t.ClientKey == inv.CloudID)
	return nil
}

// unlinkForgeInstallation ends a Forge-only tenant, or removes the Forge link of a Connect one.
func (s *Server) unlinkForgeInstallation(c *gin.Context, inv forge.Invocation) error {
	ctx := c.Request.Context()
	t, err := s.tenants.FindByInstallationID(ctx, inv.InstallationID)
	if errors.Is(err, tenant.ErrNotFound) || errors.Is(err, tenant.ErrUninstalled) {
		return nil
	}
	if err != nil {
		return err
	}
	now := s.now().UTC()
	forgeOnly := t.ClientKey == t.CloudID && t.SharedSecret.IsZero()
	if forgeOnly {
		t.Installed, t.Enabled, t.UninstalledAt = false, false, now
	} else {
		t.ForgeInstallationID, t.ForgeAppID = "", ""
	}
	t.UpdatedAt = now
	if err := s.tenants.Save(ctx, t); err != nil {
		return err
	}
	if forgeOnly {
		return s.endConsent(ctx, t.ClientKey)
	}
	return nil
}

package httpapi

import (
	"io"
	"net/http"
	"strings"

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

// readLifecycle decodes the body and authenticates it, and returns it with the tenant the
// verified token names. The body is parsed first because the token's issuer must equal the
// body's clientKey.
func (s *Server) readLifecycle(c *gin.Context, signedInstall bool) (lifecyclePayload, string, error) {
	var p lifecyclePayload
	if err := decodeJSON(c.Request.Body, &p); err != nil {
		return p, "", err
	}
	if strings.TrimSpace(p.ClientKey) == "" || len(p.ClientKey) > 256 {
		return p, "", badRequest("The lifecycle payload is invalid.", FieldError{Field: "/clientKey", Message: "is required (at most 256 characters)"})
	}
	if signedInstall {
		claims, err := s.install.Verify(c.Request.Context(), c.GetHeader("Authorization"), c.Request.Method, requestURL(c), p.ClientKey)
		return p, claims.ClientKey, err
	}
	token, ok := connect.TokenFromRequest(c.Request)
	if !ok {
		return p, "", unauthorized("A lifecycle callback needs a JWT in the Authorization header.")
	}
	id, err := s.context.Verify(c.Request.Context(), token, c.Request.Method, requestURL(c), false)
	if err != nil {
		return p, "", err
	}
	if id.ClientKey != p.ClientKey {
		return p, "", unauthorized("Token rejected: issuer does not match clientKey.")
	}
	return p, id.ClientKey, nil
}

func (s *Server) installed(c *gin.Context) {
	p, issuer, err := s.readLifecycle(c, true)
	if err == nil {
		err = s.lifecycle.Install(c.Request.Context(), tenant.Install{
			Issuer: issuer, ClientKey: p.ClientKey, Key: p.Key, BaseURL: p.BaseURL, DisplayURL: p.DisplayURL,
			ProductType: p.ProductType, Description: p.Description, ServiceEntitlementNumber: p.ServiceEntitlementNumber,
			EntitlementID: p.EntitlementID, EntitlementNumber: p.EntitlementNumber, OAuthClientID: p.OAuthClientID,
			InstallationID: p.InstallationID, CloudID: p.CloudID, SharedSecret: secret.New(p.SharedSecret),
		})
	}
	s.lifecycleDone(c, err)
}

func (s *Server) uninstalled(c *gin.Context) {
	p, issuer, err := s.readLifecycle(c, true)
	if err == nil {
		err = s.lifecycle.Uninstall(c.Request.Context(), issuer, p.ClientKey)
	}
	s.lifecycleDone(c, err)
}

// lifecycleDone answers a lifecycle callback: 204, or the problem.
func (s *Server) lifecycleDone(c *gin.Context, err error) {
	if err != nil {
		s.fail(c, err)
		return
	}
	c.Status(http.StatusNoContent)
}

func (s *Server) enabled(c *gin.Context)  { s.setEnabled(c, true) }
func (s *Server) disabled(c *gin.Context) { s.setEnabled(c, false) }

func (s *Server) setEnabled(c *gin.Context, on bool) {
	_, clientKey, err := s.readLifecycle(c, false)
	if err == nil {
		err = s.lifecycle.SetEnabled(c.Request.Context(), clientKey, on)
	}
	s.lifecycleDone(c, err)
}

// reportDialog serves the "Report a problem" dialog that Atlassian frames. Its token comes in
// the jwt query parameter and must carry the qsh of this exact URL.
func (s *Server) reportDialog(c *gin.Context) {
	token := c.Query("jwt")
	if token == "" {
		s.failPage(c, unauthorized("The dialog URL needs the jwt query parameter Atlassian adds."))
		return
	}
	id, err := s.context.Verify(c.Request.Context(), token, c.Request.Method, requestURL(c), false)
	if err != nil {
		s.failPage(c, err)
		return
	}
	s.renderReportDialog(c, id) // report_widget.go
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
	if err != nil {
		s.fail(c, err)
		return
	}
	inst := tenant.ForgeInstallation{InstallationID: inv.InstallationID, CloudID: inv.CloudID, AppID: inv.AppID,
		EnvironmentID: inv.EnvironmentID, SiteURL: inv.SiteURL}
	claim := tenant.ForgeEvent{InstallationID: ev.InstallationID, CloudID: ev.CloudID, AppID: ev.AppID}
	switch ev.EventType {
	case forge.EventInstalled, forge.EventUpgraded:
		err = s.lifecycle.LinkForge(ctx, inst, claim)
	case forge.EventUninstalled:
		err = s.lifecycle.UnlinkForge(ctx, inst, claim)
	default:
		// Other events need nothing from us; acknowledging them keeps Forge from retrying.
	}
	s.lifecycleDone(c, err)
}

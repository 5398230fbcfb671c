package httpapi

import (
	"errors"
	"strings"

	"github.com/gin-gonic/gin"
	"github.com/supportbridge/supportbridge/internal/secret"
)

// Principal is who an app-facing request speaks for. It comes only from a verified token.
type Principal struct {
	TenantKey string // the tenant's clientKey (Forge-only tenants: cloud id)
	AccountID string // the Atlassian user (Connect sub, Forge principal)
	Via       string // "connect" or "forge"
	// SiteToken and SiteAPI are what a Forge invocation gives the app to ask the site
	// itself: the app system token (sent when the endpoint enables appSystemToken) and the
	// installation's API base URL from the verified token. Zero for Connect.
	SiteToken secret.Secret
	SiteAPI   string
}

const principalKey = "sb.principal"

// errNoConnectSecret means a Connect token names a tenant that has no Connect installation
// (a Forge-only site), so there is no secret to check it with: the token is refused.
var errNoConnectSecret = errors.New("tenant has no Connect shared secret")

func principal(c *gin.Context) Principal {
	p, _ := c.Get(principalKey)
	pr, _ := p.(Principal)
	return pr
}

// appAuth authenticates app-facing routes: a Connect context token ("Authorization: JWT",
// qsh "context-qsh") or a Forge Invocation Token ("Authorization: Bearer"). A tenant whose
// site administrator disabled the app (POST /connect/disabled) is refused with 403
// app-disabled until it is enabled again. Tenants start enabled: the installed callback and
// a Forge installation set Enabled (Atlassian sends "enabled" right after "installed", and
// Forge has no disable event), so only an explicit disable turns a tenant off.
func (s *Server) appAuth() gin.HandlerFunc {
	return func(c *gin.Context) {
		p, err := s.authenticateApp(c)
		if err != nil {
			s.fail(c, err)
			return
		}
		c.Set(principalKey, p)
		c.Next()
	}
}

func (s *Server) authenticateApp(c *gin.Context) (Principal, error) {
	ctx := c.Request.Context()
	scheme, token, _ := strings.Cut(strings.TrimSpace(c.GetHeader("Authorization")), " ")
	token = strings.TrimSpace(token)
	switch {
	case scheme == "":
		return Principal{}, unauthorized("Send a Connect context token (Authorization: JWT …) or a Forge Invocation Token (Authorization: Bearer …).")
	case token == "":
		return Principal{}, unauthorized("The Authorization header has a scheme but no token.")
	case strings.EqualFold(scheme, "JWT"):
		id, err := s.context.Verify(ctx, token, c.Request.Method, requestURL(c), true)
		if err != nil {
			return Principal{}, err
		}
		// The verifier just read this tenant through the directory, so this is a memory hit.
		t, err := s.tenants.Get(ctx, id.ClientKey)
		if err != nil {
			return Principal{}, err
		}
		if !t.Enabled {
			return Principal{}, appDisabled()
		}
		return Principal{TenantKey: id.ClientKey, AccountID: id.AccountID, Via: "connect"}, nil
	case strings.EqualFold(scheme, "Bearer"):
		if s.forge == nil {
			return Principal{}, unauthorized("Forge Invocation Tokens are not accepted: this deployment has no Forge app configured.")
		}
		inv, err := s.forge.Verify(ctx, token)
		if err != nil {
			return Principal{}, err
		}
		t, err := s.tenants.FindByCloudID(ctx, inv.CloudID)
		if err != nil {
			return Principal{}, err
		}
		if t.ForgeInstallationID != "" && inv.InstallationID != "" && t.ForgeInstallationID != inv.InstallationID && t.InstallationID != inv.InstallationID {
			return Principal{}, unauthorized("The token's installation does not belong to this site's tenant.")
		}
		if !t.Enabled {
			return Principal{}, appDisabled()
		}
		return Principal{
			TenantKey: t.ClientKey, AccountID: inv.Principal, Via: "forge",
			SiteToken: secret.New(c.GetHeader(forgeSystemTokenHeader)), SiteAPI: inv.APIBaseURL,
		}, nil
	default:
		return Principal{}, unauthorized("Unsupported Authorization scheme; use JWT (Connect) or Bearer (Forge).")
	}
}

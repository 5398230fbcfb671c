package httpapi

import (
	"context"
	"errors"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/golang-jwt/jwt/v5"

	"github.com/supportbridge/supportbridge/internal/audit"
	"github.com/supportbridge/supportbridge/internal/consent"
	"github.com/supportbridge/supportbridge/internal/forge"
	"github.com/supportbridge/supportbridge/internal/pagetoken"
	"github.com/supportbridge/supportbridge/internal/secret"
)

// The customer-facing routes: an administrator of the customer's own Atlassian site decides on
// access requests in the app's admin page inside that site. Who they are comes from a token
// Atlassian signed (a Connect page load, turned into a page token, or a Forge Invocation
// Token from the configured admin-page module); whether they may decide is asked of their
// site by the consent service at each call. No agent token, admin token of ours, or anything
// posted on a ticket is accepted here.

const siteAdminKey = "sb.siteadmin"

// forgeSystemTokenHeader carries the app system token Forge sends with a remote invocation
// when the manifest enables appSystemToken.
const forgeSystemTokenHeader = "X-Forge-Oauth-System"

// siteAuth authenticates the site routes.
func (s *Server) siteAuth() gin.HandlerFunc {
	return func(c *gin.Context) {
		who, err := s.authenticateSite(c)
		if err != nil {
			s.fail(c, err)
			return
		}
		c.Set(siteAdminKey, who)
		c.Next()
	}
}

func siteAdminOf(c *gin.Context) consent.SiteAdmin {
	v, _ := c.Get(siteAdminKey)
	who, _ := v.(consent.SiteAdmin)
	return who
}

func (s *Server) authenticateSite(c *gin.Context) (consent.SiteAdmin, error) {
	scheme, token, _ := strings.Cut(strings.TrimSpace(c.GetHeader("Authorization")), " ")
	token = strings.TrimSpace(token)
	if !strings.EqualFold(scheme, "Bearer") || token == "" {
		return consent.SiteAdmin{}, unauthorized("Open this page from the app's Support access page in your Atlassian site.")
	}
	// A page token is HS256 and ours; a Forge Invocation Token is RS256 and Atlassian's.
	// The header says which verifier to ask; each verifier then insists on its own kind.
	hdr, _, err := jwt.NewParser().ParseUnverified(token, jwt.MapClaims{})
	if err != nil {
		return consent.SiteAdmin{}, unauthorized("Token rejected: malformed token.")
	}
	if hdr.Method.Alg() == jwt.SigningMethodHS256.Alg() {
		if s.pageTokens == nil {
			return consent.SiteAdmin{}, unauthorized("The Support access page is not configured on this deployment.")
		}
		cl, err := s.pageTokens.Verify(token, pagetoken.PurposeSiteAdmin)
		if err != nil {
			var pe *pagetoken.Error
			if errors.As(err, &pe) {
				return consent.SiteAdmin{}, unauthorized("Token rejected: " + pe.Reason + ".")
			}
			return consent.SiteAdmin{}, unauthorized("Token rejected.")
		}
		return consent.SiteAdmin{Tenant: cl.Tenant, AccountID: cl.AccountID, Via: "connect"}, nil
	}
	if s.forge == nil {
		return consent.SiteAdmin{}, unauthorized("Forge Invocation Tokens are not accepted: this deployment has no Forge app configured.")
	}
	inv, err := s.forge.Verify(c.Request.Context(), token)
	if err != nil {
		return consent.SiteAdmin{}, err
	}
	if s.cfg.ForgeAdminModuleKey == "" || inv.ModuleKey != s.cfg.ForgeAdminModuleKey {
		return consent.SiteAdmin{}, forbidden("Only the app's Support access admin page may call these routes.")
	}
	if inv.Principal == "" {
		return consent.SiteAdmin{}, forbidden("The invocation names no user; decisions are made by a person.")
	}
	t, err := s.forgeTenant(c.Request.Context(), inv)
	if err != nil {
		return consent.SiteAdmin{}, err
	}
	return consent.SiteAdmin{
		Tenant: t, AccountID: inv.Principal, Via: "forge",
		SystemToken: secret.New(c.GetHeader(forgeSystemTokenHeader)), APIBaseURL: inv.APIBaseURL,
	}, nil
}

// forgeTenant finds the tenant of a verified invocation, as the app routes do.
func (s *Server) forgeTenant(ctx context.Context, inv forge.Invocation) (string, error) {
	t, err := s.tenants.FindByCloudID(ctx, inv.CloudID)
	if err != nil {
		return "", err
	}
	if t.ForgeInstallationID != "" && inv.InstallationID != "" && t.ForgeInstallationID != inv.InstallationID && t.InstallationID != inv.InstallationID {
		return "", unauthorized("The token's installation does not belong to this site's tenant.")
	}
	return t.ClientKey, nil
}

// ---- What the page receives ----

// siteActor is an actor as the customer sees it: no internal subject.
type siteActor struct {
	Kind      string `json:"kind,omitempty"`
	Name      string `json:"name,omitempty"`
	Email     string `json:"email,omitempty"`
	AccountID string `json:"accountId,omitempty"`
}

func siteActorOf(a consent.Actor) *siteActor {
	if a.Kind == "" {
		return nil
	}
	return &siteActor{Kind: a.Kind, Name: a.Name, Email: a.Email, AccountID: a.AccountID}
}

type siteRequest struct {
	ID            string     `json:"id"`
	TicketKey     string     `json:"ticketKey"`
	Status        string     `json:"status"`
	Reason        string     `json:"reason"`
	Streams       []string   `json:"streams"`
	From          time.Time  `json:"from"`
	To            time.Time  `json:"to"`
	PersonalData  bool       `json:"personalData"`
	Duration      string     `json:"duration"`
	DurationWords string     `json:"durationWords"`
	Agent         siteActor  `json:"agent"`
	CreatedAt     time.Time  `json:"createdAt"`
	ExpiresAt     time.Time  `json:"expiresAt"`
	DecidedAt     time.Time  `json:"decidedAt,omitzero"`
	DecidedBy     *siteActor `json:"decidedBy,omitempty"`
	GrantID       string     `json:"grantId,omitempty"`
	DenyReason    string     `json:"denyReason,omitempty"`
	CancelReason  string     `json:"cancelReason,omitempty"`
	Reconfirms    string     `json:"reconfirms,omitempty"`
}

func toSiteRequest(r consent.AccessRequest) siteRequest {
	return siteRequest{
		ID: r.ID, TicketKey: r.TicketKey, Status: r.Status, Reason: r.Reason, Streams: r.Streams,
		From: r.From, To: r.To, PersonalData: r.PersonalData, Duration: r.Duration.String(),
		DurationWords: r.Duration.Words(), Agent: siteActor{Name: r.Agent.Name, Email: r.Agent.Email},
		CreatedAt: r.CreatedAt, ExpiresAt: r.ExpiresAt, DecidedAt: r.DecidedAt, DecidedBy: siteActorOf(r.DecidedBy),
		GrantID: r.GrantID, DenyReason: r.DenyReason, CancelReason: r.CancelReason, Reconfirms: r.Reconfirms,
	}
}

type siteGrant struct {
	ID           string     `json:"id"`
	RequestID    string     `json:"requestId"`
	TicketKey    string     `json:"ticketKey"`
	Streams      []string   `json:"streams"`
	From         time.Time  `json:"from"`
	To           time.Time  `json:"to"`
	PersonalData bool       `json:"personalData"`
	Agent        siteActor  `json:"agent"`
	Start        time.Time  `json:"start"`
	End          time.Time  `json:"end,omitzero"`
	UntilRevoked bool       `json:"untilRevoked"`
	ReconfirmBy  time.Time  `json:"reconfirmBy,omitzero"`
	Status       string     `json:"status"`
	EndedAt      time.Time  `json:"endedAt,omitzero"`
	EndReason    string     `json:"endReason,omitempty"`
	ApprovedBy   *siteActor `json:"approvedBy,omitempty"`
}

func toSiteGrant(g consent.Grant) siteGrant {
	return siteGrant{
		ID: g.ID, RequestID: g.RequestID, TicketKey: g.TicketKey, Streams: g.Streams, From: g.From, To: g.To,
		PersonalData: g.PersonalData, Agent: siteActor{Name: g.Agent.Name, Email: g.Agent.Email},
		Start: g.Start, End: g.End, UntilRevoked: g.UntilRevoked, ReconfirmBy: g.ReconfirmBy,
		Status: g.Status, EndedAt: g.EndedAt, EndReason: g.EndReason, ApprovedBy: siteActorOf(g.ApprovedBy),
	}
}

type siteAccess struct {
	Time       time.Time      `json:"time"`
	Agent      siteActor      `json:"agent"`
	Stream     string         `json:"stream"`
	From       time.Time      `json:"from"`
	To         time.Time      `json:"to"`
	Lines      int64          `json:"lines"`
	Bytes      int64          `json:"bytes"`
	SHA256     string         `json:"sha256,omitempty"`
	Redactions map[string]int `json:"redactions,omitempty"`
	End        string         `json:"end,omitempty"`
}

type siteAudit struct {
	Seq     int64             `json:"seq"`
	Time    time.Time         `json:"time"`
	Action  string            `json:"action"`
	Actor   siteActor         `json:"actor"`
	Details map[string]string `json:"details,omitempty"`
}

type siteRequestView struct {
	Request         siteRequest      `json:"request"`
	Grant           *siteGrant       `json:"grant"`
	Accesses        []siteAccess     `json:"accesses"`
	Audit           []siteAudit      `json:"audit"`
	TimeLeftSeconds int64            `json:"timeLeftSeconds"`
	MaxDuration     string           `json:"maxDuration"`
	GrantMaxBytes   int64            `json:"grantMaxBytes"`
	Preview         *consent.Preview `json:"preview"`
}

// ---- Handlers ----

// listQuery reads cursor and limit; limit is 1–100, default 20.
func listQuery(c *gin.Context) (string, int, error) {
	limit := 20
	if v := c.Query("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 100 {
			return "", 0, badRequest("The page size is invalid.", FieldError{Field: "query:limit", Message: "must be a whole number from 1 to 100"})
		}
		limit = n
	}
	cursor := c.Query("cursor")
	if len(cursor) > 200 {
		return "", 0, badRequest("The cursor is invalid.", FieldError{Field: "query:cursor", Message: "is not a cursor this service returned"})
	}
	return cursor, limit, nil
}

type sitePage[T any] struct {
	Items      []T    `json:"items"`
	NextCursor string `json:"nextCursor,omitempty"`
}

func (s *Server) siteListRequests(c *gin.Context) {
	cursor, limit, err := listQuery(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	reqs, next, err := s.consent.Service.SiteRequests(c.Request.Context(), siteAdminOf(c), cursor, limit)
	if errors.Is(err, consent.ErrNotFound) {
		err = badRequest("The cursor is invalid.", FieldError{Field: "query:cursor", Message: "is not a cursor this service returned"})
	}
	if err != nil {
		s.fail(c, err)
		return
	}
	out := sitePage[siteRequest]{Items: make([]siteRequest, 0, len(reqs)), NextCursor: next}
	for _, r := range reqs {
		out.Items = append(out.Items, toSiteRequest(r))
	}
	c.JSON(http.StatusOK, out)
}

func (s *Server) siteGetRequest(c *gin.Context) {
	v, err := s.consent.Service.SiteView(c.Request.Context(), siteAdminOf(c), c.Param("id"))
	if err != nil {
		s.fail(c, err)
		return
	}
	out := siteRequestView{
		Request: toSiteRequest(v.Request), Accesses: []siteAccess{}, Audit: []siteAudit{},
		TimeLeftSeconds: int64(v.TimeLeft / time.Second), MaxDuration: v.MaxDuration.String(),
		GrantMaxBytes: s.grantMaxBytes, Preview: v.Preview,
	}
	if v.Grant != nil {
		g := toSiteGrant(*v.Grant)
		out.Grant = &g
	}
	for _, a := range v.Accesses {
		out.Accesses = append(out.Accesses, siteAccess{Time: a.Time, Agent: siteActor{Name: a.Agent.Name, Email: a.Agent.Email},
			Stream: a.Stream, From: a.From, To: a.To, Lines: a.Lines, Bytes: a.Bytes, SHA256: a.SHA256,
			Redactions: a.Redactions, End: a.End})
	}
	for _, e := range v.Audit {
		out.Audit = append(out.Audit, toSiteAudit(e))
	}
	c.JSON(http.StatusOK, out)
}

func toSiteAudit(e audit.Entry) siteAudit {
	return siteAudit{Seq: e.Seq, Time: e.Time, Action: e.Action, Details: e.Details,
		Actor: siteActor{Kind: string(e.Actor.Kind), Name: e.Actor.Name, Email: e.Actor.Email, AccountID: e.Actor.AccountID}}
}

type approveBody struct {
	Duration string `json:"duration"`
}

func (s *Server) siteApprove(c *gin.Context) {
	var body approveBody
	if err := decodeOptionalJSON(c, &body); err != nil {
		s.fail(c, err)
		return
	}
	g, err := s.consent.Service.Approve(c.Request.Context(), siteAdminOf(c), c.Param("id"), body.Duration)
	if err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"grant": toSiteGrant(g)})
}

type denyBody struct {
	Note string `json:"note"`
}

func (s *Server) siteDeny(c *gin.Context) {
	var body denyBody
	if err := decodeOptionalJSON(c, &body); err != nil {
		s.fail(c, err)
		return
	}
	r, err := s.consent.Service.Deny(c.Request.Context(), siteAdminOf(c), c.Param("id"), body.Note)
	if err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"request": toSiteRequest(r)})
}

func (s *Server) siteListGrants(c *gin.Context) {
	cursor, limit, err := listQuery(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	gs, next, err := s.consent.Service.SiteGrants(c.Request.Context(), siteAdminOf(c), cursor, limit)
	if errors.Is(err, consent.ErrNotFound) {
		err = badRequest("The cursor is invalid.", FieldError{Field: "query:cursor", Message: "is not a cursor this service returned"})
	}
	if err != nil {
		s.fail(c, err)
		return
	}
	out := sitePage[siteGrant]{Items: make([]siteGrant, 0, len(gs)), NextCursor: next}
	for _, g := range gs {
		out.Items = append(out.Items, toSiteGrant(g))
	}
	c.JSON(http.StatusOK, out)
}

func (s *Server) siteRevoke(c *gin.Context) {
	g, err := s.consent.Service.RevokeBySite(c.Request.Context(), siteAdminOf(c), c.Param("id"))
	if err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"grant": toSiteGrant(g)})
}

// decodeOptionalJSON reads a JSON body that may be absent (the page may post nothing when
// the admin keeps the requested duration).
func decodeOptionalJSON(c *gin.Context, v any) error {
	if c.Request.ContentLength == 0 {
		return nil
	}
	ct := c.GetHeader("Content-Type")
	if mt, _, _ := strings.Cut(ct, ";"); strings.TrimSpace(strings.ToLower(mt)) != "application/json" {
		return problem(http.StatusUnsupportedMediaType, "unsupported-media-type", "Unsupported media type", "Send application/json.")
	}
	return decodeJSON(c.Request.Body, v)
}

// ---- The Connect admin page ----

// requestIDRE is the shape of a deep-linked request id (ac.request).
var requestIDRE = regexp.MustCompile(`^ar_[0-9a-f]{32}$`)

// sitePageData fills web/site-admin/page.html.
type sitePageData struct {
	PageToken, APIBase, RequestID, ScriptURL, StyleURL, AllJSURL string
}

// allJSURL is Atlassian's Connect JavaScript API; the page resizes its iframe with it.
const allJSURL = "https://connect-cdn.atl-paas.net/all.js"

// supportAccessPage is the Connect admin page. Atlassian loads it in an iframe of the
// customer's site with a JWT whose qsh is that of this exact URL; a verified load gets a page
// token for the JSON calls, since cookies do not work in a third-party iframe.
func (s *Server) supportAccessPage(c *gin.Context) {
	ctx := c.Request.Context()
	if s.siteUI == nil || s.pageTokens == nil {
		writeProblem(c, unavailable("The Support access page is not configured on this deployment.", 0))
		return
	}
	token := c.Query("jwt")
	if token == "" {
		s.failPage(c, unauthorized("The page URL needs the jwt query parameter Atlassian adds."))
		return
	}
	id, err := s.context.Verify(ctx, token, c.Request.Method, requestURL(c), false)
	if err != nil {
		s.failPage(c, err)
		return
	}
	if id.AccountID == "" {
		s.failPage(c, unauthorized("The page was loaded without a signed-in user."))
		return
	}
	t, err := s.tenants.Get(ctx, id.ClientKey)
	if err != nil {
		s.failPage(c, err)
		return
	}
	if !t.Enabled {
		s.failPage(c, consent.ErrTenantInactive)
		return
	}
	page, _, err := s.pageTokens.Mint(id.ClientKey, id.AccountID, pagetoken.PurposeSiteAdmin)
	if err != nil {
		s.failPage(c, err)
		return
	}
	reqID := c.Query("ac.request")
	if !requestIDRE.MatchString(reqID) {
		reqID = ""
	}
	data := sitePageData{
		// Relative: the page calls the origin that served it, which its CSP allows.
		PageToken: page, APIBase: strings.TrimRight(s.basePath, "/"), RequestID: reqID,
		ScriptURL: s.siteUI.url("connect.js"), StyleURL: s.siteUI.url("app.css"), AllJSURL: allJSURL,
	}
	if s.loopbackBase {
		data.AllJSURL = "" // local runs and tests: Atlassian's CDN is not reachable
	}
	h := c.Writer.Header()
	h.Set("Content-Security-Policy", s.siteUI.csp)
	h.Del("X-Frame-Options") // frame-ancestors allows the customer's site, which must frame us
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Type", "text/html; charset=utf-8")
	c.Status(http.StatusOK)
	if err := s.siteUI.page.Execute(c.Writer, data); err != nil {
		s.log.WarnContext(ctx, "render_failed", "error", err)
	}
}

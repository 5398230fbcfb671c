package httpapi

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/redis/go-redis/v9"

	"github.com/supportbridge/supportbridge/internal/config"
	"github.com/supportbridge/supportbridge/internal/consent"
	"github.com/supportbridge/supportbridge/internal/forge/forgetest"
	"github.com/supportbridge/supportbridge/internal/pagetoken"
	"github.com/supportbridge/supportbridge/internal/redisstore"
)

// identity is one kind of caller of the authorization matrix.
type identity string

const (
	idNone       identity = "none"
	idAppToken   identity = "app token of another tenant"
	idAgent      identity = "agent who asked"
	idOther      identity = "other agent"
	idAdmin      identity = "our admin"
	idComment    identity = "ticket comment text"
	idSiteAdmin  identity = "site administrator"
	idSiteUser   identity = "site user who is no administrator"
	idOtherAdmin identity = "administrator of another site"
)

var identities = []identity{idNone, idAppToken, idAgent, idOther, idAdmin, idComment, idSiteAdmin, idSiteUser, idOtherAdmin}

// matrixFixture is fresh state for one cell: a pending request and an approved one (with its
// grant), both asked by alice, and the comment that announced the pending one.
type matrixFixture struct {
	pendingID, comment string
	approvedID         string
	grantID            string
}

func (ch *consentHarness) fixture() matrixFixture {
	ch.t.Helper()
	var f matrixFixture
	f.pendingID, f.comment = ch.newRequest(aliceToken, nil)
	f.approvedID, _ = ch.newRequest(aliceToken, nil)
	ch.approve(f.approvedID, "")
	g, err := ch.svc.GetRequest(ch.t.Context(), f.approvedID)
	if err != nil || g.GrantID == "" {
		ch.t.Fatalf("approved request has no grant: %+v %v", g, err)
	}
	f.grantID = g.GrantID
	return f
}

// TestConsentAuthorizationMatrix sends every consent route as every kind of caller. Agent
// routes take only agent tokens; site routes take only a page token of an administrator of
// the request's own site (the site is asked); the webhook takes only its signature. The
// comment on the ticket, which every agent can read, opens nothing.
func TestConsentAuthorizationMatrix(t *testing.T) {
	ch := newConsentHarness(t)
	appSecret := "tenant-b-shared-secret-value-0123456789"
	ch.install("tenant-b", appSecret)
	appToken := contextToken(t, "tenant-b", appSecret, "user-b", nil)
	pages := map[identity]string{
		idSiteAdmin: ch.pageToken(siteAdminAccount),
		idSiteUser:  ch.pageToken(siteUserAccount),
	}
	// tenant-b's site has no administrators the test site knows of; its page token is
	// valid, for another tenant.
	other, _, _ := ch.server.pageTokens.Mint("tenant-b", siteAdminAccount, pagetoken.PurposeSiteAdmin)
	pages[idOtherAdmin] = other

	headersOf := func(who identity, f matrixFixture) map[string]string {
		switch who {
		case idAppToken:
			return map[string]string{"Authorization": "JWT " + appToken}
		case idAgent:
			return bearer(aliceToken)
		case idOther:
			return bearer(bobToken)
		case idAdmin:
			return bearer(rootToken)
		case idComment:
			return bearer(strings.Join(strings.Fields(f.comment), " "))
		case idSiteAdmin, idSiteUser, idOtherAdmin:
			return bearer(pages[who])
		}
		return map[string]string{}
	}
	call := func(method string, path func(f matrixFixture) string, body func(ch *consentHarness) any) func(*consentHarness, matrixFixture, identity) int {
		return func(ch *consentHarness, f matrixFixture, who identity) int {
			var b any
			if body != nil {
				b = body(ch)
			}
			st, _, _ := ch.agent(method, path(f), headersOf(who, f), b)
			return st
		}
	}
	agents := func(ok, other int) map[identity]int {
		return map[identity]int{idNone: 401, idAppToken: 401, idAgent: ok, idOther: other, idAdmin: ok, idComment: 401,
			idSiteAdmin: 401, idSiteUser: 401, idOtherAdmin: 401}
	}
	site := func(ok, otherSite int) map[identity]int {
		return map[identity]int{idNone: 401, idAppToken: 401, idAgent: 401, idOther: 401, idAdmin: 401, idComment: 401,
			idSiteAdmin: ok, idSiteUser: 403, idOtherAdmin: otherSite}
	}
	routes := []struct {
		name string
		call func(*consentHarness, matrixFixture, identity) int
		want map[identity]int
	}{
		{"POST /api/v1/access-requests", call("POST", func(matrixFixture) string { return "/api/v1/access-requests" },
			func(ch *consentHarness) any { return ch.requestBody(consentTicket, nil) }), agents(201, 201)},
		{"GET /api/v1/access-requests", call("GET", func(matrixFixture) string { return "/api/v1/access-requests?ticketKey=" + consentTicket }, nil), agents(200, 200)},
		{"GET /api/v1/access-requests/{id}", call("GET", func(f matrixFixture) string { return "/api/v1/access-requests/" + f.pendingID }, nil), agents(200, 200)},
		{"DELETE /api/v1/access-requests/{id}", call("DELETE", func(f matrixFixture) string { return "/api/v1/access-requests/" + f.pendingID }, nil), agents(204, 403)},
		{"GET /api/v1/grants", call("GET", func(matrixFixture) string { return "/api/v1/grants?ticketKey=" + consentTicket }, nil), agents(200, 200)},
		{"POST /api/v1/grants/{id}/revoke", call("POST", func(f matrixFixture) string { return "/api/v1/grants/" + f.grantID + "/revoke" }, nil), agents(204, 403)},
		{"GET /api/v1/tickets/{key}/evidence", call("GET", func(matrixFixture) string { return "/api/v1/tickets/" + consentTicket + "/evidence" }, nil), agents(200, 200)},
		// Another site's administrator is refused by their own site first (tenant-b's site
		// is not the test site, so it cannot be asked), and would see 404 for our ids.
		{"GET /api/v1/site/access-requests", call("GET", func(matrixFixture) string { return "/api/v1/site/access-requests" }, nil), site(200, 503)},
		{"GET /api/v1/site/access-requests/{id}", call("GET", func(f matrixFixture) string { return "/api/v1/site/access-requests/" + f.pendingID }, nil), site(200, 503)},
		{"POST /api/v1/site/access-requests/{id}/approve", call("POST", func(f matrixFixture) string { return "/api/v1/site/access-requests/" + f.pendingID + "/approve" },
			func(*consentHarness) any { return map[string]string{"duration": "4h"} }), site(200, 503)},
		{"POST /api/v1/site/access-requests/{id}/deny", call("POST", func(f matrixFixture) string { return "/api/v1/site/access-requests/" + f.pendingID + "/deny" }, nil), site(200, 503)},
		{"GET /api/v1/site/grants", call("GET", func(matrixFixture) string { return "/api/v1/site/grants" }, nil), site(200, 503)},
		{"POST /api/v1/site/grants/{id}/revoke", call("POST", func(f matrixFixture) string { return "/api/v1/site/grants/" + f.grantID + "/revoke" }, nil), site(200, 503)},
		{"POST /webhooks/jira", func(ch *consentHarness, f matrixFixture, who identity) int {
			st, _, _ := ch.do("POST", "/webhooks/jira", headersOf(who, f), jiraBody("jira:issue_updated", consentTicket, "done"))
			return st
		}, map[identity]int{idNone: 401, idAppToken: 401, idAgent: 401, idOther: 401, idAdmin: 401, idComment: 401,
			idSiteAdmin: 401, idSiteUser: 401, idOtherAdmin: 401}},
	}
	for _, r := range routes {
		for _, who := range identities {
			t.Run(r.name+"/"+string(who), func(t *testing.T) {
				f := ch.fixture()
				if got, want := r.call(ch, f, who), r.want[who]; got != want {
					t.Errorf("status = %d, want %d", got, want)
				}
			})
		}
	}
}

// TestAgentCannotApproveOwnRequest is the attack that made consent move into the customer's
// site: the agent who asks reads the public comment and tries to approve. Every route of the
// router is walked with the agent's token, with the comment's text and with the link it
// gives; none approves, and the old consent-link paths are gone.
func TestAgentCannotApproveOwnRequest(t *testing.T) {
	ch := newConsentHarness(t)
	id, comment := ch.newRequest(aliceToken, nil)
	if strings.Contains(comment, "/consent/") || strings.Contains(comment, testBaseURL) {
		t.Fatalf("the public comment points at supportbridge: %s", comment)
	}
	link := announceRE.FindString(comment)
	credentials := []map[string]string{
		bearer(aliceToken), bearer(strings.Join(strings.Fields(comment), " ")), bearer(link), {"Authorization": "JWT " + link},
		bearer(id), {"Cookie": "consent=" + id},
	}
	bodies := [][]byte{nil, []byte(`{"duration":"24h"}`), []byte(comment)}
	for _, r := range ch.server.Routes().Routes() {
		if r.Method == "DELETE" && r.Path == "/api/v1/access-requests/:id" {
			continue // the agent may withdraw their own request; that is not approving it
		}
		path := strings.NewReplacer(":id", id, ":key", consentTicket, ":version", "x", ":file", "y",
			":clientKey", consentTenant).Replace(r.Path)
		for _, h := range credentials {
			for _, b := range bodies {
				st, _, _ := ch.do(r.Method, path, h, b)
				// 503 is a feature this harness does not wire (error tracking); anything
				// else 5xx would be a fault the input caused.
				if st >= 500 && st != http.StatusServiceUnavailable {
					t.Errorf("%s %s: status %d", r.Method, path, st)
				}
			}
		}
	}
	for _, p := range []string{"/consent/" + id, "/consent/" + id + "/approve", "/consent/" + strings.Repeat("A", 43) + "/approve"} {
		for _, m := range []string{"GET", "POST"} {
			if st, _, _ := ch.do(m, p, nil, nil); st != http.StatusNotFound && st != http.StatusMethodNotAllowed {
				t.Errorf("%s %s = %d, want 404: the consent-link routes must be gone", m, p, st)
			}
		}
	}
	r, err := ch.svc.GetRequest(t.Context(), id)
	if err != nil || r.Status != consent.RequestPending || r.GrantID != "" {
		t.Fatalf("after the agent's attempts the request is %+v (%v); want still pending", r, err)
	}
	if st, _, body := ch.agent("GET", "/api/v1/grants?ticketKey="+consentTicket, bearer(aliceToken), nil); st != 200 || string(body) != `{"grants":[]}` {
		t.Errorf("grants after the agent's attempts: %d %s", st, body)
	}
}

// TestSiteAdminApprovesForLessTime walks the customer's side: Atlassian loads the admin page
// with a deep link, the page token lists and shows the request, the administrator approves
// for less time than asked, and the agent sees who approved.
func TestSiteAdminApprovesForLessTime(t *testing.T) {
	ch := newConsentHarness(t)
	id, _ := ch.newRequest(aliceToken, func(b map[string]any) { b["duration"] = "72h" })

	st, hdr, body := ch.do("GET", ch.pageURL(siteAdminAccount, id, nil), nil, nil)
	if st != http.StatusOK {
		t.Fatalf("admin page: %d %s", st, body)
	}
	csp := hdr.Get("Content-Security-Policy")
	for _, want := range []string{"frame-ancestors https://*.atlassian.net", "script-src 'self'", "default-src 'none'"} {
		if !strings.Contains(csp, want) {
			t.Errorf("CSP %q lacks %q", csp, want)
		}
	}
	if hdr.Get("X-Frame-Options") != "" || hdr.Get("Cache-Control") != "no-store" || hdr.Get("Referrer-Policy") != "no-referrer" {
		t.Errorf("page headers: %v", hdr)
	}
	if !strings.Contains(string(body), `<meta name="sb-request" content="`+id+`">`) {
		t.Errorf("the page does not carry the deep-linked request: %s", body)
	}
	m := pageTokenRE.FindSubmatch(body)
	if m == nil {
		t.Fatalf("no page token in %s", body)
	}
	page := string(m[1])
	// The static files the page names are served, versioned and cacheable.
	for _, name := range []string{"connect.js", "app.js", "app.css"} {
		st, hdr, _ := ch.do("GET", ch.server.siteUI.url(name), nil, nil)
		if st != 200 || !strings.Contains(hdr.Get("Cache-Control"), "immutable") {
			t.Errorf("static %s: %d %v", name, st, hdr)
		}
	}

	st, _, body = ch.siteCall(page, "GET", "/api/v1/site/access-requests", nil)
	var list struct {
		Items []struct{ ID, Status, Duration string }
	}
	json.Unmarshal(body, &list)
	if st != 200 || len(list.Items) != 1 || list.Items[0].ID != id || list.Items[0].Status != "pending" {
		t.Fatalf("list: %d %s", st, body)
	}
	if strings.Contains(string(body), "static:alice") {
		t.Errorf("the customer sees the agent's internal subject: %s", body)
	}
	st, _, body = ch.siteCall(page, "GET", "/api/v1/site/access-requests/"+id, nil)
	if st != 200 || !strings.Contains(string(body), `"maxDuration":"72h"`) || !strings.Contains(string(body), `"reason":"Export to CSV`) {
		t.Fatalf("detail: %d %s", st, body)
	}
	if st, _, body := ch.siteCall(page, "POST", "/api/v1/site/access-requests/"+id+"/approve", map[string]string{"duration": "73h"}); st != 400 || !strings.Contains(string(body), "/duration") {
		t.Errorf("approving longer than asked: %d %s", st, body)
	}
	st, _, body = ch.siteCall(page, "POST", "/api/v1/site/access-requests/"+id+"/approve", map[string]string{"duration": "4h"})
	if st != 200 {
		t.Fatalf("approve: %d %s", st, body)
	}
	var approved struct {
		Grant struct {
			ID, Status string
			Start, End time.Time
			ApprovedBy struct{ AccountID string }
		}
	}
	json.Unmarshal(body, &approved)
	g := approved.Grant
	if g.Status != "active" || g.End.Sub(g.Start) != 4*time.Hour || g.ApprovedBy.AccountID != siteAdminAccount {
		t.Errorf("grant: %s", body)
	}
	st, _, body = ch.agent("GET", "/api/v1/grants?ticketKey="+consentTicket, bearer(aliceToken), nil)
	if st != 200 || !strings.Contains(string(body), `"approvedBy":{"kind":"customer","name":"site administrator","accountId":"`+siteAdminAccount+`"}`) {
		t.Errorf("the agent does not see who approved: %d %s", st, body)
	}
	if c := ch.tickets.all(); !strings.Contains(c[len(c)-1].Body, "An administrator of your site (Atlassian account "+siteAdminAccount+") approved") {
		t.Errorf("approval comment: %s", c[len(c)-1].Body)
	}
	// A second decision is refused, and the site revoke ends it.
	if st, _, _ := ch.siteCall(page, "POST", "/api/v1/site/access-requests/"+id+"/deny", nil); st != http.StatusConflict {
		t.Errorf("deny after approve: %d", st)
	}
	if st, _, body := ch.siteCall(page, "POST", "/api/v1/site/grants/"+g.ID+"/revoke", nil); st != 200 || !strings.Contains(string(body), `"status":"revoked"`) {
		t.Errorf("revoke: %d %s", st, body)
	}
}

// TestSiteDecisionRefusals covers who the site routes refuse and what an unreachable site
// does: nothing changes.
func TestSiteDecisionRefusals(t *testing.T) {
	ch := newConsentHarness(t)
	id, _ := ch.newRequest(aliceToken, nil)
	approve := func(page string) (int, Problem) {
		st, hdr, body := ch.siteCall(page, "POST", "/api/v1/site/access-requests/"+id+"/approve", nil)
		if st == 200 {
			return st, Problem{}
		}
		return st, decodeProblem(t, hdr, body)
	}

	if st, p := approve(ch.pageToken(siteUserAccount)); st != 403 || !strings.HasSuffix(p.Type, "not-site-admin") {
		t.Errorf("non-admin: %d %+v", st, p)
	}
	// The administrator loads the page, then loses the permission before deciding.
	page := ch.pageToken(siteAdminAccount)
	if st, _, _ := ch.siteCall(page, "GET", "/api/v1/site/access-requests/"+id, nil); st != 200 {
		t.Fatalf("detail as admin: %d", st)
	}
	ch.site.SetAdmin(siteAdminAccount, false)
	if st, _ := approve(page); st != 403 {
		t.Errorf("admin who lost ADMINISTER: %d, want 403", st)
	}
	ch.site.SetAdmin(siteAdminAccount, true)
	ch.site.SetDown(http.StatusServiceUnavailable)
	if st, p := approve(ch.pageToken(siteAdminAccount)); st != 503 || p.Detail == "" {
		t.Errorf("site unreachable: %d %+v", st, p)
	}
	ch.site.SetDown(0)
	if r, _ := ch.svc.GetRequest(t.Context(), id); r.Status != consent.RequestPending {
		t.Fatalf("request after refused decisions: %s, want pending", r.Status)
	}

	// Page loads and page tokens that must not pass.
	for name, u := range map[string]string{
		"wrong qsh":    ch.pageURL(siteAdminAccount, "", func(c jwt.MapClaims) { c["qsh"] = "0000" }),
		"context qsh":  ch.pageURL(siteAdminAccount, "", func(c jwt.MapClaims) { c["qsh"] = "context-qsh" }),
		"no user":      ch.pageURL("", "", nil),
		"expired load": ch.pageURL(siteAdminAccount, "", func(c jwt.MapClaims) { c["exp"] = time.Now().Add(-time.Hour).Unix() }),
	} {
		if st, _, body := ch.do("GET", u, nil, nil); st != 401 {
			t.Errorf("page load with %s: %d %s", name, st, body)
		}
	}
	past, _ := pagetoken.New([]byte("httpapi-tests-page-token-key-0123456789"), 0, func() time.Time { return time.Now().Add(-time.Hour) })
	expired, _, _ := past.Mint(consentTenant, siteAdminAccount, pagetoken.PurposeSiteAdmin)
	otherPurpose, _, _ := ch.server.pageTokens.Mint(consentTenant, siteAdminAccount, "report-dialog")
	for name, tok := range map[string]string{"expired page token": expired, "page token of another purpose": otherPurpose,
		"context token": contextToken(t, consentTenant, consentSecret, siteAdminAccount, nil)} {
		if st, _ := approve(tok); st != 401 {
			t.Errorf("%s: %d, want 401", name, st)
		}
	}
	if r, _ := ch.svc.GetRequest(t.Context(), id); r.Status != consent.RequestPending {
		t.Fatalf("request after refused tokens: %s, want pending", r.Status)
	}
}

// TestForgeAdminPageModule: the Forge admin page calls the same routes with a FIT. Only a FIT
// from the configured admin-page module, naming a user, may use them; the site is asked
// with the app system token Forge sent on the invocation.
func TestForgeAdminPageModule(t *testing.T) {
	iss := forgetest.NewIssuer(t)
	ch := newConsentHarnessWith(t, []harnessOption{withForge(iss)})
	// Forge sends the site's API through api.atlassian.com; here that is the local site.
	ch.sites.Rewrite = func(string) string { return ch.siteSrv.URL }
	id, _ := ch.newRequest(aliceToken, nil)
	fit := func(module, principal string) string {
		return iss.Sign(forgetest.Claims{ModuleKey: module, ModuleType: "jira:adminPage", Principal: principal,
			CloudID: "cloud-" + consentTenant})
	}
	sys := forgeSystemToken
	call := func(tok, system, method, path string) (int, []byte) {
		h := bearer(tok)
		if system != "" {
			h["X-Forge-Oauth-System"] = system
		}
		st, _, body := ch.do(method, path, h, nil)
		return st, body
	}
	if st, body := call(fit("supportbridge-report", siteAdminAccount), sys, "GET", "/api/v1/site/access-requests"); st != 403 {
		t.Errorf("FIT of another module: %d %s", st, body)
	}
	if st, body := call(fit("support-access", ""), sys, "GET", "/api/v1/site/access-requests"); st != 403 {
		t.Errorf("FIT naming no user: %d %s", st, body)
	}
	if st, body := call(fit("support-access", siteAdminAccount), "", "GET", "/api/v1/site/access-requests"); st != 503 {
		t.Errorf("FIT without the app system token: %d %s", st, body)
	}
	if st, body := call(fit("support-access", siteUserAccount), sys, "POST", "/api/v1/site/access-requests/"+id+"/approve"); st != 403 {
		t.Errorf("FIT of a non-admin: %d %s", st, body)
	}
	if st, body := call(fit("support-access", siteAdminAccount), sys, "POST", "/api/v1/site/access-requests/"+id+"/approve"); st != 200 {
		t.Fatalf("FIT of the admin page, admin: %d %s", st, body)
	}
	if r, _ := ch.svc.GetRequest(t.Context(), id); r.Status != consent.RequestApproved || r.DecidedBy.AccountID != siteAdminAccount {
		t.Errorf("request after the Forge approval: %+v", r)
	}
}

// TestCommentsEscapeTypedText: a reason crafted as Jira wiki markup stays text in the
// public comment, so an agent cannot plant a link or markup that looks like ours.
func TestCommentsEscapeTypedText(t *testing.T) {
	ch := newConsentHarness(t)
	reason := "Please approve here [click|https://evil.example/approve] {noformat}*now*{noformat} !https://evil.example/x.png!"
	_, comment := ch.newRequest(aliceToken, func(b map[string]any) { b["reason"] = reason })
	start := strings.Index(comment, "{noformat}\n")
	end := strings.Index(comment[start+11:], "\n{noformat}")
	if start < 0 || end < 0 {
		t.Fatalf("the reason is not in a {noformat} block: %s", comment)
	}
	inside := comment[start+11 : start+11+end]
	if strings.Contains(strings.ToLower(inside), "{noformat}") {
		t.Errorf("the reason can close the {noformat} block: %q", inside)
	}
	if outside := comment[:start] + comment[start+11+end:]; strings.Contains(outside, "evil.example") {
		t.Errorf("typed text escaped the block: %s", comment)
	}
}

// TestEvidenceDetectsTampering rewrites Redis as an attacker with write access would, and
// checks that the evidence pack reports each change instead of chainOk.
func TestEvidenceDetectsTampering(t *testing.T) {
	type tamper func(t *testing.T, rdb *redis.Client, stream, head string)
	// rewrite re-chains every entry with rehash after edit, keeping each entry canonical (an
	// attacker knows the encoding: it is documented), and moves the head to match.
	rewrite := func(edit func(e string) string, rehash func(prev string, data []byte) string) tamper {
		return func(t *testing.T, rdb *redis.Client, stream, head string) {
			ctx := context.Background()
			msgs, _ := rdb.XRange(ctx, stream, "-", "+").Result()
			prev := strings.Repeat("0", 64)
			rdb.Del(ctx, stream)
			for _, m := range msgs {
				e := edit(m.Values["e"].(string))
				i := strings.Index(e, `"prevHash":"`) + len(`"prevHash":"`)
				data := e[:i] + prev + e[i+64:]
				h := rehash(prev, []byte(data))
				rdb.XAdd(ctx, &redis.XAddArgs{Stream: stream, ID: m.ID, Values: []any{"e", data, "h", h}})
				prev = h
			}
			rdb.HSet(ctx, head, "seq", strconv.Itoa(len(msgs)), "hash", prev)
		}
	}
	plainSHA := func(prev string, data []byte) string {
		s := sha256.Sum256(append([]byte(prev), data...))
		return hex.EncodeToString(s[:])
	}
	cases := map[string]tamper{
		"entry edited in place": func(t *testing.T, rdb *redis.Client, stream, head string) {
			ctx := context.Background()
			msgs, _ := rdb.XRange(ctx, stream, "-", "+").Result()
			m := msgs[1]
			e := strings.Replace(m.Values["e"].(string), `"approved"`, `"denied"`, 1)
			rdb.XDel(ctx, stream, m.ID)
			rdb.XAdd(ctx, &redis.XAddArgs{Stream: stream, ID: m.ID, Values: []any{"e", e, "h", m.Values["h"]}})
		},
		"tail deleted with its head": func(t *testing.T, rdb *redis.Client, stream, head string) {
			ctx := context.Background()
			msgs, _ := rdb.XRange(ctx, stream, "-", "+").Result()
			last := msgs[len(msgs)-2]
			for _, m := range msgs[len(msgs)-1:] {
				rdb.XDel(ctx, stream, m.ID)
			}
			rdb.HSet(ctx, head, "seq", strings.TrimSuffix(last.ID, "-0"), "hash", last.Values["h"])
		},
		"chain wiped": func(t *testing.T, rdb *redis.Client, stream, head string) {
			rdb.Del(context.Background(), stream, head)
		},
		"rewritten with a plain SHA-256 chain": rewrite(func(e string) string {
			return strings.Replace(e, `"action":"approved"`, `"action":"denied"`, 1)
		}, plainSHA),
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			ch := newConsentHarness(t)
			id, _ := ch.newRequest(aliceToken, nil)
			ch.approve(id, "")
			if ev := ch.evidence(); !ev.ChainOK {
				t.Fatalf("evidence before tampering: %+v", ev.Verification)
			}
			rdb, err := redisstore.NewClient(config.Redis{URL: ch.cfg.Redis.URL})
			if err != nil {
				t.Fatal(err)
			}
			defer rdb.Close()
			keys, _ := rdb.Keys(context.Background(), "*:audit").Result()
			if len(keys) != 1 {
				t.Fatalf("audit streams: %v", keys)
			}
			tc(t, rdb.(*redis.Client), keys[0], keys[0]+":head")
			ev := ch.evidence()
			if ev.ChainOK || ev.ChainBroken == "" {
				t.Errorf("evidence after %s: chainOk %v (%+v)", name, ev.ChainOK, ev.Verification)
			}
		})
	}
}

func (ch *consentHarness) evidence() consent.Evidence {
	ch.t.Helper()
	st, _, body := ch.agent("GET", "/api/v1/tickets/"+consentTicket+"/evidence", bearer(aliceToken), nil)
	if st != 200 {
		ch.t.Fatalf("evidence: %d %s", st, body)
	}
	validateEvidence(ch.t, body)
	var ev consent.Evidence
	if err := json.Unmarshal(body, &ev); err != nil {
		ch.t.Fatal(err)
	}
	return ev
}

// TestConsentUnconfigured keeps the routes answering sensibly in a deployment without
// consent: registered (so the router matches openapi.yaml) but unavailable.
func TestConsentUnconfigured(t *testing.T) {
	h := newHarness(t)
	st, hdr, body := h.do("GET", "/api/v1/grants?ticketKey=SUP-1", bearer(aliceToken), nil)
	if st != http.StatusServiceUnavailable {
		t.Errorf("agent route: %d %s", st, body)
	}
	decodeProblem(t, hdr, body)
	if st, _, body := h.do("GET", "/api/v1/site/grants", bearer("x"), nil); st != http.StatusServiceUnavailable {
		t.Errorf("site route: %d %s", st, body)
	}
	if st, _, body := h.do("GET", "/connect/support-access?jwt=x", nil, nil); st != http.StatusServiceUnavailable {
		t.Errorf("admin page: %d %s", st, body)
	}
	if st, _, body := h.do("POST", "/webhooks/jira", nil, []byte(`{}`)); st != http.StatusServiceUnavailable {
		t.Errorf("webhook: %d %s", st, body)
	}
}

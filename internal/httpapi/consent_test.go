package httpapi

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/supportbridge/supportbridge/internal/consent"
)

// identity is one kind of caller of the authorization matrix.
type identity string

const (
	idNone     identity = "none"
	idAppToken identity = "app token of another tenant"
	idAgent    identity = "agent who asked"
	idOther    identity = "other agent"
	idAdmin    identity = "admin"
	idCustomer identity = "customer link"
)

var identities = []identity{idNone, idAppToken, idAgent, idOther, idAdmin, idCustomer}

// matrixFixture is fresh state for one cell: a pending request and an approved one (with its
// grant), both asked by alice, and the links the customer received.
type matrixFixture struct {
	pendingID, pendingLink   string
	approvedID, approvedLink string
	grantID                  string
}

func (ch *consentHarness) fixture() matrixFixture {
	ch.t.Helper()
	var f matrixFixture
	f.pendingID, f.pendingLink = ch.newRequest(aliceToken, nil)
	f.approvedID, f.approvedLink = ch.newRequest(aliceToken, nil)
	ch.decide(f.approvedLink, "approve", nil)
	g, err := ch.svc.GetRequest(ch.t.Context(), f.approvedID)
	if err != nil || g.GrantID == "" {
		ch.t.Fatalf("approved request has no grant: %+v %v", g, err)
	}
	f.grantID = g.GrantID
	return f
}

// TestConsentAuthorizationMatrix sends every consent route as every kind of caller. Agent
// routes take only agent tokens, and only the agent who holds a grant or request (or an
// admin) may end it; customer routes take only the link, whatever else the caller presents;
// the webhook takes only its signature.
func TestConsentAuthorizationMatrix(t *testing.T) {
	ch := newConsentHarness(t)
	appSecret := "tenant-b-shared-secret-value-0123456789"
	ch.install("tenant-b", appSecret)
	appToken := contextToken(t, "tenant-b", appSecret, "user-b", nil)

	type route struct {
		name string
		// call makes the request as who; customer is the customer's link for link routes.
		call func(ch *consentHarness, f matrixFixture, who identity) int
		want map[identity]int
	}
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
		case idCustomer:
			// The only credential a customer holds is the link; presented as a bearer token
			// it must not open any agent route.
			return bearer(f.pendingLink)
		}
		return nil
	}
	agentRoute := func(method string, path func(f matrixFixture) string, body func(ch *consentHarness) any) func(*consentHarness, matrixFixture, identity) int {
		return func(ch *consentHarness, f matrixFixture, who identity) int {
			var b any
			if body != nil {
				b = body(ch)
			}
			st, _, _ := ch.agent(method, path(f), headersOf(who, f), b)
			return st
		}
	}
	// linkRoute posts (or gets) with the customer's real link for idCustomer; everyone else
	// does not hold the link, so they try a forged one, with a browser's full CSRF pair so
	// that only the link decides.
	linkRoute := func(action string, link func(f matrixFixture) string) func(*consentHarness, matrixFixture, identity) int {
		return func(ch *consentHarness, f matrixFixture, who identity) int {
			token := link(f)
			if who != idCustomer {
				token = forgedToken(t)
			}
			b := &browser{}
			if who == idCustomer {
				ch.page(b, token)
			} else {
				b.cookie = base64.RawURLEncoding.EncodeToString(make([]byte, csrfCookieBytes))
			}
			hdr := headersOf(who, f)
			if who == idCustomer {
				hdr = nil
			}
			if action == "" {
				h := map[string]string{"Cookie": csrfCookieName + "=" + b.cookie}
				for k, v := range hdr {
					h[k] = v
				}
				st, _, _ := ch.do("GET", "/consent/"+token, h, nil)
				return st
			}
			values := url.Values{csrfFieldName: {csrfField(ch.server.csrfKey(), b.cookie, token)}}
			h := map[string]string{"Content-Type": "application/x-www-form-urlencoded", "Cookie": csrfCookieName + "=" + b.cookie}
			for k, v := range hdr {
				h[k] = v
			}
			st, _, _ := ch.doNoRedirect("POST", "/consent/"+token+"/"+action, h, []byte(values.Encode()))
			return st
		}
	}
	agents := func(ok, other int) map[identity]int {
		return map[identity]int{idNone: 401, idAppToken: 401, idAgent: ok, idOther: other, idAdmin: ok, idCustomer: 401}
	}
	link := func(ok int) map[identity]int {
		return map[identity]int{idNone: 404, idAppToken: 404, idAgent: 404, idOther: 404, idAdmin: 404, idCustomer: ok}
	}
	routes := []route{
		{"POST /api/v1/access-requests", agentRoute("POST", func(matrixFixture) string { return "/api/v1/access-requests" },
			func(ch *consentHarness) any { return ch.requestBody(consentTicket, nil) }), agents(201, 201)},
		{"GET /api/v1/access-requests", agentRoute("GET", func(matrixFixture) string { return "/api/v1/access-requests?ticketKey=" + consentTicket }, nil), agents(200, 200)},
		{"GET /api/v1/access-requests/{id}", agentRoute("GET", func(f matrixFixture) string { return "/api/v1/access-requests/" + f.pendingID }, nil), agents(200, 200)},
		{"DELETE /api/v1/access-requests/{id}", agentRoute("DELETE", func(f matrixFixture) string { return "/api/v1/access-requests/" + f.pendingID }, nil), agents(204, 403)},
		{"GET /api/v1/grants", agentRoute("GET", func(matrixFixture) string { return "/api/v1/grants?ticketKey=" + consentTicket }, nil), agents(200, 200)},
		{"POST /api/v1/grants/{id}/revoke", agentRoute("POST", func(f matrixFixture) string { return "/api/v1/grants/" + f.grantID + "/revoke" }, nil), agents(204, 403)},
		{"GET /api/v1/tickets/{key}/evidence", agentRoute("GET", func(matrixFixture) string { return "/api/v1/tickets/" + consentTicket + "/evidence" }, nil), agents(200, 200)},
		{"GET /consent/{token}", linkRoute("", func(f matrixFixture) string { return f.pendingLink }), link(200)},
		{"POST /consent/{token}/approve", linkRoute("approve", func(f matrixFixture) string { return f.pendingLink }), link(303)},
		{"POST /consent/{token}/deny", linkRoute("deny", func(f matrixFixture) string { return f.pendingLink }), link(303)},
		{"POST /consent/{token}/revoke", linkRoute("revoke", func(f matrixFixture) string { return f.approvedLink }), link(303)},
		{"POST /webhooks/jira", func(ch *consentHarness, f matrixFixture, who identity) int {
			h := headersOf(who, f)
			if h == nil {
				h = map[string]string{}
			}
			st, _, _ := ch.do("POST", "/webhooks/jira", h, jiraBody("jira:issue_updated", consentTicket, "done"))
			return st
		}, map[identity]int{idNone: 401, idAppToken: 401, idAgent: 401, idOther: 401, idAdmin: 401, idCustomer: 401}},
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
	ch.checkNoTokenLeak(t)
}

// TestConsentPageShowsTheRequest checks the decision page says who asks, why, what and for
// how long, offers only durations up to the requested one, and carries the strict headers.
func TestConsentPageShowsTheRequest(t *testing.T) {
	ch := newConsentHarness(t)
	_, link := ch.newRequest(aliceToken, func(b map[string]any) {
		b["streams"] = []string{"app", "audit"}
		b["duration"] = "72h"
		b["personalData"] = true
	})
	st, hdr, body, field := ch.page(&browser{}, link)
	if st != http.StatusOK {
		t.Fatalf("status %d: %s", st, body)
	}
	for _, want := range []string{
		`<html lang="en">`, `name="viewport"`, "<h1>", "Alice Agent", "alice@vendor.example", consentTicket,
		"Export to CSV fails for the customer since Monday.", "<li>app</li>", "<li>audit</li>",
		"Sun 8 Mar 2026, 12:00 UTC", "Tue 10 Mar 2026, 11:00 UTC", "3 days, counted from your approval",
		"left in", `<label for="duration">`, `<label for="reason">`, `value="72h" selected`, `value="24h"`, `value="1h"`,
		`Answer by <time datetime="2026-03-13T12:00:00Z">Fri 13 Mar 2026, 12:00 UTC</time> (3 days left)`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	for _, notWant := range []string{`value="168h"`, `value="until-revoked"`, "<script"} {
		if strings.Contains(body, notWant) {
			t.Errorf("page has %q", notWant)
		}
	}
	if field == "" {
		t.Error("page has no CSRF field")
	}
	checkConsentHeaders(t, hdr, body)
}

// checkConsentHeaders checks the headers every consent page carries, and that the CSP's
// style hash is the hash of the page's one inline stylesheet.
func checkConsentHeaders(t *testing.T, hdr http.Header, body string) {
	t.Helper()
	want := map[string]string{
		"Referrer-Policy": "no-referrer", "Cache-Control": "no-store", "X-Frame-Options": "DENY",
		"Content-Type": "text/html; charset=utf-8", "X-Content-Type-Options": "nosniff",
	}
	for k, v := range want {
		if got := hdr.Get(k); got != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
	csp := hdr.Get("Content-Security-Policy")
	for _, d := range []string{"default-src 'none'", "form-action 'self'", "frame-ancestors 'none'", "base-uri 'none'"} {
		if !strings.Contains(csp, d) {
			t.Errorf("CSP %q lacks %s", csp, d)
		}
	}
	m := regexp.MustCompile(`(?s)<style>(.*?)</style>`).FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("page has no <style> element")
	}
	sum := sha256.Sum256([]byte(m[1]))
	if h := "style-src 'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"; !strings.Contains(csp, h) {
		t.Errorf("CSP %q does not allow the page's stylesheet (%s)", csp, h)
	}
	if strings.Contains(body, "style=") || strings.Contains(body, "<script") {
		t.Error("page has inline style attributes or scripts the CSP would block")
	}
}

// TestConsentApproveShorterThenRevoke walks the customer's happy path: approve for less time
// than asked, see the grant and its reads, revoke.
func TestConsentApproveShorterThenRevoke(t *testing.T) {
	ch := newConsentHarness(t)
	id, link := ch.newRequest(aliceToken, func(b map[string]any) { b["duration"] = "72h" })
	b := &browser{}
	_, _, _, field := ch.page(b, link)
	st, hdr, body := ch.post(b, link, "approve", field, url.Values{"duration": {"4h"}})
	if st != http.StatusSeeOther || hdr.Get("Location") != "/consent/"+link {
		t.Fatalf("approve: %d, Location %q, body %s", st, hdr.Get("Location"), body)
	}
	req, err := ch.svc.GetRequest(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	if req.Status != consent.RequestApproved || req.Duration.String() != "4h" {
		t.Fatalf("request after approval: %+v", req)
	}
	// A read under the grant shows on the customer's page.
	if err := ch.svc.RecordAccess(t.Context(), req.GrantID, consent.Access{
		Agent:  consent.Actor{Kind: "agent", Name: "Alice Agent", Email: "alice@vendor.example", Subject: "static:Alice Agent"},
		Stream: "app", From: ch.clock.Now().Add(-48 * time.Hour), To: ch.clock.Now().Add(-time.Hour), Bytes: 2048, Lines: 12,
	}); err != nil {
		t.Fatal(err)
	}
	ch.clock.Advance(30 * time.Minute)
	st, hdr, page, field := ch.page(b, link)
	if st != http.StatusOK {
		t.Fatalf("state page: %d %s", st, page)
	}
	for _, want := range []string{"You approved access", "3 hours 30 minutes left", "Revoke access now", "12 lines, 2.0 kB", "Alice Agent (alice@vendor.example)"} {
		if !strings.Contains(page, want) {
			t.Errorf("state page lacks %q", want)
		}
	}
	checkConsentHeaders(t, hdr, page)
	if st, _, body := ch.post(b, link, "revoke", field, nil); st != http.StatusSeeOther {
		t.Fatalf("revoke: %d %s", st, body)
	}
	_, _, page, _ = ch.page(b, link)
	if !strings.Contains(page, "You revoked access") || strings.Contains(page, "Revoke access now") {
		t.Errorf("page after revocation: %s", page)
	}
	// Revoking again changes nothing and says so.
	if st, _, body := ch.post(b, link, "revoke", field, nil); st != http.StatusConflict || !strings.Contains(body, "already ended") {
		t.Errorf("second revoke: %d %s", st, body)
	}
}

// TestConsentLinkAttacks covers what someone holding a wrong, stale or copied link, or a
// cross-site page, can do: nothing.
func TestConsentLinkAttacks(t *testing.T) {
	ch := newConsentHarness(t)

	t.Run("replay after decision is 409", func(t *testing.T) {
		_, link := ch.newRequest(aliceToken, nil)
		b := &browser{}
		_, _, _, field := ch.page(b, link)
		if st, _, _ := ch.post(b, link, "approve", field, nil); st != http.StatusSeeOther {
			t.Fatalf("first approve: %d", st)
		}
		for _, action := range []string{"approve", "deny"} {
			st, hdr, body := ch.post(b, link, action, field, nil)
			if st != http.StatusConflict || !strings.Contains(body, "already answered") {
				t.Errorf("replayed %s: %d %s", action, st, body)
			}
			checkConsentHeaders(t, hdr, body)
		}
	})

	t.Run("forged, truncated and extended tokens are 404", func(t *testing.T) {
		_, link := ch.newRequest(aliceToken, nil)
		for name, tok := range map[string]string{
			"forged": forgedToken(t), "truncated": link[:len(link)-1], "extended": link + "A",
			"half": link[:20], "case-flipped": flipCase(link),
		} {
			st, hdr, body, _ := ch.page(&browser{}, tok)
			if st != http.StatusNotFound || !strings.Contains(body, "This link does not work") {
				t.Errorf("%s GET: %d %s", name, st, body)
			}
			checkConsentHeaders(t, hdr, body)
			cookie := base64.RawURLEncoding.EncodeToString(make([]byte, csrfCookieBytes))
			b := &browser{cookie: cookie}
			for _, action := range []string{"approve", "deny", "revoke"} {
				if st, _, body := ch.post(b, tok, action, csrfField(ch.server.csrfKey(), cookie, tok), nil); st != http.StatusNotFound {
					t.Errorf("%s %s: %d %s", name, action, st, body)
				}
			}
		}
		// The real link still works: none of the above touched it.
		if st, _, _, _ := ch.page(&browser{}, link); st != http.StatusOK {
			t.Errorf("real link after attacks: %d", st)
		}
	})

	t.Run("missing or wrong CSRF is 403", func(t *testing.T) {
		id, link := ch.newRequest(aliceToken, nil)
		_, otherLink := ch.newRequest(aliceToken, nil)
		b := &browser{}
		_, _, _, field := ch.page(b, link)
		_, _, _, otherField := ch.page(b, otherLink)
		stranger := &browser{}
		ch.page(stranger, link)
		cases := map[string]struct {
			b     *browser
			field string
		}{
			"no cookie, no field":              {&browser{}, ""},
			"field without cookie":             {&browser{}, field},
			"cookie without field":             {b, ""},
			"wrong field":                      {b, strings.Repeat("A", len(field))},
			"field of another link":            {b, otherField},
			"cookie of another browser":        {stranger, field},
			"cookie copied into field (naive)": {b, b.cookie},
		}
		for name, c := range cases {
			st, _, body := ch.post(c.b, link, "approve", c.field, nil)
			if st != http.StatusForbidden || !strings.Contains(body, "answer from the consent page") {
				t.Errorf("%s: %d %s", name, st, body)
			}
		}
		if st, _, _, _ := ch.page(b, link); st != http.StatusOK {
			t.Error("request was decided by a refused post")
		}
		if req, err := ch.svc.GetRequest(t.Context(), id); err != nil || req.Status != consent.RequestPending {
			t.Errorf("request changed by refused posts: %+v %v", req, err)
		}
	})

	t.Run("only URL-encoded forms are accepted", func(t *testing.T) {
		_, link := ch.newRequest(aliceToken, nil)
		b := &browser{}
		_, _, _, field := ch.page(b, link)
		for _, ct := range []string{"text/plain", "multipart/form-data; boundary=x", "application/json", ""} {
			hdr := map[string]string{"Cookie": csrfCookieName + "=" + b.cookie}
			if ct != "" {
				hdr["Content-Type"] = ct
			}
			st, _, body := ch.doNoRedirect("POST", "/consent/"+link+"/approve", hdr, []byte("csrf="+url.QueryEscape(field)))
			if st != http.StatusUnsupportedMediaType {
				t.Errorf("Content-Type %q: %d %s", ct, st, body)
			}
		}
	})

	t.Run("approve after the claim window is 410", func(t *testing.T) {
		_, link := ch.newRequest(aliceToken, nil)
		b := &browser{}
		_, _, _, field := ch.page(b, link)
		ch.clock.Advance(consent.DefaultClaimWindow + time.Minute)
		defer ch.clock.Advance(-(consent.DefaultClaimWindow + time.Minute))
		if st, _, body := ch.post(b, link, "approve", field, nil); st != http.StatusGone || !strings.Contains(body, "expired") {
			t.Errorf("approve: %d %s", st, body)
		}
		if st, hdr, body, _ := ch.page(b, link); st != http.StatusGone {
			t.Errorf("GET: %d %s", st, body)
		} else {
			checkConsentHeaders(t, hdr, body)
		}
	})

	t.Run("cancelled request is 410", func(t *testing.T) {
		id, link := ch.newRequest(aliceToken, nil)
		if st, _, body := ch.agent("DELETE", "/api/v1/access-requests/"+id, bearer(aliceToken), nil); st != http.StatusNoContent {
			t.Fatalf("cancel: %d %s", st, body)
		}
		if st, _, body, _ := ch.page(&browser{}, link); st != http.StatusGone {
			t.Errorf("GET: %d %s", st, body)
		}
		if st, _, body := ch.agent("DELETE", "/api/v1/access-requests/"+id, bearer(aliceToken), nil); st != http.StatusGone {
			t.Errorf("second cancel: %d %s", st, body)
		}
	})

	t.Run("longer duration than asked is refused", func(t *testing.T) {
		_, link := ch.newRequest(aliceToken, nil) // 24h
		b := &browser{}
		_, _, _, field := ch.page(b, link)
		for _, d := range []string{"48h", "until-revoked", "forever", "30m"} {
			st, _, body := ch.post(b, link, "approve", field, url.Values{"duration": {d}})
			if st != http.StatusBadRequest || !strings.Contains(body, "Allow access for") {
				t.Errorf("duration %q: %d %s", d, st, body)
			}
		}
		if st, _, _, _ := ch.page(b, link); st != http.StatusOK {
			t.Error("page broke after refused approvals")
		}
	})

	t.Run("markup in reasons is shown as text", func(t *testing.T) {
		evil := `<script>alert(1)</script><img src=x onerror=alert(2)> "quoted" & more`
		_, link := ch.newRequest(aliceToken, func(b map[string]any) { b["reason"] = evil })
		st, _, body, _ := ch.page(&browser{}, link)
		if st != http.StatusOK {
			t.Fatalf("page: %d", st)
		}
		if strings.Contains(body, "<script>") || strings.Contains(body, "<img") {
			t.Errorf("agent's reason rendered as markup: %s", body)
		}
		if !strings.Contains(body, "&lt;script&gt;alert(1)&lt;/script&gt;&lt;img src=x onerror=alert(2)&gt; &#34;quoted&#34; &amp; more") {
			t.Errorf("agent's reason not shown escaped: %s", body)
		}
		// And the customer's own deny reason, shown back on the state page.
		ch.decide(link, "deny", url.Values{"reason": {evil}})
		_, _, body, _ = ch.page(&browser{}, link)
		if strings.Contains(body, "<script>") || strings.Contains(body, "<img") || !strings.Contains(body, "You denied access") {
			t.Errorf("deny page: %s", body)
		}
	})

	ch.checkNoTokenLeak(t)
}

// requests lists a ticket's requests through the agent API.
func (ch *consentHarness) requests(ticket string) []consent.AccessRequest {
	ch.t.Helper()
	st, _, body := ch.agent("GET", "/api/v1/access-requests?ticketKey="+ticket, bearer(aliceToken), nil)
	if st != http.StatusOK {
		ch.t.Fatalf("list: %d %s", st, body)
	}
	var out struct{ Requests []consent.AccessRequest }
	if err := json.Unmarshal(body, &out); err != nil {
		ch.t.Fatal(err)
	}
	return out.Requests
}

func flipCase(s string) string {
	b := []byte(s)
	for i, c := range b {
		switch {
		case 'a' <= c && c <= 'z':
			b[i] = c - 32
			return string(b)
		case 'A' <= c && c <= 'Z':
			b[i] = c + 32
			return string(b)
		}
	}
	return s + "x"
}

// TestConsentTokenNeverLogged runs a whole flow and checks the access log names the route
// template, never the path that holds the token.
func TestConsentTokenNeverLogged(t *testing.T) {
	ch := newConsentHarness(t)
	_, link := ch.newRequest(aliceToken, nil)
	ch.decide(link, "approve", nil)
	ch.decide(link, "revoke", nil)
	ch.page(&browser{}, link+"x") // a token of the wrong length still matches the route
	logs := ch.logs.String()
	if !strings.Contains(logs, `"route":"/consent/:token/approve"`) {
		t.Errorf("access log lacks the route template: %s", logs)
	}
	if strings.Contains(logs, link) || strings.Contains(logs, link[:20]) {
		t.Errorf("the log holds the consent token: %s", logs)
	}
	ch.checkNoTokenLeak(t)
}

// TestConsentTokenNotLoggedForUnmatchedPaths: a mistyped consent URL (an extra segment, a
// GET of a form action) matches no route, and the access log then logs the raw path, which
// holds the token. The access log must redact it.
func TestConsentTokenNotLoggedForUnmatchedPaths(t *testing.T) {
	ch := newConsentHarness(t)
	_, link := ch.newRequest(aliceToken, nil)
	ch.do("GET", "/consent/"+link+"/nothing-here", nil, nil)
	ch.do("GET", "/consent/"+link+"/approve", nil, nil)
	if logs := ch.logs.String(); strings.Contains(logs, link[:20]) {
		t.Errorf("the log holds the consent token: %s", logs)
	}
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
	if st, _, body := h.do("GET", "/consent/"+forgedToken(t), nil, nil); st != http.StatusServiceUnavailable || !strings.Contains(string(body), "<html") {
		t.Errorf("consent page: %d %s", st, body)
	}
	if st, _, body := h.do("POST", "/webhooks/jira", nil, []byte(`{}`)); st != http.StatusServiceUnavailable {
		t.Errorf("webhook: %d %s", st, body)
	}
}

func TestDurationOptions(t *testing.T) {
	parse := func(s string) consent.Duration {
		d, err := consent.ParseDuration(s)
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	for _, c := range []struct {
		max  string
		want string
	}{
		{"1h", "1h*"},
		{"24h", "24h* 8h 4h 1h"},
		{"36h", "36h* 24h 8h 4h 1h"},
		{"720h", "720h* 336h 168h 72h 24h 8h 4h 1h"},
		{"until-revoked", "until-revoked* 720h 336h 168h 72h 24h 8h 4h 1h"},
	} {
		var got []string
		for _, o := range durationOptions(parse(c.max), parse(c.max)) {
			v := o.Value
			if o.Selected {
				v += "*"
			}
			got = append(got, v)
		}
		if strings.Join(got, " ") != c.want {
			t.Errorf("options for %s = %s, want %s", c.max, strings.Join(got, " "), c.want)
		}
	}
}

func TestTimeLeftWords(t *testing.T) {
	for d, want := range map[time.Duration]string{
		0: "no time", 20 * time.Second: "less than a minute", 45 * time.Minute: "45 minutes",
		time.Hour: "1 hour", 90 * time.Minute: "1 hour 30 minutes", 49 * time.Hour: "2 days 1 hour",
		72*time.Hour + 59*time.Second: "3 days",
	} {
		if got := timeLeftWords(d); got != want {
			t.Errorf("timeLeftWords(%v) = %q, want %q", d, got, want)
		}
	}
}

package main

import (
	"html/template"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/supportbridge/supportbridge/internal/connect"
)

// /dev on the demo site's listener plays the customer's Atlassian site: it frames the real
// report dialog as the demo end user and the real Support access page as the demo site
// administrator, each loaded the way Atlassian loads them (a page-load JWT signed with the demo
// tenant's shared secret, with the qsh of that exact URL). It exists only in dev mode, on a
// loopback listener, and answers loopback clients only.

var devHomePage = template.Must(template.New("dev").Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Demo Atlassian site · supportbridge dev</title>
<link rel="stylesheet" href="/dev/dev.css">
</head>
<body>
<header class="bar"><p><strong>{{.SiteHost}}</strong> · the customer's Atlassian site, played locally by <code>supportbridge dev</code></p></header>
<main>
<h1>Demo Atlassian site</h1>
<p>The two frames below are the app's real pages, as the customer's Jira shows them. The start-up log lists the whole walk-through with the agent's CLI commands.</p>
<div class="cols">
<section aria-labelledby="report-heading">
<h2 id="report-heading">Report a problem <span class="who">as Sam, an end user</span></h2>
<p>Paste a screenshot with Ctrl+V (⌘V) and send. The ticket appears in the <a href="{{.JSMURL}}">JSM sandbox</a>.</p>
<iframe class="report" title="Report a problem (the app's dialog)" src="{{.DialogURL}}"></iframe>
</section>
<section aria-labelledby="admin-heading">
<h2 id="admin-heading">Support access <span class="who">as Ada, the site administrator</span></h2>
<p>Approve, deny or revoke support's requests to read the app's logs. <a href="/dev/support-access?as=user">Open it as Sam</a> to see a non-administrator refused.</p>
<iframe class="admin" title="Support access (the app's admin page)" src="{{.AdminURL}}"></iframe>
</section>
</div>
<p class="foot"><a href="/dev">Reload</a> (the frames' load tokens last three minutes) · <a href="{{.JSMURL}}">JSM sandbox: tickets and comments</a> · <a href="{{.ServiceURL}}/openapi.yaml">API contract</a></p>
</main>
</body>
</html>
`))

const devHomeCSS = `*,*::before,*::after{box-sizing:border-box}
body{margin:0;font-family:-apple-system,BlinkMacSystemFont,"Segoe UI",Roboto,Ubuntu,sans-serif;font-size:14px;line-height:20px;color:#172B4D;background:#F7F8F9}
.bar{background:#1D2125;color:#FFFFFF;padding:8px 16px}.bar p{margin:0}.bar code{color:#FFFFFF}
main{padding:16px;max-width:1400px;margin:0 auto}
h1{font-size:24px;line-height:28px;font-weight:500;margin:8px 0}
h2{font-size:18px;line-height:24px;font-weight:500;margin:0 0 4px}
.who{font-size:14px;font-weight:400;color:#44546F}
a{color:#0C66E4}
.cols{display:grid;grid-template-columns:minmax(0,1fr) minmax(0,1.4fr);gap:16px;margin-top:16px}
@media (max-width:900px){.cols{grid-template-columns:minmax(0,1fr)}}
section{background:#FFFFFF;border:1px solid #091E4224;border-radius:3px;padding:12px;min-width:0}
iframe{display:block;width:100%;border:1px solid #091E4224;border-radius:3px;background:#FFFFFF}
iframe.report{height:820px}iframe.admin{height:1100px}
.foot{margin-top:16px;color:#44546F}
:focus-visible{outline:2px solid #388BFF;outline-offset:2px}
`

type devHomeData struct {
	SiteHost, DialogURL, AdminURL, JSMURL, ServiceURL string
}

// devHome serves /dev.
func (d *devSite) devHome(w http.ResponseWriter, r *http.Request) {
	if !fromLoopback(r) {
		http.Error(w, "the demo site answers local clients only", http.StatusForbidden)
		return
	}
	d.mu.Lock()
	service, jsm := d.service, d.jsm
	d.mu.Unlock()
	if service == "" {
		http.Error(w, "the service is not listening yet; reload in a moment", http.StatusServiceUnavailable)
		return
	}
	dialog, err := d.signedPageURL(service, connect.PathReportDialog+"?lic=none&xdm_e="+url.QueryEscape(devBaseURL), devUserAccount)
	if err != nil {
		http.Error(w, "sign", http.StatusInternalServerError)
		return
	}
	admin, err := d.signedPageURL(service, connect.PathSupportAccess, devAdminAccount)
	if err != nil {
		http.Error(w, "sign", http.StatusInternalServerError)
		return
	}
	origin := service
	if u, err := url.Parse(service); err == nil {
		origin = u.Scheme + "://" + u.Host
	}
	h := w.Header()
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'self'; frame-src "+origin+"; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
	h.Set("Cache-Control", "no-store")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Content-Type", "text/html; charset=utf-8")
	u, _ := url.Parse(devBaseURL)
	devHomePage.Execute(w, devHomeData{SiteHost: u.Host, DialogURL: dialog, AdminURL: admin, JSMURL: jsm + "/", ServiceURL: strings.TrimRight(service, "/")})
}

func (d *devSite) devHomeCSS(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/css; charset=utf-8")
	w.Header().Set("Cache-Control", "no-cache")
	w.Write([]byte(devHomeCSS))
}

// signedPageURL is service+path with the jwt parameter Atlassian adds to a module URL: HS256
// with the demo tenant's secret, the user as sub, and the qsh of path.
func (d *devSite) signedPageURL(service, path, account string) (string, error) {
	u, err := url.Parse(path)
	if err != nil {
		return "", err
	}
	now := time.Now()
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
		"iss": devClientKey, "sub": account, "iat": now.Unix(), "exp": now.Add(3 * time.Minute).Unix(),
		"qsh": connect.QSH(http.MethodGet, u, ""),
	}).SignedString([]byte(d.secret))
	if err != nil {
		return "", err
	}
	sep := "?"
	if strings.Contains(path, "?") {
		sep = "&"
	}
	return service + path + sep + "jwt=" + url.QueryEscape(tok), nil
}

// fromLoopback reports whether the request comes from this machine.
func fromLoopback(r *http.Request) bool {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return false
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

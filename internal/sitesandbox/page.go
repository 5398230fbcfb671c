package sitesandbox

import (
	"html/template"
	"net/http"
	"slices"
	"time"
)

// The page shows a developer the site's users and what supportbridge asked of it. It is
// served without authentication, like the rest of dev mode, escapes everything it shows
// (account ids and queries come from callers), and carries no script; its CSP forbids any.

type pageData struct {
	PathPrefix string
	Validated  bool
	Down       int
	Users      []pageUser
	Calls      []Call
	Violations []string
}

type pageUser struct {
	AccountID, Email string
	Admin            bool
}

var pageFuncs = template.FuncMap{
	"when": func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05 MST") },
}

const pageTemplate = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Jira site sandbox</title>
<style>
body { font: 14px/1.4 system-ui, sans-serif; margin: 2em; max-width: 70em; }
table { border-collapse: collapse; } td, th { padding: 2px 8px; text-align: left; }
.violations { color: #a00; }
</style>
</head>
<body>
<h1>Jira site sandbox</h1>
<p>Spec validation: {{if .Validated}}on{{else}}off{{end}}{{with .PathPrefix}} · Forge prefix <code>{{.}}</code>{{end}}{{if eq .Down -1}} · <strong>hanging</strong>{{else if .Down}} · <strong>down ({{.Down}})</strong>{{end}}</p>
{{with .Violations}}<section class="violations"><h2>Spec violations</h2><ul>{{range .}}<li>{{.}}</li>{{end}}</ul></section>{{end}}
<h2>Users</h2>
<table><tr><th>Account id</th><th>Email</th><th>Jira administrator</th></tr>
{{range .Users}}<tr><td><code>{{.AccountID}}</code></td><td>{{.Email}}</td><td>{{if .Admin}}yes{{else}}no{{end}}</td></tr>
{{else}}<tr><td colspan="3">No users.</td></tr>{{end}}
</table>
<h2>Calls (newest first)</h2>
<table><tr><th>Time</th><th>Method</th><th>Path</th><th>Query</th><th>Auth</th><th>Status</th></tr>
{{range .Calls}}<tr><td>{{when .Time}}</td><td>{{.Method}}</td><td><code>{{.Path}}</code>{{if .Prefixed}} (prefixed){{end}}</td><td><code>{{.Query}}</code></td><td>{{.Auth}}</td><td>{{if .Status}}{{.Status}}{{else}}no answer{{end}}</td></tr>
{{else}}<tr><td colspan="6">No calls yet.</td></tr>{{end}}
</table>
</body>
</html>
`

func (s *Site) servePage(w http.ResponseWriter, r *http.Request) {
	data := pageData{PathPrefix: s.opts.PathPrefix, Validated: s.spec != nil,
		Calls: s.Calls(), Violations: s.Violations()}
	slices.Reverse(data.Calls)
	s.mu.Lock()
	data.Down = s.down
	for _, id := range s.order {
		u := s.users[id]
		data.Users = append(data.Users, pageUser{AccountID: u.accountID, Email: u.email, Admin: u.admin})
	}
	s.mu.Unlock()
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	if err := s.page.Execute(w, data); err != nil {
		s.log.Error("site_sandbox_page_failed", "err", err)
	}
}

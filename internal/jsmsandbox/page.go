package jsmsandbox

import (
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"time"
)

// The page shows a developer what supportbridge did to the desk: every request with its
// reporter, description, comments (public or internal) and attachments. It is served
// without authentication, like the rest of dev mode, and escapes everything it shows
// because report contents come from end users.

type pageData struct {
	ProjectKey, ServiceDeskID string
	ClosedDesk                bool
	Requests                  []pageRequest
	Customers                 []Customer
	Violations                []string
}

type pageRequest struct {
	Request
	Reporter Customer
}

var pageFuncs = template.FuncMap{
	"when": func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05 MST") },
}

const pageTemplate = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>JSM sandbox · {{.ProjectKey}}</title>
<style>
body { font: 14px/1.4 system-ui, sans-serif; margin: 2em; max-width: 70em; }
article { border: 1px solid #ccc; border-radius: 6px; padding: 1em; margin: 1em 0; }
pre { white-space: pre-wrap; background: #f6f6f6; padding: .5em; }
.internal { background: #fff6e0; }
.tag { font-size: 11px; padding: 1px 6px; border-radius: 8px; background: #ddd; }
.violations { color: #a00; }
table { border-collapse: collapse; } td, th { padding: 2px 8px; text-align: left; }
</style>
</head>
<body>
<h1>JSM sandbox: desk {{.ServiceDeskID}} ({{.ProjectKey}}){{if .ClosedDesk}}, closed{{end}}</h1>
{{with .Violations}}<section class="violations"><h2>Spec violations</h2><ul>{{range .}}<li>{{.}}</li>{{end}}</ul></section>{{end}}
<h2>Requests</h2>
{{range .Requests}}
<article id="{{.Key}}">
<h3>{{.Key}}: {{.Summary}} <span class="tag">{{.Status}}</span></h3>
<p>Reporter: {{.Reporter.DisplayName}} &lt;{{.Reporter.Email}}&gt; · created {{when .Created}}</p>
<pre>{{.Description}}</pre>
{{with .Attachments}}<h4>Attachments</h4><table>
<tr><th>File</th><th>Type</th><th>Bytes</th><th>Visibility</th></tr>
{{range .}}<tr><td>{{.Filename}}</td><td>{{.MediaType}}</td><td>{{.Size}}</td><td>{{if .Public}}public{{else}}internal{{end}}</td></tr>{{end}}
</table>{{end}}
{{with .Comments}}<h4>Comments</h4>{{range .}}
<div class="{{if not .Public}}internal{{end}}"><span class="tag">{{if .Public}}public{{else}}internal{{end}}</span> {{when .Created}}<pre>{{.Body}}</pre></div>
{{end}}{{end}}
</article>
{{else}}<p>No requests yet.</p>{{end}}
<h2>Accounts</h2>
<table><tr><th>Display name</th><th>Email</th><th>Type</th><th>Desk customer</th><th>Account id</th></tr>
{{range .Customers}}<tr><td>{{.DisplayName}}</td><td>{{.Email}}</td><td>{{.AccountType}}</td><td>{{if .InDesk}}yes{{end}}</td><td><code>{{.AccountID}}</code></td></tr>{{end}}
</table>
</body>
</html>
`

func (s *Sandbox) servePage(w http.ResponseWriter, r *http.Request) {
	data := pageData{ProjectKey: s.opts.ProjectKey, ServiceDeskID: s.opts.ServiceDeskID, ClosedDesk: s.opts.ClosedDesk,
		Customers: s.Customers(), Violations: s.Violations()}
	byID := make(map[string]Customer, len(data.Customers))
	for _, c := range data.Customers {
		byID[c.AccountID] = c
	}
	for _, req := range slices.Backward(s.Requests()) {
		data.Requests = append(data.Requests, pageRequest{Request: req, Reporter: byID[req.ReporterAccountID]})
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if err := s.page.Execute(w, data); err != nil {
		s.log.Error("jsm_sandbox_page_failed", "err", err)
	}
}

// redirectToRequest makes the portal and agent links of a request open it on the page.
func (s *Sandbox) redirectToRequest(w http.ResponseWriter, r *http.Request) {
	http.Redirect(w, r, "/#"+url.PathEscape(r.PathValue("key")), http.StatusFound)
}

package httpapi

import (
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/golang-jwt/jwt/v5"

	"github.com/supportbridge/supportbridge"
	"github.com/supportbridge/supportbridge/internal/connect"
)

// reportWidget is the "Report a problem" dialog of the Connect app: the dialog.html template
// and the widget files (web/report-widget) served under /static/<version>/.
type reportWidget struct {
	*staticFiles
	page *template.Template
	csp  string
}

// dialogData fills dialog.html.
type dialogData struct {
	APIBase, ScriptURL, StyleURL, AllJSURL, ContextToken string
}

// localContextTTL bounds the context token a local run puts in the dialog page; Atlassian's
// own context tokens live 15 minutes.
const localContextTTL = 15 * time.Minute

// newReportWidget reads dialog.html and the widget files from fsys; nil takes the files
// embedded in the binary.
func newReportWidget(fsys fs.FS, basePath, frameAncestors string) (*reportWidget, error) {
	if fsys == nil {
		sub, err := fs.Sub(supportbridge.ReportWidget, "web/report-widget")
		if err != nil {
			return nil, err
		}
		fsys = sub
	}
	page, err := template.ParseFS(fsys, "dialog.html")
	if err != nil {
		return nil, fmt.Errorf("report dialog page: %w", err)
	}
	files, err := newStaticFiles(fsys, basePath)
	if err != nil {
		return nil, fmt.Errorf("report widget: %w", err)
	}
	// Scripts and styles from our origin only (and Atlassian's all.js), calls to our API only,
	// framed by the customer's site only (and local pages on a loopback base URL).
	csp := "default-src 'none'; script-src 'self' https://connect-cdn.atl-paas.net; style-src 'self'; " +
		"img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors " + frameAncestors
	return &reportWidget{staticFiles: files, page: page, csp: csp}, nil
}

// renderReportDialog answers the dialog page for a verified page-load token. In a site the
// widget asks all.js for context tokens; on a loopback base URL (local runs and tests, where
// Atlassian's CDN is out of reach and nothing frames the page as Atlassian does) the page
// carries a context token minted here with the tenant's secret, as all.js would hand out.
func (s *Server) renderReportDialog(c *gin.Context, id connect.Identity) {
	ctx := c.Request.Context()
	w := s.widget
	data := dialogData{
		APIBase: strings.TrimRight(s.basePath, "/"), ScriptURL: w.url("connect.js"), StyleURL: w.url("widget.css"),
		AllJSURL: allJSURL,
	}
	if s.loopbackBase {
		data.AllJSURL = ""
		t, err := s.tenants.Get(ctx, id.ClientKey)
		if err != nil {
			s.failPage(c, err)
			return
		}
		now := s.now()
		tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
			"iss": id.ClientKey, "sub": id.AccountID, "iat": now.Unix(), "exp": now.Add(localContextTTL).Unix(),
			"qsh": connect.ContextQSH,
		}).SignedString(t.SharedSecret.Bytes())
		if err != nil {
			s.failPage(c, err)
			return
		}
		data.ContextToken = tok
	}
	h := c.Writer.Header()
	h.Set("Content-Security-Policy", w.csp)
	h.Del("X-Frame-Options") // frame-ancestors allows the customer's site, which must frame us
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Type", "text/html; charset=utf-8")
	c.Status(http.StatusOK)
	if err := w.page.Execute(c.Writer, data); err != nil {
		s.log.WarnContext(ctx, "render_failed", "error", err)
	}
}

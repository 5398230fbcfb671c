package httpapi

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"path"
	"sort"
	"strings"

	"github.com/gin-gonic/gin"
)

// siteUI is the customer's admin page: its HTML template and the static files it loads,
// served under /static/<version>/<file>. The version is a hash of every file, so the files
// can be cached for good and a new release is fetched at once; ES module imports between
// the files stay relative and land in the same version.
type siteUI struct {
	*staticFiles
	page *template.Template
	csp  string
}

// staticFiles is one set of files served under /static/<version>/<file>, where the version
// is a hash of every file of the set. The admin page and the error-capture script are two
// sets; their versions differ, so a URL names one set and only the current release of it.
type staticFiles struct {
	files   map[string][]byte
	version string
	base    string // <base path>/static/<version>/
}

// staticTypes are the files the page may load, by extension.
var staticTypes = map[string]string{
	".js":  "text/javascript; charset=utf-8",
	".css": "text/css; charset=utf-8",
	".svg": "image/svg+xml",
}

// newSiteUI reads the page template (page.html) and its static files from fsys.
func newSiteUI(fsys fs.FS, basePath string, frameAncestors string) (*siteUI, error) {
	page, err := template.ParseFS(fsys, "page.html")
	if err != nil {
		return nil, fmt.Errorf("site admin page: %w", err)
	}
	files, err := newStaticFiles(fsys, basePath)
	if err != nil {
		return nil, fmt.Errorf("site admin: %w", err)
	}
	ui := &siteUI{staticFiles: files, page: page}
	// The page runs scripts and styles from our origin only (and Atlassian's all.js), talks
	// to our API only, and may be framed by the customer's Atlassian site only.
	ui.csp = "default-src 'none'; script-src 'self' https://connect-cdn.atl-paas.net; style-src 'self'; " +
		"img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors " + frameAncestors
	return ui, nil
}

// newStaticFiles reads the servable files (by extension) at the top of fsys.
func newStaticFiles(fsys fs.FS, basePath string) (*staticFiles, error) {
	sf := &staticFiles{files: map[string][]byte{}}
	entries, err := fs.ReadDir(fsys, ".")
	if err != nil {
		return nil, fmt.Errorf("static files: %w", err)
	}
	var names []string
	for _, e := range entries {
		if e.IsDir() || staticTypes[path.Ext(e.Name())] == "" {
			continue
		}
		b, err := fs.ReadFile(fsys, e.Name())
		if err != nil {
			return nil, fmt.Errorf("static file %s: %w", e.Name(), err)
		}
		sf.files[e.Name()] = b
		names = append(names, e.Name())
	}
	sort.Strings(names)
	h := sha256.New()
	for _, n := range names {
		fmt.Fprintf(h, "%s\x00%d\x00", n, len(sf.files[n]))
		h.Write(sf.files[n])
	}
	sf.version = hex.EncodeToString(h.Sum(nil))[:12]
	sf.base = strings.TrimRight(basePath, "/") + "/static/" + sf.version + "/"
	return sf, nil
}

// url is where file is served.
func (sf *staticFiles) url(file string) string { return sf.base + file }

// static serves one file of the admin page, the error-capture script or the report widget. Only the current
// version of each set exists: an old or invented version is a 404, not a stale file.
func (s *Server) static(c *gin.Context) {
	var set *staticFiles
	for _, sf := range []*staticFiles{s.siteFiles(), s.errs.script, s.widget.staticFiles} {
		if sf != nil && c.Param("version") == sf.version {
			set = sf
		}
	}
	if set == nil {
		writeProblem(c, notFound("No such static file."))
		return
	}
	name := c.Param("file")
	b, ok := set.files[name]
	if !ok {
		writeProblem(c, notFound("No such static file."))
		return
	}
	h := c.Writer.Header()
	h.Set("Cache-Control", "public, max-age=31536000, immutable")
	h.Set("X-Content-Type-Options", "nosniff")
	c.Data(http.StatusOK, staticTypes[path.Ext(name)], b)
}

// siteFiles is the admin page's file set, or nil when the page is not configured.
func (s *Server) siteFiles() *staticFiles {
	if s.siteUI == nil {
		return nil
	}
	return s.siteUI.staticFiles
}

package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/supportbridge/supportbridge/internal/config"
	"github.com/supportbridge/supportbridge/internal/connect"
	"github.com/supportbridge/supportbridge/internal/sitesandbox"
)

// Demo users of the demo tenant's site: one administrator, one who is not.
const (
	devAdminAccount = "5b10ac8d82e05b22cc7d4ef5"
	devUserAccount  = "5b10a2844c20165700ede21g"
)

// devSite is the demo tenant's Atlassian site in dev mode: the site sandbox, plus
// /dev/support-access?as=admin|user, which opens the real admin page as either demo user
// the way Atlassian would (a page-load JWT with the qsh of that exact URL). Both live on a
// loopback listener of their own, never in the service's router.
type devSite struct {
	srv    *http.Server
	url    string
	site   *sitesandbox.Site
	secret string

	mu      sync.Mutex
	service string // the service's base URL, once it listens
	jsm     string // the JSM sandbox's base URL, for links on /dev
	appKey  string
}

func startDevSite(ctx context.Context, getenv func(string) string, cfg config.Config, sharedSecret string, log *slog.Logger) (*devSite, error) {
	addr := getenv("SB_DEV_SITE_ADDR")
	if addr == "" {
		addr = "127.0.0.1:8082"
	}
	o := sitesandbox.Options{AppKey: cfg.ConnectAppKey, SharedSecret: []byte(sharedSecret), KeepCalls: 1000, Logger: log}
	if p, ok := sitesandbox.SpecPathFromEnv(); ok {
		o.PlatformSpecPath = p
	}
	site, err := sitesandbox.New(o)
	if err != nil {
		return nil, err
	}
	site.AddUser(devAdminAccount, "ada.admin@customer.example", true)
	site.AddUser(devUserAccount, "sam.user@customer.example", false)
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("demo site: listen on %s (set SB_DEV_SITE_ADDR): %w", addr, err)
	}
	d := &devSite{site: site, secret: sharedSecret, url: "http://" + ln.Addr().String(), appKey: cfg.ConnectAppKey}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /dev/support-access", d.openAdminPage)
	mux.HandleFunc("GET /dev", d.devHome) // devhome.go
	mux.HandleFunc("GET /dev/dev.css", d.devHomeCSS)
	mux.Handle("/", site)
	d.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go d.srv.Serve(ln)
	log.Info("demo_site_listening", "url", d.url, "open_admin_page", d.url+"/dev/support-access?as=admin",
		"open_as_non_admin", d.url+"/dev/support-access?as=user")
	return d, nil
}

// rewrite sends the service's calls to the demo site here instead of to Atlassian.
func (d *devSite) rewrite(base string) string {
	if strings.TrimRight(base, "/") == devBaseURL {
		return d.url
	}
	return base
}

func (d *devSite) setService(addr string, cfg config.Config) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.service = "http://" + loopbackAddr(addr) + cfg.PublicBaseURL.Path
	if cfg.JSM.BaseURL != nil {
		d.jsm = strings.TrimRight(cfg.JSM.BaseURL.String(), "/")
	}
}

// openAdminPage redirects to the service's Support access page, loaded as the chosen demo
// user with a JWT signed by the demo tenant's shared secret, as Atlassian loads it.
func (d *devSite) openAdminPage(w http.ResponseWriter, r *http.Request) {
	account := devAdminAccount
	if r.URL.Query().Get("as") == "user" {
		account = devUserAccount
	}
	d.mu.Lock()
	service := d.service
	d.mu.Unlock()
	if service == "" {
		http.Error(w, "the service is not listening yet", http.StatusServiceUnavailable)
		return
	}
	path := connect.PathSupportAccess
	if id := r.URL.Query().Get("request"); requestIDShape(id) {
		path += "?ac.request=" + id
	}
	u, _ := url.Parse(path)
	now := time.Now()
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
		"iss": devClientKey, "sub": account, "iat": now.Unix(), "exp": now.Add(3 * time.Minute).Unix(),
		"qsh": connect.QSH(http.MethodGet, u, ""),
	}).SignedString([]byte(d.secret))
	if err != nil {
		http.Error(w, "sign", http.StatusInternalServerError)
		return
	}
	sep := "?"
	if strings.Contains(path, "?") {
		sep = "&"
	}
	http.Redirect(w, r, service+path+sep+"jwt="+url.QueryEscape(tok), http.StatusFound)
}

func requestIDShape(id string) bool {
	if len(id) != 35 || !strings.HasPrefix(id, "ar_") {
		return false
	}
	for _, c := range id[3:] {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

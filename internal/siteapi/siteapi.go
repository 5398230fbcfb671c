// Package siteapi calls a customer's Atlassian site as the app, to ask what only the site
// knows: whether a person administers it. Connect tenants are asked with an app JWT signed
// with the tenant's shared secret (exact qsh); Forge installations with the app system token
// Forge sent on the invocation.
package siteapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/supportbridge/supportbridge/internal/connect"
	"github.com/supportbridge/supportbridge/internal/consent"
	"github.com/supportbridge/supportbridge/internal/tenant"
)

// Tenants gives the checker a tenant's site and secret.
type Tenants interface {
	Get(ctx context.Context, clientKey string) (tenant.Tenant, error)
}

// YesTTL is how long a "yes, administers the site" is remembered. A "no" is never
// remembered: someone just made an administrator must not wait, and a lost permission counts
// within a minute.
const YesTTL = 60 * time.Second

// Checker implements consent.SiteAdmins.
type Checker struct {
	Tenants Tenants
	// AppKey is the Connect app key, the iss of app JWTs.
	AppKey string
	// HTTP sends the calls; its timeout bounds how long a decision waits for the site.
	HTTP *http.Client
	// Rewrite, when set, maps a site's base URL (or a Forge API base URL) to where it is
	// really served: dev mode points the demo site at the local site sandbox. Nil in
	// production.
	Rewrite func(baseURL string) string
	// Now is the clock; nil means time.Now.
	Now func() time.Time

	mu  sync.Mutex
	yes map[string]time.Time // tenant + "\x00" + accountId → until
}

var _ consent.SiteAdmins = (*Checker)(nil)

const maxRemembered = 10000

func (c *Checker) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

// Check asks the site whether who holds the ADMINISTER global permission. With decision set
// the site is always asked: a decision is taken on what the site says at that moment, and a
// remembered "yes" serves only the reads around it.
func (c *Checker) Check(ctx context.Context, who consent.SiteAdmin, decision bool) error {
	if who.Tenant == "" || who.AccountID == "" {
		return consent.ErrNotSiteAdmin
	}
	key := who.Tenant + "\x00" + who.AccountID
	c.mu.Lock()
	until, ok := c.yes[key]
	c.mu.Unlock()
	if ok && !decision && c.now().Before(until) {
		return nil
	}
	admin, err := c.ask(ctx, who)
	if err != nil {
		return fmt.Errorf("%w: %w", consent.ErrSiteUnavailable, err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if !admin {
		delete(c.yes, key)
		return consent.ErrNotSiteAdmin
	}
	if c.yes == nil || len(c.yes) >= maxRemembered {
		c.yes = map[string]time.Time{}
	}
	c.yes[key] = c.now().Add(YesTTL)
	return nil
}

// Forget drops what is remembered of a tenant, for an uninstall.
func (c *Checker) Forget(tenantKey string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for k := range c.yes {
		if strings.HasPrefix(k, tenantKey+"\x00") {
			delete(c.yes, k)
		}
	}
}

const permissionsPath = "/rest/api/3/permissions/check"

// ask makes one permissions/check call.
func (c *Checker) ask(ctx context.Context, who consent.SiteAdmin) (bool, error) {
	body, _ := json.Marshal(map[string]any{"accountId": who.AccountID, "globalPermissions": []string{"ADMINISTER"}})
	var (
		req *http.Request
		err error
	)
	switch who.Via {
	case "forge":
		if who.SystemToken.IsZero() {
			return false, errors.New("no app system token on the invocation")
		}
		apiBase := who.APIBaseURL
		if c.Rewrite != nil {
			apiBase = c.Rewrite(apiBase)
		}
		base, err := siteURL(apiBase)
		if err != nil {
			return false, err
		}
		u := *base
		u.Path = strings.TrimRight(base.Path, "/") + permissionsPath
		req, err = http.NewRequestWithContext(ctx, http.MethodPost, u.String(), bytes.NewReader(body))
		if err != nil {
			return false, err
		}
		req.Header.Set("Authorization", "Bearer "+who.SystemToken.Reveal())
	default:
		t, err := c.Tenants.Get(ctx, who.Tenant)
		if err != nil {
			return false, fmt.Errorf("tenant: %w", err)
		}
		baseURL := t.BaseURL
		if c.Rewrite != nil {
			baseURL = c.Rewrite(baseURL)
		}
		base, err := siteURL(baseURL)
		if err != nil {
			return false, err
		}
		u := *base
		u.Path = strings.TrimRight(base.Path, "/") + permissionsPath
		now := c.now()
		tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
			"iss": c.AppKey, "iat": now.Unix(), "exp": now.Add(3 * time.Minute).Unix(),
			"qsh": connect.QSH(http.MethodPost, &u, strings.TrimRight(base.Path, "/")),
		}).SignedString(t.SharedSecret.Bytes())
		if err != nil {
			return false, fmt.Errorf("sign app token: %w", err)
		}
		req, err = http.NewRequestWithContext(ctx, http.MethodPost, u.String(), bytes.NewReader(body))
		if err != nil {
			return false, err
		}
		req.Header.Set("Authorization", "JWT "+tok)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	client := c.HTTP
	if client == nil {
		client = &http.Client{Timeout: 5 * time.Second}
	}
	resp, err := client.Do(req)
	if err != nil {
		return false, fmt.Errorf("permissions check: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		return false, fmt.Errorf("permissions check: status %d", resp.StatusCode)
	}
	var out struct {
		GlobalPermissions []string `json:"globalPermissions"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&out); err != nil {
		return false, errors.New("permissions check: unreadable answer")
	}
	return slices.Contains(out.GlobalPermissions, "ADMINISTER"), nil
}

// siteURL parses a site or API base URL: https, or http on a loopback host (tests and dev).
func siteURL(raw string) (*url.URL, error) {
	u, err := url.Parse(strings.TrimRight(raw, "/"))
	if err != nil || u.Host == "" {
		return nil, errors.New("bad site url")
	}
	switch u.Scheme {
	case "https":
	case "http":
		host := u.Hostname()
		if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
			return nil, errors.New("site url must be https")
		}
	default:
		return nil, errors.New("site url must be https")
	}
	u.RawQuery, u.Fragment = "", ""
	return u, nil
}

package forge

import (
	"bytes"
	"encoding/json"
	"strings"
)

// siteContext is what we read from a FIT context claim.
type siteContext struct {
	cloudID, siteURL, moduleKey string
}

// readContext reads the FIT context claim. UI modules send an object with cloudId; a site
// ARI string is accepted too, because that is how Forge names the site in event bodies.
// Any other shape yields nothing, and the cloud id then comes from the API base URL.
func readContext(raw json.RawMessage) siteContext {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		id, _ := cloudIDFromSiteARI(s)
		return siteContext{cloudID: id}
	}
	var o struct {
		CloudID   any `json:"cloudId"`
		SiteURL   any `json:"siteUrl"`
		ModuleKey any `json:"moduleKey"`
	}
	if json.Unmarshal(raw, &o) != nil {
		return siteContext{}
	}
	str := func(v any) string { s, _ := v.(string); return s }
	return siteContext{cloudID: str(o.CloudID), siteURL: str(o.SiteURL), moduleKey: str(o.ModuleKey)}
}

// accountID reads the principal claim: an account id string, or an object with accountId as
// Forge functions receive it. Absent or null means a system invocation. Any other shape is
// refused rather than read as "no user", so a user is never silently dropped.
func accountID(raw json.RawMessage) (string, bool) {
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return "", true
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s, true
	}
	var o struct {
		AccountID *string `json:"accountId"`
	}
	if json.Unmarshal(raw, &o) == nil && o.AccountID != nil {
		return *o.AccountID, true
	}
	return "", false
}

// cloudIDFromSiteARI returns the cloud id of a site ARI, ari:cloud:<product>::site/<cloudId>.
func cloudIDFromSiteARI(ari string) (string, bool) {
	rest, ok := strings.CutPrefix(ari, "ari:cloud:")
	if !ok {
		return "", false
	}
	product, id, ok := strings.Cut(rest, "::site/")
	if !ok || product == "" || strings.ContainsAny(product, ":/") || !validCloudID(id) {
		return "", false
	}
	return id, true
}

// validCloudID accepts the UUIDs Atlassian uses and anything else made of letters, digits
// and dashes: the cloud id names a tenant's folder in the log store and is part of Redis
// keys, so it must be a plain token.
func validCloudID(s string) bool {
	if s == "" || len(s) > 64 || s[0] == '-' {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-') {
			return false
		}
	}
	return true
}

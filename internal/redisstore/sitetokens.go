package redisstore

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/supportbridge/supportbridge/internal/report"
	"github.com/supportbridge/supportbridge/internal/secret"
)

// SiteTokenTTL is how long a Forge app system token is kept for the worker: long enough for
// a delivery's first attempts, shorter than the token lives, so nothing is kept that the
// site would no longer honour anyway.
const SiteTokenTTL = 15 * time.Minute

// siteTokenKey holds "<apiBaseUrl>\n<sealed token>", the latest app system token Forge sent
// for the tenant. The token is the app's on that installation, not a user's, so one key per
// tenant is enough, and the key count is bounded by tenants, not by requests: a flood of
// refused or replayed reports overwrites one key instead of writing one each.
func siteTokenKey(tenantKey string) string { return "sb:" + tenantTag(tenantKey) + ":sitetoken" }

// keepSiteToken stores the submission's Forge system token, sealed and bound to the tenant,
// before the report is queued, so that the worker finds it when it begins.
func (s *Reports) keepSiteToken(ctx context.Context, tenantKey string, sub report.Submission) error {
	if s.sealer == nil || sub.SiteToken.IsZero() || sub.SiteAPI == "" || strings.ContainsRune(sub.SiteAPI, '\n') {
		return nil
	}
	sealed := s.sealer.Seal("sitetoken/"+tenantKey, sub.SiteToken.Bytes())
	if err := s.rdb.Set(ctx, siteTokenKey(tenantKey), sub.SiteAPI+"\n"+string(sealed), SiteTokenTTL).Err(); err != nil {
		return unavailable("keep site token", err)
	}
	return nil
}

// SiteToken returns the Forge app system token and API base URL last kept for the tenant; a
// zero token when none was kept or it expired.
func (s *Reports) SiteToken(ctx context.Context, tenantKey string) (secret.Secret, string, error) {
	if s.sealer == nil {
		return secret.Secret{}, "", nil
	}
	v, err := s.rdb.Get(ctx, siteTokenKey(tenantKey)).Result()
	if errors.Is(err, redis.Nil) {
		return secret.Secret{}, "", nil
	}
	if err != nil {
		return secret.Secret{}, "", unavailable("read site token", err)
	}
	api, sealed, ok := strings.Cut(v, "\n")
	if !ok {
		return secret.Secret{}, "", nil
	}
	tok, err := s.sealer.Open("sitetoken/"+tenantKey, []byte(sealed))
	if err != nil {
		return secret.Secret{}, "", nil // sealed under another key or for another tenant: as if none was kept
	}
	return secret.New(string(tok)), api, nil
}

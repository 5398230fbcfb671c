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

// siteTokenKey holds "<apiBaseUrl>\n<sealed token>" for one report, in its tenant's slot.
func siteTokenKey(tenantKey, id string) string { return reportKey(tenantKey, id) + ":site" }

// keepSiteToken stores the submission's Forge system token, sealed and bound to the report,
// before the report is queued, so that the worker finds it when it begins. A report that is
// then refused leaves the key to expire.
func (s *Reports) keepSiteToken(ctx context.Context, tenantKey, id string, sub report.Submission) error {
	if s.sealer == nil || sub.SiteToken.IsZero() || sub.SiteAPI == "" || strings.ContainsRune(sub.SiteAPI, '\n') {
		return nil
	}
	sealed := s.sealer.Seal(tenantKey+"/"+id, sub.SiteToken.Bytes())
	if err := s.rdb.Set(ctx, siteTokenKey(tenantKey, id), sub.SiteAPI+"\n"+string(sealed), SiteTokenTTL).Err(); err != nil {
		return unavailable("keep site token", err)
	}
	return nil
}

// SiteToken returns the Forge app system token and API base URL kept with a report; a zero
// token when none was kept or it expired.
func (s *Reports) SiteToken(ctx context.Context, tenantKey, id string) (secret.Secret, string, error) {
	if s.sealer == nil || !idRE.MatchString(id) {
		return secret.Secret{}, "", nil
	}
	v, err := s.rdb.Get(ctx, siteTokenKey(tenantKey, id)).Result()
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
	tok, err := s.sealer.Open(tenantKey+"/"+id, []byte(sealed))
	if err != nil {
		return secret.Secret{}, "", nil // sealed under another key: as if none was kept
	}
	return secret.New(string(tok)), api, nil
}

package redisstore

import (
	"context"
	"errors"
	"time"

	"github.com/redis/go-redis/v9"
)

// ReporterEmailTTL is how long what a site said about an account's email is kept: a day, so
// a changed address or a revoked scope counts by the next day.
const ReporterEmailTTL = 24 * time.Hour

// reporterKey is the cached site answer for an accountId, keyed by a keyed hash of it so the
// key itself names nobody.
func reporterKey(tenantKey, mac string) string {
	return "sb:" + tenantTag(tenantKey) + ":reporter:" + mac
}

// CachedReporterEmail returns the email the tenant's site gave for accountID within the
// last ReporterEmailTTL, if any.
func (s *Reports) CachedReporterEmail(ctx context.Context, tenantKey, accountID string) (string, bool, error) {
	email, err := s.rdb.Get(ctx, reporterKey(tenantKey, s.customerMAC("account:"+accountID))).Result()
	if errors.Is(err, redis.Nil) {
		return "", false, nil
	}
	if err != nil {
		return "", false, unavailable("read reporter cache", err)
	}
	return email, true, nil
}

// CacheReporterEmail remembers the site's answer for accountID for ReporterEmailTTL.
func (s *Reports) CacheReporterEmail(ctx context.Context, tenantKey, accountID, email string) error {
	key := reporterKey(tenantKey, s.customerMAC("account:"+accountID))
	if err := s.rdb.Set(ctx, key, email, ReporterEmailTTL).Err(); err != nil {
		return unavailable("write reporter cache", err)
	}
	return nil
}

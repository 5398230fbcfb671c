package redisstore

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/supportbridge/supportbridge/internal/usage"
)

// Usage keeps anonymous daily counts: one hash per tenant and day under the tenant's tag
// (deleted with the tenant), and one per day over all tenants (sb:usage:<day>, which names
// no tenant and outlives purges). Both expire usage.Retention after their day.
type Usage struct{ rdb redis.UniversalClient }

// NewUsage returns the usage store.
func NewUsage(rdb redis.UniversalClient) *Usage { return &Usage{rdb: rdb} }

var _ usage.Store = (*Usage)(nil)

func usageTenantKey(tenant, day string) string { return "sb:" + tenantTag(tenant) + ":usage:" + day }
func usageTotalKey(day string) string          { return "sb:usage:" + day }

// Add implements usage.Store.
func (u *Usage) Add(ctx context.Context, tenant string, at time.Time, counts map[string]int64) error {
	day := at.UTC().Format(time.DateOnly)
	expire := at.UTC().Truncate(24 * time.Hour).Add(usage.Retention)
	_, err := u.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, k := range []string{usageTenantKey(tenant, day), usageTotalKey(day)} {
			for kind, n := range counts {
				p.HIncrBy(ctx, k, kind, n)
			}
			p.ExpireAt(ctx, k, expire)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("add usage: %w: %w", ErrUnavailable, err)
	}
	return nil
}

// Days implements usage.Store.
func (u *Usage) Days(ctx context.Context, tenant string, from, to time.Time) (map[string]map[string]int64, error) {
	var days []string
	for d := from.UTC().Truncate(24 * time.Hour); !d.After(to); d = d.Add(24 * time.Hour) {
		days = append(days, d.Format(time.DateOnly))
	}
	cmds := make([]*redis.MapStringStringCmd, len(days))
	_, err := u.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, d := range days {
			k := usageTotalKey(d)
			if tenant != "" {
				k = usageTenantKey(tenant, d)
			}
			cmds[i] = p.HGetAll(ctx, k)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read usage: %w: %w", ErrUnavailable, err)
	}
	out := map[string]map[string]int64{}
	for i, c := range cmds {
		if len(c.Val()) == 0 {
			continue
		}
		m := map[string]int64{}
		for k, v := range c.Val() {
			m[k], _ = strconv.ParseInt(v, 10, 64)
		}
		out[days[i]] = m
	}
	return out, nil
}

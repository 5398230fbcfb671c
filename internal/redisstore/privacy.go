package redisstore

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/redis/go-redis/v9"

	"github.com/supportbridge/supportbridge/internal/lifecycle"
)

// Privacy finds what Redis holds about one person; it implements lifecycle.PrivacyStore.
// The customer cache is keyed by a MAC of the email (the same key Reports uses) and holds
// the accountId, so an email finds its entries by key and an accountId by value; the
// reporter cache is the other way round (MAC of "account:"+accountId → email).
type Privacy struct {
	rdb         redis.UniversalClient
	customerKey []byte
}

// NewPrivacy returns the store; customerKey must be ReportsOptions.CustomerKey.
func NewPrivacy(rdb redis.UniversalClient, customerKey []byte) *Privacy {
	return &Privacy{rdb: rdb, customerKey: customerKey}
}

var _ lifecycle.PrivacyStore = (*Privacy)(nil)

// customerMACOf is Reports.customerMAC with an explicit key.
func customerMACOf(key []byte, email string) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(strings.ToLower(strings.TrimSpace(email))))
	return hex.EncodeToString(m.Sum(nil))
}

// scanAll calls each for every key matching pattern, on every master of a Cluster.
func scanAll(ctx context.Context, rdb redis.UniversalClient, pattern string, each func(c redis.Cmdable, key string) error) error {
	scan := func(ctx context.Context, c redis.Cmdable) error {
		var cursor uint64
		for {
			keys, next, err := c.Scan(ctx, cursor, pattern, 1000).Result()
			if err != nil {
				return err
			}
			for _, k := range keys {
				if err := each(c, k); err != nil {
					return err
				}
			}
			if next == 0 {
				return nil
			}
			cursor = next
		}
	}
	if cc, ok := rdb.(*redis.ClusterClient); ok {
		// Masters are scanned concurrently: each must be safe for that.
		return cc.ForEachMaster(ctx, func(ctx context.Context, n *redis.Client) error {
			return scan(ctx, n)
		})
	}
	return scan(ctx, rdb)
}

// EraseCustomerEmail implements lifecycle.PrivacyStore: the customer-cache entries keyed by
// the email, and the reporter-cache entries that hold it.
func (p *Privacy) EraseCustomerEmail(ctx context.Context, email string) (int64, error) {
	n, err := p.erase(ctx, "sb:*:customer:"+customerMACOf(p.customerKey, email), "")
	if err != nil {
		return n, err
	}
	m, err := p.eraseFold(ctx, "sb:*:reporter:*", email)
	return n + m, err
}

// EraseCustomerAccount implements lifecycle.PrivacyStore: the customer-cache entries that
// hold the accountId, and the reporter-cache entries keyed by it.
func (p *Privacy) EraseCustomerAccount(ctx context.Context, accountID string) (int64, error) {
	n, err := p.erase(ctx, "sb:*:customer:*", accountID)
	if err != nil {
		return n, err
	}
	m, err := p.erase(ctx, "sb:*:reporter:"+customerMACOf(p.customerKey, "account:"+accountID), "")
	return n + m, err
}

// erase deletes the keys matching pattern; with value set, only those that hold it.
func (p *Privacy) erase(ctx context.Context, pattern, value string) (int64, error) {
	var n int64
	var mu sync.Mutex
	err := scanAll(ctx, p.rdb, pattern, func(_ redis.Cmdable, k string) error {
		var d int64
		var err error
		if value == "" {
			d, err = p.rdb.Del(ctx, k).Result()
		} else {
			d, err = p.rdb.Eval(ctx, delIfLua, []string{k}, value).Int64()
		}
		mu.Lock()
		n += d
		mu.Unlock()
		return err
	})
	if err != nil {
		return n, fmt.Errorf("erase cached mappings: %w: %w", ErrUnavailable, err)
	}
	return n, nil
}

// eraseFold deletes the keys matching pattern that hold email, compared as Atlassian
// compares emails (case-insensitively).
func (p *Privacy) eraseFold(ctx context.Context, pattern, email string) (int64, error) {
	var n int64
	var mu sync.Mutex
	want := strings.TrimSpace(email)
	err := scanAll(ctx, p.rdb, pattern, func(_ redis.Cmdable, k string) error {
		v, err := p.rdb.Get(ctx, k).Result()
		if errors.Is(err, redis.Nil) {
			return nil
		}
		if err != nil {
			return err
		}
		if !strings.EqualFold(strings.TrimSpace(v), want) {
			return nil
		}
		d, err := p.rdb.Eval(ctx, delIfLua, []string{k}, v).Int64()
		mu.Lock()
		n += d
		mu.Unlock()
		return err
	})
	if err != nil {
		return n, fmt.Errorf("erase cached mappings: %w: %w", ErrUnavailable, err)
	}
	return n, nil
}

// Tenants implements lifecycle.PrivacyStore.
func (p *Privacy) Tenants(ctx context.Context) ([]string, error) {
	var out []string
	var mu sync.Mutex
	err := scanAll(ctx, p.rdb, "sb:{t:*}:tenant", func(_ redis.Cmdable, k string) error {
		b, err := p.rdb.Get(ctx, k).Bytes()
		if errors.Is(err, redis.Nil) {
			return nil
		}
		if err != nil {
			return err
		}
		var st storedTenant
		if json.Unmarshal(b, &st) == nil && st.ClientKey != "" {
			mu.Lock()
			out = append(out, st.ClientKey)
			mu.Unlock()
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list tenants: %w: %w", ErrUnavailable, err)
	}
	return out, nil
}

// removeTrackingLua removes ids from one group's id set; a group that only those ids hit
// (its set empties, and it never dropped ids past the cap) goes too. KEYS: group, ids,
// index. ARGV: fingerprint, ids… Answers {ids removed, group removed}.
var removeTrackingLua = redis.NewScript(`
if redis.call('EXISTS', KEYS[2]) == 0 then return {0, 0} end
local n = 0
for i = 2, #ARGV do n = n + redis.call('SREM', KEYS[2], ARGV[i]) end
if n > 0 and redis.call('EXISTS', KEYS[2]) == 0 and redis.call('HGET', KEYS[1], 'capped') ~= '1' then
  redis.call('DEL', KEYS[1])
  redis.call('ZREM', KEYS[3], ARGV[1])
  return {n, 1}
end
return {n, 0}
`)

// RemoveTrackingIDs implements lifecycle.PrivacyStore.
func (p *Privacy) RemoveTrackingIDs(ctx context.Context, tenant string, ids []string) (int64, int64, error) {
	fps, err := p.rdb.ZRange(ctx, errGroupsKey(tenant), 0, -1).Result()
	if err != nil {
		return 0, 0, fmt.Errorf("list error groups: %w: %w", ErrUnavailable, err)
	}
	var ni, ng int64
	args := make([]any, 0, len(ids)+1)
	for _, fp := range fps {
		args = append(args[:0], fp)
		for _, id := range ids {
			args = append(args, id)
		}
		res, err := removeTrackingLua.Run(ctx, p.rdb,
			[]string{errGroupKey(tenant, fp), errUsersKey(tenant, fp), errGroupsKey(tenant)}, args...).Int64Slice()
		if err != nil {
			return ni, ng, fmt.Errorf("remove tracking ids: %w: %w", ErrUnavailable, err)
		}
		ni += res[0]
		ng += res[1]
	}
	return ni, ng, nil
}

package redisstore

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/supportbridge/supportbridge/internal/errortrack"
)

// Keys of browser error tracking, all under the tenant's hash tag so one script touches
// one slot.
func errGroupsKey(tenant string) string { return "sb:" + tenantTag(tenant) + ":errors:groups" }
func errGroupKey(tenant, fp string) string {
	return "sb:" + tenantTag(tenant) + ":errors:group:" + fp
}
func errUsersKey(tenant, fp string) string { return errGroupKey(tenant, fp) + ":ids" }
func errRateKey(tenant string, window int64) string {
	return "sb:" + tenantTag(tenant) + ":errors:rate:" + strconv.FormatInt(window, 10)
}

// Errors keeps browser error groups; it implements errortrack.Store.
type Errors struct{ rdb redis.UniversalClient }

// NewErrors returns the error-group store on rdb.
func NewErrors(rdb redis.UniversalClient) *Errors { return &Errors{rdb: rdb} }

// errReserveLua takes ARGV[1] events from the window counter KEYS[1] if they fit under
// ARGV[2]; the counter lives ARGV[3] ms, a little past its window.
var errReserveLua = redis.NewScript(`
local cur = tonumber(redis.call('GET', KEYS[1]) or '0')
local n = tonumber(ARGV[1])
if cur + n > tonumber(ARGV[2]) then return 0 end
redis.call('INCRBY', KEYS[1], n)
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1
`)

// Reserve implements errortrack.Store with a fixed window counter per tenant.
func (e *Errors) Reserve(ctx context.Context, tenant string, n, limit int, window time.Duration, now time.Time) (bool, time.Duration, error) {
	w := now.UnixMilli() / window.Milliseconds()
	ok, err := errReserveLua.Run(ctx, e.rdb, []string{errRateKey(tenant, w)}, n, limit, 2*window.Milliseconds()).Int()
	if err != nil {
		return false, 0, fmt.Errorf("reserve error budget: %w: %w", ErrUnavailable, err)
	}
	if ok == 1 {
		return true, 0, nil
	}
	next := time.UnixMilli((w + 1) * window.Milliseconds())
	return false, next.Sub(now), nil
}

// errRecordLua records one hit. KEYS: group hash, its id set, the tenant's index.
// ARGV: now ms, ttl s, fingerprint, kind, message, frame, url, status, tracking id,
// max ids, max groups, request id. The first hit sets the sample; every hit moves last-seen and the
// TTLs, so a group lives ttl after its last hit. The index forgets groups older than the
// TTL and keeps the most recently hit max groups.
var errRecordLua = redis.NewScript(`
local now, ttl = tonumber(ARGV[1]), tonumber(ARGV[2])
local n = redis.call('HINCRBY', KEYS[1], 'count', 1)
if n == 1 then
  redis.call('HSET', KEYS[1], 'first', ARGV[1], 'kind', ARGV[4], 'message', ARGV[5],
    'frame', ARGV[6], 'url', ARGV[7], 'status', ARGV[8])
end
redis.call('HSET', KEYS[1], 'last', ARGV[1])
if ARGV[12] ~= '' then redis.call('HSET', KEYS[1], 'requestId', ARGV[12]) end
redis.call('EXPIRE', KEYS[1], ttl)
if ARGV[9] ~= '' and redis.call('SISMEMBER', KEYS[2], ARGV[9]) == 0 then
  if redis.call('SCARD', KEYS[2]) < tonumber(ARGV[10]) then
    redis.call('SADD', KEYS[2], ARGV[9])
  else
    redis.call('HSET', KEYS[1], 'capped', '1')
  end
end
if redis.call('EXISTS', KEYS[2]) == 1 then redis.call('EXPIRE', KEYS[2], ttl) end
redis.call('ZADD', KEYS[3], now, ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', '(' .. tostring(now - ttl * 1000))
redis.call('ZREMRANGEBYRANK', KEYS[3], 0, -(tonumber(ARGV[11]) + 1))
redis.call('EXPIRE', KEYS[3], ttl)
return n
`)

// Record implements errortrack.Store: one script per hit, all in one pipeline.
func (e *Errors) Record(ctx context.Context, tenant string, hits []errortrack.Hit, now time.Time, r errortrack.Retention) error {
	err := e.record(ctx, tenant, hits, now, r)
	if err != nil && strings.Contains(err.Error(), "NOSCRIPT") {
		// A pipeline cannot fall back from EVALSHA as Script.Run does alone, and no hit of
		// the pipeline ran: load the script (a new or flushed server) and send it once more.
		if err := errRecordLua.Load(ctx, e.rdb).Err(); err != nil {
			return fmt.Errorf("load error script: %w: %w", ErrUnavailable, err)
		}
		err = e.record(ctx, tenant, hits, now, r)
	}
	if err != nil {
		return fmt.Errorf("record error groups: %w: %w", ErrUnavailable, err)
	}
	return nil
}

func (e *Errors) record(ctx context.Context, tenant string, hits []errortrack.Hit, now time.Time, r errortrack.Retention) error {
	ttl := int64(r.TTL / time.Second)
	pipe := e.rdb.Pipeline()
	for _, h := range hits {
		keys := []string{errGroupKey(tenant, h.Fingerprint), errUsersKey(tenant, h.Fingerprint), errGroupsKey(tenant)}
		errRecordLua.Run(ctx, pipe, keys, now.UnixMilli(), ttl, h.Fingerprint, string(h.Kind), h.Message,
			h.Frame, h.URL, h.Status, h.TrackingID, r.MaxTrackingIDs, r.MaxGroups, h.RequestID)
	}
	_, err := pipe.Exec(ctx)
	return err
}

// Groups implements errortrack.Store. The index holds at most MaxGroups members, so a page
// reads it whole and finds its place after the cursor (last-seen, fingerprint) in Go;
// ties of last-seen are broken by fingerprint, so no group is skipped or repeated.
func (e *Errors) Groups(ctx context.Context, tenant, cursor string, limit int) (errortrack.Page, error) {
	var afterScore int64
	var afterFP string
	if cursor != "" {
		var err error
		if afterScore, afterFP, err = decodeErrCursor(cursor); err != nil {
			return errortrack.Page{}, err
		}
	}
	all, err := e.rdb.ZRangeArgsWithScores(ctx, redis.ZRangeArgs{Key: errGroupsKey(tenant), Start: 0, Stop: -1, Rev: true}).Result()
	if err != nil {
		return errortrack.Page{}, fmt.Errorf("read error index: %w: %w", ErrUnavailable, err)
	}
	sort.SliceStable(all, func(i, j int) bool {
		if all[i].Score != all[j].Score {
			return all[i].Score > all[j].Score
		}
		return all[i].Member.(string) > all[j].Member.(string)
	})
	start := 0
	if cursor != "" {
		start = sort.Search(len(all), func(i int) bool {
			s, m := int64(all[i].Score), all[i].Member.(string)
			return s < afterScore || (s == afterScore && m < afterFP)
		})
	}
	var page errortrack.Page
	for i := start; i < len(all) && len(page.Groups) < limit; i++ {
		fp := all[i].Member.(string)
		pipe := e.rdb.Pipeline()
		hg := pipe.HGetAll(ctx, errGroupKey(tenant, fp))
		ids := pipe.SMembers(ctx, errUsersKey(tenant, fp))
		if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
			return errortrack.Page{}, fmt.Errorf("read error group: %w: %w", ErrUnavailable, err)
		}
		f := hg.Val()
		if len(f) == 0 {
			continue // expired between the index and the read
		}
		g := errortrack.Group{
			Fingerprint: fp, Kind: errortrack.Kind(f["kind"]), Message: f["message"], Frame: f["frame"], URL: f["url"], RequestID: f["requestId"],
			FirstSeen: msTime(f["first"]), LastSeen: msTime(f["last"]), TrackingIDs: ids.Val(), TrackingIDsCapped: f["capped"] == "1",
		}
		g.Count, _ = strconv.ParseInt(f["count"], 10, 64)
		g.Status, _ = strconv.Atoi(f["status"])
		sort.Strings(g.TrackingIDs)
		page.Groups = append(page.Groups, g)
		if len(page.Groups) == limit && i+1 < len(all) {
			page.NextCursor = encodeErrCursor(int64(all[i].Score), fp)
		}
	}
	return page, nil
}

func msTime(s string) time.Time {
	ms, _ := strconv.ParseInt(s, 10, 64)
	return time.UnixMilli(ms).UTC()
}

func encodeErrCursor(score int64, fp string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(score, 10) + ":" + fp))
}

func decodeErrCursor(c string) (int64, string, error) {
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil {
		return 0, "", errortrack.ErrBadCursor
	}
	s, fp, ok := strings.Cut(string(b), ":")
	score, err := strconv.ParseInt(s, 10, 64)
	if !ok || err != nil || fp == "" {
		return 0, "", errortrack.ErrBadCursor
	}
	return score, fp, nil
}

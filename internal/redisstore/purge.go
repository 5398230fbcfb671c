package redisstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/supportbridge/supportbridge/internal/audit"
	"github.com/supportbridge/supportbridge/internal/lifecycle"
)

// Purge deletes tenants' records; it implements lifecycle.Store and lifecycle.Lease.
//
// Every key of a tenant carries its hash tag, so the purge finds them with SCAN on the node
// that owns the tag's slot (Cluster-safe: one node holds them all) and deletes them with
// scripts that count what they delete in a progress hash under the same tag. A purge that
// crashed leaves the progress hash behind, and the tenant stays due, so the next run (the
// job or an admin) carries on and the counts stay exact. Lookups outside the tag (sb:idx:*,
// sb:ticket:*, dead letters) are removed before the records they were found through, and
// only while they still name the tenant.
//
// Layout: sb:{t}:purge (progress: fence, startedAt, c:<kind> counts, the tenant's index
// ids, the audit head, ticket:<key>), sb:{t}:tombstone (what remains), sb:lifecycle:marked
// (zset of tenants by when they are due), sb:{purge}:lease and sb:{purge}:fence (the job's
// lease and the fencing-token counter, one slot so one script takes both).
type Purge struct {
	rdb     redis.UniversalClient
	reports *Reports
	batch   int
}

// PurgeOptions configure a Purge.
type PurgeOptions struct {
	// Reports is the report store whose dead letters name tenants; nil skips them.
	Reports *Reports
	// Batch is how many keys one delete script takes; default 200. Tests set 1 to crash
	// between deletions.
	Batch int
}

// NewPurge returns the purge store.
func NewPurge(rdb redis.UniversalClient, o PurgeOptions) *Purge {
	if o.Batch <= 0 {
		o.Batch = 200
	}
	return &Purge{rdb: rdb, reports: o.Reports, batch: o.Batch}
}

var (
	_ lifecycle.Store = (*Purge)(nil)
	_ lifecycle.Lease = (*Purge)(nil)
)

func purgeProgressKey(tenant string) string  { return "sb:" + tenantTag(tenant) + ":purge" }
func purgeTombstoneKey(tenant string) string { return "sb:" + tenantTag(tenant) + ":tombstone" }

const (
	purgeMarkedKey = "sb:lifecycle:marked"
	purgeLeaseKey  = "sb:{purge}:lease"
	purgeFenceKey  = "sb:{purge}:fence"
)

// purgeFenced opens every fenced script: KEYS[1] progress, KEYS[2] tombstone, ARGV[1] the
// fence. A token lower than one the tenant saw answers -1 and writes nothing.
const purgeFenced = `
local f = tonumber(ARGV[1])
if f < tonumber(redis.call('HGET', KEYS[1], 'fence') or '0') or
   f < tonumber(redis.call('HGET', KEYS[2], 'fence') or '0') then return -1 end
redis.call('HSET', KEYS[1], 'fence', ARGV[1])
`

// purgeBeginScript starts (or resumes) a purge. ARGV: fence, now ms.
var purgeBeginScript = redis.NewScript(purgeFenced + `
redis.call('HSETNX', KEYS[1], 'startedAt', ARGV[2])
return 1
`)

// purgeNoteScript writes fields of the progress hash. ARGV: fence, op (set|incr), field,
// value, field, value…
var purgeNoteScript = redis.NewScript(purgeFenced + `
for i = 3, #ARGV, 2 do
  if ARGV[2] == 'incr' then redis.call('HINCRBY', KEYS[1], ARGV[i], ARGV[i+1])
  else redis.call('HSET', KEYS[1], ARGV[i], ARGV[i+1]) end
end
return 1
`)

// purgeDelScript deletes KEYS[3..] and counts each deleted key under its kind, in one
// atomic step, so a crash never loses or doubles a count. ARGV: fence, kind per key.
var purgeDelScript = redis.NewScript(purgeFenced + `
for i = 3, #KEYS do
  if redis.call('DEL', KEYS[i]) == 1 then redis.call('HINCRBY', KEYS[1], 'c:' .. ARGV[i-1], 1) end
end
return 1
`)

// purgeAuditScript deletes the audit chain, keeping its head in the progress hash for the
// tombstone. KEYS: progress, tombstone, head, stream, ticket index. ARGV: fence.
var purgeAuditScript = redis.NewScript(purgeFenced + `
local h = redis.call('HMGET', KEYS[3], 'seq', 'hash')
if h[1] then redis.call('HSET', KEYS[1], 'headSeq', h[1], 'headHash', h[2]) end
local n = redis.call('XLEN', KEYS[4])
if n > 0 then redis.call('HINCRBY', KEYS[1], 'c:audit_entries', n) end
redis.call('DEL', KEYS[3], KEYS[4], KEYS[5])
return 1
`)

// purgeFinishScript folds the progress into the tombstone and drops the progress. ARGV:
// fence, now ms, tenant key hash, genesis hash. Answers {1, progress, tombstone}, or {0, {},
// tombstone} when another run finished first.
var purgeFinishScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then return {0, {}, redis.call('HGETALL', KEYS[2])} end
` + purgeFenced + `
local p = redis.call('HGETALL', KEYS[1])
for i = 1, #p, 2 do
  if string.sub(p[i], 1, 2) == 'c:' then redis.call('HINCRBY', KEYS[2], p[i], p[i+1]) end
end
redis.call('HSETNX', KEYS[2], 'deletedAt', ARGV[2])
redis.call('HSET', KEYS[2], 'lastPurgedAt', ARGV[2], 'tenantKeyHash', ARGV[3], 'fence', ARGV[1])
local hs = redis.call('HGET', KEYS[1], 'headSeq')
if hs then
  redis.call('HSET', KEYS[2], 'headSeq', hs, 'headHash', redis.call('HGET', KEYS[1], 'headHash'))
else
  redis.call('HSETNX', KEYS[2], 'headSeq', '0')
  redis.call('HSETNX', KEYS[2], 'headHash', ARGV[4])
end
redis.call('HINCRBY', KEYS[2], 'runs', 1)
redis.call('DEL', KEYS[1])
return {1, p, redis.call('HGETALL', KEYS[2])}
`)

// delIfScript deletes KEYS[1] while it still holds ARGV[1]: a lookup is removed only when
// it names the tenant being purged, never one another tenant owns now.
const delIfLua = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`

// releaseHeldScript (queue) forgets a report's held attachment bytes. KEYS: held, bytes.
// ARGV: held field.
var releaseHeldScript = redis.NewScript(`
local nb = redis.call('HGET', KEYS[1], ARGV[1])
if nb then
  redis.call('HDEL', KEYS[1], ARGV[1])
  redis.call('DECRBY', KEYS[2], nb)
end
return 1
`)

// purgeLeaseScript takes or renews the job's lease. A new holder gets a new fencing token;
// a renewal keeps its own. KEYS: lease, fence counter. ARGV: holder, ttl ms. Answers the
// token, or 0 when another replica holds the lease.
var purgeLeaseScript = redis.NewScript(`
local v = redis.call('GET', KEYS[1])
if v then
  local holder, fence = string.match(v, '^(.*)|(%d+)$')
  if holder ~= ARGV[1] then return 0 end
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return tonumber(fence)
end
local f = redis.call('INCR', KEYS[2])
redis.call('SET', KEYS[1], ARGV[1] .. '|' .. f, 'PX', ARGV[2])
return f
`)

var purgeReleaseScript = redis.NewScript(`
local v = redis.call('GET', KEYS[1])
if v and string.match(v, '^(.*)|%d+$') == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`)

func purgeUnavailable(what string, err error) error {
	return fmt.Errorf("%s: %w: %w", what, ErrUnavailable, err)
}

// fenced runs a fenced script and maps -1 to lifecycle.ErrSuperseded.
func (p *Purge) fenced(ctx context.Context, s *redis.Script, what string, keys []string, args ...any) error {
	n, err := s.Run(ctx, p.rdb, keys, args...).Int()
	if err != nil {
		return purgeUnavailable(what, err)
	}
	if n < 0 {
		return lifecycle.ErrSuperseded
	}
	return nil
}

// Acquire implements lifecycle.Lease.
func (p *Purge) Acquire(ctx context.Context, holder string, ttl time.Duration) (int64, bool, error) {
	f, err := purgeLeaseScript.Run(ctx, p.rdb, []string{purgeLeaseKey, purgeFenceKey}, holder, ttl.Milliseconds()).Int64()
	if err != nil {
		return 0, false, purgeUnavailable("acquire purge lease", err)
	}
	return f, f > 0, nil
}

// Release implements lifecycle.Lease.
func (p *Purge) Release(ctx context.Context, holder string) error {
	if err := purgeReleaseScript.Run(ctx, p.rdb, []string{purgeLeaseKey}, holder).Err(); err != nil {
		return purgeUnavailable("release purge lease", err)
	}
	return nil
}

// NextFence implements lifecycle.Store.
func (p *Purge) NextFence(ctx context.Context) (int64, error) {
	f, err := p.rdb.Incr(ctx, purgeFenceKey).Result()
	if err != nil {
		return 0, purgeUnavailable("take fencing token", err)
	}
	return f, nil
}

// Mark implements lifecycle.Store.
func (p *Purge) Mark(ctx context.Context, tenant string, at time.Time) error {
	if err := p.rdb.ZAdd(ctx, purgeMarkedKey, redis.Z{Score: float64(at.UnixMilli()), Member: tenant}).Err(); err != nil {
		return purgeUnavailable("mark tenant", err)
	}
	return nil
}

// Unmark implements lifecycle.Store. A purge already under way is not stopped.
func (p *Purge) Unmark(ctx context.Context, tenant string) error {
	if err := p.rdb.ZRem(ctx, purgeMarkedKey, tenant).Err(); err != nil {
		return purgeUnavailable("unmark tenant", err)
	}
	return nil
}

// MarkedAt implements lifecycle.Store.
func (p *Purge) MarkedAt(ctx context.Context, tenant string) (time.Time, bool, error) {
	s, err := p.rdb.ZScore(ctx, purgeMarkedKey, tenant).Result()
	if errors.Is(err, redis.Nil) {
		return time.Time{}, false, nil
	}
	if err != nil {
		return time.Time{}, false, purgeUnavailable("read deletion mark", err)
	}
	return time.UnixMilli(int64(s)).UTC(), true, nil
}

// Due implements lifecycle.Store.
func (p *Purge) Due(ctx context.Context, until time.Time, limit int) ([]string, error) {
	ts, err := p.rdb.ZRangeArgs(ctx, redis.ZRangeArgs{
		Key: purgeMarkedKey, Start: "-inf", Stop: strconv.FormatInt(until.UnixMilli(), 10),
		ByScore: true, Count: int64(limit),
	}).Result()
	if err != nil {
		return nil, purgeUnavailable("list tenants due", err)
	}
	return ts, nil
}

// PurgeRecords implements lifecycle.Store. The order matters for a crash halfway: the
// tenant is marked due first (so the job resumes an admin's purge too), the tenant record
// goes first of the records (tokens stop), lookups go before the records they were found
// through.
func (p *Purge) PurgeRecords(ctx context.Context, tenant string, fence int64, now time.Time) error {
	keys := p.fencedKeys(tenant)
	if err := p.fenced(ctx, purgeBeginScript, "begin purge", keys, fence, now.UnixMilli()); err != nil {
		return err
	}
	// Keep it due (now, or earlier) until Finish: a crash here is then resumed by the job.
	if err := p.rdb.ZAddLT(ctx, purgeMarkedKey, redis.Z{Score: float64(now.UnixMilli()), Member: tenant}).Err(); err != nil {
		return purgeUnavailable("mark purge", err)
	}
	if err := p.purgeTenantRecord(ctx, tenant, fence); err != nil {
		return err
	}
	if err := p.fenced(ctx, purgeAuditScript, "delete audit chain",
		append(keys, auditHeadKey(tenant), auditStreamKey(tenant), auditTicketsKey(tenant)), fence); err != nil {
		return err
	}
	// Keys written while a pass ran (a delivery finishing) are caught by the next pass.
	for pass := 0; pass < 3; pass++ {
		found, err := p.purgePass(ctx, tenant, fence)
		if err != nil {
			return err
		}
		if found == 0 {
			break
		}
	}
	if err := p.purgeDeadLetters(ctx, tenant, fence); err != nil {
		return err
	}
	if err := p.rdb.SRem(ctx, consentTenantsKey, tenant).Err(); err != nil {
		return purgeUnavailable("forget consent tenant", err)
	}
	return nil
}

func (p *Purge) fencedKeys(tenant string) []string {
	return []string{purgeProgressKey(tenant), purgeTombstoneKey(tenant)}
}

// purgeTenantRecord removes the tenant's lookups and then its record. The ids the lookups
// need are noted in the progress first, so a run after a crash still finds them.
func (p *Purge) purgeTenantRecord(ctx context.Context, tenant string, fence int64) error {
	keys := p.fencedKeys(tenant)
	b, err := p.rdb.Get(ctx, tenantKey(tenant)).Bytes()
	if err != nil && !errors.Is(err, redis.Nil) {
		return purgeUnavailable("read tenant", err)
	}
	if err == nil {
		var st storedTenant
		if json.Unmarshal(b, &st) == nil {
			ids, _ := json.Marshal([]string{st.CloudID, st.InstallationID, st.ForgeInstallationID})
			if err := p.fenced(ctx, purgeNoteScript, "note tenant ids", keys, fence, "set", "tenantIds", string(ids)); err != nil {
				return err
			}
		}
	}
	noted, err := p.rdb.HGet(ctx, purgeProgressKey(tenant), "tenantIds").Result()
	if err != nil && !errors.Is(err, redis.Nil) {
		return purgeUnavailable("read purge progress", err)
	}
	var ids []string
	_ = json.Unmarshal([]byte(noted), &ids)
	var lookups []string
	for _, id := range ids {
		if id != "" {
			lookups = append(lookups, cloudIndexKey(id), installationIndexKey(id))
		}
	}
	if err := p.delIf(ctx, lookups, tenant); err != nil {
		return err
	}
	return p.fenced(ctx, purgeDelScript, "delete tenant", append(keys, tenantKey(tenant)), fence, "tenant")
}

// delIf removes lookups that still name tenant.
func (p *Purge) delIf(ctx context.Context, keys []string, tenant string) error {
	if len(keys) == 0 {
		return nil
	}
	// EVAL, not EVALSHA: a pipeline cannot fall back when the script is not loaded, and
	// this one is a few bytes.
	_, err := p.rdb.Pipelined(ctx, func(pp redis.Pipeliner) error {
		for _, k := range keys {
			pp.Eval(ctx, delIfLua, []string{k}, tenant)
		}
		return nil
	})
	if err != nil {
		return purgeUnavailable("delete lookups", err)
	}
	return nil
}

// scanTenant calls each with batches of the tenant's keys (progress and tombstone left
// out). On Cluster it scans the one master that owns the tenant's slot.
func (p *Purge) scanTenant(ctx context.Context, tenant string, each func(keys []string) error) error {
	var node redis.Cmdable = p.rdb
	if cc, ok := p.rdb.(*redis.ClusterClient); ok {
		n, err := cc.MasterForKey(ctx, tenantKey(tenant))
		if err != nil {
			return purgeUnavailable("find the tenant's node", err)
		}
		node = n
	}
	match := "sb:" + tenantTag(tenant) + ":*"
	skip := map[string]bool{purgeProgressKey(tenant): true, purgeTombstoneKey(tenant): true}
	var cursor uint64
	for {
		keys, next, err := node.Scan(ctx, cursor, match, 500).Result()
		if err != nil {
			return purgeUnavailable("scan tenant keys", err)
		}
		out := keys[:0]
		for _, k := range keys {
			if !skip[k] {
				out = append(out, k)
			}
		}
		if len(out) > 0 {
			if err := each(out); err != nil {
				return err
			}
		}
		if next == 0 {
			return nil
		}
		cursor = next
	}
}

// purgePass deletes every key of the tenant it finds in one SCAN, and says how many it
// found.
func (p *Purge) purgePass(ctx context.Context, tenant string, fence int64) (int, error) {
	prefix := "sb:" + tenantTag(tenant) + ":"
	found := 0
	err := p.scanTenant(ctx, tenant, func(keys []string) error {
		found += len(keys)
		var lookups, tickets []string
		var del, kinds []string
		audited := false
		for _, k := range keys {
			rest := strings.TrimPrefix(k, prefix)
			kind := KeyKind(rest)
			switch {
			case kind == "audit":
				audited = true
				continue
			case kind == "reports":
				id := strings.TrimPrefix(rest, "report:")
				lookups = append(lookups, reportIndexKey(id))
				if p.reports != nil {
					// A failed report still counts its attachment bytes against the queue's
					// backpressure; give them back, as settling it would.
					err := releaseHeldScript.Run(ctx, p.rdb, []string{p.reports.heldKey(), p.reports.bytesKey()}, heldField(tenant, id)).Err()
					if err != nil {
						return purgeUnavailable("release held bytes", err)
					}
				}
				t, err := p.rdb.HGet(ctx, k, "ticketKey").Result()
				if err != nil && !errors.Is(err, redis.Nil) {
					return purgeUnavailable("read report", err)
				}
				if t != "" {
					tickets = append(tickets, t)
					lookups = append(lookups, ticketKey(t))
				}
			case kind == "access_requests":
				id := strings.TrimPrefix(rest, "consent:req:")
				lookups = append(lookups, consentReqIndexKey(id))
				tok, err := p.rdb.HGet(ctx, k, "tok").Result()
				if err != nil && !errors.Is(err, redis.Nil) {
					return purgeUnavailable("read request", err)
				}
				if tok != "" {
					// The old flow's token lookup: it belongs to this request alone.
					if err := p.rdb.Del(ctx, consentTokenIndexKey(tok)).Err(); err != nil {
						return purgeUnavailable("delete token lookup", err)
					}
				}
			case kind == "grants":
				lookups = append(lookups, consentGrantIndexKey(strings.TrimPrefix(rest, "consent:grant:")))
			case strings.HasPrefix(rest, "consent:ticket:") && strings.HasSuffix(rest, ":req"):
				digest := strings.TrimSuffix(strings.TrimPrefix(rest, "consent:ticket:"), ":req")
				lookups = append(lookups, "sb:idx:consent-ticket:"+digest)
			}
			del, kinds = append(del, k), append(kinds, kind)
		}
		if audited {
			if err := p.fenced(ctx, purgeAuditScript, "delete audit chain",
				append(p.fencedKeys(tenant), auditHeadKey(tenant), auditStreamKey(tenant), auditTicketsKey(tenant)), fence); err != nil {
				return err
			}
		}
		if len(tickets) > 0 {
			args := []any{fence, "set"}
			for _, t := range tickets {
				args = append(args, "ticket:"+t, "1")
			}
			if err := p.fenced(ctx, purgeNoteScript, "note tickets", p.fencedKeys(tenant), args...); err != nil {
				return err
			}
		}
		if err := p.delIf(ctx, lookups, tenant); err != nil {
			return err
		}
		for len(del) > 0 {
			n := min(p.batch, len(del))
			args := []any{fence}
			for _, k := range kinds[:n] {
				args = append(args, k)
			}
			if err := p.fenced(ctx, purgeDelScript, "delete tenant keys", append(p.fencedKeys(tenant), del[:n]...), args...); err != nil {
				return err
			}
			del, kinds = del[n:], kinds[n:]
		}
		return nil
	})
	return found, err
}

// purgeDeadLetters removes the tenant's entries from the dead-letter stream; they name the
// tenant and hold the failure reason.
func (p *Purge) purgeDeadLetters(ctx context.Context, tenant string, fence int64) error {
	if p.reports == nil {
		return nil
	}
	key := p.reports.deadKey()
	start := "-"
	for {
		msgs, err := p.rdb.XRangeN(ctx, key, start, "+", 500).Result()
		if err != nil {
			return purgeUnavailable("read dead letters", err)
		}
		var ids []string
		for _, m := range msgs {
			if t, _ := m.Values["t"].(string); t == tenant {
				ids = append(ids, m.ID)
			}
		}
		if len(ids) > 0 {
			n, err := p.rdb.XDel(ctx, key, ids...).Result()
			if err != nil {
				return purgeUnavailable("delete dead letters", err)
			}
			if err := p.AddCount(ctx, tenant, fence, "dead_letters", n); err != nil {
				return err
			}
		}
		if len(msgs) < 500 {
			return nil
		}
		start = "(" + msgs[len(msgs)-1].ID
	}
}

// AddCount implements lifecycle.Store.
func (p *Purge) AddCount(ctx context.Context, tenant string, fence int64, kind string, n int64) error {
	if n == 0 {
		return nil
	}
	return p.fenced(ctx, purgeNoteScript, "count purge", p.fencedKeys(tenant), fence, "incr", "c:"+kind, n)
}

// Finish implements lifecycle.Store.
func (p *Purge) Finish(ctx context.Context, tenant string, fence int64, now time.Time) (lifecycle.Finished, error) {
	v, err := purgeFinishScript.Run(ctx, p.rdb, p.fencedKeys(tenant), fence, now.UnixMilli(),
		lifecycle.KeyHash(tenant), audit.GenesisHash).Result()
	if err != nil {
		return lifecycle.Finished{}, purgeUnavailable("finish purge", err)
	}
	res, ok := v.([]any)
	if !ok || len(res) != 3 { // the fence check's -1
		return lifecycle.Finished{}, lifecycle.ErrSuperseded
	}
	f := lifecycle.Finished{Deleted: map[string]int64{}}
	prog, _ := res[1].([]any)
	for i := 0; i+1 < len(prog); i += 2 {
		k, _ := prog[i].(string)
		v, _ := prog[i+1].(string)
		switch {
		case strings.HasPrefix(k, "c:"):
			f.Deleted[k[2:]], _ = strconv.ParseInt(v, 10, 64)
		case strings.HasPrefix(k, "ticket:"):
			f.Tickets = append(f.Tickets, k[len("ticket:"):])
		}
	}
	ts, _ := res[2].([]any)
	f.Tombstone = tombstoneOf(ts)
	// Unmark only now: a crash before this leaves the tenant due, and the rerun is harmless.
	if err := p.Unmark(ctx, tenant); err != nil {
		return lifecycle.Finished{}, err
	}
	return f, nil
}

func tombstoneOf(fields []any) lifecycle.Tombstone {
	t := lifecycle.Tombstone{Counts: map[string]int64{}}
	for i := 0; i+1 < len(fields); i += 2 {
		k, _ := fields[i].(string)
		v, _ := fields[i+1].(string)
		n, _ := strconv.ParseInt(v, 10, 64)
		switch {
		case strings.HasPrefix(k, "c:"):
			t.Counts[k[2:]] = n
		case k == "tenantKeyHash":
			t.TenantKeyHash = v
		case k == "deletedAt":
			t.DeletedAt = time.UnixMilli(n).UTC()
		case k == "lastPurgedAt":
			t.LastPurgedAt = time.UnixMilli(n).UTC()
		case k == "headSeq":
			t.FinalAuditHead.Seq = n
		case k == "headHash":
			t.FinalAuditHead.Hash = v
		case k == "runs":
			t.Runs = n
		}
	}
	return t
}

// Tombstone implements lifecycle.Store.
func (p *Purge) Tombstone(ctx context.Context, tenant string) (lifecycle.Tombstone, bool, error) {
	m, err := p.rdb.HGetAll(ctx, purgeTombstoneKey(tenant)).Result()
	if err != nil {
		return lifecycle.Tombstone{}, false, purgeUnavailable("read tombstone", err)
	}
	if len(m) == 0 {
		return lifecycle.Tombstone{}, false, nil
	}
	fields := make([]any, 0, 2*len(m))
	for k, v := range m {
		fields = append(fields, k, v)
	}
	return tombstoneOf(fields), true, nil
}

// Holdings implements lifecycle.Store: a SCAN of the tenant's slot, counted by kind.
func (p *Purge) Holdings(ctx context.Context, tenant string) (lifecycle.Holdings, error) {
	h := lifecycle.Holdings{Counts: map[string]int64{}}
	prefix := "sb:" + tenantTag(tenant) + ":"
	err := p.scanTenant(ctx, tenant, func(keys []string) error {
		for _, k := range keys {
			h.Counts[KeyKind(strings.TrimPrefix(k, prefix))]++
		}
		return nil
	})
	if err != nil {
		return h, err
	}
	b, err := p.rdb.Get(ctx, tenantKey(tenant)).Bytes()
	if err != nil && !errors.Is(err, redis.Nil) {
		return h, purgeUnavailable("read tenant", err)
	}
	if err == nil {
		var st storedTenant
		if json.Unmarshal(b, &st) == nil {
			h.Installed, h.Enabled = &st.Installed, &st.Enabled
		}
	}
	return h, nil
}

// KeyKind names what a tenant key holds, from its name after "sb:{t:…}:"; counts in
// receipts and holdings are by these kinds.
func KeyKind(rest string) string {
	has := strings.HasPrefix
	switch {
	case rest == "tenant":
		return "tenant"
	case rest == "audit" || has(rest, "audit:"):
		return "audit"
	case has(rest, "report:") && strings.HasSuffix(rest, ":files"):
		return "report_files"
	case rest == "sitetoken":
		return "site_tokens"
	case has(rest, "report:"):
		return "reports"
	case has(rest, "idem:"):
		return "idempotency_keys"
	case has(rest, "rl:") || has(rest, "gcra:"):
		return "rate_limits"
	case has(rest, "reporter:"):
		return "reporter_cache"
	case has(rest, "customer:"):
		return "customer_cache"
	case has(rest, "consent:req:"):
		return "access_requests"
	case has(rest, "consent:grant:") && strings.HasSuffix(rest, ":access"):
		return "log_reads"
	case has(rest, "consent:grant:") && strings.HasSuffix(rest, ":live"):
		return "live_grants"
	case has(rest, "consent:grant:"):
		return "grants"
	case has(rest, "consent:"):
		return "consent_indexes"
	case has(rest, "errors:group:") && strings.HasSuffix(rest, ":ids"):
		return "error_tracking_ids"
	case has(rest, "errors:group:"):
		return "error_groups"
	case has(rest, "errors:"):
		return "error_indexes"
	case has(rest, "usage:"):
		return "usage_counters"
	case rest == "purge":
		return "purge_progress"
	case rest == "tombstone":
		return "tombstone"
	}
	return "other"
}

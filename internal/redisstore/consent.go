package redisstore

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/redis/go-redis/v9"

	"github.com/supportbridge/supportbridge/internal/consent"
)

// Consent keeps access requests, grants and reads. It implements consent.Store.
//
// Layout, per tenant (all under the tenant's hash tag, so one script can change a request and
// its grant together):
//
//	consent:req:<id>            hash {v: version, d: record JSON}; records of the old
//	                            capability-link flow also had tok, removed by MigrateLegacy
//	consent:grant:<id>          hash {v, d}: the grant's history, kept after it ends
//	consent:grant:<id>:live     the active grant as JSON, PEXPIREAT its end; gone otherwise
//	consent:grant:<id>:access   list of reads (JSON), oldest first
//	consent:due                 zset "r:<id>" / "g:<id>" scored by when the scheduler must look
//	consent:tickets             set of ticket keys with consent records
//	consent:reqs, consent:grants  zsets of every request / grant id, scored by creation ms
//	consent:ticket:<digest>:req / :grant   zsets of ids scored by creation time
//
// and global lookups, which are hints written before the records they point to and always
// checked against them: sb:idx:consent-req:<id>, sb:idx:consent-grant:<id> and
// sb:idx:consent-ticket:<digest> name the tenant (sb:idx:consent-token:<hash> of the old flow
// is deleted by MigrateLegacy);
// sb:consent:tenants lists tenants for the scheduler; sb:lease:<name> holds leases.
//
// History records have no TTL: they are the evidence the customer is promised, and go only
// with DeleteTenant (purge on request or after retention).
type Consent struct {
	rdb     redis.UniversalClient
	save    *redis.Script
	acquire *redis.Script
	release *redis.Script

	// grantTenants caches grant id → tenant. The pairing never changes once written, so the
	// check that gates every log read costs one Redis round trip instead of two.
	mu           sync.RWMutex
	grantTenants map[string]string
}

// maxCachedGrants bounds grantTenants; past it the cache starts again empty.
const maxCachedGrants = 50000

// grantTenant is tenantOf for grants, through the in-process cache.
func (s *Consent) grantTenant(ctx context.Context, id string) (string, error) {
	s.mu.RLock()
	t, ok := s.grantTenants[id]
	s.mu.RUnlock()
	if ok {
		return t, nil
	}
	t, err := s.tenantOf(ctx, consentGrantIndexKey(id))
	if err != nil {
		return "", err
	}
	s.mu.Lock()
	if s.grantTenants == nil || len(s.grantTenants) >= maxCachedGrants {
		s.grantTenants = map[string]string{}
	}
	s.grantTenants[id] = t
	s.mu.Unlock()
	return t, nil
}

// NewConsent returns the Redis consent store.
func NewConsent(rdb redis.UniversalClient) *Consent {
	return &Consent{
		rdb:     rdb,
		save:    redis.NewScript(consentSaveLua),
		acquire: redis.NewScript(leaseAcquireLua),
		release: redis.NewScript(leaseReleaseLua),
	}
}

var _ consent.Store = (*Consent)(nil)

func consentPrefix(tenant string) string { return "sb:" + tenantTag(tenant) + ":consent:" }
func consentReqKey(tenant, id string) string {
	return consentPrefix(tenant) + "req:" + id
}
func consentGrantKey(tenant, id string) string {
	return consentPrefix(tenant) + "grant:" + id
}
func consentLiveKey(tenant, id string) string     { return consentGrantKey(tenant, id) + ":live" }
func consentAccessKey(tenant, id string) string   { return consentGrantKey(tenant, id) + ":access" }
func consentDueKey(tenant string) string          { return consentPrefix(tenant) + "due" }
func consentTicketsKey(tenant string) string      { return consentPrefix(tenant) + "tickets" }
func consentTenantReqsKey(tenant string) string   { return consentPrefix(tenant) + "reqs" }
func consentTenantGrantsKey(tenant string) string { return consentPrefix(tenant) + "grants" }
func consentTicketReqKey(tenant, t string) string {
	return consentPrefix(tenant) + "ticket:" + consentDigest(t) + ":req"
}
func consentTicketGrantKey(tenant, t string) string {
	return consentPrefix(tenant) + "ticket:" + consentDigest(t) + ":grant"
}

const consentTenantsKey = "sb:consent:tenants"

func consentReqIndexKey(id string) string   { return "sb:idx:consent-req:" + id }
func consentGrantIndexKey(id string) string { return "sb:idx:consent-grant:" + id }
func consentTokenIndexKey(h string) string  { return "sb:idx:consent-token:" + h }
func consentTicketIndexKey(t string) string { return "sb:idx:consent-ticket:" + consentDigest(t) }
func consentLeaseKey(name string) string    { return "sb:lease:" + name }

// consentDigest keeps caller-chosen text (ticket keys) out of key names.
func consentDigest(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:16])
}

// consentSaveLua writes a request and/or a grant of one tenant if their versions are still
// the ones the caller read. Checking both before writing either is what makes an approval
// (request decided + grant created) all or nothing, and two concurrent decisions exclusive.
//
// KEYS: request, grant, live grant, due, tickets, ticket requests, ticket grants, tenant
// requests, tenant grants.
// ARGV: [1] has request, [2] expected version ("0" = must not exist), [3] new version,
// [4] JSON, [5] due member, [6] due ms ("" = unschedule), [7] created ms, [8] id,
// [9] unused, [10] ticket;
// [11] has grant, [12] expected, [13] new version, [14] JSON, [15] due member, [16] due ms,
// [17] start ms, [18] id, [19] live JSON ("" = delete), [20] live expiry ms, [21] ticket.
// Returns 1, or 0 on a version mismatch.
const consentSaveLua = `
local function current(key, expect)
  if expect == '0' then return redis.call('EXISTS', key) == 0 end
  return redis.call('HGET', key, 'v') == expect
end
if ARGV[1] == '1' and not current(KEYS[1], ARGV[2]) then return 0 end
if ARGV[11] == '1' and not current(KEYS[2], ARGV[12]) then return 0 end
if ARGV[1] == '1' then
  redis.call('HSET', KEYS[1], 'v', ARGV[3], 'd', ARGV[4])
  if ARGV[2] == '0' then
    redis.call('ZADD', KEYS[6], ARGV[7], ARGV[8])
    redis.call('ZADD', KEYS[8], ARGV[7], ARGV[8])
    redis.call('SADD', KEYS[5], ARGV[10])
  end
  if ARGV[6] == '' then redis.call('ZREM', KEYS[4], ARGV[5])
  else redis.call('ZADD', KEYS[4], ARGV[6], ARGV[5]) end
end
if ARGV[11] == '1' then
  redis.call('HSET', KEYS[2], 'v', ARGV[13], 'd', ARGV[14])
  if ARGV[12] == '0' then
    redis.call('ZADD', KEYS[7], ARGV[17], ARGV[18])
    redis.call('ZADD', KEYS[9], ARGV[17], ARGV[18])
    redis.call('SADD', KEYS[5], ARGV[21])
  end
  if ARGV[16] == '' then redis.call('ZREM', KEYS[4], ARGV[15])
  else redis.call('ZADD', KEYS[4], ARGV[16], ARGV[15]) end
  if ARGV[19] == '' then redis.call('DEL', KEYS[3])
  else redis.call('SET', KEYS[3], ARGV[19], 'PXAT', ARGV[20]) end
end
return 1
`

// leaseAcquireLua takes a free lease or renews the caller's own. KEYS: lease. ARGV: holder,
// ttl ms.
const leaseAcquireLua = `
local v = redis.call('GET', KEYS[1])
if v == false then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
if v == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
`

// leaseReleaseLua drops the lease only if the caller still holds it.
const leaseReleaseLua = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`

func consentUnavailable(what string, err error) error {
	return fmt.Errorf("%s: %w: %w", what, ErrUnavailable, err)
}

func consentMillis(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return strconv.FormatInt(t.UnixMilli(), 10)
}

// CreateRequest stores a new request; the lookups go first, so a failure halfway leaves only
// hints that point at nothing.
func (s *Consent) CreateRequest(ctx context.Context, rec consent.RequestRecord, due time.Time) error {
	r := rec.Request
	if rec.Version != 0 {
		return errors.New("create request: version must be 0")
	}
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.SAdd(ctx, consentTenantsKey, r.Tenant)
		p.Set(ctx, consentReqIndexKey(r.ID), r.Tenant, 0)
		p.Set(ctx, consentTicketIndexKey(r.TicketKey), r.Tenant, 0)
		return nil
	})
	if err != nil {
		return consentUnavailable("index request", err)
	}
	return s.write(ctx, consent.Change{Tenant: r.Tenant, Request: &rec, RequestDue: due})
}

// Save applies a change atomically; see consent.Change.
func (s *Consent) Save(ctx context.Context, c consent.Change) error {
	if c.Request != nil && c.Request.Version == 0 {
		return errors.New("save: new requests go through CreateRequest")
	}
	if g := c.Grant; g != nil && g.Version == 0 {
		if err := s.rdb.Set(ctx, consentGrantIndexKey(g.Grant.ID), c.Tenant, 0).Err(); err != nil {
			return consentUnavailable("index grant", err)
		}
	}
	return s.write(ctx, c)
}

func (s *Consent) write(ctx context.Context, c consent.Change) error {
	t := c.Tenant
	reqID, grantID, reqTicket, grantTicket := "_", "_", "", ""
	args := make([]any, 21)
	for i := range args {
		args[i] = ""
	}
	args[0], args[10] = "0", "0"
	var (
		nr consent.RequestRecord
		ng consent.GrantRecord
	)
	if r := c.Request; r != nil {
		if r.Request.Tenant != t {
			return errors.New("save: request of another tenant")
		}
		nr = *r
		nr.Version++
		b, err := json.Marshal(nr)
		if err != nil {
			return fmt.Errorf("encode request: %w", err)
		}
		reqID, reqTicket = r.Request.ID, r.Request.TicketKey
		args[0], args[1], args[2], args[3] = "1", strconv.FormatInt(r.Version, 10), strconv.FormatInt(nr.Version, 10), string(b)
		args[4], args[5], args[6], args[7], args[9] = "r:"+reqID, consentMillis(c.RequestDue), consentMillis(r.Request.CreatedAt), reqID, reqTicket
	}
	if g := c.Grant; g != nil {
		if g.Grant.Tenant != t {
			return errors.New("save: grant of another tenant")
		}
		ng = *g
		ng.Version++
		b, err := json.Marshal(ng)
		if err != nil {
			return fmt.Errorf("encode grant: %w", err)
		}
		grantID, grantTicket = g.Grant.ID, g.Grant.TicketKey
		live, liveUntil := "", ""
		if g.Grant.Status == consent.GrantActive {
			until := g.Grant.End
			if g.Grant.UntilRevoked {
				until = g.Grant.ReconfirmBy
			}
			lb, err := json.Marshal(g.Grant)
			if err != nil {
				return fmt.Errorf("encode grant: %w", err)
			}
			live, liveUntil = string(lb), strconv.FormatInt(until.UnixMilli(), 10)
		}
		args[10], args[11], args[12], args[13] = "1", strconv.FormatInt(g.Version, 10), strconv.FormatInt(ng.Version, 10), string(b)
		args[14], args[15], args[16], args[17] = "g:"+grantID, consentMillis(c.GrantDue), consentMillis(g.Grant.Start), grantID
		args[18], args[19], args[20] = live, liveUntil, grantTicket
	}
	keys := []string{
		consentReqKey(t, reqID), consentGrantKey(t, grantID), consentLiveKey(t, grantID),
		consentDueKey(t), consentTicketsKey(t),
		consentTicketReqKey(t, reqTicket), consentTicketGrantKey(t, grantTicket),
		consentTenantReqsKey(t), consentTenantGrantsKey(t),
	}
	n, err := s.save.Run(ctx, s.rdb, keys, args...).Int()
	if err != nil {
		return consentUnavailable("save consent", err)
	}
	if n != 1 {
		return consent.ErrConflict
	}
	if c.Request != nil {
		c.Request.Version = nr.Version
	}
	if c.Grant != nil {
		c.Grant.Version = ng.Version
	}
	return nil
}

// tenantOf follows a global lookup to a tenant.
func (s *Consent) tenantOf(ctx context.Context, idx string) (string, error) {
	t, err := s.rdb.Get(ctx, idx).Result()
	if errors.Is(err, redis.Nil) {
		return "", consent.ErrNotFound
	}
	if err != nil {
		return "", consentUnavailable("read consent index", err)
	}
	return t, nil
}

// Request loads a request by id.
func (s *Consent) Request(ctx context.Context, id string) (consent.RequestRecord, error) {
	tenant, err := s.tenantOf(ctx, consentReqIndexKey(id))
	if err != nil {
		return consent.RequestRecord{}, err
	}
	return s.loadRequest(ctx, tenant, id)
}

func (s *Consent) loadRequest(ctx context.Context, tenant, id string) (consent.RequestRecord, error) {
	vals, err := s.rdb.HMGet(ctx, consentReqKey(tenant, id), "v", "d").Result()
	if err != nil {
		return consent.RequestRecord{}, consentUnavailable("load request", err)
	}
	rec, err := decodeRequest(vals[0], vals[1])
	if err != nil {
		return consent.RequestRecord{}, err
	}
	if rec.Request.ID != id || rec.Request.Tenant != tenant {
		return consent.RequestRecord{}, consent.ErrNotFound
	}
	return rec, nil
}

func decodeRequest(v, d any) (consent.RequestRecord, error) {
	var rec consent.RequestRecord
	vs, ok1 := v.(string)
	ds, ok2 := d.(string)
	if !ok1 || !ok2 {
		return rec, consent.ErrNotFound
	}
	if err := json.Unmarshal([]byte(ds), &rec); err != nil {
		return rec, fmt.Errorf("decode request: %w", err)
	}
	n, err := strconv.ParseInt(vs, 10, 64)
	if err != nil {
		return rec, fmt.Errorf("decode request version: %w", err)
	}
	rec.Version = n
	return rec, nil
}

func decodeGrant(v, d any) (consent.GrantRecord, error) {
	var rec consent.GrantRecord
	vs, ok1 := v.(string)
	ds, ok2 := d.(string)
	if !ok1 || !ok2 {
		return rec, consent.ErrNotFound
	}
	if err := json.Unmarshal([]byte(ds), &rec); err != nil {
		return rec, fmt.Errorf("decode grant: %w", err)
	}
	n, err := strconv.ParseInt(vs, 10, 64)
	if err != nil {
		return rec, fmt.Errorf("decode grant version: %w", err)
	}
	rec.Version = n
	return rec, nil
}

// Grant loads a grant's history record.
func (s *Consent) Grant(ctx context.Context, id string) (consent.GrantRecord, error) {
	tenant, err := s.grantTenant(ctx, id)
	if err != nil {
		return consent.GrantRecord{}, err
	}
	vals, err := s.rdb.HMGet(ctx, consentGrantKey(tenant, id), "v", "d").Result()
	if err != nil {
		return consent.GrantRecord{}, consentUnavailable("load grant", err)
	}
	rec, err := decodeGrant(vals[0], vals[1])
	if err != nil {
		return consent.GrantRecord{}, err
	}
	if rec.Grant.ID != id || rec.Grant.Tenant != tenant {
		return consent.GrantRecord{}, consent.ErrNotFound
	}
	return rec, nil
}

// LiveGrant loads the live copy of a grant, which exists only while it is active.
func (s *Consent) LiveGrant(ctx context.Context, id string) (consent.Grant, error) {
	tenant, err := s.grantTenant(ctx, id)
	if err != nil {
		return consent.Grant{}, err
	}
	b, err := s.rdb.Get(ctx, consentLiveKey(tenant, id)).Bytes()
	if errors.Is(err, redis.Nil) {
		return consent.Grant{}, consent.ErrNotFound
	}
	if err != nil {
		return consent.Grant{}, consentUnavailable("load live grant", err)
	}
	// Every log read asks for the live grant, so it is decoded with encoding/json/v2's
	// decoder, about twice as fast as encoding/json on this record; the record is ours
	// (written by encoding/json), so v2's stricter reading changes nothing.
	var g consent.Grant
	if err := jsonv2.Unmarshal(b, &g); err != nil {
		return consent.Grant{}, fmt.Errorf("decode live grant: %w", err)
	}
	if g.ID != id || g.Tenant != tenant {
		return consent.Grant{}, consent.ErrNotFound
	}
	return g, nil
}

// TicketTenant is the tenant of a ticket with consent records.
func (s *Consent) TicketTenant(ctx context.Context, ticket string) (string, error) {
	return s.tenantOf(ctx, consentTicketIndexKey(ticket))
}

// TicketRequests loads a ticket's requests in creation order.
func (s *Consent) TicketRequests(ctx context.Context, tenant, ticket string) ([]consent.RequestRecord, error) {
	var out []consent.RequestRecord
	err := s.ticketRecords(ctx, consentTicketReqKey(tenant, ticket), func(id string) string { return consentReqKey(tenant, id) },
		func(v, d any) error {
			rec, err := decodeRequest(v, d)
			if err == nil && rec.Request.TicketKey == ticket && rec.Request.Tenant == tenant {
				out = append(out, rec)
			}
			if errors.Is(err, consent.ErrNotFound) {
				return nil
			}
			return err
		})
	return out, err
}

// TicketGrants loads a ticket's grants in creation order.
func (s *Consent) TicketGrants(ctx context.Context, tenant, ticket string) ([]consent.GrantRecord, error) {
	var out []consent.GrantRecord
	err := s.ticketRecords(ctx, consentTicketGrantKey(tenant, ticket), func(id string) string { return consentGrantKey(tenant, id) },
		func(v, d any) error {
			rec, err := decodeGrant(v, d)
			if err == nil && rec.Grant.TicketKey == ticket && rec.Grant.Tenant == tenant {
				out = append(out, rec)
			}
			if errors.Is(err, consent.ErrNotFound) {
				return nil
			}
			return err
		})
	return out, err
}

func (s *Consent) ticketRecords(ctx context.Context, idx string, key func(string) string, each func(v, d any) error) error {
	ids, err := s.rdb.ZRange(ctx, idx, 0, -1).Result()
	if err != nil {
		return consentUnavailable("read ticket index", err)
	}
	if len(ids) == 0 {
		return nil
	}
	cmds := make([]*redis.SliceCmd, len(ids))
	_, err = s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, id := range ids {
			cmds[i] = p.HMGet(ctx, key(id), "v", "d")
		}
		return nil
	})
	if err != nil {
		return consentUnavailable("load ticket records", err)
	}
	for _, c := range cmds {
		vals := c.Val()
		if err := each(vals[0], vals[1]); err != nil {
			return err
		}
	}
	return nil
}

// TenantTickets lists a tenant's tickets with consent records.
func (s *Consent) TenantTickets(ctx context.Context, tenant string) ([]string, error) {
	ts, err := s.rdb.SMembers(ctx, consentTicketsKey(tenant)).Result()
	if err != nil {
		return nil, consentUnavailable("list tickets", err)
	}
	return ts, nil
}

// AddAccess appends a read to a grant's list. The list is never trimmed: it is what the
// customer is shown, and a read that dropped off it would be a read they cannot see.
func (s *Consent) AddAccess(ctx context.Context, tenant, grantID string, a consent.Access) error {
	b, err := json.Marshal(a)
	if err != nil {
		return fmt.Errorf("encode access: %w", err)
	}
	if err := s.rdb.RPush(ctx, consentAccessKey(tenant, grantID), b).Err(); err != nil {
		return consentUnavailable("record access", err)
	}
	return nil
}

// Accesses lists a grant's reads, oldest first.
func (s *Consent) Accesses(ctx context.Context, tenant, grantID string) ([]consent.Access, error) {
	vals, err := s.rdb.LRange(ctx, consentAccessKey(tenant, grantID), 0, -1).Result()
	if err != nil {
		return nil, consentUnavailable("list accesses", err)
	}
	out := make([]consent.Access, 0, len(vals))
	for _, v := range vals {
		var a consent.Access
		if err := json.Unmarshal([]byte(v), &a); err != nil {
			return nil, fmt.Errorf("decode access: %w", err)
		}
		out = append(out, a)
	}
	return out, nil
}

// Tenants lists tenants with consent records.
func (s *Consent) Tenants(ctx context.Context) ([]string, error) {
	ts, err := s.rdb.SMembers(ctx, consentTenantsKey).Result()
	if err != nil {
		return nil, consentUnavailable("list consent tenants", err)
	}
	return ts, nil
}

// Due lists a tenant's records the scheduler must look at by until, earliest first.
func (s *Consent) Due(ctx context.Context, tenant string, until time.Time, limit int) ([]consent.DueItem, error) {
	zs, err := s.rdb.ZRangeByScoreWithScores(ctx, consentDueKey(tenant), &redis.ZRangeBy{
		Min: "-inf", Max: strconv.FormatInt(until.UnixMilli(), 10), Count: int64(limit),
	}).Result()
	if err != nil {
		return nil, consentUnavailable("list due consent", err)
	}
	out := make([]consent.DueItem, 0, len(zs))
	for _, z := range zs {
		m, _ := z.Member.(string)
		kind, id, ok := strings.Cut(m, ":")
		if !ok {
			continue
		}
		it := consent.DueItem{ID: id, At: time.UnixMilli(int64(z.Score)).UTC()}
		switch kind {
		case "r":
			it.Kind = consent.DueRequest
		case "g":
			it.Kind = consent.DueGrant
		default:
			continue
		}
		out = append(out, it)
	}
	return out, nil
}

// AcquireLease takes or renews a lease (SET NX PX, or PEXPIRE when the caller holds it).
func (s *Consent) AcquireLease(ctx context.Context, name, holder string, ttl time.Duration) (bool, error) {
	n, err := s.acquire.Run(ctx, s.rdb, []string{consentLeaseKey(name)}, holder, ttl.Milliseconds()).Int()
	if err != nil {
		return false, consentUnavailable("acquire lease", err)
	}
	return n == 1, nil
}

// ReleaseLease gives a lease up if the caller still holds it, so another replica need not
// wait for it to expire.
func (s *Consent) ReleaseLease(ctx context.Context, name, holder string) error {
	if err := s.release.Run(ctx, s.rdb, []string{consentLeaseKey(name)}, holder).Err(); err != nil {
		return consentUnavailable("release lease", err)
	}
	return nil
}

// DeleteTenant removes all consent records of a tenant and their lookups: the purge of a
// tenant's data, never a way to edit history.
func (s *Consent) DeleteTenant(ctx context.Context, tenant string) error {
	tickets, err := s.TenantTickets(ctx, tenant)
	if err != nil {
		return err
	}
	var keys, global []string
	for _, t := range tickets {
		rids, err := s.rdb.ZRange(ctx, consentTicketReqKey(tenant, t), 0, -1).Result()
		if err != nil {
			return consentUnavailable("read ticket index", err)
		}
		for _, id := range rids {
			tok, err := s.rdb.HGet(ctx, consentReqKey(tenant, id), "tok").Result()
			if err != nil && !errors.Is(err, redis.Nil) {
				return consentUnavailable("read request", err)
			}
			if tok != "" {
				global = append(global, consentTokenIndexKey(tok))
			}
			keys = append(keys, consentReqKey(tenant, id))
			global = append(global, consentReqIndexKey(id))
		}
		gids, err := s.rdb.ZRange(ctx, consentTicketGrantKey(tenant, t), 0, -1).Result()
		if err != nil {
			return consentUnavailable("read ticket index", err)
		}
		for _, id := range gids {
			keys = append(keys, consentGrantKey(tenant, id), consentLiveKey(tenant, id), consentAccessKey(tenant, id))
			global = append(global, consentGrantIndexKey(id))
		}
		keys = append(keys, consentTicketReqKey(tenant, t), consentTicketGrantKey(tenant, t))
		global = append(global, consentTicketIndexKey(t))
	}
	keys = append(keys, consentDueKey(tenant), consentTicketsKey(tenant), consentTenantReqsKey(tenant), consentTenantGrantsKey(tenant))
	_, err = s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.Del(ctx, keys...) // one slot, so one DEL
		for _, k := range global {
			p.Del(ctx, k)
		}
		p.SRem(ctx, consentTenantsKey, tenant)
		return nil
	})
	if err != nil {
		return consentUnavailable("delete consent", err)
	}
	return nil
}

// maxPage bounds one page of a tenant's records.
const maxPage = 100

// pageCursor is where a page of a tenant's records starts: just after the member id with
// score ms, in the newest-first order ZREVRANGE gives (score descending, then member
// descending). It travels to clients as opaque text.
type pageCursor struct {
	ms int64
	id string
}

func parsePageCursor(c string) (pageCursor, bool) {
	if c == "" {
		return pageCursor{ms: -1}, true
	}
	ms, id, ok := strings.Cut(c, ".")
	n, err := strconv.ParseInt(ms, 10, 64)
	if !ok || err != nil || n < 0 || len(id) == 0 || len(id) > 64 {
		return pageCursor{}, false
	}
	return pageCursor{ms: n, id: id}, true
}

// page reads up to limit members of a newest-first zset after cursor, and the cursor of the
// next page ("" at the end). A malformed cursor is consent.ErrNotFound.
func (s *Consent) page(ctx context.Context, key, cursor string, limit int) ([]string, string, error) {
	if limit <= 0 || limit > maxPage {
		limit = maxPage
	}
	c, ok := parsePageCursor(cursor)
	if !ok {
		return nil, "", consent.ErrNotFound
	}
	max := "+inf"
	if c.ms >= 0 {
		max = strconv.FormatInt(c.ms, 10)
	}
	// Members sharing the cursor's score come first and some are behind it; ask for enough
	// to skip them. Ids are random, so more than a handful per millisecond is not expected.
	zs, err := s.rdb.ZRevRangeByScoreWithScores(ctx, key, &redis.ZRangeBy{Max: max, Min: "-inf", Count: int64(limit + 64)}).Result()
	if err != nil {
		return nil, "", consentUnavailable("list records", err)
	}
	var ids []string
	for _, z := range zs {
		id, _ := z.Member.(string)
		if c.ms >= 0 && int64(z.Score) == c.ms && id >= c.id {
			continue
		}
		if len(ids) == limit {
			last := ids[len(ids)-1]
			return ids, strconv.FormatInt(lastScore(zs, last), 10) + "." + last, nil
		}
		ids = append(ids, id)
	}
	if len(zs) == limit+64 && len(ids) > 0 { // more may follow what was fetched
		last := ids[len(ids)-1]
		return ids, strconv.FormatInt(lastScore(zs, last), 10) + "." + last, nil
	}
	return ids, "", nil
}

func lastScore(zs []redis.Z, id string) int64 {
	for _, z := range zs {
		if m, _ := z.Member.(string); m == id {
			return int64(z.Score)
		}
	}
	return 0
}

// TenantRequests pages through a tenant's requests, newest first.
func (s *Consent) TenantRequests(ctx context.Context, tenant, cursor string, limit int) ([]consent.RequestRecord, string, error) {
	ids, next, err := s.page(ctx, consentTenantReqsKey(tenant), cursor, limit)
	if err != nil {
		return nil, "", err
	}
	out := make([]consent.RequestRecord, 0, len(ids))
	for _, id := range ids {
		rec, err := s.loadRequest(ctx, tenant, id)
		if errors.Is(err, consent.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, "", err
		}
		out = append(out, rec)
	}
	return out, next, nil
}

// TenantGrants pages through a tenant's grants, newest first.
func (s *Consent) TenantGrants(ctx context.Context, tenant, cursor string, limit int) ([]consent.GrantRecord, string, error) {
	ids, next, err := s.page(ctx, consentTenantGrantsKey(tenant), cursor, limit)
	if err != nil {
		return nil, "", err
	}
	out := make([]consent.GrantRecord, 0, len(ids))
	for _, id := range ids {
		vals, err := s.rdb.HMGet(ctx, consentGrantKey(tenant, id), "v", "d").Result()
		if err != nil {
			return nil, "", consentUnavailable("load grant", err)
		}
		rec, err := decodeGrant(vals[0], vals[1])
		if errors.Is(err, consent.ErrNotFound) || (err == nil && rec.Grant.Tenant != tenant) {
			continue
		}
		if err != nil {
			return nil, "", err
		}
		out = append(out, rec)
	}
	return out, next, nil
}

// MigrateLegacy indexes every request and grant in its tenant's lists (records written
// before the lists existed have no entry there) and removes the capability-link tokens of the
// old flow, hash and lookup alike, so no old link can find a request again. It returns the
// requests that had a token and are still pending, for the service to withdraw with a
// comment. Running it again finds nothing left to do.
func (s *Consent) MigrateLegacy(ctx context.Context) ([]string, error) {
	tenants, err := s.Tenants(ctx)
	if err != nil {
		return nil, err
	}
	var pending []string
	for _, tenant := range tenants {
		tickets, err := s.TenantTickets(ctx, tenant)
		if err != nil {
			return nil, err
		}
		for _, t := range tickets {
			for _, idx := range []struct{ from, to string }{
				{consentTicketReqKey(tenant, t), consentTenantReqsKey(tenant)},
				{consentTicketGrantKey(tenant, t), consentTenantGrantsKey(tenant)},
			} {
				zs, err := s.rdb.ZRangeWithScores(ctx, idx.from, 0, -1).Result()
				if err != nil {
					return nil, consentUnavailable("read ticket index", err)
				}
				if len(zs) > 0 {
					if err := s.rdb.ZAddNX(ctx, idx.to, zs...).Err(); err != nil {
						return nil, consentUnavailable("index records", err)
					}
				}
			}
			ids, err := s.rdb.ZRange(ctx, consentTicketReqKey(tenant, t), 0, -1).Result()
			if err != nil {
				return nil, consentUnavailable("read ticket index", err)
			}
			for _, id := range ids {
				vals, err := s.rdb.HMGet(ctx, consentReqKey(tenant, id), "tok", "d").Result()
				if err != nil {
					return nil, consentUnavailable("read request", err)
				}
				tok, _ := vals[0].(string)
				if tok == "" {
					continue
				}
				if _, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
					p.Del(ctx, consentTokenIndexKey(tok))
					p.HDel(ctx, consentReqKey(tenant, id), "tok")
					return nil
				}); err != nil {
					return nil, consentUnavailable("remove consent link", err)
				}
				var rec consent.RequestRecord
				if d, _ := vals[1].(string); json.Unmarshal([]byte(d), &rec) == nil && rec.Request.Status == consent.RequestPending {
					pending = append(pending, id)
				}
			}
		}
	}
	return pending, nil
}

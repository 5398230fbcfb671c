package redisstore

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/supportbridge/supportbridge/internal/audit"
)

// Audit keeps the audit chains: per tenant a stream whose entry ids are "<seq>-0" and whose
// fields are the canonical entry ("e") and its hash ("h"), a head hash (seq, hash) that
// appends compare-and-set, and a sorted set indexing seqs by ticket. It implements
// audit.Store. There is no way to delete or change an entry except DeleteTenant.
type Audit struct {
	rdb    redis.UniversalClient
	append *redis.Script
}

// NewAudit returns the Redis audit store.
func NewAudit(rdb redis.UniversalClient) *Audit {
	return &Audit{rdb: rdb, append: redis.NewScript(auditAppendLua)}
}

var _ audit.Store = (*Audit)(nil)

// Keys of the audit chain; all carry the tenant's hash tag so the script runs on one slot.
func auditStreamKey(tenant string) string  { return "sb:" + tenantTag(tenant) + ":audit" }
func auditHeadKey(tenant string) string    { return "sb:" + tenantTag(tenant) + ":audit:head" }
func auditTicketsKey(tenant string) string { return "sb:" + tenantTag(tenant) + ":audit:tickets" }

// auditTicketMember is the index member of one entry of a ticket: "<ticket digest>:<seq>",
// the seq zero-padded so that lexical order is numeric order. The ticket is hashed so that
// any characters in a ticket key are harmless; List re-checks the ticket of what it reads.
func auditTicketMember(ticket string, seq int64) string {
	return auditTicketPrefix(ticket) + fmt.Sprintf("%020d", seq)
}

func auditTicketPrefix(ticket string) string {
	sum := sha256.Sum256([]byte(ticket))
	return hex.EncodeToString(sum[:8]) + ":"
}

// auditAppendLua appends one entry if the head is still what the caller built on.
//
// KEYS: head, stream, ticket index. ARGV: expected seq, expected hash, new seq, new hash,
// canonical entry, genesis hash, ticket index member ("" for none).
// Returns {1} on success, {0, seq, hash} when the head moved, {2} when the stream already
// holds an id at or past the new seq although the head says otherwise (tampering; appending
// then would fail or fork, so it stops instead).
const auditAppendLua = `
local cur = redis.call('HMGET', KEYS[1], 'seq', 'hash')
local seq, hash = cur[1], cur[2]
if not seq and not hash then
  seq, hash = '0', ARGV[6]
end
if seq ~= ARGV[1] or hash ~= ARGV[2] then
  return {0, seq or '', hash or ''}
end
if tonumber(ARGV[3]) ~= tonumber(seq) + 1 then
  return redis.error_reply('ERR audit seq must follow the head')
end
local last = redis.call('XREVRANGE', KEYS[2], '+', '-', 'COUNT', 1)
if #last > 0 then
  local lastSeq = tonumber(string.match(last[1][1], '^(%d+)-'))
  if lastSeq == nil or lastSeq >= tonumber(ARGV[3]) then
    return {2}
  end
end
redis.call('XADD', KEYS[2], ARGV[3] .. '-0', 'e', ARGV[5], 'h', ARGV[4])
redis.call('HSET', KEYS[1], 'seq', ARGV[3], 'hash', ARGV[4])
if ARGV[7] ~= '' then
  redis.call('ZADD', KEYS[3], 0, ARGV[7])
end
return {1}
`

// Head reads the end of a tenant's chain.
func (s *Audit) Head(ctx context.Context, tenant string) (audit.Head, error) {
	vals, err := s.rdb.HMGet(ctx, auditHeadKey(tenant), "seq", "hash").Result()
	if err != nil {
		return audit.Head{}, fmt.Errorf("read audit head: %w: %w", ErrUnavailable, err)
	}
	seq, _ := vals[0].(string)
	hash, _ := vals[1].(string)
	return parseAuditHead(seq, hash)
}

// parseAuditHead turns stored head fields into a Head; none at all is the genesis.
func parseAuditHead(seq, hash string) (audit.Head, error) {
	if seq == "" && hash == "" {
		return audit.Head{Seq: 0, Hash: audit.GenesisHash}, nil
	}
	n, err := strconv.ParseInt(seq, 10, 64)
	if err != nil || n < 0 || len(hash) != 64 {
		return audit.Head{}, fmt.Errorf("%w: audit head unreadable", audit.ErrCorrupt)
	}
	return audit.Head{Seq: n, Hash: hash}, nil
}

// Append stores rec if the head is still prev; see audit.Store.
func (s *Audit) Append(ctx context.Context, tenant, ticket string, prev audit.Head, rec audit.Record) (audit.Head, error) {
	member := ""
	if ticket != "" {
		member = auditTicketMember(ticket, rec.Seq)
	}
	res, err := s.append.Run(ctx, s.rdb,
		[]string{auditHeadKey(tenant), auditStreamKey(tenant), auditTicketsKey(tenant)},
		strconv.FormatInt(prev.Seq, 10), prev.Hash, strconv.FormatInt(rec.Seq, 10), rec.Hash,
		rec.Data, audit.GenesisHash, member,
	).Slice()
	if err != nil {
		return audit.Head{}, fmt.Errorf("append audit entry: %w: %w", ErrUnavailable, err)
	}
	code, _ := res[0].(int64)
	switch {
	case code == 1:
		return audit.Head{Seq: rec.Seq, Hash: rec.Hash}, nil
	case code == 0 && len(res) == 3:
		seq, _ := res[1].(string)
		hash, _ := res[2].(string)
		cur, err := parseAuditHead(seq, hash)
		if err != nil {
			return audit.Head{}, err
		}
		return cur, audit.ErrConflict
	default:
		return audit.Head{}, fmt.Errorf("%w: audit stream is ahead of its head", audit.ErrCorrupt)
	}
}

// Range reads up to limit records after afterSeq. The start is exclusive of "<afterSeq>-0"
// rather than inclusive of "<afterSeq+1>-0", so that an id the script never writes (such as
// "5-1") still shows up and Verify reports it.
func (s *Audit) Range(ctx context.Context, tenant string, afterSeq int64, limit int) ([]audit.Record, error) {
	msgs, err := s.rdb.XRangeN(ctx, auditStreamKey(tenant), "("+strconv.FormatInt(afterSeq, 10)+"-0", "+", int64(limit)).Result()
	if err != nil {
		return nil, fmt.Errorf("read audit entries: %w: %w", ErrUnavailable, err)
	}
	out := make([]audit.Record, 0, len(msgs))
	for _, m := range msgs {
		out = append(out, auditRecord(m))
	}
	return out, nil
}

// TicketRecords reads the entries the ticket index names. An index entry whose stream entry
// is gone is skipped here; Verify reports the gap.
func (s *Audit) TicketRecords(ctx context.Context, tenant, ticket string) ([]audit.Record, error) {
	prefix := auditTicketPrefix(ticket)
	// ';' is the byte after ':', so this range is exactly the members with the prefix.
	members, err := s.rdb.ZRangeByLex(ctx, auditTicketsKey(tenant), &redis.ZRangeBy{
		Min: "[" + prefix, Max: "(" + strings.TrimSuffix(prefix, ":") + ";",
	}).Result()
	if err != nil {
		return nil, fmt.Errorf("read audit ticket index: %w: %w", ErrUnavailable, err)
	}
	if len(members) == 0 {
		return nil, nil
	}
	cmds := make([]*redis.XMessageSliceCmd, 0, len(members))
	_, err = s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, m := range members {
			seq, err := strconv.ParseInt(strings.TrimPrefix(m, prefix), 10, 64)
			if err != nil {
				continue
			}
			id := strconv.FormatInt(seq, 10) + "-0"
			cmds = append(cmds, p.XRange(ctx, auditStreamKey(tenant), id, id))
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read audit entries: %w: %w", ErrUnavailable, err)
	}
	var out []audit.Record
	for _, c := range cmds {
		for _, m := range c.Val() {
			out = append(out, auditRecord(m))
		}
	}
	return out, nil
}

// auditRecord turns a stream message into a record. Anything malformed is passed on as is
// (an empty hash, a zero seq) for Verify to report, rather than hidden here.
func auditRecord(m redis.XMessage) audit.Record {
	var r audit.Record
	// The seq is the id's first part even for an id the script never writes ("5-1"), so
	// Verify sees a seq out of place and paging still advances.
	if ms, _, ok := strings.Cut(m.ID, "-"); ok {
		r.Seq, _ = strconv.ParseInt(ms, 10, 64)
	}
	if e, ok := m.Values["e"].(string); ok {
		r.Data = []byte(e)
	}
	r.Hash, _ = m.Values["h"].(string)
	return r
}

// DeleteTenant removes a tenant's whole audit chain. It exists for purging a tenant's data
// (on request or after the retention period), never for editing a chain. One DEL of keys in
// one slot is atomic, so no append lands between the deletions.
func (s *Audit) DeleteTenant(ctx context.Context, tenant string) error {
	if err := s.rdb.Del(ctx, auditHeadKey(tenant), auditStreamKey(tenant), auditTicketsKey(tenant)).Err(); err != nil {
		return fmt.Errorf("delete audit chain: %w: %w", ErrUnavailable, err)
	}
	return nil
}

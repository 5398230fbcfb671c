package redisstore

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/google/go-cmp/cmp"
	"github.com/redis/go-redis/v9"

	"github.com/supportbridge/supportbridge/internal/audit"
	"github.com/supportbridge/supportbridge/internal/redisstore/redistest"
)

// testKey keys the audit chains of these tests.
var testKey = []byte("audit-chain-test-key-0123456789abcdef")

// auditChain appends n entries for tenant, alternating two tickets, and returns them.
func auditChain(t *testing.T, l *audit.Log, tenant string, n int) []audit.Entry {
	t.Helper()
	var out []audit.Entry
	for i := range n {
		e, err := l.Append(context.Background(), audit.Entry{
			Tenant: tenant, Ticket: fmt.Sprintf("SUP-%d", i%2+1),
			Actor:  audit.Actor{Kind: audit.ActorAgent, Name: "Ada", Email: "ada@vendor.example"},
			Action: audit.ActionLogsRead, GrantID: fmt.Sprintf("g-%d", i%2+1),
			Details: map[string]string{"stream": "app", "bytes": fmt.Sprint(100 * i), "lines": fmt.Sprint(i)},
		})
		if err != nil {
			t.Fatalf("Append %d: %v", i, err)
		}
		out = append(out, e)
	}
	return out
}

func verify(t *testing.T, l *audit.Log, tenant string) audit.VerifyResult {
	t.Helper()
	res, err := l.Verify(context.Background(), tenant)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	return res
}

func TestAuditAppendListVerify(t *testing.T) {
	ctx := context.Background()
	rdb := redistest.Client(t)
	l := audit.New(NewAudit(rdb), testKey, nil)
	got := auditChain(t, l, "ck-1", 5)
	auditChain(t, l, "ck-2", 3)

	all, err := l.List(ctx, "ck-1", audit.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(got, all); diff != "" {
		t.Errorf("List (-appended +listed):\n%s", diff)
	}
	byTicket, err := l.List(ctx, "ck-1", audit.Filter{Ticket: "SUP-1"})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]audit.Entry{got[0], got[2], got[4]}, byTicket); diff != "" {
		t.Errorf("List by ticket (-want +got):\n%s", diff)
	}
	byGrant, err := l.List(ctx, "ck-1", audit.Filter{Ticket: "SUP-2", GrantID: "g-2"})
	if err != nil || len(byGrant) != 2 {
		t.Errorf("List by ticket and grant = %d entries, %v; want 2", len(byGrant), err)
	}
	if res := verify(t, l, "ck-1"); !res.OK || res.Entries != 5 {
		t.Errorf("Verify = %+v, want OK with 5 entries", res)
	}
	if res := verify(t, l, "ck-2"); !res.OK || res.Entries != 3 {
		t.Errorf("Verify other tenant = %+v, want OK with 3 entries", res)
	}
}

func TestAuditConcurrentAppendersKeepOneChain(t *testing.T) {
	ctx := context.Background()
	rdb := redistest.Client(t)
	l := audit.New(NewAudit(rdb), testKey, nil)
	var wg sync.WaitGroup
	seqs := make(chan int64, 50)
	for i := range 50 {
		wg.Go(func() {
			e, err := l.Append(ctx, audit.Entry{Tenant: "ck-1", Ticket: "SUP-1", Actor: audit.Actor{Kind: audit.ActorAgent, Name: fmt.Sprint("agent", i)},
				Action: audit.ActionLogsRead, Details: map[string]string{"bytes": fmt.Sprint(i)}})
			if err != nil {
				t.Errorf("Append %d: %v", i, err)
				return
			}
			seqs <- e.Seq
		})
	}
	wg.Wait()
	close(seqs)
	seen := map[int64]bool{}
	for s := range seqs {
		if seen[s] {
			t.Errorf("seq %d handed out twice", s)
		}
		seen[s] = true
	}
	if res := verify(t, l, "ck-1"); !res.OK || res.Entries != 50 {
		t.Fatalf("Verify = %+v, want one unbroken chain of 50", res)
	}
	if es, err := l.List(ctx, "ck-1", audit.Filter{Ticket: "SUP-1"}); err != nil || len(es) != 50 {
		t.Errorf("ticket index holds %d entries, %v; want 50", len(es), err)
	}
}

// rewriteStream replaces the stored JSON of one entry. Stream entries cannot be edited in
// place, so this is what an attacker with Redis access would do: copy the stream, delete it
// and write it back with the same ids.
func rewriteStream(t *testing.T, rdb redis.UniversalClient, tenant string, edit func(seq int64, e, h string) (string, string)) {
	t.Helper()
	ctx := context.Background()
	key := auditStreamKey(tenant)
	msgs, err := rdb.XRange(ctx, key, "-", "+").Result()
	if err != nil {
		t.Fatal(err)
	}
	if err := rdb.Del(ctx, key).Err(); err != nil {
		t.Fatal(err)
	}
	for _, m := range msgs {
		r := auditRecord(m)
		e, h := edit(r.Seq, string(r.Data), r.Hash)
		if err := rdb.XAdd(ctx, &redis.XAddArgs{Stream: key, ID: m.ID, Values: []any{"e", e, "h", h}}).Err(); err != nil {
			t.Fatal(err)
		}
	}
}

func TestAuditTamperingInRedisIsDetected(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name   string
		tamper func(t *testing.T, rdb redis.UniversalClient, entries []audit.Entry)
		seq    int64
		reason string
	}{
		{"stored JSON edited", func(t *testing.T, rdb redis.UniversalClient, _ []audit.Entry) {
			rewriteStream(t, rdb, "ck-1", func(seq int64, e, h string) (string, string) {
				if seq == 3 {
					e = strings.Replace(e, `"bytes":"200"`, `"bytes":"2"`, 1)
				}
				return e, h
			})
		}, 3, audit.ReasonHash},
		{"stored JSON edited and rehashed", func(t *testing.T, rdb redis.UniversalClient, es []audit.Entry) {
			rewriteStream(t, rdb, "ck-1", func(seq int64, e, h string) (string, string) {
				if seq == 3 {
					e = strings.Replace(e, `"bytes":"200"`, `"bytes":"2"`, 1)
					h = audit.ChainHash(testKey, es[1].Hash, []byte(e))
				}
				return e, h
			})
		}, 4, audit.ReasonPrevHash},
		{"newest entry edited and rehashed", func(t *testing.T, rdb redis.UniversalClient, es []audit.Entry) {
			rewriteStream(t, rdb, "ck-1", func(seq int64, e, h string) (string, string) {
				if seq == 5 {
					e = strings.Replace(e, `"bytes":"400"`, `"bytes":"4"`, 1)
					h = audit.ChainHash(testKey, es[3].Hash, []byte(e))
				}
				return e, h
			})
		}, 5, audit.ReasonHeadHash},
		{"entry deleted", func(t *testing.T, rdb redis.UniversalClient, _ []audit.Entry) {
			rdb.XDel(ctx, auditStreamKey("ck-1"), "3-0")
		}, 3, audit.ReasonMissing},
		{"newest entry deleted", func(t *testing.T, rdb redis.UniversalClient, _ []audit.Entry) {
			rdb.XDel(ctx, auditStreamKey("ck-1"), "5-0")
		}, 5, audit.ReasonHeadMissing},
		{"stream deleted", func(t *testing.T, rdb redis.UniversalClient, _ []audit.Entry) {
			rdb.Del(ctx, auditStreamKey("ck-1"))
		}, 1, audit.ReasonHeadMissing},
		{"head edited", func(t *testing.T, rdb redis.UniversalClient, _ []audit.Entry) {
			rdb.HSet(ctx, auditHeadKey("ck-1"), "hash", strings.Repeat("a", 64))
		}, 5, audit.ReasonHeadHash},
		{"head deleted", func(t *testing.T, rdb redis.UniversalClient, _ []audit.Entry) {
			rdb.Del(ctx, auditHeadKey("ck-1"))
		}, 1, audit.ReasonHeadHash},
		{"head garbled", func(t *testing.T, rdb redis.UniversalClient, _ []audit.Entry) {
			rdb.HSet(ctx, auditHeadKey("ck-1"), "seq", "five")
		}, 6, audit.ReasonHeadHash},
		{"entry smuggled in with another id", func(t *testing.T, rdb redis.UniversalClient, es []audit.Entry) {
			rdb.XAdd(ctx, &redis.XAddArgs{Stream: auditStreamKey("ck-1"), ID: "5-1", Values: []any{"e", "{}", "h", es[4].Hash}})
		}, 6, audit.ReasonMissing},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rdb := redistest.Client(t)
			l := audit.New(NewAudit(rdb), testKey, nil)
			entries := auditChain(t, l, "ck-1", 5)
			auditChain(t, l, "ck-2", 2)
			if res := verify(t, l, "ck-1"); !res.OK {
				t.Fatalf("Verify before tampering = %+v", res)
			}
			tc.tamper(t, rdb, entries)
			res := verify(t, l, "ck-1")
			if res.OK || res.FirstBroken != tc.seq || res.Reason != tc.reason {
				t.Errorf("Verify = %+v, want broken at %d: %s", res, tc.seq, tc.reason)
			}
			if res := verify(t, l, "ck-2"); !res.OK {
				t.Errorf("another tenant's chain broke: %+v", res)
			}
		})
	}
}

// TestAuditAppendStopsOnBrokenHead checks that a head rolled back behind the stream (a
// deleted head key) stops appends instead of forking the chain: a read that cannot be
// recorded must not happen.
func TestAuditAppendStopsOnBrokenHead(t *testing.T) {
	ctx := context.Background()
	rdb := redistest.Client(t)
	l := audit.New(NewAudit(rdb), testKey, nil)
	auditChain(t, l, "ck-1", 3)
	rdb.Del(ctx, auditHeadKey("ck-1"))
	_, err := l.Append(ctx, audit.Entry{Tenant: "ck-1", Actor: audit.Actor{Kind: audit.ActorSystem}, Action: audit.ActionExpired})
	if !errors.Is(err, audit.ErrCorrupt) {
		t.Errorf("Append over a deleted head: err = %v, want ErrCorrupt", err)
	}
	rdb.HSet(ctx, auditHeadKey("ck-1"), "seq", "x", "hash", "y")
	_, err = l.Append(ctx, audit.Entry{Tenant: "ck-1", Actor: audit.Actor{Kind: audit.ActorSystem}, Action: audit.ActionExpired})
	if !errors.Is(err, audit.ErrCorrupt) {
		t.Errorf("Append over a garbled head: err = %v, want ErrCorrupt", err)
	}
}

func TestAuditDeleteTenant(t *testing.T) {
	ctx := context.Background()
	rdb := redistest.Client(t)
	store := NewAudit(rdb)
	l := audit.New(store, testKey, nil)
	auditChain(t, l, "ck-1", 4)
	auditChain(t, l, "ck-2", 2)
	if err := store.DeleteTenant(ctx, "ck-1"); err != nil {
		t.Fatal(err)
	}
	keys, err := rdb.Keys(ctx, "*").Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		if strings.Contains(k, tenantTag("ck-1")) {
			t.Errorf("key %s survived the purge", k)
		}
	}
	if res := verify(t, l, "ck-1"); !res.OK || res.Entries != 0 {
		t.Errorf("Verify after purge = %+v, want an empty, intact chain", res)
	}
	if res := verify(t, l, "ck-2"); !res.OK || res.Entries != 2 {
		t.Errorf("purge touched another tenant: %+v", res)
	}
	// A purged tenant that comes back starts a fresh chain.
	if e := auditChain(t, l, "ck-1", 1); e[0].Seq != 1 || e[0].PrevHash != audit.GenesisHash {
		t.Errorf("first entry after purge = seq %d prev %s", e[0].Seq, e[0].PrevHash)
	}
}

func TestAuditKeysShareTheTenantHashTag(t *testing.T) {
	ctx := context.Background()
	rdb := redistest.Client(t)
	auditChain(t, audit.New(NewAudit(rdb), testKey, nil), "weird{tenant}", 2)
	keys, err := rdb.Keys(ctx, "*").Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 3 {
		t.Fatalf("keys = %v, want stream, head and ticket index", keys)
	}
	for _, k := range keys {
		if !strings.HasPrefix(k, "sb:"+tenantTag("weird{tenant}")+":audit") {
			t.Errorf("key %s lacks the tenant's hash tag", k)
		}
	}
}

func TestAuditStoredEntriesHoldNoLogContent(t *testing.T) {
	ctx := context.Background()
	rdb := redistest.Client(t)
	l := audit.New(NewAudit(rdb), testKey, nil)
	line := "2026-03-01T09:00:00Z ERROR card=4111111111111111 " + strings.Repeat("x", audit.MaxDetailValueLen)
	_, err := l.Append(ctx, audit.Entry{Tenant: "ck-1", Actor: audit.Actor{Kind: audit.ActorAgent}, Action: audit.ActionLogsRead,
		Details: map[string]string{"sample": line}})
	if !errors.Is(err, audit.ErrInvalidEntry) {
		t.Fatalf("Append with a log line: err = %v, want ErrInvalidEntry", err)
	}
	keys, _ := rdb.Keys(ctx, "*").Result()
	if len(keys) != 0 {
		t.Errorf("a rejected entry left keys behind: %v", keys)
	}
}

func TestAuditUnavailable(t *testing.T) {
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
	t.Cleanup(func() { rdb.Close() })
	l := audit.New(NewAudit(rdb), testKey, nil)
	ctx := context.Background()
	if _, err := l.Append(ctx, audit.Entry{Tenant: "ck", Actor: audit.Actor{Kind: audit.ActorSystem}, Action: audit.ActionExpired}); !errors.Is(err, ErrUnavailable) {
		t.Errorf("Append: err = %v, want ErrUnavailable", err)
	}
	if _, err := l.Verify(ctx, "ck"); !errors.Is(err, ErrUnavailable) {
		t.Errorf("Verify: err = %v, want ErrUnavailable", err)
	}
	if _, err := l.List(ctx, "ck", audit.Filter{Ticket: "SUP-1"}); !errors.Is(err, ErrUnavailable) {
		t.Errorf("List: err = %v, want ErrUnavailable", err)
	}
	if err := NewAudit(rdb).DeleteTenant(ctx, "ck"); !errors.Is(err, ErrUnavailable) {
		t.Errorf("DeleteTenant: err = %v, want ErrUnavailable", err)
	}
}

// TestAuditScriptsRunOnEmbeddedRedis runs the chain on miniredis too, because `supportbridge
// dev` uses it and its Lua and stream support is a reimplementation, not Redis.
func TestAuditScriptsRunOnEmbeddedRedis(t *testing.T) {
	m := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: m.Addr()})
	t.Cleanup(func() { rdb.Close() })
	l := audit.New(NewAudit(rdb), testKey, nil)
	auditChain(t, l, "ck-1", 4)
	if res := verify(t, l, "ck-1"); !res.OK || res.Entries != 4 {
		t.Errorf("Verify on miniredis = %+v", res)
	}
	if es, err := l.List(context.Background(), "ck-1", audit.Filter{Ticket: "SUP-2"}); err != nil || len(es) != 2 {
		t.Errorf("List by ticket on miniredis = %d, %v", len(es), err)
	}
}

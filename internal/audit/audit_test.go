package audit_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/supportbridge/supportbridge/internal/audit"
)

// memStore is an in-memory audit.Store for the domain tests; the Redis store is tested in
// redisstore against a real server. tamper, when set, rewrites what Range returns, standing in
// for someone who edited the storage underneath.
type memStore struct {
	mu      sync.Mutex
	recs    map[string][]audit.Record
	heads   map[string]audit.Head
	tickets map[string]map[string][]int64
	tamper  func([]audit.Record) []audit.Record
	// conflictAlways makes every Append lose the race.
	conflictAlways bool
}

func newMemStore() *memStore {
	return &memStore{recs: map[string][]audit.Record{}, heads: map[string]audit.Head{}, tickets: map[string]map[string][]int64{}}
}

func (s *memStore) Head(_ context.Context, tenant string) (audit.Head, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.headLocked(tenant), nil
}

func (s *memStore) headLocked(tenant string) audit.Head {
	if h, ok := s.heads[tenant]; ok {
		return h
	}
	return audit.Head{Seq: 0, Hash: audit.GenesisHash}
}

func (s *memStore) Append(_ context.Context, tenant, ticket string, prev audit.Head, rec audit.Record) (audit.Head, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	cur := s.headLocked(tenant)
	if cur != prev || s.conflictAlways {
		return cur, audit.ErrConflict
	}
	rec.Data = slices.Clone(rec.Data)
	s.recs[tenant] = append(s.recs[tenant], rec)
	s.heads[tenant] = audit.Head{Seq: rec.Seq, Hash: rec.Hash}
	if ticket != "" {
		if s.tickets[tenant] == nil {
			s.tickets[tenant] = map[string][]int64{}
		}
		s.tickets[tenant][ticket] = append(s.tickets[tenant][ticket], rec.Seq)
	}
	return s.heads[tenant], nil
}

func (s *memStore) all(tenant string) []audit.Record {
	recs := slices.Clone(s.recs[tenant])
	for i := range recs {
		recs[i].Data = slices.Clone(recs[i].Data)
	}
	if s.tamper != nil {
		recs = s.tamper(recs)
	}
	return recs
}

func (s *memStore) Range(_ context.Context, tenant string, after int64, limit int) ([]audit.Record, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []audit.Record
	for _, r := range s.all(tenant) {
		if r.Seq > after && len(out) < limit {
			out = append(out, r)
		}
	}
	return out, nil
}

func (s *memStore) TicketRecords(_ context.Context, tenant, ticket string) ([]audit.Record, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []audit.Record
	for _, r := range s.all(tenant) {
		if slices.Contains(s.tickets[tenant][ticket], r.Seq) {
			out = append(out, r)
		}
	}
	return out, nil
}

var t0 = time.Date(2026, 3, 1, 9, 30, 0, 123456789, time.UTC)

// testKey keys the chains of these tests, as a key derived from SB_SECRET_KEY does in the service.
var testKey = []byte("audit-chain-test-key-0123456789abcdef")

// fixedClock returns a clock that advances a second per call.
func fixedClock() func() time.Time {
	var mu sync.Mutex
	now := t0
	return func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		now = now.Add(time.Second)
		return now
	}
}

// story appends a typical sequence for two tickets of one tenant and returns what Append
// returned.
func story(t *testing.T, l *audit.Log, tenant string) []audit.Entry {
	t.Helper()
	agent := audit.Actor{Kind: audit.ActorAgent, Name: "Ada", Email: "ada@vendor.example"}
	customer := audit.Actor{Kind: audit.ActorCustomer, Name: "Carol"}
	in := []audit.Entry{
		{Tenant: tenant, Ticket: "SUP-1", Actor: agent, Action: audit.ActionAccessRequested, RequestID: "req-1",
			Details: map[string]string{"streams": "app,worker", "window": "2026-02-28T00:00:00Z/2026-03-01T00:00:00Z", "duration": "24h"}},
		{Tenant: tenant, Ticket: "SUP-1", Actor: customer, Action: audit.ActionApproved, RequestID: "req-1", GrantID: "g-1",
			Details: map[string]string{"duration": "4h"}},
		{Tenant: tenant, Ticket: "SUP-2", Actor: agent, Action: audit.ActionAccessRequested, RequestID: "req-2"},
		{Tenant: tenant, Ticket: "SUP-1", Actor: agent, Action: audit.ActionLogsRead, GrantID: "g-1",
			Details: map[string]string{"stream": "app", "bytes": "18234", "lines": "211"}},
		{Tenant: tenant, Ticket: "SUP-1", Actor: audit.Actor{Kind: audit.ActorSystem}, Action: audit.ActionExpired, GrantID: "g-1"},
	}
	var out []audit.Entry
	for _, e := range in {
		got, err := l.Append(context.Background(), e)
		if err != nil {
			t.Fatalf("Append %s: %v", e.Action, err)
		}
		out = append(out, got)
	}
	return out
}

func TestAppendListVerify(t *testing.T) {
	ctx := context.Background()
	l := audit.New(newMemStore(), testKey, fixedClock())
	got := story(t, l, "tenant-a")
	story(t, l, "tenant-b") // another tenant's chain is independent

	prev := audit.GenesisHash
	for i, e := range got {
		if e.Seq != int64(i+1) || e.PrevHash != prev {
			t.Fatalf("entry %d: seq %d prev %s, want seq %d prev %s", i, e.Seq, e.PrevHash, i+1, prev)
		}
		noHash := e
		noHash.Hash = ""
		if want := audit.ChainHash(testKey, prev, audit.Canonical(noHash)); e.Hash != want {
			t.Fatalf("entry %d: hash %s, want %s", i, e.Hash, want)
		}
		prev = e.Hash
	}

	all, err := l.List(ctx, "tenant-a", audit.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(got, all); diff != "" {
		t.Errorf("List differs from what Append returned (-append +list):\n%s", diff)
	}
	for _, tc := range []struct {
		f    audit.Filter
		want []int64
	}{
		{audit.Filter{Ticket: "SUP-1"}, []int64{1, 2, 4, 5}},
		{audit.Filter{Ticket: "SUP-2"}, []int64{3}},
		{audit.Filter{GrantID: "g-1"}, []int64{2, 4, 5}},
		{audit.Filter{Ticket: "SUP-1", RequestID: "req-1"}, []int64{1, 2}},
		{audit.Filter{Ticket: "SUP-404"}, nil},
	} {
		es, err := l.List(ctx, "tenant-a", tc.f)
		if err != nil {
			t.Fatal(err)
		}
		var seqs []int64
		for _, e := range es {
			seqs = append(seqs, e.Seq)
		}
		if diff := cmp.Diff(tc.want, seqs); diff != "" {
			t.Errorf("List(%+v) seqs (-want +got):\n%s", tc.f, diff)
		}
	}

	res, err := l.Verify(ctx, "tenant-a")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(audit.VerifyResult{Entries: 5, OK: true}, res); diff != "" {
		t.Errorf("Verify (-want +got):\n%s", diff)
	}
	if res, _ := l.Verify(ctx, "nobody"); !res.OK || res.Entries != 0 {
		t.Errorf("Verify of an empty chain = %+v, want OK with 0 entries", res)
	}
}

// TestCanonicalEncodingIsPinned fixes the encoding byte for byte: stored chains were hashed
// with it, so any change would make every existing chain fail verification.
func TestCanonicalEncodingIsPinned(t *testing.T) {
	e := audit.Entry{
		Seq: 7, Time: time.Date(2026, 3, 1, 10, 0, 0, 500, time.FixedZone("CET", 3600)),
		Tenant: "ck-1", Ticket: "SUP-1", Actor: audit.Actor{Kind: audit.ActorAgent, Name: "Ada <&>", Email: "ada@vendor.example"},
		Action: audit.ActionLogsRead, GrantID: "g-1",
		Details:  map[string]string{"lines": "3", "bytes": "120", "stream": "app"},
		PrevHash: audit.GenesisHash, Hash: "ignored",
	}
	const want = `{"v":2,"seq":7,"time":"2026-03-01T09:00:00.0000005Z","tenant":"ck-1","ticket":"SUP-1",` +
		`"actor":{"kind":"agent","name":"Ada \u003c\u0026\u003e","email":"ada@vendor.example","accountId":""},"action":"logs_read",` +
		`"requestId":"","grantId":"g-1","details":{"bytes":"120","lines":"3","stream":"app"},` +
		`"prevHash":"0000000000000000000000000000000000000000000000000000000000000000"}`
	if got := string(audit.Canonical(e)); got != want {
		t.Errorf("canonical encoding\n got %s\nwant %s", got, want)
	}
	// HMAC-SHA256 with key "key" of "ab"+"cd", computed independently (openssl dgst -sha256 -hmac key).
	if got, want := audit.ChainHash([]byte("key"), "ab", []byte("cd")), hmacHex("key", "abcd"); got != want {
		t.Errorf("ChainHash(key, ab, cd) = %s, want HMAC-SHA256(key, abcd) = %s", got, want)
	}
	if audit.ChainHash([]byte("key"), "ab", []byte("cd")) == audit.ChainHash([]byte("other"), "ab", []byte("cd")) {
		t.Error("ChainHash does not depend on the key")
	}
}

func hmacHex(key, msg string) string {
	m := hmac.New(sha256.New, []byte(key))
	m.Write([]byte(msg))
	return hex.EncodeToString(m.Sum(nil))
}

// TestVerifyRefusesChainsMadeWithoutTheKey is the attack a keyed chain exists for: someone
// with write access to Redis rewrites an entry and recomputes every later hash, with plain
// SHA-256 (the old scheme) or with a key of their own. Both are reported.
func TestVerifyRefusesChainsMadeWithoutTheKey(t *testing.T) {
	ctx := context.Background()
	for name, rehash := range map[string]func(prev string, data []byte) string{
		"plain sha256": func(prev string, data []byte) string {
			h := sha256.Sum256(append([]byte(prev), data...))
			return hex.EncodeToString(h[:])
		},
		"another key": func(prev string, data []byte) string {
			return audit.ChainHash([]byte("attacker-key-0123456789abcdef0123456"), prev, data)
		},
	} {
		t.Run(name, func(t *testing.T) {
			store := newMemStore()
			l := audit.New(store, testKey, fixedClock())
			entries := story(t, l, "tenant-a")
			recs := store.recs["tenant-a"]
			prev := audit.GenesisHash
			for i := range recs {
				e := entries[i]
				if i == 1 {
					e.Action = audit.ActionDenied
				}
				e.PrevHash = prev
				recs[i].Data = audit.Canonical(e)
				recs[i].Hash = rehash(prev, recs[i].Data)
				prev = recs[i].Hash
			}
			store.heads["tenant-a"] = audit.Head{Seq: recs[len(recs)-1].Seq, Hash: prev}
			res, err := l.Verify(ctx, "tenant-a")
			if err != nil {
				t.Fatal(err)
			}
			if res.OK || res.FirstBroken != 1 || res.Reason != audit.ReasonHash {
				t.Errorf("Verify of a chain rehashed without the key = %+v, want broken at 1 (%s)", res, audit.ReasonHash)
			}
		})
	}
}

func TestVerifyFindsTampering(t *testing.T) {
	edit := func(i int, from, to string, rehash bool) func([]audit.Record) []audit.Record {
		return func(recs []audit.Record) []audit.Record {
			recs[i].Data = []byte(strings.Replace(string(recs[i].Data), from, to, 1))
			if rehash {
				prev := audit.GenesisHash
				if i > 0 {
					prev = recs[i-1].Hash
				}
				recs[i].Hash = audit.ChainHash(testKey, prev, recs[i].Data)
			}
			return recs
		}
	}
	tests := []struct {
		name   string
		tamper func([]audit.Record) []audit.Record
		seq    int64
		reason string
	}{
		{"content edited", edit(2, `"action":"access_requested"`, `"action":"denied"`, false), 3, audit.ReasonHash},
		{"byte count lowered", edit(3, `"bytes":"18234"`, `"bytes":"10"`, false), 4, audit.ReasonHash},
		{"content edited and rehashed", edit(2, `"action":"access_requested"`, `"action":"denied"`, true), 4, audit.ReasonPrevHash},
		{"last entry edited and rehashed", edit(4, `"action":"expired"`, `"action":"revoked"`, true), 5, audit.ReasonHeadHash},
		{"not canonical", edit(1, `{"v":2,`, `{ "v":2,`, true), 2, audit.ReasonUnreadable},
		{"version 1 entry", edit(1, `{"v":2,`, `{"v":1,`, true), 2, audit.ReasonUnreadable},
		{"duplicate key", edit(1, `"action":"approved"`, `"action":"approved","action":"denied"`, true), 2, audit.ReasonUnreadable},
		{"unknown field", edit(1, `"action":`, `"note":"x","action":`, true), 2, audit.ReasonUnreadable},
		{"seq rewritten", edit(1, `"seq":2`, `"seq":9`, true), 2, audit.ReasonSeq},
		{"copied from another tenant", edit(1, `"tenant":"tenant-a"`, `"tenant":"tenant-b"`, true), 2, audit.ReasonTenant},
		{"entry deleted", func(r []audit.Record) []audit.Record { return slices.Delete(r, 2, 3) }, 3, audit.ReasonMissing},
		{"first entry deleted", func(r []audit.Record) []audit.Record { return r[1:] }, 1, audit.ReasonMissing},
		{"newest entry deleted", func(r []audit.Record) []audit.Record { return r[:4] }, 5, audit.ReasonHeadMissing},
		{"everything deleted", func(r []audit.Record) []audit.Record { return nil }, 1, audit.ReasonHeadMissing},
		{"entries swapped", func(r []audit.Record) []audit.Record { r[1], r[2] = r[2], r[1]; return r }, 2, audit.ReasonMissing},
		{"entry renumbered into a gap", func(r []audit.Record) []audit.Record {
			r = slices.Delete(r, 2, 3)
			r[2].Seq = 3
			return r
		}, 3, audit.ReasonSeq},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			store := newMemStore()
			l := audit.New(store, testKey, fixedClock())
			story(t, l, "tenant-a")
			store.tamper = tc.tamper
			res, err := l.Verify(context.Background(), "tenant-a")
			if err != nil {
				t.Fatal(err)
			}
			if res.OK || res.FirstBroken != tc.seq || res.Reason != tc.reason {
				t.Errorf("Verify = %+v, want broken at %d: %s", res, tc.seq, tc.reason)
			}
		})
	}
}

func TestListReportsUnreadableEntry(t *testing.T) {
	store := newMemStore()
	l := audit.New(store, testKey, fixedClock())
	story(t, l, "tenant-a")
	store.tamper = func(r []audit.Record) []audit.Record { r[1].Data = []byte("{"); return r }
	if _, err := l.List(context.Background(), "tenant-a", audit.Filter{}); !errors.Is(err, audit.ErrCorrupt) {
		t.Errorf("List over a corrupt entry: err = %v, want ErrCorrupt", err)
	}
}

func TestAppendRejects(t *testing.T) {
	valid := func() audit.Entry {
		return audit.Entry{Tenant: "t", Ticket: "SUP-1", Actor: audit.Actor{Kind: audit.ActorAgent, Name: "Ada"}, Action: audit.ActionLogsRead}
	}
	logLine := `2026-03-01T09:00:00Z ERROR payment failed for card 4111111111111111 user=carol@example.com ` + strings.Repeat("x", audit.MaxDetailValueLen)
	tooMany := map[string]string{}
	for i := range audit.MaxDetails + 1 {
		tooMany[fmt.Sprintf("k%d", i)] = "1"
	}
	tests := []struct {
		name string
		edit func(*audit.Entry)
	}{
		{"no tenant", func(e *audit.Entry) { e.Tenant = "" }},
		{"unknown actor kind", func(e *audit.Entry) { e.Actor.Kind = "robot" }},
		{"no action", func(e *audit.Entry) { e.Action = "" }},
		{"action not snake_case", func(e *audit.Entry) { e.Action = "Logs Read" }},
		{"a log line as a detail", func(e *audit.Entry) { e.Details = map[string]string{"sample": logLine} }},
		{"multi-line detail", func(e *audit.Entry) { e.Details = map[string]string{"sample": "line one\nline two"} }},
		{"too many details", func(e *audit.Entry) { e.Details = tooMany }},
		{"detail key with spaces", func(e *audit.Entry) { e.Details = map[string]string{"log line": "1"} }},
		{"invalid UTF-8", func(e *audit.Entry) { e.Actor.Name = "Ada\xff" }},
		{"control character", func(e *audit.Entry) { e.Ticket = "SUP-1\x1b[31m" }},
		{"long ticket", func(e *audit.Entry) { e.Ticket = strings.Repeat("S", 129) }},
		{"time before 2000", func(e *audit.Entry) { e.Time = time.Date(1999, 1, 1, 0, 0, 0, 0, time.UTC) }},
	}
	store := newMemStore()
	l := audit.New(store, testKey, fixedClock())
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := valid()
			tc.edit(&e)
			if _, err := l.Append(context.Background(), e); !errors.Is(err, audit.ErrInvalidEntry) {
				t.Errorf("Append: err = %v, want ErrInvalidEntry", err)
			}
			if strings.Contains(fmt.Sprint(l.Append(context.Background(), e)), "4111111111111111") {
				t.Errorf("error repeats the rejected content")
			}
		})
	}
	if h, _ := store.Head(context.Background(), "t"); h.Seq != 0 {
		t.Errorf("rejected entries were stored: head %+v", h)
	}
	// The bounds themselves are allowed.
	e := valid()
	e.Details = map[string]string{"reason": strings.Repeat("é", audit.MaxDetailValueLen/2)}
	if _, err := l.Append(context.Background(), e); err != nil {
		t.Errorf("Append at the value bound: %v", err)
	}
}

func TestConcurrentAppendsKeepOneChain(t *testing.T) {
	ctx := context.Background()
	l := audit.New(newMemStore(), testKey, nil)
	var wg sync.WaitGroup
	for i := range 50 {
		wg.Go(func() {
			_, err := l.Append(ctx, audit.Entry{Tenant: "t", Actor: audit.Actor{Kind: audit.ActorAgent}, Action: audit.ActionLogsRead,
				Details: map[string]string{"n": fmt.Sprint(i)}})
			if err != nil {
				t.Errorf("Append %d: %v", i, err)
			}
		})
	}
	wg.Wait()
	res, err := l.Verify(ctx, "t")
	if err != nil || !res.OK || res.Entries != 50 {
		t.Fatalf("Verify = %+v, %v; want one unbroken chain of 50", res, err)
	}
}

func TestAppendGivesUpUnderEndlessContention(t *testing.T) {
	store := newMemStore()
	store.conflictAlways = true
	l := audit.New(store, testKey, nil)
	_, err := l.Append(context.Background(), audit.Entry{Tenant: "t", Actor: audit.Actor{Kind: audit.ActorSystem}, Action: audit.ActionExpired})
	if !errors.Is(err, audit.ErrContention) {
		t.Errorf("err = %v, want ErrContention", err)
	}
}

func TestAppendStampsTimeInUTC(t *testing.T) {
	l := audit.New(newMemStore(), testKey, func() time.Time { return t0.In(time.FixedZone("X", -7200)) })
	got, err := l.Append(context.Background(), audit.Entry{Tenant: "t", Actor: audit.Actor{Kind: audit.ActorSystem}, Action: audit.ActionExpired, Details: map[string]string{}})
	if err != nil {
		t.Fatal(err)
	}
	if !got.Time.Equal(t0) || got.Time.Location() != time.UTC || got.Details != nil {
		t.Errorf("Append returned time %v details %#v; want %v in UTC and nil details", got.Time, got.Details, t0)
	}
}

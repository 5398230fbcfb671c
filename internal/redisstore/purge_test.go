package redisstore

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/google/go-cmp/cmp"
	"github.com/redis/go-redis/v9"

	"github.com/supportbridge/supportbridge/internal/audit"
	"github.com/supportbridge/supportbridge/internal/consent"
	"github.com/supportbridge/supportbridge/internal/errortrack"
	"github.com/supportbridge/supportbridge/internal/lifecycle"
	"github.com/supportbridge/supportbridge/internal/logstore"
	"github.com/supportbridge/supportbridge/internal/redisstore/redistest"
	"github.com/supportbridge/supportbridge/internal/report"
	"github.com/supportbridge/supportbridge/internal/seal"
	"github.com/supportbridge/supportbridge/internal/secret"
	"github.com/supportbridge/supportbridge/internal/tenant"
)

// purgeEnv is a database holding the data of two tenants, written through the real stores.
type purgeEnv struct {
	rdb     redis.UniversalClient
	reports *Reports
	clock   *fakeClock
	logDir  string
}

const (
	victim    = "victim-client-key"
	bystander = "bystander-client-key"
)

func newPurgeEnv(t *testing.T, rdb redis.UniversalClient) *purgeEnv {
	t.Helper()
	clock := &fakeClock{t: time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)}
	e := &purgeEnv{rdb: rdb, clock: clock, logDir: t.TempDir(),
		reports: NewReports(rdb, ReportsOptions{Now: clock.Now, CustomerKey: []byte("test-customer-key-0123456789abcd")})}
	if err := e.reports.EnsureGroup(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, tn := range []string{victim, bystander} {
		e.seed(t, tn)
	}
	return e
}

// seed writes one of every kind of record a tenant has: the installation with its lookups,
// a delivered report with a ticket, a failed one in the dead letters, a queued one,
// idempotency and rate-limit keys, the customer cache, consent records, an audit chain,
// error groups, usage counters and log files.
func (e *purgeEnv) seed(t *testing.T, tn string) {
	t.Helper()
	ctx := context.Background()
	sealer, err := seal.New(make([]byte, 32))
	if err != nil {
		t.Fatal(err)
	}
	err = NewTenants(e.rdb, sealer).Save(ctx, tenant.Tenant{ClientKey: tn, BaseURL: "https://" + tn + ".atlassian.net",
		CloudID: "cloud-" + tn, InstallationID: "inst-" + tn, SharedSecret: secret.New("shh-" + tn), Installed: true, Enabled: true})
	if err != nil {
		t.Fatal(err)
	}
	user := "user-of-" + tn
	// Delivered, with a ticket linked.
	mustEnqueue(t, e.reports, submission(tn, user, "idem-1-"+tn, "file-a"), noLimits)
	d := take(t, e.reports, "w")
	if _, err := e.reports.Record(ctx, d.Job, d.Fence, report.StepRecord{AccountID: "acc-" + tn, TicketKey: "SUP-" + tn[:3], TicketURL: "https://x"}); err != nil {
		t.Fatal(err)
	}
	if err := e.reports.Delivered(ctx, d.Job, d.Fence); err != nil {
		t.Fatal(err)
	}
	// Failed, dead-lettered.
	mustEnqueue(t, e.reports, submission(tn, user, "", "file-b"), noLimits)
	d = take(t, e.reports, "w")
	if err := e.reports.Failed(ctx, d.Job, d.Fence, "jsm refused"); err != nil {
		t.Fatal(err)
	}
	if err := e.reports.CacheCustomer(ctx, tn, user+"@customer.example", "acc-"+tn); err != nil {
		t.Fatal(err)
	}
	cs := NewConsent(e.rdb)
	rec, grec := consentFixture(e.clock.Now(), tn, "ar_"+tn[:6], "gr_"+tn[:6])
	if err := cs.CreateRequest(ctx, rec, rec.Request.ExpiresAt); err != nil {
		t.Fatal(err)
	}
	got, _ := cs.Request(ctx, rec.Request.ID)
	got.Request.Status = consent.RequestApproved
	if err := cs.Save(ctx, consent.Change{Tenant: tn, Request: &got, Grant: &grec, GrantDue: grec.Grant.End}); err != nil {
		t.Fatal(err)
	}
	if err := cs.AddAccess(ctx, tn, grec.Grant.ID, consent.Access{Stream: "app", Bytes: 10}); err != nil {
		t.Fatal(err)
	}
	auditChain(t, audit.New(NewAudit(e.rdb), testKey, nil), tn, 3)
	es := NewErrors(e.rdb)
	if _, _, err := es.Reserve(ctx, tn, 1, 100, time.Minute, e.clock.Now()); err != nil {
		t.Fatal(err)
	}
	if err := es.Record(ctx, tn, []errortrack.Hit{{Fingerprint: "fp1", Kind: errortrack.KindError, Message: "boom", TrackingID: "tid-" + tn}},
		e.clock.Now(), errortrack.Retention{TTL: time.Hour, MaxTrackingIDs: 10, MaxGroups: 10}); err != nil {
		t.Fatal(err)
	}
	u := NewUsage(e.rdb)
	if err := u.Add(ctx, tn, e.clock.Now(), map[string]int64{"reports_filed": 2}); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(e.logDir, tn, "app")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, day := range []string{"2026-03-01", "2026-03-02"} {
		if err := os.WriteFile(filepath.Join(dir, day+".log"), []byte("2026-03-01T00:00:00Z hello\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// dumpAll reads every key and its whole value, for checks that nothing of a tenant remains.
func dumpAll(t *testing.T, rdb redis.UniversalClient) map[string]string {
	t.Helper()
	ctx := context.Background()
	out := map[string]string{}
	scan := func(ctx context.Context, c *redis.Client) error {
		it := c.Scan(ctx, 0, "*", 1000).Iterator()
		for it.Next(ctx) {
			k := it.Val()
			var v any
			switch typ := c.Type(ctx, k).Val(); typ {
			case "string":
				v = c.Get(ctx, k).Val()
			case "hash":
				v = c.HGetAll(ctx, k).Val()
			case "set":
				v = c.SMembers(ctx, k).Val()
			case "zset":
				v = c.ZRangeWithScores(ctx, k, 0, -1).Val()
			case "list":
				v = c.LRange(ctx, k, 0, -1).Val()
			case "stream":
				v = c.XRange(ctx, k, "-", "+").Val()
			default:
				v = typ
			}
			out[k] = fmt.Sprint(v)
		}
		return it.Err()
	}
	var err error
	switch c := rdb.(type) {
	case *redis.ClusterClient:
		var mu sync.Mutex
		err = c.ForEachMaster(ctx, func(ctx context.Context, n *redis.Client) error {
			mu.Lock()
			defer mu.Unlock()
			return scan(ctx, n)
		})
	case *redis.Client:
		err = scan(ctx, c)
	}
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// leftovers lists keys that still name tn, hold its tag, or hold its values.
func leftovers(all map[string]string, tn string) []string {
	var out []string
	tag := tenantTag(tn)
	for k, v := range all {
		if k == purgeTombstoneKey(tn) {
			continue
		}
		if strings.Contains(k, tag) || strings.Contains(k, tn) || strings.Contains(v, tn) || strings.Contains(v, tn[:6]) {
			out = append(out, k)
		}
	}
	return out
}

// only is the part of all that belongs to tn alone (keys shared with the victim, such as
// the dead letters, change with its purge).
func only(all map[string]string, tn string) map[string]string {
	out := map[string]string{}
	for k, v := range all {
		if strings.Contains(v, victim) && tn != victim {
			continue
		}
		if strings.Contains(k, tenantTag(tn)) || strings.Contains(k, tn) || strings.Contains(v, tn) {
			out[k] = v
		}
	}
	return out
}

func newPurgeService(e *purgeEnv, p *Purge) *lifecycle.Service {
	return lifecycle.New(p, lifecycle.Options{Logs: logstore.NewDir(e.logDir), Now: e.clock.Now})
}

func TestPurgeLeavesOnlyTheTombstone(t *testing.T) {
	testPurgeLeavesOnlyTheTombstone(t, redistest.Client(t))
}

func testPurgeLeavesOnlyTheTombstone(t *testing.T, rdb redis.UniversalClient) {
	ctx := context.Background()
	e := newPurgeEnv(t, rdb)
	before := dumpAll(t, rdb)
	if len(leftovers(before, victim)) < 15 {
		t.Fatalf("the seed wrote only %d keys of the victim: %v", len(leftovers(before, victim)), leftovers(before, victim))
	}
	head, err := NewAudit(rdb).Head(ctx, victim)
	if err != nil {
		t.Fatal(err)
	}
	svc := newPurgeService(e, NewPurge(rdb, PurgeOptions{Reports: e.reports}))
	r, err := svc.Purge(ctx, victim)
	if err != nil {
		t.Fatalf("Purge: %v", err)
	}
	after := dumpAll(t, rdb)
	if left := leftovers(after, victim); len(left) > 0 {
		t.Errorf("after the purge these keys still hold the tenant:\n%s", strings.Join(left, "\n"))
	}
	kept := only(before, bystander)
	now := map[string]string{}
	for k := range kept {
		now[k] = after[k]
	}
	if diff := cmp.Diff(kept, now); diff != "" {
		t.Errorf("the other tenant's data changed (-before +after):\n%s", diff)
	}
	if _, err := os.Stat(filepath.Join(e.logDir, victim)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the tenant's log folder is still there: %v", err)
	}
	if _, err := os.Stat(filepath.Join(e.logDir, bystander, "app", "2026-03-01.log")); err != nil {
		t.Errorf("the other tenant's logs went: %v", err)
	}
	want := lifecycle.Head{Seq: head.Seq, Hash: head.Hash}
	if r.Tombstone.FinalAuditHead != want || head.Seq != 3 {
		t.Errorf("tombstone head = %+v, want %+v", r.Tombstone.FinalAuditHead, want)
	}
	for _, k := range []string{"tenant", "reports", "report_files", "customer_cache", "access_requests", "grants",
		"log_reads", "audit_entries", "error_groups", "usage_counters", "dead_letters", "log_files", "idempotency_keys"} {
		if r.Deleted[k] == 0 {
			t.Errorf("receipt counts no %s: %v", k, r.Deleted)
		}
	}
	if r.Deleted["log_files"] != 2 || r.Deleted["audit_entries"] != 3 || r.Deleted["dead_letters"] != 1 {
		t.Errorf("receipt counts = %v; want 2 log files, 3 audit entries, 1 dead letter", r.Deleted)
	}
	if r.Tombstone.TenantKeyHash != lifecycle.KeyHash(victim) || r.Tombstone.Runs != 1 || !r.Tombstone.DeletedAt.Equal(e.clock.Now()) {
		t.Errorf("tombstone = %+v", r.Tombstone)
	}
	if len(r.NotDeleted) == 0 || len(r.NotDeleted[0].Items) != 1 || r.NotDeleted[0].Items[0] != "SUP-"+victim[:3] {
		t.Errorf("receipt does not name the JSM ticket left outside: %+v", r.NotDeleted)
	}

	// Twice is harmless: nothing more to delete, the same tombstone, one more run.
	e.clock.Advance(time.Hour)
	r2, err := svc.Purge(ctx, victim)
	if err != nil {
		t.Fatalf("second Purge: %v", err)
	}
	if len(r2.Deleted) != 0 || r2.Tombstone.Runs != 2 || !r2.Tombstone.DeletedAt.Equal(r.Tombstone.DeletedAt) ||
		!cmp.Equal(r2.Tombstone.Counts, r.Tombstone.Counts) || r2.Tombstone.FinalAuditHead != r.Tombstone.FinalAuditHead {
		t.Errorf("second purge = deleted %v, tombstone %+v; want nothing deleted and the first tombstone", r2.Deleted, r2.Tombstone)
	}
	st, err := svc.Describe(ctx, victim)
	if err != nil || st.State != "purged" || len(st.Held) != 0 || st.Tombstone == nil {
		t.Errorf("Describe after purge = %+v, %v", st, err)
	}
}

// failAfter fails every command once n EVALSHA/EVAL calls of the purge's delete script
// went through: the replica crashed between two deletions.
type failAfter struct {
	n     int64
	calls atomic.Int64
}

func (*failAfter) DialHook(next redis.DialHook) redis.DialHook { return next }
func (*failAfter) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}
func (h *failAfter) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if a := cmd.Args(); len(a) > 1 && (a[1] == purgeDelScript.Hash()) {
			if h.calls.Add(1) > h.n {
				return errors.New("crashed")
			}
		}
		return next(ctx, cmd)
	}
}

func TestPurgeResumesAfterACrash(t *testing.T) {
	ctx := context.Background()
	// The reference: the same data purged without a crash.
	ref := newPurgeEnv(t, redistest.Client(t))
	want, err := newPurgeService(ref, NewPurge(ref.rdb, PurgeOptions{Reports: ref.reports})).Purge(ctx, victim)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []int64{0, 1, 3, 7, 12} {
		t.Run(fmt.Sprint("after ", k), func(t *testing.T) {
			rdb := redistest.Client(t)
			e := newPurgeEnv(t, rdb)
			head, err := NewAudit(rdb).Head(ctx, victim)
			if err != nil {
				t.Fatal(err)
			}
			// A second client on the same database that crashes after k deletions.
			opts := rdb.(*redis.Client).Options()
			crashing := redis.NewClient(opts)
			t.Cleanup(func() { crashing.Close() })
			crashing.AddHook(&failAfter{n: k})
			_, err = newPurgeService(e, NewPurge(crashing, PurgeOptions{Reports: e.reports, Batch: 1})).Purge(ctx, victim)
			if err == nil {
				t.Fatal("the crashing purge succeeded")
			}
			// The tenant is still due, so the job would pick it up: run it again.
			due, _ := NewPurge(rdb, PurgeOptions{}).Due(ctx, e.clock.Now(), 10)
			if !cmp.Equal(due, []string{victim}) {
				t.Errorf("after the crash Due = %v, want the tenant", due)
			}
			got, err := newPurgeService(e, NewPurge(rdb, PurgeOptions{Reports: e.reports, Batch: 1})).Purge(ctx, victim)
			if err != nil {
				t.Fatalf("resumed Purge: %v", err)
			}
			if diff := cmp.Diff(want.Tombstone.Counts, got.Tombstone.Counts); diff != "" {
				t.Errorf("tombstone counts after a crash differ from a clean purge (-clean +resumed):\n%s", diff)
			}
			if h := (lifecycle.Head{Seq: head.Seq, Hash: head.Hash}); got.Tombstone.FinalAuditHead != h {
				t.Errorf("head %+v, want %+v", got.Tombstone.FinalAuditHead, h)
			}
			if left := leftovers(dumpAll(t, rdb), victim); len(left) > 0 {
				t.Errorf("left after the resumed purge: %v", left)
			}
		})
	}
}

func TestPurgeJobRunsOnceAcrossReplicas(t *testing.T) {
	ctx := context.Background()
	rdb := redistest.Client(t)
	e := newPurgeEnv(t, rdb)
	p := NewPurge(rdb, PurgeOptions{Reports: e.reports})
	svc := newPurgeService(e, p)
	// Uninstall marks the tenant for deletion 30 days on; a reinstall unmarks it.
	if err := svc.MarkForDeletion(ctx, victim, e.clock.Now().Add(30*24*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := svc.MarkForDeletion(ctx, bystander, e.clock.Now().Add(24*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := svc.Unmark(ctx, bystander); err != nil {
		t.Fatal(err)
	}
	jobs := []*lifecycle.Job{
		lifecycle.NewJob(svc, p, lifecycle.JobOptions{Now: e.clock.Now}),
		lifecycle.NewJob(newPurgeService(e, NewPurge(rdb, PurgeOptions{Reports: e.reports})), NewPurge(rdb, PurgeOptions{}), lifecycle.JobOptions{Now: e.clock.Now}),
	}
	run := func() int {
		var wg sync.WaitGroup
		var total atomic.Int64
		for _, j := range jobs {
			wg.Go(func() {
				n, err := j.RunOnce(ctx)
				if err != nil {
					t.Errorf("RunOnce: %v", err)
				}
				total.Add(int64(n))
			})
		}
		wg.Wait()
		return int(total.Load())
	}
	e.clock.Advance(29 * 24 * time.Hour)
	if n := run(); n != 0 {
		t.Fatalf("within retention the jobs purged %d tenants", n)
	}
	if st, err := svc.Describe(ctx, victim); err != nil || st.State != "installed" || st.MarkedFor == nil || st.Held["reports"] == 0 {
		t.Errorf("within retention Describe = %+v, %v", st, err)
	}
	e.clock.Advance(2 * 24 * time.Hour)
	if n := run(); n != 1 {
		t.Fatalf("past retention the two jobs purged %d times, want 1", n)
	}
	if n := run(); n != 0 {
		t.Fatalf("a later run purged %d more", n)
	}
	ts, ok, err := p.Tombstone(ctx, victim)
	if err != nil || !ok || ts.Runs != 1 {
		t.Errorf("tombstone = %+v, %v, %v; want one run", ts, ok, err)
	}
	all := dumpAll(t, rdb)
	if left := leftovers(all, victim); len(left) > 0 {
		t.Errorf("left after retention: %v", left)
	}
	if len(only(all, bystander)) == 0 {
		t.Error("the unmarked tenant was purged")
	}
	if _, err := os.Stat(filepath.Join(e.logDir, victim)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("past retention the tenant's logs are still there: %v", err)
	}
	if _, err := os.Stat(filepath.Join(e.logDir, bystander)); err != nil {
		t.Errorf("the unmarked tenant's logs went: %v", err)
	}
}

func TestPurgeRefusesAStaleFence(t *testing.T) {
	ctx := context.Background()
	rdb := redistest.Client(t)
	e := newPurgeEnv(t, rdb)
	p := NewPurge(rdb, PurgeOptions{Reports: e.reports})
	old, _ := p.NextFence(ctx)
	newer, _ := p.NextFence(ctx)
	if err := p.PurgeRecords(ctx, victim, newer, e.clock.Now()); err != nil {
		t.Fatal(err)
	}
	if err := p.PurgeRecords(ctx, victim, old, e.clock.Now()); !errors.Is(err, lifecycle.ErrSuperseded) {
		t.Errorf("a purge with an older token = %v, want ErrSuperseded", err)
	}
	if _, err := p.Finish(ctx, victim, newer, e.clock.Now()); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Finish(ctx, victim, old, e.clock.Now()); err != nil {
		t.Errorf("Finish after another finished = %v, want the tombstone", err)
	}
	if err := p.AddCount(ctx, victim, old, "x", 1); !errors.Is(err, lifecycle.ErrSuperseded) {
		t.Errorf("a stale write after the tombstone = %v, want ErrSuperseded", err)
	}
}

func TestLeaseHandsOutIncreasingFences(t *testing.T) {
	ctx := context.Background()
	p := NewPurge(redistest.Client(t), PurgeOptions{})
	f1, ok, err := p.Acquire(ctx, "a", time.Minute)
	if err != nil || !ok {
		t.Fatal(ok, err)
	}
	if _, ok, _ := p.Acquire(ctx, "b", time.Minute); ok {
		t.Error("b took a lease a holds")
	}
	if f, ok, _ := p.Acquire(ctx, "a", time.Minute); !ok || f != f1 {
		t.Errorf("renewal = %d, %v; want %d", f, ok, f1)
	}
	if err := p.Release(ctx, "b"); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := p.Acquire(ctx, "b", time.Minute); ok {
		t.Error("b's release freed a's lease")
	}
	p.Release(ctx, "a")
	if f2, ok, _ := p.Acquire(ctx, "b", time.Minute); !ok || f2 <= f1 {
		t.Errorf("next holder's fence = %d, want above %d", f2, f1)
	}
}

// TestPurgeOnMiniredis: dev mode runs on the embedded miniredis, whose Lua and commands
// must carry the purge too.
func TestPurgeOnMiniredis(t *testing.T) {
	m := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: m.Addr()})
	t.Cleanup(func() { rdb.Close() })
	e := newPurgeEnv(t, rdb)
	p := NewPurge(rdb, PurgeOptions{Reports: e.reports})
	svc := newPurgeService(e, p)
	if err := svc.MarkForDeletion(context.Background(), victim, e.clock.Now()); err != nil {
		t.Fatal(err)
	}
	n, err := lifecycle.NewJob(svc, p, lifecycle.JobOptions{Now: e.clock.Now}).RunOnce(context.Background())
	if err != nil || n != 1 {
		t.Fatalf("RunOnce = %d, %v", n, err)
	}
	if left := leftovers(dumpAll(t, rdb), victim); len(left) > 0 {
		t.Errorf("left on miniredis: %v", left)
	}
}

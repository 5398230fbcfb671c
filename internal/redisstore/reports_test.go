package redisstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/google/go-cmp/cmp"
	"github.com/redis/go-redis/v9"

	"github.com/supportbridge/supportbridge/internal/redisstore/redistest"
	"github.com/supportbridge/supportbridge/internal/report"
	"github.com/supportbridge/supportbridge/internal/seal"
	"github.com/supportbridge/supportbridge/internal/secret"
)

const (
	tenantA = "jira:7d8e0f6a-tenant-a"
	tenantB = "jira:2b1c9e44-tenant-b"
)

// fakeClock is a clock tests move by hand.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// newReports returns a store on a fresh database; staged forces the staged Enqueue that
// Redis Cluster needs, otherwise Enqueue takes the one-step script.
func newReports(t *testing.T, staged bool) (*Reports, redis.UniversalClient, *fakeClock) {
	t.Helper()
	rdb := redistest.Client(t)
	clock := &fakeClock{t: time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)}
	return sameStore(rdb, clock, staged), rdb, clock
}

// sameStore returns another store on rdb configured like newReports', as another replica
// (perhaps on the other Enqueue path) would be.
func sameStore(rdb redis.UniversalClient, clock *fakeClock, staged bool) *Reports {
	return NewReports(rdb, ReportsOptions{Now: clock.Now, CustomerKey: []byte("test-customer-key-0123456789abcd"), Staged: staged})
}

// bothPaths runs test once with the one-step Enqueue of a single server and once with the
// staged Enqueue of Redis Cluster: every guarantee holds on both.
func bothPaths(t *testing.T, test func(t *testing.T, staged bool)) {
	t.Run("one-step", func(t *testing.T) { test(t, false) })
	t.Run("staged", func(t *testing.T) { test(t, true) })
}

// submission builds a report of user in tenant with the given attachment contents.
func submission(tenantKey, user, idemKey string, files ...string) report.Submission {
	s := report.Submission{
		Report: report.Report{
			ID: report.NewID(), Marker: report.NewMarker(),
			TenantKey: tenantKey, AccountID: user, EmailHint: user + "@customer.example", Summary: "Export fails",
		},
		IdempotencyKey: idemKey, Subject: user,
		BodyHash: "hash-of-" + idemKey,
	}
	for i, f := range files {
		s.Attachments = append(s.Attachments, report.Attachment{
			AttachmentMeta: report.AttachmentMeta{ID: fmt.Sprintf("f%d", i+1), Filename: fmt.Sprintf("shot%d.png", i+1), MediaType: "image/png"},
			Content:        []byte(f),
		})
	}
	return s
}

var noLimits = report.Limits{}

// snapshot renders every key of the database with its content, to prove that a refusal
// wrote nothing.
func snapshot(t *testing.T, rdb redis.UniversalClient) map[string]string {
	t.Helper()
	ctx := context.Background()
	keys, err := rdb.Keys(ctx, "*").Result()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, k := range keys {
		typ := rdb.Type(ctx, k).Val()
		var v any
		switch typ {
		case "string":
			v = rdb.Get(ctx, k).Val()
		case "hash":
			v = rdb.HGetAll(ctx, k).Val()
		case "zset":
			v = rdb.ZRangeWithScores(ctx, k, 0, -1).Val()
		case "stream":
			v = rdb.XRange(ctx, k, "-", "+").Val()
		default:
			v = "?"
		}
		out[k] = fmt.Sprintf("%s %v", typ, v)
	}
	return out
}

func reportKeys(t *testing.T, rdb redis.UniversalClient) []string {
	t.Helper()
	keys, err := rdb.Keys(context.Background(), "sb:*:report:*").Result()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, k := range keys {
		if !strings.HasSuffix(k, ":files") {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}

func xlen(t *testing.T, s *Reports) int64 {
	t.Helper()
	n, err := s.QueueLength(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func storedBytes(t *testing.T, s *Reports, rdb redis.UniversalClient) int64 {
	t.Helper()
	n, err := rdb.Get(context.Background(), s.bytesKey()).Int64()
	if err != nil && !errors.Is(err, redis.Nil) {
		t.Fatal(err)
	}
	return n
}

func mustEnqueue(t *testing.T, s *Reports, sub report.Submission, lim report.Limits) string {
	t.Helper()
	id, replayed, err := s.Enqueue(context.Background(), sub, lim)
	if err != nil || replayed {
		t.Fatalf("Enqueue = %q, %v, %v; want a new report", id, replayed, err)
	}
	return id
}

func TestEnqueueStoresReportAttachmentsAndQueuesIt(t *testing.T) {
	bothPaths(t, func(t *testing.T, staged bool) {
		s, rdb, clock := newReports(t, staged)
		ctx := context.Background()
		id := mustEnqueue(t, s, submission(tenantA, "u1", "", "png-bytes-1", "png-bytes-22"), noLimits)

		st, err := s.Status(ctx, tenantA, id)
		if err != nil {
			t.Fatal(err)
		}
		want := report.Status{ID: id, State: report.StateQueued, CreatedAt: clock.Now(), UpdatedAt: clock.Now()}
		if diff := cmp.Diff(st, want); diff != "" {
			t.Errorf("Status (-got +want):\n%s", diff)
		}
		if got := xlen(t, s); got != 1 {
			t.Errorf("queue length = %d, want 1", got)
		}
		if got := storedBytes(t, s, rdb); got != int64(len("png-bytes-1")+len("png-bytes-22")) {
			t.Errorf("stored bytes = %d", got)
		}
		for k := range snapshot(t, rdb) {
			if strings.Contains(k, "@") || strings.Contains(k, "u1") {
				t.Errorf("key %q carries personal data", k)
			}
			if strings.Contains(k, ":report:") && !strings.Contains(k, tenantTag(tenantA)) {
				t.Errorf("report key %q lacks the tenant hash tag", k)
			}
		}
		b, err := s.Attachment(ctx, tenantA, id, "f2")
		if err != nil || string(b) != "png-bytes-22" {
			t.Errorf("Attachment = %q, %v", b, err)
		}
	})
}

// TestOneStepEnqueueResentAfterALostAnswerSucceedsOnce is what go-redis does when a
// connection breaks after the script ran: it sends the same call again. The second run finds
// the report stored and answers success without a second queue entry or count.
//
// The report is the last the limits allow, so the resent call must not count it against
// itself: it is answered before the checks.
func TestOneStepEnqueueResentAfterALostAnswerSucceedsOnce(t *testing.T) {
	s, rdb, _ := newReports(t, false)
	resendSucceedsOnce(t, s, rdb, 2) // the whole one-step call is the script
}

// TestStageResentAfterALostAnswerIsStaged is the same for the staged path's stage script,
// resent on its own as go-redis would.
func TestStageResentAfterALostAnswerIsStaged(t *testing.T) {
	s, rdb, _ := newReports(t, true)
	// Loaded first, so that the hook sees the EVALSHA that runs it (not a NOSCRIPT miss).
	if err := stageScript.Load(context.Background(), rdb).Err(); err != nil {
		t.Fatal(err)
	}
	hook := &resendHook{script: stageScript.Hash()}
	rdb.(*redis.Client).AddHook(hook)
	resendSucceedsOnce(t, s, rdb, 1)
	if hook.resent.Load() == 0 {
		t.Fatal("the stage script was never resent")
	}
}

// errTestCrash is what Enqueue returns when crashAt makes it stop half-way.
var errTestCrash = errors.New("redisstore test: simulated crash")

// crashAt makes the next Enqueue on rdb stop dead after the named step, as a replica that
// crashed there would: after "admit" the stage script is never sent; after "stage" it runs
// and its answer is lost. It fires once.
func crashAt(rdb redis.UniversalClient, step string) {
	rdb.AddHook(&crashHook{script: stageScript.Hash(), runFirst: step == "stage"})
}

type crashHook struct {
	script   string
	runFirst bool
	fired    atomic.Bool
}

func (*crashHook) DialHook(next redis.DialHook) redis.DialHook { return next }
func (*crashHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}
func (h *crashHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		args := cmd.Args()
		if cmd.Name() != "evalsha" || len(args) < 2 || args[1] != h.script || !h.fired.CompareAndSwap(false, true) {
			return next(ctx, cmd)
		}
		if h.runFirst {
			if err := next(ctx, cmd); err != nil {
				return err
			}
		}
		cmd.SetErr(errTestCrash)
		return errTestCrash
	}
}

// resendHook runs each call of one script twice, answering the second run, as a client does
// that resends a command whose first answer was lost.
type resendHook struct {
	script string
	resent atomic.Int64
}

func (*resendHook) DialHook(next redis.DialHook) redis.DialHook { return next }
func (*resendHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}
func (h *resendHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		args := cmd.Args()
		if cmd.Name() == "evalsha" && len(args) > 1 && args[1] == h.script && h.resent.Add(1) == 1 {
			if err := next(ctx, cmd); err != nil {
				return err
			}
		}
		return next(ctx, cmd)
	}
}

// resendSucceedsOnce enqueues one report calls times (each a resend of the last) under
// limits that admit exactly one, and checks it is stored and counted once.
func resendSucceedsOnce(t *testing.T, s *Reports, rdb redis.UniversalClient, calls int) {
	t.Helper()
	sub := submission(tenantA, "u1", "", "png-bytes")
	sub.Report.ID = report.NewID()
	sub.Report.Marker = report.NewMarker()
	lim := report.Limits{PerUser: 1, PerTenant: 1, Window: time.Hour, MaxQueueLength: 1, MaxAttachmentBytes: int64(len("png-bytes"))}
	for range calls {
		id, replayed, err := s.Enqueue(context.Background(), sub, lim)
		if err != nil || id != sub.Report.ID || replayed {
			t.Fatalf("Enqueue = %q, %v, %v; want %q stored", id, replayed, err, sub.Report.ID)
		}
	}
	if got := xlen(t, s); got != 1 {
		t.Errorf("queue length = %d, want 1", got)
	}
	if got := storedBytes(t, s, rdb); got != int64(len("png-bytes")) {
		t.Errorf("stored bytes = %d, counted twice?", got)
	}
}

func TestStatusIsPerTenant(t *testing.T) {
	bothPaths(t, func(t *testing.T, staged bool) {
		s, _, _ := newReports(t, staged)
		id := mustEnqueue(t, s, submission(tenantA, "u1", ""), noLimits)
		for _, tc := range []struct{ tenant, id string }{
			{tenantB, id}, {tenantA, "no-such-report"}, {tenantA, "../" + id},
		} {
			if _, err := s.Status(context.Background(), tc.tenant, tc.id); !errors.Is(err, report.ErrNotFound) {
				t.Errorf("Status(%s, %s) error = %v, want ErrNotFound", tc.tenant, tc.id, err)
			}
		}
	})
}

func TestIdempotencyKey(t *testing.T) {
	bothPaths(t, func(t *testing.T, staged bool) {
		s, rdb, _ := newReports(t, staged)
		ctx := context.Background()
		first := mustEnqueue(t, s, submission(tenantA, "u1", "key-1"), noLimits)

		id, replayed, err := s.Enqueue(ctx, submission(tenantA, "u1", "key-1"), noLimits)
		if err != nil || !replayed || id != first {
			t.Errorf("repeat = %q, %v, %v; want %q replayed", id, replayed, err, first)
		}
		// The same key in another tenant is another key.
		if _, replayed, err := s.Enqueue(ctx, submission(tenantB, "u1", "key-1"), noLimits); err != nil || replayed {
			t.Errorf("other tenant: replayed = %v, err = %v", replayed, err)
		}

		before := snapshot(t, rdb)
		other := submission(tenantA, "u1", "key-1")
		other.BodyHash = "another-body"
		if _, _, err := s.Enqueue(ctx, other, noLimits); !errors.Is(err, report.ErrIdempotencyMismatch) {
			t.Errorf("different body: error = %v, want ErrIdempotencyMismatch", err)
		}
		if diff := cmp.Diff(snapshot(t, rdb), before); diff != "" {
			t.Errorf("mismatch wrote (-after +before):\n%s", diff)
		}
		if got := xlen(t, s); got != 2 {
			t.Errorf("queue length = %d, want 2", got)
		}
	})
}

// An Idempotency-Key is chosen by the user's app, so it names a request of that user only:
// another user of the tenant who sends the same key has filed a report of their own, which
// must be stored and queued, not answered with the first user's id and dropped.
func TestIdempotencyKeyIsPerUser(t *testing.T) {
	bothPaths(t, func(t *testing.T, staged bool) {
		s, _, _ := newReports(t, staged)
		ctx := context.Background()
		first := mustEnqueue(t, s, submission(tenantA, "u1", "key-1"), noLimits)
		second, replayed, err := s.Enqueue(ctx, submission(tenantA, "u2", "key-1"), noLimits)
		if err != nil || replayed || second == "" || second == first {
			t.Fatalf("other user, same key = %q, %v, %v; want a report of its own (first is %q)", second, replayed, err, first)
		}
		for _, c := range []struct{ user, want string }{{"u1", first}, {"u2", second}} {
			id, replayed, err := s.Enqueue(ctx, submission(tenantA, c.user, "key-1"), noLimits)
			if err != nil || !replayed || id != c.want {
				t.Errorf("%s repeats = %q, %v, %v; want %q replayed", c.user, id, replayed, err, c.want)
			}
		}
		if got := xlen(t, s); got != 2 {
			t.Errorf("queue length = %d, want 2", got)
		}
		for _, id := range []string{first, second} {
			if st, err := s.Status(ctx, tenantA, id); err != nil || st.State != report.StateQueued {
				t.Errorf("Status(%s) = %+v, %v; want queued", id, st, err)
			}
		}
		// While the queue is full a repeat is still answered, and only with the user's own report.
		full := report.Limits{MaxQueueLength: 1}
		if id, replayed, err := s.Enqueue(ctx, submission(tenantA, "u2", "key-1"), full); err != nil || !replayed || id != second {
			t.Errorf("u2 repeats while full = %q, %v, %v; want %q replayed", id, replayed, err, second)
		}
		var over *report.OverloadedError
		if id, _, err := s.Enqueue(ctx, submission(tenantA, "u3", "key-1"), full); !errors.As(err, &over) {
			t.Errorf("u3 while full = %q, %v; want OverloadedError, not another user's report", id, err)
		}
	})
}

// Only the staged path can stop half-way; the repeat meets it on either path (replicas of a
// rolling upgrade, or a Cluster-to-single-node move, may differ).
func TestIdempotencyKeyWhileFirstIsStillBeingStored(t *testing.T) {
	bothPaths(t, func(t *testing.T, staged bool) {
		crashed, rdb, clock := newReports(t, true)
		crashAt(rdb, "stage") // the first request is staged, not yet on the stream
		if _, _, err := crashed.Enqueue(context.Background(), submission(tenantA, "u1", "key-1"), noLimits); !errors.Is(err, errTestCrash) {
			t.Fatalf("first Enqueue error = %v", err)
		}
		s := sameStore(rdb, clock, staged)
		for _, lim := range []report.Limits{noLimits, {MaxQueueLength: 1, MaxAttachmentBytes: 1}} {
			if _, _, err := s.Enqueue(context.Background(), submission(tenantA, "u1", "key-1", "file"), lim); !errors.Is(err, report.ErrIdempotencyInFlight) {
				t.Errorf("repeat with %+v: error = %v, want ErrIdempotencyInFlight", lim, err)
			}
		}
	})
}

func TestConcurrentDuplicatesStoreOneReport(t *testing.T) {
	bothPaths(t, func(t *testing.T, staged bool) {
		s, rdb, _ := newReports(t, staged)
		const n = 32
		var (
			wg       sync.WaitGroup
			mu       sync.Mutex
			ids      = map[string]int{}
			fresh    int
			inFlight int
		)
		for range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				id, replayed, err := s.Enqueue(context.Background(), submission(tenantA, "u1", "same-key", "file"), noLimits)
				mu.Lock()
				defer mu.Unlock()
				switch {
				case errors.Is(err, report.ErrIdempotencyInFlight):
					inFlight++
				case err != nil:
					t.Errorf("Enqueue: %v", err)
				default:
					ids[id]++
					if !replayed {
						fresh++
					}
				}
			}()
		}
		wg.Wait()
		if len(ids) != 1 || fresh != 1 {
			t.Errorf("ids = %v, new = %d; want one id, stored once", ids, fresh)
		}
		if got := reportKeys(t, rdb); len(got) != 1 {
			t.Errorf("stored reports = %v, want one", got)
		}
		if got := xlen(t, s); got != 1 {
			t.Errorf("queue length = %d, want 1", got)
		}
		t.Logf("replayed %d, in flight %d", n-fresh-inFlight, inFlight)
	})
}

func TestRateLimits(t *testing.T) {
	bothPaths(t, func(t *testing.T, staged bool) {
		for _, tc := range []struct {
			name   string
			limits report.Limits
			// users of the three submissions; the third is refused
			users [3]string
			scope string
		}{
			{"per user", report.Limits{PerUser: 2, Window: time.Minute}, [3]string{"u1", "u1", "u1"}, "user"},
			{"per tenant", report.Limits{PerUser: 5, PerTenant: 2, Window: time.Minute}, [3]string{"u1", "u2", "u3"}, "tenant"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				s, rdb, clock := newReports(t, staged)
				ctx := context.Background()
				mustEnqueue(t, s, submission(tenantA, tc.users[0], "", "x"), tc.limits)
				clock.Advance(10 * time.Second)
				mustEnqueue(t, s, submission(tenantA, tc.users[1], "", "x"), tc.limits)

				before := snapshot(t, rdb)
				_, _, err := s.Enqueue(ctx, submission(tenantA, tc.users[2], "k", "x"), tc.limits)
				var rl *report.RateLimitedError
				if !errors.As(err, &rl) || rl.Scope != tc.scope {
					t.Fatalf("third Enqueue error = %v, want RateLimitedError(%s)", err, tc.scope)
				}
				// GCRA, 2 a minute: one report every 30s after a burst of two. The burst
				// moved the TAT to 0s+30s+30s = 60s; a third fits once the TAT is at most a
				// window ahead, at 30s: 20s from now.
				if rl.RetryAfter != 20*time.Second {
					t.Errorf("RetryAfter = %v, want 20s", rl.RetryAfter)
				}
				if diff := cmp.Diff(snapshot(t, rdb), before); diff != "" {
					t.Errorf("refusal wrote (-after +before):\n%s", diff)
				}
				// Another tenant has its own budget.
				mustEnqueue(t, s, submission(tenantB, tc.users[2], "", "x"), tc.limits)

				clock.Advance(20 * time.Second)
				mustEnqueue(t, s, submission(tenantA, tc.users[2], "k", "x"), tc.limits)
			})
		}
	})
}

func TestBackpressureRefusalsWriteNothing(t *testing.T) {
	bothPaths(t, func(t *testing.T, staged bool) {
		for _, tc := range []struct {
			name     string
			limits   report.Limits
			files    []string
			resource string
		}{
			{"queue full", report.Limits{MaxQueueLength: 2}, nil, "queue"},
			{"attachment bytes", report.Limits{MaxAttachmentBytes: 25}, []string{"0123456789"}, "attachments"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				s, rdb, _ := newReports(t, staged)
				ctx := context.Background()
				first := mustEnqueue(t, s, submission(tenantA, "u1", "key-1", tc.files...), tc.limits)
				mustEnqueue(t, s, submission(tenantA, "u2", "", tc.files...), tc.limits)

				before := snapshot(t, rdb)
				_, _, err := s.Enqueue(ctx, submission(tenantA, "u3", "key-3", tc.files...), tc.limits)
				var over *report.OverloadedError
				if !errors.As(err, &over) || over.Resource != tc.resource || over.RetryAfter <= 0 {
					t.Fatalf("Enqueue error = %v, want OverloadedError(%s) with RetryAfter", err, tc.resource)
				}
				if diff := cmp.Diff(snapshot(t, rdb), before); diff != "" {
					t.Errorf("refusal wrote (-after +before):\n%s", diff)
				}
				// A repeat of an accepted request is still answered: it adds nothing.
				id, replayed, err := s.Enqueue(ctx, submission(tenantA, "u1", "key-1", tc.files...), tc.limits)
				if err != nil || !replayed || id != first {
					t.Errorf("replay while overloaded = %q, %v, %v", id, replayed, err)
				}
			})
		}
	})
}

// Caps hold exactly under concurrency: admit only reads, publish re-checks atomically with
// XADD, and what publish refuses is undone.
func TestBackpressureIsExactUnderConcurrency(t *testing.T) {
	bothPaths(t, func(t *testing.T, staged bool) {
		s, rdb, clock := newReports(t, staged)
		lim := report.Limits{MaxQueueLength: 5, PerTenant: 100, Window: time.Hour}
		var wg sync.WaitGroup
		var mu sync.Mutex
		accepted, refused := 0, 0
		for i := range 40 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, _, err := s.Enqueue(context.Background(), submission(tenantA, fmt.Sprintf("u%d", i), fmt.Sprintf("k%d", i), "abc"), lim)
				mu.Lock()
				defer mu.Unlock()
				var over *report.OverloadedError
				switch {
				case err == nil:
					accepted++
				case errors.As(err, &over):
					refused++
				default:
					t.Errorf("Enqueue: %v", err)
				}
			}()
		}
		wg.Wait()
		if accepted != 5 || refused != 35 {
			t.Errorf("accepted %d, refused %d; want 5 and 35", accepted, refused)
		}
		if got := len(reportKeys(t, rdb)); got != 5 {
			t.Errorf("stored reports = %d, want 5", got)
		}
		ctx := context.Background()
		if n := rdb.ZCard(ctx, s.intentsKey()).Val(); n != 0 {
			t.Errorf("%d intents left", n)
		}
		// Five counted (36s each at 100 an hour); those refused after staging gave theirs back.
		if got, want := rdb.Get(ctx, rateTenantKey(tenantA)).Val(), tatString(clock.Now().Add(5*36*time.Second)); got != want {
			t.Errorf("tenant TAT = %s, want %s (five reports)", got, want)
		}
		if n := len(rdb.Keys(ctx, "sb:*:idem:*").Val()); n != 5 {
			t.Errorf("%d idempotency records, want 5", n)
		}
		if got := storedBytes(t, s, rdb); got != 15 {
			t.Errorf("stored bytes = %d, want 15", got)
		}
	})
}

func TestRecoverPublishesWhatACrashLeftStaged(t *testing.T) {
	bothPaths(t, testRecoverPublishesWhatACrashLeftStaged)
}

// testRecoverPublishesWhatACrashLeftStaged crashes the staged path (the only one that can
// stop half-way) and retries on the path under test.
func testRecoverPublishesWhatACrashLeftStaged(t *testing.T, staged bool) {
	s, rdb, clock := newReports(t, true)
	retrier := sameStore(rdb, clock, staged)
	ctx := context.Background()
	crashAt(rdb, "stage")
	_, _, err := s.Enqueue(ctx, submission(tenantA, "u1", "key-1", "abc"), noLimits)
	if !errors.Is(err, errTestCrash) {
		t.Fatal(err)
	}
	crashAt(rdb, "admit")
	if _, _, err := s.Enqueue(ctx, submission(tenantA, "u2", "key-2"), noLimits); !errors.Is(err, errTestCrash) {
		t.Fatal(err)
	}
	if got := xlen(t, s); got != 0 {
		t.Fatalf("queue length = %d before recovery", got)
	}
	if n, err := s.Recover(ctx, time.Minute); err != nil || n != 0 {
		t.Errorf("early Recover = %d, %v; want nothing (the enqueue may still be running)", n, err)
	}
	clock.Advance(2 * time.Minute)
	if n, err := s.Recover(ctx, time.Minute); err != nil || n != 2 {
		t.Errorf("Recover = %d, %v; want 2 settled", n, err)
	}
	if got := xlen(t, s); got != 1 {
		t.Errorf("queue length = %d, want the staged report published", got)
	}
	if n := rdb.ZCard(ctx, s.intentsKey()).Val(); n != 0 {
		t.Errorf("%d intents left", n)
	}
	if got := storedBytes(t, s, rdb); got != 3 {
		t.Errorf("stored bytes = %d, want 3", got)
	}
	// The client's retry with its key now gets the recovered report.
	id, replayed, err := retrier.Enqueue(ctx, submission(tenantA, "u1", "key-1", "abc"), noLimits)
	if err != nil || !replayed {
		t.Errorf("retry after recovery = %q, %v, %v; want a replay", id, replayed, err)
	}
	// The report that never got staged left nothing behind: its retry is new.
	if _, replayed, err := retrier.Enqueue(ctx, submission(tenantA, "u2", "key-2"), noLimits); err != nil || replayed {
		t.Errorf("retry of unstaged = %v, %v; want new", replayed, err)
	}
}

// take reads the next entry as consumer and begins it.
func take(t *testing.T, s *Reports, consumer string) report.Delivery {
	t.Helper()
	ctx := context.Background()
	jobs, err := s.Read(ctx, consumer, 1, 0)
	if err != nil || len(jobs) != 1 {
		t.Fatalf("Read = %v, %v", jobs, err)
	}
	d, err := s.Begin(ctx, jobs[0])
	if err != nil {
		t.Fatalf("Begin: %v", err)
	}
	return d
}

func TestDeliveryLifecycle(t *testing.T) {
	bothPaths(t, func(t *testing.T, staged bool) {
		s, rdb, clock := newReports(t, staged)
		ctx := context.Background()
		if err := s.EnsureGroup(ctx); err != nil {
			t.Fatal(err)
		}
		if err := s.EnsureGroup(ctx); err != nil {
			t.Fatalf("second EnsureGroup: %v", err)
		}
		id := mustEnqueue(t, s, submission(tenantA, "u1", "", "abc", "defg"), noLimits)

		d := take(t, s, "w1")
		if d.ReportID != id || d.TenantKey != tenantA || d.Report.EmailHint != "u1@customer.example" || d.Fence != 1 || d.Tries != 1 {
			t.Fatalf("Begin = %+v", d)
		}
		if st, _ := s.Status(ctx, tenantA, id); st.State != report.StateDelivering {
			t.Errorf("state = %s, want delivering", st.State)
		}
		clock.Advance(time.Second)
		rec := report.StepRecord{AccountID: "qm:acc", Pending: []string{"create"}}
		if tries, err := s.Record(ctx, d.Job, d.Fence, rec); err != nil || tries != 0 {
			t.Fatalf("Record = %d, %v; want 0 tries after a new step", tries, err)
		}
		if tries, err := s.Attempt(ctx, d.Job, d.Fence); err != nil || tries != 1 {
			t.Errorf("Attempt = %d, %v; want 1 (the customer step reset the tries)", tries, err)
		}

		// w1 goes quiet; w2 claims the entry and resumes from the records. (A minimum idle
		// time of zero claims it at once: the test does not wait on Redis' clock.)
		jobs, err := s.Claim(ctx, "w2", 0, 10)
		if err != nil || len(jobs) != 1 || jobs[0].ReportID != id {
			t.Fatalf("Claim = %v, %v", jobs, err)
		}
		d2, err := s.Begin(ctx, jobs[0])
		if err != nil {
			t.Fatal(err)
		}
		want := report.Progress{
			AccountID: "qm:acc", Uploads: map[string]report.Upload{}, Done: map[string]bool{},
			Pending: map[string]time.Time{"create": clock.Now()},
		}
		if diff := cmp.Diff(d2.Progress, want); diff != "" {
			t.Errorf("resumed progress (-got +want):\n%s", diff)
		}
		if d2.Fence != 2 || d2.Attempts != 3 {
			t.Errorf("fence %d attempts %d, want 2 and 3", d2.Fence, d2.Attempts)
		}
		if _, err := s.Record(ctx, d.Job, d.Fence, report.StepRecord{TicketKey: "SUP-9"}); !errors.Is(err, report.ErrSuperseded) {
			t.Errorf("Record with the old fence: %v, want ErrSuperseded", err)
		}
		if ok, err := s.Touch(ctx, "w1", d.Job); err != nil || ok {
			t.Errorf("Touch by the old owner = %v, %v; want false", ok, err)
		}
		if ok, err := s.Touch(ctx, "w2", d2.Job); err != nil || !ok {
			t.Errorf("Touch by the owner = %v, %v; want true", ok, err)
		}

		_, err = s.Record(ctx, d2.Job, d2.Fence, report.StepRecord{
			TicketKey: "SUP-1", TicketURL: "https://desk.example/SUP-1", Settled: []string{"create"},
			Uploads: map[string]report.Upload{"f1": {TempID: "temp1", At: clock.Now()}}, Done: []string{"attach:f1"},
		})
		if err != nil {
			t.Fatal(err)
		}
		if st, _ := s.Status(ctx, tenantA, id); st.TicketKey != "SUP-1" {
			t.Errorf("status ticket = %q once created", st.TicketKey)
		}
		if err := s.Delivered(ctx, d2.Job, d2.Fence); err != nil {
			t.Fatal(err)
		}
		st, err := s.Status(ctx, tenantA, id)
		if err != nil || st.State != report.StateDelivered || st.TicketKey != "SUP-1" || st.TicketURL != "https://desk.example/SUP-1" {
			t.Errorf("Status = %+v, %v", st, err)
		}
		if got := xlen(t, s); got != 0 {
			t.Errorf("queue length = %d after delivery", got)
		}
		if got := storedBytes(t, s, rdb); got != 0 {
			t.Errorf("stored bytes = %d after delivery, want released", got)
		}
		h := rdb.HGetAll(ctx, reportKey(tenantA, id)).Val()
		for k := range h {
			if k == "json" || k == "customer" || strings.Contains(k, ":") {
				t.Errorf("delivered report keeps %q", k)
			}
		}
		if rdb.Exists(ctx, reportFilesKey(tenantA, id)).Val() != 0 {
			t.Error("attachments kept after delivery")
		}
		if ttl := rdb.PTTL(ctx, reportKey(tenantA, id)).Val(); ttl <= 0 {
			t.Errorf("delivered status TTL = %v, want an expiry", ttl)
		}
		// A late duplicate of the entry (a crash before the ack) settles without a second release.
		if _, err := s.Begin(ctx, d2.Job); !errors.Is(err, report.ErrSettled) {
			t.Errorf("Begin of a delivered report: %v, want ErrSettled", err)
		}
		if got := storedBytes(t, s, rdb); got != 0 {
			t.Errorf("stored bytes = %d after a repeated settle", got)
		}
	})
}

func TestFailedReportGoesToDeadLettersAndCanBeRetried(t *testing.T) {
	bothPaths(t, func(t *testing.T, staged bool) {
		s, rdb, _ := newReports(t, staged)
		ctx := context.Background()
		if err := s.EnsureGroup(ctx); err != nil {
			t.Fatal(err)
		}
		id := mustEnqueue(t, s, submission(tenantA, "u1", "", "abc"), noLimits)
		d := take(t, s, "w1")
		if _, err := s.Record(ctx, d.Job, d.Fence, report.StepRecord{AccountID: "qm:acc"}); err != nil {
			t.Fatal(err)
		}
		if err := s.Retry(ctx, tenantA, id); !errors.Is(err, report.ErrNotFailed) {
			t.Errorf("Retry while delivering: %v, want ErrNotFailed", err)
		}
		const reason = "jsm create request: status 400 (permanent)"
		if err := s.Failed(ctx, d.Job, d.Fence, reason); err != nil {
			t.Fatal(err)
		}
		st, _ := s.Status(ctx, tenantA, id)
		if st.State != report.StateFailed || st.Reason != reason {
			t.Errorf("Status = %+v", st)
		}
		dl, err := s.DeadLetters(ctx, 10)
		if err != nil || len(dl) != 1 || dl[0].ReportID != id || dl[0].TenantKey != tenantA || dl[0].Reason != reason {
			t.Errorf("DeadLetters = %+v, %v", dl, err)
		}
		if got := xlen(t, s); got != 0 {
			t.Errorf("queue length = %d", got)
		}
		if got := storedBytes(t, s, rdb); got != 3 {
			t.Errorf("stored bytes = %d; a failed report still holds its files", got)
		}

		if err := s.Retry(ctx, tenantB, id); !errors.Is(err, report.ErrNotFound) {
			t.Errorf("Retry by another tenant: %v", err)
		}
		if err := s.Retry(ctx, tenantA, id); err != nil {
			t.Fatal(err)
		}
		if st, _ := s.Status(ctx, tenantA, id); st.State != report.StateQueued || st.Reason != "" {
			t.Errorf("after Retry: %+v", st)
		}
		d2 := take(t, s, "w1")
		if d2.Progress.AccountID != "qm:acc" || d2.Tries != 1 {
			t.Errorf("retried delivery = %+v; want the step records kept and tries reset", d2)
		}
		if got := storedBytes(t, s, rdb); got != 3 {
			t.Errorf("stored bytes = %d after retry, want counted once", got)
		}
		// The old entry, moved to the dead letters, cannot be begun again.
		if _, err := s.Begin(ctx, d.Job); !errors.Is(err, report.ErrSettled) {
			t.Errorf("Begin of the old entry: %v, want ErrSettled", err)
		}
	})
}

// A recorded ticket is linked to the report's tenant in the same write, and recording a
// step again is no progress: the tries keep counting, so a delivery that can only repeat
// itself still runs out of attempts.
func TestRecordLinksTheTicketAndRepeatsAreNoProgress(t *testing.T) {
	bothPaths(t, func(t *testing.T, staged bool) {
		s, rdb, _ := newReports(t, staged)
		ctx := context.Background()
		if err := s.EnsureGroup(ctx); err != nil {
			t.Fatal(err)
		}
		mustEnqueue(t, s, submission(tenantA, "u1", ""), noLimits)
		d := take(t, s, "w1")
		if tries, err := s.Record(ctx, d.Job, d.Fence, report.StepRecord{AccountID: "qm:acc"}); err != nil || tries != 0 {
			t.Fatalf("Record customer = %d, %v; want 0", tries, err)
		}
		if _, err := s.Attempt(ctx, d.Job, d.Fence); err != nil {
			t.Fatal(err)
		}
		ticket := report.StepRecord{TicketKey: "SUP-7", TicketURL: "https://desk.example/SUP-7", Settled: []string{"create"}}
		if tries, err := s.Record(ctx, d.Job, d.Fence, ticket); err != nil || tries != 0 {
			t.Fatalf("Record ticket = %d, %v; want 0", tries, err)
		}
		if got, err := NewTickets(rdb).TenantOf(ctx, "SUP-7"); err != nil || got != tenantA {
			t.Errorf("TenantOf = %q, %v; want %q", got, err, tenantA)
		}
		for want := 1; want <= 3; want++ {
			if _, err := s.Attempt(ctx, d.Job, d.Fence); err != nil {
				t.Fatal(err)
			}
			// The same ticket and customer once more (an answer lost on the way back), and a
			// pending mark: none of it is a step the report did not have.
			again := ticket
			again.AccountID, again.Pending = "qm:acc", []string{"comment"}
			if tries, err := s.Record(ctx, d.Job, d.Fence, again); err != nil || tries != want {
				t.Fatalf("Record again = %d, %v; want %d tries", tries, err, want)
			}
		}
		if tries, err := s.Record(ctx, d.Job, d.Fence, report.StepRecord{Done: []string{"comment"}}); err != nil || tries != 0 {
			t.Errorf("Record of a new step = %d, %v; want 0", tries, err)
		}

		// Another tenant's report cannot record (or take over) the ticket.
		idB := mustEnqueue(t, s, submission(tenantB, "u2", ""), noLimits)
		dB := take(t, s, "w1")
		if dB.ReportID != idB {
			t.Fatalf("took %s, want %s", dB.ReportID, idB)
		}
		if _, err := s.Record(ctx, dB.Job, dB.Fence, ticket); err == nil {
			t.Error("Record of another tenant's ticket: nil error")
		}
		if st, _ := s.Status(ctx, tenantB, idB); st.TicketKey != "" {
			t.Errorf("refused record stored ticket %q", st.TicketKey)
		}
		if got, _ := NewTickets(rdb).TenantOf(ctx, "SUP-7"); got != tenantA {
			t.Errorf("ticket relinked to %q", got)
		}
	})
}

func TestBeginRemovesEntriesWithoutReport(t *testing.T) {
	s, rdb, _ := newReports(t, false)
	ctx := context.Background()
	if err := s.EnsureGroup(ctx); err != nil {
		t.Fatal(err)
	}
	for _, vals := range []map[string]any{
		{"t": tenantA, "r": "gone"},
		{"t": tenantA, "r": "not a valid id"},
		{"junk": "1"},
	} {
		rdb.XAdd(ctx, &redis.XAddArgs{Stream: s.streamKey(), Values: vals})
	}
	jobs, err := s.Read(ctx, "w1", 10, 0)
	if err != nil || len(jobs) != 3 {
		t.Fatalf("Read = %v, %v", jobs, err)
	}
	for _, j := range jobs {
		if _, err := s.Begin(ctx, j); !errors.Is(err, report.ErrSettled) {
			t.Errorf("Begin(%+v) = %v, want ErrSettled", j, err)
		}
	}
	if got := xlen(t, s); got != 0 {
		t.Errorf("queue length = %d", got)
	}
	if n := rdb.XPending(ctx, s.streamKey(), s.group).Val().Count; n != 0 {
		t.Errorf("%d entries still pending", n)
	}
}

func TestCustomerCache(t *testing.T) {
	s, rdb, _ := newReports(t, false)
	ctx := context.Background()
	if err := s.CacheCustomer(ctx, tenantA, "Dana@Customer.example", "qm:dana"); err != nil {
		t.Fatal(err)
	}
	id, ok, err := s.CachedCustomer(ctx, tenantA, "dana@customer.example")
	if err != nil || !ok || id != "qm:dana" {
		t.Errorf("CachedCustomer = %q, %v, %v", id, ok, err)
	}
	if _, ok, _ := s.CachedCustomer(ctx, tenantB, "dana@customer.example"); ok {
		t.Error("cache hit in another tenant")
	}
	keys := rdb.Keys(ctx, "*").Val()
	if len(keys) != 1 || strings.Contains(strings.ToLower(keys[0]), "dana") || !strings.Contains(keys[0], tenantTag(tenantA)) {
		t.Errorf("cache keys = %v", keys)
	}
	if ttl := rdb.PTTL(ctx, keys[0]).Val(); ttl <= 0 || ttl > 24*time.Hour {
		t.Errorf("TTL = %v", ttl)
	}
	// A different HMAC key cannot find it: the key is not a plain hash of the email.
	other := NewReports(rdb, ReportsOptions{CustomerKey: []byte("another-key")})
	if _, ok, _ := other.CachedCustomer(ctx, tenantA, "dana@customer.example"); ok {
		t.Error("cache entry found with another HMAC key")
	}
}

// ForgetCustomer drops an entry JSM refused, but not one another worker has refreshed since.
func TestForgetCustomerDropsOnlyTheRefusedAccount(t *testing.T) {
	s, _, _ := newReports(t, false)
	ctx := context.Background()
	if err := s.CacheCustomer(ctx, tenantA, "dana@customer.example", "qm:fresh"); err != nil {
		t.Fatal(err)
	}
	if err := s.ForgetCustomer(ctx, tenantA, "Dana@customer.example", "qm:stale"); err != nil {
		t.Fatal(err)
	}
	if id, ok, _ := s.CachedCustomer(ctx, tenantA, "dana@customer.example"); !ok || id != "qm:fresh" {
		t.Errorf("after forgetting another account: %q, %v; want the refreshed entry kept", id, ok)
	}
	if err := s.ForgetCustomer(ctx, tenantA, "dana@customer.example", "qm:fresh"); err != nil {
		t.Fatal(err)
	}
	if id, ok, _ := s.CachedCustomer(ctx, tenantA, "dana@customer.example"); ok {
		t.Errorf("after forgetting it: %q still cached", id)
	}
}

func TestEnqueueRejectsBadIDs(t *testing.T) {
	bothPaths(t, func(t *testing.T, staged bool) {
		s, rdb, _ := newReports(t, staged)
		sub := submission(tenantA, "u1", "")
		sub.Report.Marker = `x" OR project = OTHER`
		if _, _, err := s.Enqueue(context.Background(), sub, noLimits); err == nil {
			t.Error("a marker that could break JQL was accepted")
		}
		if keys := rdb.Keys(context.Background(), "*").Val(); len(keys) != 0 {
			t.Errorf("keys written: %v", keys)
		}
	})
}

func TestReportJSONHasNoAttachmentBytes(t *testing.T) {
	bothPaths(t, func(t *testing.T, staged bool) {
		s, rdb, _ := newReports(t, staged)
		id := mustEnqueue(t, s, submission(tenantA, "u1", "", "SECRET-CONTENT"), noLimits)
		doc := rdb.HGet(context.Background(), reportKey(tenantA, id), "json").Val()
		if bytes.Contains([]byte(doc), []byte("SECRET-CONTENT")) || !strings.Contains(doc, `"size":14`) {
			t.Errorf("report JSON = %s", doc)
		}
		if !slices.Contains(rdb.HKeys(context.Background(), reportFilesKey(tenantA, id)).Val(), "f1") {
			t.Error("attachment not stored under its id")
		}
	})
}

// TestEnqueuePathsStoreTheSame enqueues the same report on each path and compares every key
// and value written, stream entry ids aside (they are the time of the write).
func TestEnqueuePathsStoreTheSame(t *testing.T) {
	lim := report.Limits{PerUser: 5, PerTenant: 5, Window: time.Minute, MaxQueueLength: 10, MaxAttachmentBytes: 100}
	stored := map[bool]map[string]string{}
	for _, staged := range []bool{false, true} {
		s, rdb, _ := newReports(t, staged)
		sub := submission(tenantA, "u1", "key-1", "png-bytes-1", "png-bytes-22")
		sub.Report.ID, sub.Report.Marker = "r1", "m1"
		mustEnqueue(t, s, sub, lim)
		snap := snapshot(t, rdb)
		entries := rdb.XRange(context.Background(), s.streamKey(), "-", "+").Val()
		if len(entries) != 1 {
			t.Fatalf("staged=%v: %d stream entries", staged, len(entries))
		}
		for k, v := range snap {
			snap[k] = strings.ReplaceAll(v, entries[0].ID, "<entry>")
		}
		if ttl := rdb.PTTL(context.Background(), reportIndexKey("r1")).Val(); ttl < 30*24*time.Hour {
			t.Errorf("staged=%v: report index TTL = %v", staged, ttl)
		}
		stored[staged] = snap
	}
	if diff := cmp.Diff(stored[false], stored[true]); diff != "" {
		t.Errorf("stored state (-one-step +staged):\n%s", diff)
	}
}

// crossSlotHook makes the server refuse the one-step script as a sharding proxy would.
type crossSlotHook struct{ refused atomic.Int64 }

func (*crossSlotHook) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h *crossSlotHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		// The proxy refuses the one-step script however it is sent; a pipeline of nothing
		// else (how concurrent enqueues share a round trip) is refused as a whole.
		var refused error
		for _, cmd := range cmds {
			if h.refuse(cmd) {
				refused = cmd.Err()
			}
		}
		if refused != nil {
			return refused
		}
		return next(ctx, cmds)
	}
}

func (h *crossSlotHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		// Script.Run tries EVALSHA first and answers its error, other than NOSCRIPT, as is.
		if h.refuse(cmd) {
			return cmd.Err()
		}
		return next(ctx, cmd)
	}
}

func (h *crossSlotHook) refuse(cmd redis.Cmder) bool {
	args := cmd.Args()
	if cmd.Name() != "evalsha" || len(args) < 2 || args[1] != enqueueScript.Hash() {
		return false
	}
	h.refused.Add(1)
	cmd.SetErr(crossSlotError("CROSSSLOT Keys in request don't hash to the same slot"))
	return true
}

type crossSlotError string

func (e crossSlotError) Error() string { return string(e) }
func (crossSlotError) RedisError()     {}

func TestEnqueueFallsBackToStagedWhenTheServerRefusesMultiSlotScripts(t *testing.T) {
	s, rdb, _ := newReports(t, false)
	hook := &crossSlotHook{}
	rdb.(*redis.Client).AddHook(hook)
	for i := range 2 {
		id, replayed, err := s.Enqueue(context.Background(), submission(tenantA, "u1", "key-1", "abc"), noLimits)
		if err != nil || replayed != (i == 1) {
			t.Fatalf("Enqueue %d = %q, %v, %v", i, id, replayed, err)
		}
	}
	if n := hook.refused.Load(); n != 1 {
		t.Errorf("one-step script tried %d times, want once", n)
	}
	if got := xlen(t, s); got != 1 {
		t.Errorf("queue length = %d, want 1", got)
	}
	if n := rdb.ZCard(context.Background(), s.intentsKey()).Val(); n != 0 {
		t.Errorf("%d intents left", n)
	}
}

func TestClusterClientsTakeTheStagedPath(t *testing.T) {
	cluster := redis.NewClusterClient(&redis.ClusterOptions{Addrs: []string{"127.0.0.1:1"}})
	t.Cleanup(func() { cluster.Close() })
	if s := NewReports(cluster, ReportsOptions{}); !s.staged.Load() {
		t.Error("a Cluster client would run the one-step script")
	}
	single := redistest.Client(t)
	if s := NewReports(single, ReportsOptions{}); s.staged.Load() {
		t.Error("a single-server client takes the staged path")
	}
}

// TestEnqueueScriptRunsOnEmbeddedRedis runs the one-step script on miniredis, which
// `supportbridge dev` uses, because its Lua is a reimplementation, not Redis.
func TestEnqueueScriptRunsOnEmbeddedRedis(t *testing.T) {
	m := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: m.Addr()})
	t.Cleanup(func() { rdb.Close() })
	clock := &fakeClock{t: time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)}
	s := sameStore(rdb, clock, false)
	ctx := context.Background()
	lim := report.Limits{PerUser: 1, Window: time.Minute, MaxQueueLength: 10, MaxAttachmentBytes: 100}
	first := mustEnqueue(t, s, submission(tenantA, "u1", "key-1", "abc"), lim)
	if id, replayed, err := s.Enqueue(ctx, submission(tenantA, "u1", "key-1", "abc"), lim); err != nil || !replayed || id != first {
		t.Errorf("repeat = %q, %v, %v; want %q replayed", id, replayed, err, first)
	}
	var rl *report.RateLimitedError
	if _, _, err := s.Enqueue(ctx, submission(tenantA, "u1", "key-2"), lim); !errors.As(err, &rl) || rl.RetryAfter != time.Minute {
		t.Errorf("second report error = %v, want RateLimitedError after 1m", err)
	}
	if err := s.EnsureGroup(ctx); err != nil {
		t.Fatal(err)
	}
	if d := take(t, s, "w1"); d.ReportID != first || d.Report.EmailHint != "u1@customer.example" {
		t.Errorf("Begin = %+v", d)
	}
	if got := storedBytes(t, s, rdb); got != 3 {
		t.Errorf("stored bytes = %d, want 3", got)
	}
	// Without a clock (as in dev mode) the rate limits read the embedded Redis' TIME.
	dev := NewReports(rdb, ReportsOptions{})
	mustEnqueue(t, dev, submission(tenantA, "u-dev", "", "x"), lim)
	if _, _, err := dev.Enqueue(ctx, submission(tenantA, "u-dev", "", "x"), lim); !errors.As(err, &rl) {
		t.Errorf("second report without a clock: %v, want RateLimitedError", err)
	}
}

// TestCheckRateAgreesWithEnqueueAndWritesNothing: the early look refuses exactly when
// Enqueue would, with the same Retry-After, counts nothing, and lets an idempotent repeat
// through to be answered as a replay.
func TestCheckRateAgreesWithEnqueueAndWritesNothing(t *testing.T) {
	for _, tc := range []struct {
		name   string
		limits report.Limits
		users  [3]string // the third is refused
		scope  string
	}{
		{"per user", report.Limits{PerUser: 2, Window: time.Minute}, [3]string{"u1", "u1", "u1"}, "user"},
		{"per tenant", report.Limits{PerUser: 5, PerTenant: 2, Window: time.Minute}, [3]string{"u1", "u2", "u3"}, "tenant"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, rdb, clock := newReports(t, false)
			ctx := context.Background()
			for range 3 {
				// Looking any number of times uses none of the budget.
				if err := s.CheckRate(ctx, tenantA, tc.users[0], "", tc.limits); err != nil {
					t.Fatalf("CheckRate before any report = %v, want nil", err)
				}
			}
			mustEnqueue(t, s, submission(tenantA, tc.users[0], "k1", "x"), tc.limits)
			clock.Advance(10 * time.Second)
			mustEnqueue(t, s, submission(tenantA, tc.users[1], "", "x"), tc.limits)

			before := snapshot(t, rdb)
			var rl *report.RateLimitedError
			err := s.CheckRate(ctx, tenantA, tc.users[2], "", tc.limits)
			if !errors.As(err, &rl) || rl.Scope != tc.scope || rl.RetryAfter != 20*time.Second {
				t.Fatalf("CheckRate = %v, want RateLimitedError(%s) after 20s", err, tc.scope)
			}
			_, _, eerr := s.Enqueue(ctx, submission(tenantA, tc.users[2], "", "x"), tc.limits)
			var erl *report.RateLimitedError
			if !errors.As(eerr, &erl) || *erl != *rl {
				t.Errorf("Enqueue = %v, CheckRate = %v; want the same refusal", eerr, rl)
			}
			if diff := cmp.Diff(snapshot(t, rdb), before); diff != "" {
				t.Errorf("CheckRate wrote (-after +before):\n%s", diff)
			}
			// The first user's repeat of an accepted request passes the look; Enqueue
			// answers it with a replay although the user is at the limit.
			if err := s.CheckRate(ctx, tenantA, tc.users[0], "k1", tc.limits); err != nil {
				t.Errorf("CheckRate of an idempotent repeat = %v, want nil", err)
			}
			if _, replayed, err := s.Enqueue(ctx, submission(tenantA, tc.users[0], "k1", "x"), tc.limits); err != nil || !replayed {
				t.Errorf("repeat = %v, %v; want a replay", replayed, err)
			}
			// A new key of a limited user is no repeat.
			if err := s.CheckRate(ctx, tenantA, tc.users[2], "k-new", tc.limits); !errors.As(err, &rl) {
				t.Errorf("CheckRate with an unknown key = %v, want RateLimitedError", err)
			}
			if err := s.CheckRate(ctx, tenantB, tc.users[2], "", tc.limits); err != nil {
				t.Errorf("CheckRate of another tenant = %v, want nil", err)
			}
			clock.Advance(20 * time.Second)
			if err := s.CheckRate(ctx, tenantA, tc.users[2], "", tc.limits); err != nil {
				t.Errorf("CheckRate after the retry time = %v, want nil", err)
			}
		})
	}
}

// A Forge app system token kept for the worker is sealed at rest, bound to its tenant, one
// key per tenant however many reports carry it, and gone after its TTL.
func TestSiteTokenIsKeptSealedForTheWorker(t *testing.T) {
	rdb := redistest.Client(t)
	sealer, err := seal.New(bytes.Repeat([]byte{7}, 32))
	if err != nil {
		t.Fatal(err)
	}
	s := NewReports(rdb, ReportsOptions{CustomerKey: []byte("k"), Sealer: sealer})
	ctx := context.Background()
	for i := range 5 { // five reports, one key
		sub := submission(tenantA, fmt.Sprint("u", i), "")
		sub.SiteToken, sub.SiteAPI = secret.New("forge-system-token-canary"), "https://api.atlassian.com/ex/jira/cloud-1"
		mustEnqueue(t, s, sub, noLimits)
	}
	tok, api, err := s.SiteToken(ctx, tenantA)
	if err != nil || tok.Reveal() != "forge-system-token-canary" || api != "https://api.atlassian.com/ex/jira/cloud-1" {
		t.Fatalf("SiteToken = %q, %q, %v", tok.Reveal(), api, err)
	}
	tokens := 0
	for k, v := range snapshot(t, rdb) {
		if strings.Contains(v, "forge-system-token-canary") {
			t.Errorf("%s holds the token in the clear", k)
		}
		if strings.HasSuffix(k, ":sitetoken") {
			tokens++
		}
	}
	if tokens != 1 {
		t.Errorf("%d token keys for one tenant, want 1", tokens)
	}
	if ttl := rdb.PTTL(ctx, siteTokenKey(tenantA)).Val(); ttl <= 0 || ttl > SiteTokenTTL {
		t.Errorf("token TTL %v, want (0, %v]", ttl, SiteTokenTTL)
	}
	// Sealed for this tenant: moved to another tenant's key it does not open.
	rdb.Set(ctx, siteTokenKey(tenantB), rdb.Get(ctx, siteTokenKey(tenantA)).Val(), time.Minute)
	if tok, _, err := s.SiteToken(ctx, tenantB); err != nil || !tok.IsZero() {
		t.Errorf("a token moved to another tenant opened: %q, %v", tok.Reveal(), err)
	}
	// Without a sealer nothing is kept.
	rdb.Del(ctx, siteTokenKey(tenantA))
	plain := NewReports(rdb, ReportsOptions{CustomerKey: []byte("k")})
	sub := submission(tenantA, "u9", "")
	sub.SiteToken, sub.SiteAPI = secret.New("t"), "https://api.atlassian.com/ex/jira/cloud-1"
	mustEnqueue(t, plain, sub, noLimits)
	if n := rdb.Exists(ctx, siteTokenKey(tenantA)).Val(); n != 0 {
		t.Error("a store without a sealer kept the token")
	}
}

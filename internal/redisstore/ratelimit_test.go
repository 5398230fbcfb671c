package redisstore

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/supportbridge/supportbridge/internal/report"
)

// tatString is how a theoretical arrival time is stored: milliseconds, microsecond decimals.
func tatString(at time.Time) string {
	return fmt.Sprintf("%d.%03d", at.UnixMilli(), at.Nanosecond()/1000%1000)
}

// TestGCRABurstThenRefill pins the semantics: a limit of N per window admits N at once, the
// next is refused with the exact wait of window/N, and after window/N exactly one more fits,
// not another N. Per user and per tenant, on both Enqueue paths, and CheckRate agrees.
func TestGCRABurstThenRefill(t *testing.T) {
	bothPaths(t, func(t *testing.T, staged bool) {
		for _, tc := range []struct {
			name   string
			limits report.Limits
			user   func(i int) string
			scope  string
		}{
			{"per user", report.Limits{PerUser: 4, PerTenant: 100, Window: time.Minute}, func(int) string { return "u1" }, "user"},
			{"per tenant", report.Limits{PerUser: 100, PerTenant: 4, Window: time.Minute}, func(i int) string { return fmt.Sprint("u", i) }, "tenant"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				s, _, clock := newReports(t, staged)
				ctx := context.Background()
				n := 0
				next := func() error {
					n++
					_, _, err := s.Enqueue(ctx, submission(tenantA, tc.user(n), "", "x"), tc.limits)
					return err
				}
				refusedAfter := func(want time.Duration) {
					t.Helper()
					var rl, crl *report.RateLimitedError
					cerr := s.CheckRate(ctx, tenantA, tc.user(n+1), "", tc.limits)
					if err := next(); !errors.As(err, &rl) || rl.Scope != tc.scope || rl.RetryAfter != want {
						t.Fatalf("report %d: %v, want RateLimitedError(%s) after %v", n, err, tc.scope, want)
					}
					if !errors.As(cerr, &crl) || *crl != *rl {
						t.Errorf("CheckRate = %v, Enqueue = %v; want the same refusal", cerr, rl)
					}
				}
				for i := range 4 { // the burst
					if err := next(); err != nil {
						t.Fatalf("report %d of the burst: %v", i+1, err)
					}
				}
				refusedAfter(15 * time.Second)
				clock.Advance(5 * time.Second)
				refusedAfter(10 * time.Second)
				clock.Advance(10 * time.Second) // window/N since the burst: one fits
				if err := next(); err != nil {
					t.Fatalf("after window/N: %v", err)
				}
				refusedAfter(15 * time.Second)
				clock.Advance(time.Minute) // idle a whole window: the full burst again
				for i := range 4 {
					if err := next(); err != nil {
						t.Fatalf("report %d of the second burst: %v", i+1, err)
					}
				}
				refusedAfter(15 * time.Second)
			})
		}
	})
}

// TestGCRAIntervalThatDoesNotDivide: 7 a minute admits exactly 7 at once although 60 s / 7
// is no whole number of milliseconds, and the refusal rounds its wait up, never down.
func TestGCRAIntervalThatDoesNotDivide(t *testing.T) {
	s, rdb, clock := newReports(t, false)
	ctx := context.Background()
	lim := report.Limits{PerUser: 7, Window: time.Minute}
	for i := range 7 {
		mustEnqueue(t, s, submission(tenantA, "u1", "", fmt.Sprint(i)), lim)
	}
	var rl *report.RateLimitedError
	if _, _, err := s.Enqueue(ctx, submission(tenantA, "u1", "", "x"), lim); !errors.As(err, &rl) || rl.RetryAfter != 8572*time.Millisecond {
		t.Fatalf("8th report: %v, want RateLimitedError after 8.572s (60s/7 rounded up)", err)
	}
	// One key per subject, a TAT that expires when it passes.
	key := rateUserKeyOf(tenantTag(tenantA), "u1")
	tat, err := strconv.ParseFloat(rdb.Get(ctx, key).Val(), 64)
	if err != nil {
		t.Fatal(err)
	}
	if want := float64(clock.Now().UnixMilli()) + 7*8571.428; tat < want-0.01 || tat > want {
		t.Errorf("TAT = %.3f, want %.3f", tat, want)
	}
	if ttl := rdb.PTTL(ctx, key).Val(); ttl <= 59*time.Second || ttl > time.Minute {
		t.Errorf("TAT key expires in %v, want when the TAT passes (≈60s)", ttl)
	}
	clock.Advance(rl.RetryAfter)
	mustEnqueue(t, s, submission(tenantA, "u1", "", "x"), lim)
}

// TestGCRAUsesRedisTimeWithoutAClock: a store without an injected clock counts on Redis'
// clock, which every replica shares. No sleeping: one per hour is refused for about an hour.
func TestGCRAUsesRedisTimeWithoutAClock(t *testing.T) {
	_, rdb, _ := newReports(t, false)
	ctx := context.Background()
	lim := report.Limits{PerUser: 1, Window: time.Hour}
	for _, staged := range []bool{false, true} {
		s := NewReports(rdb, ReportsOptions{Staged: staged})
		user := fmt.Sprint("u-staged-", staged)
		// Skewed replica clocks do not matter: the report's own time is not the rate clock.
		sub := submission(tenantA, user, "", "x")
		sub.Report.ReceivedAt = time.Date(2001, 1, 1, 0, 0, 0, 0, time.UTC)
		mustEnqueue(t, s, sub, lim)
		var rl *report.RateLimitedError
		if err := s.CheckRate(ctx, tenantA, user, "", lim); !errors.As(err, &rl) || rl.RetryAfter < time.Hour-time.Minute || rl.RetryAfter > time.Hour {
			t.Errorf("staged=%v: CheckRate = %v, want a refusal for about an hour", staged, err)
		}
	}
}

// scriptKeys records the keys of every script call.
type scriptKeys struct {
	mu    sync.Mutex
	calls [][]string
}

func (h *scriptKeys) record(cmd redis.Cmder) {
	args := cmd.Args()
	if name := strings.ToLower(cmd.Name()); !strings.HasPrefix(name, "eval") || len(args) < 3 {
		return
	}
	n, _ := strconv.Atoi(fmt.Sprint(args[2]))
	keys := make([]string, 0, n)
	for _, k := range args[3 : 3+n] {
		keys = append(keys, fmt.Sprint(k))
	}
	h.mu.Lock()
	h.calls = append(h.calls, keys)
	h.mu.Unlock()
}

func (h *scriptKeys) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h *scriptKeys) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error { h.record(cmd); return next(ctx, cmd) }
}

func (h *scriptKeys) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		for _, c := range cmds {
			h.record(c)
		}
		return next(ctx, cmds)
	}
}

// hashTag is the part of a key Redis Cluster hashes: the first {…} with something in it.
func hashTag(key string) string {
	if i := strings.IndexByte(key, '{'); i >= 0 {
		if j := strings.IndexByte(key[i+1:], '}'); j > 0 {
			return key[i+1 : i+1+j]
		}
	}
	return key
}

// TestRateLimitKeysShareTheTenantSlot: on the staged path (the one Cluster takes) every
// script call touches one slot, and the rate-limit keys are in the tenant's, so checking
// and counting stay one script call each.
func TestRateLimitKeysShareTheTenantSlot(t *testing.T) {
	s, rdb, clock := newReports(t, true)
	hook := &scriptKeys{}
	rdb.AddHook(hook)
	ctx := context.Background()
	lim := report.Limits{PerUser: 1, PerTenant: 5, Window: time.Minute, MaxQueueLength: 1}
	if err := s.CheckRate(ctx, tenantA, "u1", "k1", lim); err != nil {
		t.Fatal(err)
	}
	mustEnqueue(t, s, submission(tenantA, "u1", "k1", "x"), lim)
	if _, _, err := s.Enqueue(ctx, submission(tenantA, "u1", "k2", "x"), lim); err == nil {
		t.Fatal("second report admitted")
	}
	clock.Advance(time.Minute)
	// The queue is full: refused by the queue's script, which carries no tenant key.
	if _, _, err := s.Enqueue(ctx, submission(tenantA, "u2", "k3", "x"), lim); err == nil {
		t.Fatal("report admitted over a full queue")
	}
	hook.mu.Lock()
	defer hook.mu.Unlock()
	rateKeys := 0
	for _, keys := range hook.calls {
		for _, k := range keys {
			if hashTag(k) != hashTag(keys[0]) {
				t.Errorf("one script call spans slots: %q", keys)
				break
			}
			if strings.Contains(k, ":gcra:") {
				rateKeys++
				if hashTag(k) != hashTag(reportKey(tenantA, "x")) {
					t.Errorf("rate key %q outside the tenant's slot", k)
				}
			}
		}
	}
	if rateKeys == 0 {
		t.Error("no script call carried a rate-limit key")
	}
}

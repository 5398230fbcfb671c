package redisstore

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// TestFailedReportsAndDeadLettersExpire: a failed report and its files leave Redis
// FailedRetention after failing, a retry keeps them again, and dead letters older than the
// retention are trimmed when the next one arrives.
func TestFailedReportsAndDeadLettersExpire(t *testing.T) {
	ctx := context.Background()
	s, rdb, _ := newReports(t, false)
	if err := s.EnsureGroup(ctx); err != nil {
		t.Fatal(err)
	}
	// A dead letter from long ago (its id is its time).
	if err := rdb.XAdd(ctx, &redis.XAddArgs{Stream: s.deadKey(), ID: "1000-0", Values: []string{"t", tenantA, "r", "old"}}).Err(); err != nil {
		t.Fatal(err)
	}
	id := mustEnqueue(t, s, submission(tenantA, "u1", "", "abc"), noLimits)
	d := take(t, s, "w")
	if err := s.Failed(ctx, d.Job, d.Fence, "refused"); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{reportKey(tenantA, id), reportFilesKey(tenantA, id)} {
		if ttl := rdb.PTTL(ctx, k).Val(); ttl < FailedRetention-time.Minute || ttl > FailedRetention {
			t.Errorf("%s TTL = %s, want %s", k, ttl, FailedRetention)
		}
	}
	msgs := rdb.XRange(ctx, s.deadKey(), "-", "+").Val()
	if len(msgs) != 1 || msgs[0].ID == "1000-0" {
		t.Errorf("dead letters = %v; the old one should be trimmed and the new one kept", msgs)
	}
	if err := s.Retry(ctx, tenantA, id); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{reportKey(tenantA, id), reportFilesKey(tenantA, id)} {
		if ttl := rdb.PTTL(ctx, k).Val(); ttl != -1 {
			t.Errorf("after retry %s TTL = %s, want none", k, ttl)
		}
	}
}

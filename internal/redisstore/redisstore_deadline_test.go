package redisstore

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/supportbridge/supportbridge/internal/config"
)

// TestSilentRedisIsNotWaitedFor: a Redis that accepts the connection and never answers
// (paused, partitioned) fails a command within CommandTimeout, not after go-redis' read
// timeout and retries.
func TestSilentRedisIsNotWaitedFor(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close() // hold it open, say nothing
		}
	}()
	rdb, err := NewClient(config.Redis{URL: "redis://" + ln.Addr().String()})
	if err != nil {
		t.Fatal(err)
	}
	defer rdb.Close()
	for name, call := range map[string]func(context.Context) error{
		"command": func(ctx context.Context) error { return rdb.Get(ctx, "k").Err() },
		"pipeline": func(ctx context.Context) error {
			_, err := rdb.Pipelined(ctx, func(p redis.Pipeliner) error { p.Get(ctx, "k"); return nil })
			return err
		},
	} {
		start := time.Now()
		err := call(context.Background())
		took := time.Since(start)
		if err == nil || took > CommandTimeout+700*time.Millisecond {
			t.Errorf("%s against a silent Redis: %v after %v, want an error within about %v", name, err, took, CommandTimeout)
		}
	}
}

// Package redisstore is the only place that knows Redis: every key, every Lua script and
// every go-redis call of supportbridge lives here, behind the small interfaces the domain
// packages declare. Every key of a tenant carries the same hash tag, so multi-key operations
// and scripts on one tenant work on Redis Cluster.
package redisstore

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/supportbridge/supportbridge/internal/domain"

	"github.com/redis/go-redis/v9"

	"github.com/supportbridge/supportbridge/internal/config"
)

// ErrUnavailable means Redis could not be reached or did not answer. It is the domain's
// error, so callers match it without knowing the store is Redis.
var ErrUnavailable = domain.ErrUnavailable

// NewClient opens a UniversalClient: a single node from a URL, a Sentinel group when a master
// name is set, or a Cluster from an address list.
func NewClient(c config.Redis) (redis.UniversalClient, error) {
	var rdb redis.UniversalClient
	switch {
	case c.URL != "":
		opts, err := redis.ParseURL(c.URL)
		if err != nil {
			return nil, fmt.Errorf("parse redis url: %w", err)
		}
		if c.Username != "" {
			opts.Username = c.Username
		}
		if !c.Password.IsZero() {
			opts.Password = c.Password.Reveal()
		}
		if opts.Protocol == 0 {
			opts.Protocol = defaultProtocol
		}
		opts.ContextTimeoutEnabled = true
		rdb = redis.NewClient(opts)
	case len(c.Addrs) == 0:
		return nil, errors.New("no redis address configured")
	default:
		rdb = redis.NewUniversalClient(&redis.UniversalOptions{
			Addrs:                 c.Addrs,
			MasterName:            c.MasterName,
			Username:              c.Username,
			Password:              c.Password.Reveal(),
			Protocol:              defaultProtocol,
			ContextTimeoutEnabled: true,
		})
	}
	rdb.AddHook(deadlineHook{d: CommandTimeout})
	return rdb, nil
}

// CommandTimeout bounds one Redis command or pipeline whose context has no deadline of its
// own. A Redis that accepts connections but does not answer (paused, partitioned, swapping)
// would otherwise hold every request for go-redis' read timeout times its retries: intake
// must answer 503 within a second instead. Blocking reads (XREADGROUP BLOCK) keep their own
// wait.
const CommandTimeout = 600 * time.Millisecond

// deadlineHook gives commands without a deadline CommandTimeout; with ContextTimeoutEnabled
// go-redis turns the context's deadline into the connection's.
type deadlineHook struct{ d time.Duration }

func (deadlineHook) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h deadlineHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if _, ok := ctx.Deadline(); ok || blocking(cmd) {
			return next(ctx, cmd)
		}
		ctx, cancel := context.WithTimeout(ctx, h.d)
		defer cancel()
		return next(ctx, cmd)
	}
}

func (h deadlineHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		if _, ok := ctx.Deadline(); ok || slices.ContainsFunc(cmds, blocking) {
			return next(ctx, cmds)
		}
		ctx, cancel := context.WithTimeout(ctx, h.d)
		defer cancel()
		return next(ctx, cmds)
	}
}

// blocking reports whether cmd waits for data by design: a BLOCK argument (XREAD,
// XREADGROUP), the B* list and zset pops, or a subscription.
func blocking(cmd redis.Cmder) bool {
	switch strings.ToLower(cmd.Name()) {
	case "blpop", "brpop", "blmove", "brpoplpush", "bzpopmin", "bzpopmax", "blmpop", "bzmpop",
		"subscribe", "psubscribe", "ssubscribe", "wait", "waitaof":
		return true
	case "xread", "xreadgroup":
		for _, a := range cmd.Args() {
			if s, ok := a.(string); ok && strings.EqualFold(s, "block") {
				return true
			}
		}
	}
	return false
}

// defaultProtocol is RESP2. Nothing here needs RESP3 (pub/sub works on its own connection
// either way), and on RESP3 go-redis checks every connection for pending push
// notifications before reading each reply, which cost about 8 µs of CPU per command in the
// intake benchmark. A redis URL may still ask for protocol=3.
const defaultProtocol = 2

// tenantTag is the hash tag shared by every key of one tenant. The clientKey is hashed so
// that braces or odd characters in it can never change which slot a key lands in.
func tenantTag(clientKey string) string {
	sum := sha256.Sum256([]byte(clientKey))
	return "{t:" + hex.EncodeToString(sum[:8]) + "}"
}

// Keys of tenant data. Every function here builds one key; nothing else in the code base
// spells a key.
func tenantKey(clientKey string) string     { return "sb:" + tenantTag(clientKey) + ":tenant" }
func cloudIndexKey(cloudID string) string   { return "sb:idx:cloud:" + cloudID }
func installationIndexKey(id string) string { return "sb:idx:installation:" + id }

// TenantChangedChannel is the pub/sub channel on which replicas announce tenant changes.
const TenantChangedChannel = "sb:tenant-changed"

// Ping checks that Redis answers.
func Ping(ctx context.Context, rdb redis.UniversalClient) error {
	if err := rdb.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	return nil
}

// timeAfter paces resubscription attempts after a lost connection.
func timeAfter() <-chan time.Time { return time.After(500 * time.Millisecond) }

package redisstore

import (
	"context"
	"sync"
	"sync/atomic"

	"github.com/redis/go-redis/v9"
)

// scriptBatcher runs calls of one script from concurrent callers in shared pipelines: a
// call that arrives while a pipeline is in flight waits for the next one and goes out with
// every other call that arrived meanwhile. Each call is still its own EVALSHA, atomic on its
// own, with its own answer; what the calls share is the round trip, and with it the system
// calls and wake-ups on both ends, which under load cost more than the scripts themselves.
// A call that finds nothing in flight goes out at once, so an idle service pays no delay.
//
// No goroutine outlives its work: a caller that finds the batcher idle sends its own call,
// then starts a flusher only if calls queued up meanwhile; the flusher sends batches until
// the queue is empty and then ends.
type scriptBatcher struct {
	rdb    redis.UniversalClient
	script *redis.Script
	max    int // calls per pipeline

	mu    sync.Mutex
	busy  bool // a flusher is running
	queue []*batchCall
}

type batchCall struct {
	keys []string
	args []any
	// state is callWaiting until the flusher takes the call (callTaken) or its caller gives
	// up on it first (callAbandoned); an abandoned call is never sent.
	state atomic.Int32
	res   []string
	err   error
	done  chan struct{}
}

const (
	callWaiting int32 = iota
	callTaken
	callAbandoned
)

func newScriptBatcher(rdb redis.UniversalClient, script *redis.Script, maxCalls int) *scriptBatcher {
	return &scriptBatcher{rdb: rdb, script: script, max: maxCalls}
}

// run runs the script with keys and args and returns its answer as strings. When ctx ends
// before the call was sent, run returns ctx's error and the script never runs; once sent,
// run waits for the answer, as a single command would.
func (b *scriptBatcher) run(ctx context.Context, keys []string, args []any) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	c := &batchCall{keys: keys, args: args, done: make(chan struct{})}
	b.mu.Lock()
	if !b.busy {
		// Nothing in flight: send at once from this goroutine, then hand whatever queued
		// up meanwhile to a flusher.
		b.busy = true
		b.mu.Unlock()
		c.state.Store(callTaken)
		b.send([]*batchCall{c})
		b.mu.Lock()
		if len(b.queue) > 0 {
			go b.flush()
		} else {
			b.busy = false
		}
		b.mu.Unlock()
		return c.res, c.err
	}
	b.queue = append(b.queue, c)
	b.mu.Unlock()
	select {
	case <-c.done:
	case <-ctx.Done():
		if c.state.CompareAndSwap(callWaiting, callAbandoned) {
			return nil, ctx.Err()
		}
		<-c.done // already on its way: its answer decides
	}
	return c.res, c.err
}

// flush sends what is queued, batch after batch, until nothing is left.
func (b *scriptBatcher) flush() {
	batch := make([]*batchCall, 0, b.max)
	for {
		batch = batch[:0]
		b.mu.Lock()
		n := 0
		for n < len(b.queue) && len(batch) < b.max {
			if c := b.queue[n]; c.state.CompareAndSwap(callWaiting, callTaken) {
				batch = append(batch, c)
			}
			n++
		}
		rest := copy(b.queue, b.queue[n:])
		clear(b.queue[rest:])
		b.queue = b.queue[:rest]
		if len(batch) == 0 && len(b.queue) == 0 {
			b.busy = false
			b.mu.Unlock()
			return
		}
		b.mu.Unlock()
		if len(batch) > 0 {
			b.send(batch)
		}
	}
}

// send runs one batch in one pipeline. The calls' contexts are not used: each has been
// taken, so its caller waits for the answer, and the client's own timeouts bound the wait.
func (b *scriptBatcher) send(batch []*batchCall) {
	ctx := context.Background()
	cmds := make([]*redis.Cmd, len(batch))
	_, _ = b.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, c := range batch {
			cmds[i] = b.script.EvalSha(ctx, p, c.keys, c.args...)
		}
		return nil
	})
	for i, c := range batch {
		cmd := cmds[i]
		if redis.HasErrorPrefix(cmd.Err(), "NOSCRIPT") {
			// The server does not have the script yet (first use, or after a restart or
			// SCRIPT FLUSH): it ran nothing, so run it the way that loads it.
			cmd = b.script.Run(ctx, b.rdb, c.keys, c.args...)
		}
		c.res, c.err = cmd.StringSlice()
		close(c.done)
	}
}

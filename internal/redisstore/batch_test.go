package redisstore

import (
	"context"
	"errors"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/supportbridge/supportbridge/internal/redisstore/redistest"
)

// echoScript answers its caller's own argument and counts its runs, so that a test can see
// both that every call got its own answer and how often the script really ran.
var echoScript = redis.NewScript(`
if ARGV[1] == 'fail' then return redis.error_reply('asked to fail') end
return {ARGV[1], tostring(redis.call('INCR', KEYS[1]))}
`)

// gate is a go-redis hook that counts pipelines of scripts and can hold the next one until released,
// so that a test can make calls queue up behind it deterministically.
type gate struct {
	mu        sync.Mutex
	pipelines int
	sizes     []int
	hold      chan struct{} // non-nil: the next pipeline waits for it to close
	held      chan struct{} // closed when the held pipeline has started waiting
}

func (g *gate) DialHook(next redis.DialHook) redis.DialHook { return next }
func (g *gate) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return next
}

func (g *gate) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		if len(cmds) == 0 || cmds[0].Name() != "evalsha" {
			return next(ctx, cmds) // go-redis setting up a new connection
		}
		g.mu.Lock()
		g.pipelines++
		g.sizes = append(g.sizes, len(cmds))
		hold, held := g.hold, g.held
		g.hold, g.held = nil, nil
		g.mu.Unlock()
		if hold != nil {
			close(held)
			<-hold
		}
		return next(ctx, cmds)
	}
}

// holdNext makes the next pipeline wait; it returns a channel closed once that pipeline is
// waiting, and the function that lets it go.
func (g *gate) holdNext() (waiting <-chan struct{}, release func()) {
	g.mu.Lock()
	defer g.mu.Unlock()
	hold, held := make(chan struct{}), make(chan struct{})
	g.hold, g.held = hold, held
	return held, sync.OnceFunc(func() { close(hold) })
}

func newGatedBatcher(t *testing.T, max int) (*scriptBatcher, redis.UniversalClient, *gate) {
	t.Helper()
	rdb := redistest.Client(t)
	g := &gate{}
	rdb.AddHook(g)
	return newScriptBatcher(rdb, echoScript, max), rdb, g
}

func TestScriptBatcherSharesRoundTrips(t *testing.T) {
	b, rdb, g := newGatedBatcher(t, 16)
	ctx := context.Background()
	if err := echoScript.Load(ctx, rdb).Err(); err != nil {
		t.Fatal(err)
	}
	// The first call goes out alone and is held in flight while 100 more queue behind it.
	waiting, release := g.holdNext()
	defer release()
	first := make(chan []string, 1)
	go func() {
		res, err := b.run(ctx, []string{"runs"}, []any{"first"})
		if err != nil {
			t.Error(err)
		}
		first <- res
	}()
	<-waiting
	const n = 100
	var wg sync.WaitGroup
	answers := make([][]string, n)
	for i := range n {
		wg.Go(func() {
			res, err := b.run(ctx, []string{"runs"}, []any{strconv.Itoa(i)})
			if err != nil {
				t.Error(err)
			}
			answers[i] = res
		})
	}
	// Every call is queued (not sent) before the first pipeline is let go.
	for {
		b.mu.Lock()
		queued := len(b.queue)
		b.mu.Unlock()
		if queued == n {
			break
		}
		time.Sleep(time.Millisecond)
	}
	release()
	wg.Wait()
	if res := <-first; len(res) != 2 || res[0] != "first" {
		t.Errorf("first call answered %v", res)
	}
	for i, res := range answers {
		if len(res) != 2 || res[0] != strconv.Itoa(i) {
			t.Fatalf("call %d answered %v, not its own argument", i, res)
		}
	}
	if runs, _ := rdb.Get(ctx, "runs").Int(); runs != n+1 {
		t.Errorf("script ran %d times for %d calls", runs, n+1)
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	// One pipeline for the first call, then batches of at most 16 for the 100 queued.
	if want := 1 + (n+15)/16; g.pipelines != want {
		t.Errorf("%d pipelines (sizes %v), want %d", g.pipelines, g.sizes, want)
	}
	for _, size := range g.sizes {
		if size > 16 {
			t.Errorf("a pipeline of %d calls, over the batch size 16", size)
		}
	}
}

func TestScriptBatcherNeverSendsAnAbandonedCall(t *testing.T) {
	b, rdb, g := newGatedBatcher(t, 16)
	ctx := context.Background()
	waiting, release := g.holdNext()
	defer release()
	done := make(chan error, 1)
	go func() {
		_, err := b.run(ctx, []string{"kept"}, []any{"a"})
		done <- err
	}()
	<-waiting
	cctx, cancel := context.WithCancel(ctx)
	abandoned := make(chan error, 1)
	go func() {
		_, err := b.run(cctx, []string{"abandoned"}, []any{"b"})
		abandoned <- err
	}()
	for {
		b.mu.Lock()
		queued := len(b.queue)
		b.mu.Unlock()
		if queued == 1 {
			break
		}
		time.Sleep(time.Millisecond)
	}
	cancel()
	if err := <-abandoned; !errors.Is(err, context.Canceled) {
		t.Fatalf("abandoned call: %v, want context.Canceled", err)
	}
	release()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	// The flusher drains the queue without sending the abandoned call.
	for {
		b.mu.Lock()
		busy := b.busy
		b.mu.Unlock()
		if !busy {
			break
		}
		time.Sleep(time.Millisecond)
	}
	if n, err := rdb.Exists(ctx, "abandoned").Result(); err != nil || n != 0 {
		t.Errorf("the abandoned call ran (exists=%d, %v)", n, err)
	}
}

func TestScriptBatcherAnswersEachCallItsOwnError(t *testing.T) {
	b, rdb, _ := newGatedBatcher(t, 8)
	ctx := context.Background()
	// After SCRIPT FLUSH the server knows no script: the batch must load it and still run
	// each call once.
	if err := rdb.ScriptFlush(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make([]error, 40)
	for i := range 40 {
		wg.Go(func() {
			arg := strconv.Itoa(i)
			if i%4 == 0 {
				arg = "fail"
			}
			_, errs[i] = b.run(ctx, []string{"counted"}, []any{arg})
		})
	}
	wg.Wait()
	for i, err := range errs {
		switch {
		case i%4 == 0 && (err == nil || err.Error() != "asked to fail"):
			t.Errorf("call %d: %v, want its own script error", i, err)
		case i%4 != 0 && err != nil:
			t.Errorf("call %d: %v", i, err)
		}
	}
	if runs, _ := rdb.Get(ctx, "counted").Int(); runs != 30 {
		t.Errorf("script counted %d successful runs, want 30", runs)
	}
}

func TestScriptBatcherReportsAnOutageToEveryCall(t *testing.T) {
	ctx := context.Background()
	// A server that accepts connections and closes them at once.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	rdb := redis.NewClient(&redis.Options{Addr: l.Addr().String(), MaxRetries: -1, Protocol: 2})
	defer rdb.Close()
	b := newScriptBatcher(rdb, echoScript, 8)
	var wg sync.WaitGroup
	for range 10 {
		wg.Go(func() {
			if _, err := b.run(ctx, []string{"k"}, []any{"x"}); err == nil {
				t.Error("a call succeeded against a server that hangs up")
			}
		})
	}
	wg.Wait()
}

func TestScriptBatcherSendsNothingForAnEndedContext(t *testing.T) {
	b, rdb, _ := newGatedBatcher(t, 8)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := b.run(ctx, []string{"never"}, []any{"x"}); !errors.Is(err, context.Canceled) {
		t.Fatalf("run with an ended context: %v", err)
	}
	if n := rdb.Exists(context.Background(), "never").Val(); n != 0 {
		t.Error("the script ran for an ended context")
	}
}

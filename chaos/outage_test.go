//go:build chaos

package chaos

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Redis unreachable for 10 s, either stopped (connections refused) or paused with SIGSTOP
// (connections accepted by the kernel and never answered, like a partition): intake answers
// 503 within a second instead of hanging, /readyz is red, nothing accepted before is lost,
// and within 5 s of Redis returning /readyz is green and reports are accepted again.
func TestRedisOutage(t *testing.T) {
	for _, mode := range []string{"stopped", "paused"} {
		t.Run(mode, func(t *testing.T) { testRedisOutage(t, mode) })
	}
}

func testRedisOutage(t *testing.T, mode string) {
	const (
		outage      = 10 * time.Second
		maxLatency  = 1500 * time.Millisecond
		maxRecovery = 5 * time.Second
	)
	rp := startRedis(t, "--appendonly", "yes", "--appendfsync", "everysec")
	e := newEnv(t, map[string]string{"SB_REDIS_URL": "redis://" + rp.Addr()})
	svc := e.start()
	e.install(svc)

	ctx, stopIntake := context.WithCancel(context.Background())
	results := e.steadyIntake(ctx, svc.base, "outage-"+mode, 100*time.Millisecond)

	// /readyz is polled throughout, so its colour is known at every moment.
	type probe struct {
		at      time.Time
		code    int
		latency time.Duration
	}
	var (
		probesMu sync.Mutex
		probes   []probe
	)
	probeCtx, stopProbes := context.WithCancel(context.Background())
	probesDone := make(chan struct{})
	go func() {
		defer close(probesDone)
		for probeCtx.Err() == nil {
			at := time.Now()
			code, lat := readyz(svc.base)
			probesMu.Lock()
			probes = append(probes, probe{at, code, lat})
			probesMu.Unlock()
			time.Sleep(100 * time.Millisecond)
		}
	}()

	time.Sleep(2 * time.Second) // steady intake before the outage
	// The outage begins once Redis is gone: a SHUTDOWN takes a moment (it fsyncs the AOF)
	// during which Redis holds connections without answering; what the service does then is
	// the paused case, reported below as goingDown.
	goingDown := time.Now()
	switch mode {
	case "stopped":
		rp.shutdown()
	case "paused":
		rp.signal(syscall.SIGSTOP)
	}
	outageStart := time.Now()
	time.Sleep(outage)
	switch mode {
	case "stopped":
		rp.start()
	case "paused":
		rp.signal(syscall.SIGCONT)
	}
	outageEnd := time.Now()

	// Recovery: /readyz green and a fresh report accepted.
	var recovered time.Time
	waitFor(maxRecovery+5*time.Second, func() bool {
		code, _ := readyz(svc.base)
		if code != http.StatusOK {
			return false
		}
		if f := e.fileReport(svc.base, "outage-"+mode+"-probe-"+time.Now().Format("150405.000"), nil); f.status != http.StatusAccepted {
			return false
		}
		recovered = time.Now()
		return true
	})
	time.Sleep(2 * time.Second) // steady intake after recovery
	stopIntake()
	stopProbes()
	all := <-results
	<-probesDone

	if recovered.IsZero() {
		t.Fatalf("service not back within %v of Redis returning", maxRecovery+5*time.Second)
	}
	recovery := recovered.Sub(outageEnd)
	if recovery > maxRecovery {
		t.Errorf("service back %v after Redis returned; want within %v", recovery, maxRecovery)
	}

	// During the outage (after a 1 s grace for requests in flight when it began) every
	// answer is prompt and a refusal, and /readyz is red.
	graceEnd := outageStart.Add(time.Second)
	// Slow answers are collected rather than failed at once, so the rest of the scenario
	// still reports its figures. (A paused Redis used to hold every request for the whole
	// outage; redisstore now bounds each command.)
	var hangs []string
	var (
		during, refused503, overSecond int
		maxLat, maxGoingDown           time.Duration
	)
	for _, f := range all {
		if !f.sent.Before(goingDown) && f.sent.Before(outageStart) {
			maxGoingDown = max(maxGoingDown, f.latency())
		}
	}
	for _, f := range all {
		if f.sent.Before(outageStart) || !f.sent.Before(outageEnd) {
			continue
		}
		during++
		maxLat = max(maxLat, f.latency())
		if f.latency() > time.Second {
			overSecond++
			if overSecond <= 5 {
				t.Logf("%s: sent at +%v, answered %d after %v", f.summary, f.sent.Sub(outageStart).Round(time.Millisecond),
					f.status, f.latency().Round(time.Millisecond))
			}
		}
		if f.err != nil {
			hangs = append(hangs, fmt.Sprintf("%s during the outage: %v after %v", f.summary, f.err, f.latency().Round(time.Millisecond)))
			continue
		}
		if f.status == http.StatusServiceUnavailable {
			refused503++
		} else if f.sent.After(graceEnd) && f.status != http.StatusAccepted {
			hangs = append(hangs, fmt.Sprintf("%s during the outage answered %d; want 503", f.summary, f.status))
		}
	}
	if maxLat >= maxLatency {
		hangs = append(hangs, fmt.Sprintf("slowest intake answer during the outage took %v; want < %v", maxLat.Round(time.Millisecond), maxLatency))
	}
	var readyRed, readyProbes int
	var maxReadyLat time.Duration
	for _, p := range probes {
		// A probe is judged only if its whole round trip fell inside the outage: one sent
		// just before Redis returns may fairly be answered by a Redis that is back.
		if p.at.Before(graceEnd) || !p.at.Add(p.latency).Before(outageEnd) {
			continue
		}
		readyProbes++
		if p.code == http.StatusServiceUnavailable {
			readyRed++
		} else {
			hangs = append(hangs, fmt.Sprintf("/readyz during the outage at +%v answered %d after %v; want 503",
				p.at.Sub(outageStart).Round(time.Millisecond), p.code, p.latency.Round(time.Millisecond)))
		}
		maxReadyLat = max(maxReadyLat, p.latency)
	}
	if readyProbes == 0 || refused503 == 0 {
		hangs = append(hangs, fmt.Sprintf("outage not observed: %d readyz probes, %d intake 503s", readyProbes, refused503))
	}

	// Nothing accepted is lost: every 202, before, during or after, is delivered once.
	accepted := map[string]bool{}
	for _, f := range all {
		if f.status == http.StatusAccepted {
			accepted[f.summary] = true
		}
	}
	var missing []string
	if !waitFor(90*time.Second, func() bool {
		reqs := e.requestsBySummary()
		missing = missing[:0]
		for s := range accepted {
			if len(reqs[s]) == 0 {
				missing = append(missing, s)
			}
		}
		return len(missing) == 0
	}) {
		t.Errorf("%d accepted reports not delivered within 90 s: %v", len(missing), missing)
	}
	time.Sleep(1500 * time.Millisecond) // the sandbox's search lag, for a late duplicate
	for s, rs := range e.requestsBySummary() {
		if accepted[s] && len(rs) != 1 {
			t.Errorf("%s delivered %d times; want once", s, len(rs))
		}
	}
	t.Logf("%s: Redis took %v to go down; reports sent meanwhile answered within %v", mode,
		outageStart.Sub(goingDown).Round(time.Millisecond), maxGoingDown.Round(time.Millisecond))
	t.Logf("%s: %d reports sent during the 10 s outage, %d answered 503, slowest answer %v (%d over 1 s); /readyz red in %d/%d probes, slowest %v; back %v after Redis returned; %d accepted in all, each delivered once",
		mode, during, refused503, maxLat.Round(time.Millisecond), overSecond, readyRed, readyProbes, maxReadyLat.Round(time.Millisecond),
		recovery.Round(time.Millisecond), len(accepted))
	if len(hangs) == 0 {
		return
	}
	t.Errorf("answers during the outage:\n%s", strings.Join(hangs, "\n"))
}

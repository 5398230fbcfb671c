//go:build chaos

package chaos

import (
	"context"
	"net/http"
	"testing"
	"time"
)

// Redis restarted under steady intake, AOF with appendfsync everysec: a graceful SHUTDOWN
// loses nothing; a SIGKILL may lose at most the last second of writes, so every report
// accepted more than a second before the kill is delivered exactly once, and the test
// reports how many of the last second's 202s were lost.
func TestRedisRestartUnderSteadyIntake(t *testing.T) {
	rp := startRedis(t, "--appendonly", "yes", "--appendfsync", "everysec")
	e := newEnv(t, map[string]string{"SB_REDIS_URL": "redis://" + rp.Addr()})
	svc := e.start()
	e.install(svc)

	ctx, stopIntake := context.WithCancel(context.Background())
	results := e.steadyIntake(ctx, svc.base, "restart", 50*time.Millisecond)

	phase := func(d time.Duration) { time.Sleep(d) } // fixed phases of the fault schedule
	phase(3 * time.Second)
	shutdownAt := time.Now()
	rp.shutdown()
	rp.start()
	phase(3 * time.Second)
	killAt := time.Now()
	rp.kill()
	rp.start()
	phase(3 * time.Second)
	stopIntake()
	all := <-results

	// Settle: every 202 ends delivered or turns out never stored (404).
	state := map[string]string{}
	if !waitFor(120*time.Second, func() bool {
		pending := 0
		for _, f := range all {
			if f.status != http.StatusAccepted || state[f.id] == "delivered" || state[f.id] == "lost" {
				continue
			}
			st, code := e.reportState(svc.base, f.id)
			switch {
			case st == "delivered":
				state[f.id] = st
			case code == http.StatusNotFound:
				state[f.id] = "lost"
			default:
				state[f.id] = st
				pending++
			}
		}
		return pending == 0
	}) {
		t.Fatalf("reports still undelivered after 120 s: %v", notDelivered(all, state))
	}
	// A duplicate can only come from a delivery running now; the states are final, so one
	// more look at the sandbox after its search lag is enough.
	time.Sleep(1500 * time.Millisecond)
	reqs := e.requestsBySummary()

	var accepted, acceptedOld, lostWindow, windowAccepted, refused int
	for _, f := range all {
		if f.status != http.StatusAccepted {
			refused++
			continue
		}
		accepted++
		n := len(reqs[f.summary])
		inWindow := !f.done.Before(killAt.Add(-time.Second)) && f.done.Before(killAt)
		if inWindow {
			windowAccepted++
		}
		switch {
		case f.done.Before(killAt.Add(-time.Second)):
			acceptedOld++
			if n != 1 || state[f.id] != "delivered" {
				t.Errorf("%s (202 at %v, %v before the kill, %v after the shutdown): %d requests, state %q; want exactly 1, delivered",
					f.summary, f.done.Format("15:04:05.000"), killAt.Sub(f.done).Round(time.Millisecond),
					f.done.Sub(shutdownAt).Round(time.Millisecond), n, state[f.id])
			}
		case state[f.id] == "lost":
			if n != 0 {
				t.Errorf("%s: service lost it but JSM has %d requests", f.summary, n)
			}
			if inWindow {
				lostWindow++
			} else {
				t.Errorf("%s: 202 at %v, after the kill, was lost", f.summary, f.done.Format("15:04:05.000"))
			}
		default:
			if n != 1 {
				t.Errorf("%s: %d requests; want exactly 1", f.summary, n)
			}
		}
	}
	t.Logf("intake: %d sent, %d accepted (%d more than 1 s before the SIGKILL), %d refused during restarts", len(all), accepted, acceptedOld, refused)
	t.Logf("AOF window: %d of the %d reports accepted in the last second before SIGKILL were lost", lostWindow, windowAccepted)
	if acceptedOld < 50 {
		t.Errorf("only %d reports were accepted before the kill window; the scenario proves nothing", acceptedOld)
	}
}

func notDelivered(all []filed, state map[string]string) []string {
	var out []string
	for _, f := range all {
		if f.status == http.StatusAccepted && state[f.id] != "delivered" && state[f.id] != "lost" {
			out = append(out, f.summary+"="+state[f.id])
		}
	}
	return out
}

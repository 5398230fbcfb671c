//go:build chaos

package chaos

import (
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/supportbridge/supportbridge/internal/jsmsandbox"
)

// Two replicas (serve --role all) on one Redis and one JSM whose calls fail, and whose
// writes lose their answers after taking effect (a dropped connection, or no answer until
// the client's timeout): every report still ends as exactly one
// request with exactly one internal comment and each file attached once.
func TestTwoReplicasUnderJSMFaults(t *testing.T) {
	const reports = 16
	rp := startRedis(t, "--appendonly", "no")
	e := newEnv(t, map[string]string{"SB_REDIS_URL": "redis://" + rp.Addr()})
	e.extra["SB_DELIVERY_MAX_ATTEMPTS"] = "40"
	e.extra["SB_WORKER_CONCURRENCY"] = "4"
	e.extra["SB_JSM_CALL_TIMEOUT"] = "2s" // a held answer costs the worker 2 s, not 5
	a := e.start("--role", "all")
	b := e.start("--role", "all")
	e.install(a)

	// Both replicas run the consent scheduler; its Redis lease must have one holder for the
	// whole test, renewed across the scheduler's 15 s ticks rather than passed around.
	holders := map[string]bool{}
	var holdersMu sync.Mutex
	stopSampling := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		for {
			if h := rp.cli("GET", "sb:lease:consent-scheduler"); h != "" && h != "(nil)" {
				holdersMu.Lock()
				holders[h] = true
				holdersMu.Unlock()
			}
			select {
			case <-stopSampling:
				return
			case <-time.After(250 * time.Millisecond):
			}
		}
	}()
	leaseStart := time.Now()

	files := func(i int) map[string][]byte {
		return map[string][]byte{
			fmt.Sprintf("console-%d.txt", i): []byte(strings.Repeat(fmt.Sprintf("console line %d\n", i), 20)),
			fmt.Sprintf("har-%d.json", i):    []byte(fmt.Sprintf(`{"log":{"version":"1.2","entries":[],"n":%d}}`, i)),
		}
	}

	// The shape of a delivery without faults is the reference the faulty ones must match.
	ref := e.fileReport(a.base, "replicas-reference", files(-1))
	if ref.status != http.StatusAccepted {
		t.Fatalf("reference report answered %d", ref.status)
	}
	var want jsmsandbox.Request
	if !waitFor(30*time.Second, func() bool {
		st, _ := e.reportState(a.base, ref.id)
		rs := e.requestsBySummary()["replicas-reference"]
		if st != "delivered" || len(rs) != 1 {
			return false
		}
		want = rs[0]
		return true
	}) {
		t.Fatal("reference report not delivered within 30 s")
	}

	e.sandbox.SetFaults(jsmsandbox.Faults{ErrorRate: 0.15, LostAnswerRate: 0.15, TimeoutRate: 0.05, Seed: 7})
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		filed []filed
	)
	for i := range reports {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			base := []string{a.base, b.base}[i%2]
			f := e.fileReport(base, fmt.Sprintf("replicas-%02d", i), files(i))
			mu.Lock()
			filed = append(filed, f)
			mu.Unlock()
		}(i)
	}
	wg.Wait()
	for _, f := range filed {
		if f.status != http.StatusAccepted {
			t.Fatalf("%s answered %d (%v)", f.summary, f.status, f.err)
		}
	}
	undelivered := func() []string {
		var out []string
		for _, f := range filed {
			if st, _ := e.reportState(a.base, f.id); st != "delivered" {
				out = append(out, f.summary+"="+st)
			}
		}
		return out
	}
	// What is checked is that every report is delivered exactly once, not how fast: a report
	// that meets several ambiguous writes in a row waits out the search patience (30 s) for
	// each and backs off between attempts, which took one report past 150 s in a CI run.
	if !waitFor(300*time.Second, func() bool { return len(undelivered()) == 0 }) {
		t.Fatalf("not delivered within 300 s under faults: %v", undelivered())
	}
	e.sandbox.SetFaults(jsmsandbox.Faults{})
	time.Sleep(1500 * time.Millisecond) // the search lag, so a late duplicate would show

	lost, failed := 0, 0
	for _, c := range e.sandbox.Calls() {
		switch {
		case c.Status == 0:
			lost++
		case c.Status == http.StatusTooManyRequests || c.Status == http.StatusServiceUnavailable:
			failed++
		}
	}
	reqs := e.requestsBySummary()
	for _, f := range filed {
		rs := reqs[f.summary]
		if len(rs) != 1 {
			t.Errorf("%s: %d requests; want 1", f.summary, len(rs))
			continue
		}
		got := rs[0]
		if len(got.Comments) != len(want.Comments) {
			t.Errorf("%s: %d comments %v; want %d like the reference", f.summary, len(got.Comments), commentHeads(got), len(want.Comments))
		}
		if g, w := attachmentNames(got), attachmentNames(want); len(g) != len(w) || dupes(g) != "" {
			t.Errorf("%s: attachments %v; want %d, each once (reference %v)", f.summary, g, len(w), w)
		}
	}
	t.Logf("%d reports over 2 replicas: %d JSM calls, %d answered 429/503, %d writes lost their answer (dropped or held past the client's timeout); each report one request, %d comment(s), %d attachments",
		reports, len(e.sandbox.Calls()), failed, lost, len(want.Comments), len(want.Attachments))
	if lost == 0 || failed == 0 {
		t.Errorf("faults not exercised: %d lost answers, %d injected errors", lost, failed)
	}
	// Cover at least one renewal tick (15 s) of the scheduler before judging the lease.
	if rest := 16*time.Second - time.Since(leaseStart); rest > 0 {
		time.Sleep(rest)
	}
	close(stopSampling)
	<-sampled
	if len(holders) != 1 {
		t.Errorf("consent scheduler lease holders seen over %v: %d; want exactly one", time.Since(leaseStart).Round(time.Second), len(holders))
	}
	t.Logf("consent scheduler lease: %d holder over %v with both replicas running", len(holders), time.Since(leaseStart).Round(time.Second))
}

func attachmentNames(r jsmsandbox.Request) []string {
	var out []string
	for _, a := range r.Attachments {
		out = append(out, a.Filename)
	}
	sort.Strings(out)
	return out
}

func dupes(sorted []string) string {
	for i := 1; i < len(sorted); i++ {
		if sorted[i] == sorted[i-1] {
			return sorted[i]
		}
	}
	return ""
}

func commentHeads(r jsmsandbox.Request) []string {
	var out []string
	for _, c := range r.Comments {
		out = append(out, tail(strings.ReplaceAll(c.Body, "\n", " "), 60))
	}
	return out
}

package delivery_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/supportbridge/supportbridge/internal/delivery"
	"github.com/supportbridge/supportbridge/internal/jsmsandbox"
)

// BenchmarkDelivery delivers 2,000 reports (one small attachment each, 20 users) against
// the sandbox answering every call after 50 ms. Calls of one report are sequential, so the
// best a worker can do is concurrency / calls-per-report / latency reports per second;
// "efficiency" is the achieved share of that (the target is at least 0.8), which isolates
// the worker's own overhead (Redis, scheduling, claiming) from JSM's latency. The sandbox
// runs without spec validation here (the tests validate every call), since its CPU cost
// would be charged to the worker on a small machine.
//
//	go test -run='^$' -bench=Delivery -benchtime=1x ./internal/delivery/
func BenchmarkDelivery(b *testing.B) {
	const (
		reports     = 2000
		users       = 20
		concurrency = 50
		latency     = 50 * time.Millisecond
	)
	var elapsed time.Duration
	var calls int
	for range b.N {
		b.StopTimer()
		e := newEnv(b, envConfig{realClock: true, unvalidated: true})
		for i := range reports {
			e.enqueue(b, submission(fmt.Sprintf("user%d@customer.example", i%users), "", map[string]string{"har.txt": "GET /api 500"}))
		}
		e.sb.SetFaults(jsmsandbox.Faults{Latency: latency})
		reg := prometheus.NewRegistry()
		opts := e.options(reg)
		opts.Concurrency = concurrency
		opts.Now, opts.Sleep = time.Now, nil
		opts.ClaimIdle = 0 // the default: nothing is claimed in a healthy run
		w := delivery.NewWorker(opts)
		before := len(e.sb.Calls())

		b.StartTimer()
		begin := time.Now()
		stop := start(b, w)
		for metric(b, reg, "supportbridge_delivery_reports_delivered_total", nil)+
			metric(b, reg, "supportbridge_delivery_reports_failed_total", nil) < reports {
			time.Sleep(10 * time.Millisecond)
		}
		elapsed += time.Since(begin)
		b.StopTimer()
		stop()

		if got := len(e.sb.Requests()); got != reports {
			b.Fatalf("%d requests for %d reports", got, reports)
		}
		if n, _ := e.store.QueueLength(context.Background()); n != 0 {
			b.Fatalf("%d reports left on the queue", n)
		}
		calls += len(e.sb.Calls()) - before
	}
	perReport := float64(calls) / float64(reports*b.N)
	achieved := float64(reports*b.N) / elapsed.Seconds()
	ideal := concurrency / perReport / latency.Seconds()
	b.ReportMetric(achieved, "reports/s")
	b.ReportMetric(perReport, "calls/report")
	b.ReportMetric(achieved/ideal, "efficiency")
	b.ReportMetric(0, "ns/op") // one op is a whole run; the rate above is what matters
}

package delivery

import "github.com/prometheus/client_golang/prometheus"

// metrics are the worker's Prometheus series. They are registered on the Registerer given
// in Options, never on the global registry, so tests and several workers do not collide.
type metrics struct {
	delivered prometheus.Counter
	failed    *prometheus.CounterVec   // by why: permanent, exhausted
	attempts  *prometheus.CounterVec   // by outcome: delivered, transient, ambiguous, permanent, interrupted
	step      *prometheus.HistogramVec // by step: customer, create, attach, bundle, comment
	queue     prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) metrics {
	m := metrics{
		delivered: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "supportbridge_delivery_reports_delivered_total",
			Help: "Reports delivered as JSM requests.",
		}),
		failed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "supportbridge_delivery_reports_failed_total",
			Help: "Reports given up on and moved to the dead-letter stream, by why.",
		}, []string{"why"}),
		attempts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "supportbridge_delivery_attempts_total",
			Help: "Delivery attempts, by outcome.",
		}, []string{"outcome"}),
		step: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "supportbridge_delivery_step_duration_seconds",
			Help:    "Time spent in each delivery step, JSM calls and retries within it included.",
			Buckets: []float64{.025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60},
		}, []string{"step"}),
		queue: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "supportbridge_delivery_queue_length",
			Help: "Reports on the delivery stream: queued or being delivered.",
		}),
	}
	reg.MustRegister(m.delivered, m.failed, m.attempts, m.step, m.queue)
	return m
}

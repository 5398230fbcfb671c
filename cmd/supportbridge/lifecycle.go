package main

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/supportbridge/supportbridge/internal/config"
	"github.com/supportbridge/supportbridge/internal/httpapi"
	"github.com/supportbridge/supportbridge/internal/lifecycle"
	"github.com/supportbridge/supportbridge/internal/redisstore"
	"github.com/supportbridge/supportbridge/internal/tenant"
	usagecount "github.com/supportbridge/supportbridge/internal/usage"
)

// lifecycleParts is the data lifecycle of a running service: the purge service (also the
// port tenant uninstall and reinstall call), its scheduled job, the usage counter and the
// erasure store.
type lifecycleParts struct {
	svc     *lifecycle.Service
	job     *lifecycle.Job
	counter *usagecount.Counter
	usage   *redisstore.Usage
	privacy *redisstore.Privacy
	cfg     config.Lifecycle
}

// The purge service is the retention port of tenant.Service (uninstall marks, reinstall
// unmarks): ServiceOptions.Retention = a.life.svc, RetentionPeriod = cfg.Lifecycle.Retention.
var _ tenant.Retention = (*lifecycle.Service)(nil)

// usageFlushInterval is how long counts wait in memory before they are written.
const usageFlushInterval = 5 * time.Second

// buildLifecycle wires the data lifecycle. The purge deletes log files only with
// SB_PURGE_LOGS=true, from the source the logs are read from.
func buildLifecycle(cfg config.Config, rdb redis.UniversalClient, reports *redisstore.Reports, src logSource, reg prometheus.Registerer, log *slog.Logger) (*lifecycleParts, error) {
	purge := redisstore.NewPurge(rdb, redisstore.PurgeOptions{Reports: reports})
	var logs lifecycle.LogPurger
	if cfg.Lifecycle.PurgeLogs {
		logs = src
	}
	svc := lifecycle.New(purge, lifecycle.Options{
		Logs: logs, TenantChanged: redisstore.PublishTenantChanged(rdb), Logger: log,
	})
	u := redisstore.NewUsage(rdb)
	return &lifecycleParts{
		svc:     svc,
		job:     lifecycle.NewJob(svc, purge, lifecycle.JobOptions{Interval: cfg.Lifecycle.PurgeInterval, Logger: log}),
		counter: usagecount.NewCounter(u, reg, nil, log),
		usage:   u,
		privacy: redisstore.NewPrivacy(rdb, deriveKey(cfg.SecretKey.Bytes(), "customer-cache")),
		cfg:     cfg.Lifecycle,
	}, nil
}

// deps are the HTTP layer's part; trackingID recomputes error-tracking ids for erasure.
func (l *lifecycleParts) deps(trackingID lifecycle.TrackingIDFunc) httpapi.DataLifecycleDeps {
	return httpapi.DataLifecycleDeps{
		Purger: l.svc, Usage: l.usage,
		Eraser: lifecycle.NewEraser(l.privacy, trackingID, 0, nil),
	}
}

// start runs the purge job (one replica at a time, by lease) and the usage flusher.
func (l *lifecycleParts) start(ctx context.Context, bg *sync.WaitGroup) {
	bg.Go(func() { l.job.Run(ctx) })
	bg.Go(func() { l.counter.Run(ctx, usageFlushInterval) })
}

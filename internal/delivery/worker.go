// Package delivery is the worker that turns queued problem reports into JSM requests raised
// on behalf of the reporting user, exactly once, even when JSM is slow, rate-limits, fails,
// or a worker dies half-way.
//
// Exactly once rests on three things. Every step a worker finishes is recorded in the store
// before the next one starts, so a successor resumes instead of repeating it. Every
// write-once call (create, attach, comment) is marked pending before it is sent, so an
// unknown outcome (a lost answer, or a crash right after sending) is resolved by looking
// before writing again: the request's marker and the comment's own marker are searched for
// over SearchPatience, because Jira's search is eventually consistent, and temporary files
// are single use, so re-attaching the same ones tells whether the first attach landed.
// And every write is fenced: a worker presumed dead whose entry was claimed by another
// cannot record anything more.
package delivery

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/supportbridge/supportbridge/internal/report"
	"github.com/supportbridge/supportbridge/internal/secret"
	"github.com/supportbridge/supportbridge/internal/tenant"
	"github.com/supportbridge/supportbridge/internal/usage"
)

// Store is the durable queue and step records the worker needs; *redisstore.Reports
// implements it.
type Store interface {
	EnsureGroup(ctx context.Context) error
	Read(ctx context.Context, consumer string, count int, block time.Duration) ([]report.Job, error)
	Claim(ctx context.Context, consumer string, minIdle time.Duration, count int) ([]report.Job, error)
	Touch(ctx context.Context, consumer string, job report.Job) (bool, error)
	Recover(ctx context.Context, olderThan time.Duration) (int, error)
	QueueLength(ctx context.Context) (int64, error)

	Begin(ctx context.Context, job report.Job) (report.Delivery, error)
	Attempt(ctx context.Context, job report.Job, fence int64) (int, error)
	// Record answers the tries since a step last finished, which only a record the report
	// did not have yet resets.
	Record(ctx context.Context, job report.Job, fence int64, r report.StepRecord) (int, error)
	Attachment(ctx context.Context, tenantKey, reportID, attachmentID string) ([]byte, error)
	Delivered(ctx context.Context, job report.Job, fence int64) error
	Failed(ctx context.Context, job report.Job, fence int64, reason string) error

	// CachedReporterEmail and CacheReporterEmail keep what a site said about an account's
	// email for a day, so a busy tenant's site is asked once per reporter and day.
	CachedReporterEmail(ctx context.Context, tenantKey, accountID string) (string, bool, error)
	// SiteToken is the Forge app system token last kept for the tenant, if any.
	SiteToken(ctx context.Context, tenantKey string) (secret.Secret, string, error)
	CacheReporterEmail(ctx context.Context, tenantKey, accountID, email string) error

	CachedCustomer(ctx context.Context, tenantKey, email string) (string, bool, error)
	CacheCustomer(ctx context.Context, tenantKey, email, accountID string) error
	// ForgetCustomer drops the cached accountId of email if it is still accountID.
	ForgetCustomer(ctx context.Context, tenantKey, email, accountID string) error
}

// Tenants finds the installation a report came from, for the bundle and the comment.
type Tenants interface {
	Lookup(ctx context.Context, clientKey string) (tenant.Tenant, error)
}

// Renderer turns a report into what JSM shows: the request description (for the customer
// and agents), the internal comment with account and operation data, and the support
// bundle file.
type Renderer interface {
	Description(report.Report) string
	InternalComment(report.Report, tenant.Tenant) string
	Bundle(report.Report, tenant.Tenant) ([]byte, error)
}

// Options configures a Worker. Store, JSM, Tenants and Render are required.
type Options struct {
	Store   Store
	JSM     JSM
	Tenants Tenants
	Render  Renderer
	// Sites asks reporters' sites for their email; nil confirms none, so every request is
	// raised by the service account.
	Sites Sites
	// Usage counts delivered and failed reports anonymously; nil counts nothing.
	Usage UsageCounter
	// Concurrency is how many reports are delivered at once; default 8.
	Concurrency int
	// MaxAttempts bounds the attempts of a report without progress: an attempt that finishes
	// a step not finished before resets the count, so a slow but advancing delivery is not
	// given up, while one that keeps redoing the same step is. Default 8.
	MaxAttempts int
	// SearchPatience is how long after an ambiguous create (or comment) the worker keeps
	// searching for its marker before writing again; at least 30s, default 45s, because
	// Jira's search index lags behind writes.
	SearchPatience time.Duration
	// ClaimIdle is how long an entry may sit unacknowledged with another consumer before
	// this worker takes it over (XAUTOCLAIM); default 2m. Workers touch the entries they
	// are working on, so only dead workers' entries go idle that long.
	ClaimIdle time.Duration
	// TempFileTTL is how long an uploaded temporary file is trusted to still be attachable;
	// default 30m (JSM keeps them for a limited time).
	TempFileTTL time.Duration
	// Consumer names this worker in the consumer group; default host-pid-random.
	Consumer   string
	Logger     *slog.Logger
	Registerer prometheus.Registerer // default: a private registry, never the global one
	Now        func() time.Time
	// Sleep waits d or until ctx ends; tests inject one that returns at once.
	Sleep func(ctx context.Context, d time.Duration) error
}

const (
	minSearchPatience = 30 * time.Second
	maxSearches       = 20               // per attempt; a search that keeps failing ends the attempt
	unhealthyFor      = 10 * time.Minute // how long a configuration error keeps readiness down
	minBackoff        = time.Second
	maxBackoff        = 2 * time.Minute
	gaugeEvery        = 5 * time.Second
)

// Worker delivers queued reports. Run it in one goroutine; Healthy may be called from any.
type Worker struct {
	store       Store
	jsm         JSM
	sites       Sites
	usage       UsageCounter
	tenants     Tenants
	render      Renderer
	concurrency int
	maxAttempts int
	patience    time.Duration
	claimIdle   time.Duration
	tempTTL     time.Duration
	consumer    string
	log         *slog.Logger
	now         func() time.Time
	sleep       func(ctx context.Context, d time.Duration) error
	m           metrics

	running atomic.Bool
	mu      sync.Mutex
	cfgErr  error // the last configuration error JSM answered, and when
	cfgAt   time.Time
}

// NewWorker returns a worker; it panics when a required dependency is missing, which is a
// wiring mistake.
func NewWorker(opts Options) *Worker {
	if opts.Store == nil || opts.JSM == nil || opts.Tenants == nil || opts.Render == nil {
		panic("delivery: Store, JSM, Tenants and Render are required")
	}
	if opts.Concurrency <= 0 {
		opts.Concurrency = 8
	}
	if opts.MaxAttempts <= 0 {
		opts.MaxAttempts = 8
	}
	if opts.SearchPatience == 0 {
		opts.SearchPatience = 45 * time.Second
	}
	opts.SearchPatience = max(opts.SearchPatience, minSearchPatience)
	if opts.ClaimIdle <= 0 {
		opts.ClaimIdle = 2 * time.Minute
	}
	if opts.TempFileTTL <= 0 {
		opts.TempFileTTL = 30 * time.Minute
	}
	if opts.Consumer == "" {
		host, _ := os.Hostname()
		var b [4]byte
		rand.Read(b[:])
		opts.Consumer = host + "-" + strconv.Itoa(os.Getpid()) + "-" + hex.EncodeToString(b[:])
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Registerer == nil {
		opts.Registerer = prometheus.NewRegistry()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Sleep == nil {
		opts.Sleep = sleep
	}
	return &Worker{
		store: opts.Store, jsm: opts.JSM, sites: opts.Sites, usage: opts.Usage, tenants: opts.Tenants, render: opts.Render,
		concurrency: opts.Concurrency, maxAttempts: opts.MaxAttempts, patience: opts.SearchPatience,
		claimIdle: opts.ClaimIdle, tempTTL: opts.TempFileTTL, consumer: opts.Consumer,
		log: opts.Logger, now: opts.Now, sleep: opts.Sleep, m: newMetrics(opts.Registerer),
	}
}

func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// Healthy reports whether the worker runs and JSM accepts its configuration. It returns an
// error for some minutes after JSM answered a status that only an operator can fix (401,
// 403, 404, or a 400 to a create whose error names the service desk or the request type),
// unless a create has succeeded since. A 400 about one report's data (its customer, its
// summary) fails that report only: one bad report must not take a replica out of service.
func (w *Worker) Healthy() error {
	if !w.running.Load() {
		return errors.New("delivery worker is not running")
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.cfgErr != nil && w.now().Sub(w.cfgAt) < unhealthyFor {
		return w.cfgErr
	}
	return nil
}

// noteJSM remembers configuration errors for Healthy; a successful create clears them.
func (w *Worker) noteJSM(op string, err error) {
	var je *Failure
	w.mu.Lock()
	defer w.mu.Unlock()
	switch {
	case err == nil && op == "create request":
		w.cfgErr = nil
	case errors.As(err, &je) && je.Kind == Permanent && configStatus(je):
		w.cfgErr = fmt.Errorf("JSM configuration is wrong: %s answered %d", je.Op, je.Status)
		w.cfgAt = w.now()
	}
}

// configStatus tells answers that no report could ever get past (credentials, permissions,
// desk, request type, project) from those about one report's data. A create's 400 counts
// only when its error names the desk or the request type; a marker search's query holds
// nothing of the report but a checked marker, so its 400 is about the project.
func configStatus(e *Failure) bool {
	switch e.Status {
	case 401, 403, 404:
		return true
	case 400:
		return (e.Op == "create request" && e.Refused == RefusedConfig) || e.Op == "find by marker"
	}
	return false
}

// Run delivers reports until ctx ends, then waits for the deliveries in progress to stop
// (they stop at their next call; their entries are resumed by whoever claims them). Redis
// outages are waited out and logged, not returned, so Run returns nil once ctx ends.
func (w *Worker) Run(ctx context.Context) error {
	for {
		err := w.store.EnsureGroup(ctx)
		if err == nil {
			break
		}
		w.log.Warn("delivery_queue_unavailable", "error", err)
		if sleep(ctx, time.Second) != nil {
			return nil
		}
	}
	w.running.Store(true)
	defer w.running.Store(false)

	claimEvery := max(w.claimIdle/2, 10*time.Millisecond)
	readBlock := min(claimEvery, 500*time.Millisecond)
	recoverAfter := max(w.claimIdle, time.Minute)
	slots := make(chan struct{}, w.concurrency)
	var wg sync.WaitGroup
	defer wg.Wait()
	var lastClaim, lastGauge time.Time
	failures := 0
	for {
		// Entries are read only for workers that can start on them at once: an entry that
		// waited here would age towards ClaimIdle and be taken by another worker.
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
			return nil
		}
		n := 1
	fill:
		for n < w.concurrency {
			select {
			case slots <- struct{}{}:
				n++
			default:
				break fill
			}
		}
		var jobs []report.Job
		var err error
		if time.Since(lastClaim) >= claimEvery {
			lastClaim = time.Now()
			jobs, err = w.store.Claim(ctx, w.consumer, w.claimIdle, n)
			w.recoverEnqueues(ctx, recoverAfter)
		}
		if time.Since(lastGauge) >= gaugeEvery {
			lastGauge = time.Now()
			if n, err := w.store.QueueLength(ctx); err == nil {
				w.m.queue.Set(float64(n))
			}
		}
		if err == nil && len(jobs) < n {
			var more []report.Job
			more, err = w.store.Read(ctx, w.consumer, n-len(jobs), readBlock)
			jobs = append(jobs, more...)
		}
		for range n - len(jobs) {
			<-slots
		}
		for _, job := range jobs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer func() { <-slots }()
				w.handle(ctx, job)
			}()
		}
		if err == nil {
			failures = 0
			continue
		}
		if ctx.Err() != nil {
			return nil
		}
		failures++
		w.log.Warn("delivery_queue_read_failed", "error", err)
		if sleep(ctx, backoff(failures, 0)) != nil {
			return nil
		}
	}
}

// recoverEnqueues settles enqueues that an API replica left half-way when it crashed. Every
// worker does it, so no extra process is needed; the store makes racing sweeps harmless.
func (w *Worker) recoverEnqueues(ctx context.Context, olderThan time.Duration) {
	if n, err := w.store.Recover(ctx, olderThan); err != nil {
		w.log.Warn("report_recovery_failed", "error", err)
	} else if n > 0 {
		w.log.Info("reports_recovered", "count", n)
	}
}

// handle delivers one entry. Errors end here: they are logged, counted, and either end the
// report (failed) or leave the entry for a later claim.
func (w *Worker) handle(ctx context.Context, job report.Job) {
	d, err := w.store.Begin(ctx, job)
	if errors.Is(err, report.ErrSettled) {
		return
	}
	if err != nil {
		w.log.Warn("delivery_not_started", "report_id", job.ReportID, "error", err)
		return
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go w.keepClaimed(ctx, cancel, job)
	w.deliver(ctx, &d)
}

// keepClaimed touches the entry while a delivery runs, and stops the delivery if the entry
// was taken over after all.
func (w *Worker) keepClaimed(ctx context.Context, cancel context.CancelFunc, job report.Job) {
	t := time.NewTicker(max(w.claimIdle/3, time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			ok, err := w.store.Touch(ctx, w.consumer, job)
			if err == nil && !ok {
				cancel()
				return
			}
		}
	}
}

// deliver runs attempts until the report is delivered, fails for good, or the worker must
// let go of it.
func (w *Worker) deliver(ctx context.Context, d *report.Delivery) {
	log := w.log.With("report_id", d.ReportID, "tenant_key", d.TenantKey)
	for {
		if d.Tries > w.maxAttempts {
			w.fail(ctx, d, log, "exhausted", fmt.Sprintf("gave up after %d attempts without progress", w.maxAttempts))
			return
		}
		err := w.attempt(ctx, d)
		if err == nil {
			err := w.store.Delivered(ctx, d.Job, d.Fence)
			if err != nil && !errors.Is(err, report.ErrSettled) {
				w.m.attempts.WithLabelValues("interrupted").Inc()
				log.Warn("delivered_report_not_settled", "error", err)
				return
			}
			if err == nil && w.usage != nil { // settled by this worker: counted once
				w.usage.Count(ctx, d.TenantKey, usage.ReportsDelivered, 1)
			}
			w.m.attempts.WithLabelValues("delivered").Inc()
			w.m.delivered.Inc()
			log.Info("report_delivered", "ticket_key", d.Progress.TicketKey, "attempts", d.Attempts)
			return
		}
		if ctx.Err() != nil || errors.Is(err, report.ErrSuperseded) {
			w.m.attempts.WithLabelValues("interrupted").Inc()
			return
		}
		kind := kindOf(err)
		w.m.attempts.WithLabelValues(kind.String()).Inc()
		if kind == Permanent {
			w.fail(ctx, d, log, "permanent", reasonOf(err))
			return
		}
		if d.Tries >= w.maxAttempts {
			w.fail(ctx, d, log, "exhausted", fmt.Sprintf("gave up after %d attempts: %s", d.Tries, reasonOf(err)))
			return
		}
		log.Info("delivery_attempt_failed", "tries", d.Tries, "error", err)
		if w.sleep(ctx, backoff(d.Tries, retryAfterOf(err))) != nil {
			return
		}
		tries, err := w.store.Attempt(ctx, d.Job, d.Fence)
		if err != nil {
			// Superseded, or Redis is away: the entry stays pending and is claimed later.
			return
		}
		d.Tries = tries
		d.Attempts++
	}
}

func (w *Worker) fail(ctx context.Context, d *report.Delivery, log *slog.Logger, why, reason string) {
	if err := w.store.Failed(ctx, d.Job, d.Fence, reason); err != nil {
		log.Warn("failed_report_not_settled", "error", err)
		return
	}
	w.m.failed.WithLabelValues(why).Inc()
	if w.usage != nil {
		w.usage.Count(ctx, d.TenantKey, usage.ReportsFailed, 1)
	}
	log.Warn("report_failed", "reason", reason, "attempts", d.Attempts)
}

// backoff is exponential with equal jitter, so workers that failed together do not return
// together; a server's Retry-After is a floor.
func backoff(tries int, retryAfter time.Duration) time.Duration {
	d := minBackoff
	for i := 1; i < tries && d < maxBackoff; i++ {
		d *= 2
	}
	d = min(d, maxBackoff)
	d = d/2 + randDuration(d/2)
	if retryAfter > 0 {
		// Honour it, with a little jitter on top so the rate-limited herd spreads out.
		d = retryAfter + randDuration(retryAfter/10)
	}
	return d
}

// permanentError marks failures that no retry can fix and that are not JSM's answers (a
// report without email, a renderer error). Its reason is safe to show.
type permanentError struct {
	reason string
	err    error
}

func (e *permanentError) Error() string {
	if e.err == nil {
		return e.reason
	}
	return e.reason + ": " + e.err.Error()
}
func (e *permanentError) Unwrap() error { return e.err }

// kindOf classifies any error of an attempt: JSM errors by their Kind, ours by type, and
// everything else (Redis) as transient.
func kindOf(err error) Kind {
	var pe *permanentError
	if errors.As(err, &pe) {
		return Permanent
	}
	var je *Failure
	if errors.As(err, &je) {
		return je.Kind
	}
	return Transient
}

func retryAfterOf(err error) time.Duration {
	var je *Failure
	if errors.As(err, &je) {
		return je.RetryAfter
	}
	return 0
}

// reasonOf is what the report's status says about a failure: JSM errors name the operation
// and status only, never a response body; other errors say which step broke.
func reasonOf(err error) string {
	var pe *permanentError
	if errors.As(err, &pe) {
		return pe.reason
	}
	var je *Failure
	if errors.As(err, &je) {
		return je.Error()
	}
	return "storage unavailable"
}

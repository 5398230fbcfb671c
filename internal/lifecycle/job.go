package lifecycle

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// KeyHash is the hash that stands for a tenant's clientKey in tombstones and receipts.
func KeyHash(tenant string) string {
	sum := sha256.Sum256([]byte(tenant))
	return hex.EncodeToString(sum[:])
}

// Lease lets one replica at a time run the purge job. Acquire hands out a fencing token with
// the lease, higher than every token before it; the store refuses writes with a token lower
// than one a tenant already saw, so a replica that lost its lease (a long pause) cannot
// write after the next holder started.
type Lease interface {
	Acquire(ctx context.Context, holder string, ttl time.Duration) (fence int64, ok bool, err error)
	Release(ctx context.Context, holder string) error
}

// JobOptions configure a Job; zero values take the defaults.
type JobOptions struct {
	Interval time.Duration // between runs; default one minute
	LeaseTTL time.Duration // default five minutes, renewed per tenant
	Batch    int           // tenants per run; default 50
	Now      func() time.Time
	Logger   *slog.Logger
	// Holder names this replica; default random.
	Holder string
}

// Job purges marked tenants whose retention has ended, on one replica at a time.
type Job struct {
	svc    *Service
	lease  Lease
	o      JobOptions
	holder string
}

// NewJob returns the purge job.
func NewJob(svc *Service, lease Lease, o JobOptions) *Job {
	if o.Interval <= 0 {
		o.Interval = time.Minute
	}
	if o.LeaseTTL <= 0 {
		o.LeaseTTL = 5 * time.Minute
	}
	if o.Batch <= 0 {
		o.Batch = 50
	}
	if o.Now == nil {
		o.Now = svc.now
	}
	if o.Logger == nil {
		o.Logger = svc.log
	}
	if o.Holder == "" {
		var b [8]byte
		rand.Read(b[:])
		o.Holder = "purge-" + hex.EncodeToString(b[:])
	}
	return &Job{svc: svc, lease: lease, o: o, holder: o.Holder}
}

// RunOnce purges the tenants due now if this replica gets the lease, and returns how many it
// purged.
func (j *Job) RunOnce(ctx context.Context) (int, error) {
	fence, ok, err := j.lease.Acquire(ctx, j.holder, j.o.LeaseTTL)
	if err != nil {
		return 0, fmt.Errorf("acquire purge lease: %w", err)
	}
	if !ok {
		return 0, nil
	}
	defer func() {
		// A fresh context: the run's may be done, and a lease left behind only delays the
		// next run by its TTL.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
		defer cancel()
		if err := j.lease.Release(rctx, j.holder); err != nil {
			j.o.Logger.WarnContext(ctx, "purge_lease_release_failed", "error", err)
		}
	}()
	due, err := j.svc.store.Due(ctx, j.o.Now(), j.o.Batch)
	if err != nil {
		return 0, fmt.Errorf("list tenants due: %w", err)
	}
	n := 0
	for _, t := range due {
		if ctx.Err() != nil {
			break
		}
		if _, ok, err := j.lease.Acquire(ctx, j.holder, j.o.LeaseTTL); err != nil || !ok {
			// Lost the lease (or Redis): the next holder carries on with a higher token.
			return n, err
		}
		if _, err := j.svc.purge(ctx, t, fence); err != nil {
			if errors.Is(err, ErrSuperseded) {
				// An admin's purge of this tenant (a newer token) took over; it finishes it.
				continue
			}
			j.o.Logger.ErrorContext(ctx, "scheduled_purge_failed", "tenant_key_hash", KeyHash(t), "error", err)
			continue // the tenant stays marked and is tried again next run
		}
		n++
	}
	return n, nil
}

// Run calls RunOnce every interval until ctx ends.
func (j *Job) Run(ctx context.Context) {
	t := time.NewTicker(j.o.Interval)
	defer t.Stop()
	for {
		if _, err := j.RunOnce(ctx); err != nil && ctx.Err() == nil {
			j.o.Logger.WarnContext(ctx, "purge_job_failed", "error", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

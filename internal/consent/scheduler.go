package consent

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/supportbridge/supportbridge/internal/usage"
)

// Tick is one scheduler pass. It records what the clock already decided (Authorize never
// waits for it): grants past their end expire, pending requests past their claim window
// lapse, standing grants are asked to be re-confirmed ReconfirmNotice before ReconfirmBy and
// lapse at ReconfirmBy, and comments or audit entries that could not be delivered earlier are
// retried. Every ReconcileEvery it also asks JSM whether tickets with live consent are done,
// in case a webhook was missed.
//
// Every change is a compare-and-set, so concurrent passes on several replicas are safe and
// each end is commented once; RunScheduler's lease only saves the duplicate work.
func (s *Service) Tick(ctx context.Context) error {
	tenants, err := s.o.Store.Tenants(ctx)
	if err != nil {
		return fmt.Errorf("tick: %w", err)
	}
	now := s.now()
	var errs []error
	for _, t := range tenants {
		if err := ctx.Err(); err != nil {
			return err
		}
		items, err := s.o.Store.Due(ctx, t, now, tickBatch)
		if err != nil {
			errs = append(errs, fmt.Errorf("tick: %w", err))
			continue
		}
		for _, it := range items {
			switch it.Kind {
			case DueRequest:
				err = s.tickRequest(ctx, it.ID)
			case DueGrant:
				err = s.tickGrant(ctx, it.ID)
			}
			if err != nil {
				errs = append(errs, fmt.Errorf("tick %s %s: %w", it.Kind, it.ID, err))
			}
		}
	}
	if s.reconcileDue(now) {
		errs = append(errs, s.reconcile(ctx, tenants))
	}
	return errors.Join(errs...)
}

func (s *Service) reconcileDue(now time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.lastReconcile.IsZero() && now.Sub(s.lastReconcile) < s.o.ReconcileEvery {
		return false
	}
	s.lastReconcile = now
	return true
}

func (s *Service) tickRequest(ctx context.Context, id string) error {
	rec, err := s.o.Store.Request(ctx, id)
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if rec.Notice != "" {
		return s.deliverRequest(ctx, &rec)
	}
	expiredIn := "" // the tenant, once the saved change is this request's expiry
	err = s.updateRequest(ctx, id, func(rec *RequestRecord) error {
		expiredIn = ""
		now := s.now()
		r := &rec.Request
		if r.Status != RequestPending || now.Before(r.ExpiresAt) {
			return nil // not due after all: saving recomputes the schedule entry
		}
		expiredIn = r.Tenant
		r.Status, r.DecidedAt, r.DecidedBy = RequestExpired, r.ExpiresAt, systemActor
		rec.Notice, rec.NoticeAudited, rec.NoticeCommented = noticeExpired, false, false
		if r.Reconfirms != "" {
			rec.NoticeCommented = true // the grant lapses at the same moment and says so
		}
		return nil
	})
	if err == nil && expiredIn != "" {
		s.count(ctx, expiredIn, usage.AccessExpired)
	}
	return err
}

func (s *Service) tickGrant(ctx context.Context, id string) error {
	rec, err := s.o.Store.Grant(ctx, id)
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if rec.Notice != "" {
		return s.deliverGrant(ctx, &rec)
	}
	now := s.now()
	eff := effectiveGrant(rec.Grant, now)
	switch {
	case rec.Grant.Status == GrantActive && eff.Status != GrantActive:
		err := s.endGrant(ctx, id, eff.EndReason, systemActor, nil)
		if errors.Is(err, ErrNoActiveGrant) {
			return nil
		}
		return err
	case eff.Status == GrantActive && eff.UntilRevoked && rec.Reconfirm == "" &&
		!now.Before(eff.ReconfirmBy.Add(-ReconfirmNotice)):
		return s.askReconfirm(ctx, rec)
	}
	// Nothing to do yet (the schedule entry is stale); saving puts it right.
	err = s.saveGrant(ctx, &rec)
	if errors.Is(err, ErrConflict) {
		return nil // someone else wrote it, and that write scheduled it
	}
	return err
}

// askReconfirm opens a re-confirmation request for a standing grant and posts its link. The
// grant is marked first, by compare-and-set, so that only one pass opens one.
func (s *Service) askReconfirm(ctx context.Context, grec GrantRecord) error {
	id, err := s.newID("ar")
	if err != nil {
		return err
	}
	grec.Reconfirm = id
	if err := s.saveGrant(ctx, &grec); err != nil {
		if errors.Is(err, ErrConflict) {
			return nil
		}
		return err
	}
	now, g := s.now(), grec.Grant
	orig, err := s.o.Store.Request(ctx, g.RequestID)
	if err != nil {
		return fmt.Errorf("load original request: %w", err)
	}
	r := AccessRequest{ID: id, Tenant: g.Tenant, TicketKey: g.TicketKey, Reason: orig.Request.Reason,
		Streams: g.Streams, From: g.From, To: g.To, PersonalData: g.PersonalData,
		Duration: Duration{UntilRevoked: true}, Agent: g.Agent, Status: RequestPending,
		CreatedAt: now, ExpiresAt: g.ReconfirmBy, Reconfirms: g.ID}
	if _, err := s.openRequest(ctx, r); err != nil {
		// Unmark the grant so the next pass asks again; the customer still has until
		// ReconfirmBy, and the grant lapses then whatever happens here.
		for range maxAttempts {
			cur, lerr := s.o.Store.Grant(ctx, g.ID)
			if lerr != nil || cur.Reconfirm != id {
				break
			}
			cur.Reconfirm = ""
			if serr := s.saveGrant(ctx, &cur); !errors.Is(serr, ErrConflict) {
				break
			}
		}
		return err
	}
	return nil
}

// reconcile ends consent on tickets JSM says are done, for webhooks that never arrived.
func (s *Service) reconcile(ctx context.Context, tenants []string) error {
	var errs []error
	for _, t := range tenants {
		items, err := s.o.Store.Due(ctx, t, time.Unix(1<<40, 0), 1<<16)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		tickets := map[string]bool{}
		for _, it := range items {
			var ticket string
			switch it.Kind {
			case DueRequest:
				rec, err := s.o.Store.Request(ctx, it.ID)
				if err != nil || rec.Request.Status != RequestPending {
					continue
				}
				ticket = rec.Request.TicketKey
			case DueGrant:
				rec, err := s.o.Store.Grant(ctx, it.ID)
				if err != nil || rec.Grant.Status != GrantActive {
					continue
				}
				ticket = rec.Grant.TicketKey
			}
			if ticket == "" || tickets[ticket] {
				continue
			}
			tickets[ticket] = true
			done, err := s.o.Tickets.TicketDone(ctx, ticket)
			if errors.Is(err, ErrTicketDeleted) {
				errs = append(errs, s.endTicket(ctx, t, ticket, ReasonTicketDeleted))
				continue
			}
			if err != nil {
				errs = append(errs, fmt.Errorf("ticket status: %w", err))
				continue
			}
			if done {
				errs = append(errs, s.endTicket(ctx, t, ticket, ReasonTicketClosed))
			}
		}
	}
	return errors.Join(errs...)
}

// RunScheduler runs Tick every interval until ctx ends, on one replica at a time: each pass
// first takes or renews a lease in the Store. The lease outlives a pass by two intervals, so a
// replica that dies hands over within three; Tick is idempotent, so a pass that overruns its
// lease and overlaps another does no harm.
func (s *Service) RunScheduler(ctx context.Context, interval time.Duration) {
	holder, err := s.newID("sched")
	if err != nil {
		s.o.Logger.Error("consent_scheduler_not_started", "error", err)
		return
	}
	ttl := 3 * interval
	t := time.NewTicker(interval)
	defer t.Stop()
	defer func() {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
		defer cancel()
		if err := s.o.Store.ReleaseLease(rctx, leaseName, holder); err != nil {
			s.o.Logger.Warn("consent_scheduler_release_failed", "error", err)
		}
	}()
	for {
		ok, err := s.o.Store.AcquireLease(ctx, leaseName, holder, ttl)
		switch {
		case err != nil && ctx.Err() == nil:
			s.o.Logger.Warn("consent_scheduler_lease_failed", "error", err)
		case ok:
			if err := s.Tick(ctx); err != nil && ctx.Err() == nil {
				s.o.Logger.Warn("consent_tick_failed", "error", err)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

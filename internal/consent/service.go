package consent

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/supportbridge/supportbridge/internal/audit"
	"github.com/supportbridge/supportbridge/internal/usage"
)

// Options are the dependencies of a Service. Store, Tickets, Streams, Audit, Sites and
// Tenants are required; Preview is optional.
type Options struct {
	Store   Store
	Tickets Tickets
	Streams Streams
	Audit   Auditor
	// Sites asks a customer's site whether a person administers it, at every decision.
	Sites SiteAdmins
	// Tenants says whether a tenant may take part in consent now, and where its admin page is.
	Tenants Tenants
	// Preview shows the customer the first lines of what a request would expose; nil
	// leaves requests without a preview.
	Preview Previewer
	// Now is the clock; nil means time.Now. Every decision uses it, never Redis' clock.
	Now func() time.Time
	// Rand supplies ids; nil means crypto/rand.
	Rand io.Reader
	// ClaimWindow is how long a consent link can be answered; zero means 72 h.
	ClaimWindow time.Duration
	// ReconcileEvery is how often Tick asks JSM whether tickets with live consent are done,
	// covering missed webhooks; zero means 10 minutes.
	ReconcileEvery time.Duration
	Logger         *slog.Logger
	// Usage counts requests, decisions and grant ends anonymously; nil counts nothing.
	Usage UsageCounter
}

// Service runs consent. It is safe for concurrent use and across replicas: every decision is
// a compare-and-set in the Store, so of two concurrent decisions on one request exactly one
// takes effect.
type Service struct {
	o Options

	mu            sync.Mutex
	lastReconcile time.Time // on this replica; a missed pass only delays a backstop
}

// NewService returns a Service.
func NewService(o Options) *Service {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Rand == nil {
		o.Rand = rand.Reader
	}
	if o.ClaimWindow <= 0 {
		o.ClaimWindow = DefaultClaimWindow
	}
	if o.ReconcileEvery <= 0 {
		o.ReconcileEvery = 10 * time.Minute
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return &Service{o: o}
}

const (
	// maxAttempts bounds compare-and-set retries. Each conflict means another writer
	// succeeded, so a few are plenty; the bound only stops a pathological spin.
	maxAttempts = 20
	// noticeRetry is how long a just-made decision's comment and audit entry are left to the
	// caller that made it before the scheduler delivers them instead.
	noticeRetry = 2 * time.Minute
	tickBatch   = 500
	leaseName   = "consent-scheduler"
)

var (
	ticketKeyRE = regexp.MustCompile(`^[A-Z][A-Z0-9_]{0,30}-[1-9][0-9]{0,9}$`)
	idRE        = regexp.MustCompile(`^(ar|gr)_[0-9a-f]{32}$`)
)

func (s *Service) now() time.Time { return s.o.Now().UTC().Round(0) }

func (s *Service) newID(prefix string) (string, error) {
	b := make([]byte, 16)
	if _, err := io.ReadFull(s.o.Rand, b); err != nil {
		return "", fmt.Errorf("generate id: %w", err)
	}
	return prefix + "_" + hex.EncodeToString(b), nil
}

// effectiveRequest is r as of now: a pending request past its claim window is expired even
// before the scheduler has written so.
func effectiveRequest(r AccessRequest, now time.Time) AccessRequest {
	if r.Status == RequestPending && !now.Before(r.ExpiresAt) {
		r.Status = RequestExpired
	}
	return r
}

// effectiveGrant is g as of now: a grant past its end is over even before the scheduler has
// written so, and before Redis has dropped its live copy.
func effectiveGrant(g Grant, now time.Time) Grant {
	if g.Status != GrantActive {
		return g
	}
	switch {
	case !g.UntilRevoked && !now.Before(g.End):
		g.Status, g.EndReason, g.EndedAt = GrantExpired, ReasonExpired, g.End
	case g.UntilRevoked && !now.Before(g.ReconfirmBy):
		g.Status, g.EndReason, g.EndedAt = GrantEnded, ReasonNotReconfirmed, g.ReconfirmBy
	}
	return g
}

// requestDue is when the scheduler must next look at a request.
func requestDue(rec RequestRecord, now time.Time) time.Time {
	switch {
	case rec.Notice != "":
		return now.Add(noticeRetry)
	case rec.Request.Status == RequestPending:
		return rec.Request.ExpiresAt
	}
	return time.Time{}
}

// grantDue is when the scheduler must next look at a grant: its end, or for a standing grant
// the day the customer must be asked again, then the day it lapses.
func grantDue(rec GrantRecord, now time.Time) time.Time {
	g := rec.Grant
	switch {
	case rec.Notice != "":
		return now.Add(noticeRetry)
	case g.Status != GrantActive:
		return time.Time{}
	case !g.UntilRevoked:
		return g.End
	case rec.Reconfirm == "":
		return g.ReconfirmBy.Add(-ReconfirmNotice)
	}
	return g.ReconfirmBy
}

// saveRequest and saveGrant write one record and keep its schedule entry in step with it.
func (s *Service) saveRequest(ctx context.Context, rec *RequestRecord) error {
	return s.o.Store.Save(ctx, Change{Tenant: rec.Request.Tenant, Request: rec, RequestDue: requestDue(*rec, s.now())})
}

func (s *Service) saveGrant(ctx context.Context, rec *GrantRecord) error {
	return s.o.Store.Save(ctx, Change{Tenant: rec.Grant.Tenant, Grant: rec, GrantDue: grantDue(*rec, s.now())})
}

// ---- Agents ----

// RequestAccess validates an agent's request, stores it and announces it on the ticket in a
// public comment that says what is asked and where an administrator of the customer's site
// decides. Nothing in the comment or the answer can approve it: only a site administrator,
// authenticated by Atlassian in their own site, can. Invalid input is a *ValidationError
// listing every problem (an unknown ticket or stream is one too, and also matches
// ErrTicketUnknown or ErrStreamUnknown); a tenant that is uninstalled or disabled is
// ErrTenantInactive.
func (s *Service) RequestAccess(ctx context.Context, agent Actor, in RequestInput) (AccessRequest, error) {
	if !isStaff(agent) {
		return AccessRequest{}, ErrForbidden
	}
	now := s.now()
	r, tenant, err := s.validateRequest(ctx, now, in)
	if err != nil {
		return AccessRequest{}, err
	}
	if err := s.o.Tenants.Active(ctx, tenant); err != nil {
		return AccessRequest{}, err
	}
	if r.ID, err = s.newID("ar"); err != nil {
		return AccessRequest{}, err
	}
	r.Tenant, r.Agent, r.Status, r.CreatedAt = tenant, agent, RequestPending, now
	r.ExpiresAt = now.Add(s.o.ClaimWindow)
	return s.openRequest(ctx, r)
}

// openRequest stores a new pending request and announces it on the ticket. If the
// announcement cannot be posted the request is cancelled at once: a request the customer was
// never told about must not linger.
func (s *Service) openRequest(ctx context.Context, r AccessRequest) (AccessRequest, error) {
	notice := noticeRequested
	if r.Reconfirms != "" {
		notice = noticeReconfirmRequested
	}
	rec := RequestRecord{Request: r, Notice: notice}
	if err := s.o.Store.CreateRequest(ctx, rec, s.now().Add(noticeRetry)); err != nil {
		return AccessRequest{}, fmt.Errorf("create request: %w", err)
	}
	rec.Version = 1 // as stored; see Store.CreateRequest
	where, err := s.o.Tenants.AdminPageURL(ctx, r.Tenant, r.ID)
	if err != nil {
		if cerr := s.cancelUnnotified(ctx, r.ID); cerr != nil {
			s.o.Logger.Warn("consent_cancel_unnotified_failed", "request_id", r.ID, "error", cerr)
		}
		return AccessRequest{}, fmt.Errorf("admin page url: %w", err)
	}
	var body string
	if r.Reconfirms != "" {
		g, err := s.o.Store.Grant(ctx, r.Reconfirms)
		if err != nil {
			return AccessRequest{}, fmt.Errorf("load grant to re-confirm: %w", err)
		}
		body = reconfirmComment(r, g.Grant, where)
	} else {
		body = requestComment(r, where, s.o.ClaimWindow)
	}
	if err := s.postComment(ctx, r.Tenant, r.TicketKey, body); err != nil {
		// The customer was never told, so nobody would decide; withdraw the request.
		if cerr := s.cancelUnnotified(ctx, r.ID); cerr != nil {
			s.o.Logger.Warn("consent_cancel_unnotified_failed", "request_id", r.ID, "error", cerr)
		}
		return AccessRequest{}, fmt.Errorf("announce request: %w", err)
	}
	for range maxAttempts {
		rec.NoticeCommented = true
		err = s.saveRequest(ctx, &rec)
		if !errors.Is(err, ErrConflict) {
			break
		}
		if rec, err = s.o.Store.Request(ctx, r.ID); err != nil {
			break
		}
	}
	if err != nil {
		// The comment is out; the scheduler must not mistake this for an unposted request,
		// but it cannot tell. Report the failure rather than guess.
		return AccessRequest{}, fmt.Errorf("record posted link: %w", err)
	}
	if err := s.deliverRequest(ctx, &rec); err != nil {
		s.o.Logger.Warn("consent_notice_deferred", "request_id", r.ID, "error", err)
	}
	s.count(ctx, rec.Request.Tenant, usage.AccessRequested)
	return rec.Request, nil
}

// cancelUnnotified withdraws a request whose announcement never reached the ticket.
func (s *Service) cancelUnnotified(ctx context.Context, id string) error {
	return s.updateRequest(ctx, id, func(rec *RequestRecord) error {
		if rec.Request.Status != RequestPending {
			return errSkip
		}
		now := s.now()
		rec.Request.Status, rec.Request.CancelReason = RequestCancelled, ReasonNotifyFailed
		rec.Request.DecidedAt, rec.Request.DecidedBy = now, systemActor
		// There is no one to tell on the ticket, but the audit log records it.
		rec.Notice, rec.NoticeAudited, rec.NoticeCommented = noticeCancelled, false, true
		return nil
	})
}

// validateRequest checks everything it can before asking JSM or the log store, and reports
// all problems at once so the agent fixes them in one go.
func (s *Service) validateRequest(ctx context.Context, now time.Time, in RequestInput) (AccessRequest, string, error) {
	v := &ValidationError{}
	r := AccessRequest{
		TicketKey:    strings.TrimSpace(in.TicketKey),
		Reason:       strings.TrimSpace(in.Reason),
		From:         in.From.UTC().Round(0),
		To:           in.To.UTC().Round(0),
		PersonalData: in.PersonalData,
	}
	if !ticketKeyRE.MatchString(r.TicketKey) {
		v.add("/ticketKey", "must be a Jira issue key such as SUP-123", nil)
	}
	switch n := utf8.RuneCountInString(r.Reason); {
	case !utf8.ValidString(r.Reason) || hasControl(r.Reason):
		v.add("/reason", "must be plain text", nil)
	case n < MinReasonLen:
		v.add("/reason", fmt.Sprintf("must be at least %d characters: tell the customer why", MinReasonLen), nil)
	case n > MaxReasonLen:
		v.add("/reason", fmt.Sprintf("must be at most %d characters", MaxReasonLen), nil)
	}
	switch {
	case len(in.Streams) == 0:
		v.add("/streams", "name at least one log stream", nil)
	case len(in.Streams) > MaxStreams:
		v.add("/streams", fmt.Sprintf("name at most %d log streams", MaxStreams), nil)
	}
	seen := map[string]bool{}
	for i, st := range in.Streams {
		path := fmt.Sprintf("/streams/%d", i)
		switch {
		case st == "":
			v.add(path, "must not be empty", nil)
		case seen[st]:
			v.add(path, "is listed twice", nil)
		}
		seen[st] = true
	}
	switch {
	case r.From.IsZero():
		v.add("/from", "is required", nil)
	case r.To.IsZero():
		v.add("/to", "is required", nil)
	case r.From.Year() < 1:
		// Not a log's time, and no JSON time can hold it: the request could not be stored.
		v.add("/from", "must be in the year 0001 or later", nil)
	case !r.From.Before(r.To):
		v.add("/to", "must be after from", nil)
	case r.To.After(now):
		v.add("/to", "must not be in the future: logs can only be read for time that has passed", nil)
	case r.To.Sub(r.From) > MaxWindow:
		v.add("/to", "the window may be at most 31 days wide", nil)
	}
	d, err := ParseDuration(in.Duration)
	if err != nil {
		v.add("/duration", err.Error(), nil)
	}
	r.Duration = d
	if len(v.Fields) > 0 || !ticketKeyRE.MatchString(r.TicketKey) {
		return AccessRequest{}, "", v.orNil()
	}
	tenant, err := s.o.Tickets.TicketTenant(ctx, r.TicketKey)
	if errors.Is(err, ErrTicketUnknown) {
		v.add("/ticketKey", "no ticket with this key came from a known customer site", ErrTicketUnknown)
		return AccessRequest{}, "", v
	}
	if err != nil {
		return AccessRequest{}, "", fmt.Errorf("look up ticket: %w", err)
	}
	done, err := s.o.Tickets.TicketDone(ctx, r.TicketKey)
	if err != nil {
		return AccessRequest{}, "", fmt.Errorf("look up ticket status: %w", err)
	}
	if done {
		v.add("/ticketKey", "the ticket is resolved or closed", nil)
	}
	known, err := s.o.Streams.Streams(ctx, tenant)
	if err != nil {
		return AccessRequest{}, "", fmt.Errorf("list log streams: %w", err)
	}
	for i, st := range in.Streams {
		if !slices.Contains(known, st) {
			v.add(fmt.Sprintf("/streams/%d", i), "this customer has no log stream of that name", ErrStreamUnknown)
		}
	}
	if err := v.orNil(); err != nil {
		return AccessRequest{}, "", err
	}
	r.Streams = slices.Clone(in.Streams)
	return r, tenant, nil
}

// hasControl refuses control characters (newlines and tabs aside) in text that is posted to
// the ticket and shown on the consent page, where escape sequences could disguise it.
func hasControl(s string) bool {
	for _, r := range s {
		if unicode.IsControl(r) && r != '\n' && r != '\t' || r == 0x2028 || r == 0x2029 {
			return true
		}
	}
	return false
}

// isStaff: only authenticated agents and admins, with a stable subject, may ask or revoke.
func isStaff(a Actor) bool {
	return (a.Kind == ActorAgent || a.Kind == ActorAdmin) && a.Subject != ""
}

var systemActor = Actor{Kind: ActorSystem, Name: "supportbridge"}

// GetRequest returns one request as of now.
func (s *Service) GetRequest(ctx context.Context, id string) (AccessRequest, error) {
	if !idRE.MatchString(id) {
		return AccessRequest{}, ErrNotFound
	}
	rec, err := s.o.Store.Request(ctx, id)
	if err != nil {
		return AccessRequest{}, fmt.Errorf("get request: %w", err)
	}
	return effectiveRequest(rec.Request, s.now()), nil
}

// ListRequests returns a ticket's requests, oldest first; none for a ticket without any.
func (s *Service) ListRequests(ctx context.Context, ticketKey string) ([]AccessRequest, error) {
	tenant, err := s.o.Store.TicketTenant(ctx, ticketKey)
	if errors.Is(err, ErrNotFound) {
		return []AccessRequest{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list requests: %w", err)
	}
	recs, err := s.o.Store.TicketRequests(ctx, tenant, ticketKey)
	if err != nil {
		return nil, fmt.Errorf("list requests: %w", err)
	}
	now := s.now()
	out := make([]AccessRequest, 0, len(recs))
	for _, rec := range recs {
		out = append(out, effectiveRequest(rec.Request, now))
	}
	slices.SortStableFunc(out, func(a, b AccessRequest) int { return a.CreatedAt.Compare(b.CreatedAt) })
	return out, nil
}

// CancelRequest withdraws a pending request. Agents may cancel their own requests, admins
// any. A decided request is ErrAlreadyDecided; one past its claim window is ErrGone.
func (s *Service) CancelRequest(ctx context.Context, by Actor, id string) error {
	if !isStaff(by) {
		return ErrForbidden
	}
	if !idRE.MatchString(id) {
		return ErrNotFound
	}
	return s.updateRequest(ctx, id, func(rec *RequestRecord) error {
		r := &rec.Request
		if by.Kind != ActorAdmin && by.Subject != r.Agent.Subject {
			return ErrForbidden
		}
		now := s.now()
		if err := pendingErr(effectiveRequest(*r, now)); err != nil {
			return err
		}
		r.Status, r.DecidedAt, r.DecidedBy = RequestCancelled, now, by
		r.CancelReason = ReasonCancelledByAgent
		if by.Kind == ActorAdmin {
			r.CancelReason = ReasonCancelledByAdmin
		}
		rec.Notice, rec.NoticeAudited, rec.NoticeCommented = noticeCancelled, false, false
		return nil
	})
}

// pendingErr says why a request can no longer be decided, or nil if it can.
func pendingErr(r AccessRequest) error {
	switch r.Status {
	case RequestPending:
		return nil
	case RequestExpired, RequestCancelled:
		return ErrGone
	}
	return ErrAlreadyDecided
}

// errSkip ends an update without writing and without error.
var errSkip = errors.New("nothing to change")

// updateRequest runs change on the current record and saves it, re-reading on conflict, then
// delivers the notice the change owes. change returns errSkip to leave the record alone.
func (s *Service) updateRequest(ctx context.Context, id string, change func(*RequestRecord) error) error {
	for range maxAttempts {
		rec, err := s.o.Store.Request(ctx, id)
		if err != nil {
			return fmt.Errorf("load request: %w", err)
		}
		if err := change(&rec); err != nil {
			if errors.Is(err, errSkip) {
				return nil
			}
			return err
		}
		err = s.saveRequest(ctx, &rec)
		if errors.Is(err, ErrConflict) {
			continue
		}
		if err != nil {
			return fmt.Errorf("save request: %w", err)
		}
		if err := s.deliverRequest(ctx, &rec); err != nil {
			s.o.Logger.Warn("consent_notice_deferred", "request_id", id, "error", err)
		}
		return nil
	}
	return fmt.Errorf("update request: %w", ErrConflict)
}

// ---- Grants ----

// ListGrants returns a ticket's grants as of now, oldest first.
func (s *Service) ListGrants(ctx context.Context, ticketKey string) ([]Grant, error) {
	tenant, err := s.o.Store.TicketTenant(ctx, ticketKey)
	if errors.Is(err, ErrNotFound) {
		return []Grant{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list grants: %w", err)
	}
	recs, err := s.o.Store.TicketGrants(ctx, tenant, ticketKey)
	if err != nil {
		return nil, fmt.Errorf("list grants: %w", err)
	}
	now := s.now()
	out := make([]Grant, 0, len(recs))
	for _, rec := range recs {
		out = append(out, effectiveGrant(rec.Grant, now))
	}
	slices.SortStableFunc(out, func(a, b Grant) int { return a.Start.Compare(b.Start) })
	return out, nil
}

// GetGrant returns one grant as of now, from its durable history.
func (s *Service) GetGrant(ctx context.Context, id string) (Grant, error) {
	if !idRE.MatchString(id) {
		return Grant{}, ErrNotFound
	}
	rec, err := s.o.Store.Grant(ctx, id)
	if err != nil {
		return Grant{}, fmt.Errorf("get grant: %w", err)
	}
	return effectiveGrant(rec.Grant, s.now()), nil
}

// RevokeGrant ends a grant on behalf of staff. An agent may revoke only grants made to them
// (ErrForbidden otherwise); an admin may revoke any, because ending access is always safe.
func (s *Service) RevokeGrant(ctx context.Context, by Actor, grantID string) error {
	if !isStaff(by) {
		return ErrForbidden
	}
	if !idRE.MatchString(grantID) {
		return ErrNotFound
	}
	reason := ReasonRevokedByAgent
	if by.Kind == ActorAdmin {
		reason = ReasonRevokedByAdmin
	}
	return s.endGrant(ctx, grantID, reason, by, func(g Grant) error {
		if by.Kind != ActorAdmin && g.Agent.Subject != by.Subject {
			return ErrForbidden
		}
		return nil
	})
}

// endGrant ends an active grant for reason, cancels its open re-confirmation request, and
// delivers the notice. check may refuse. A grant that is no longer active, by record or by
// clock, is ErrNoActiveGrant; the scheduler records a clock expiry.
func (s *Service) endGrant(ctx context.Context, id, reason string, by Actor, check func(Grant) error) error {
	for range maxAttempts {
		rec, err := s.o.Store.Grant(ctx, id)
		if err != nil {
			return fmt.Errorf("load grant: %w", err)
		}
		if check != nil {
			if err := check(rec.Grant); err != nil {
				return err
			}
		}
		now := s.now()
		eff := effectiveGrant(rec.Grant, now)
		if eff.Status != GrantActive && reason != eff.EndReason {
			return ErrNoActiveGrant
		}
		if rec.Grant.Status != GrantActive {
			return ErrNoActiveGrant
		}
		if reason == eff.EndReason { // the scheduler recording what the clock decided
			rec.Grant = eff
		} else {
			rec.Grant.EndReason, rec.Grant.EndedAt = reason, now
			switch reason {
			case ReasonRevokedByAgent, ReasonRevokedByAdmin, ReasonRevokedByCustomer:
				rec.Grant.Status = GrantRevoked
			default:
				rec.Grant.Status = GrantEnded
			}
		}
		rec.Grant.EndedBy = by
		// A deleted ticket takes no comment; the audit entry still records the end.
		rec.Notice, rec.NoticeAudited, rec.NoticeCommented = noticeEnded, false, reason == ReasonTicketDeleted
		c := Change{Tenant: rec.Grant.Tenant, Grant: &rec, GrantDue: grantDue(rec, now)}
		var rrec RequestRecord
		if rec.Reconfirm != "" {
			rrec, err = s.o.Store.Request(ctx, rec.Reconfirm)
			if err != nil && !errors.Is(err, ErrNotFound) {
				return fmt.Errorf("load re-confirmation request: %w", err)
			}
			if err == nil && rrec.Request.Status == RequestPending {
				r := &rrec.Request
				r.Status, r.DecidedAt, r.DecidedBy, r.CancelReason = RequestCancelled, now, systemActor, ReasonGrantEnded
				if !now.Before(r.ExpiresAt) {
					r.Status, r.CancelReason = RequestExpired, ""
				}
				// The grant's own comment says it all; only the audit log hears of this.
				rrec.Notice, rrec.NoticeAudited, rrec.NoticeCommented = noticeCancelled, false, true
				if r.Status == RequestExpired {
					rrec.Notice = noticeExpired
				}
				c.Request, c.RequestDue = &rrec, requestDue(rrec, now)
			}
			rec.Reconfirm = ""
			c.GrantDue = grantDue(rec, now)
		}
		err = s.o.Store.Save(ctx, c)
		if errors.Is(err, ErrConflict) {
			continue
		}
		if err != nil {
			return fmt.Errorf("end grant: %w", err)
		}
		if err := s.deliverGrant(ctx, &rec); err != nil {
			s.o.Logger.Warn("consent_notice_deferred", "grant_id", id, "error", err)
		}
		if c.Request != nil {
			if err := s.deliverRequest(ctx, c.Request); err != nil {
				s.o.Logger.Warn("consent_notice_deferred", "request_id", c.Request.Request.ID, "error", err)
			}
		}
		s.count(ctx, rec.Grant.Tenant, usage.GrantsEnded(rec.Grant.EndReason))
		return nil
	}
	return fmt.Errorf("end grant: %w", ErrConflict)
}

// Authorize is the only gate for log reads: every read must pass it first, and read only from
// the returned grant's tenant. It allows the read when the grant is active by its record and
// by the clock (not waiting for the scheduler or Redis' expiry), the caller is the agent the
// customer approved, the stream is one the grant names and [from, to] lies inside the grant's
// window. Admins get no exception: the customer consented to one named person, and an admin
// who needs logs asks like anyone else. Failures are ErrNoActiveGrant (nothing to read
// under), ErrForbidden (someone else's grant) and ErrOutOfScope, checked in that order so that
// another agent learns nothing about a grant's scope.
func (s *Service) Authorize(ctx context.Context, grantID string, agent Actor, stream string, from, to time.Time) (Grant, error) {
	g, err := s.authorizeGrant(ctx, grantID, agent)
	if err != nil {
		return Grant{}, err
	}
	if !slices.Contains(g.Streams, stream) {
		return Grant{}, ErrOutOfScope
	}
	if from.IsZero() || to.IsZero() || to.Before(from) || from.Before(g.From) || to.After(g.To) {
		return Grant{}, ErrOutOfScope
	}
	return g, nil
}

// AuthorizeGrant is Authorize without a stream and window: the grant is active by record and
// clock, its tenant is installed and enabled, and agent is the one it was issued to. The log
// reader calls it before the first byte and again while streaming.
func (s *Service) AuthorizeGrant(ctx context.Context, grantID string, agent Actor) (Grant, error) {
	return s.authorizeGrant(ctx, grantID, agent)
}

func (s *Service) authorizeGrant(ctx context.Context, grantID string, agent Actor) (Grant, error) {
	if !idRE.MatchString(grantID) {
		return Grant{}, ErrNoActiveGrant
	}
	g, err := s.o.Store.LiveGrant(ctx, grantID)
	if errors.Is(err, ErrNotFound) {
		return Grant{}, s.whyNoGrant(ctx, grantID)
	}
	if err != nil {
		return Grant{}, fmt.Errorf("authorize: %w", err)
	}
	if g.ID != grantID {
		return Grant{}, ErrNoActiveGrant
	}
	if eff := effectiveGrant(g, s.now()); eff.Status != GrantActive {
		return Grant{}, &NoGrantError{Reason: eff.EndReason}
	}
	if agent.Subject == "" || agent.Subject != g.Agent.Subject {
		return Grant{}, ErrForbidden
	}
	if err := s.o.Tenants.Active(ctx, g.Tenant); err != nil {
		if errors.Is(err, ErrTenantInactive) {
			return Grant{}, &NoGrantError{Reason: ReasonTenantUninstalled}
		}
		return Grant{}, fmt.Errorf("authorize: %w", err)
	}
	return g, nil
}

// whyNoGrant explains a missing live grant from its history, for the agent. Only the
// grant's own agent ever gets this far in a way that matters: everyone else sees the same
// "no active grant" for a grant that does not exist.
func (s *Service) whyNoGrant(ctx context.Context, grantID string) error {
	rec, err := s.o.Store.Grant(ctx, grantID)
	if err != nil || rec.Grant.EndReason == "" {
		return ErrNoActiveGrant
	}
	return &NoGrantError{Reason: rec.Grant.EndReason}
}

// GrantBytesRead is how many log bytes the grant has served so far, for its byte budget.
func (s *Service) GrantBytesRead(ctx context.Context, grantID string) (int64, error) {
	rec, err := s.o.Store.Grant(ctx, grantID)
	if err != nil {
		return 0, fmt.Errorf("grant bytes: %w", err)
	}
	as, err := s.o.Store.Accesses(ctx, rec.Grant.Tenant, grantID)
	if err != nil {
		return 0, fmt.Errorf("grant bytes: %w", err)
	}
	var n int64
	for _, a := range as {
		n += a.Bytes
	}
	return n, nil
}

// RecordAccess records one read under a grant, for the customer's page and the audit chain.
// Call it after every read with what was actually sent, partial reads included.
func (s *Service) RecordAccess(ctx context.Context, grantID string, a Access) error {
	if !idRE.MatchString(grantID) {
		return ErrNotFound
	}
	rec, err := s.o.Store.Grant(ctx, grantID)
	if err != nil {
		return fmt.Errorf("record access: %w", err)
	}
	g := rec.Grant
	if a.Time.IsZero() {
		a.Time = s.now()
	}
	a.Time, a.From, a.To = a.Time.UTC().Round(0), a.From.UTC().Round(0), a.To.UTC().Round(0)
	if err := s.o.Store.AddAccess(ctx, g.Tenant, g.ID, a); err != nil {
		return fmt.Errorf("record access: %w", err)
	}
	details := map[string]string{"stream": a.Stream, "from": stamp(a.From), "to": stamp(a.To),
		"bytes": fmt.Sprint(a.Bytes), "lines": fmt.Sprint(a.Lines)}
	if a.SHA256 != "" {
		details["sha256"] = a.SHA256
	}
	if a.End != "" {
		details["end"] = a.End
	}
	if len(a.Redactions) > 0 {
		kinds := slices.Sorted(maps.Keys(a.Redactions))
		parts := make([]string, len(kinds))
		for i, k := range kinds {
			parts[i] = fmt.Sprintf("%s=%d", k, a.Redactions[k])
		}
		details["redactions"] = clip(strings.Join(parts, ","), audit.MaxDetailValueLen-8)
	}
	e := audit.Entry{Time: a.Time, Tenant: g.Tenant, Ticket: g.TicketKey, Actor: auditActor(a.Agent),
		Action: audit.ActionLogsRead, RequestID: g.RequestID, GrantID: g.ID, Details: details}
	if _, err := s.o.Audit.Append(ctx, e); err != nil {
		return fmt.Errorf("audit access: %w", err)
	}
	return nil
}

// ---- Lifecycle ----

// TicketClosed ends a resolved or closed ticket's grants and withdraws its pending requests.
// It is idempotent, so webhook redeliveries and the scheduler's reconciliation are harmless.
func (s *Service) TicketClosed(ctx context.Context, ticketKey string) error {
	tenant, err := s.o.Store.TicketTenant(ctx, ticketKey)
	if errors.Is(err, ErrNotFound) {
		return nil // no consent was ever asked on this ticket
	}
	if err != nil {
		return fmt.Errorf("ticket closed: %w", err)
	}
	return s.endTicket(ctx, tenant, ticketKey, ReasonTicketClosed)
}

// TicketDeleted ends a deleted ticket's grants and withdraws its pending requests, without
// comments: there is no ticket to post them on. The audit chain records it.
func (s *Service) TicketDeleted(ctx context.Context, ticketKey string) error {
	tenant, err := s.o.Store.TicketTenant(ctx, ticketKey)
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("ticket deleted: %w", err)
	}
	return s.endTicket(ctx, tenant, ticketKey, ReasonTicketDeleted)
}

// TenantUninstalled ends every grant and withdraws every pending request of a tenant.
func (s *Service) TenantUninstalled(ctx context.Context, tenant string) error {
	tickets, err := s.o.Store.TenantTickets(ctx, tenant)
	if err != nil {
		return fmt.Errorf("tenant uninstalled: %w", err)
	}
	var errs []error
	for _, t := range tickets {
		errs = append(errs, s.endTicket(ctx, tenant, t, ReasonTenantUninstalled))
	}
	return errors.Join(errs...)
}

// endTicket withdraws pending requests before ending grants: an approval racing with it
// either loses to the withdrawal or has created its grant by the time grants are read.
func (s *Service) endTicket(ctx context.Context, tenant, ticket, reason string) error {
	var errs []error
	reqs, err := s.o.Store.TicketRequests(ctx, tenant, ticket)
	if err != nil {
		return fmt.Errorf("list requests: %w", err)
	}
	for _, rec := range reqs {
		if rec.Request.Status != RequestPending {
			continue
		}
		errs = append(errs, s.updateRequest(ctx, rec.Request.ID, func(rec *RequestRecord) error {
			if rec.Request.Status != RequestPending {
				return errSkip
			}
			now := s.now()
			r := &rec.Request
			if !now.Before(r.ExpiresAt) {
				// It lapsed before the ticket closed; record that, as the scheduler would.
				r.Status, r.DecidedAt, r.DecidedBy = RequestExpired, r.ExpiresAt, systemActor
				rec.Notice = noticeExpired
			} else {
				r.Status, r.DecidedAt, r.DecidedBy, r.CancelReason = RequestCancelled, now, systemActor, reason
				rec.Notice = noticeCancelled
			}
			// A re-confirmation needs no comment of its own: its grant's end comment says it;
			// a deleted ticket can take none.
			rec.NoticeAudited, rec.NoticeCommented = false, r.Reconfirms != "" || reason == ReasonTicketDeleted
			return nil
		}))
	}
	grants, err := s.o.Store.TicketGrants(ctx, tenant, ticket)
	if err != nil {
		return errors.Join(append(errs, fmt.Errorf("list grants: %w", err))...)
	}
	for _, rec := range grants {
		if rec.Grant.Status != GrantActive {
			continue
		}
		err := s.endGrant(ctx, rec.Grant.ID, reason, systemActor, nil)
		if !errors.Is(err, ErrNoActiveGrant) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

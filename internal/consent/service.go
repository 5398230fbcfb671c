package consent

import (
	"cmp"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/supportbridge/supportbridge/internal/audit"
)

// Options are the dependencies of a Service. Store, Tickets, Streams and Audit are required.
type Options struct {
	Store   Store
	Tickets Tickets
	Streams Streams
	Audit   Auditor
	// Now is the clock; nil means time.Now. Every decision uses it, never Redis' clock.
	Now func() time.Time
	// Rand supplies link tokens and ids; nil means crypto/rand.
	Rand io.Reader
	// ClaimWindow is how long a consent link can be answered; zero means 72 h.
	ClaimWindow time.Duration
	// ReconcileEvery is how often Tick asks JSM whether tickets with live consent are done,
	// covering missed webhooks; zero means 10 minutes.
	ReconcileEvery time.Duration
	// PublicBaseURL is the origin of consent links: <base>/consent/<token>.
	PublicBaseURL string
	Logger        *slog.Logger
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
	o.PublicBaseURL = strings.TrimRight(o.PublicBaseURL, "/")
	return &Service{o: o}
}

// Evidence is everything about consent on one ticket, for the evidence pack.
type Evidence struct {
	TicketKey string          `json:"ticketKey"`
	Tenant    string          `json:"tenant"`
	Requests  []AccessRequest `json:"requests"`
	Grants    []Grant         `json:"grants"`
	Accesses  []GrantAccess   `json:"accesses"`
	Audit     []audit.Entry   `json:"audit"`
	// ChainOK is the verdict on the tenant's whole audit chain, not just this ticket's part:
	// a ticket's entries are only trustworthy if the chain they hang in is intact.
	ChainOK bool `json:"chainOk"`
	// ChainBroken is the reason Verify gave when ChainOK is false.
	ChainBroken string `json:"chainBroken,omitempty"`
}

// GrantAccess is an Access with the grant it was made under.
type GrantAccess struct {
	GrantID string `json:"grantId"`
	Access
}

const (
	// maxAttempts bounds compare-and-set retries. Each conflict means another writer
	// succeeded, so a few are plenty; the bound only stops a pathological spin.
	maxAttempts = 20
	// noticeRetry is how long a just-made decision's comment and audit entry are left to the
	// caller that made it before the scheduler delivers them instead.
	noticeRetry = 2 * time.Minute
	// tokenBytes is the entropy of a consent link: 256 bits, unguessable for good.
	tokenBytes = 32
	tickBatch  = 500
	leaseName  = "consent-scheduler"
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

// newToken returns a link token and the hash that is all the store ever sees.
func (s *Service) newToken() (string, [32]byte, error) {
	b := make([]byte, tokenBytes)
	if _, err := io.ReadFull(s.o.Rand, b); err != nil {
		return "", [32]byte{}, fmt.Errorf("generate token: %w", err)
	}
	tok := base64.RawURLEncoding.EncodeToString(b)
	return tok, sha256.Sum256([]byte(tok)), nil
}

// tokenHash checks the shape of a presented token and hashes it. The token is never compared
// with anything: the store is asked for the hash, so timing reveals nothing about stored
// tokens. Malformed tokens are ErrNotFound, like unknown ones.
func tokenHash(token string) ([32]byte, error) {
	if len(token) != base64.RawURLEncoding.EncodedLen(tokenBytes) {
		return [32]byte{}, ErrNotFound
	}
	for i := 0; i < len(token); i++ {
		c := token[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return [32]byte{}, ErrNotFound
		}
	}
	return sha256.Sum256([]byte(token)), nil
}

func (s *Service) link(token string) string { return s.o.PublicBaseURL + "/consent/" + token }

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

// RequestAccess validates an agent's request, stores it and posts the consent link to the
// customer as a public comment. The link is never returned: only the customer may hold it.
// Invalid input is a *ValidationError listing every problem (an unknown ticket or stream is
// one too, and also matches ErrTicketUnknown or ErrStreamUnknown).
func (s *Service) RequestAccess(ctx context.Context, agent Actor, in RequestInput) (AccessRequest, error) {
	if !isStaff(agent) {
		return AccessRequest{}, ErrForbidden
	}
	now := s.now()
	r, tenant, err := s.validateRequest(ctx, now, in)
	if err != nil {
		return AccessRequest{}, err
	}
	if r.ID, err = s.newID("ar"); err != nil {
		return AccessRequest{}, err
	}
	r.Tenant, r.Agent, r.Status, r.CreatedAt = tenant, agent, RequestPending, now
	r.ExpiresAt = now.Add(s.o.ClaimWindow)
	return s.openRequest(ctx, r)
}

// openRequest stores a new pending request and posts its link. If the link cannot be posted
// the request is cancelled at once: a request the customer never saw must not linger.
func (s *Service) openRequest(ctx context.Context, r AccessRequest) (AccessRequest, error) {
	token, hash, err := s.newToken()
	if err != nil {
		return AccessRequest{}, err
	}
	notice := noticeRequested
	if r.Reconfirms != "" {
		notice = noticeReconfirmRequested
	}
	rec := RequestRecord{Request: r, Notice: notice}
	if err := s.o.Store.CreateRequest(ctx, rec, hash, s.now().Add(noticeRetry)); err != nil {
		return AccessRequest{}, fmt.Errorf("create request: %w", err)
	}
	rec.Version = 1 // as stored; see Store.CreateRequest
	var body string
	if r.Reconfirms != "" {
		g, err := s.o.Store.Grant(ctx, r.Reconfirms)
		if err != nil {
			return AccessRequest{}, fmt.Errorf("load grant to re-confirm: %w", err)
		}
		body = reconfirmComment(r, g.Grant, s.link(token))
	} else {
		body = requestComment(r, s.link(token), s.o.ClaimWindow)
	}
	if err := s.o.Tickets.AddComment(ctx, r.TicketKey, body, true); err != nil {
		// The customer never saw the link, so nobody can use it; withdraw the request.
		if cerr := s.cancelUnnotified(ctx, r.ID); cerr != nil {
			s.o.Logger.Warn("consent_cancel_unnotified_failed", "request_id", r.ID, "error", cerr)
		}
		return AccessRequest{}, fmt.Errorf("post consent link: %w", err)
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
		// The link is out; the scheduler must not mistake this for an unposted request, but
		// it cannot tell. Report the failure rather than guess.
		return AccessRequest{}, fmt.Errorf("record posted link: %w", err)
	}
	if err := s.deliverRequest(ctx, &rec); err != nil {
		s.o.Logger.Warn("consent_notice_deferred", "request_id", r.ID, "error", err)
	}
	return rec.Request, nil
}

// cancelUnnotified withdraws a request whose link never reached the customer.
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

var (
	systemActor   = Actor{Kind: ActorSystem, Name: "supportbridge"}
	customerActor = Actor{Kind: ActorCustomer, Name: "customer (consent link)"}
)

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

// ---- Customers ----

// View returns what the consent page shows for a link: the request, the grant it produced
// (or, for a re-confirmation, the grant it renews) and every read made under it. Unknown or
// malformed tokens are ErrNotFound; a request that lapsed or was withdrawn before anyone
// decided is ErrGone.
func (s *Service) View(ctx context.Context, token string) (View, error) {
	rec, err := s.requestByToken(ctx, token)
	if err != nil {
		return View{}, err
	}
	now := s.now()
	r := effectiveRequest(rec.Request, now)
	if r.Status == RequestExpired || r.Status == RequestCancelled {
		return View{}, ErrGone
	}
	v := View{Request: r, MaxDuration: r.Duration}
	gid := cmp.Or(r.GrantID, r.Reconfirms)
	if gid != "" {
		grec, err := s.o.Store.Grant(ctx, gid)
		if err != nil {
			return View{}, fmt.Errorf("load grant: %w", err)
		}
		g := effectiveGrant(grec.Grant, now)
		v.Grant = &g
		if v.Accesses, err = s.o.Store.Accesses(ctx, g.Tenant, g.ID); err != nil {
			return View{}, fmt.Errorf("load accesses: %w", err)
		}
		if g.Status == GrantActive {
			v.TimeLeft = cmp.Or(g.End, g.ReconfirmBy).Sub(now)
		}
	}
	if r.Status == RequestPending {
		v.TimeLeft = r.ExpiresAt.Sub(now)
	}
	return v, nil
}

// requestByToken resolves a link. Store and shape errors both end as ErrNotFound or an
// outage; nothing tells a guesser how close a token came.
func (s *Service) requestByToken(ctx context.Context, token string) (RequestRecord, error) {
	h, err := tokenHash(token)
	if err != nil {
		return RequestRecord{}, err
	}
	rec, err := s.o.Store.RequestByToken(ctx, h)
	if err != nil {
		return RequestRecord{}, fmt.Errorf("find consent link: %w", err)
	}
	return rec, nil
}

// Approve grants the request behind token. duration "" keeps the requested duration; a
// shorter one is allowed, a longer one is a *ValidationError. The access clock starts now,
// not when the agent asked. A request that was already decided is ErrAlreadyDecided; one
// that lapsed or was withdrawn is ErrGone. Approving a re-confirmation renews its grant.
func (s *Service) Approve(ctx context.Context, token, duration string) (Grant, error) {
	for range maxAttempts {
		rec, err := s.requestByToken(ctx, token)
		if err != nil {
			return Grant{}, err
		}
		now := s.now()
		r := rec.Request
		if err := pendingErr(effectiveRequest(r, now)); err != nil {
			return Grant{}, err
		}
		d := r.Duration
		if strings.TrimSpace(duration) != "" {
			if d, err = ParseDuration(duration); err != nil {
				return Grant{}, &ValidationError{Fields: []FieldError{{Path: "/duration", Message: err.Error()}}}
			}
			if !d.AtMost(r.Duration) {
				return Grant{}, &ValidationError{Fields: []FieldError{{Path: "/duration",
					Message: "you can approve a shorter time than asked for, not a longer one"}}}
			}
		}
		var grec GrantRecord
		if r.Reconfirms != "" {
			if grec, err = s.o.Store.Grant(ctx, r.Reconfirms); err != nil {
				return Grant{}, fmt.Errorf("load grant: %w", err)
			}
			if effectiveGrant(grec.Grant, now).Status != GrantActive {
				return Grant{}, ErrGone
			}
		} else {
			id, err := s.newID("gr")
			if err != nil {
				return Grant{}, err
			}
			grec.Grant = Grant{ID: id, RequestID: r.ID, Tenant: r.Tenant, TicketKey: r.TicketKey,
				Streams: r.Streams, From: r.From, To: r.To, PersonalData: r.PersonalData,
				Agent: r.Agent, Start: now, Status: GrantActive}
		}
		g := &grec.Grant
		g.End, g.UntilRevoked, g.ReconfirmBy = time.Time{}, d.UntilRevoked, time.Time{}
		if d.UntilRevoked {
			g.ReconfirmBy = now.Add(ReconfirmPeriod)
		} else {
			g.End = now.Add(d.D)
		}
		grec.Reconfirm = ""
		rec.Request.Status, rec.Request.DecidedAt, rec.Request.DecidedBy = RequestApproved, now, customerActor
		rec.Request.GrantID, rec.Request.Duration = g.ID, d
		rec.Notice, rec.NoticeAudited, rec.NoticeCommented = noticeApproved, false, false
		err = s.o.Store.Save(ctx, Change{Tenant: r.Tenant, Request: &rec, Grant: &grec,
			RequestDue: requestDue(rec, now), GrantDue: grantDue(grec, now)})
		if errors.Is(err, ErrConflict) {
			continue
		}
		if err != nil {
			return Grant{}, fmt.Errorf("approve: %w", err)
		}
		if err := s.deliverRequest(ctx, &rec); err != nil {
			s.o.Logger.Warn("consent_notice_deferred", "request_id", r.ID, "error", err)
		}
		return grec.Grant, nil
	}
	return Grant{}, fmt.Errorf("approve: %w", ErrConflict)
}

// Deny refuses the request behind token, with an optional note from the customer. Denying a
// re-confirmation ends the standing grant: the customer has said no.
func (s *Service) Deny(ctx context.Context, token, reason string) error {
	reason = strings.TrimSpace(reason)
	if utf8.RuneCountInString(reason) > MaxDenyLen || !utf8.ValidString(reason) || hasControl(reason) {
		return &ValidationError{Fields: []FieldError{{Path: "/reason", Message: fmt.Sprintf("must be plain text of at most %d characters", MaxDenyLen)}}}
	}
	rec, err := s.requestByToken(ctx, token)
	if err != nil {
		return err
	}
	var reconfirms string
	err = s.updateRequest(ctx, rec.Request.ID, func(rec *RequestRecord) error {
		now := s.now()
		if err := pendingErr(effectiveRequest(rec.Request, now)); err != nil {
			return err
		}
		r := &rec.Request
		r.Status, r.DecidedAt, r.DecidedBy, r.DenyReason = RequestDenied, now, customerActor, reason
		rec.Notice, rec.NoticeAudited, rec.NoticeCommented = noticeDenied, false, false
		reconfirms = r.Reconfirms
		return nil
	})
	if err != nil || reconfirms == "" {
		return err
	}
	err = s.endGrant(ctx, reconfirms, ReasonRevokedByCustomer, customerActor, nil)
	if errors.Is(err, ErrNoActiveGrant) {
		return nil
	}
	return err
}

// RevokeByCustomer ends the grant behind token at once. Without an active grant it is
// ErrNoActiveGrant.
func (s *Service) RevokeByCustomer(ctx context.Context, token string) error {
	rec, err := s.requestByToken(ctx, token)
	if err != nil {
		return err
	}
	gid := cmp.Or(rec.Request.GrantID, rec.Request.Reconfirms)
	if gid == "" {
		return ErrNoActiveGrant
	}
	return s.endGrant(ctx, gid, ReasonRevokedByCustomer, customerActor, nil)
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
		rec.Notice, rec.NoticeAudited, rec.NoticeCommented = noticeEnded, false, false
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
	if !idRE.MatchString(grantID) {
		return Grant{}, ErrNoActiveGrant
	}
	g, err := s.o.Store.LiveGrant(ctx, grantID)
	if errors.Is(err, ErrNotFound) {
		return Grant{}, ErrNoActiveGrant
	}
	if err != nil {
		return Grant{}, fmt.Errorf("authorize: %w", err)
	}
	if g.ID != grantID || effectiveGrant(g, s.now()).Status != GrantActive {
		return Grant{}, ErrNoActiveGrant
	}
	if agent.Subject == "" || agent.Subject != g.Agent.Subject {
		return Grant{}, ErrForbidden
	}
	if !slices.Contains(g.Streams, stream) {
		return Grant{}, ErrOutOfScope
	}
	if from.IsZero() || to.IsZero() || to.Before(from) || from.Before(g.From) || to.After(g.To) {
		return Grant{}, ErrOutOfScope
	}
	return g, nil
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
	e := audit.Entry{Time: a.Time, Tenant: g.Tenant, Ticket: g.TicketKey, Actor: auditActor(a.Agent),
		Action: audit.ActionLogsRead, RequestID: g.RequestID, GrantID: g.ID,
		Details: map[string]string{"stream": a.Stream, "from": stamp(a.From), "to": stamp(a.To),
			"bytes": fmt.Sprint(a.Bytes), "lines": fmt.Sprint(a.Lines)}}
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
			// A re-confirmation needs no comment of its own: its grant's end comment says it.
			rec.NoticeAudited, rec.NoticeCommented = false, r.Reconfirms != ""
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

// ---- Evidence ----

// Evidence returns everything about consent on a ticket: requests, grants, reads and the
// ticket's audit entries, with the verdict on the tenant's audit chain. A ticket without any
// consent records is ErrNotFound.
func (s *Service) Evidence(ctx context.Context, ticketKey string) (Evidence, error) {
	tenant, err := s.o.Store.TicketTenant(ctx, ticketKey)
	if err != nil {
		return Evidence{}, fmt.Errorf("evidence: %w", err)
	}
	ev := Evidence{TicketKey: ticketKey, Tenant: tenant, Accesses: []GrantAccess{}}
	if ev.Requests, err = s.ListRequests(ctx, ticketKey); err != nil {
		return Evidence{}, err
	}
	if ev.Grants, err = s.ListGrants(ctx, ticketKey); err != nil {
		return Evidence{}, err
	}
	for _, g := range ev.Grants {
		as, err := s.o.Store.Accesses(ctx, tenant, g.ID)
		if err != nil {
			return Evidence{}, fmt.Errorf("evidence: %w", err)
		}
		for _, a := range as {
			ev.Accesses = append(ev.Accesses, GrantAccess{GrantID: g.ID, Access: a})
		}
	}
	if ev.Audit, err = s.o.Audit.List(ctx, tenant, audit.Filter{Ticket: ticketKey}); err != nil {
		return Evidence{}, fmt.Errorf("evidence: %w", err)
	}
	if ev.Audit == nil {
		ev.Audit = []audit.Entry{}
	}
	res, err := s.o.Audit.Verify(ctx, tenant)
	if err != nil {
		return Evidence{}, fmt.Errorf("evidence: %w", err)
	}
	ev.ChainOK, ev.ChainBroken = res.OK, res.Reason
	return ev, nil
}

package consent

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/supportbridge/supportbridge/internal/audit"
	"github.com/supportbridge/supportbridge/internal/secret"

	"github.com/supportbridge/supportbridge/internal/usage"
)

// SiteAdmin is a person acting in the app's admin page inside their own Atlassian site. Tenant
// and AccountID come from a token Atlassian signed (a Connect page load turned into a page
// token, or a Forge Invocation Token from the admin-page module), never from a request body.
// Whether they administer the site is not part of it: the site is asked at each decision.
type SiteAdmin struct {
	Tenant    string
	AccountID string
	// Via is "connect" or "forge": how the site is asked about the person.
	Via string
	// SystemToken is the app system token Forge sends with the invocation
	// (x-forge-oauth-system), and APIBaseURL where it is accepted; empty for Connect, whose
	// app JWT is signed with the tenant's shared secret.
	SystemToken secret.Secret
	APIBaseURL  string
}

// SiteAdmins asks a customer's site whether a person holds the Administer Jira global
// permission. Check returns nil when they do, ErrNotSiteAdmin when they do not, and an error
// wrapping ErrSiteUnavailable when the site cannot be asked. For reads, implementations may
// remember a "yes" for up to a minute; for a decision they ask the site; they never
// remember a "no".
type SiteAdmins interface {
	Check(ctx context.Context, who SiteAdmin, decision bool) error
}

// Tenants is what consent needs to know about installations.
type Tenants interface {
	// Active returns nil for an installed, enabled tenant and ErrTenantInactive otherwise.
	Active(ctx context.Context, tenant string) error
	// AdminPageURL is where an administrator of the tenant's site opens request id: a deep
	// link into their own site, safe to show to anyone, useful only to its administrators.
	AdminPageURL(ctx context.Context, tenant, requestID string) (string, error)
}

// PreviewLine is one log record of a preview, as the agent would receive it.
type PreviewLine struct {
	Time   time.Time `json:"time"`
	Stream string    `json:"stream"`
	Line   string    `json:"line"`
}

// Preview is what the customer sees of a request's scope before deciding: the first lines as
// the agent would get them, and how much is in scope. Available is false, with a Reason,
// when it could not be computed in time.
type Preview struct {
	Available bool          `json:"available"`
	Reason    string        `json:"reason,omitempty"`
	Lines     []PreviewLine `json:"lines"`
	Files     int           `json:"files"`
	Bytes     int64         `json:"bytes"`
}

// Previewer computes a request's preview with the same reader and redaction as a grant.
type Previewer interface {
	Preview(ctx context.Context, r AccessRequest) Preview
}

// MaxDenyNote is the longest note a site administrator may give with a denial.
const MaxDenyNote = MaxDenyLen

// siteActor is the consent actor of a site administrator.
func siteActor(who SiteAdmin) Actor {
	return Actor{Kind: ActorCustomer, Name: "site administrator", AccountID: who.AccountID}
}

// checkSite is the gate of every site route: the tenant is active and the site says that the
// person administers it (for a decision, says so now).
func (s *Service) checkSite(ctx context.Context, who SiteAdmin, decision bool) error {
	if who.Tenant == "" || who.AccountID == "" {
		return ErrNotSiteAdmin
	}
	if err := s.o.Tenants.Active(ctx, who.Tenant); err != nil {
		return err
	}
	return s.o.Sites.Check(ctx, who, decision)
}

// siteRequest loads a request of the admin's own site; another site's id is ErrNotFound, the
// same as an id that does not exist.
func (s *Service) siteRequest(ctx context.Context, who SiteAdmin, id string) (RequestRecord, error) {
	if !idRE.MatchString(id) || !strings.HasPrefix(id, "ar_") {
		return RequestRecord{}, ErrNotFound
	}
	rec, err := s.o.Store.Request(ctx, id)
	if err != nil {
		return RequestRecord{}, fmt.Errorf("load request: %w", err)
	}
	if rec.Request.Tenant != who.Tenant {
		return RequestRecord{}, ErrNotFound
	}
	return rec, nil
}

// SiteRequests lists the admin's site's requests, newest first, limit at a time from cursor
// ("" for the first page). next is "" on the last page.
func (s *Service) SiteRequests(ctx context.Context, who SiteAdmin, cursor string, limit int) (reqs []AccessRequest, next string, err error) {
	if err := s.checkSite(ctx, who, false); err != nil {
		return nil, "", err
	}
	recs, next, err := s.o.Store.TenantRequests(ctx, who.Tenant, cursor, limit)
	if err != nil {
		return nil, "", fmt.Errorf("list requests: %w", err)
	}
	now := s.now()
	reqs = make([]AccessRequest, 0, len(recs))
	for _, rec := range recs {
		reqs = append(reqs, effectiveRequest(rec.Request, now))
	}
	return reqs, next, nil
}

// SiteView is everything the admin page shows for one request: the request, its grant and
// reads, the audit entries about them and, while it is pending, the preview.
func (s *Service) SiteView(ctx context.Context, who SiteAdmin, id string) (View, error) {
	if err := s.checkSite(ctx, who, false); err != nil {
		return View{}, err
	}
	rec, err := s.siteRequest(ctx, who, id)
	if err != nil {
		return View{}, err
	}
	now := s.now()
	r := effectiveRequest(rec.Request, now)
	v := View{Request: r, MaxDuration: r.Duration, Accesses: []Access{}}
	if gid := cmp.Or(r.GrantID, r.Reconfirms); gid != "" {
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
		if s.o.Preview != nil {
			p := s.o.Preview.Preview(ctx, r)
			v.Preview = &p
			s.auditPreview(ctx, who, r, p)
		}
	}
	entries, err := s.o.Audit.List(ctx, r.Tenant, audit.Filter{Ticket: r.TicketKey})
	if err != nil {
		return View{}, fmt.Errorf("load audit: %w", err)
	}
	v.Audit = []audit.Entry{}
	for _, e := range entries {
		if e.RequestID == r.ID || (v.Grant != nil && e.GrantID == v.Grant.ID) {
			v.Audit = append(v.Audit, e)
		}
	}
	return v, nil
}

// auditPreview records that the customer was shown a preview. It is not an access: nothing
// left for the agent. A failure is logged, not returned: the preview is for the customer, and
// failing to note that they saw it must not stop them from deciding.
func (s *Service) auditPreview(ctx context.Context, who SiteAdmin, r AccessRequest, p Preview) {
	e := audit.Entry{Time: s.now(), Tenant: r.Tenant, Ticket: r.TicketKey, Actor: auditActor(siteActor(who)),
		Action: "preview_shown", RequestID: r.ID,
		Details: map[string]string{"available": fmt.Sprint(p.Available), "lines": fmt.Sprint(len(p.Lines)),
			"files": fmt.Sprint(p.Files), "bytes": fmt.Sprint(p.Bytes)}}
	if _, err := s.o.Audit.Append(ctx, e); err != nil {
		s.o.Logger.Warn("consent_preview_audit_failed", "request_id", r.ID, "error", err)
	}
}

// Approve grants a request of the admin's site. duration "" keeps the requested duration; a
// shorter one is allowed, a longer one is a *ValidationError. The access clock starts now,
// not when the agent asked. A request that was already decided is ErrAlreadyDecided; one that
// lapsed or was withdrawn is ErrGone. Approving a re-confirmation renews its grant. The site
// is asked first; if it says no or cannot be asked, nothing changes.
func (s *Service) Approve(ctx context.Context, who SiteAdmin, id, duration string) (Grant, error) {
	if err := s.checkSite(ctx, who, true); err != nil {
		return Grant{}, err
	}
	decider := siteActor(who)
	for range maxAttempts {
		rec, err := s.siteRequest(ctx, who, id)
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
			gid, err := s.newID("gr")
			if err != nil {
				return Grant{}, err
			}
			grec.Grant = Grant{ID: gid, RequestID: r.ID, Tenant: r.Tenant, TicketKey: r.TicketKey,
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
		g.ApprovedBy = decider
		grec.Reconfirm = ""
		rec.Request.Status, rec.Request.DecidedAt, rec.Request.DecidedBy = RequestApproved, now, decider
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
		s.count(ctx, r.Tenant, usage.AccessApproved)
		return grec.Grant, nil
	}
	return Grant{}, fmt.Errorf("approve: %w", ErrConflict)
}

// Deny refuses a request of the admin's site, with an optional note. Denying a
// re-confirmation ends the standing grant: the customer has said no.
func (s *Service) Deny(ctx context.Context, who SiteAdmin, id, note string) (AccessRequest, error) {
	note = strings.TrimSpace(note)
	if utf8.RuneCountInString(note) > MaxDenyNote || !utf8.ValidString(note) || hasControl(note) {
		return AccessRequest{}, &ValidationError{Fields: []FieldError{{Path: "/note",
			Message: fmt.Sprintf("must be plain text of at most %d characters", MaxDenyNote)}}}
	}
	if err := s.checkSite(ctx, who, true); err != nil {
		return AccessRequest{}, err
	}
	if _, err := s.siteRequest(ctx, who, id); err != nil {
		return AccessRequest{}, err
	}
	decider := siteActor(who)
	var out AccessRequest
	err := s.updateRequest(ctx, id, func(rec *RequestRecord) error {
		now := s.now()
		if err := pendingErr(effectiveRequest(rec.Request, now)); err != nil {
			return err
		}
		r := &rec.Request
		r.Status, r.DecidedAt, r.DecidedBy, r.DenyReason = RequestDenied, now, decider, note
		rec.Notice, rec.NoticeAudited, rec.NoticeCommented = noticeDenied, false, false
		out = *r
		return nil
	})
	if err != nil {
		return AccessRequest{}, err
	}
	s.count(ctx, out.Tenant, usage.AccessDenied)
	if out.Reconfirms != "" {
		err = s.endGrant(ctx, out.Reconfirms, ReasonRevokedByCustomer, decider, nil)
		if err != nil && !errors.Is(err, ErrNoActiveGrant) {
			return AccessRequest{}, err
		}
	}
	return out, nil
}

// SiteGrants lists the admin's site's grants, newest first, limit at a time from cursor.
func (s *Service) SiteGrants(ctx context.Context, who SiteAdmin, cursor string, limit int) (grants []Grant, next string, err error) {
	if err := s.checkSite(ctx, who, false); err != nil {
		return nil, "", err
	}
	recs, next, err := s.o.Store.TenantGrants(ctx, who.Tenant, cursor, limit)
	if err != nil {
		return nil, "", fmt.Errorf("list grants: %w", err)
	}
	now := s.now()
	grants = make([]Grant, 0, len(recs))
	for _, rec := range recs {
		grants = append(grants, effectiveGrant(rec.Grant, now))
	}
	return grants, next, nil
}

// RevokeBySite ends a grant of the admin's site at once. Another site's grant is ErrNotFound;
// one that is no longer active is ErrNoActiveGrant.
func (s *Service) RevokeBySite(ctx context.Context, who SiteAdmin, grantID string) (Grant, error) {
	if err := s.checkSite(ctx, who, true); err != nil {
		return Grant{}, err
	}
	if !idRE.MatchString(grantID) || !strings.HasPrefix(grantID, "gr_") {
		return Grant{}, ErrNotFound
	}
	err := s.endGrant(ctx, grantID, ReasonRevokedByCustomer, siteActor(who), func(g Grant) error {
		if g.Tenant != who.Tenant {
			return ErrNotFound
		}
		return nil
	})
	if errors.Is(err, ErrNotFound) {
		return Grant{}, ErrNotFound
	}
	if err != nil {
		return Grant{}, err
	}
	rec, err := s.o.Store.Grant(ctx, grantID)
	if err != nil {
		return Grant{}, fmt.Errorf("load grant: %w", err)
	}
	return effectiveGrant(rec.Grant, s.now()), nil
}

// WithdrawLegacyRequests withdraws, with a ticket comment, every pending request made when a
// capability link in a public comment could approve it (an agent could read that link and
// approve their own request). The store has already made the old links useless; this tells
// the customer. It runs at start-up and is idempotent. It returns how many were withdrawn.
func (s *Service) WithdrawLegacyRequests(ctx context.Context) (int, error) {
	ids, err := s.o.Store.MigrateLegacy(ctx)
	if err != nil {
		return 0, fmt.Errorf("migrate consent records: %w", err)
	}
	n := 0
	var errs []error
	for _, id := range ids {
		withdrawn := false
		err := s.updateRequest(ctx, id, func(rec *RequestRecord) error {
			r := &rec.Request
			if r.Status != RequestPending {
				return errSkip
			}
			now := s.now()
			if !now.Before(r.ExpiresAt) {
				r.Status, r.DecidedAt, r.DecidedBy = RequestExpired, r.ExpiresAt, systemActor
				rec.Notice = noticeExpired
			} else {
				r.Status, r.DecidedAt, r.DecidedBy, r.CancelReason = RequestCancelled, now, systemActor, ReasonFlowChanged
				rec.Notice = noticeCancelled
			}
			rec.NoticeAudited, rec.NoticeCommented = false, false
			withdrawn = true
			return nil
		})
		if err != nil {
			errs = append(errs, fmt.Errorf("withdraw %s: %w", id, err))
			continue
		}
		if withdrawn {
			n++
		}
	}
	return n, errors.Join(errs...)
}

package consent

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/supportbridge/supportbridge/internal/audit"
)

// Notices: the events a record owes the ticket and the audit chain. A record carries at most
// one at a time, because each is the record's single transition out of pending or active.
const (
	noticeRequested          = "requested"
	noticeReconfirmRequested = "reconfirm_requested"
	noticeApproved           = "approved"
	noticeDenied             = "denied"
	noticeCancelled          = "cancelled"
	noticeExpired            = "expired"
	noticeEnded              = "ended"
)

// deliverRequest writes the audit entry and posts the comment a request owes (see
// deliverNotice). A request whose link was never posted is cancelled instead: only the
// caller that made the link could post it, and the link is lost now.
func (s *Service) deliverRequest(ctx context.Context, rec *RequestRecord) error {
	return s.deliverNotice(ctx, noticeDelivery{
		notice: &rec.Notice, audited: &rec.NoticeAudited, commented: &rec.NoticeCommented,
		unnotifiable: func() bool {
			return rec.Notice == noticeRequested || rec.Notice == noticeReconfirmRequested
		},
		abandon: func() error { return s.cancelUnnotified(ctx, rec.Request.ID) },
		audit:   func() error { return s.auditRequest(ctx, rec) },
		comment: func() (string, string, error) {
			body, err := s.requestNoticeComment(ctx, rec)
			return rec.Request.TicketKey, body, err
		},
		save: func() error { return s.saveRequest(ctx, rec) },
		reload: func() (err error) {
			*rec, err = s.o.Store.Request(ctx, rec.Request.ID)
			return err
		},
	})
}

// deliverGrant is deliverRequest for grants, whose one notice is their end.
func (s *Service) deliverGrant(ctx context.Context, rec *GrantRecord) error {
	return s.deliverNotice(ctx, noticeDelivery{
		notice: &rec.Notice, audited: &rec.NoticeAudited, commented: &rec.NoticeCommented,
		audit: func() error { return s.auditGrant(ctx, rec.Grant) },
		comment: func() (string, string, error) {
			body, err := s.grantEndComment(ctx, rec.Grant)
			return rec.Grant.TicketKey, body, err
		},
		save: func() error { return s.saveGrant(ctx, rec) },
		reload: func() (err error) {
			*rec, err = s.o.Store.Grant(ctx, rec.Grant.ID)
			return err
		},
	})
}

// noticeDelivery is one record's side of deliverNotice: its notice fields (pointers into
// the record, which reload replaces in place) and what to do at each step.
type noticeDelivery struct {
	notice             *string
	audited, commented *bool
	// unnotifiable, when set and true while the comment is still owed, makes delivery call
	// abandon instead of auditing and commenting.
	unnotifiable func() bool
	abandon      func() error
	audit        func() error
	comment      func() (ticket, body string, err error)
	// save writes the record (ErrConflict when someone else wrote it first); reload reads
	// it again.
	save, reload func() error
}

// deliverNotice writes the audit entry and posts the comment a record owes, each at most
// once: a flag is saved after each half, so a retry skips what already landed. Progress made
// here survives a conflicting write by someone else, because it is merged into the re-read
// record. Only a crash between posting and saving the flag can repeat a comment.
func (s *Service) deliverNotice(ctx context.Context, d noticeDelivery) error {
	var p progress
	for range maxAttempts {
		p.merge(*d.notice, d.audited, d.commented)
		switch {
		case *d.notice == "":
			return nil
		case !*d.commented && d.unnotifiable != nil && d.unnotifiable():
			return d.abandon()
		case !*d.audited:
			if err := d.audit(); err != nil {
				return err
			}
			p.did(*d.notice, true, false)
		case !*d.commented:
			ticket, body, err := d.comment()
			if err != nil {
				return err
			}
			if err := s.o.Tickets.AddComment(ctx, ticket, body, true); err != nil {
				return fmt.Errorf("post comment: %w", err)
			}
			p.did(*d.notice, false, true)
		}
		p.merge(*d.notice, d.audited, d.commented)
		if *d.audited && *d.commented {
			*d.notice, *d.audited, *d.commented = "", false, false
		}
		err := d.save()
		if errors.Is(err, ErrConflict) {
			if err := d.reload(); err != nil {
				return err
			}
			continue
		}
		if err != nil {
			return err
		}
	}
	return fmt.Errorf("deliver notice: %w", ErrConflict)
}

// progress remembers which halves of a notice this caller delivered.
type progress struct {
	notice             string
	audited, commented bool
}

func (p *progress) did(notice string, audited, commented bool) {
	if p.notice != notice {
		*p = progress{notice: notice}
	}
	p.audited = p.audited || audited
	p.commented = p.commented || commented
}

func (p *progress) merge(notice string, audited, commented *bool) {
	if notice != "" && notice == p.notice {
		*audited = *audited || p.audited
		*commented = *commented || p.commented
	}
}

// ---- Audit entries ----

// auditActor keeps the subject out of the audit log: it is an internal identifier, and the
// customer reading the log knows agents by name.
func auditActor(a Actor) audit.Actor {
	return audit.Actor{Kind: audit.ActorKind(a.Kind), Name: a.Name, Email: a.Email}
}

// stamp formats a time for audit details and keeps zero times empty.
func stamp(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

// clip keeps a detail under the audit log's value limit. The reason is ticket-visible text,
// so recording it is no new disclosure; clipping only keeps the entry small.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

// utf8RuneStart reports whether b begins a character, so clip never splits one.
func utf8RuneStart(b byte) bool { return b&0xC0 != 0x80 }

// auditRequest records a request's notice. Entries carry the time of the event, not of the
// delivery, so a retried entry still says when things happened.
func (s *Service) auditRequest(ctx context.Context, rec *RequestRecord) error {
	r := rec.Request
	e := audit.Entry{Time: s.now(), Tenant: r.Tenant, Ticket: r.TicketKey, RequestID: r.ID, GrantID: r.GrantID}
	scope := map[string]string{
		"streams": strings.Join(r.Streams, ","), "from": stamp(r.From), "to": stamp(r.To),
		"duration": r.Duration.String(), "personal_data": fmt.Sprint(r.PersonalData),
	}
	switch rec.Notice {
	case noticeRequested:
		e.Actor, e.Action, e.Time = auditActor(r.Agent), audit.ActionAccessRequested, r.CreatedAt
		scope["reason"] = clip(r.Reason, 480)
		scope["expires_at"] = stamp(r.ExpiresAt)
		e.Details = scope
	case noticeReconfirmRequested:
		e.Actor, e.Action, e.Time = auditActor(systemActor), "reconfirmation_requested", r.CreatedAt
		e.GrantID = r.Reconfirms
		e.Details = map[string]string{"expires_at": stamp(r.ExpiresAt)}
	case noticeApproved:
		e.Actor, e.Action, e.Time = auditActor(r.DecidedBy), audit.ActionApproved, r.DecidedAt
		if r.Reconfirms != "" {
			e.Action = "reconfirmed"
		}
		e.Details = scope
	case noticeDenied:
		e.Actor, e.Action, e.Time = auditActor(r.DecidedBy), audit.ActionDenied, r.DecidedAt
		e.GrantID = r.Reconfirms
		if r.DenyReason != "" {
			e.Details = map[string]string{"note": clip(r.DenyReason, 480)}
		}
	case noticeCancelled:
		e.Actor, e.Action, e.Time = auditActor(r.DecidedBy), audit.ActionRequestCancelled, r.DecidedAt
		e.Details = map[string]string{"reason": r.CancelReason}
	case noticeExpired:
		e.Actor, e.Action, e.Time = auditActor(systemActor), audit.ActionRequestExpired, r.ExpiresAt
	default:
		return fmt.Errorf("unknown request notice %q", rec.Notice)
	}
	if _, err := s.o.Audit.Append(ctx, e); err != nil {
		return fmt.Errorf("audit %s: %w", e.Action, err)
	}
	return nil
}

// auditGrant records a grant's end, dated when it ended (for an expiry, the grant's End,
// however late the scheduler noticed).
func (s *Service) auditGrant(ctx context.Context, g Grant) error {
	action := map[string]string{
		ReasonExpired:           audit.ActionExpired,
		ReasonRevokedByCustomer: audit.ActionRevoked,
		ReasonRevokedByAgent:    audit.ActionRevoked,
		ReasonRevokedByAdmin:    audit.ActionRevoked,
		ReasonTicketClosed:      audit.ActionTicketClosed,
		ReasonTenantUninstalled: audit.ActionTenantUninstalled,
		ReasonNotReconfirmed:    "not_reconfirmed",
	}[g.EndReason]
	if action == "" {
		return fmt.Errorf("unknown grant end %q", g.EndReason)
	}
	e := audit.Entry{Time: g.EndedAt, Tenant: g.Tenant, Ticket: g.TicketKey, Actor: auditActor(g.EndedBy),
		Action: action, RequestID: g.RequestID, GrantID: g.ID,
		Details: map[string]string{"reason": g.EndReason, "started_at": stamp(g.Start)}}
	if _, err := s.o.Audit.Append(ctx, e); err != nil {
		return fmt.Errorf("audit %s: %w", action, err)
	}
	return nil
}

// ---- Comments ----
//
// Comments are public: JSM emails them to the customer, who may not know what a "log stream"
// is. They say who, why, what and how long in plain sentences, and what the customer can do.

// when writes a time for people; UTC, because we do not know the customer's zone.
func when(t time.Time) string { return t.UTC().Format("2 Jan 2006 15:04 UTC") }

// agentName names the agent to the customer, who has the right to know who reads their logs.
func agentName(a Actor) string {
	if a.Name != "" {
		return a.Name
	}
	return "A support agent"
}

// scopeLines describes what is asked in the same words for every comment that lists it.
func scopeLines(r AccessRequest) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Which logs: %s\n", strings.Join(r.Streams, ", "))
	fmt.Fprintf(&b, "Which time: log entries written between %s and %s\n", when(r.From), when(r.To))
	if r.PersonalData {
		b.WriteString("Personal data: the agent also asks to see entries that contain personal data (such as names or email addresses).\n")
	} else {
		b.WriteString("Personal data: entries that contain personal data will be hidden.\n")
	}
	return b.String()
}

// requestComment is the consent link's comment: who, why, what, how long, and what the
// customer can do, including that the link is a key and should not be forwarded.
func requestComment(r AccessRequest, link string, window time.Duration) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s from our support team asks for permission to read your app's log files to work on this ticket.\n\n", agentName(r.Agent))
	fmt.Fprintf(&b, "Why: %s\n", r.Reason)
	b.WriteString(scopeLines(r))
	if r.Duration.UntilRevoked {
		b.WriteString("For how long: until you revoke it. We will ask you to confirm again every 90 days, and access ends when this ticket is resolved.\n\n")
	} else {
		fmt.Fprintf(&b, "For how long: %s from the moment you approve, and no longer than this ticket stays open.\n\n", r.Duration.Words())
	}
	fmt.Fprintf(&b, "Nothing is shared unless you approve. You can approve (for a shorter time if you prefer) or decline here:\n%s\n\n", link)
	fmt.Fprintf(&b, "The link works for %s. Anyone who has it can decide, so please do not forward it. After you approve, the same page shows every time your logs are read and lets you revoke access at any moment.", durationWords(window))
	return b.String()
}

// reconfirmComment asks again for standing access, saying when it ends if nobody answers.
func reconfirmComment(r AccessRequest, g Grant, link string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "On %s you allowed %s from our support team to read your app's log files for this ticket until you revoke it.\n\n", when(g.Start), agentName(g.Agent))
	b.WriteString(scopeLines(r))
	fmt.Fprintf(&b, "\nStanding access has to be confirmed every 90 days. If you do nothing, it ends on %s. To keep it, to shorten it, or to end it now, use this link:\n%s\n\n", when(r.ExpiresAt), link)
	b.WriteString("Please do not forward the link: anyone who has it can decide.")
	return b.String()
}

// requestNoticeComment words a decision on a request. It cannot repeat the link: only its
// hash is stored.
func (s *Service) requestNoticeComment(ctx context.Context, rec *RequestRecord) (string, error) {
	r := rec.Request
	who := agentName(r.Agent)
	switch rec.Notice {
	case noticeApproved:
		grec, err := s.o.Store.Grant(ctx, r.GrantID)
		if err != nil {
			return "", fmt.Errorf("load grant: %w", err)
		}
		g := grec.Grant
		verb := "approved"
		if r.Reconfirms != "" {
			verb = "confirmed"
		}
		if g.UntilRevoked {
			return fmt.Sprintf("You %s access to your app's log files for %s until you revoke it. We will ask you to confirm again by %s. Access also ends when this ticket is resolved. Every read is listed on the consent page, where you can revoke access at any time.", verb, who, when(g.ReconfirmBy)), nil
		}
		return fmt.Sprintf("You %s access to your app's log files for %s for %s: access ends on %s, or earlier if you revoke it or this ticket is resolved. Every read is listed on the consent page, where you can revoke access at any time.", verb, who, r.Duration.Words(), when(g.End)), nil
	case noticeDenied:
		if r.Reconfirms != "" {
			return fmt.Sprintf("You chose not to keep %s's standing access to your app's log files. Access has ended.", who), nil
		}
		msg := fmt.Sprintf("You declined %s's request to read your app's log files. Nothing was shared.", who)
		if r.DenyReason != "" {
			msg += "\n\nYour note: " + r.DenyReason
		}
		return msg, nil
	case noticeCancelled:
		switch r.CancelReason {
		case ReasonTicketClosed:
			return fmt.Sprintf("Because this ticket was resolved, %s's request to read your app's log files was withdrawn. The link no longer works and nothing was shared.", who), nil
		case ReasonTenantUninstalled:
			return fmt.Sprintf("Because the app was uninstalled from your site, %s's request to read your app's log files was withdrawn. The link no longer works and nothing was shared.", who), nil
		case ReasonCancelledByAdmin:
			return fmt.Sprintf("A support administrator withdrew %s's request to read your app's log files. The link no longer works and nothing was shared.", who), nil
		}
		return fmt.Sprintf("%s withdrew the request to read your app's log files. The link no longer works and nothing was shared.", who), nil
	case noticeExpired:
		return fmt.Sprintf("Nobody answered %s's request to read your app's log files in time, so the request has lapsed and the link no longer works. Nothing was shared. If support still needs the logs, they will ask again.", who), nil
	}
	return "", fmt.Errorf("unknown request notice %q", rec.Notice)
}

// grantEndComment says why access ended and how many reads were made, so the customer can
// check the consent page against it.
func (s *Service) grantEndComment(ctx context.Context, g Grant) (string, error) {
	who := agentName(g.Agent)
	reads := "No logs were read."
	if as, err := s.o.Store.Accesses(ctx, g.Tenant, g.ID); err != nil {
		return "", fmt.Errorf("load accesses: %w", err)
	} else if n := len(as); n == 1 {
		reads = "Your logs were read once; the consent page lists it."
	} else if n > 1 {
		reads = fmt.Sprintf("Your logs were read %d times; the consent page lists each one.", n)
	}
	var why string
	switch g.EndReason {
	case ReasonExpired:
		why = fmt.Sprintf("%s's access to your app's log files ended on %s, as you approved.", who, when(g.EndedAt))
	case ReasonRevokedByCustomer:
		why = fmt.Sprintf("You revoked %s's access to your app's log files. It ended on %s.", who, when(g.EndedAt))
	case ReasonRevokedByAgent:
		why = fmt.Sprintf("%s no longer needs access to your app's log files and gave it up on %s.", who, when(g.EndedAt))
	case ReasonRevokedByAdmin:
		why = fmt.Sprintf("A support administrator ended %s's access to your app's log files on %s.", who, when(g.EndedAt))
	case ReasonTicketClosed:
		why = fmt.Sprintf("Because this ticket was resolved, %s's access to your app's log files ended on %s.", who, when(g.EndedAt))
	case ReasonTenantUninstalled:
		why = fmt.Sprintf("Because the app was uninstalled from your site, %s's access to your app's log files ended on %s.", who, when(g.EndedAt))
	case ReasonNotReconfirmed:
		why = fmt.Sprintf("%s's standing access to your app's log files ended on %s because it was not confirmed again within 90 days.", who, when(g.EndedAt))
	default:
		return "", fmt.Errorf("unknown grant end %q", g.EndReason)
	}
	return why + " " + reads, nil
}

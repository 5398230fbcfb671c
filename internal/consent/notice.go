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
// deliverNotice). A request whose announcement was never posted is cancelled instead: only
// the caller that opened it posts the announcement, and the scheduler cannot tell whether it
// landed.
func (s *Service) deliverRequest(ctx context.Context, rec *RequestRecord) error {
	return s.deliverNotice(ctx, noticeDelivery{
		tenant: rec.Request.Tenant,
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
		tenant: rec.Grant.Tenant,
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
	tenant             string
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
			err = s.postComment(ctx, d.tenant, ticket, body)
			if err != nil && !errors.Is(err, ErrTicketDeleted) {
				return err
			}
			// On a deleted ticket the comment has nowhere to go: count it as done, so the
			// scheduler does not retry it for ever, and end what the ticket justified.
			if errors.Is(err, ErrTicketDeleted) {
				s.o.Logger.Info("consent_ticket_deleted", "ticket", ticket)
				defer func() {
					if err := s.TicketDeleted(context.WithoutCancel(ctx), ticket); err != nil {
						s.o.Logger.Warn("consent_ticket_deleted_end_failed", "ticket", ticket, "error", err)
					}
				}()
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
	return audit.Actor{Kind: audit.ActorKind(a.Kind), Name: a.Name, Email: a.Email, AccountID: a.AccountID}
}

// AuditHeadPrefix starts the line every comment we post ends with: the tenant's audit chain
// head at that moment, its first 16 hex digits. The ticket is a record we do not control, so
// the evidence pack can check that each head posted there is still in the chain.
const AuditHeadPrefix = "audit: "

// postComment posts a public comment on the ticket, ending with the chain head.
func (s *Service) postComment(ctx context.Context, tenant, ticket, body string) error {
	head, err := s.o.Audit.Head(ctx, tenant)
	if err != nil {
		return fmt.Errorf("read audit head: %w", err)
	}
	body += "\n\n" + AuditHeadPrefix + head.Hash[:16]
	if err := s.o.Tickets.AddComment(ctx, ticket, body, true); err != nil {
		return fmt.Errorf("post comment: %w", err)
	}
	return nil
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
		ReasonTicketDeleted:     "ticket_deleted",
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
// Comments are public: JSM shows them to every agent of the desk and emails them to the
// customer, who may not know what a "log stream" is. They say who, why, what and how long in
// plain sentences, and where a site administrator decides. They carry no secret: the link
// they give leads into the customer's own site, where only its administrators can act.
// Everything a person typed (the reason, a denial note, names) is escaped for Jira's wiki
// markup, so "[click|https://evil.example]" in a reason stays text rather than a link.

// when writes a time for people; UTC, because we do not know the customer's zone.
func when(t time.Time) string { return t.UTC().Format("2 Jan 2006 15:04 UTC") }

// agentName names the agent to the customer, who has the right to know who reads their logs.
func agentName(a Actor) string {
	if a.Name != "" {
		return wikiInline(a.Name)
	}
	return "A support agent"
}

// wikiMarkup are the characters Jira's wiki renderer gives a meaning to inline.
const wikiMarkup = "\\[]{}|*_^~+-?#!"

// wikiInline escapes typed text for use inside a sentence: every markup character gets a
// backslash, and "//" is split so no URL is recognised and linked.
func wikiInline(s string) string {
	var b strings.Builder
	for _, r := range s {
		if r == '\n' || r == '\r' {
			b.WriteByte(' ')
			continue
		}
		if r < 128 && strings.ContainsRune(wikiMarkup, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return strings.ReplaceAll(b.String(), "//", "/\u200b/")
}

// wikiBlock puts typed text in a {noformat} block, inside which Jira renders nothing: no
// links, no formatting, no macros. A "{noformat}" in the text would end the block early, so
// its brace is changed to a look-alike.
func wikiBlock(s string) string {
	lower := strings.ToLower(s)
	var b strings.Builder
	for i := 0; i < len(s); {
		if strings.HasPrefix(lower[i:], "{noformat") {
			b.WriteString("\uFF5B") // FULLWIDTH LEFT CURLY BRACKET
			i++
			continue
		}
		b.WriteByte(s[i])
		i++
	}
	return "{noformat}\n" + b.String() + "\n{noformat}"
}

// scopeLines describes what is asked in the same words for every comment that lists it.
func scopeLines(r AccessRequest) string {
	var b strings.Builder
	streams := make([]string, len(r.Streams))
	for i, st := range r.Streams {
		streams[i] = wikiInline(st)
	}
	fmt.Fprintf(&b, "Which logs: %s\n", strings.Join(streams, ", "))
	fmt.Fprintf(&b, "Which time: log entries written between %s and %s\n", when(r.From), when(r.To))
	if r.PersonalData {
		b.WriteString("Personal data: the agent also asks to see entries that contain personal data (such as names or email addresses).\n")
	} else {
		b.WriteString("Personal data: personal data in the entries will be replaced with pseudonyms.\n")
	}
	return b.String()
}

// requestComment announces a request: who, why, what, how long, and where a site
// administrator decides. It holds nothing that could approve anything.
func requestComment(r AccessRequest, where string, window time.Duration) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s from our support team asks for permission to read your app's log files to work on this ticket.\n\n", agentName(r.Agent))
	fmt.Fprintf(&b, "Why:\n%s\n", wikiBlock(r.Reason))
	b.WriteString(scopeLines(r))
	if r.Duration.UntilRevoked {
		b.WriteString("For how long: until you revoke it. We will ask you to confirm again every 90 days, and access ends when this ticket is resolved.\n\n")
	} else {
		fmt.Fprintf(&b, "For how long: %s from the moment of approval, and no longer than this ticket stays open.\n\n", r.Duration.Words())
	}
	fmt.Fprintf(&b, "Nothing is shared unless an administrator of your Atlassian site approves. They can review the request, see a preview, approve (for a shorter time if they prefer) or decline in the app's Support access page in your site:\n%s\n\n", where)
	fmt.Fprintf(&b, "Only administrators of your site can decide there; the request lapses if nobody decides within %s.", durationWords(window))
	return b.String()
}

// reconfirmComment asks again for standing access, saying when it ends if nobody answers.
func reconfirmComment(r AccessRequest, g Grant, where string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "On %s your site allowed %s from our support team to read your app's log files for this ticket until revoked.\n\n", when(g.Start), agentName(g.Agent))
	b.WriteString(scopeLines(r))
	fmt.Fprintf(&b, "\nStanding access has to be confirmed every 90 days. If nobody does, it ends on %s. An administrator of your site can keep it, shorten it or end it now in the app's Support access page:\n%s", when(r.ExpiresAt), where)
	return b.String()
}

// requestNoticeComment words a decision on a request.
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
		by := "An administrator of your site (Atlassian account " + wikiInline(r.DecidedBy.AccountID) + ")"
		if g.UntilRevoked {
			return fmt.Sprintf("%s %s access to your app's log files for %s until revoked. We will ask to confirm again by %s. Access also ends when this ticket is resolved. Every read is listed in the app's Support access page, where access can be revoked at any time.", by, verb, who, when(g.ReconfirmBy)), nil
		}
		return fmt.Sprintf("%s %s access to your app's log files for %s for %s: access ends on %s, or earlier if revoked or this ticket is resolved. Every read is listed in the app's Support access page, where access can be revoked at any time.", by, verb, who, r.Duration.Words(), when(g.End)), nil
	case noticeDenied:
		if r.Reconfirms != "" {
			return fmt.Sprintf("An administrator of your site chose not to keep %s's standing access to your app's log files. Access has ended.", who), nil
		}
		msg := fmt.Sprintf("An administrator of your site declined %s's request to read your app's log files. Nothing was shared.", who)
		if r.DenyReason != "" {
			msg += "\n\nTheir note:\n" + wikiBlock(r.DenyReason)
		}
		return msg, nil
	case noticeCancelled:
		switch r.CancelReason {
		case ReasonFlowChanged:
			return fmt.Sprintf("%s's request to read your app's log files was withdrawn because the way such requests are decided has changed: the earlier link no longer works, and nothing was shared. If support still needs the logs they will ask again, and an administrator of your Atlassian site will decide in the app's Support access page.", who), nil
		case ReasonTicketDeleted:
			return "", errors.New("a deleted ticket gets no comment")
		case ReasonTicketClosed:
			return fmt.Sprintf("Because this ticket was resolved, %s's request to read your app's log files was withdrawn. Nothing was shared.", who), nil
		case ReasonTenantUninstalled:
			return fmt.Sprintf("Because the app was uninstalled from your site, %s's request to read your app's log files was withdrawn. Nothing was shared.", who), nil
		case ReasonCancelledByAdmin:
			return fmt.Sprintf("A support administrator withdrew %s's request to read your app's log files. Nothing was shared.", who), nil
		}
		return fmt.Sprintf("%s withdrew the request to read your app's log files. Nothing was shared.", who), nil
	case noticeExpired:
		return fmt.Sprintf("Nobody answered %s's request to read your app's log files in time, so the request has lapsed. Nothing was shared. If support still needs the logs, they will ask again.", who), nil
	}
	return "", fmt.Errorf("unknown request notice %q", rec.Notice)
}

// grantEndComment says why access ended and how many reads were made, so the customer can
// check the Support access page against it.
func (s *Service) grantEndComment(ctx context.Context, g Grant) (string, error) {
	who := agentName(g.Agent)
	reads := "No logs were read."
	if as, err := s.o.Store.Accesses(ctx, g.Tenant, g.ID); err != nil {
		return "", fmt.Errorf("load accesses: %w", err)
	} else if n := len(as); n == 1 {
		reads = "Your logs were read once; the app's Support access page lists it."
	} else if n > 1 {
		reads = fmt.Sprintf("Your logs were read %d times; the app's Support access page lists each one.", n)
	}
	var why string
	switch g.EndReason {
	case ReasonExpired:
		why = fmt.Sprintf("%s's access to your app's log files ended on %s, as approved.", who, when(g.EndedAt))
	case ReasonRevokedByCustomer:
		why = fmt.Sprintf("An administrator of your site revoked %s's access to your app's log files. It ended on %s.", who, when(g.EndedAt))
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

package delivery

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/supportbridge/supportbridge/internal/report"
	"github.com/supportbridge/supportbridge/internal/tenant"
)

// Names of steps in the step records. "attach:<id>" is the done record of each user file.
const (
	stepCreate  = "create"
	stepAttach  = "attach"
	stepBundle  = "bundle"
	stepComment = "comment"
)

// attempt runs every step not finished yet, in order, recording each before the next.
func (w *Worker) attempt(ctx context.Context, d *report.Delivery) error {
	p := &d.Progress
	if p.AccountID == "" && p.EmailSource == "" {
		if err := w.timed("customer", func() error { return w.resolveReporter(ctx, d) }); err != nil {
			return err
		}
	}
	if p.TicketKey == "" {
		if err := w.timed("create", func() error { return w.createRequest(ctx, d) }); err != nil {
			return err
		}
	}
	var files []report.AttachmentMeta
	for _, a := range d.Report.Attachments {
		if !p.Done[stepAttach+":"+a.ID] {
			files = append(files, a)
		}
	}
	if len(files) > 0 {
		if err := w.timed("attach", func() error { return w.attachFiles(ctx, d, files) }); err != nil {
			return err
		}
	}
	var t *tenant.Tenant
	if !p.Done[stepBundle] || !p.Done[stepComment] {
		tt, err := w.tenant(ctx, d.TenantKey)
		if err != nil {
			return err
		}
		t = &tt
		w.fillReporter(ctx, d)
	}
	if !p.Done[stepBundle] {
		if err := w.timed("bundle", func() error { return w.attachBundle(ctx, d, *t) }); err != nil {
			return err
		}
	}
	if !p.Done[stepComment] {
		if err := w.timed("comment", func() error { return w.addComment(ctx, d, *t) }); err != nil {
			return err
		}
	}
	return nil
}

// timed runs one step and observes how long it took, retries and searches included, so a
// slow desk shows up per step rather than as one opaque delivery time.
func (w *Worker) timed(step string, f func() error) error {
	start := time.Now() // real time: the histogram measures latency, not the injected clock
	err := f()
	w.m.step.WithLabelValues(step).Observe(time.Since(start).Seconds())
	return err
}

// record writes r and mirrors it in d, so the attempt goes on from what is durable.
func (w *Worker) record(ctx context.Context, d *report.Delivery, r report.StepRecord) error {
	tries, err := w.store.Record(ctx, d.Job, d.Fence, r)
	if err != nil {
		return err
	}
	p := &d.Progress
	if r.AccountID != "" {
		p.AccountID = r.AccountID
	}
	if r.EmailSource != "" {
		p.EmailSource = r.EmailSource
	}
	if r.TicketKey != "" {
		p.TicketKey, p.TicketURL = r.TicketKey, r.TicketURL
	}
	for id, u := range r.Uploads {
		p.Uploads[id] = u
	}
	for _, s := range r.Done {
		p.Done[s] = true
	}
	now := w.now()
	for _, s := range r.Pending {
		p.Pending[s] = now
	}
	for _, s := range r.Settled {
		delete(p.Pending, s)
	}
	// The store's count: only a step the report did not have yet is progress.
	d.Tries = tries
	return nil
}

// settle clears a pending mark after a call that certainly did not take effect. Failing
// to clear it is harmless (the next attempt looks before writing), so its error is dropped.
func (w *Worker) settle(ctx context.Context, d *report.Delivery, step string) {
	_ = w.record(ctx, d, report.StepRecord{Settled: []string{step}})
}

// tenant looks the report's installation up only when a step needs it (bundle and
// comment), so a resumed delivery that has both done never touches the tenant store.
func (w *Worker) tenant(ctx context.Context, key string) (tenant.Tenant, error) {
	t, err := w.tenants.Lookup(ctx, key)
	if errors.Is(err, tenant.ErrNotFound) {
		// Uninstalled and purged since the user reported: the report still deserves its
		// ticket, with what we know of the tenant.
		return tenant.Tenant{ClientKey: key}, nil
	}
	if err != nil && !errors.Is(err, tenant.ErrUninstalled) {
		return tenant.Tenant{}, err
	}
	return t, nil
}

// siteTries bounds the attempts that wait for an unreachable site: after them the request
// is raised by the service account rather than not at all.
const siteTries = 3

// resolveReporter decides whom the request is raised on behalf of. Only the email the
// reporter's own site gives for their accountId is trusted; the address typed into the
// report is a hint that never becomes raiseOnBehalfOf. With no confirmed email the request
// is raised by the service account and nobody is notified at the hint.
func (w *Worker) resolveReporter(ctx context.Context, d *report.Delivery) error {
	email, err := w.reporterEmail(ctx, d)
	switch {
	case err == nil:
	case errors.Is(err, ErrNoVerifiedEmail) || d.Attempts >= siteTries:
		w.log.Info("reporter_email_unverified", "report_id", d.ReportID, "attempts", d.Attempts, "error", err)
		return w.record(ctx, d, report.StepRecord{EmailSource: report.EmailUnverified})
	default:
		return err // the site did not answer; the next attempt asks again
	}
	id, err := w.customerOf(ctx, d, email, false)
	if err != nil {
		return err
	}
	d.Report.Email = email
	return w.record(ctx, d, report.StepRecord{AccountID: id, EmailSource: report.EmailFromSite})
}

// reporterEmail asks the reporter's site for their email, through a day's cache.
func (w *Worker) reporterEmail(ctx context.Context, d *report.Delivery) (string, error) {
	if email, ok, err := w.store.CachedReporterEmail(ctx, d.TenantKey, d.Report.AccountID); err != nil || ok {
		return email, err
	}
	if w.sites == nil || d.Report.AccountID == "" {
		return "", ErrNoVerifiedEmail
	}
	t, err := w.tenant(ctx, d.TenantKey)
	if err != nil {
		return "", err
	}
	if !t.Installed {
		return "", fmt.Errorf("%w: the app is no longer installed on the site", ErrNoVerifiedEmail)
	}
	tok, api, err := w.store.SiteToken(ctx, d.TenantKey)
	if err != nil {
		return "", err
	}
	email, err := w.sites.VerifiedEmail(ctx, Reporter{Tenant: t, AccountID: d.Report.AccountID, SiteToken: tok, SiteAPI: api})
	if err != nil {
		return "", err
	}
	if err := w.store.CacheReporterEmail(ctx, d.TenantKey, d.Report.AccountID, email); err != nil {
		w.log.Warn("reporter_email_not_cached", "report_id", d.ReportID, "error", err)
	}
	return email, nil
}

// fillReporter puts what the worker found out about the reporter into the report before
// it is rendered into the bundle and the internal comment. A resumed delivery asks the
// cache (or the site) for the confirmed email again rather than storing it with the report.
func (w *Worker) fillReporter(ctx context.Context, d *report.Delivery) {
	d.Report.EmailSource = d.Progress.EmailSource
	if d.Progress.EmailSource != report.EmailFromSite || d.Report.Email != "" {
		return
	}
	if email, err := w.reporterEmail(ctx, d); err == nil {
		d.Report.Email = email
	}
}

// customerOf finds the JSM account of email: from the cache, else from JSM (which creates
// the customer and adds it to the desk if needed). fresh bypasses the cache.
func (w *Worker) customerOf(ctx context.Context, d *report.Delivery, email string, fresh bool) (string, error) {
	if !fresh {
		id, ok, err := w.store.CachedCustomer(ctx, d.TenantKey, email)
		if err != nil || ok {
			return id, err
		}
	}
	id, err := w.jsm.ResolveCustomer(ctx, email)
	w.noteJSM("resolve customer", err)
	if err != nil {
		return "", err
	}
	if err := w.store.CacheCustomer(ctx, d.TenantKey, email, id); err != nil {
		w.log.Warn("customer_not_cached", "report_id", d.ReportID, "error", err)
	}
	return id, nil
}

// createRequest raises the request, unless an earlier create whose outcome is unknown
// turns out to have done so.
func (w *Worker) createRequest(ctx context.Context, d *report.Delivery) error {
	marker := d.Report.Marker
	if sent, ok := d.Progress.Pending[stepCreate]; ok {
		t, found, err := w.search(ctx, marker, sent)
		if err != nil {
			return err
		}
		if found {
			return w.record(ctx, d, report.StepRecord{TicketKey: t.Key, TicketURL: t.WebURL, Settled: []string{stepCreate}})
		}
		// Searched for the whole patience without finding it: it was not created.
	}
	desc := w.render.Description(d.Report)
	if !strings.Contains(desc, marker) {
		// FindByMarker can only find what carries the marker.
		desc = withTail(desc, "\n\nsupportbridge reference: "+marker)
	}
	t, err := w.create(ctx, d, desc)
	var je *Failure
	if errors.As(err, &je) && je.Status == http.StatusBadRequest && je.Refused != RefusedConfig && d.Progress.AccountID != "" {
		// Refused for this report's data, not for the desk's configuration. The likely
		// cause that a retry can fix is the customer: cached, or recorded by an earlier
		// attempt, before the account was deleted or merged. Look it up afresh and create
		// once more; a second refusal fails this report, and only it.
		w.log.Info("create_refused_refreshing_customer",
			"report_id", d.ReportID, "subject", je.Refused.String())
		if err := w.refreshCustomer(ctx, d); err != nil {
			return err
		}
		t, err = w.create(ctx, d, desc)
	}
	if err != nil {
		return err
	}
	return w.record(ctx, d, report.StepRecord{TicketKey: t.Key, TicketURL: t.WebURL, Settled: []string{stepCreate}})
}

// create sends one create, marked pending first. An ambiguous outcome is resolved by
// searching for the marker; a definite failure clears the mark and is returned.
func (w *Worker) create(ctx context.Context, d *report.Delivery, desc string) (Ticket, error) {
	marker := d.Report.Marker
	if err := w.record(ctx, d, report.StepRecord{Pending: []string{stepCreate}}); err != nil {
		return Ticket{}, err
	}
	sent := w.now()
	t, err := w.jsm.CreateRequest(ctx, Request{
		Summary: d.Report.Summary, Description: desc, RaiseOnBehalfOf: d.Progress.AccountID,
	})
	w.noteJSM("create request", err)
	if kindOf(err) == Ambiguous {
		var found bool
		var serr error
		t, found, serr = w.search(ctx, marker, sent)
		if serr != nil {
			return Ticket{}, serr
		}
		if !found {
			return Ticket{}, err // the pending mark stays: the next attempt looks once more, then creates
		}
	} else if err != nil {
		w.settle(ctx, d, stepCreate)
		return Ticket{}, err
	}
	return t, nil
}

// refreshCustomer replaces the report's customer by a fresh lookup in JSM, bypassing and
// then correcting the cache, after JSM refused a request raised on behalf of the old one.
func (w *Worker) refreshCustomer(ctx context.Context, d *report.Delivery) error {
	email, err := w.reporterEmail(ctx, d)
	if err != nil {
		return err
	}
	if err := w.store.ForgetCustomer(ctx, d.TenantKey, email, d.Progress.AccountID); err != nil {
		return err
	}
	id, err := w.customerOf(ctx, d, email, true)
	if err != nil {
		return err
	}
	return w.record(ctx, d, report.StepRecord{AccountID: id, EmailSource: report.EmailFromSite})
}

// search looks for marker until SearchPatience after sent has passed. It reports found
// only on a hit and not-found only on a clean miss after the patience; when the searches
// themselves keep failing it returns their error, and nobody may write again yet.
func (w *Worker) search(ctx context.Context, marker string, sent time.Time) (Ticket, bool, error) {
	deadline := sent.Add(w.patience)
	interval := time.Second
	var lastErr error
	for i := 0; ; i++ {
		t, found, err := w.jsm.FindByMarker(ctx, marker)
		w.noteJSM("find by marker", err)
		switch {
		case err == nil && found:
			return t, true, nil
		case err == nil && !w.now().Before(deadline):
			return Ticket{}, false, nil
		case err != nil && (kindOf(err) == Permanent || ctx.Err() != nil):
			return Ticket{}, false, err
		case err != nil:
			lastErr = err
		default:
			lastErr = nil
		}
		if i+1 >= maxSearches {
			if lastErr == nil {
				lastErr = &Failure{Op: "find by marker", Kind: Transient}
			}
			return Ticket{}, false, lastErr
		}
		wait := max(interval, retryAfterOf(err))
		if err == nil {
			wait = min(wait, max(deadline.Sub(w.now()), 0))
		}
		if err := w.sleep(ctx, wait); err != nil {
			return Ticket{}, false, err
		}
		interval = min(interval*2, 10*time.Second)
	}
}

// attachFiles puts the user's files on the request, visible to the customer, in one call.
func (w *Worker) attachFiles(ctx context.Context, d *report.Delivery, files []report.AttachmentMeta) error {
	ids := make([]string, len(files))
	done := make([]string, len(files))
	uploaded, marked := false, false
	for i, a := range files {
		var then []string
		if i == len(files)-1 {
			then = []string{stepAttach}
		}
		id, fresh, err := w.upload(ctx, d, a.ID, a.Filename, then, func() ([]byte, error) {
			b, err := w.store.Attachment(ctx, d.TenantKey, d.ReportID, a.ID)
			if errors.Is(err, report.ErrNotFound) {
				return nil, &permanentError{reason: "attachment missing from storage", err: err}
			}
			return b, err
		})
		if err != nil {
			return err
		}
		ids[i], done[i] = id, stepAttach+":"+a.ID
		uploaded = uploaded || fresh
		marked = fresh && then != nil
	}
	return w.attach(ctx, d, stepAttach, ids, true, uploaded, marked, done)
}

// attachBundle puts the support bundle on the request, for agents only.
func (w *Worker) attachBundle(ctx context.Context, d *report.Delivery, t tenant.Tenant) error {
	id, fresh, err := w.upload(ctx, d, report.BundleFileID, "support-bundle-"+d.ReportID+".json", []string{stepBundle}, func() ([]byte, error) {
		b, err := w.render.Bundle(d.Report, t)
		if err != nil {
			return nil, &permanentError{reason: "support bundle could not be built", err: err}
		}
		return b, nil
	})
	if err != nil {
		return err
	}
	return w.attach(ctx, d, stepBundle, []string{id}, false, fresh, fresh, []string{stepBundle})
}

// upload returns a temporary file id for a file: the recorded one while it is still
// attachable, else a new upload, recorded. Uploads may be repeated harmlessly (an unused
// temporary file expires), so they need no pending mark of their own; then names the
// write-once call that follows at once, whose pending mark rides on the same write (one
// round trip less per file set). fresh reports a new upload.
func (w *Worker) upload(ctx context.Context, d *report.Delivery, fileID, name string, then []string, content func() ([]byte, error)) (string, bool, error) {
	if u, ok := d.Progress.Uploads[fileID]; ok && u.TempID != "" && w.now().Sub(u.At) < w.tempTTL {
		return u.TempID, false, nil
	}
	b, err := content()
	if err != nil {
		return "", false, err
	}
	at := w.now()
	id, err := w.jsm.UploadTemporary(ctx, name, b)
	w.noteJSM("upload temporary file", err)
	if err != nil {
		return "", false, err
	}
	err = w.record(ctx, d, report.StepRecord{Uploads: map[string]report.Upload{fileID: {TempID: id, At: at}}, Pending: then})
	return id, true, err
}

// attach sends one write-once attach call. When an earlier attach of the same temporary
// files had an unknown outcome, JSM's answer tells what happened: temporary files are
// single use, so a 400 to files that were fresh and not re-uploaded means the earlier call
// attached them.
func (w *Worker) attach(ctx context.Context, d *report.Delivery, step string, tempIDs []string, public, reuploaded, marked bool, done []string) error {
	_, uncertain := d.Progress.Pending[step]
	if marked {
		// The upload just before set the mark; files uploaded now were never attached.
		uncertain = false
	} else if err := w.record(ctx, d, report.StepRecord{Pending: []string{step}}); err != nil {
		return err
	}
	err := w.jsm.AttachTemporary(ctx, d.Progress.TicketKey, tempIDs, public)
	var je *Failure
	switch {
	case err == nil:
	case uncertain && !reuploaded && errors.As(err, &je) && je.Status == http.StatusBadRequest:
		w.log.Info("attachment_already_attached", "report_id", d.ReportID, "step", step)
	case kindOf(err) == Ambiguous:
		return err
	default:
		w.noteJSM("attach temporary files", err)
		w.settle(ctx, d, step)
		return err
	}
	return w.record(ctx, d, report.StepRecord{Done: done, Settled: []string{step}})
}

// addComment adds the internal comment with account and operation data. The comment
// carries a marker of its own, so an unknown outcome is resolved by searching for it.
func (w *Worker) addComment(ctx context.Context, d *report.Delivery, t tenant.Tenant) error {
	marker := commentMarker(d.Report.Marker)
	key := d.Progress.TicketKey
	if sent, ok := d.Progress.Pending[stepComment]; ok {
		found, err := w.searchComment(ctx, marker, key, sent)
		if err != nil {
			return err
		}
		if found {
			return w.record(ctx, d, report.StepRecord{Done: []string{stepComment}, Settled: []string{stepComment}})
		}
	}
	body := withTail(w.render.InternalComment(d.Report, t), "\n\nsupportbridge reference: "+marker)
	if err := w.record(ctx, d, report.StepRecord{Pending: []string{stepComment}}); err != nil {
		return err
	}
	sent := w.now()
	_, err := w.jsm.AddComment(ctx, key, body, false)
	w.noteJSM("add comment", err)
	if kindOf(err) == Ambiguous {
		found, serr := w.searchComment(ctx, marker, key, sent)
		if serr != nil {
			return serr
		}
		if !found {
			return err
		}
	} else if err != nil {
		w.settle(ctx, d, stepComment)
		return err
	}
	return w.record(ctx, d, report.StepRecord{Done: []string{stepComment}, Settled: []string{stepComment}})
}

// searchComment reports whether the comment carrying marker is on the request key; a hit
// on another request (which would be a bug elsewhere) does not count.
func (w *Worker) searchComment(ctx context.Context, marker, key string, sent time.Time) (bool, error) {
	t, found, err := w.search(ctx, marker, sent)
	return found && strings.EqualFold(t.Key, key), err
}

// commentMarker is the comment's own marker, derived from the request's so it needs no
// storage, and a distinct word so that a search for it never matches the description.
func commentMarker(marker string) string {
	sum := sha256.Sum256([]byte("comment:" + marker))
	return "sbc" + hex.EncodeToString(sum[:12])
}

// randDuration is a random duration in [0, d), the jitter of backoffs.
func randDuration(d time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	return rand.N(d)
}

// maxTextRunes is JSM's limit on a comment or description (32,767 characters).
const maxTextRunes = 32767

// withTail appends tail (a marker) to body, shortening body if needed so the marker always
// fits: a comment that JSM refuses for its length, or one without its marker, cannot be
// delivered exactly once.
func withTail(body, tail string) string {
	room := maxTextRunes - utf8.RuneCountInString(tail)
	if utf8.RuneCountInString(body) > room {
		body = string([]rune(body)[:max(room-1, 0)]) + "…"
	}
	return body + tail
}

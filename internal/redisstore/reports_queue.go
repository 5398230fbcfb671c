package redisstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/supportbridge/supportbridge/internal/report"
)

// This file is the worker's side of Reports: the consumer group on the delivery stream,
// the per-report step records, and settling entries (delivered, failed, dead letters).
//
// A report's hash holds, besides the report JSON and its status, one field per step record:
// "customer", "ticketKey"/"ticketUrl", "upload:<file>", "done:<step>" and
// "pending:<step>". Every write a worker makes is fenced: it names the fence it got from
// Begin, and a newer Begin (another worker claimed the entry) makes those writes fail with
// report.ErrSuperseded.

// EnsureGroup creates the delivery stream and its consumer group if they do not exist. The
// group starts at the beginning of the stream, so reports queued before the first worker
// ever started are delivered too.
func (s *Reports) EnsureGroup(ctx context.Context) error {
	err := s.rdb.XGroupCreateMkStream(ctx, s.streamKey(), s.group, "0").Err()
	if err != nil && !strings.HasPrefix(err.Error(), "BUSYGROUP") {
		return unavailable("create consumer group", err)
	}
	return nil
}

// Read hands consumer up to count new entries, waiting up to block for the first.
func (s *Reports) Read(ctx context.Context, consumer string, count int, block time.Duration) ([]report.Job, error) {
	streams, err := s.rdb.XReadGroup(ctx, &redis.XReadGroupArgs{
		Group: s.group, Consumer: consumer, Streams: []string{s.streamKey(), ">"},
		Count: int64(count), Block: block,
	}).Result()
	if errors.Is(err, redis.Nil) {
		return nil, nil
	}
	if err != nil && strings.HasPrefix(err.Error(), "NOGROUP") {
		// The stream was deleted under us (a flushed database): recreate and read again.
		if err := s.EnsureGroup(ctx); err != nil {
			return nil, err
		}
		return nil, nil
	}
	if err != nil {
		return nil, unavailable("read delivery queue", err)
	}
	var jobs []report.Job
	for _, st := range streams {
		jobs = append(jobs, jobsOf(st.Messages)...)
	}
	return jobs, nil
}

// Claim takes over up to count entries that another consumer (presumably crashed) left
// unacknowledged for longer than minIdle.
func (s *Reports) Claim(ctx context.Context, consumer string, minIdle time.Duration, count int) ([]report.Job, error) {
	var jobs []report.Job
	start := "0-0"
	for len(jobs) < count {
		msgs, next, err := s.rdb.XAutoClaim(ctx, &redis.XAutoClaimArgs{
			Stream: s.streamKey(), Group: s.group, Consumer: consumer,
			MinIdle: minIdle, Start: start, Count: int64(count - len(jobs)),
		}).Result()
		if err != nil {
			if strings.HasPrefix(err.Error(), "NOGROUP") {
				return nil, s.EnsureGroup(ctx)
			}
			return jobs, unavailable("claim delivery entries", err)
		}
		jobs = append(jobs, jobsOf(msgs)...)
		if next == "0-0" || next == "" {
			break
		}
		start = next
	}
	return jobs, nil
}

func jobsOf(msgs []redis.XMessage) []report.Job {
	jobs := make([]report.Job, 0, len(msgs))
	for _, m := range msgs {
		t, _ := m.Values["t"].(string)
		r, _ := m.Values["r"].(string)
		// A malformed entry still becomes a job: Begin finds no report and removes it.
		jobs = append(jobs, report.Job{EntryID: m.ID, TenantKey: t, ReportID: r})
	}
	return jobs
}

// Touch tells the queue that consumer is still working on job, so it is not claimed by
// another worker. It reports false when the entry is no longer this consumer's.
func (s *Reports) Touch(ctx context.Context, consumer string, job report.Job) (bool, error) {
	n, err := touchScript.Run(ctx, s.rdb, []string{s.streamKey()}, s.group, consumer, job.EntryID).Int()
	if err != nil {
		return false, unavailable("touch delivery entry", err)
	}
	return n == 1, nil
}

// QueueLength is the number of reports on the stream: queued or being delivered.
func (s *Reports) QueueLength(ctx context.Context) (int64, error) {
	n, err := s.rdb.XLen(ctx, s.streamKey()).Result()
	if err != nil {
		return 0, unavailable("read queue length", err)
	}
	return n, nil
}

// Begin takes job's report for a delivery attempt: state delivering, one more attempt, a
// new fence, and the step records of earlier attempts. An entry that needs no work (its
// report is settled, gone, or has a newer entry) is removed and report.ErrSettled returned.
func (s *Reports) Begin(ctx context.Context, job report.Job) (report.Delivery, error) {
	d := report.Delivery{Job: job}
	if !idRE.MatchString(job.ReportID) {
		return d, s.settle(ctx, job, false)
	}
	res, err := beginScript.Run(ctx, s.rdb, []string{reportKey(job.TenantKey, job.ReportID)},
		ms(s.now()), job.EntryID).Slice()
	if err != nil {
		return d, unavailable("begin delivery", err)
	}
	switch res[0] {
	case "ok":
	case "failed":
		// The worker crashed after marking it failed, before moving its entry.
		reason, err := s.rdb.HGet(ctx, reportKey(job.TenantKey, job.ReportID), "reason").Result()
		if err != nil && !errors.Is(err, redis.Nil) {
			return d, unavailable("read report", err)
		}
		return d, s.deadLetter(ctx, job, reason)
	case "stale":
		// An admin retry queued a newer entry; this one must not release the bytes.
		return d, s.settle(ctx, job, false)
	default: // delivered, or missing
		return d, s.settle(ctx, job, true)
	}
	fields, _ := res[1].([]any)
	h := make(map[string]string, len(fields)/2)
	for i := 0; i+1 < len(fields); i += 2 {
		k, _ := fields[i].(string)
		v, _ := fields[i+1].(string)
		h[k] = v
	}
	if err := json.Unmarshal([]byte(h["json"]), &d.Report); err != nil {
		return d, fmt.Errorf("decode report %s: %w", job.ReportID, err)
	}
	d.Fence, _ = strconv.ParseInt(h["fence"], 10, 64)
	d.Attempts, _ = strconv.Atoi(h["attempts"])
	d.Tries, _ = strconv.Atoi(h["tries"])
	d.Progress = progressOf(h)
	return d, nil
}

func progressOf(h map[string]string) report.Progress {
	p := report.Progress{
		AccountID: h["customer"], EmailSource: report.EmailSource(h["emailSource"]),
		TicketKey: h["ticketKey"], TicketURL: h["ticketUrl"],
		Uploads: map[string]report.Upload{}, Done: map[string]bool{}, Pending: map[string]time.Time{},
	}
	for k, v := range h {
		switch {
		case strings.HasPrefix(k, "upload:"):
			tmp, at, _ := strings.Cut(v, " ")
			n, _ := strconv.ParseInt(at, 10, 64)
			p.Uploads[strings.TrimPrefix(k, "upload:")] = report.Upload{TempID: tmp, At: time.UnixMilli(n).UTC()}
		case strings.HasPrefix(k, "done:"):
			p.Done[strings.TrimPrefix(k, "done:")] = true
		case strings.HasPrefix(k, "pending:"):
			n, _ := strconv.ParseInt(v, 10, 64)
			p.Pending[strings.TrimPrefix(k, "pending:")] = time.UnixMilli(n).UTC()
		}
	}
	return p
}

// Attempt counts another attempt of a delivery held with fence and returns the tries since
// a step last finished.
func (s *Reports) Attempt(ctx context.Context, job report.Job, fence int64) (int, error) {
	n, err := attemptScript.Run(ctx, s.rdb, []string{reportKey(job.TenantKey, job.ReportID)}, fence, ms(s.now())).Int()
	if err != nil {
		return 0, unavailable("count attempt", err)
	}
	if n < 0 {
		return 0, report.ErrSuperseded
	}
	return n, nil
}

// Record writes step records of a delivery held with fence, in one atomic write, and
// returns the tries since a step last finished. A record with a ticket also links the
// ticket to the tenant (consent requests on it are bound to the tenant whose user raised
// it): on a single server in the same script, so the two cannot diverge; on Cluster, where
// the link lives in another slot, before the record, so a recorded ticket is always linked.
// Only a record the report did not have yet resets the tries: writing the same one again
// (its answer was lost, or the link failed) is no progress, so the attempts stay bounded.
func (s *Reports) Record(ctx context.Context, job report.Job, fence int64, r report.StepRecord) (int, error) {
	now := ms(s.now())
	var set []any
	if r.AccountID != "" {
		set = append(set, "customer", r.AccountID)
	}
	if r.EmailSource != "" {
		set = append(set, "emailSource", string(r.EmailSource))
	}
	if r.TicketKey != "" {
		set = append(set, "ticketKey", r.TicketKey, "ticketUrl", r.TicketURL)
	}
	for id, u := range r.Uploads {
		set = append(set, "upload:"+id, u.TempID+" "+strconv.FormatInt(ms(u.At), 10))
	}
	for _, step := range r.Done {
		set = append(set, "done:"+step, "1")
	}
	for _, step := range r.Pending {
		set = append(set, "pending:"+step, now)
	}
	keys := []string{reportKey(job.TenantKey, job.ReportID)}
	link := ""
	if r.TicketKey != "" && !s.staged.Load() {
		keys, link = append(keys, ticketKey(r.TicketKey)), job.TenantKey
	}
	args := append([]any{fence, now, len(set) / 2, link}, set...)
	for _, step := range r.Settled {
		args = append(args, "pending:"+step)
	}
	if r.TicketKey != "" && link == "" {
		if err := NewTickets(s.rdb).Link(ctx, r.TicketKey, job.TenantKey); err != nil {
			return 0, err
		}
	}
	n, err := recordScript.Run(ctx, s.rdb, keys, args...).Int()
	if link != "" && redis.HasErrorPrefix(err, "CROSSSLOT") {
		// A sharding proxy after all: it refused the script before running it, so nothing
		// was written. Link first from now on, as on Cluster.
		s.staged.Store(true)
		return s.Record(ctx, job, fence, r)
	}
	if err != nil {
		return 0, unavailable("record delivery step", err)
	}
	switch n {
	case -1:
		return 0, report.ErrSuperseded
	case -2:
		return 0, fmt.Errorf("link ticket %s: already linked to another tenant", r.TicketKey)
	}
	return n, nil
}

// Attachment returns the bytes of one stored attachment of a report.
func (s *Reports) Attachment(ctx context.Context, tenantKey, reportID, attachmentID string) ([]byte, error) {
	b, err := s.rdb.HGet(ctx, reportFilesKey(tenantKey, reportID), attachmentID).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, report.ErrNotFound
	}
	if err != nil {
		return nil, unavailable("read attachment", err)
	}
	return b, nil
}

// Delivered marks the report delivered, forgets its data and attachments (releasing their
// bytes from the backpressure count) and removes its entry from the queue.
func (s *Reports) Delivered(ctx context.Context, job report.Job, fence int64) error {
	n, err := deliveredScript.Run(ctx, s.rdb,
		[]string{reportKey(job.TenantKey, job.ReportID), reportFilesKey(job.TenantKey, job.ReportID)},
		fence, ms(s.now()), msDur(s.statusTTL)).Int()
	if err != nil {
		return unavailable("mark report delivered", err)
	}
	if n == 0 {
		return report.ErrSuperseded
	}
	// A crash here leaves the entry pending; whoever claims it finds the report delivered
	// and settles it (Begin), so the release happens exactly once either way.
	if err := s.settle(ctx, job, true); !errors.Is(err, report.ErrSettled) {
		return err
	}
	return nil
}

// FailedRetention is how long a failed report (its data and files) and its dead letter stay
// in Redis for a retry; after it they are gone.
const FailedRetention = 30 * 24 * time.Hour

// Failed marks the report failed with reason and moves its entry to the dead-letter
// stream. The report keeps its data and step records for Retry, for FailedRetention.
func (s *Reports) Failed(ctx context.Context, job report.Job, fence int64, reason string) error {
	n, err := failedScript.Run(ctx, s.rdb, []string{reportKey(job.TenantKey, job.ReportID), reportFilesKey(job.TenantKey, job.ReportID)},
		fence, ms(s.now()), reason, msDur(FailedRetention)).Int()
	if err != nil {
		return unavailable("mark report failed", err)
	}
	if n == 0 {
		return report.ErrSuperseded
	}
	if err := s.deadLetter(ctx, job, reason); !errors.Is(err, report.ErrSettled) {
		return err
	}
	return nil
}

// settle removes job's entry from the queue and answers report.ErrSettled.
func (s *Reports) settle(ctx context.Context, job report.Job, release bool) error {
	rel := "0"
	if release {
		rel = "1"
	}
	err := settleScript.Run(ctx, s.rdb, []string{s.streamKey(), s.bytesKey(), s.heldKey()},
		s.group, job.EntryID, heldField(job.TenantKey, job.ReportID), rel).Err()
	if err != nil {
		return unavailable("settle delivery entry", err)
	}
	return report.ErrSettled
}

func (s *Reports) deadLetter(ctx context.Context, job report.Job, reason string) error {
	err := deadLetterScript.Run(ctx, s.rdb, []string{s.streamKey(), s.deadKey()},
		s.group, job.EntryID, job.TenantKey, job.ReportID, reason, ms(s.now()), s.deadMaxLen, msDur(FailedRetention)).Err()
	if err != nil {
		return unavailable("dead-letter report", err)
	}
	return report.ErrSettled
}

// DeadLetter is one failed report on the dead-letter stream.
type DeadLetter struct {
	TenantKey, ReportID, Reason string
	At                          time.Time
}

// DeadLetters lists up to count failed reports, oldest first, for operators.
func (s *Reports) DeadLetters(ctx context.Context, count int64) ([]DeadLetter, error) {
	msgs, err := s.rdb.XRangeN(ctx, s.deadKey(), "-", "+", count).Result()
	if err != nil {
		return nil, unavailable("read dead letters", err)
	}
	out := make([]DeadLetter, 0, len(msgs))
	for _, m := range msgs {
		str := func(k string) string { v, _ := m.Values[k].(string); return v }
		at, _ := strconv.ParseInt(str("at"), 10, 64)
		out = append(out, DeadLetter{TenantKey: str("t"), ReportID: str("r"), Reason: str("reason"),
			At: time.UnixMilli(at).UTC()})
	}
	return out, nil
}

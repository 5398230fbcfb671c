package redisstore

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/supportbridge/supportbridge/internal/bufpool"
	"github.com/supportbridge/supportbridge/internal/report"
	"github.com/supportbridge/supportbridge/internal/seal"
)

// Reports stores problem reports and is their delivery queue. It implements report.Intake
// for the API and everything the delivery worker needs.
//
// # How a report gets in, with Redis Cluster in mind
//
// A report's keys carry its tenant's hash tag; the delivery queue (stream, dead letters,
// byte counter) carries the queue's own tag, because workers read one stream for all
// tenants. A script runs on one slot, so "store the report and queue it" cannot be a single
// script. Enqueue therefore runs four short steps:
//
//  1. admit (queue): refuse while over the queue or byte caps, writing nothing; otherwise
//     write an intent (report, tenant, time) to the queue's intent set.
//  2. stage (tenant): idempotency, then rate limits, then store the report, its attachments
//     and the idempotency record, all or nothing. A refusal here removes the intent.
//  3. publish (queue): only if the intent is still there: re-check the caps exactly, XADD,
//     count the bytes and remove the intent, atomically. A refusal here undoes step 2
//     (abort) and then removes the intent.
//  4. commit (tenant): mark the report published, which turns an idempotent repeat from
//     "in flight" into a replay.
//
// The API answers 202 only after step 3, so an acknowledged report is always complete in
// Redis and on the stream. A crash between steps leaves an intent: Recover, run by every
// worker, publishes a staged report whose intent is older than a threshold (without caps:
// it was admitted once) and drops intents whose report never got staged. The intent is
// what makes publish happen at most once when Enqueue and Recover race. A lost commit
// heals itself: the worker marks the report published when it takes it.
//
// The alternative, XADD first and then store, would let a worker read an entry before its
// report exists and could not tell "not yet" from "never".
//
// # Without Cluster
//
// On a single server (or a Sentinel group, which is one server at a time) every key is
// reachable from one script, so Enqueue runs the four steps as one atomic script
// (enqueueScript) and pays one round trip instead of three or four. Its answers are the
// staged path's, refusal for refusal; it leaves no intent, since there is nothing between
// steps to recover. Recover still settles intents, so a mix of both paths on one queue (a
// rolling upgrade, an admin retry) is safe. The staged path remains for Cluster clients, for
// any client type this package does not know to be a single server, and for servers that
// turn out to refuse multi-slot scripts (a sharding proxy answers CROSSSLOT).
type Reports struct {
	rdb         redis.UniversalClient
	now         func() time.Time
	queue       string
	queueTag    string
	group       string
	customerKey []byte
	customerTTL time.Duration
	statusTTL   time.Duration
	overloadRA  time.Duration
	deadMaxLen  int64

	// sealer encrypts kept site tokens; nil keeps none.
	sealer *seal.Sealer

	// rateClock is set when the clock was given: the rate limits then use it instead of
	// Redis' TIME (see reports_lua.go), so tests move windows without waiting.
	rateClock bool

	// enqueueBatch shares round trips between concurrent one-step enqueues.
	enqueueBatch *scriptBatcher

	// staged makes Enqueue take the staged path, and Record link a ticket before recording
	// it instead of in the same script. It is set for Cluster clients and on demand, and
	// once the server refuses a multi-slot script.
	staged atomic.Bool
}

// ReportsOptions configures a Reports store. Zero values take the defaults.
type ReportsOptions struct {
	// Now is the clock for timestamps and recovery; default time.Now. When set, the rate
	// limits use it too; otherwise they use Redis' TIME, which all replicas share.
	Now func() time.Time
	// Queue names the delivery queue. Its stream, dead-letter stream, intent set and byte
	// counter share one hash tag derived from it, so the queue scripts work on Cluster.
	// Default "reports".
	Queue string
	// Group is the consumer group of the delivery workers; default "delivery".
	Group string
	// CustomerKey keys the HMAC that names customer-cache entries, so no email appears in a
	// key (derive it from SB_SECRET_KEY). Empty means a random key per process: the cache
	// still works but is not shared between replicas or restarts.
	CustomerKey []byte
	// CustomerTTL is how long an email → accountId mapping is trusted; default 24h.
	CustomerTTL time.Duration
	// StatusTTL is how long a delivered report's status stays readable; default 30 days.
	StatusTTL time.Duration
	// OverloadRetryAfter is the Retry-After given with an OverloadedError; default 30s.
	OverloadRetryAfter time.Duration
	// DeadLetterMaxLen caps the dead-letter stream (approximately); default 10000.
	DeadLetterMaxLen int64
	// Sealer encrypts the Forge app system token kept for the worker, one per tenant (see
	// SiteToken); nil keeps none, so Forge reporters' emails stay unconfirmed.
	Sealer *seal.Sealer
	// Staged makes Enqueue use the staged protocol that Redis Cluster needs even where the
	// one-step script would do (see Reports). Tests set it so that both paths are exercised.
	Staged bool
}

// NewReports returns a report store on rdb.
func NewReports(rdb redis.UniversalClient, opts ReportsOptions) *Reports {
	rateClock := opts.Now != nil
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Queue == "" {
		opts.Queue = "reports"
	}
	if opts.Group == "" {
		opts.Group = "delivery"
	}
	if len(opts.CustomerKey) == 0 {
		opts.CustomerKey = make([]byte, 32)
		rand.Read(opts.CustomerKey)
	}
	if opts.CustomerTTL <= 0 {
		opts.CustomerTTL = 24 * time.Hour
	}
	if opts.StatusTTL <= 0 {
		opts.StatusTTL = 30 * 24 * time.Hour
	}
	if opts.OverloadRetryAfter <= 0 {
		opts.OverloadRetryAfter = 30 * time.Second
	}
	if opts.DeadLetterMaxLen <= 0 {
		opts.DeadLetterMaxLen = 10000
	}
	sum := sha256.Sum256([]byte(opts.Queue))
	s := &Reports{
		rdb: rdb, now: opts.Now, rateClock: rateClock, queue: opts.Queue, queueTag: "{q:" + hex.EncodeToString(sum[:6]) + "}",
		group: opts.Group, customerKey: opts.CustomerKey, customerTTL: opts.CustomerTTL,
		statusTTL: opts.StatusTTL, overloadRA: opts.OverloadRetryAfter, deadMaxLen: opts.DeadLetterMaxLen,
		enqueueBatch: newScriptBatcher(rdb, enqueueScript, 64), sealer: opts.Sealer,
	}
	// Only a *redis.Client is known to be one server at a time (a plain client or a
	// Sentinel failover client); a Cluster, a Ring or anything else takes the staged path.
	_, single := rdb.(*redis.Client)
	s.staged.Store(opts.Staged || !single)
	return s
}

var _ report.Queue = (*Reports)(nil)

// Keys of reports. A report's id and attachment ids are checked against idRE before they
// become part of a key; user-chosen strings (idempotency keys, account ids, emails) only
// appear hashed.
// The queue's hash tag is derived from its name once, in NewReports.
func (s *Reports) streamKey() string  { return "sb:" + s.queueTag + ":stream" }
func (s *Reports) deadKey() string    { return "sb:" + s.queueTag + ":dead" }
func (s *Reports) bytesKey() string   { return "sb:" + s.queueTag + ":bytes" }
func (s *Reports) heldKey() string    { return "sb:" + s.queueTag + ":held" }
func (s *Reports) intentsKey() string { return "sb:" + s.queueTag + ":intents" }

func reportKey(tenantKey, id string) string      { return reportKeyOf(tenantTag(tenantKey), id) }
func reportFilesKey(tenantKey, id string) string { return reportFilesKeyOf(tenantTag(tenantKey), id) }
func rateTenantKey(tenantKey string) string      { return rateTenantKeyOf(tenantTag(tenantKey)) }
func reportKeyOf(tag, id string) string          { return "sb:" + tag + ":report:" + id }
func reportFilesKeyOf(tag, id string) string     { return "sb:" + tag + ":report:" + id + ":files" }
func idemKeyOf(tag, user, key string) string     { return "sb:" + tag + ":idem:" + userScoped(user, key) }
func rateUserKeyOf(tag, user string) string      { return "sb:" + tag + ":gcra:user:" + sha256Hex(user) }
func rateTenantKeyOf(tag string) string          { return "sb:" + tag + ":gcra:tenant" }
func reportIndexKey(id string) string            { return "sb:idx:filed-by:" + id }

// TenantOfReport names the tenant that filed report id, for admin routes that have only the id.
func (s *Reports) TenantOfReport(ctx context.Context, id string) (string, error) {
	if !idRE.MatchString(id) {
		return "", report.ErrNotFound
	}
	t, err := s.rdb.Get(ctx, reportIndexKey(id)).Result()
	if errors.Is(err, redis.Nil) {
		return "", report.ErrNotFound
	}
	if err != nil {
		return "", unavailable("report tenant", err)
	}
	return t, nil
}

func customerKey(tenantKey, mac string) string {
	return "sb:" + tenantTag(tenantKey) + ":customer:" + mac
}

// userScoped hashes a user and a key chosen by that user's app together, unambiguously
// (no pair of strings can pass for another user's), so the key names one user's request.
func userScoped(user, key string) string {
	b, _ := json.Marshal([]string{user, key})
	return sha256Hex(string(b))
}

func sha256Hex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:16])
}

// idRE is what report, attachment ids and markers may look like; it keeps keys tidy and is
// the character set jsm.FindByMarker accepts.
var idRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,128}$`)

// intent is a report that was admitted but may not be on the stream yet. It is stored as a
// JSON array so that any tenant key survives the round trip.
type intent struct {
	Retry     bool // an admin retry: published without the caps, bytes already counted
	TenantKey string
	ID        string
	Bytes     int64
}

func (i intent) member() string {
	b, _ := json.Marshal([]any{i.Retry, i.TenantKey, i.ID, i.Bytes})
	return string(b)
}

func parseIntent(m string) (intent, bool) {
	var raw []json.RawMessage
	var in intent
	if json.Unmarshal([]byte(m), &raw) != nil || len(raw) != 4 {
		return in, false
	}
	if json.Unmarshal(raw[0], &in.Retry) != nil || json.Unmarshal(raw[1], &in.TenantKey) != nil ||
		json.Unmarshal(raw[2], &in.ID) != nil || json.Unmarshal(raw[3], &in.Bytes) != nil {
		return in, false
	}
	return in, true
}

// heldField names a report in the held hash (its counted attachment bytes).
func heldField(tenantKey, id string) string {
	b, _ := json.Marshal([]string{tenantKey, id})
	return string(b)
}

func ms(t time.Time) int64        { return t.UnixMilli() }
func msDur(d time.Duration) int64 { return d.Milliseconds() }
func unavailable(op string, err error) error {
	return fmt.Errorf("%s: %w: %w", op, ErrUnavailable, err)
}

// Enqueue stores and queues a report, all or nothing (see Reports). With an idempotency key
// the same user (the report's accountId) sent before it returns the first report's id and
// replayed=true, or ErrIdempotencyInFlight while that first report is still being stored;
// another user's report with the same key is a report of its own. A report id, when the caller sets one,
// must be new (report.NewID): a report found under it is taken for this call's own earlier
// attempt.
func (s *Reports) Enqueue(ctx context.Context, sub report.Submission, lim report.Limits) (string, bool, error) {
	// One deadline for the whole enqueue, queue wait in the script batcher included: a
	// per-command deadline alone would let the wait behind a stuck pipeline and the call's
	// own pipeline add up, and intake must answer within a second when Redis does not.
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, CommandTimeout)
		defer cancel()
	}
	return s.enqueue(ctx, sub, lim)
}

func (s *Reports) enqueue(ctx context.Context, sub report.Submission, lim report.Limits) (string, bool, error) {
	r := sub.Report
	if r.TenantKey == "" {
		return "", false, errors.New("enqueue report: no tenant")
	}
	// The id and marker are the intake service's to mint; the store only checks them.
	if !idRE.MatchString(r.ID) || !idRE.MatchString(r.Marker) {
		return "", false, errors.New("enqueue report: id and marker must match " + idRE.String())
	}
	if r.ReceivedAt.IsZero() {
		r.ReceivedAt = s.now().UTC()
	}
	if err := s.keepSiteToken(ctx, r.TenantKey, sub); err != nil {
		return "", false, err
	}
	var nbytes int64
	files := make([]any, 0, 2*len(sub.Attachments))
	metas := make([]report.AttachmentMeta, 0, len(sub.Attachments))
	for i, a := range sub.Attachments {
		if a.ID == "" {
			a.ID = "a" + strconv.Itoa(i+1)
		}
		if !idRE.MatchString(a.ID) {
			return "", false, errors.New("enqueue report: attachment id must match " + idRE.String())
		}
		a.Size = int64(len(a.Content))
		nbytes += a.Size
		files = append(files, a.ID, a.Content)
		metas = append(metas, a.AttachmentMeta)
	}
	// The stored attachments are authoritative: the worker attaches exactly what is stored.
	r.Attachments = metas
	// Encoded into a recycled buffer: the bytes are only needed until the script has them.
	buf := bufpool.Get()
	defer bufpool.Put(buf)
	if err := json.NewEncoder(buf).Encode(r); err != nil {
		return "", false, fmt.Errorf("encode report: %w", err)
	}
	doc := bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
	idemTTL := lim.IdempotencyTTL
	if idemTTL <= 0 {
		idemTTL = 24 * time.Hour
	}
	hasIdem := "0"
	if sub.IdempotencyKey != "" {
		hasIdem = "1"
	}

	now := s.now()
	if sub.Subject == "" {
		return "", false, errors.New("enqueue report: no rate-limit subject")
	}
	tkeys := s.tenantReportKeys(r, sub.Subject, sub.IdempotencyKey)
	if !s.staged.Load() {
		id, replayed, err := s.enqueueAtomic(ctx, r, sub.BodyHash, lim, now, tkeys, doc, nbytes,
			hasIdem, idemTTL, files)
		if !redis.HasErrorPrefix(err, "CROSSSLOT") {
			return id, replayed, err
		}
		// The server spreads keys over shards after all (a sharding proxy). It refused the
		// script before running it, so nothing was written: stage from now on.
		s.staged.Store(true)
	}

	in := intent{TenantKey: r.TenantKey, ID: r.ID, Bytes: nbytes}
	res, err := admitScript.Run(ctx, s.rdb, []string{s.streamKey(), s.bytesKey(), s.intentsKey()},
		in.member(), ms(now), lim.MaxQueueLength, lim.MaxAttachmentBytes, nbytes).StringSlice()
	if err != nil {
		return "", false, unavailable("admit report", err)
	}
	if res[0] != "ok" {
		// An idempotent repeat is still answered while overloaded: it adds nothing.
		if sub.IdempotencyKey != "" {
			if id, replayed, err := s.lookupIdempotent(ctx, r.TenantKey, tkeys[2], sub.BodyHash); err != nil || id != "" {
				return id, replayed, err
			}
		}
		return "", false, &report.OverloadedError{Resource: res[0], RetryAfter: s.overloadRA}
	}

	args := append([]any{r.ID, sub.BodyHash, ms(now), doc, nbytes, hasIdem, msDur(idemTTL),
		msDur(lim.Window), lim.PerUser, lim.PerTenant, s.rateNow(now)}, files...)
	staged, err := stageScript.Run(ctx, s.rdb, tkeys, args...).StringSlice()
	if err != nil {
		// Whether the stage happened is unknown; the intent stays, so Recover settles it.
		return "", false, unavailable("stage report", err)
	}
	if staged[0] == "exists" {
		// This stage ran before and its answer was lost (see enqueueScript): it is staged.
		staged[0] = "ok"
	}
	if staged[0] != "ok" {
		if err := s.dropIntent(ctx, in); err != nil {
			return "", false, err
		}
	}
	switch staged[0] {
	case "ok":
	case "mismatch":
		return "", false, report.ErrIdempotencyMismatch
	case "seen":
		return s.replayOf(ctx, r.TenantKey, staged[1])
	case "rate":
		ra, _ := strconv.ParseInt(staged[2], 10, 64)
		return "", false, &report.RateLimitedError{Scope: staged[1], RetryAfter: time.Duration(ra) * time.Millisecond}
	default:
		return "", false, fmt.Errorf("stage report: unexpected answer %q", staged[0])
	}

	entry, err := s.publishIndexed(ctx, in, lim)
	var over *report.OverloadedError
	switch {
	case errors.As(err, &over):
		s.rdb.Del(ctx, reportIndexKey(r.ID)) // the hint of a report that is not coming
		aborted, aerr := s.abort(ctx, tkeys, r.ID, lim)
		if aerr != nil {
			return "", false, aerr
		}
		if derr := s.dropIntent(ctx, in); derr != nil {
			return "", false, derr
		}
		if !aborted {
			// Recover published and committed it in between: it is queued after all.
			return r.ID, false, nil
		}
		return "", false, err
	case err != nil:
		return "", false, err
	case entry == "":
		// Recover published it while we were slow. Trust that only if it also committed;
		// otherwise undo, so that the client's retry cannot meet a half-written report (a
		// stream entry without its report is skipped by the worker).
		pub, err := s.rdb.HGet(ctx, tkeys[0], "published").Result()
		if err != nil && !errors.Is(err, redis.Nil) {
			return "", false, unavailable("check report", err)
		}
		if pub != "1" {
			aborted, aerr := s.abort(ctx, tkeys, r.ID, lim)
			if aerr != nil {
				return "", false, aerr
			}
			if aborted {
				return "", false, unavailable("publish report", errors.New("report was taken over by recovery"))
			}
		}
		return r.ID, false, nil
	}
	// A failed commit is not an error: the report is complete and on the stream, and the
	// worker marks it published when it takes it. Only an idempotency key needs the mark
	// now (a repeat must be a replay, not "in flight"), so without one the round trip is
	// saved.
	if sub.IdempotencyKey != "" {
		_ = commitScript.Run(ctx, s.rdb, tkeys[:1], entry).Err()
	}
	return r.ID, false, nil
}

// CheckRate tells whether a report by accountID of tenantKey would be refused by the rate
// limits right now, in one read-only round trip: a *report.RateLimitedError if so, nil if
// not. It counts nothing, so it is a cheap early answer, not a reservation; Enqueue decides.
// With an idempotency key whose record exists it answers nil: the request may be a replay,
// which Enqueue answers even when the user is at the limit.
func (s *Reports) CheckRate(ctx context.Context, tenantKey, accountID, idempotencyKey string, lim report.Limits) error {
	if lim.Window <= 0 || (lim.PerUser <= 0 && lim.PerTenant <= 0) {
		return nil
	}
	tag := tenantTag(tenantKey)
	hasIdem := "0"
	if idempotencyKey != "" {
		hasIdem = "1"
	}
	res, err := rateCheckScript.Run(ctx, s.rdb,
		[]string{rateUserKeyOf(tag, accountID), rateTenantKeyOf(tag), idemKeyOf(tag, accountID, idempotencyKey)},
		s.rateNow(s.now()), msDur(lim.Window), lim.PerUser, lim.PerTenant, hasIdem).StringSlice()
	if err != nil {
		return unavailable("check report rate", err)
	}
	if res[0] == "rate" {
		ra, _ := strconv.ParseInt(res[2], 10, 64)
		return &report.RateLimitedError{Scope: res[1], RetryAfter: time.Duration(ra) * time.Millisecond}
	}
	return nil
}

// rateNow is the rate limits' clock argument: the given clock's milliseconds, or empty for
// Redis' TIME.
func (s *Reports) rateNow(now time.Time) any {
	if s.rateClock {
		return ms(now)
	}
	return ""
}

// enqueueAtomic is the staged path of enqueue in one script, for a single server (see
// Reports). Its answers are mapped exactly as the staged path maps them.
func (s *Reports) enqueueAtomic(ctx context.Context, r report.Report, bodyHash string, lim report.Limits,
	now time.Time, tkeys []string, doc []byte, nbytes int64, hasIdem string, idemTTL time.Duration, files []any,
) (string, bool, error) {
	keys := []string{s.streamKey(), s.bytesKey(), s.heldKey(), tkeys[0], tkeys[1], tkeys[2], tkeys[3], tkeys[4],
		reportIndexKey(r.ID)}
	args := append(make([]any, 0, 16+len(files)), r.TenantKey, r.ID, bodyHash, ms(now), doc, nbytes, hasIdem,
		msDur(idemTTL), msDur(lim.Window), lim.PerUser, lim.PerTenant, lim.MaxQueueLength,
		lim.MaxAttachmentBytes, heldField(r.TenantKey, r.ID), msDur(s.statusTTL+24*time.Hour), s.rateNow(now))
	args = append(args, files...)
	res, err := s.enqueueBatch.run(ctx, keys, args)
	if redis.HasErrorPrefix(err, "CROSSSLOT") {
		return "", false, err
	}
	if err != nil {
		// Atomic: either all of it happened or none. A client retry with its idempotency
		// key finds out which.
		return "", false, unavailable("enqueue report", err)
	}
	switch res[0] {
	case "ok":
		return r.ID, false, nil
	case "exists":
		// The script stores a report all at once and only under a fresh id, so the report
		// is there because an earlier attempt of this very call ran (the client resends a
		// command whose answer a broken connection lost): it is stored and queued.
		return r.ID, false, nil
	case "mismatch":
		return "", false, report.ErrIdempotencyMismatch
	case "seen":
		return s.replayOf(ctx, r.TenantKey, res[1])
	case "rate":
		ra, _ := strconv.ParseInt(res[2], 10, 64)
		return "", false, &report.RateLimitedError{Scope: res[1], RetryAfter: time.Duration(ra) * time.Millisecond}
	case "queue", "attachments":
		return "", false, &report.OverloadedError{Resource: res[0], RetryAfter: s.overloadRA}
	default:
		return "", false, fmt.Errorf("enqueue report: unexpected answer %q", res[0])
	}
}

// publishIndexed publishes like publish and, in the same round trip, writes the global hint
// that names the report's tenant for admin routes that have only the id. The hint is always
// checked against the tenant's own record, so one left by a refused publish is harmless.
func (s *Reports) publishIndexed(ctx context.Context, in intent, lim report.Limits) (string, error) {
	var pub *redis.Cmd
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		pub = publishScript.EvalSha(ctx, p,
			[]string{s.streamKey(), s.bytesKey(), s.intentsKey(), s.heldKey()},
			in.member(), in.TenantKey, in.ID, in.Bytes, "1", lim.MaxQueueLength, lim.MaxAttachmentBytes,
			heldField(in.TenantKey, in.ID))
		p.Set(ctx, reportIndexKey(in.ID), in.TenantKey, s.statusTTL+24*time.Hour)
		return nil
	})
	if err != nil && redis.HasErrorPrefix(pub.Err(), "NOSCRIPT") {
		// First use on this server: load the script the slow way, once.
		return s.publish(ctx, in, lim)
	}
	if err != nil {
		return "", unavailable("publish report", err)
	}
	res, err := pub.StringSlice()
	if err != nil {
		return "", unavailable("publish report", err)
	}
	return publishAnswer(res, s.overloadRA)
}

// tenantReportKeys are the keys of r in its tenant's slot. The idempotency record and the
// user's rate window belong to the subject the intake service named (the accountId from the
// verified token): an Idempotency-Key is chosen by the user's app,
// so another user of the tenant who happens to send the same key is another request, not a
// repeat of the first user's.
func (s *Reports) tenantReportKeys(r report.Report, user, idem string) []string {
	tag := tenantTag(r.TenantKey) // hashed once for the five keys
	return []string{
		reportKeyOf(tag, r.ID), reportFilesKeyOf(tag, r.ID),
		idemKeyOf(tag, user, idem), rateUserKeyOf(tag, user), rateTenantKeyOf(tag),
	}
}

// publish runs the publish script. It returns the entry id, "" when the intent was gone
// (someone else published the report), or an *report.OverloadedError.
func (s *Reports) publish(ctx context.Context, in intent, lim report.Limits) (string, error) {
	check := "1"
	if in.Retry {
		check = "0"
	}
	res, err := publishScript.Run(ctx, s.rdb,
		[]string{s.streamKey(), s.bytesKey(), s.intentsKey(), s.heldKey()},
		in.member(), in.TenantKey, in.ID, in.Bytes, check, lim.MaxQueueLength, lim.MaxAttachmentBytes,
		heldField(in.TenantKey, in.ID)).StringSlice()
	if err != nil {
		return "", unavailable("publish report", err)
	}
	return publishAnswer(res, s.overloadRA)
}

func publishAnswer(res []string, retryAfter time.Duration) (string, error) {
	switch res[0] {
	case "ok":
		return res[1], nil
	case "gone":
		return "", nil
	default:
		return "", &report.OverloadedError{Resource: res[0], RetryAfter: retryAfter}
	}
}

// abort undoes a stage; false when the report was published meanwhile and stays.
func (s *Reports) abort(ctx context.Context, tkeys []string, id string, lim report.Limits) (bool, error) {
	n, err := abortScript.Run(ctx, s.rdb, tkeys, id, msDur(lim.Window), lim.PerUser, lim.PerTenant, s.rateNow(s.now())).Int()
	if err != nil {
		return false, unavailable("abort report", err)
	}
	return n == 1, nil
}

func (s *Reports) dropIntent(ctx context.Context, in intent) error {
	if err := s.rdb.ZRem(ctx, s.intentsKey(), in.member()).Err(); err != nil {
		return unavailable("drop report intent", err)
	}
	return nil
}

// lookupIdempotent answers a repeat without writing: ("", false, nil) when the
// idempotency record at key (see tenantReportKeys) is unknown.
func (s *Reports) lookupIdempotent(ctx context.Context, tenantKey, key, bodyHash string) (string, bool, error) {
	rec, err := s.rdb.Get(ctx, key).Result()
	if errors.Is(err, redis.Nil) {
		return "", false, nil
	}
	if err != nil {
		return "", false, unavailable("read idempotency key", err)
	}
	id, hash, ok := strings.Cut(rec, "\n")
	if !ok {
		return "", false, nil
	}
	if hash != bodyHash {
		return "", false, report.ErrIdempotencyMismatch
	}
	return s.replayOf(ctx, tenantKey, id)
}

// replayOf answers a repeat of report id: a replay once it is on the stream, in flight
// before. A report that has since expired was delivered long ago: still a replay.
func (s *Reports) replayOf(ctx context.Context, tenantKey, id string) (string, bool, error) {
	vals, err := s.rdb.HMGet(ctx, reportKey(tenantKey, id), "state", "published").Result()
	if err != nil {
		return "", false, unavailable("read report", err)
	}
	if vals[0] != nil && vals[1] != "1" {
		return "", false, report.ErrIdempotencyInFlight
	}
	return id, true, nil
}

// Status reads what the reporter's app may see; report.ErrNotFound for unknown ids and for
// ids of other tenants (their keys carry another tenant tag).
func (s *Reports) Status(ctx context.Context, tenantKey, id string) (report.Status, error) {
	if !idRE.MatchString(id) {
		return report.Status{}, report.ErrNotFound
	}
	vals, err := s.rdb.HMGet(ctx, reportKey(tenantKey, id),
		"state", "ticketKey", "ticketUrl", "reason", "createdAt", "updatedAt", "emailSource").Result()
	if err != nil {
		return report.Status{}, unavailable("read report status", err)
	}
	if vals[0] == nil {
		return report.Status{}, report.ErrNotFound
	}
	str := func(v any) string { s, _ := v.(string); return s }
	at := func(v any) time.Time {
		n, _ := strconv.ParseInt(str(v), 10, 64)
		return time.UnixMilli(n).UTC()
	}
	st := report.Status{
		ID: id, State: report.State(str(vals[0])), TicketKey: str(vals[1]), TicketURL: str(vals[2]),
		Reason: str(vals[3]), CreatedAt: at(vals[4]), UpdatedAt: at(vals[5]),
		EmailSource: report.EmailSource(str(vals[6])),
	}
	return st, nil
}

// Retry puts a failed report back on the queue. Its step records are kept, so finished
// steps (the customer, the request, attachments already attached) are not repeated.
// report.ErrNotFound for unknown ids, report.ErrNotFailed when it has not failed.
func (s *Reports) Retry(ctx context.Context, tenantKey, id string) error {
	if !idRE.MatchString(id) {
		return report.ErrNotFound
	}
	// The same intent protocol as Enqueue, so a crash between the tenant write and the
	// stream write is recovered. A retried report skips the caps: it is stored already.
	in := intent{Retry: true, TenantKey: tenantKey, ID: id}
	if err := s.rdb.ZAdd(ctx, s.intentsKey(), redis.Z{Score: float64(ms(s.now())), Member: in.member()}).Err(); err != nil {
		return unavailable("retry report", err)
	}
	res, err := retryScript.Run(ctx, s.rdb, []string{reportKey(tenantKey, id), reportFilesKey(tenantKey, id)}, ms(s.now())).StringSlice()
	if err != nil {
		return unavailable("retry report", err)
	}
	if res[0] != "ok" {
		if err := s.dropIntent(ctx, in); err != nil {
			return err
		}
		if res[0] == "missing" {
			return report.ErrNotFound
		}
		return report.ErrNotFailed
	}
	entry, err := s.publish(ctx, in, report.Limits{})
	if err != nil {
		return err
	}
	if entry != "" {
		_ = commitScript.Run(ctx, s.rdb, []string{reportKey(tenantKey, id)}, entry).Err()
	}
	return nil
}

// Recover settles enqueues and retries that stopped between their tenant write and their
// stream write (a crashed API replica): intents older than olderThan are published when
// their report is staged, and dropped when it is not. It returns how many it settled.
func (s *Reports) Recover(ctx context.Context, olderThan time.Duration) (int, error) {
	members, err := s.rdb.ZRangeByScore(ctx, s.intentsKey(), &redis.ZRangeBy{
		Min: "-inf", Max: strconv.FormatInt(ms(s.now().Add(-olderThan)), 10), Count: 100,
	}).Result()
	if err != nil {
		return 0, unavailable("read report intents", err)
	}
	n := 0
	for _, m := range members {
		in, ok := parseIntent(m)
		if !ok {
			if err := s.rdb.ZRem(ctx, s.intentsKey(), m).Err(); err != nil {
				return n, unavailable("drop report intent", err)
			}
			continue
		}
		key := reportKey(in.TenantKey, in.ID)
		vals, err := s.rdb.HMGet(ctx, key, "state", "published").Result()
		if err != nil {
			return n, unavailable("read report", err)
		}
		if vals[0] == nil || vals[1] == "1" {
			// Never staged (or staged and aborted), or already on the stream.
			if err := s.dropIntent(ctx, in); err != nil {
				return n, err
			}
			n++
			continue
		}
		in.Retry = true // admitted once: publish without the caps
		entry, err := s.publishMember(ctx, m, in)
		if err != nil {
			return n, err
		}
		if entry != "" {
			_ = commitScript.Run(ctx, s.rdb, []string{key}, entry).Err()
		}
		n++
	}
	return n, nil
}

// publishMember publishes an intent found in the set under its stored member, which may
// name a new report (with caps) that recovery publishes without them.
func (s *Reports) publishMember(ctx context.Context, member string, in intent) (string, error) {
	res, err := publishScript.Run(ctx, s.rdb,
		[]string{s.streamKey(), s.bytesKey(), s.intentsKey(), s.heldKey()},
		member, in.TenantKey, in.ID, in.Bytes, "0", 0, 0, heldField(in.TenantKey, in.ID)).StringSlice()
	if err != nil {
		return "", unavailable("publish report", err)
	}
	if res[0] == "ok" {
		return res[1], nil
	}
	return "", nil
}

// customerMAC is the keyed hash that stands for an email in keys. Emails are compared
// case-insensitively, as Atlassian accounts are.
func (s *Reports) customerMAC(email string) string {
	m := hmac.New(sha256.New, s.customerKey)
	m.Write([]byte(strings.ToLower(strings.TrimSpace(email))))
	return hex.EncodeToString(m.Sum(nil))
}

// CachedCustomer returns the JSM accountId cached for email, if any.
func (s *Reports) CachedCustomer(ctx context.Context, tenantKey, email string) (string, bool, error) {
	id, err := s.rdb.Get(ctx, customerKey(tenantKey, s.customerMAC(email))).Result()
	if errors.Is(err, redis.Nil) {
		return "", false, nil
	}
	if err != nil {
		return "", false, unavailable("read customer cache", err)
	}
	return id, true, nil
}

// CacheCustomer remembers the JSM accountId of email for CustomerTTL.
func (s *Reports) CacheCustomer(ctx context.Context, tenantKey, email, accountID string) error {
	if err := s.rdb.Set(ctx, customerKey(tenantKey, s.customerMAC(email)), accountID, s.customerTTL).Err(); err != nil {
		return unavailable("write customer cache", err)
	}
	return nil
}

// ForgetCustomer drops the cached accountId of email when it is still accountID: JSM
// refused a request raised on behalf of that account (deleted or merged since it was
// cached), so the next lookup must ask JSM again.
func (s *Reports) ForgetCustomer(ctx context.Context, tenantKey, email, accountID string) error {
	err := forgetCustomerScript.Run(ctx, s.rdb, []string{customerKey(tenantKey, s.customerMAC(email))}, accountID).Err()
	if err != nil {
		return unavailable("forget cached customer", err)
	}
	return nil
}

// Package audit is the record of who asked for, decided on and read a customer's logs. Each
// tenant has one append-only chain of entries; every entry carries an HMAC-SHA256, keyed from
// the service's secret key, of its predecessor's hash and its own canonical encoding. Removing,
// reordering or editing any stored entry breaks the chain where it happened, and Verify says
// where; a party with write access to Redis but not the key cannot recompute the chain after
// a change, as it could with a plain hash. The customer sees these entries on the admin page
// and in the evidence pack.
//
// Entries describe accesses, never their content: Details holds counts, stream names, time
// windows and durations, and Append refuses values long enough to smuggle log lines in.
package audit

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
)

// GenesisHash is the PrevHash of a tenant's first entry.
const GenesisHash = "0000000000000000000000000000000000000000000000000000000000000000"

// ActorKind says what kind of party acted; the consent page words entries by it.
type ActorKind string

// The parties that appear in the log.
const (
	ActorAgent    ActorKind = "agent"
	ActorCustomer ActorKind = "customer"
	ActorSystem   ActorKind = "system" // expiry, ticket closed, uninstall
	ActorAdmin    ActorKind = "admin"
)

// Actions recorded by supportbridge. Other snake_case actions are accepted, so a new kind of
// event does not need a change here, but these are the ones the consent page knows.
const (
	ActionAccessRequested   = "access_requested"
	ActionRequestCancelled  = "request_cancelled"
	ActionRequestExpired    = "request_expired"
	ActionApproved          = "approved"
	ActionDenied            = "denied"
	ActionRevoked           = "revoked"
	ActionExpired           = "expired"
	ActionTicketClosed      = "ticket_closed"
	ActionTenantUninstalled = "tenant_uninstalled"
	ActionLogsRead          = "logs_read"
)

// Actor is who caused an entry. Email is kept because the customer is entitled to know which
// person read their logs; it is never written to the server log. AccountID is the Atlassian
// account of a site administrator who decided, as their site's token said.
type Actor struct {
	Kind      ActorKind `json:"kind"`
	Name      string    `json:"name,omitempty"`
	Email     string    `json:"email,omitempty"`
	AccountID string    `json:"accountId,omitempty"`
}

// Entry is one audit record. Append fills Seq, PrevHash and Hash (and Time when zero).
type Entry struct {
	Seq       int64     `json:"seq"`
	Time      time.Time `json:"time"`
	Tenant    string    `json:"tenant"`
	Ticket    string    `json:"ticket,omitempty"`
	Actor     Actor     `json:"actor"`
	Action    string    `json:"action"`
	RequestID string    `json:"requestId,omitempty"`
	GrantID   string    `json:"grantId,omitempty"`
	// Details are facts about the event such as streams, window, bytes, lines, duration.
	// Never log content: values are bounded (MaxDetailValueLen) to keep it out.
	Details  map[string]string `json:"details,omitempty"`
	PrevHash string            `json:"prevHash"`
	Hash     string            `json:"hash"`
}

// Limits on entries. They keep a single entry small and make it structurally hard to copy
// log content into the audit trail; a caller that hits one has a bug, not a big event.
const (
	MaxDetails        = 16
	MaxDetailKeyLen   = 40
	MaxDetailValueLen = 512
	maxIDLen          = 128
	maxNameLen        = 200
	maxEmailLen       = 254
	maxTenantLen      = 256
	maxActionLen      = 64
)

var (
	// ErrInvalidEntry means Append was given an entry it will not record (a caller bug).
	ErrInvalidEntry = errors.New("invalid audit entry")
	// ErrConflict is what a Store returns when the chain's head moved since the caller read
	// it; Log retries with the new head.
	ErrConflict = errors.New("audit chain head moved")
	// ErrContention means Append lost the race for the head too many times in a row.
	ErrContention = errors.New("audit chain contended")
	// ErrCorrupt means stored audit data cannot be read; Verify says where the chain broke.
	ErrCorrupt = errors.New("audit data corrupt")
)

// Head is the end of a tenant's chain: the last entry's Seq and Hash, or 0 and GenesisHash.
type Head struct {
	Seq  int64
	Hash string
}

// Record is an entry as stored: Data is its canonical encoding, the bytes Hash covers. The
// store keeps bytes rather than fields so that what Verify hashes is exactly what was written.
type Record struct {
	Seq  int64
	Hash string
	Data []byte
}

// Store keeps the chains. Implementations must make Append atomic: it stores rec only if the
// tenant's head still equals prev, and otherwise returns the current head with ErrConflict.
// That compare-and-set is what keeps concurrent appenders from forking a chain.
type Store interface {
	Head(ctx context.Context, tenant string) (Head, error)
	Append(ctx context.Context, tenant, ticket string, prev Head, rec Record) (Head, error)
	// Range returns up to limit records with Seq > afterSeq, in order.
	Range(ctx context.Context, tenant string, afterSeq int64, limit int) ([]Record, error)
	// TicketRecords returns the records appended with that ticket, in order.
	TicketRecords(ctx context.Context, tenant, ticket string) ([]Record, error)
}

// Log appends to and reads the chains of a Store.
type Log struct {
	store Store
	key   []byte
	now   func() time.Time
}

// MinKeyLen is the shortest chain key New accepts.
const MinKeyLen = 32

// New returns a Log over store whose chain is keyed with key (at least MinKeyLen bytes,
// derived from SB_SECRET_KEY; New panics on a shorter one, a wiring bug). now stamps entries
// that come without a time; nil means time.Now.
func New(store Store, key []byte, now func() time.Time) *Log {
	if len(key) < MinKeyLen {
		panic("audit: chain key shorter than 32 bytes")
	}
	if now == nil {
		now = time.Now
	}
	return &Log{store: store, key: append([]byte(nil), key...), now: now}
}

// Head returns the end of a tenant's chain. Ticket comments repeat it, so that the ticket,
// which we do not control, witnesses how far the chain had grown.
func (l *Log) Head(ctx context.Context, tenant string) (Head, error) {
	h, err := l.store.Head(ctx, tenant)
	if err != nil {
		return Head{}, fmt.Errorf("read audit head: %w", err)
	}
	return h, nil
}

// maxAppendAttempts bounds retries under contention. Every conflict means another append
// succeeded, so the chain always progresses; the bound only stops one caller spinning forever.
const maxAppendAttempts = 200

// pageSize is how many records Verify and List read per round trip.
const pageSize = 500

// Append adds e to the end of its tenant's chain and returns it as stored, with Seq,
// PrevHash and Hash set. Seq, PrevHash and Hash given by the caller are ignored.
func (l *Log) Append(ctx context.Context, e Entry) (Entry, error) {
	if e.Time.IsZero() {
		e.Time = l.now()
	}
	e.Time = e.Time.UTC().Round(0)
	if len(e.Details) == 0 {
		e.Details = nil // nil and empty encode the same; keep the returned entry equal to a read one
	}
	if err := validate(e); err != nil {
		return Entry{}, err
	}
	head, err := l.store.Head(ctx, e.Tenant)
	if err != nil {
		return Entry{}, fmt.Errorf("read audit head: %w", err)
	}
	for range maxAppendAttempts {
		e.Seq, e.PrevHash = head.Seq+1, head.Hash
		data := Canonical(e)
		e.Hash = ChainHash(l.key, e.PrevHash, data)
		cur, err := l.store.Append(ctx, e.Tenant, e.Ticket, head, Record{Seq: e.Seq, Hash: e.Hash, Data: data})
		if err == nil {
			return e, nil
		}
		if !errors.Is(err, ErrConflict) {
			return Entry{}, fmt.Errorf("append audit entry: %w", err)
		}
		if err := ctx.Err(); err != nil {
			return Entry{}, fmt.Errorf("append audit entry: %w", err)
		}
		head = cur
	}
	return Entry{}, ErrContention
}

// Filter narrows List. Empty fields match everything.
type Filter struct {
	Ticket    string
	GrantID   string
	RequestID string
}

func (f Filter) matches(e Entry) bool {
	return (f.Ticket == "" || e.Ticket == f.Ticket) &&
		(f.GrantID == "" || e.GrantID == f.GrantID) &&
		(f.RequestID == "" || e.RequestID == f.RequestID)
}

// List returns a tenant's entries that match f, oldest first. It does not verify the chain;
// show Verify's result next to the entries. An entry that cannot be decoded is an
// ErrCorrupt error rather than a silent gap.
func (l *Log) List(ctx context.Context, tenant string, f Filter) ([]Entry, error) {
	var out []Entry
	keep := func(recs []Record) error {
		for _, r := range recs {
			e, err := decode(r)
			if err != nil {
				return fmt.Errorf("list audit entries: entry %d: %w", r.Seq, err)
			}
			// The ticket index is not covered by the chain, so its answers are checked too.
			if e.Tenant == tenant && f.matches(e) {
				out = append(out, e)
			}
		}
		return nil
	}
	if f.Ticket != "" {
		recs, err := l.store.TicketRecords(ctx, tenant, f.Ticket)
		if err != nil {
			return nil, fmt.Errorf("list audit entries: %w", err)
		}
		return out, keep(recs)
	}
	for after := int64(0); ; {
		recs, err := l.store.Range(ctx, tenant, after, pageSize)
		if err != nil {
			return nil, fmt.Errorf("list audit entries: %w", err)
		}
		if err := keep(recs); err != nil {
			return nil, err
		}
		if len(recs) < pageSize || recs[len(recs)-1].Seq <= after {
			return out, nil // the second test stops a tampered store from looping us forever
		}
		after = recs[len(recs)-1].Seq
	}
}

// VerifyResult is the outcome of checking one tenant's chain.
type VerifyResult struct {
	Entries int  // records read
	OK      bool // the whole chain, and the head, check out
	// FirstBroken is the Seq of the first entry that is missing, altered or out of place;
	// every entry before it is intact.
	FirstBroken int64
	Reason      string // a fixed phrase naming what was wrong, empty when OK
}

// Reasons Verify gives.
const (
	ReasonMissing     = "entry missing or out of sequence"
	ReasonUnreadable  = "entry is not a canonical audit entry of this version"
	ReasonSeq         = "entry sequence number does not match its position"
	ReasonTenant      = "entry belongs to another tenant"
	ReasonPrevHash    = "previous hash does not match the preceding entry"
	ReasonHash        = "hash does not match the entry's content"
	ReasonHeadMissing = "entries after the last one read are missing"
	ReasonHeadHash    = "chain head does not match the last entry"
)

// Verify walks a tenant's chain from the start and checks every link, then checks that the
// stored head matches the last entry, which catches removal of the newest entries. It reports
// the first break; an error means the store could not be read at all. A chain rewritten from
// some point on, hashes and head included, verifies; comparing the head with a copy held
// elsewhere (an evidence pack the customer already has) detects that.
func (l *Log) Verify(ctx context.Context, tenant string) (VerifyResult, error) {
	res := VerifyResult{OK: true}
	fail := func(seq int64, reason string) {
		if res.OK {
			res.OK, res.FirstBroken, res.Reason = false, seq, reason
		}
	}
	prev := Head{Seq: 0, Hash: GenesisHash}
	for after := int64(0); ; {
		recs, err := l.store.Range(ctx, tenant, after, pageSize)
		if err != nil {
			return VerifyResult{}, fmt.Errorf("verify audit chain: %w", err)
		}
		for _, r := range recs {
			res.Entries++
			if res.OK {
				checkLink(l.key, r, tenant, &prev, fail)
			}
		}
		if len(recs) < pageSize || recs[len(recs)-1].Seq <= after {
			break // the second test stops a tampered store from looping us forever
		}
		after = recs[len(recs)-1].Seq
	}
	head, err := l.store.Head(ctx, tenant)
	switch {
	case errors.Is(err, ErrCorrupt):
		fail(prev.Seq+1, ReasonHeadHash)
	case err != nil:
		return VerifyResult{}, fmt.Errorf("verify audit chain: %w", err)
	case head.Seq > prev.Seq:
		fail(prev.Seq+1, ReasonHeadMissing)
	case head.Seq < prev.Seq:
		fail(head.Seq+1, ReasonHeadHash) // entries were added behind the head's back
	case head != prev:
		fail(prev.Seq, ReasonHeadHash) // the last entry was replaced, or the head edited
	}
	return res, nil
}

// checkLink checks one record against its predecessor and advances prev when it holds.
func checkLink(key []byte, r Record, tenant string, prev *Head, fail func(int64, string)) {
	want := prev.Seq + 1
	if r.Seq != want {
		fail(want, ReasonMissing)
		return
	}
	e, err := decode(r)
	switch {
	case err != nil:
		fail(want, ReasonUnreadable)
	case e.Seq != r.Seq:
		fail(want, ReasonSeq)
	case e.Tenant != tenant:
		fail(want, ReasonTenant)
	case e.PrevHash != prev.Hash:
		fail(want, ReasonPrevHash)
	case !hmac.Equal([]byte(ChainHash(key, e.PrevHash, r.Data)), []byte(r.Hash)):
		fail(want, ReasonHash)
	default:
		*prev = Head{Seq: r.Seq, Hash: r.Hash}
	}
}

// ChainHash is hex HMAC-SHA256(key, prevHash || canonical): the hash of an entry given its
// predecessor's hash and its canonical encoding. Without the key nobody can make a chain
// that verifies, which is the point; with it (the operator) an evidence pack can be checked
// outside supportbridge.
func ChainHash(key []byte, prevHash string, canonical []byte) string {
	h := hmac.New(sha256.New, key)
	h.Write([]byte(prevHash))
	h.Write(canonical)
	return hex.EncodeToString(h.Sum(nil))
}

// validate enforces the limits. Strings must be valid UTF-8 without control characters: the
// canonical JSON would otherwise rewrite invalid bytes, and two different entries could share
// one encoding.
func validate(e Entry) error {
	var problems []string
	check := func(field, v string, max int, required bool) {
		switch {
		case v == "" && required:
			problems = append(problems, field+" is required")
		case len(v) > max:
			problems = append(problems, fmt.Sprintf("%s is longer than %d bytes", field, max))
		case !cleanText(v):
			problems = append(problems, field+" has invalid UTF-8 or control characters")
		}
	}
	check("tenant", e.Tenant, maxTenantLen, true)
	check("ticket", e.Ticket, maxIDLen, false)
	check("actor name", e.Actor.Name, maxNameLen, false)
	check("actor email", e.Actor.Email, maxEmailLen, false)
	check("actor account id", e.Actor.AccountID, maxIDLen, false)
	check("request id", e.RequestID, maxIDLen, false)
	check("grant id", e.GrantID, maxIDLen, false)
	switch e.Actor.Kind {
	case ActorAgent, ActorCustomer, ActorSystem, ActorAdmin:
	default:
		problems = append(problems, fmt.Sprintf("actor kind %q is not agent, customer, system or admin", e.Actor.Kind))
	}
	if !snakeCase(e.Action, maxActionLen) {
		problems = append(problems, "action must be snake_case")
	}
	if len(e.Details) > MaxDetails {
		problems = append(problems, fmt.Sprintf("more than %d details", MaxDetails))
	}
	for k, v := range e.Details {
		if !snakeCase(k, MaxDetailKeyLen) {
			problems = append(problems, fmt.Sprintf("detail key %q must be snake_case", truncateForError(k)))
			continue
		}
		check("detail "+k, v, MaxDetailValueLen, false)
	}
	if e.Time.Year() < 2000 || e.Time.Year() > 9999 {
		problems = append(problems, "time is out of range")
	}
	if len(problems) > 0 {
		return fmt.Errorf("%w: %s", ErrInvalidEntry, strings.Join(problems, "; "))
	}
	return nil
}

func cleanText(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) || r == 0x2028 || r == 0x2029 {
			return false
		}
	}
	return true
}

func snakeCase(s string, max int) bool {
	if s == "" || len(s) > max || s[0] < 'a' || s[0] > 'z' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

func truncateForError(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}

// Package logaccess is the only door to a customer's logs: an agent reads through a live
// grant, inside its streams and window, with secrets always scrubbed and personal data
// pseudonymised unless the customer allowed it, within the grant's byte budget. The grant is
// checked before the first byte and again every half second while streaming, so a
// revocation, expiry, ticket closure or uninstall cuts a running read within a second; every
// read, finished or not, leaves a receipt in the customer's audit chain with the bytes sent
// and their SHA-256. It also computes the preview the customer sees before deciding.
package logaccess

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/supportbridge/supportbridge/internal/consent"
	"github.com/supportbridge/supportbridge/internal/logstore"
	"github.com/supportbridge/supportbridge/internal/secret"
	"github.com/supportbridge/supportbridge/internal/tenant"
	"github.com/supportbridge/supportbridge/internal/usage"
)

// Consent is what reading needs of the consent service; *consent.Service implements it.
type Consent interface {
	GetGrant(ctx context.Context, id string) (consent.Grant, error)
	Authorize(ctx context.Context, grantID string, agent consent.Actor, stream string, from, to time.Time) (consent.Grant, error)
	AuthorizeGrant(ctx context.Context, grantID string, agent consent.Actor) (consent.Grant, error)
	RecordAccess(ctx context.Context, grantID string, a consent.Access) error
	GrantBytesRead(ctx context.Context, grantID string) (int64, error)
}

// Logs opens a stream's records in a window; *logstore.Store implements it.
type Logs interface {
	Open(ctx context.Context, tenant, stream string, from, to time.Time) (*logstore.Cursor, error)
	Scope(ctx context.Context, tenant string, streams []string, from, to time.Time) (logstore.Scope, error)
}

// Secrets gives the tenant's shared secret, scrubbed from every line wherever it appears.
type Secrets interface {
	SharedSecret(ctx context.Context, tenant string) (secret.Secret, error)
}

// Options wire a Service.
type Options struct {
	Consent Consent
	Logs    Logs
	Secrets Secrets
	// PseudonymKey keys the per-request pseudonym keys (derived from SB_SECRET_KEY).
	PseudonymKey []byte
	// MaxBytes is the byte budget of one grant over all its reads (SB_GRANT_MAX_BYTES).
	MaxBytes int64
	// Recheck is how often a running read asks consent again; at most a second, default
	// half a second.
	Recheck time.Duration
	// PreviewLines and PreviewTimeout bound the customer's preview (20 lines, 300 ms).
	PreviewLines   int
	PreviewTimeout time.Duration
	Logger         *slog.Logger
	// Usage counts bytes served anonymously (usage.LogBytesServed); nil counts nothing.
	Usage UsageCounter
}

// UsageCounter is the anonymous usage count; *usage.Counter implements it.
type UsageCounter interface {
	Count(ctx context.Context, tenant string, kind usage.Kind, n int64)
}

// Service reads logs under grants.
type Service struct{ o Options }

// New returns a Service.
func New(o Options) (*Service, error) {
	if len(o.PseudonymKey) < 32 {
		return nil, errors.New("logaccess: pseudonym key shorter than 32 bytes")
	}
	if o.MaxBytes <= 0 {
		o.MaxBytes = 256 << 20
	}
	if o.Recheck <= 0 || o.Recheck > time.Second {
		o.Recheck = 500 * time.Millisecond
	}
	if o.PreviewLines <= 0 {
		o.PreviewLines = 20
	}
	if o.PreviewTimeout <= 0 {
		o.PreviewTimeout = 300 * time.Millisecond
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return &Service{o: o}, nil
}

// How a read ended; the last record of a stream says which.
const (
	EndComplete   = "complete"
	EndBudget     = "budget"
	EndClientGone = "client_gone"
	EndError      = "error"
	// Other ends are the grant's end reasons: expired, revoked_by_customer, ticket_closed, …
)

// Errors of Open, beyond consent's ErrNotFound, ErrNoActiveGrant and ErrForbidden.
var (
	// ErrOutsideWindow: the asked window does not meet the grant's at all (HTTP 416).
	ErrOutsideWindow = errors.New("window outside the grant's")
	// ErrStreamRequired: the grant names several streams and the request none.
	ErrStreamRequired = errors.New("name the stream to read")
	// ErrBudgetSpent: the grant has served all the bytes it may.
	ErrBudgetSpent = errors.New("grant byte budget spent")
)

// Request is what an agent asks to read. Zero From or To mean the grant's own.
type Request struct {
	GrantID  string
	Agent    consent.Actor
	Stream   string
	From, To time.Time
}

// Line is one record as it leaves: the record's time, stream and redacted text.
type Line struct {
	Time   time.Time
	Stream string
	Text   string
}

// Read is an authorized read, ready to stream.
type Read struct {
	s        *Service
	grant    consent.Grant
	req      Request
	budget   int64
	redactor *logstore.Redactor
	cursor   *logstore.Cursor
}

// Grant is the grant the read is made under.
func (r *Read) Grant() consent.Grant { return r.grant }

// Window is the window served: the asked one clipped to the grant's.
func (r *Read) Window() (from, to time.Time) { return r.req.From, r.req.To }

// StreamName is the stream read.
func (r *Read) StreamName() string { return r.req.Stream }

// Open checks the grant and opens the read. Nothing is read or sent yet.
func (s *Service) Open(ctx context.Context, req Request) (*Read, error) {
	g, err := s.o.Consent.GetGrant(ctx, req.GrantID)
	if err != nil {
		return nil, err
	}
	if req.Stream == "" {
		if len(g.Streams) != 1 {
			return nil, ErrStreamRequired
		}
		req.Stream = g.Streams[0]
	}
	from, to := req.From, req.To
	if from.IsZero() {
		from = g.From
	}
	if to.IsZero() {
		to = g.To
	}
	if from.Before(g.From) {
		from = g.From
	}
	if to.After(g.To) {
		to = g.To
	}
	if !from.Before(to) {
		// Say nothing about the grant's window to someone who may not hold it.
		if _, err := s.o.Consent.AuthorizeGrant(ctx, req.GrantID, req.Agent); err != nil {
			return nil, err
		}
		return nil, ErrOutsideWindow
	}
	req.From, req.To = from, to
	g, err = s.o.Consent.Authorize(ctx, req.GrantID, req.Agent, req.Stream, from, to)
	if err != nil {
		return nil, err
	}
	used, err := s.o.Consent.GrantBytesRead(ctx, g.ID)
	if err != nil {
		return nil, fmt.Errorf("read budget: %w", err)
	}
	if used >= s.o.MaxBytes {
		return nil, ErrBudgetSpent
	}
	red, err := s.redactor(ctx, g.Tenant, g.RequestID, g.PersonalData)
	if err != nil {
		return nil, err
	}
	cur, err := s.o.Logs.Open(ctx, g.Tenant, req.Stream, from, to)
	if err != nil {
		return nil, fmt.Errorf("open logs: %w", err)
	}
	return &Read{s: s, grant: g, req: req, budget: s.o.MaxBytes - used, redactor: red, cursor: cur}, nil
}

// redactor builds the scrubber of a grant. Pseudonyms are keyed per request (a grant has
// exactly one), so the preview the customer saw and the agent's reads use the same ones,
// and two grants never share them.
func (s *Service) redactor(ctx context.Context, tenant, requestID string, personalData bool) (*logstore.Redactor, error) {
	shared, err := s.o.Secrets.SharedSecret(ctx, tenant)
	if err != nil {
		return nil, fmt.Errorf("tenant secret: %w", err)
	}
	m := hmac.New(sha256.New, s.o.PseudonymKey)
	m.Write([]byte("pseudonyms\x00" + requestID))
	red, err := logstore.NewRedactor(logstore.RedactorOptions{
		GrantKey: secret.New(string(m.Sum(nil))), SharedSecret: shared, PersonalData: personalData,
	})
	if err != nil {
		return nil, fmt.Errorf("redactor: %w", err)
	}
	return red, nil
}

// Writer is where a read sends its lines: Write encodes and writes one, returning the bytes
// it wrote (what the receipt hashes); Flush pushes what is buffered to the agent.
type Writer interface {
	Write(l Line) ([]byte, error)
	Flush() error
}

// Receipt is what a read sent, as recorded in the audit chain.
type Receipt struct {
	End        string
	Lines      int64
	Bytes      int64
	SHA256     string
	Redactions map[string]int
}

// Stream sends the read's lines to w until the window is done, the grant ends, the budget
// is spent, the client goes or the store fails, and records the receipt whatever happened.
// The grant is asked again every Recheck; a failed check stops the stream before the next
// line. End says why it stopped.
func (r *Read) Stream(ctx context.Context, w Writer) Receipt {
	defer r.cursor.Close()
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)

	var (
		mu      sync.Mutex
		endWhy  string
		stopped = make(chan struct{})
	)
	go func() {
		t := time.NewTicker(r.s.o.Recheck)
		defer t.Stop()
		for {
			select {
			case <-stopped:
				return
			case <-ctx.Done():
				return
			case <-t.C:
			}
			if _, err := r.s.o.Consent.AuthorizeGrant(ctx, r.grant.ID, r.req.Agent); err != nil {
				if ctx.Err() != nil {
					return
				}
				mu.Lock()
				endWhy = endReason(err)
				mu.Unlock()
				cancel(errGrantEnded)
				return
			}
		}
	}()

	h := sha256.New()
	rc := Receipt{End: EndComplete}
	rc.End = r.pump(ctx, w, h, &rc)
	close(stopped)
	if rc.End == "" {
		mu.Lock()
		rc.End = endWhy
		mu.Unlock()
	}
	rc.SHA256 = hex.EncodeToString(h.Sum(nil))
	rc.Redactions = r.redactor.Counts()
	from, to := r.Window()
	// The receipt is written even if the agent went away: the customer must see every byte
	// that left.
	rctx, rcancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer rcancel()
	err := r.s.o.Consent.RecordAccess(rctx, r.grant.ID, consent.Access{
		Agent: r.req.Agent, Stream: r.req.Stream, From: from, To: to, Bytes: rc.Bytes, Lines: rc.Lines,
		SHA256: rc.SHA256, Redactions: rc.Redactions, End: rc.End,
	})
	if err != nil {
		r.s.o.Logger.Error("log_read_receipt_failed", "grant_id", r.grant.ID, "error", err)
	}
	if r.s.o.Usage != nil {
		r.s.o.Usage.Count(rctx, r.grant.Tenant, usage.LogBytesServed, rc.Bytes)
	}
	return rc
}

var errGrantEnded = errors.New("grant ended")

// flushEvery bounds how long sent lines wait in buffers.
const flushEvery = 100 * time.Millisecond

// pump copies records to w. It returns the end, or "" when the grant watcher stopped it.
func (r *Read) pump(ctx context.Context, w Writer, h hash.Hash, rc *Receipt) string {
	lastFlush := time.Now()
	defer w.Flush()
	for {
		if err := context.Cause(ctx); err != nil {
			if errors.Is(err, errGrantEnded) {
				return ""
			}
			return EndClientGone
		}
		rec, err := r.cursor.Next(ctx)
		if errors.Is(err, io.EOF) {
			return EndComplete
		}
		if err != nil {
			if ctx.Err() != nil {
				continue // the loop head says why
			}
			r.s.o.Logger.Error("log_read_failed", "grant_id", r.grant.ID, "error", err)
			return EndError
		}
		rec = r.redactor.Record(rec)
		b, err := w.Write(Line{Time: rec.Time, Stream: r.req.Stream, Text: rec.Text})
		if len(b) > 0 {
			h.Write(b)
			rc.Bytes += int64(len(b))
			rc.Lines++
		}
		if err != nil {
			return EndClientGone
		}
		if rc.Bytes >= r.budget {
			return EndBudget
		}
		if time.Since(lastFlush) >= flushEvery {
			if err := w.Flush(); err != nil {
				return EndClientGone
			}
			lastFlush = time.Now()
		}
	}
}

// endReason turns a failed re-check into the end of the stream.
func endReason(err error) string {
	var ng *consent.NoGrantError
	if errors.As(err, &ng) && ng.Reason != "" {
		return ng.Reason
	}
	if errors.Is(err, consent.ErrNoActiveGrant) || errors.Is(err, consent.ErrForbidden) {
		return "ended"
	}
	return EndError
}

// Preview computes what request r would expose, for the customer deciding on it: the first
// lines of its streams as the agent would get them and how much is in scope, or
// "preview unavailable" when that cannot be done within PreviewTimeout.
func (s *Service) Preview(ctx context.Context, r consent.AccessRequest) consent.Preview {
	ctx, cancel := context.WithTimeout(ctx, s.o.PreviewTimeout)
	defer cancel()
	p := consent.Preview{Lines: []consent.PreviewLine{}}
	scope, err := s.o.Logs.Scope(ctx, r.Tenant, r.Streams, r.From, r.To)
	if err != nil {
		return unavailable(ctx)
	}
	p.Files, p.Bytes = scope.Files, scope.Bytes
	red, err := s.redactor(ctx, r.Tenant, r.ID, r.PersonalData)
	if err != nil {
		return unavailable(ctx)
	}
	for _, stream := range slices.Sorted(slices.Values(r.Streams)) {
		if len(p.Lines) >= s.o.PreviewLines {
			break
		}
		cur, err := s.o.Logs.Open(ctx, r.Tenant, stream, r.From, r.To)
		if err != nil {
			return unavailable(ctx)
		}
		for len(p.Lines) < s.o.PreviewLines {
			rec, err := cur.Next(ctx)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				cur.Close()
				return unavailable(ctx)
			}
			rec = red.Record(rec)
			p.Lines = append(p.Lines, consent.PreviewLine{Time: rec.Time, Stream: stream, Line: rec.Text})
		}
		cur.Close()
	}
	p.Available = true
	return p
}

// unavailable is the preview that could not be computed, saying why in the customer's words.
func unavailable(ctx context.Context) consent.Preview {
	reason := "the logs could not be read just now"
	if ctx.Err() != nil {
		reason = "the preview took too long to compute"
	}
	return consent.Preview{Available: false, Reason: "preview unavailable: " + reason, Lines: []consent.PreviewLine{}}
}

// TenantDirectory is where TenantSecrets finds installations.
type TenantDirectory interface {
	Get(ctx context.Context, clientKey string) (tenant.Tenant, error)
}

// TenantSecrets gives the shared secret of a tenant from the tenant directory. A Forge-only
// tenant has none, and nothing of its own to scrub.
type TenantSecrets struct{ Dir TenantDirectory }

// SharedSecret returns the tenant's Connect shared secret.
func (t TenantSecrets) SharedSecret(ctx context.Context, key string) (secret.Secret, error) {
	tn, err := t.Dir.Get(ctx, key)
	if err != nil {
		return secret.Secret{}, err
	}
	return tn.SharedSecret, nil
}

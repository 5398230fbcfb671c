package report

import (
	"context"
	"errors"
	"time"

	"github.com/supportbridge/supportbridge/internal/secret"
	"github.com/supportbridge/supportbridge/internal/usage"
)

// ErrNoUser means the token names no user: a report is raised on behalf of a person, so an
// app-only call cannot file one (403).
var ErrNoUser = errors.New("the token names no user")

// Queue is what accepting a report needs from storage. The store keeps what it is given and
// decides nothing: ids, marker, rate-limit subjects and limits all come from the Service.
type Queue interface {
	// Enqueue stores the report and its attachments and queues it, all or nothing; with an
	// idempotency key seen before it returns the first report's id and replayed=true.
	Enqueue(ctx context.Context, s Submission, limits Limits) (id string, replayed bool, err error)
	// CheckRate tells, counting nothing, whether Enqueue would refuse the subject now for
	// its rate limits (a *RateLimitedError). A key already on record passes: it may be a
	// replay.
	CheckRate(ctx context.Context, tenantKey, accountID, idempotencyKey string, limits Limits) error
	// Status reads what the reporter's app may see of a report of the tenant.
	Status(ctx context.Context, tenantKey, id string) (Status, error)
}

// Secrets gives the tenant's shared secret, only so that it can be scrubbed out of what a
// user pasted. "" when the tenant has none (Forge-only).
type Secrets interface {
	SharedSecret(ctx context.Context, tenantKey string) (string, error)
}

// Submitter is who files a report, as the verified token says, plus what the request's
// headers say about the call. Nothing in it comes from the report body.
type Submitter struct {
	TenantKey string
	AccountID string
	// UserAgent is the request's User-Agent header, parsed into the environment.
	UserAgent string
	// IdempotencyKey is the Idempotency-Key header, "" when absent.
	IdempotencyKey string
	// SiteToken and SiteAPI let the delivery worker ask a Forge site who the reporter is:
	// the app system token Forge sent with the call and the installation's API base URL.
	// The latest is kept sealed, briefly, for the tenant; zero for Connect, whose worker signs
	// its own app JWT.
	SiteToken secret.Secret
	SiteAPI   string
}

// Accepted is the answer to a report that was stored and queued (or replayed).
type Accepted struct {
	ID       string
	State    State
	Replayed bool
}

// ServiceOptions configures a Service. Queue is required.
type ServiceOptions struct {
	Queue   Queue
	Secrets Secrets // nil: no tenant secret to scrub
	Limits  Limits
	Now     func() time.Time
	// Usage counts filed reports anonymously (usage.ReportsFiled); nil counts nothing.
	Usage UsageCounter
}

// UsageCounter is the anonymous usage count; *usage.Counter implements it.
type UsageCounter interface {
	Count(ctx context.Context, tenant string, kind usage.Kind, n int64)
}

// Service is report intake: the one place that decides how a report is accepted. It answers
// from the store alone: no call to Atlassian or JSM is on this path, so a report is accepted
// whatever they are doing; who the reporter is (their confirmed email) is the delivery
// worker's question.
type Service struct {
	queue   Queue
	secrets Secrets
	limits  Limits
	now     func() time.Time
	usage   UsageCounter
}

// NewService returns the intake service; it panics without a Queue (a wiring mistake).
func NewService(o ServiceOptions) *Service {
	if o.Queue == nil {
		panic("report: NewService needs a Queue")
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Service{queue: o.Queue, secrets: o.Secrets, limits: o.Limits, now: o.Now, usage: o.Usage}
}

// Limits are the caps the service applies.
func (s *Service) Limits() Limits { return s.limits }

// Admit tells, before the body is read, whether the submitter may file now: refusals that
// need no body (no user, rate limits) cost one store call instead of reading an upload.
// Enqueue stays the authority; requests admitted together are still held to the limits.
func (s *Service) Admit(ctx context.Context, who Submitter) error {
	if who.AccountID == "" {
		return ErrNoUser
	}
	return s.queue.CheckRate(ctx, who.TenantKey, who.AccountID, who.IdempotencyKey, s.limits)
}

// Submit accepts a decoded report: it mints the id and the dedupe marker, scrubs every text
// (with the tenant's secret among the secrets), and stores and queues it with its
// attachments in one step, held to the rate limits of the submitting user and tenant.
func (s *Service) Submit(ctx context.Context, who Submitter, in Input, atts []Attachment) (Accepted, error) {
	if who.AccountID == "" {
		return Accepted{}, ErrNoUser
	}
	secret := ""
	if s.secrets != nil {
		var err error
		if secret, err = s.secrets.SharedSecret(ctx, who.TenantKey); err != nil {
			return Accepted{}, err
		}
	}
	hash := BodyHash(in, atts)
	rep, stored, err := Build(in, atts, BuildContext{
		ID: NewID(), Marker: NewMarker(), TenantKey: who.TenantKey, AccountID: who.AccountID,
		UserAgent: who.UserAgent, Now: s.now().UTC(), SharedSecret: secret,
	})
	if err != nil {
		return Accepted{}, err
	}
	id, replayed, err := s.queue.Enqueue(ctx, Submission{
		Report: rep, Attachments: stored, IdempotencyKey: who.IdempotencyKey, BodyHash: hash,
		Subject: who.AccountID, SiteToken: who.SiteToken, SiteAPI: who.SiteAPI,
	}, s.limits)
	if err != nil {
		return Accepted{}, err
	}
	if !replayed && s.usage != nil {
		s.usage.Count(ctx, who.TenantKey, usage.ReportsFiled, 1)
	}
	out := Accepted{ID: id, State: StateQueued, Replayed: replayed}
	if replayed {
		// The first request's report may be further along by now; say where it is.
		if st, err := s.queue.Status(ctx, who.TenantKey, id); err == nil {
			out.State = st.State
		}
	}
	return out, nil
}

// Status reads a report of the submitter's tenant; ErrNotFound for ids of other tenants.
func (s *Service) Status(ctx context.Context, tenantKey, id string) (Status, error) {
	return s.queue.Status(ctx, tenantKey, id)
}

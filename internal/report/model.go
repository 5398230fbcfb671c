package report

import (
	"errors"
	"time"

	"github.com/supportbridge/supportbridge/internal/secret"
)

// Errors of intake that the HTTP layer maps to statuses.
var (
	// ErrIdempotencyMismatch: the Idempotency-Key was used before with a different body (422).
	ErrIdempotencyMismatch = errors.New("idempotency key reused with a different request")
	// ErrIdempotencyInFlight: a request with the same key is being processed right now (409).
	ErrIdempotencyInFlight = errors.New("a request with this idempotency key is in progress")
)

// RateLimitedError says a per-user or per-tenant limit was hit (429).
type RateLimitedError struct {
	Scope      string // "user" or "tenant"
	RetryAfter time.Duration
}

func (e *RateLimitedError) Error() string { return "rate limited per " + e.Scope }

// OverloadedError says the queue or the stored attachment bytes are over their caps (503).
type OverloadedError struct {
	Resource   string // "queue" or "attachments"
	RetryAfter time.Duration
}

func (e *OverloadedError) Error() string { return "overloaded: " + e.Resource }

// EmailSource says whether the reporter's email was confirmed by their Atlassian site. The
// delivery worker decides it; intake never does, because nothing in a request body is
// evidence of who the reporter is.
type EmailSource string

// What the worker found out about the reporter's email.
const (
	// EmailFromSite: the tenant's site named the email of the reporter's accountId
	// (Connect GET /rest/api/3/user/email with an app JWT). The request is raised on behalf
	// of that address.
	EmailFromSite EmailSource = "site"
	// EmailUnverified: the site named none (scope not granted, a Forge tenant without a
	// token to ask with, the site unreachable after the retries). The request is raised by
	// the service account; the typed hint goes into the internal comment only.
	EmailUnverified EmailSource = "unverified"
)

// Report is a problem report as accepted: validated, scrubbed, and ready to queue. Nothing in
// it may hold a secret; it is what Redis stores and what the worker turns into a request.
type Report struct {
	ID        string `json:"id"`
	TenantKey string `json:"tenantKey"`
	AccountID string `json:"accountId"`
	// EmailHint is the address the user typed, if any: a contact hint, never an identity.
	// It becomes raiseOnBehalfOf only when it equals the address the site confirms.
	EmailHint string `json:"emailHint,omitempty"`
	// Email and EmailSource are filled in by the delivery worker from the site before it
	// renders the request; a queued report has neither.
	Email       string      `json:"email,omitempty"`
	EmailSource EmailSource `json:"emailSource,omitempty"`
	ReceivedAt  time.Time   `json:"receivedAt"`
	// Marker is an opaque token written into the request description; after an ambiguous
	// create the worker searches for it before creating again.
	Marker       string           `json:"marker"`
	Summary      string           `json:"summary"`
	Description  string           `json:"description,omitempty"`
	Operation    Operation        `json:"operation"`
	RecentErrors []RecentError    `json:"recentErrors,omitempty"`
	Environment  Environment      `json:"environment"`
	Attachments  []AttachmentMeta `json:"attachments,omitempty"`
	Redactions   map[string]int   `json:"redactions,omitempty"`
}

// Operation is what the user was doing when it failed.
type Operation struct {
	Name         string    `json:"name,omitempty"`
	RequestIDs   []string  `json:"requestIds,omitempty"`
	OccurredAt   time.Time `json:"occurredAt,omitzero"`
	HTTPStatus   int       `json:"httpStatus,omitempty"`
	ErrorMessage string    `json:"errorMessage,omitempty"`
	Stack        string    `json:"stack,omitempty"`
}

// RecentError is one error the app saw shortly before the report.
type RecentError struct {
	Message    string    `json:"message"`
	OccurredAt time.Time `json:"occurredAt,omitzero"`
	Source     string    `json:"source,omitempty"`
}

// Environment is the user's browser and screen; Browser, BrowserVersion and OS are parsed on
// the server from the User-Agent.
type Environment struct {
	Locale         string `json:"locale,omitempty"`
	Timezone       string `json:"timezone,omitempty"`
	Screen         string `json:"screen,omitempty"`
	URL            string `json:"url,omitempty"`
	UserAgent      string `json:"userAgent,omitempty"`
	Browser        string `json:"browser,omitempty"`
	BrowserVersion string `json:"browserVersion,omitempty"`
	OS             string `json:"os,omitempty"`
}

// AttachmentMeta describes one file the user attached; the bytes are stored separately.
type AttachmentMeta struct {
	ID        string `json:"id"`
	Filename  string `json:"filename"`
	MediaType string `json:"mediaType"`
	Size      int64  `json:"size"`
}

// Attachment is a file with its bytes, on its way into the store.
type Attachment struct {
	AttachmentMeta
	Content []byte
}

// Submission is everything intake hands to the store in one atomic step.
type Submission struct {
	Report      Report
	Attachments []Attachment
	// IdempotencyKey is the caller's Idempotency-Key header ("" when absent); BodyHash is a
	// hash of the request that lets a replay be told from a different request.
	IdempotencyKey string
	BodyHash       string
	// Subject is whose rate limit and idempotency keys the report counts against, within
	// its tenant: the service decides it (the verified accountId), the store only counts.
	Subject string
	// SiteToken and SiteAPI are the Forge app system token and API base URL of the call, for
	// the worker to confirm the reporter's email with; see Submitter.
	SiteToken secret.Secret
	SiteAPI   string
}

// Limits are the intake caps checked inside Enqueue.
type Limits struct {
	PerUser            int
	PerTenant          int
	Window             time.Duration
	MaxQueueLength     int64
	MaxAttachmentBytes int64
	IdempotencyTTL     time.Duration
}

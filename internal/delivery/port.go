package delivery

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/supportbridge/supportbridge/internal/secret"
	"github.com/supportbridge/supportbridge/internal/tenant"
	"github.com/supportbridge/supportbridge/internal/usage"
)

// JSM is the service desk as the worker needs it, in the worker's own words; internal/jsm
// implements it (jsm.ForDelivery). Every error it returns is a *Failure, except the
// context's own.
type JSM interface {
	// ResolveCustomer returns the accountId of the desk customer with this email, creating
	// the customer and adding them to the desk when needed.
	ResolveCustomer(ctx context.Context, email string) (string, error)
	// CreateRequest raises a request; an answer that may hide a created request is
	// ErrAmbiguous.
	CreateRequest(ctx context.Context, r Request) (Ticket, error)
	// FindByMarker searches the desk for the request whose description holds marker.
	FindByMarker(ctx context.Context, marker string) (Ticket, bool, error)
	UploadTemporary(ctx context.Context, filename string, content []byte) (string, error)
	AttachTemporary(ctx context.Context, issueKey string, tempIDs []string, public bool) error
	AddComment(ctx context.Context, issueKey, body string, public bool) (string, error)
}

// Request is a request to raise on the desk.
type Request struct {
	Summary string
	// Description is JSM wiki markup; it holds the report's marker.
	Description string
	// RaiseOnBehalfOf is the customer's accountId; "" raises the request as the service
	// account, which is what happens when the reporter's site confirmed no email.
	RaiseOnBehalfOf string
}

// Ticket is a request on the desk.
type Ticket struct {
	Key    string // e.g. SUP-42
	WebURL string // the customer portal link; "" when JSM sent none
}

// Kind says what to do about a failed call.
type Kind int

const (
	// Transient: the call did not take effect; it may be repeated later.
	Transient Kind = iota + 1
	// Permanent: repeating the call cannot help (configuration or this report's data).
	Permanent
	// Ambiguous: a write may or may not have happened; look before writing again.
	Ambiguous
)

func (k Kind) String() string {
	switch k {
	case Transient:
		return "transient"
	case Permanent:
		return "permanent"
	case Ambiguous:
		return "ambiguous"
	}
	return "unknown"
}

// Refusal is what a 400 answer refused.
type Refusal int

const (
	RefusedUnknown  Refusal = iota // not a 400, or it named nothing recognised
	RefusedConfig                  // the desk or request type: every report would fail
	RefusedCustomer                // the account raised on behalf of (deleted, merged)
	RefusedInput                   // a field of this one request
)

func (r Refusal) String() string {
	switch r {
	case RefusedConfig:
		return "desk configuration"
	case RefusedCustomer:
		return "customer"
	case RefusedInput:
		return "request fields"
	}
	return "unknown"
}

// Errors of the JSM port, for errors.Is.
var (
	ErrPermanent   = errors.New("jsm: permanent failure")
	ErrAmbiguous   = errors.New("jsm: outcome unknown")
	ErrRateLimited = errors.New("jsm: rate limited")
)

// Failure is a failed JSM call as the adapter reports it. Text names the operation and the
// status only: no response body, which can echo personal data.
type Failure struct {
	Op         string // what was attempted, e.g. "create request"
	Status     int    // the HTTP status; 0 when no answer arrived
	Kind       Kind
	Refused    Refusal
	RetryAfter time.Duration // when the desk said when to come back
	Text       string
	Cause      error // the transport cause, for errors.Is(err, context.Canceled)
}

func (f *Failure) Error() string {
	if f.Text != "" {
		return f.Text
	}
	return "jsm " + f.Op + ": " + f.Kind.String()
}

func (f *Failure) Unwrap() error { return f.Cause }

// Is matches ErrPermanent, ErrAmbiguous and ErrRateLimited.
func (f *Failure) Is(target error) bool {
	switch target {
	case ErrPermanent:
		return f.Kind == Permanent
	case ErrAmbiguous:
		return f.Kind == Ambiguous
	case ErrRateLimited:
		return f.Status == http.StatusTooManyRequests
	}
	return false
}

// Sites asks a reporter's own Atlassian site who they are.
type Sites interface {
	// VerifiedEmail returns the email the reporter's site gives for their accountId. It
	// returns ErrNoVerifiedEmail when the site will not say (scope not granted, email
	// hidden, a Forge site and no token to ask with); any other error is the site being
	// unreachable.
	VerifiedEmail(ctx context.Context, r Reporter) (string, error)
}

// Reporter is whom to ask about, and what the worker may ask with.
type Reporter struct {
	Tenant    tenant.Tenant
	AccountID string
	// SiteToken and SiteAPI are the Forge app system token and API base URL that came with
	// the report, when Forge sent one; Connect sites are asked with an app JWT instead.
	SiteToken secret.Secret
	SiteAPI   string
}

// UsageCounter is the anonymous usage count; *usage.Counter implements it.
type UsageCounter interface {
	Count(ctx context.Context, tenant string, kind usage.Kind, n int64)
}

// ErrNoVerifiedEmail means the reporter's site named no email for them.
var ErrNoVerifiedEmail = errors.New("the site confirmed no email for the reporter")

// Package consent decides whether a support agent may read a customer's app logs. An agent
// asks for access on a JSM ticket; the ticket says so in a public comment that carries no
// secret; an administrator of the customer's own Atlassian site decides in the app's admin
// page inside that site, where Atlassian has authenticated them and the site confirms their
// ADMINISTER permission at the moment of the decision. An approval becomes a time-limited
// grant; anyone involved can end it, and every decision, end and read lands in the tenant's
// audit chain and on the ticket.
//
// It goes further than Customer Lockbox or Access Approval in three ways: consent is bound to
// one ticket (closing the ticket ends it), the access clock starts when the customer approves
// rather than when the agent asks, and the customer sees every read made under their consent.
//
// Authorize is the only gate for log reads. Everything else here exists to make the answer it
// gives correct, explainable to the customer, and impossible to change behind their back.
package consent

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/supportbridge/supportbridge/internal/audit"
)

// Actor kinds. They match audit.ActorKind so entries need no translation.
const (
	ActorAgent    = "agent"
	ActorAdmin    = "admin"
	ActorCustomer = "customer"
	ActorSystem   = "system"
)

// Actor is a party that acts on consent. Agents and admins come from agentauth; the customer
// is an administrator of the customer's site, known by the Atlassian accountId their site's
// verified token carried; system is the scheduler and the Jira webhook.
type Actor struct {
	Kind  string `json:"kind"`
	Name  string `json:"name,omitempty"`
	Email string `json:"email,omitempty"`
	// AccountID is the Atlassian account of a customer's site administrator who decided.
	AccountID string `json:"accountId,omitempty"`
	// Subject is the stable identity of an agent ("static:<name>", "oidc:<iss>|<sub>"). Grant
	// ownership is decided by Subject, never by name or email, which can change or repeat.
	Subject string `json:"subject,omitempty"`
}

// Request statuses.
const (
	RequestPending   = "pending"
	RequestApproved  = "approved"
	RequestDenied    = "denied"
	RequestCancelled = "cancelled"
	RequestExpired   = "expired"
)

// Grant statuses. Expired means the approved time ran out; ended means something other than
// time or a revocation ended it (the ticket was closed, the app uninstalled, standing consent
// not re-confirmed); EndReason says which.
const (
	GrantActive  = "active"
	GrantExpired = "expired"
	GrantRevoked = "revoked"
	GrantEnded   = "ended"
)

// Why a grant ended (Grant.EndReason) or a request was cancelled (AccessRequest.CancelReason).
const (
	ReasonExpired           = "expired"
	ReasonRevokedByCustomer = "revoked_by_customer"
	ReasonRevokedByAgent    = "revoked_by_agent"
	ReasonRevokedByAdmin    = "revoked_by_admin"
	ReasonTicketClosed      = "ticket_closed"
	ReasonTenantUninstalled = "tenant_uninstalled"
	ReasonNotReconfirmed    = "not_reconfirmed"
	ReasonCancelledByAgent  = "cancelled_by_agent"
	ReasonCancelledByAdmin  = "cancelled_by_admin"
	ReasonGrantEnded        = "grant_ended"           // a re-confirmation request whose grant ended first
	ReasonNotifyFailed      = "customer_not_notified" // the request could not be announced on the ticket
	ReasonTicketDeleted     = "ticket_deleted"
	// ReasonFlowChanged withdraws requests made when a consent link decided, on upgrade.
	ReasonFlowChanged = "consent_flow_changed"
)

// Limits of a request. A window wider than a month or a grant longer than 30 days is not
// "access for this ticket" any more; standing access exists for that and is re-confirmed.
const (
	MinReasonLen    = 10
	MaxReasonLen    = 1000
	MaxDenyLen      = 1000
	MaxStreams      = 20
	MaxWindow       = 31 * 24 * time.Hour
	MinDuration     = time.Hour
	MaxDuration     = 720 * time.Hour
	ReconfirmPeriod = 90 * 24 * time.Hour
	// ReconfirmNotice is how long before ReconfirmBy the customer is asked again. Two weeks
	// rather than one, so a customer on holiday does not silently lose standing access.
	ReconfirmNotice = 14 * 24 * time.Hour
	// DefaultClaimWindow is how long a request can be decided.
	DefaultClaimWindow = 72 * time.Hour
)

// Duration is how long a grant lasts once approved: a fixed time, or until revoked (standing
// consent, re-confirmed every ReconfirmPeriod).
type Duration struct {
	D            time.Duration
	UntilRevoked bool
}

// UntilRevokedText is how "until revoked" is written in requests and forms.
const UntilRevokedText = "until-revoked"

// ParseDuration reads "1h" … "720h" (any Go duration in that range, whole minutes) or
// "until-revoked".
func ParseDuration(s string) (Duration, error) {
	s = strings.TrimSpace(s)
	if s == UntilRevokedText {
		return Duration{UntilRevoked: true}, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return Duration{}, errors.New(`must be a duration such as "24h" or "until-revoked"`)
	}
	if d < MinDuration || d > MaxDuration {
		return Duration{}, errors.New("must be between 1h and 720h (30 days), or until-revoked")
	}
	if d%time.Minute != 0 {
		return Duration{}, errors.New("must be a whole number of minutes")
	}
	return Duration{D: d}, nil
}

// String is the form ParseDuration reads: "until-revoked", "24h", "1h30m".
func (d Duration) String() string {
	if d.UntilRevoked {
		return UntilRevokedText
	}
	if d.D%time.Hour == 0 {
		return fmt.Sprintf("%dh", d.D/time.Hour)
	}
	return strings.TrimSuffix(d.D.String(), "0s")
}

// Words is the duration as a customer reads it: "24 hours", "7 days", "until you revoke it".
func (d Duration) Words() string {
	if d.UntilRevoked {
		return "until you revoke it"
	}
	return durationWords(d.D)
}

// AtMost reports whether d is no longer than max; "until revoked" is longer than any time.
// It is the customer's "may shorten, never lengthen" rule.
func (d Duration) AtMost(max Duration) bool {
	if max.UntilRevoked {
		return true
	}
	return !d.UntilRevoked && d.D <= max.D
}

// MarshalText writes String, so JSON and forms carry the same text.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// UnmarshalText reads what ParseDuration reads.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := ParseDuration(string(b))
	if err != nil {
		return err
	}
	*d = v
	return nil
}

// RequestInput is what an agent submits to ask for access.
type RequestInput struct {
	TicketKey    string
	Reason       string
	Streams      []string
	From, To     time.Time
	PersonalData bool
	Duration     string
}

// AccessRequest is an agent's question to the customer and, once answered, its outcome.
type AccessRequest struct {
	ID           string    `json:"id"`
	Tenant       string    `json:"tenant"`
	TicketKey    string    `json:"ticketKey"`
	Reason       string    `json:"reason"`
	Streams      []string  `json:"streams"`
	From         time.Time `json:"from"`
	To           time.Time `json:"to"`
	PersonalData bool      `json:"personalData"`
	Duration     Duration  `json:"duration"`
	Agent        Actor     `json:"agent"`
	Status       string    `json:"status"`
	CreatedAt    time.Time `json:"createdAt"`
	// ExpiresAt is the end of the claim window: after it nobody can approve.
	ExpiresAt time.Time `json:"expiresAt"`
	DecidedAt time.Time `json:"decidedAt,omitzero"`
	// DecidedBy is who approved, denied or cancelled; zero while pending.
	DecidedBy    Actor  `json:"decidedBy,omitzero"`
	GrantID      string `json:"grantId,omitempty"`
	DenyReason   string `json:"denyReason,omitempty"`
	CancelReason string `json:"cancelReason,omitempty"`
	// Reconfirms is set on the request the scheduler opens to re-confirm a standing grant:
	// approving it renews that grant instead of creating a new one.
	Reconfirms string `json:"reconfirms,omitempty"`
}

// Grant is an approved request: the agent may read the named streams, inside the named
// window, from Start until End.
type Grant struct {
	ID           string    `json:"id"`
	RequestID    string    `json:"requestId"`
	Tenant       string    `json:"tenant"`
	TicketKey    string    `json:"ticketKey"`
	Streams      []string  `json:"streams"`
	From         time.Time `json:"from"`
	To           time.Time `json:"to"`
	PersonalData bool      `json:"personalData"`
	Agent        Actor     `json:"agent"`
	Start        time.Time `json:"start"`
	// End is zero for standing grants (UntilRevoked); those lapse at ReconfirmBy instead.
	End          time.Time `json:"end,omitzero"`
	UntilRevoked bool      `json:"untilRevoked"`
	ReconfirmBy  time.Time `json:"reconfirmBy,omitzero"`
	Status       string    `json:"status"`
	EndedAt      time.Time `json:"endedAt,omitzero"`
	EndReason    string    `json:"endReason,omitempty"`
	EndedBy      Actor     `json:"endedBy,omitzero"`
	// ApprovedBy is the site administrator who approved (or last re-confirmed) the grant.
	ApprovedBy Actor `json:"approvedBy,omitzero"`
}

// Access is one read of logs under a grant, as the customer sees it.
type Access struct {
	Time   time.Time `json:"time"`
	Agent  Actor     `json:"agent"`
	Stream string    `json:"stream"`
	From   time.Time `json:"from"`
	To     time.Time `json:"to"`
	Bytes  int64     `json:"bytes"`
	Lines  int64     `json:"lines"`
	// SHA256 is the hex SHA-256 of the bytes sent, so the agent's copy can be matched to
	// this receipt.
	SHA256 string `json:"sha256,omitempty"`
	// Redactions counts what was scrubbed or pseudonymised, by kind.
	Redactions map[string]int `json:"redactions,omitempty"`
	// End says how the read ended: complete, revoked, expired, budget, client_gone, error.
	End string `json:"end,omitempty"`
}

// View is what the site's admin page shows for one request.
type View struct {
	Request AccessRequest
	// Grant is the grant the request produced (or re-confirms), nil before approval.
	Grant    *Grant
	Accesses []Access
	// TimeLeft is what remains of an active grant, or, while the request is pending, of the
	// time to decide; zero otherwise. For a standing grant it runs to ReconfirmBy.
	TimeLeft time.Duration
	// MaxDuration is the longest duration the customer may approve (the requested one).
	MaxDuration Duration
	// Preview is what the request would expose, computed for the customer; nil when no
	// previewer is wired or the request is no longer pending.
	Preview *Preview
	// Audit is the chain's entries about this request and its grant.
	Audit []audit.Entry
}

// Errors. The HTTP layer maps them to statuses; none carries internal detail.
var (
	ErrNotFound       = errors.New("not found")
	ErrGone           = errors.New("request expired or withdrawn")
	ErrAlreadyDecided = errors.New("request already decided")
	ErrForbidden      = errors.New("not allowed for this agent")
	ErrNoActiveGrant  = errors.New("no active grant")
	ErrOutOfScope     = errors.New("outside the grant's scope")
	ErrTicketUnknown  = errors.New("ticket unknown")
	// ErrTicketDeleted is what Tickets returns for a ticket JSM no longer has: nothing can
	// be posted on it, and nothing it justified may go on.
	ErrTicketDeleted = errors.New("ticket deleted")
	ErrStreamUnknown = errors.New("log stream unknown")
	// ErrNotSiteAdmin means the person's site does not grant them ADMINISTER right now.
	ErrNotSiteAdmin = errors.New("not an administrator of this site")
	// ErrSiteUnavailable means the customer's site could not be asked; nothing changed.
	ErrSiteUnavailable = errors.New("customer site unavailable")
	// ErrTenantInactive means the app is uninstalled or disabled on the customer's site.
	ErrTenantInactive = errors.New("app uninstalled or disabled on this site")
	// ErrConflict is what a Store returns when a record changed since it was read; the
	// service re-reads and decides again.
	ErrConflict = errors.New("consent record changed concurrently")
)

// NoGrantError is ErrNoActiveGrant with the reason the grant ended (a Reason* constant), so
// the agent learns whether it expired, was revoked or the ticket closed.
type NoGrantError struct{ Reason string }

func (e *NoGrantError) Error() string { return ErrNoActiveGrant.Error() + ": " + e.Reason }

// Is makes a NoGrantError match ErrNoActiveGrant.
func (e *NoGrantError) Is(target error) bool { return target == ErrNoActiveGrant }

// FieldError is one invalid field. Path is a JSON pointer into the request ("/streams/1").
type FieldError struct {
	Path    string `json:"path"`
	Message string `json:"message"`
	// Err is a sentinel (such as ErrStreamUnknown) for callers that branch on the kind.
	Err error `json:"-"`
}

// ValidationError lists every invalid field at once, so a form can show them all.
type ValidationError struct {
	Fields []FieldError
}

// Error lists the fields in one line, for logs; forms use Fields.
func (e *ValidationError) Error() string {
	parts := make([]string, len(e.Fields))
	for i, f := range e.Fields {
		parts[i] = f.Path + ": " + f.Message
	}
	return "invalid input: " + strings.Join(parts, "; ")
}

// Unwrap exposes the sentinels of the fields, so errors.Is(err, ErrStreamUnknown) works.
func (e *ValidationError) Unwrap() []error {
	var out []error
	for _, f := range e.Fields {
		if f.Err != nil {
			out = append(out, f.Err)
		}
	}
	return out
}

func (e *ValidationError) add(path, msg string, err error) {
	e.Fields = append(e.Fields, FieldError{Path: path, Message: msg, Err: err})
}

func (e *ValidationError) orNil() error {
	if e == nil || len(e.Fields) == 0 {
		return nil
	}
	return e
}

// durationWords writes d for a customer: "90 minutes", "24 hours", "7 days".
func durationWords(d time.Duration) string {
	plural := func(n int64, unit string) string {
		if n == 1 {
			return "1 " + unit
		}
		return fmt.Sprintf("%d %ss", n, unit)
	}
	switch {
	case d%(24*time.Hour) == 0 && d > 24*time.Hour:
		return plural(int64(d/(24*time.Hour)), "day")
	case d%time.Hour == 0:
		return plural(int64(d/time.Hour), "hour")
	default:
		return plural(int64(d/time.Minute), "minute")
	}
}

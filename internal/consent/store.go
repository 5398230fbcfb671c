package consent

import (
	"context"
	"time"

	"github.com/supportbridge/supportbridge/internal/audit"
)

// RequestRecord is a request as stored, with the bookkeeping the service needs to change it
// safely.
type RequestRecord struct {
	Request AccessRequest `json:"request"`
	// Version counts writes. Store.Save writes a record only if the stored Version still
	// equals the one the caller read, which is what makes each decision happen once.
	Version int64 `json:"version"`
	// Notice names the event whose ticket comment and audit entry are not yet known to be
	// delivered; the scheduler retries it. Empty when nothing is owed. The two flags record
	// which half is done, so a retry never repeats a comment or an audit entry that landed.
	Notice          string `json:"notice,omitempty"`
	NoticeAudited   bool   `json:"noticeAudited,omitempty"`
	NoticeCommented bool   `json:"noticeCommented,omitempty"`
}

// GrantRecord is a grant as stored; see RequestRecord.
type GrantRecord struct {
	Grant           Grant  `json:"grant"`
	Version         int64  `json:"version"`
	Notice          string `json:"notice,omitempty"`
	NoticeAudited   bool   `json:"noticeAudited,omitempty"`
	NoticeCommented bool   `json:"noticeCommented,omitempty"`
	// Reconfirm is the pending re-confirmation request of a standing grant, if one is open.
	Reconfirm string `json:"reconfirm,omitempty"`
}

// Change is one atomic write of a tenant's request and/or grant. A record with Version 0 is
// created and must not exist yet; otherwise its stored Version must equal Version. Stores
// write Version+1 and set it on the records passed in. Either everything is written or Save
// returns ErrConflict. An active grant also gets a live copy that expires at its end; any
// other grant status deletes the live copy.
type Change struct {
	Tenant  string
	Request *RequestRecord
	Grant   *GrantRecord
	// RequestDue and GrantDue are when the scheduler must look at the record next; zero
	// takes it off the schedule. They are ignored for a nil record.
	RequestDue, GrantDue time.Time
}

// Due kinds.
const (
	DueRequest = "request"
	DueGrant   = "grant"
)

// DueItem is a record the scheduler must look at.
type DueItem struct {
	Kind string
	ID   string
	At   time.Time
}

// Store keeps requests, grants and reads. *redisstore.Consent implements it. Records are
// found by id alone; the store keeps whatever index it needs to know the tenant. Missing
// records are ErrNotFound; outages wrap the store's own unavailable error.
type Store interface {
	// CreateRequest stores a new request (rec.Version 0) as Version 1.
	CreateRequest(ctx context.Context, rec RequestRecord, due time.Time) error
	Request(ctx context.Context, id string) (RequestRecord, error)
	// TenantRequests and TenantGrants page through a tenant's records, newest first; cursor
	// "" starts at the newest, and the returned cursor is "" after the last page.
	TenantRequests(ctx context.Context, tenant, cursor string, limit int) ([]RequestRecord, string, error)
	TenantGrants(ctx context.Context, tenant, cursor string, limit int) ([]GrantRecord, string, error)
	// MigrateLegacy brings records of earlier versions up to date (indexes the tenant lists
	// need) and makes consent links of the old flow useless, returning the ids of requests
	// that were made under it and are still pending. It is idempotent.
	MigrateLegacy(ctx context.Context) ([]string, error)
	// Grant returns the grant's durable history record, which outlives the grant.
	Grant(ctx context.Context, id string) (GrantRecord, error)
	// LiveGrant returns the grant only while it is active: the live copy is deleted when the
	// grant ends and expires by itself at the grant's end, a second line of defence behind
	// the clock check in Authorize.
	LiveGrant(ctx context.Context, id string) (Grant, error)
	// TicketTenant is the tenant of a ticket that has consent records; ErrNotFound otherwise.
	TicketTenant(ctx context.Context, ticket string) (string, error)
	TicketRequests(ctx context.Context, tenant, ticket string) ([]RequestRecord, error)
	TicketGrants(ctx context.Context, tenant, ticket string) ([]GrantRecord, error)
	// TenantTickets lists the tickets of a tenant that have consent records.
	TenantTickets(ctx context.Context, tenant string) ([]string, error)
	// Save applies c atomically or returns ErrConflict.
	Save(ctx context.Context, c Change) error
	AddAccess(ctx context.Context, tenant, grantID string, a Access) error
	Accesses(ctx context.Context, tenant, grantID string) ([]Access, error)
	// Tenants lists the tenants that have consent records, for the scheduler.
	Tenants(ctx context.Context) ([]string, error)
	// Due lists up to limit scheduled records of a tenant due at or before until.
	Due(ctx context.Context, tenant string, until time.Time, limit int) ([]DueItem, error)
	// AcquireLease takes or renews a named lease for holder; false when another holds it.
	AcquireLease(ctx context.Context, name, holder string, ttl time.Duration) (bool, error)
	ReleaseLease(ctx context.Context, name, holder string) error
}

// Tickets is what consent needs from JSM.
type Tickets interface {
	// Comments returns the bodies of the ticket's comments, oldest first; the evidence pack
	// checks the audit heads we posted there, since the ticket is a witness we do not control.
	Comments(ctx context.Context, key string) ([]string, error)
	// TicketTenant returns the tenant whose report created the ticket. It returns an error
	// wrapping ErrTicketUnknown when the ticket does not exist or came from no known tenant.
	TicketTenant(ctx context.Context, key string) (tenant string, err error)
	// AddComment posts a comment; public comments reach the customer (JSM emails them).
	AddComment(ctx context.Context, key, body string, public bool) error
	// TicketDone reports whether the ticket is resolved or closed.
	TicketDone(ctx context.Context, key string) (bool, error)
}

// Streams lists a tenant's log streams (the log store's folders).
type Streams interface {
	Streams(ctx context.Context, tenant string) ([]string, error)
}

// Auditor is the audit chain; *audit.Log implements it.
type Auditor interface {
	Append(ctx context.Context, e audit.Entry) (audit.Entry, error)
	List(ctx context.Context, tenant string, f audit.Filter) ([]audit.Entry, error)
	Verify(ctx context.Context, tenant string) (audit.VerifyResult, error)
	Head(ctx context.Context, tenant string) (audit.Head, error)
}

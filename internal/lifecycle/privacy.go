package lifecycle

import (
	"context"
	"fmt"
	"time"
)

// PrivacyStore finds and removes what the service holds about one person.
// *redisstore.Privacy implements it.
type PrivacyStore interface {
	// EraseCustomerEmail removes the cached email → accountId mappings of email, in every
	// tenant, and says how many went.
	EraseCustomerEmail(ctx context.Context, email string) (int64, error)
	// EraseCustomerAccount removes every cached mapping to accountID.
	EraseCustomerAccount(ctx context.Context, accountID string) (int64, error)
	// Tenants lists the installed tenants' keys.
	Tenants(ctx context.Context) ([]string, error)
	// RemoveTrackingIDs removes the ids from the tenant's error groups, and the groups only
	// those ids hit; it answers how many ids and groups went.
	RemoveTrackingIDs(ctx context.Context, tenant string, ids []string) (idsRemoved, groupsRemoved int64, err error)
}

// TrackingIDFunc is errortrack.Service.TrackingID: the anonymous id of an account in a tenant
// on a day.
type TrackingIDFunc func(tenant, accountID string, t time.Time) string

// Eraser answers erasure requests (GDPR art. 17) for one person.
type Eraser struct {
	store      PrivacyStore
	trackingID TrackingIDFunc
	window     time.Duration
	now        func() time.Time
}

// NewEraser returns an Eraser. window is how far back tracking ids can still be held (the
// error groups' retention); trackingID may be nil when error tracking is off.
func NewEraser(store PrivacyStore, trackingID TrackingIDFunc, window time.Duration, now func() time.Time) *Eraser {
	if now == nil {
		now = time.Now
	}
	if window <= 0 {
		window = 14 * 24 * time.Hour
	}
	return &Eraser{store: store, trackingID: trackingID, window: window, now: now}
}

// Erasure says what an erasure found and removed.
type Erasure struct {
	CustomerMappingsRemoved int64 `json:"customerMappingsRemoved"`
	TrackingIDsRemoved      int64 `json:"trackingIdsRemoved"`
	ErrorGroupsRemoved      int64 `json:"errorGroupsRemoved"`
	TenantsSearched         int   `json:"tenantsSearched"`
	// NotCovered names what this erasure does not reach, so the admin can act there.
	NotCovered []string `json:"notCovered"`
}

// Erase removes what is held about the person with accountID and/or email. At least one
// must be set; the caller validates.
func (e *Eraser) Erase(ctx context.Context, accountID, email string) (Erasure, error) {
	var out Erasure
	if email != "" {
		n, err := e.store.EraseCustomerEmail(ctx, email)
		if err != nil {
			return out, fmt.Errorf("erase by email: %w", err)
		}
		out.CustomerMappingsRemoved += n
	}
	if accountID != "" {
		n, err := e.store.EraseCustomerAccount(ctx, accountID)
		if err != nil {
			return out, fmt.Errorf("erase by account: %w", err)
		}
		out.CustomerMappingsRemoved += n
		if e.trackingID != nil {
			tenants, err := e.store.Tenants(ctx)
			if err != nil {
				return out, fmt.Errorf("list tenants: %w", err)
			}
			out.TenantsSearched = len(tenants)
			now := e.now()
			for _, t := range tenants {
				// The id rotates daily: every day the groups can still remember.
				var ids []string
				for d := time.Duration(0); d <= e.window+24*time.Hour; d += 24 * time.Hour {
					ids = append(ids, e.trackingID(t, accountID, now.Add(-d)))
				}
				ni, ng, err := e.store.RemoveTrackingIDs(ctx, t, ids)
				if err != nil {
					return out, fmt.Errorf("remove tracking ids: %w", err)
				}
				out.TrackingIDsRemoved += ni
				out.ErrorGroupsRemoved += ng
			}
		}
	}
	out.NotCovered = []string{
		"Requests and comments in the vendor's JSM site raised on behalf of this person: erase them in JSM.",
		"Reports still queued or failed hold the reporter's email and accountId until delivered, or 30 days after failing.",
		"Audit entries name agents and site administrators who acted, not end users; they go with the tenant's purge.",
	}
	if email != "" && accountID == "" {
		out.NotCovered = append(out.NotCovered, "Error-tracking ids are derived from the accountId; give it to erase them.")
	}
	return out, nil
}

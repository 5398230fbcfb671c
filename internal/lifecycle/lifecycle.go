// Package lifecycle keeps the vendor's promise about a tenant's data: on uninstall the data
// is marked for deletion, when the retention period ends (or at once, on an admin's request)
// it is purged, and only a tombstone remains that says what was deleted and when.
//
// Nothing here knows Redis, S3 or HTTP: a Store (redisstore.Purge) deletes the keys, a
// LogPurger deletes the log files, and the HTTP layer calls Service.
package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"
)

// Errors of the domain; the HTTP layer maps them.
var (
	// ErrSuperseded means a newer purge of the same tenant (a higher fencing token) took
	// over; the older one stops without writing anything more.
	ErrSuperseded = errors.New("lifecycle: superseded by a newer purge")
	// ErrNotFound means the service holds nothing of the tenant and never purged it.
	ErrNotFound = errors.New("lifecycle: tenant unknown")
)

// Head is the end of a tenant's audit chain, kept in the tombstone so that the customer's
// copies of the chain (every ticket comment repeats the head) can still be checked against it.
type Head struct {
	Seq  int64  `json:"seq"`
	Hash string `json:"hash"`
}

// Tombstone is all that remains of a purged tenant: no clientKey, only its hash.
type Tombstone struct {
	TenantKeyHash string    `json:"tenantKeyHash"`
	DeletedAt     time.Time `json:"deletedAt"`
	// LastPurgedAt differs from DeletedAt when a purge ran again (harmlessly) later.
	LastPurgedAt time.Time `json:"lastPurgedAt"`
	// Counts are what every purge of the tenant deleted, by kind.
	Counts         map[string]int64 `json:"counts"`
	FinalAuditHead Head             `json:"finalAuditHead"`
	// Runs counts the purges that finished.
	Runs int64 `json:"runs"`
}

// Finished is what Store.Finish answers: the run's own counts, the tickets its reports
// created, and the tombstone after the run.
type Finished struct {
	Deleted   map[string]int64
	Tickets   []string
	Tombstone Tombstone
}

// Holdings is what the service holds of a tenant right now.
type Holdings struct {
	// Installed is nil when there is no tenant record.
	Installed *bool
	Enabled   *bool
	// Counts are keys held by kind (records, not bytes).
	Counts map[string]int64
}

// Store deletes a tenant's records. Every method that writes takes the fencing token of the
// purge; a token lower than one the tenant already saw gets ErrSuperseded. Every step is
// idempotent, so a purge that crashed is completed by running it again.
type Store interface {
	// NextFence hands out a fencing token higher than any before.
	NextFence(ctx context.Context) (int64, error)
	// PurgeRecords deletes every record of the tenant except the tombstone, counting them.
	PurgeRecords(ctx context.Context, tenant string, fence int64, now time.Time) error
	// AddCount adds to the running purge's count of kind (log files, deleted elsewhere).
	AddCount(ctx context.Context, tenant string, fence int64, kind string, n int64) error
	// Finish folds the run into the tombstone and unmarks the tenant.
	Finish(ctx context.Context, tenant string, fence int64, now time.Time) (Finished, error)
	// Tombstone reads the tombstone; ok is false when the tenant was never purged.
	Tombstone(ctx context.Context, tenant string) (t Tombstone, ok bool, err error)
	// Holdings counts what is held of the tenant.
	Holdings(ctx context.Context, tenant string) (Holdings, error)

	// Mark schedules the tenant's purge at at; Unmark cancels it.
	Mark(ctx context.Context, tenant string, at time.Time) error
	Unmark(ctx context.Context, tenant string) error
	// MarkedAt says when the tenant is due, if it is marked.
	MarkedAt(ctx context.Context, tenant string) (time.Time, bool, error)
	// Due lists up to limit marked tenants due at or before until, earliest first.
	Due(ctx context.Context, until time.Time, limit int) ([]string, error)
}

// LogPurger deletes a tenant's log files and says how many went.
type LogPurger interface {
	DeleteTenant(ctx context.Context, tenant string) (int64, error)
}

// Options configure a Service.
type Options struct {
	// Logs, when set, deletes the tenant's logs in the log store (SB_PURGE_LOGS=true).
	Logs LogPurger
	// TenantChanged tells replicas to drop cached copies of a purged tenant.
	TenantChanged func(ctx context.Context, tenant string) error
	Now           func() time.Time
	Logger        *slog.Logger
}

// Service purges tenants and answers what is held of them.
type Service struct {
	store   Store
	logs    LogPurger
	changed func(ctx context.Context, tenant string) error
	now     func() time.Time
	log     *slog.Logger
}

// New returns a Service over store.
func New(store Store, o Options) *Service {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return &Service{store: store, logs: o.Logs, changed: o.TenantChanged, now: o.Now, log: o.Logger}
}

// OutsideItem names data about the tenant that lives outside the service and that a purge
// does not delete.
type OutsideItem struct {
	What  string   `json:"what"`
	Where string   `json:"where"`
	Note  string   `json:"note"`
	Items []string `json:"items,omitempty"`
}

// Receipt answers a purge: what this run deleted, the tombstone, and what is not deleted.
type Receipt struct {
	TenantKeyHash string           `json:"tenantKeyHash"`
	PurgedAt      time.Time        `json:"purgedAt"`
	Deleted       map[string]int64 `json:"deleted"`
	LogsPurged    bool             `json:"logsPurged"`
	Tombstone     Tombstone        `json:"tombstone"`
	NotDeleted    []OutsideItem    `json:"notDeleted"`
}

// Purge deletes the tenant's data now and returns the receipt. Running it again is
// harmless: it deletes whatever appeared since and adds to the same tombstone.
func (s *Service) Purge(ctx context.Context, tenant string) (Receipt, error) {
	fence, err := s.store.NextFence(ctx)
	if err != nil {
		return Receipt{}, fmt.Errorf("take fencing token: %w", err)
	}
	return s.purge(ctx, tenant, fence)
}

func (s *Service) purge(ctx context.Context, tenant string, fence int64) (Receipt, error) {
	now := s.now().UTC()
	if err := s.store.PurgeRecords(ctx, tenant, fence, now); err != nil {
		return Receipt{}, fmt.Errorf("purge records: %w", err)
	}
	if s.changed != nil {
		// Replicas may hold the tenant (and its secret) in memory; a failed notice is not
		// fatal, since their caches expire, but it is worth a line.
		if err := s.changed(ctx, tenant); err != nil {
			s.log.WarnContext(ctx, "purge_tenant_notice_failed", "error", err)
		}
	}
	if s.logs != nil {
		n, err := s.logs.DeleteTenant(ctx, tenant)
		if err != nil {
			return Receipt{}, fmt.Errorf("purge logs: %w", err)
		}
		if err := s.store.AddCount(ctx, tenant, fence, "log_files", n); err != nil {
			return Receipt{}, fmt.Errorf("count log files: %w", err)
		}
	}
	f, err := s.store.Finish(ctx, tenant, fence, now)
	if err != nil {
		return Receipt{}, fmt.Errorf("finish purge: %w", err)
	}
	r := Receipt{
		TenantKeyHash: f.Tombstone.TenantKeyHash, PurgedAt: now, Deleted: f.Deleted,
		LogsPurged: s.logs != nil, Tombstone: f.Tombstone, NotDeleted: s.outside(f.Tickets),
	}
	s.log.InfoContext(ctx, "tenant_purged", "tenant_key_hash", r.TenantKeyHash, "deleted", len(r.Deleted), "fence", fence)
	return r, nil
}

// outside lists what the service cannot delete: the JSM requests its reports opened (the
// vendor's own support records, deleted in JSM under its own policy), and the logs when this
// deployment leaves them to the log store's own retention.
func (s *Service) outside(tickets []string) []OutsideItem {
	slices.Sort(tickets)
	out := []OutsideItem{{
		What:  "support requests",
		Where: "the vendor's Jira Service Management site",
		Note:  "Requests opened from reports, with their comments and attachments, are the vendor's support records; delete them in JSM if required.",
		Items: tickets,
	}}
	if s.logs == nil {
		out = append(out, OutsideItem{
			What:  "application logs",
			Where: "the log store",
			Note:  "This deployment does not delete log files (SB_PURGE_LOGS is off); they follow the log store's own retention.",
		})
	}
	return out
}

// Status is what GET /api/v1/tenants/{tenant} shows.
type Status struct {
	TenantKeyHash string           `json:"tenantKeyHash"`
	State         string           `json:"state"` // installed, uninstalled, purged, unknown
	Enabled       *bool            `json:"enabled,omitempty"`
	MarkedFor     *time.Time       `json:"markedForDeletionAt,omitempty"`
	Held          map[string]int64 `json:"held"`
	Tombstone     *Tombstone       `json:"tombstone,omitempty"`
}

// Describe says what is held of the tenant. ErrNotFound when nothing is held and it was
// never purged.
func (s *Service) Describe(ctx context.Context, tenant string) (Status, error) {
	h, err := s.store.Holdings(ctx, tenant)
	if err != nil {
		return Status{}, fmt.Errorf("count holdings: %w", err)
	}
	st := Status{TenantKeyHash: KeyHash(tenant), State: "unknown", Held: h.Counts, Enabled: h.Enabled}
	if st.Held == nil {
		st.Held = map[string]int64{}
	}
	if h.Installed != nil {
		st.State = "uninstalled"
		if *h.Installed {
			st.State = "installed"
		}
	}
	at, ok, err := s.store.MarkedAt(ctx, tenant)
	if err != nil {
		return Status{}, fmt.Errorf("read deletion mark: %w", err)
	}
	if ok {
		at = at.UTC()
		st.MarkedFor = &at
	}
	ts, ok, err := s.store.Tombstone(ctx, tenant)
	if err != nil {
		return Status{}, fmt.Errorf("read tombstone: %w", err)
	}
	if ok {
		st.Tombstone = &ts
		if h.Installed == nil {
			st.State = "purged"
		}
	}
	if st.State == "unknown" && len(st.Held) == 0 && st.MarkedFor == nil {
		return Status{}, ErrNotFound
	}
	return st, nil
}

// MarkForDeletion schedules the tenant's purge at at (uninstall: now + SB_RETENTION). It is
// the port the tenant service calls on uninstall.
func (s *Service) MarkForDeletion(ctx context.Context, tenantKey string, at time.Time) error {
	if err := s.store.Mark(ctx, tenantKey, at); err != nil {
		return fmt.Errorf("mark for deletion: %w", err)
	}
	return nil
}

// Unmark cancels a scheduled purge (reinstall within the retention period).
func (s *Service) Unmark(ctx context.Context, tenantKey string) error {
	if err := s.store.Unmark(ctx, tenantKey); err != nil {
		return fmt.Errorf("unmark: %w", err)
	}
	return nil
}

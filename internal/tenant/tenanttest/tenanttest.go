// Package tenanttest holds an in-memory tenant.Store for unit tests of the tenant domain. It
// keeps its indexes the way redisstore.Tenants does (an index is a hint checked against the
// record), so a use case that passes here meets the same answers from Redis.
package tenanttest

import (
	"context"
	"maps"
	"sync"

	"github.com/supportbridge/supportbridge/internal/tenant"
)

// Store is an in-memory tenant.Store. The zero value is not usable; call NewStore.
type Store struct {
	mu      sync.Mutex
	records map[string]tenant.Tenant
	cloud   map[string]string // cloud id -> clientKey
	install map[string]string // installation ARI -> clientKey
	saves   int

	// FailSave, when set, is returned by Save, which then writes nothing.
	FailSave error
}

// NewStore returns an empty store.
func NewStore() *Store {
	return &Store{records: map[string]tenant.Tenant{}, cloud: map[string]string{}, install: map[string]string{}}
}

// Get returns the tenant, installed or not, like the Redis store.
func (s *Store) Get(_ context.Context, clientKey string) (tenant.Tenant, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.records[clientKey]
	if !ok {
		return tenant.Tenant{}, tenant.ErrNotFound
	}
	return t, nil
}

// Save writes the tenant and points its indexes at it.
func (s *Store) Save(_ context.Context, t tenant.Tenant) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.FailSave != nil {
		return s.FailSave
	}
	s.saves++
	s.records[t.ClientKey] = t
	if t.CloudID != "" {
		s.cloud[t.CloudID] = t.ClientKey
	}
	for _, id := range []string{t.InstallationID, t.ForgeInstallationID} {
		if id != "" {
			s.install[id] = t.ClientKey
		}
	}
	return nil
}

// FindByCloudID follows the cloud-id index.
func (s *Store) FindByCloudID(ctx context.Context, cloudID string) (tenant.Tenant, error) {
	return s.follow(ctx, s.cloud, cloudID, func(t tenant.Tenant) bool { return t.CloudID == cloudID })
}

// FindByInstallationID follows the installation index (Connect's or Forge's ARI).
func (s *Store) FindByInstallationID(ctx context.Context, id string) (tenant.Tenant, error) {
	return s.follow(ctx, s.install, id, func(t tenant.Tenant) bool {
		return t.InstallationID == id || t.ForgeInstallationID == id
	})
}

func (s *Store) follow(ctx context.Context, idx map[string]string, id string, matches func(tenant.Tenant) bool) (tenant.Tenant, error) {
	s.mu.Lock()
	key, ok := idx[id]
	s.mu.Unlock()
	if id == "" || !ok {
		return tenant.Tenant{}, tenant.ErrNotFound
	}
	t, err := s.Get(ctx, key)
	if err != nil {
		return tenant.Tenant{}, err
	}
	if !matches(t) { // stale, as in Redis after a tenant changed its site
		return tenant.Tenant{}, tenant.ErrNotFound
	}
	return t, nil
}

// Snapshot copies every record, for checking that a refused call changed nothing.
func (s *Store) Snapshot() map[string]tenant.Tenant {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.records)
}

// Saves counts the successful writes.
func (s *Store) Saves() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.saves
}

var _ tenant.Store = (*Store)(nil)

package tenant

import (
	"context"
	"sync"
	"time"
)

// Directory caches tenants in process. Every write goes through it, and every replica evicts
// an entry when told (through Redis pub/sub) that another replica changed it; the TTL is only
// a backstop for a lost notification.
type Directory struct {
	store   Store
	ttl     time.Duration
	now     func() time.Time
	publish func(ctx context.Context, clientKey string) error

	mu      sync.RWMutex
	entries map[string]cached
	byCloud map[string]string // cloud id -> clientKey, so Forge requests also skip Redis
}

type cached struct {
	t       Tenant
	expires time.Time
}

// NewDirectory caches store. publish tells other replicas that a tenant changed; it may be nil
// for a single process.
func NewDirectory(store Store, publish func(ctx context.Context, clientKey string) error, ttl time.Duration, now func() time.Time) *Directory {
	if now == nil {
		now = time.Now
	}
	return &Directory{store: store, publish: publish, ttl: ttl, now: now, entries: map[string]cached{}, byCloud: map[string]string{}}
}

// Get returns the tenant, from memory when fresh. An uninstalled tenant is returned together
// with ErrUninstalled so callers can tell it from an unknown one.
func (d *Directory) Get(ctx context.Context, clientKey string) (Tenant, error) {
	d.mu.RLock()
	e, ok := d.entries[clientKey]
	d.mu.RUnlock()
	if !ok || d.now().After(e.expires) {
		t, err := d.store.Get(ctx, clientKey)
		if err != nil {
			return Tenant{}, err
		}
		e = cached{t: t, expires: d.now().Add(d.ttl)}
		d.mu.Lock()
		d.entries[clientKey] = e
		d.mu.Unlock()
	}
	if !e.t.Active() {
		return e.t, ErrUninstalled
	}
	return e.t, nil
}

// Save writes the tenant, evicts it here and tells the other replicas to do the same.
func (d *Directory) Save(ctx context.Context, t Tenant) error {
	if err := d.store.Save(ctx, t); err != nil {
		return err
	}
	d.Invalidate(t.ClientKey)
	if d.publish != nil {
		return d.publish(ctx, t.ClientKey)
	}
	return nil
}

// Lookup reads straight from the store, for lifecycle paths that must see the latest write.
func (d *Directory) Lookup(ctx context.Context, clientKey string) (Tenant, error) {
	return d.store.Get(ctx, clientKey)
}

// FindByCloudID finds the tenant of a site (Forge tokens name the site by cloud id), with
// the same uninstalled semantics as Get.
func (d *Directory) FindByCloudID(ctx context.Context, cloudID string) (Tenant, error) {
	d.mu.RLock()
	key, ok := d.byCloud[cloudID]
	d.mu.RUnlock()
	if !ok {
		t, err := d.store.FindByCloudID(ctx, cloudID)
		if err != nil {
			return Tenant{}, err
		}
		key = t.ClientKey
		d.mu.Lock()
		d.byCloud[cloudID] = key
		d.mu.Unlock()
	}
	return d.Get(ctx, key)
}

// FindByInstallationID finds the tenant of an installation ARI.
func (d *Directory) FindByInstallationID(ctx context.Context, id string) (Tenant, error) {
	return d.store.FindByInstallationID(ctx, id)
}

// Invalidate drops one cached tenant.
func (d *Directory) Invalidate(clientKey string) {
	d.mu.Lock()
	delete(d.entries, clientKey)
	for cloud, key := range d.byCloud {
		if key == clientKey {
			delete(d.byCloud, cloud)
		}
	}
	d.mu.Unlock()
}

// InvalidateAll drops every cached tenant, for when change notifications may have been missed.
func (d *Directory) InvalidateAll() {
	d.mu.Lock()
	clear(d.entries)
	clear(d.byCloud)
	d.mu.Unlock()
}

// Fresh is the directory as a Store for use cases that decide on what they read (the
// lifecycle in Service): reads skip the cache and go to the store, and writes go through
// Save, so that every replica evicts its copy.
func (d *Directory) Fresh() Store { return freshStore{d} }

type freshStore struct{ d *Directory }

func (f freshStore) Get(ctx context.Context, clientKey string) (Tenant, error) {
	return f.d.store.Get(ctx, clientKey)
}

func (f freshStore) Save(ctx context.Context, t Tenant) error { return f.d.Save(ctx, t) }

func (f freshStore) FindByCloudID(ctx context.Context, cloudID string) (Tenant, error) {
	return f.d.store.FindByCloudID(ctx, cloudID)
}

func (f freshStore) FindByInstallationID(ctx context.Context, id string) (Tenant, error) {
	return f.d.store.FindByInstallationID(ctx, id)
}

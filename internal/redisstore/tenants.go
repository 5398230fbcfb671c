package redisstore

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"

	"github.com/redis/go-redis/v9"

	"github.com/supportbridge/supportbridge/internal/seal"
	"github.com/supportbridge/supportbridge/internal/secret"
	"github.com/supportbridge/supportbridge/internal/tenant"
)

// Tenants stores installations as JSON with the shared secret sealed (AES-GCM, bound to the
// clientKey). It implements tenant.Store.
type Tenants struct {
	rdb    redis.UniversalClient
	sealer *seal.Sealer
}

// NewTenants returns a tenant store.
func NewTenants(rdb redis.UniversalClient, sealer *seal.Sealer) *Tenants {
	return &Tenants{rdb: rdb, sealer: sealer}
}

// storedTenant is the at-rest form: the domain fields plus the sealed secret.
type storedTenant struct {
	tenant.Tenant
	SealedSecret string `json:"sealedSecret,omitempty"`
}

// Get loads one tenant.
func (s *Tenants) Get(ctx context.Context, clientKey string) (tenant.Tenant, error) {
	b, err := s.rdb.Get(ctx, tenantKey(clientKey)).Bytes()
	if errors.Is(err, redis.Nil) {
		return tenant.Tenant{}, tenant.ErrNotFound
	}
	if err != nil {
		return tenant.Tenant{}, fmt.Errorf("get tenant: %w: %w", ErrUnavailable, err)
	}
	var st storedTenant
	if err := json.Unmarshal(b, &st); err != nil {
		return tenant.Tenant{}, fmt.Errorf("decode tenant: %w", err)
	}
	if st.SealedSecret != "" {
		raw, err := base64.StdEncoding.DecodeString(st.SealedSecret)
		if err != nil {
			return tenant.Tenant{}, fmt.Errorf("decode sealed secret: %w", err)
		}
		pt, err := s.sealer.Open(st.ClientKey, raw)
		if err != nil {
			return tenant.Tenant{}, fmt.Errorf("open shared secret: %w", err)
		}
		st.Tenant.SharedSecret = secret.New(string(pt))
	}
	return st.Tenant, nil
}

// Save writes the tenant and its lookup indexes in one transaction.
func (s *Tenants) Save(ctx context.Context, t tenant.Tenant) error {
	st := storedTenant{Tenant: t}
	if !t.SharedSecret.IsZero() {
		st.SealedSecret = base64.StdEncoding.EncodeToString(s.sealer.Seal(t.ClientKey, t.SharedSecret.Bytes()))
	}
	b, err := json.Marshal(st)
	if err != nil {
		return fmt.Errorf("encode tenant: %w", err)
	}
	// The indexes live in other slots, so this is a pipeline, not a cross-slot MULTI; an index
	// that points at a tenant is only a hint and is always checked against the record.
	_, err = s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.Set(ctx, tenantKey(t.ClientKey), b, 0)
		if t.CloudID != "" {
			p.Set(ctx, cloudIndexKey(t.CloudID), t.ClientKey, 0)
		}
		if t.InstallationID != "" {
			p.Set(ctx, installationIndexKey(t.InstallationID), t.ClientKey, 0)
		}
		if t.ForgeInstallationID != "" && t.ForgeInstallationID != t.InstallationID {
			p.Set(ctx, installationIndexKey(t.ForgeInstallationID), t.ClientKey, 0)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("save tenant: %w: %w", ErrUnavailable, err)
	}
	return nil
}

// FindByCloudID follows the cloud-id index.
func (s *Tenants) FindByCloudID(ctx context.Context, cloudID string) (tenant.Tenant, error) {
	return s.follow(ctx, cloudIndexKey(cloudID), func(t tenant.Tenant) bool { return t.CloudID == cloudID })
}

// FindByInstallationID follows the installation index (Connect's or Forge's installation ARI).
func (s *Tenants) FindByInstallationID(ctx context.Context, id string) (tenant.Tenant, error) {
	return s.follow(ctx, installationIndexKey(id), func(t tenant.Tenant) bool {
		return t.InstallationID == id || t.ForgeInstallationID == id
	})
}

func (s *Tenants) follow(ctx context.Context, idx string, matches func(tenant.Tenant) bool) (tenant.Tenant, error) {
	if idx == "" {
		return tenant.Tenant{}, tenant.ErrNotFound
	}
	key, err := s.rdb.Get(ctx, idx).Result()
	if errors.Is(err, redis.Nil) {
		return tenant.Tenant{}, tenant.ErrNotFound
	}
	if err != nil {
		return tenant.Tenant{}, fmt.Errorf("read index: %w: %w", ErrUnavailable, err)
	}
	t, err := s.Get(ctx, key)
	if err != nil {
		return tenant.Tenant{}, err
	}
	if !matches(t) { // a stale index after the tenant changed its site
		return tenant.Tenant{}, tenant.ErrNotFound
	}
	return t, nil
}

// Delete removes a tenant record and its indexes (purge on request or after retention).
func (s *Tenants) Delete(ctx context.Context, t tenant.Tenant) error {
	keys := []string{tenantKey(t.ClientKey)}
	for _, k := range []string{t.CloudID, t.InstallationID, t.ForgeInstallationID} {
		if k != "" {
			keys = append(keys, cloudIndexKey(k), installationIndexKey(k))
		}
	}
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, k := range keys {
			p.Del(ctx, k)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("delete tenant: %w: %w", ErrUnavailable, err)
	}
	return nil
}

// PublishTenantChanged tells every replica to drop its cached copy of the tenant.
func PublishTenantChanged(rdb redis.UniversalClient) func(ctx context.Context, clientKey string) error {
	return func(ctx context.Context, clientKey string) error {
		if err := rdb.Publish(ctx, TenantChangedChannel, clientKey).Err(); err != nil {
			return fmt.Errorf("publish tenant change: %w: %w", ErrUnavailable, err)
		}
		return nil
	}
}

// WatchTenantChanges calls evict for every tenant another replica changed, and evictAll
// whenever the subscription (re)connects, because notifications sent while it was down are
// lost. It returns when ctx ends. ready, if not nil, is closed once the first subscription
// is confirmed.
func WatchTenantChanges(ctx context.Context, rdb redis.UniversalClient, log *slog.Logger, evict func(string), evictAll func(), ready chan<- struct{}) {
	ps := rdb.Subscribe(ctx, TenantChangedChannel)
	defer ps.Close()
	// Receive blocks in a socket read that does not watch ctx; closing the subscription is
	// what ends it.
	stop := context.AfterFunc(ctx, func() { ps.Close() })
	defer stop()
	first := true
	for {
		msg, err := ps.Receive(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			log.Warn("tenant_change_subscription_lost", "error", err)
			evictAll()
			select {
			case <-ctx.Done():
				return
			case <-timeAfter():
			}
			continue
		}
		switch m := msg.(type) {
		case *redis.Subscription:
			evictAll()
			if first && ready != nil {
				close(ready)
			}
			first = false
		case *redis.Message:
			evict(m.Payload)
		}
	}
}

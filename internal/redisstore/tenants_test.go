package redisstore

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/supportbridge/supportbridge/internal/redisstore/redistest"
	"github.com/supportbridge/supportbridge/internal/seal"
	"github.com/supportbridge/supportbridge/internal/secret"
	"github.com/supportbridge/supportbridge/internal/tenant"
)

func newSealer(t *testing.T) *seal.Sealer {
	t.Helper()
	s, err := seal.New(bytes.Repeat([]byte{3}, 32))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestTenantsRoundTripSealsSecret(t *testing.T) {
	ctx := context.Background()
	rdb := redistest.Client(t)
	store := NewTenants(rdb, newSealer(t))
	const canary = "shared-secret-canary-91c2"
	in := tenant.Tenant{
		ClientKey: "ck-1", Key: "app", BaseURL: "https://a.atlassian.net", CloudID: "cloud-1",
		InstallationID: "ari:cloud:ecosystem::installation/1", SharedSecret: secret.New(canary),
		Installed: true, InstalledAt: time.Unix(100, 0).UTC(), UpdatedAt: time.Unix(100, 0).UTC(),
	}
	if err := store.Save(ctx, in); err != nil {
		t.Fatal(err)
	}
	keys, _ := rdb.Keys(ctx, "*").Result()
	for _, k := range keys {
		v, _ := rdb.Get(ctx, k).Result()
		if strings.Contains(v, canary) {
			t.Errorf("key %s holds the shared secret in plain text", k)
		}
	}
	got, err := store.Get(ctx, "ck-1")
	if err != nil {
		t.Fatal(err)
	}
	if got.SharedSecret.Reveal() != canary {
		t.Errorf("secret did not round-trip")
	}
	if diff := cmp.Diff(in, got, cmp.Comparer(func(a, b secret.Secret) bool { return a.Equal(b) })); diff != "" {
		t.Errorf("tenant round trip (-want +got):\n%s", diff)
	}
	for name, find := range map[string]func() (tenant.Tenant, error){
		"cloud":        func() (tenant.Tenant, error) { return store.FindByCloudID(ctx, "cloud-1") },
		"installation": func() (tenant.Tenant, error) { return store.FindByInstallationID(ctx, in.InstallationID) },
	} {
		if got, err := find(); err != nil || got.ClientKey != "ck-1" {
			t.Errorf("find by %s = %q, %v", name, got.ClientKey, err)
		}
	}
	if _, err := store.Get(ctx, "nope"); !errors.Is(err, tenant.ErrNotFound) {
		t.Errorf("Get unknown: err = %v, want ErrNotFound", err)
	}
	if err := store.Delete(ctx, got); err != nil {
		t.Fatal(err)
	}
	if _, err := store.FindByCloudID(ctx, "cloud-1"); !errors.Is(err, tenant.ErrNotFound) {
		t.Errorf("after delete: err = %v, want ErrNotFound", err)
	}
}

func TestTenantKeysShareOneHashTag(t *testing.T) {
	for _, ck := range []string{"a", "with{brace}", "x}y{z"} {
		k := tenantKey(ck)
		open, close := strings.Index(k, "{"), strings.Index(k, "}")
		if open < 0 || close < open || strings.Count(k, "{") != 1 {
			t.Errorf("tenantKey(%q) = %q: want exactly one hash tag", ck, k)
		}
	}
}

func TestDirectoryInvalidatedAcrossReplicas(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	rdb := redistest.Client(t)
	sealer := newSealer(t)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	// Two replicas: each has its own directory and subscription.
	var dirs [2]*tenant.Directory
	for i := range dirs {
		dirs[i] = tenant.NewDirectory(NewTenants(rdb, sealer), PublishTenantChanged(rdb), time.Hour, nil)
		ready := make(chan struct{})
		evicted := dirs[i]
		go WatchTenantChanges(ctx, rdb, log, evicted.Invalidate, evicted.InvalidateAll, ready)
		<-ready
	}
	tn := tenant.Tenant{ClientKey: "ck", Installed: true, SharedSecret: secret.New("s1")}
	if err := dirs[0].Save(ctx, tn); err != nil {
		t.Fatal(err)
	}
	if _, err := dirs[1].Get(ctx, "ck"); err != nil { // warm replica 1's cache
		t.Fatal(err)
	}
	tn.Installed = false
	if err := dirs[0].Save(ctx, tn); err != nil {
		t.Fatal(err)
	}
	// Replica 1 must learn of the uninstall through pub/sub; poll until it does.
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, err := dirs[1].Get(ctx, "ck")
		if errors.Is(err, tenant.ErrUninstalled) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("replica 1 still accepts the uninstalled tenant: err = %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

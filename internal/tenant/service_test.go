package tenant_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/supportbridge/supportbridge/internal/secret"
	"github.com/supportbridge/supportbridge/internal/tenant"
	"github.com/supportbridge/supportbridge/internal/tenant/tenanttest"
)

const (
	appKey    = "supportbridge-test"
	secretA   = "tenant-a-shared-secret-0123456789"
	secretB   = "tenant-a-rotated-secret-987654321"
	retention = 30 * 24 * time.Hour

	cloudA   = "a1b2c3d4-0000-4000-8000-00000000000a"
	cloudB   = "a1b2c3d4-0000-4000-8000-00000000000b"
	instUUID = "11111111-2222-4333-8444-555555555555"
	instARI  = "ari:cloud:ecosystem::installation/" + instUUID
	appUUID  = "99999999-8888-4777-8666-555555555555"
	appARI   = "ari:cloud:ecosystem::app/" + appUUID
)

// secrets compare by value; cmp cannot see into the type, by design.
var cmpSecret = cmp.Comparer(func(a, b secret.Secret) bool { return a.Equal(b) })

// consentRecorder is the consent service as the tenant domain sees it.
type consentRecorder struct {
	ended []string
	fail  error
}

func (c *consentRecorder) TenantUninstalled(_ context.Context, tenantKey string) error {
	if c.fail != nil {
		return c.fail
	}
	c.ended = append(c.ended, tenantKey)
	return nil
}

// retentionRecorder stands in for the data-retention service another package implements.
type retentionRecorder struct {
	marked   map[string]time.Time
	unmarked []string
	fail     error
}

func (r *retentionRecorder) MarkForDeletion(_ context.Context, tenantKey string, at time.Time) error {
	if r.fail != nil {
		return r.fail
	}
	r.marked[tenantKey] = at
	return nil
}

func (r *retentionRecorder) Unmark(_ context.Context, tenantKey string) error {
	if r.fail != nil {
		return r.fail
	}
	delete(r.marked, tenantKey)
	r.unmarked = append(r.unmarked, tenantKey)
	return nil
}

type fixture struct {
	svc       *tenant.Service
	store     *tenanttest.Store
	consent   *consentRecorder
	retention *retentionRecorder
	now       time.Time
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{
		store: tenanttest.NewStore(), consent: &consentRecorder{},
		retention: &retentionRecorder{marked: map[string]time.Time{}},
		now:       time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC),
	}
	f.svc = tenant.NewService(tenant.ServiceOptions{
		Store: f.store, Consent: f.consent, Retention: f.retention, RetentionPeriod: retention,
		AppKey: appKey, AllowedHosts: []string{".atlassian.net", ".jira.com"}, Now: func() time.Time { return f.now },
	})
	return f
}

func (f *fixture) tick(d time.Duration) { f.now = f.now.Add(d) }

func (f *fixture) get(t *testing.T, clientKey string) tenant.Tenant {
	t.Helper()
	tn, err := f.store.Get(context.Background(), clientKey)
	if err != nil {
		t.Fatalf("get %s: %v", clientKey, err)
	}
	return tn
}

// unchanged fails unless the store holds exactly before.
func (f *fixture) unchanged(t *testing.T, before map[string]tenant.Tenant) {
	t.Helper()
	if diff := cmp.Diff(before, f.store.Snapshot(), cmpSecret); diff != "" {
		t.Errorf("a refused call changed the store (-before +after):\n%s", diff)
	}
}

func install(clientKey, sharedSecret string) tenant.Install {
	return tenant.Install{
		Issuer: clientKey, ClientKey: clientKey, Key: appKey, BaseURL: "https://acme.atlassian.net",
		DisplayURL: "https://acme.atlassian.net", ProductType: "jira", Description: "Acme Jira",
		ServiceEntitlementNumber: "SEN-1", EntitlementID: "ent-1", EntitlementNumber: "E-1", OAuthClientID: "oauth-1",
		InstallationID: "ari:cloud:ecosystem::installation/inst-" + clientKey, CloudID: cloudA,
		SharedSecret: secret.New(sharedSecret),
	}
}

func mustInstall(t *testing.T, f *fixture, in tenant.Install) {
	t.Helper()
	if err := f.svc.Install(context.Background(), in); err != nil {
		t.Fatalf("install %s: %v", in.ClientKey, err)
	}
}

func TestInstallNewTenant(t *testing.T) {
	f := newFixture(t)
	mustInstall(t, f, install("client-a", secretA))
	want := tenant.Tenant{
		ClientKey: "client-a", Key: appKey, BaseURL: "https://acme.atlassian.net", DisplayURL: "https://acme.atlassian.net",
		ProductType: "jira", Description: "Acme Jira", ServiceEntitlementNumber: "SEN-1", EntitlementID: "ent-1",
		EntitlementNumber: "E-1", OAuthClientID: "oauth-1", InstallationID: "ari:cloud:ecosystem::installation/inst-client-a",
		CloudID: cloudA, SharedSecret: secret.New(secretA), Enabled: true, Installed: true, InstalledAt: f.now, UpdatedAt: f.now,
	}
	if diff := cmp.Diff(want, f.get(t, "client-a"), cmpSecret); diff != "" {
		t.Errorf("installed tenant (-want +got):\n%s", diff)
	}
}

func TestReinstallWithTheSameSecret(t *testing.T) {
	f := newFixture(t)
	mustInstall(t, f, install("client-a", secretA))
	installedAt := f.now
	f.tick(time.Hour)
	again := install("client-a", secretA)
	again.CloudID = "" // an older payload without cloudId keeps the recorded site
	again.Description = "Acme Jira (renamed)"
	mustInstall(t, f, again)
	got := f.get(t, "client-a")
	if !got.InstalledAt.Equal(installedAt) || !got.UpdatedAt.Equal(f.now) {
		t.Errorf("installedAt %v, updatedAt %v: want the first install time and now", got.InstalledAt, got.UpdatedAt)
	}
	if got.CloudID != cloudA || got.Description != "Acme Jira (renamed)" || got.SharedSecret.Reveal() != secretA || !got.Active() {
		t.Errorf("reinstalled tenant = %+v", got)
	}
}

// TestSharedSecretRotation pins the rules: every signed install sets the secret it carries
// (that is how Atlassian rotates it); enable, disable, uninstall and Forge never touch it.
func TestSharedSecretRotation(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	mustInstall(t, f, install("client-a", secretA))
	mustInstall(t, f, install("client-a", secretB))
	if got := f.get(t, "client-a").SharedSecret.Reveal(); got != secretB {
		t.Fatalf("secret after reinstall = %q, want the new one", got)
	}
	for _, on := range []bool{false, true} {
		if err := f.svc.SetEnabled(ctx, "client-a", on); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.svc.LinkForge(ctx, forgeInst(cloudA), forgeEvent(cloudA)); err != nil {
		t.Fatal(err)
	}
	if err := f.svc.Uninstall(ctx, "client-a", "client-a"); err != nil {
		t.Fatal(err)
	}
	if got := f.get(t, "client-a").SharedSecret.Reveal(); got != secretB {
		t.Errorf("secret after enable, disable, link and uninstall = %q, want it unchanged", got)
	}
	mustInstall(t, f, install("client-a", secretA))
	if got := f.get(t, "client-a"); got.SharedSecret.Reveal() != secretA || !got.Active() {
		t.Errorf("reinstall after uninstall: secret %q active %v, want the payload's and true", got.SharedSecret.Reveal(), got.Active())
	}
}

func TestInstallRefused(t *testing.T) {
	cases := []struct {
		name   string
		mutate func(*tenant.Install)
		want   error    // a sentinel, or nil for a *ValidationError
		fields []string // for a *ValidationError
	}{
		{"token of another tenant", func(in *tenant.Install) { in.Issuer = "client-other" }, tenant.ErrIdentityMismatch, nil},
		{"no verified issuer", func(in *tenant.Install) { in.Issuer = "" }, tenant.ErrIdentityMismatch, nil},
		{"other app", func(in *tenant.Install) { in.Key = "other-app" }, nil, []string{"key"}},
		{"http baseUrl", func(in *tenant.Install) { in.BaseURL = "http://acme.atlassian.net" }, nil, []string{"baseUrl"}},
		{"foreign host", func(in *tenant.Install) { in.BaseURL = "https://evil.example.com" }, nil, []string{"baseUrl"}},
		{"suffix trick", func(in *tenant.Install) { in.BaseURL = "https://acme.atlassian.net.evil.com" }, nil, []string{"baseUrl"}},
		{"bare suffix", func(in *tenant.Install) { in.BaseURL = "https://.atlassian.net" }, nil, []string{"baseUrl"}},
		{"credentials in baseUrl", func(in *tenant.Install) { in.BaseURL = "https://u:p@acme.atlassian.net" }, nil, []string{"baseUrl"}},
		{"bad displayUrl", func(in *tenant.Install) { in.DisplayURL = "https://evil.example.com" }, nil, []string{"displayUrl"}},
		{"short secret", func(in *tenant.Install) { in.SharedSecret = secret.New("short") }, nil, []string{"sharedSecret"}},
		{"no secret", func(in *tenant.Install) { in.SharedSecret = secret.Secret{} }, nil, []string{"sharedSecret"}},
		{"long description", func(in *tenant.Install) { in.Description = strings.Repeat("x", 1025) }, nil, []string{"description"}},
		{"every problem at once", func(in *tenant.Install) {
			in.Key, in.BaseURL, in.SharedSecret, in.CloudID = "x", "ftp://x", secret.Secret{}, strings.Repeat("c", 2000)
		}, nil, []string{"key", "baseUrl", "sharedSecret", "cloudId"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			// Over an existing, uninstalled tenant, so that a refusal could change a lot.
			mustInstall(t, f, install("client-a", secretA))
			if err := f.svc.Uninstall(context.Background(), "client-a", "client-a"); err != nil {
				t.Fatal(err)
			}
			before, marked, unmarked := f.store.Snapshot(), len(f.retention.marked), len(f.retention.unmarked)
			in := install("client-a", secretB)
			tc.mutate(&in)
			f.tick(time.Minute)
			err := f.svc.Install(context.Background(), in)
			var ve *tenant.ValidationError
			switch {
			case tc.want != nil && !errors.Is(err, tc.want):
				t.Fatalf("err = %v, want %v", err, tc.want)
			case tc.want == nil && !errors.As(err, &ve):
				t.Fatalf("err = %v, want a *ValidationError", err)
			case ve != nil:
				var paths []string
				for _, fe := range ve.Fields {
					paths = append(paths, fe.Path)
				}
				if diff := cmp.Diff(tc.fields, paths); diff != "" {
					t.Errorf("field paths (-want +got):\n%s", diff)
				}
			}
			f.unchanged(t, before)
			if len(f.retention.marked) != marked || len(f.retention.unmarked) != unmarked {
				t.Error("a refused install changed the retention marks")
			}
		})
	}
}

func TestUninstallEndsConsentAndMarksForDeletion(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	mustInstall(t, f, install("client-a", secretA))
	f.tick(time.Hour)
	uninstalledAt := f.now
	if err := f.svc.Uninstall(ctx, "client-a", "client-a"); err != nil {
		t.Fatal(err)
	}
	got := f.get(t, "client-a")
	if got.Installed || got.Enabled || !got.UninstalledAt.Equal(uninstalledAt) {
		t.Errorf("after uninstall: %+v", got)
	}
	if diff := cmp.Diff([]string{"client-a"}, f.consent.ended); diff != "" {
		t.Errorf("consent ended for (-want +got):\n%s", diff)
	}
	if at := f.retention.marked["client-a"]; !at.Equal(uninstalledAt.Add(retention)) {
		t.Errorf("marked for deletion at %v, want %v", at, uninstalledAt.Add(retention))
	}

	// Atlassian repeats the callback: ending again is harmless and the deletion date stays.
	f.tick(time.Hour)
	if err := f.svc.Uninstall(ctx, "client-a", "client-a"); err != nil {
		t.Fatal(err)
	}
	if at := f.retention.marked["client-a"]; !at.Equal(uninstalledAt.Add(retention)) {
		t.Errorf("a repeated uninstall moved the deletion to %v", at)
	}
	if got := f.get(t, "client-a").UninstalledAt; !got.Equal(uninstalledAt) {
		t.Errorf("a repeated uninstall moved uninstalledAt to %v", got)
	}
}

func TestUninstallOfUnknownOrForeignTenant(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	if err := f.svc.Uninstall(ctx, "nobody", "nobody"); err != nil {
		t.Errorf("unknown tenant: %v, want nil (nothing to forget)", err)
	}
	mustInstall(t, f, install("client-a", secretA))
	before := f.store.Snapshot()
	if err := f.svc.Uninstall(ctx, "client-other", "client-a"); !errors.Is(err, tenant.ErrIdentityMismatch) {
		t.Errorf("uninstall with another tenant's token: %v, want ErrIdentityMismatch", err)
	}
	f.unchanged(t, before)
	if len(f.consent.ended) != 0 || len(f.retention.marked) != 0 {
		t.Error("a refused uninstall ended consent or marked data")
	}
}

// TestUninstallStepFailureIsRepeatable: when ending consent or marking fails, the answer says
// "repeat", and the repeat completes what the first call left.
func TestUninstallStepFailureIsRepeatable(t *testing.T) {
	for _, step := range []string{"consent", "retention"} {
		t.Run(step, func(t *testing.T) {
			ctx := context.Background()
			f := newFixture(t)
			mustInstall(t, f, install("client-a", secretA))
			cause := errors.New("redis: connection refused")
			if step == "consent" {
				f.consent.fail = cause
			} else {
				f.retention.fail = cause
			}
			err := f.svc.Uninstall(ctx, "client-a", "client-a")
			if !errors.Is(err, tenant.ErrIncomplete) || !errors.Is(err, cause) {
				t.Fatalf("err = %v, want ErrIncomplete wrapping the cause", err)
			}
			if f.get(t, "client-a").Active() {
				t.Error("tokens still accepted after a half-done uninstall")
			}
			f.consent.fail, f.retention.fail = nil, nil
			if err := f.svc.Uninstall(ctx, "client-a", "client-a"); err != nil {
				t.Fatal(err)
			}
			if len(f.consent.ended) == 0 || f.retention.marked["client-a"].IsZero() {
				t.Errorf("repeat did not finish: ended %v, marked %v", f.consent.ended, f.retention.marked)
			}
		})
	}
}

func TestReinstallUnmarks(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	mustInstall(t, f, install("client-a", secretA))
	if err := f.svc.Uninstall(ctx, "client-a", "client-a"); err != nil {
		t.Fatal(err)
	}
	f.tick(24 * time.Hour)
	f.retention.fail = errors.New("redis down")
	if err := f.svc.Install(ctx, install("client-a", secretB)); !errors.Is(err, tenant.ErrIncomplete) {
		t.Fatalf("install with retention down: %v, want ErrIncomplete", err)
	}
	if _, marked := f.retention.marked["client-a"]; !marked {
		t.Fatal("mark gone although Unmark failed")
	}
	// Atlassian repeats the install; the tenant is installed by now and must still be unmarked.
	f.retention.fail = nil
	mustInstall(t, f, install("client-a", secretB))
	if _, marked := f.retention.marked["client-a"]; marked {
		t.Error("reinstalled tenant still marked for deletion")
	}
	if got := f.get(t, "client-a"); !got.Active() || !got.UninstalledAt.IsZero() {
		t.Errorf("reinstalled tenant = %+v", got)
	}
}

func TestWithoutConsentOrRetention(t *testing.T) {
	ctx := context.Background()
	store := tenanttest.NewStore()
	svc := tenant.NewService(tenant.ServiceOptions{Store: store, AppKey: appKey, AllowedHosts: []string{".atlassian.net"}})
	if err := svc.Install(ctx, install("client-a", secretA)); err != nil {
		t.Fatal(err)
	}
	if err := svc.Uninstall(ctx, "client-a", "client-a"); err != nil {
		t.Fatal(err)
	}
	if tn, _ := store.Get(ctx, "client-a"); tn.Active() {
		t.Error("still installed")
	}
}

func TestSetEnabled(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	mustInstall(t, f, install("client-a", secretA))
	for _, on := range []bool{false, true, false} {
		f.tick(time.Minute)
		if err := f.svc.SetEnabled(ctx, "client-a", on); err != nil {
			t.Fatal(err)
		}
		if got := f.get(t, "client-a"); got.Enabled != on || !got.UpdatedAt.Equal(f.now) || !got.Active() {
			t.Errorf("after SetEnabled(%v): %+v", on, got)
		}
	}
	if err := f.svc.SetEnabled(ctx, "nobody", true); !errors.Is(err, tenant.ErrNotFound) {
		t.Errorf("unknown tenant: %v, want ErrNotFound", err)
	}
	if err := f.svc.Uninstall(ctx, "client-a", "client-a"); err != nil {
		t.Fatal(err)
	}
	before := f.store.Snapshot()
	if err := f.svc.SetEnabled(ctx, "client-a", true); !errors.Is(err, tenant.ErrUninstalled) {
		t.Errorf("enable after uninstall: %v, want ErrUninstalled", err)
	}
	f.unchanged(t, before)
}

func forgeInst(cloudID string) tenant.ForgeInstallation {
	return tenant.ForgeInstallation{InstallationID: instARI, CloudID: cloudID, AppID: appARI, EnvironmentID: "env-1", SiteURL: "https://acme.atlassian.net"}
}

// forgeEvent is the body Forge sends: ids as bare UUIDs.
func forgeEvent(cloudID string) tenant.ForgeEvent {
	return tenant.ForgeEvent{InstallationID: instUUID, CloudID: cloudID, AppID: appUUID}
}

func TestLinkForgeOnlyTenant(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	if err := f.svc.LinkForge(ctx, forgeInst(cloudA), forgeEvent(cloudA)); err != nil {
		t.Fatal(err)
	}
	want := tenant.Tenant{
		ClientKey: cloudA, Key: appKey, BaseURL: "https://acme.atlassian.net", CloudID: cloudA,
		ForgeInstallationID: instARI, ForgeAppID: appARI, ForgeEnvironmentID: "env-1",
		Enabled: true, Installed: true, InstalledAt: f.now, UpdatedAt: f.now,
	}
	if diff := cmp.Diff(want, f.get(t, cloudA), cmpSecret); diff != "" {
		t.Errorf("forge-only tenant (-want +got):\n%s", diff)
	}
	// Forge retries events: a repeat writes nothing.
	saves := f.store.Saves()
	f.tick(time.Minute)
	if err := f.svc.LinkForge(ctx, forgeInst(cloudA), forgeEvent(cloudA)); err != nil {
		t.Fatal(err)
	}
	if f.store.Saves() != saves {
		t.Error("a repeated link wrote the tenant again")
	}
}

func TestLinkForgeJoinsConnectTenant(t *testing.T) {
	for _, by := range []string{"installationId", "site"} {
		t.Run(by, func(t *testing.T) {
			ctx := context.Background()
			f := newFixture(t)
			in := install("connect-ck", secretA)
			if by == "installationId" {
				in.InstallationID, in.CloudID = instARI, "" // a migrated app shares the ARI
			}
			mustInstall(t, f, in)
			if err := f.svc.LinkForge(ctx, forgeInst(cloudA), forgeEvent(cloudA)); err != nil {
				t.Fatal(err)
			}
			got := f.get(t, "connect-ck")
			if got.ForgeInstallationID != instARI || got.CloudID != cloudA || got.SharedSecret.Reveal() != secretA {
				t.Errorf("connect tenant not linked: %+v", got)
			}
			if _, err := f.store.Get(ctx, cloudA); !errors.Is(err, tenant.ErrNotFound) {
				t.Errorf("a separate Forge-only tenant was created: %v", err)
			}
		})
	}
}

func TestLinkForgeRefused(t *testing.T) {
	otherInst := "ari:cloud:ecosystem::installation/00000000-0000-4000-8000-000000000000"
	cases := []struct {
		name   string
		ev     tenant.ForgeEvent
		fields []string
	}{
		{"another installation in the body", tenant.ForgeEvent{InstallationID: otherInst, CloudID: cloudA}, []string{"id"}},
		{"another site in the body", tenant.ForgeEvent{InstallationID: instUUID, CloudID: cloudB}, []string{"context"}},
		{"another app in the body", tenant.ForgeEvent{InstallationID: instUUID, CloudID: cloudA, AppID: "00000000-0000-4000-8000-00000000000f"}, []string{"app.id"}},
		{"everything else", tenant.ForgeEvent{InstallationID: otherInst, CloudID: cloudB, AppID: "x"}, []string{"id", "context", "app.id"}},
	}
	for _, op := range []string{"link", "unlink"} {
		for _, tc := range cases {
			t.Run(op+"/"+tc.name, func(t *testing.T) {
				ctx := context.Background()
				f := newFixture(t)
				if err := f.svc.LinkForge(ctx, forgeInst(cloudA), forgeEvent(cloudA)); err != nil {
					t.Fatal(err)
				}
				before := f.store.Snapshot()
				call := f.svc.LinkForge
				if op == "unlink" {
					call = f.svc.UnlinkForge
				}
				err := call(ctx, forgeInst(cloudA), tc.ev)
				var ve *tenant.ValidationError
				if !errors.As(err, &ve) {
					t.Fatalf("err = %v, want a *ValidationError", err)
				}
				var paths []string
				for _, fe := range ve.Fields {
					paths = append(paths, fe.Path)
				}
				if diff := cmp.Diff(tc.fields, paths); diff != "" {
					t.Errorf("field paths (-want +got):\n%s", diff)
				}
				f.unchanged(t, before)
			})
		}
	}
}

// TestLinkForgeRefusesAnotherSitesInstallation: a tenant that recorded this installation id
// for another site is not joined (nor unlinked) by a token of this site.
func TestLinkForgeRefusesAnotherSitesInstallation(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	in := install("connect-ck", secretA)
	in.InstallationID, in.CloudID = instARI, cloudB
	mustInstall(t, f, in)
	before := f.store.Snapshot()
	if err := f.svc.LinkForge(ctx, forgeInst(cloudA), forgeEvent(cloudA)); !errors.Is(err, tenant.ErrConflict) {
		t.Errorf("link: %v, want ErrConflict", err)
	}
	if err := f.svc.UnlinkForge(ctx, forgeInst(cloudA), forgeEvent(cloudA)); !errors.Is(err, tenant.ErrConflict) {
		t.Errorf("unlink: %v, want ErrConflict", err)
	}
	f.unchanged(t, before)
}

func TestUnlinkForge(t *testing.T) {
	ctx := context.Background()
	t.Run("forge-only tenant is uninstalled", func(t *testing.T) {
		f := newFixture(t)
		if err := f.svc.LinkForge(ctx, forgeInst(cloudA), forgeEvent(cloudA)); err != nil {
			t.Fatal(err)
		}
		f.tick(time.Hour)
		if err := f.svc.UnlinkForge(ctx, forgeInst(cloudA), forgeEvent(cloudA)); err != nil {
			t.Fatal(err)
		}
		got := f.get(t, cloudA)
		if got.Active() || got.Enabled || !got.UninstalledAt.Equal(f.now) {
			t.Errorf("forge-only tenant after unlink: %+v", got)
		}
		if diff := cmp.Diff([]string{cloudA}, f.consent.ended); diff != "" {
			t.Errorf("consent ended for (-want +got):\n%s", diff)
		}
		if at := f.retention.marked[cloudA]; !at.Equal(f.now.Add(retention)) {
			t.Errorf("marked for deletion at %v", at)
		}
		// Installing again within the period brings it back and cancels the deletion.
		if err := f.svc.LinkForge(ctx, forgeInst(cloudA), forgeEvent(cloudA)); err != nil {
			t.Fatal(err)
		}
		if _, marked := f.retention.marked[cloudA]; marked || !f.get(t, cloudA).Active() {
			t.Error("Forge reinstall did not bring the tenant back")
		}
	})
	t.Run("connect tenant keeps its installation", func(t *testing.T) {
		f := newFixture(t)
		mustInstall(t, f, install("connect-ck", secretA))
		if err := f.svc.LinkForge(ctx, forgeInst(cloudA), forgeEvent(cloudA)); err != nil {
			t.Fatal(err)
		}
		if err := f.svc.UnlinkForge(ctx, forgeInst(cloudA), forgeEvent(cloudA)); err != nil {
			t.Fatal(err)
		}
		got := f.get(t, "connect-ck")
		if !got.Active() || got.ForgeInstallationID != "" || got.ForgeAppID != "" || got.SharedSecret.Reveal() != secretA {
			t.Errorf("connect tenant after Forge unlink: %+v", got)
		}
		if len(f.consent.ended) != 0 || len(f.retention.marked) != 0 {
			t.Error("unlinking Forge from a Connect tenant ended its consent or marked its data")
		}
	})
	t.Run("unknown installation", func(t *testing.T) {
		f := newFixture(t)
		if err := f.svc.UnlinkForge(ctx, forgeInst(cloudA), forgeEvent(cloudA)); err != nil {
			t.Errorf("unknown installation: %v, want nil", err)
		}
		if f.store.Saves() != 0 {
			t.Error("unlinking an unknown installation wrote something")
		}
	})
}

func TestRefusedSaveChangesNothing(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	mustInstall(t, f, install("client-a", secretA))
	f.store.FailSave = errors.New("redis down")
	if err := f.svc.Uninstall(ctx, "client-a", "client-a"); err == nil {
		t.Fatal("uninstall succeeded although the store failed")
	}
	if len(f.consent.ended) != 0 || len(f.retention.marked) != 0 {
		t.Error("consent ended or data marked although the uninstall was not saved")
	}
}

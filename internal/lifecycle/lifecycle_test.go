package lifecycle_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/supportbridge/supportbridge/internal/lifecycle"
	"github.com/supportbridge/supportbridge/internal/redisstore"
	"github.com/supportbridge/supportbridge/internal/redisstore/redistest"
	"github.com/supportbridge/supportbridge/internal/seal"
	"github.com/supportbridge/supportbridge/internal/secret"
	"github.com/supportbridge/supportbridge/internal/tenant"
)

func TestMain(m *testing.M) { redistest.Main(m) }

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// TestUninstallReinstallAndRetention drives the real tenant.Service with this package as its
// retention port: a reinstall within the retention period keeps the data, and past it after
// an uninstall nothing of the tenant remains in Redis but the tombstone.
func TestUninstallReinstallAndRetention(t *testing.T) {
	ctx := context.Background()
	rdb := redistest.Client(t)
	clk := &clock{t: time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)}
	sealer, err := seal.New(make([]byte, 32))
	if err != nil {
		t.Fatal(err)
	}
	purge := redisstore.NewPurge(rdb, redisstore.PurgeOptions{})
	svc := lifecycle.New(purge, lifecycle.Options{Now: clk.Now})
	var _ tenant.Retention = svc // the port the tenant service calls
	tenants := tenant.NewService(tenant.ServiceOptions{
		Store: redisstore.NewTenants(rdb, sealer), Retention: svc, RetentionPeriod: 30 * 24 * time.Hour,
		AppKey: "app", AllowedHosts: []string{".atlassian.net"}, Now: clk.Now,
	})
	job := lifecycle.NewJob(svc, purge, lifecycle.JobOptions{Now: clk.Now})
	const ck = "client-retained"
	install := func() {
		t.Helper()
		err := tenants.Install(ctx, tenant.Install{Issuer: ck, ClientKey: ck, Key: "app",
			BaseURL: "https://retained.atlassian.net", SharedSecret: secret.New("a-shared-secret-0123456789")})
		if err != nil {
			t.Fatalf("Install: %v", err)
		}
	}
	runJob := func() int {
		t.Helper()
		n, err := job.RunOnce(ctx)
		if err != nil {
			t.Fatalf("RunOnce: %v", err)
		}
		return n
	}
	install()
	if err := redisstore.NewUsage(rdb).Add(ctx, ck, clk.Now(), map[string]int64{"reports_filed": 1}); err != nil {
		t.Fatal(err)
	}
	if err := tenants.Uninstall(ctx, ck, ck); err != nil {
		t.Fatal(err)
	}
	st, err := svc.Describe(ctx, ck)
	if err != nil || st.State != "uninstalled" || st.MarkedFor == nil || !st.MarkedFor.Equal(clk.Now().Add(30*24*time.Hour)) {
		t.Fatalf("after uninstall Describe = %+v, %v; want marked 30 days on", st, err)
	}
	clk.Advance(29 * 24 * time.Hour)
	if n := runJob(); n != 0 {
		t.Fatalf("within retention the job purged %d", n)
	}
	install() // back within the period: the mark goes, the data stays
	clk.Advance(5 * 24 * time.Hour)
	if n := runJob(); n != 0 {
		t.Fatalf("after a reinstall the job purged %d", n)
	}
	if st, err := svc.Describe(ctx, ck); err != nil || st.State != "installed" || st.MarkedFor != nil || st.Held["usage_counters"] != 1 {
		t.Fatalf("after reinstall Describe = %+v, %v; want installed, unmarked, data kept", st, err)
	}

	if err := tenants.Uninstall(ctx, ck, ck); err != nil {
		t.Fatal(err)
	}
	clk.Advance(30*24*time.Hour + time.Minute)
	if n := runJob(); n != 1 {
		t.Fatalf("past retention the job purged %d, want 1", n)
	}
	keys, err := rdb.Keys(ctx, "*").Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		v := rdb.Dump(ctx, k).Val()
		if strings.HasSuffix(k, ":tombstone") {
			continue
		}
		if strings.Contains(v, ck) || strings.Contains(k, ck) || k == "sb:lifecycle:marked" {
			t.Errorf("past retention %s still names the tenant", k)
		}
		if !strings.HasPrefix(k, "sb:{purge}:") && !strings.HasPrefix(k, "sb:usage:") {
			t.Errorf("past retention %s is left", k)
		}
	}
	if st, err := svc.Describe(ctx, ck); err != nil || st.State != "purged" || st.Tombstone == nil || st.Tombstone.Counts["tenant"] != 1 {
		t.Errorf("after the purge Describe = %+v, %v", st, err)
	}
}

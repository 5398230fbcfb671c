package redisstore

import (
	"context"
	"os"
	"regexp"
	"sort"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/supportbridge/supportbridge/internal/redisstore/redistest"
	"github.com/supportbridge/supportbridge/internal/report"
)

// TestInventoryMatchesKeys keeps the README's data inventory, KeyFamilies and the keys the
// code writes in step: every family is documented, every documented family exists in the
// list, and every key of a database that went through every store (reports delivered and
// failed, consent, audit, errors, usage, marks, leases, a purge finished and one halfway)
// belongs to exactly one family.
func TestInventoryMatchesKeys(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	var documented []string
	for _, m := range regexp.MustCompile("(?m)^\\| `(sb:[^`]+)` \\|").FindAllSubmatch(readme, -1) {
		documented = append(documented, string(m[1]))
	}
	want := append([]string(nil), KeyFamilies...)
	sort.Strings(documented)
	sort.Strings(want)
	if diff := cmp.Diff(want, documented); diff != "" {
		t.Errorf("KeyFamilies (-) and the README's data inventory (+) differ:\n%s", diff)
	}

	ctx := context.Background()
	rdb := redistest.Client(t)
	e := newPurgeEnv(t, rdb)
	const halfway = "halfway-tenant"
	e.seed(t, halfway)
	p := NewPurge(rdb, PurgeOptions{Reports: e.reports})
	if err := p.Mark(ctx, bystander, e.clock.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if _, err := newPurgeService(e, p).Purge(ctx, victim); err != nil {
		t.Fatal(err)
	}
	fence, _ := p.NextFence(ctx)
	if err := p.fenced(ctx, purgeBeginScript, "begin", p.fencedKeys(halfway), fence, 1); err != nil {
		t.Fatal(err)
	}
	if _, _, err := p.Acquire(ctx, "replica-1", time.Minute); err != nil {
		t.Fatal(err)
	}
	if _, err := NewConsent(rdb).AcquireLease(ctx, "consent-scheduler", "replica-1", time.Minute); err != nil {
		t.Fatal(err)
	}
	// Rate-limit keys exist only when limits are on.
	mustEnqueue(t, e.reports, submission(bystander, "u9", ""), report.Limits{PerUser: 10, PerTenant: 100, Window: time.Hour})
	all := dumpAll(t, rdb)
	seen := map[string]bool{}
	for k := range all {
		var matched []string
		for _, f := range KeyFamilies {
			if familyRE(f).MatchString(k) {
				matched = append(matched, f)
			}
		}
		switch len(matched) {
		case 0:
			t.Errorf("key %s belongs to no family of the inventory", k)
		case 1:
			seen[matched[0]] = true
		default:
			t.Errorf("key %s belongs to several families: %v", k, matched)
		}
	}
	if len(seen) < 35 {
		t.Errorf("the database held keys of only %d families; the seed no longer exercises the stores", len(seen))
	}
}

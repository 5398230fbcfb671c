package httpapi

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/supportbridge/supportbridge/internal/agentauth"
	"github.com/supportbridge/supportbridge/internal/config"
	"github.com/supportbridge/supportbridge/internal/errortrack"
	"github.com/supportbridge/supportbridge/internal/lifecycle"
	"github.com/supportbridge/supportbridge/internal/redisstore"
	"github.com/supportbridge/supportbridge/internal/usage"
)

// lifecycleHarness is the full router with the lifecycle admin routes wired to the real
// services on real Redis, and error tracking counting into the usage counter.
type lifecycleHarness struct {
	*harness
	clock   *errClock
	rdb     redis.UniversalClient
	counter *usage.Counter
}

func newLifecycleHarness(t *testing.T) *lifecycleHarness {
	t.Helper()
	lh := &lifecycleHarness{clock: &errClock{t: time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)}}
	agents, err := agentauth.New(agentauth.Options{TokensFile: writeAgentTokens(t)})
	if err != nil {
		t.Fatal(err)
	}
	lh.harness = newHarness(t, func(env map[string]string, o *Options) {
		rdb, err := redisstore.NewClient(config.Redis{URL: env["SB_REDIS_URL"]})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { rdb.Close() })
		lh.rdb = rdb
		store := redisstore.NewUsage(rdb)
		lh.counter = usage.NewCounter(store, nil, lh.clock.Now, nil)
		errs, err := errortrack.New(redisstore.NewErrors(rdb), errortrack.Options{
			Key: []byte("error-tracking-test-key-0123456789"), Now: lh.clock.Now, Usage: lh.counter,
		})
		if err != nil {
			t.Fatal(err)
		}
		o.Errors = errs
		o.Consent = ConsentDeps{Agents: agents}
		svc := lifecycle.New(redisstore.NewPurge(rdb, redisstore.PurgeOptions{}), lifecycle.Options{
			Now: lh.clock.Now,
			// The harness's directory caches tenants; a purge must drop the copy.
			TenantChanged: func(_ context.Context, t string) error { lh.tenants.Invalidate(t); return nil },
		})
		o.DataLifecycle = DataLifecycleDeps{
			Purger: svc, Usage: store,
			Eraser: lifecycle.NewEraser(redisstore.NewPrivacy(rdb, []byte("k")), errs.TrackingID, 0, lh.clock.Now),
		}
	})
	return lh
}

func (lh *lifecycleHarness) postErrors(tenant, account string, n int) {
	lh.t.Helper()
	events := make([]map[string]any, n)
	for i := range events {
		events[i] = jsErr("boom "+strconv.Itoa(i), "f (https://app.example/a.js:1:1)")
	}
	b, _ := json.Marshal(map[string]any{"events": events})
	tok := contextToken(lh.t, tenant, secretA, account, nil)
	st, _, body := lh.do("POST", "/api/v1/errors", map[string]string{"Authorization": "JWT " + tok}, b)
	if st != http.StatusAccepted {
		lh.t.Fatalf("post errors: %d %s", st, body)
	}
}

func TestTenantPurgeRoute(t *testing.T) {
	lh := newLifecycleHarness(t)
	const ck = "client-purge-me"
	lh.install(ck, secretA)
	lh.install("client-stays", secretA)
	lh.postErrors(ck, "557058:purge-user", 2)
	if err := lh.counter.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}

	// Admins only.
	for _, tc := range []struct {
		name string
		hdr  map[string]string
		want int
	}{
		{"no token", nil, 401},
		{"agent", bearer(aliceToken), 403},
		{"app token", map[string]string{"Authorization": "JWT " + contextToken(t, ck, secretA, "u", nil)}, 401},
	} {
		st, hdr, b := lh.do("GET", "/api/v1/tenants/"+ck, tc.hdr, nil)
		if st != tc.want {
			t.Errorf("%s: GET tenant = %d %s, want %d", tc.name, st, b, tc.want)
		}
		decodeProblem(t, hdr, b)
		st, _, _ = lh.do("POST", "/api/v1/tenants/"+ck+"/purge", tc.hdr, []byte(`{"confirm":"`+ck+`"}`))
		if st != tc.want {
			t.Errorf("%s: purge = %d, want %d", tc.name, st, tc.want)
		}
	}

	st, _, b := lh.do("GET", "/api/v1/tenants/"+ck, bearer(rootToken), nil)
	var status lifecycle.Status
	if err := json.Unmarshal(b, &status); st != 200 || err != nil || status.State != "installed" || status.Held["tenant"] != 1 || status.Held["error_groups"] == 0 {
		t.Fatalf("GET tenant = %d %s", st, b)
	}
	if st, _, _ := lh.do("GET", "/api/v1/tenants/nobody-at-all", bearer(rootToken), nil); st != 404 {
		t.Errorf("unknown tenant = %d, want 404", st)
	}

	// Validation: field paths, never a 5xx.
	for _, tc := range []struct {
		name, path, body, ctype string
		want                    int
		field                   string
	}{
		{"no confirm", "/api/v1/tenants/" + ck + "/purge", `{}`, "application/json", 400, "/confirm"},
		{"wrong confirm", "/api/v1/tenants/" + ck + "/purge", `{"confirm":"client-stays"}`, "application/json", 400, "/confirm"},
		{"confirm a number", "/api/v1/tenants/" + ck + "/purge", `{"confirm":5}`, "application/json", 400, "/confirm"},
		{"not json", "/api/v1/tenants/" + ck + "/purge", `{"confirm":`, "application/json", 400, ""},
		{"empty", "/api/v1/tenants/" + ck + "/purge", ``, "application/json", 400, ""},
		{"text", "/api/v1/tenants/" + ck + "/purge", `hello`, "text/plain", 415, ""},
		{"too large", "/api/v1/tenants/" + ck + "/purge", `{"confirm":"` + strings.Repeat("x", 5000) + `"}`, "application/json", 413, ""},
		{"long tenant", "/api/v1/tenants/" + strings.Repeat("k", 300) + "/purge", `{"confirm":"x"}`, "application/json", 400, "path:tenant"},
		{"control in tenant", "/api/v1/tenants/a%01b/purge", `{"confirm":"a\u0001b"}`, "application/json", 400, "path:tenant"},
	} {
		hdr := bearer(rootToken)
		hdr["Content-Type"] = tc.ctype
		st, h, b := lh.do("POST", tc.path, hdr, []byte(tc.body))
		if st != tc.want {
			t.Errorf("%s: %d %s, want %d", tc.name, st, b, tc.want)
			continue
		}
		p := decodeProblem(t, h, b)
		if tc.field != "" && (len(p.Errors) == 0 || p.Errors[0].Field != tc.field) {
			t.Errorf("%s: errors = %+v, want field %s", tc.name, p.Errors, tc.field)
		}
	}

	st, _, b = lh.do("POST", "/api/v1/tenants/"+ck+"/purge", bearer(rootToken), []byte(`{"confirm":"`+ck+`"}`))
	var r lifecycle.Receipt
	if err := json.Unmarshal(b, &r); st != 200 || err != nil {
		t.Fatalf("purge = %d %s", st, b)
	}
	if r.Deleted["tenant"] != 1 || r.Tombstone.TenantKeyHash != lifecycle.KeyHash(ck) || len(r.NotDeleted) == 0 ||
		!strings.Contains(r.NotDeleted[0].Where, "Jira Service Management") || strings.Contains(string(b), ck) {
		t.Errorf("receipt = %s", b)
	}
	// The tenant's tokens stop at once, and what is left is the tombstone.
	tok := contextToken(t, ck, secretA, "557058:purge-user", nil)
	if st, _, b := lh.do("POST", "/api/v1/errors", map[string]string{"Authorization": "JWT " + tok}, []byte(`{"events":[]}`)); st != 401 {
		t.Errorf("app call after purge = %d %s, want 401", st, b)
	}
	st, _, b = lh.do("GET", "/api/v1/tenants/"+ck, bearer(rootToken), nil)
	status = lifecycle.Status{}
	if err := json.Unmarshal(b, &status); st != 200 || err != nil || status.State != "purged" || len(status.Held) != 0 || status.Tombstone == nil {
		t.Errorf("GET after purge = %d %s", st, b)
	}
	// Twice is harmless.
	if st, _, b := lh.do("POST", "/api/v1/tenants/"+ck+"/purge", bearer(rootToken), []byte(`{"confirm":"`+ck+`"}`)); st != 200 {
		t.Errorf("second purge = %d %s", st, b)
	}
	if st, _, _ := lh.do("GET", "/api/v1/tenants/client-stays", bearer(rootToken), nil); st != 200 {
		t.Errorf("the other tenant = %d, want 200", st)
	}
}

// TestStatsAddUpAndNameNobody drives error events of two tenants and two people over two
// days and checks the stats against them, in JSON and CSV, and that no user id reaches the
// counts.
func TestStatsAddUpAndNameNobody(t *testing.T) {
	lh := newLifecycleHarness(t)
	ctx := context.Background()
	users := []string{"557058:stats-user-one", "557058:stats-user-two"}
	lh.install("client-stats-a", secretA)
	lh.install("client-stats-b", secretA)
	lh.postErrors("client-stats-a", users[0], 3)
	lh.postErrors("client-stats-b", users[1], 2)
	lh.clock.Advance(24 * time.Hour)
	lh.postErrors("client-stats-a", users[1], 4)
	if err := lh.counter.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	get := func(q string, hdr map[string]string) (int, http.Header, []byte) {
		h := bearer(rootToken)
		for k, v := range hdr {
			h[k] = v
		}
		return lh.do("GET", "/api/v1/stats?"+q, h, nil)
	}
	st, _, b := get("from=2026-12-04&to=2026-12-05", nil)
	var all usage.Stats
	if err := json.Unmarshal(b, &all); st != 200 || err != nil {
		t.Fatalf("stats = %d %s", st, b)
	}
	if all.Totals["error_events"] != 9 || len(all.Days) != 2 || all.Days[0].Counts["error_events"] != 5 || all.Days[1].Counts["error_events"] != 4 {
		t.Errorf("stats of all = %s; want 5 then 4 error events", b)
	}
	st, _, b = get("from=2026-12-04&to=2026-12-05&tenant=client-stats-a", nil)
	var one usage.Stats
	if err := json.Unmarshal(b, &one); st != 200 || err != nil || one.Totals["error_events"] != 7 || one.Tenant != lifecycle.KeyHash("client-stats-a") {
		t.Errorf("stats of tenant a = %d %s; want 7", st, b)
	}
	st, hdr, b := get("from=2026-12-04&to=2026-12-05", map[string]string{"Accept": "text/csv"})
	if st != 200 || !strings.HasPrefix(hdr.Get("Content-Type"), "text/csv") {
		t.Fatalf("csv = %d %s %s", st, hdr.Get("Content-Type"), b)
	}
	rows, err := csv.NewReader(bytes.NewReader(b)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	sum := 0
	for _, r := range rows[1:] {
		n, _ := strconv.Atoi(r[2])
		sum += n
	}
	if rows[0][0] != "date" || sum != 9 {
		t.Errorf("csv rows %v sum to %d, want 9", rows, sum)
	}
	// No user id anywhere in the counts, nor in the answers.
	for _, pat := range []string{"sb:usage:*", "sb:*:usage:*"} {
		keys, _ := lh.rdb.Keys(ctx, pat).Result()
		if len(keys) == 0 {
			t.Errorf("no usage keys match %s", pat)
		}
		for _, k := range keys {
			vals := lh.rdb.HGetAll(ctx, k).Val()
			for f, v := range vals {
				if !usage.Kind(f).Valid() {
					t.Errorf("%s holds field %q, not a usage kind", k, f)
				}
				if _, err := strconv.ParseInt(v, 10, 64); err != nil {
					t.Errorf("%s.%s = %q, not a count", k, f, v)
				}
				for _, u := range users {
					if strings.Contains(k+f+v, u) || strings.Contains(k+f+v, strings.TrimPrefix(u, "557058:")) {
						t.Errorf("usage key %s names a user", k)
					}
				}
			}
			if ttl := lh.rdb.TTL(ctx, k).Val(); ttl <= 300*24*time.Hour || ttl > usage.Retention+24*time.Hour {
				t.Errorf("%s TTL %s, want about 400 days", k, ttl)
			}
		}
	}

	for _, tc := range []struct{ q, field string }{
		{"", "query:from"},
		{"from=2026-12-04", "query:to"},
		{"from=yesterday&to=2026-12-05", "query:from"},
		{"from=2026-12-05&to=2026-12-04", "query:to"},
		{"from=2020-01-01&to=2026-12-04", "query:to"},
		{"from=2026-12-04&to=2026-12-05&tenant=", "query:tenant"},
		{"from=2026-12-04&to=2026-12-05&tenant=" + strings.Repeat("t", 300), "query:tenant"},
	} {
		st, h, b := get(tc.q, nil)
		if st != 400 {
			t.Errorf("%q: %d %s, want 400", tc.q, st, b)
			continue
		}
		if p := decodeProblem(t, h, b); len(p.Errors) == 0 || p.Errors[0].Field != tc.field {
			t.Errorf("%q: errors %+v, want %s", tc.q, p.Errors, tc.field)
		}
	}
	if st, _, _ := lh.do("GET", "/api/v1/stats?from=2026-12-04&to=2026-12-05", bearer(aliceToken), nil); st != 403 {
		t.Errorf("stats as an agent = %d, want 403", st)
	}
}

func TestPrivacyEraseRoute(t *testing.T) {
	lh := newLifecycleHarness(t)
	lh.install("client-erase", secretA)
	lh.postErrors("client-erase", "557058:erase-me", 1)
	lh.postErrors("client-erase", "557058:keep-me", 1)
	post := func(body string) (int, http.Header, []byte) {
		return lh.do("POST", "/api/v1/privacy/erase", bearer(rootToken), []byte(body))
	}
	st, _, b := post(`{"accountId":"557058:erase-me","email":"erase-me@example.com"}`)
	var got lifecycle.Erasure
	if err := json.Unmarshal(b, &got); st != 200 || err != nil {
		t.Fatalf("erase = %d %s", st, b)
	}
	if got.TrackingIDsRemoved != 1 || got.TenantsSearched != 1 || len(got.NotCovered) == 0 {
		t.Errorf("erase = %s; want the one tracking id found", b)
	}
	for _, tc := range []struct{ body, field string }{
		{`{}`, "/"},
		{`{"accountId":""}`, "/accountId"},
		{`{"email":"not an email"}`, "/email"},
		{`{"email":"Ada <ada@example.com>"}`, "/email"},
		{`{"accountId":7}`, "/accountId"},
		{`{"accountId":"` + strings.Repeat("a", 200) + `"}`, "/accountId"},
	} {
		st, h, b := post(tc.body)
		if st != 400 {
			t.Errorf("%s: %d %s, want 400", tc.body, st, b)
			continue
		}
		if p := decodeProblem(t, h, b); len(p.Errors) == 0 || p.Errors[0].Field != tc.field {
			t.Errorf("%s: errors %+v, want %s", tc.body, p.Errors, tc.field)
		}
	}
	if st, _, _ := post(`{"email":"` + strings.Repeat("a", 5000) + `@x.com"}`); st != 413 {
		t.Errorf("oversized body = %d, want 413", st)
	}
	if st, _, _ := lh.do("POST", "/api/v1/privacy/erase", bearer(aliceToken), []byte(`{"accountId":"x"}`)); st != 403 {
		t.Errorf("erase as an agent = %d, want 403", st)
	}
}

package httpapi

import (
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/supportbridge/supportbridge"
	"github.com/supportbridge/supportbridge/internal/agentauth"
	"github.com/supportbridge/supportbridge/internal/config"
	"github.com/supportbridge/supportbridge/internal/errortrack"
	"github.com/supportbridge/supportbridge/internal/forge"
	"github.com/supportbridge/supportbridge/internal/forge/forgetest"
	"github.com/supportbridge/supportbridge/internal/redisstore"
)

// errClock is the error tracker's clock. The HTTP layer keeps the real one, because the
// Atlassian tokens of these tests are signed now.
type errClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *errClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *errClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// errHarness is the full service with error tracking on a real Redis, and the agent tokens
// of the consent tests.
type errHarness struct {
	*harness
	clock *errClock
	rdb   redis.UniversalClient
}

const (
	errTenantA  = "client-errors-a"
	errTenantB  = "client-errors-b"
	errAccountA = "557058:0f1e2d3c-aaaa-bbbb-cccc-000000000001"
	errAccountB = "557058:0f1e2d3c-aaaa-bbbb-cccc-000000000002"
)

func newErrHarness(t *testing.T, opts ...harnessOption) *errHarness {
	t.Helper()
	eh := &errHarness{clock: &errClock{t: time.Date(2026, 12, 4, 10, 0, 30, 0, time.UTC)}}
	agents, err := agentauth.New(agentauth.Options{TokensFile: writeAgentTokens(t)})
	if err != nil {
		t.Fatal(err)
	}
	script, err := fs.Sub(supportbridge.ErrorCapture, "web/error-capture")
	if err != nil {
		t.Fatal(err)
	}
	eh.harness = newHarness(t, append(opts, func(env map[string]string, o *Options) {
		rdb, err := redisstore.NewClient(config.Redis{URL: env["SB_REDIS_URL"]})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { rdb.Close() })
		eh.rdb = rdb
		svc, err := errortrack.New(redisstore.NewErrors(rdb), errortrack.Options{
			Key: []byte("error-tracking-test-key-0123456789"), Now: eh.clock.Now,
		})
		if err != nil {
			t.Fatal(err)
		}
		o.Errors = svc
		o.ErrorCapture = script
		o.Consent = ConsentDeps{Agents: agents}
	})...)
	eh.install(errTenantA, secretA)
	eh.install(errTenantB, secretA+"-b")
	return eh
}

// post sends a batch as a user of tenant; body is marshalled unless it is already bytes.
func (eh *errHarness) post(tenant, account string, body any) (int, http.Header, []byte) {
	eh.t.Helper()
	secret := secretA
	if tenant == errTenantB {
		secret = secretA + "-b"
	}
	b, ok := body.([]byte)
	if !ok {
		b, _ = json.Marshal(body)
	}
	tok := contextToken(eh.t, tenant, secret, account, nil)
	return eh.do("POST", "/api/v1/errors", map[string]string{"Authorization": "JWT " + tok}, b)
}

// mustPost posts and wants every event accepted.
func (eh *errHarness) mustPost(tenant, account string, events ...map[string]any) {
	eh.t.Helper()
	st, _, b := eh.post(tenant, account, map[string]any{"events": events})
	if st != http.StatusAccepted || string(b) != fmt.Sprintf(`{"accepted":%d}`, len(events)) {
		eh.t.Fatalf("post: %d %s", st, b)
	}
}

// groups lists a tenant's groups as alice the agent.
func (eh *errHarness) groups(tenant, query string) errortrack.Page {
	eh.t.Helper()
	st, _, b := eh.do("GET", "/api/v1/errors/groups?tenant="+tenant+query, bearer(aliceToken), nil)
	if st != http.StatusOK {
		eh.t.Fatalf("groups: %d %s", st, b)
	}
	var p errortrack.Page
	if err := json.Unmarshal(b, &p); err != nil {
		eh.t.Fatal(err)
	}
	return p
}

// redisDump is every key of the test's database and every value under it, as text.
func (eh *errHarness) redisDump() string {
	eh.t.Helper()
	ctx := context.Background()
	keys, err := eh.rdb.Keys(ctx, "*").Result()
	if err != nil {
		eh.t.Fatal(err)
	}
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "%s => ", k)
		switch eh.rdb.Type(ctx, k).Val() {
		case "string":
			b.WriteString(eh.rdb.Get(ctx, k).Val())
		case "hash":
			fmt.Fprint(&b, eh.rdb.HGetAll(ctx, k).Val())
		case "set":
			fmt.Fprint(&b, eh.rdb.SMembers(ctx, k).Val())
		case "zset":
			fmt.Fprint(&b, eh.rdb.ZRange(ctx, k, 0, -1).Val())
		case "list":
			fmt.Fprint(&b, eh.rdb.LRange(ctx, k, 0, -1).Val())
		case "stream":
			fmt.Fprint(&b, eh.rdb.XRange(ctx, k, "-", "+").Val())
		}
		b.WriteByte('\n')
	}
	return b.String()
}

func jsErr(msg, frame string) map[string]any {
	return map[string]any{"kind": "error", "message": msg, "stack": "TypeError: " + msg + "\n    at " + frame + "\n    at main (https://app.example/app.js:1:1)"}
}

func TestErrorsValidationFieldPaths(t *testing.T) {
	eh := newErrHarness(t)
	long := strings.Repeat("x", errortrack.MaxMessageBytes+1)
	ok := func(mut func(e map[string]any)) map[string]any {
		e := map[string]any{"kind": "error", "message": "boom", "url": "https://app.example/page"}
		if mut != nil {
			mut(e)
		}
		return e
	}
	many := make([]map[string]any, errortrack.MaxEvents+1)
	for i := range many {
		many[i] = ok(nil)
	}
	tests := []struct {
		name string
		body any
		want []string // field paths, in any order
	}{
		{"no events", map[string]any{}, []string{"/events"}},
		{"unknown top field", map[string]any{"events": []any{ok(nil)}, "user": "x"}, []string{"/user"}},
		{"events not an array", map[string]any{"events": "x"}, []string{"/events"}},
		{"empty batch", map[string]any{"events": []any{}}, []string{"/events"}},
		{"over 50 events", map[string]any{"events": many}, []string{"/events"}},
		{"event not an object", map[string]any{"events": []any{ok(nil), 7}}, []string{"/events/1"}},
		{"message too long", map[string]any{"events": []any{ok(nil), ok(nil), ok(nil), ok(func(e map[string]any) { e["message"] = long })}}, []string{"/events/3/message"}},
		{"message missing", map[string]any{"events": []any{ok(func(e map[string]any) { delete(e, "message") })}}, []string{"/events/0/message"}},
		{"message not a string", map[string]any{"events": []any{ok(func(e map[string]any) { e["message"] = 42 })}}, []string{"/events/0/message"}},
		{"stack too long", map[string]any{"events": []any{ok(func(e map[string]any) { e["stack"] = strings.Repeat("s", errortrack.MaxStackBytes+1) })}}, []string{"/events/0/stack"}},
		{"bad kind", map[string]any{"events": []any{ok(func(e map[string]any) { e["kind"] = "warning" })}}, []string{"/events/0/kind"}},
		{"http without status", map[string]any{"events": []any{ok(func(e map[string]any) { e["kind"] = "http" })}}, []string{"/events/0/status"}},
		{"status on an error", map[string]any{"events": []any{ok(func(e map[string]any) { e["status"] = 500 })}}, []string{"/events/0/status"}},
		{"status out of range", map[string]any{"events": []any{ok(func(e map[string]any) { e["kind"] = "http"; e["status"] = 700 })}}, []string{"/events/0/status"}},
		{"relative url", map[string]any{"events": []any{ok(func(e map[string]any) { e["url"] = "/page" })}}, []string{"/events/0/url"}},
		{"javascript url", map[string]any{"events": []any{ok(func(e map[string]any) { e["url"] = "javascript:alert(1)" })}}, []string{"/events/0/url"}},
		{"bad time", map[string]any{"events": []any{ok(func(e map[string]any) { e["time"] = "yesterday" })}}, []string{"/events/0/time"}},
		{"request id with spaces", map[string]any{"events": []any{ok(func(e map[string]any) { e["requestId"] = "a b" })}}, []string{"/events/0/requestId"}},
		{"unknown event field", map[string]any{"events": []any{ok(nil), ok(func(e map[string]any) { e["accountId"] = "x" })}}, []string{"/events/1/accountId"}},
		{"several at once", map[string]any{"events": []any{ok(func(e map[string]any) { e["kind"] = 1 }), ok(func(e map[string]any) { e["stack"] = false })}}, []string{"/events/0/kind", "/events/1/stack"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st, hdr, b := eh.post(errTenantA, errAccountA, tt.body)
			if st != http.StatusBadRequest {
				t.Fatalf("status %d, want 400: %s", st, b)
			}
			p := decodeProblem(t, hdr, b)
			var got []string
			for _, f := range p.Errors {
				got = append(got, f.Field)
			}
			slices.Sort(got)
			want := slices.Sorted(slices.Values(tt.want))
			if !slices.Equal(got, want) {
				t.Errorf("fields %v, want %v (%s)", got, want, b)
			}
		})
	}
	t.Run("malformed JSON", func(t *testing.T) {
		st, hdr, b := eh.post(errTenantA, errAccountA, []byte(`{"events":[`))
		if st != http.StatusBadRequest {
			t.Fatalf("status %d: %s", st, b)
		}
		decodeProblem(t, hdr, b)
	})
	if got := eh.groups(errTenantA, ""); len(got.Groups) != 0 {
		t.Errorf("invalid batches stored groups: %+v", got.Groups)
	}
}

func TestErrorsBodyLimit(t *testing.T) {
	eh := newErrHarness(t)
	// 50 events with 2 KiB stacks: over the server's default limit (64 KiB in the harness)
	// but within the route's own.
	events := make([]map[string]any, errortrack.MaxEvents)
	for i := range events {
		events[i] = jsErr("boom", "f (https://app.example/app.js:1:1)")
		events[i]["stack"] = events[i]["stack"].(string) + strings.Repeat(" ", 2000)
	}
	st, _, b := eh.post(errTenantA, errAccountA, map[string]any{"events": events})
	if st != http.StatusAccepted {
		t.Fatalf("100 KiB batch: %d %s", st, b)
	}
	big := []byte(`{"events":[{"kind":"error","message":"` + strings.Repeat("y", errortrack.MaxBodyBytes) + `"}]}`)
	st, hdr, b := eh.post(errTenantA, errAccountA, big)
	if st != http.StatusRequestEntityTooLarge {
		t.Fatalf("over 256 KiB: %d %s", st, b)
	}
	decodeProblem(t, hdr, b)
}

func TestErrorsScrubbedBeforeStored(t *testing.T) {
	eh := newErrHarness(t)
	const (
		jwtTok = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dBjftJeZ4CVPmB92K27uhbUJU1p1r_wW1gFWFOEjXk"
		ghTok  = "ghp_0123456789abcdefghijABCDEFGHIJ012345"
		email  = "jane.doe@customer.example"
		qsTok  = "s3cr3tQueryValue42"
		pass   = "hunter2pass"
	)
	eh.mustPost(errTenantA, errAccountA,
		map[string]any{"kind": "error", "message": "auth failed for " + email + " with " + ghTok,
			"stack":     "Error: x\n    at load (https://app.example/app.js?token=" + qsTok + ":3:7)\n    by " + email,
			"url":       "https://bob:" + pass + "@app.example/page?token=" + qsTok + "&page=2#access_token=" + qsTok,
			"requestId": "req-1"},
		map[string]any{"kind": "http", "status": 502, "message": "GET failed: Bearer " + jwtTok,
			"url": "https://api.example/v1/items/42?signature=" + qsTok + "&jwt=" + jwtTok, "requestId": "req-2"},
	)
	dump := eh.redisDump()
	for _, secret := range []string{jwtTok, ghTok, email, qsTok, pass, "bob:", errAccountA} {
		if strings.Contains(dump, secret) {
			t.Errorf("Redis holds %q:\n%s", secret, dump)
		}
	}
	page := eh.groups(errTenantA, "")
	if len(page.Groups) != 2 {
		t.Fatalf("groups: %+v", page.Groups)
	}
	byKind := map[errortrack.Kind]errortrack.Group{}
	for _, g := range page.Groups {
		byKind[g.Kind] = g
	}
	if g := byKind["error"]; !strings.Contains(g.Message, "[email]") || !strings.Contains(g.Message, "[redacted]") ||
		g.URL != "https://app.example/page?token=[redacted]&page=2" {
		t.Errorf("error group not scrubbed as expected: %+v", g)
	}
	if g := byKind["http"]; g.Status != 502 || g.RequestID != "req-2" || g.URL != "https://api.example/v1/items/42?signature=[redacted]&jwt=[redacted]" {
		t.Errorf("http group: %+v", g)
	}
}

func TestErrorsTrackingIDAnonymousAndDaily(t *testing.T) {
	eh := newErrHarness(t)
	ev := jsErr("x is undefined", "f (https://app.example/app.js:1:1)")
	eh.mustPost(errTenantA, errAccountA, ev)
	eh.mustPost(errTenantA, errAccountA, ev) // same user, same day: one id
	g := eh.groups(errTenantA, "").Groups[0]
	if len(g.TrackingIDs) != 1 || g.Count != 2 {
		t.Fatalf("one user twice on one day: %+v", g)
	}
	day1 := g.TrackingIDs[0]
	if strings.Contains(day1, errAccountA) || strings.Contains(day1, "0f1e2d3c") || len(day1) != 24 {
		t.Errorf("tracking id %q looks like the accountId or is not a truncated hash", day1)
	}
	eh.mustPost(errTenantA, errAccountB, ev)
	eh.clock.Advance(24 * time.Hour)
	eh.mustPost(errTenantA, errAccountA, ev)
	g = eh.groups(errTenantA, "").Groups[0]
	if len(g.TrackingIDs) != 3 || !slices.Contains(g.TrackingIDs, day1) {
		t.Errorf("user A day 1, user B day 1, user A day 2 should be three ids: %v", g.TrackingIDs)
	}
	// The same person on the same day is someone else in another tenant.
	eh.clock.Advance(-24 * time.Hour)
	eh.mustPost(errTenantB, errAccountA, ev)
	if b := eh.groups(errTenantB, "").Groups[0].TrackingIDs; slices.Contains(g.TrackingIDs, b[0]) {
		t.Errorf("tenant B's id %v equals one of tenant A's %v", b, g.TrackingIDs)
	}
	if dump := eh.redisDump(); strings.Contains(dump, errAccountA) || strings.Contains(dump, errAccountB) {
		t.Errorf("an accountId is stored:\n%s", dump)
	}
}

func TestErrorsGroupedByFingerprint(t *testing.T) {
	eh := newErrHarness(t)
	frame := "load (https://app.example/app.js?v=1:10:5)"
	eh.mustPost(errTenantA, errAccountA,
		jsErr("Cannot read item 17 of undefined", frame),
		jsErr("Cannot read item 42 of undefined", "load (https://app.example/app.js?v=2:10:5)"),
		jsErr("Cannot read item 9 of undefined", frame),
		jsErr("Cannot read item 9 of undefined", "save (https://app.example/app.js:99:1)"),
	)
	eh.clock.Advance(time.Minute)
	eh.mustPost(errTenantA, errAccountA,
		map[string]any{"kind": "http", "status": 503, "message": "GET /items failed", "url": "https://api.example/items/1"},
		map[string]any{"kind": "http", "status": 503, "message": "GET /items failed", "url": "https://api.example/items/2"},
	)
	page := eh.groups(errTenantA, "")
	counts := map[string]int64{}
	for _, g := range page.Groups {
		counts[string(g.Kind)+" "+g.Frame] = g.Count
	}
	want := map[string]int64{
		"error at load (https://app.example/app.js:10:5)": 3,
		"error at save (https://app.example/app.js:99:1)": 1,
		"http ": 2,
	}
	if fmt.Sprint(counts) != fmt.Sprint(want) {
		t.Errorf("counts %v, want %v", counts, want)
	}
	if page.Groups[0].Kind != "http" {
		t.Errorf("newest last-seen first: %+v", page.Groups)
	}
	first := page.Groups[1]
	if !first.FirstSeen.Equal(time.Date(2026, 12, 4, 10, 0, 30, 0, time.UTC)) || first.LastSeen.Before(first.FirstSeen) {
		t.Errorf("first/last seen: %+v", first)
	}

	// Pages of one walk every group once, in the same order.
	var walked []string
	cursor := ""
	for range 10 {
		p := eh.groups(errTenantA, "&limit=1&cursor="+cursor)
		for _, g := range p.Groups {
			walked = append(walked, g.Fingerprint)
		}
		if cursor = p.NextCursor; cursor == "" {
			break
		}
	}
	var all []string
	for _, g := range page.Groups {
		all = append(all, g.Fingerprint)
	}
	if !slices.Equal(walked, all) {
		t.Errorf("paged walk %v, want %v", walked, all)
	}
	st, hdr, b := eh.do("GET", "/api/v1/errors/groups?tenant="+errTenantA+"&cursor=bogus!", bearer(aliceToken), nil)
	if p := decodeProblem(t, hdr, b); st != 400 || len(p.Errors) != 1 || p.Errors[0].Field != "query:cursor" {
		t.Errorf("bad cursor: %d %s", st, b)
	}
}

func TestErrorsKeptFourteenDays(t *testing.T) {
	eh := newErrHarness(t)
	eh.mustPost(errTenantA, errAccountA, jsErr("boom", "f (https://app.example/a.js:1:1)"))
	ctx := context.Background()
	keys := eh.rdb.Keys(ctx, "*:errors:*").Val()
	if len(keys) < 3 {
		t.Fatalf("keys: %v", keys)
	}
	for _, k := range keys {
		ttl := eh.rdb.TTL(ctx, k).Val()
		limit := 14 * 24 * time.Hour
		if strings.Contains(k, ":errors:rate:") {
			limit = 2 * time.Minute
		}
		if ttl <= 0 || ttl > limit || (limit > time.Hour && ttl < limit-time.Minute) {
			t.Errorf("TTL of %s = %v, want about %v", k, ttl, limit)
		}
	}
	// A hit refreshes the TTL.
	group := eh.rdb.Keys(ctx, "*:errors:group:*").Val()[0]
	eh.rdb.Expire(ctx, group, time.Hour)
	eh.mustPost(errTenantA, errAccountA, jsErr("boom", "f (https://app.example/a.js:1:1)"))
	if ttl := eh.rdb.TTL(ctx, group).Val(); ttl < 14*24*time.Hour-time.Minute {
		t.Errorf("TTL after a new hit: %v", ttl)
	}
}

func TestErrorsTenantIsolation(t *testing.T) {
	eh := newErrHarness(t)
	eh.mustPost(errTenantA, errAccountA, jsErr("only in A", "a (https://a.example/a.js:1:1)"))
	eh.mustPost(errTenantB, errAccountB, jsErr("only in B", "b (https://b.example/b.js:1:1)"))
	for tenant, want := range map[string]string{errTenantA: "only in A", errTenantB: "only in B"} {
		page := eh.groups(tenant, "")
		if len(page.Groups) != 1 || page.Groups[0].Message != want {
			t.Errorf("groups of %s: %+v", tenant, page.Groups)
		}
	}
	if page := eh.groups("client-unknown", ""); len(page.Groups) != 0 {
		t.Errorf("unknown tenant: %+v", page)
	}
	// Every key of a tenant carries its hash tag, so both tenants' keys never mix slots.
	ctx := context.Background()
	tags := map[string]bool{}
	for _, k := range eh.rdb.Keys(ctx, "*:errors:*").Val() {
		tag := k[strings.Index(k, "{"):strings.Index(k, "}")]
		tags[tag] = true
	}
	if len(tags) != 2 {
		t.Errorf("want keys under exactly two tenant tags, got %v", tags)
	}
}

func TestErrorGroupsAgentsOnly(t *testing.T) {
	eh := newErrHarness(t)
	path := "/api/v1/errors/groups?tenant=" + errTenantA
	appTok := contextToken(t, errTenantA, secretA, errAccountA, nil)
	for name, hdr := range map[string]map[string]string{
		"no token":      nil,
		"app token":     {"Authorization": "JWT " + appTok},
		"app as bearer": bearer(appTok),
		"unknown agent": bearer("not-an-agent-token-0123456789abcdef"),
	} {
		st, h, b := eh.do("GET", path, hdr, nil)
		if st != http.StatusUnauthorized {
			t.Errorf("%s: %d %s", name, st, b)
		}
		decodeProblem(t, h, b)
	}
	for _, tok := range []string{aliceToken, rootToken} {
		if st, _, b := eh.do("GET", path, bearer(tok), nil); st != http.StatusOK || !strings.Contains(string(b), `"groups":[]`) {
			t.Errorf("agent: %d %s", st, b)
		}
	}
	st, hdr, b := eh.do("GET", "/api/v1/errors/groups", bearer(aliceToken), nil)
	if p := decodeProblem(t, hdr, b); st != 400 || p.Errors[0].Field != "query:tenant" {
		t.Errorf("no tenant: %d %s", st, b)
	}
	// And the app intake refuses agents and anonymous callers.
	body := []byte(`{"events":[{"kind":"error","message":"x"}]}`)
	for name, hdr := range map[string]map[string]string{"none": nil, "agent": bearer(aliceToken)} {
		if st, _, b := eh.do("POST", "/api/v1/errors", hdr, body); st != http.StatusUnauthorized {
			t.Errorf("POST as %s: %d %s", name, st, b)
		}
	}
}

func TestErrorsRateLimited(t *testing.T) {
	eh := newErrHarness(t)
	batch := make([]map[string]any, errortrack.MaxEvents)
	for i := range batch {
		batch[i] = jsErr("flood", "f (https://app.example/a.js:1:1)")
	}
	for i := range 600 / errortrack.MaxEvents {
		if st, _, b := eh.post(errTenantA, errAccountA, map[string]any{"events": batch}); st != http.StatusAccepted {
			t.Fatalf("batch %d: %d %s", i, st, b)
		}
	}
	st, hdr, b := eh.post(errTenantA, errAccountA, map[string]any{"events": batch[:1]})
	if st != http.StatusTooManyRequests {
		t.Fatalf("event 601: %d %s", st, b)
	}
	decodeProblem(t, hdr, b)
	// The clock is 30 s into its minute.
	if ra, _ := strconv.Atoi(hdr.Get("Retry-After")); ra != 30 {
		t.Errorf("Retry-After %q, want 30", hdr.Get("Retry-After"))
	}
	// Another tenant has its own budget.
	if st, _, b := eh.post(errTenantB, errAccountB, map[string]any{"events": batch[:1]}); st != http.StatusAccepted {
		t.Errorf("tenant B: %d %s", st, b)
	}
	eh.clock.Advance(30 * time.Second)
	if st, _, b := eh.post(errTenantA, errAccountA, map[string]any{"events": batch[:1]}); st != http.StatusAccepted {
		t.Errorf("next minute: %d %s", st, b)
	}
	if g := eh.groups(errTenantA, "").Groups[0]; g.Count != 601 {
		t.Errorf("count %d, want 601 (the refused event is not stored)", g.Count)
	}
}

func TestErrorCaptureScriptServed(t *testing.T) {
	eh := newErrHarness(t)
	u := eh.server.ErrorCaptureURL()
	if !strings.HasPrefix(u, "/static/") || !strings.HasSuffix(u, "/error-capture.js") {
		t.Fatalf("ErrorCaptureURL = %q", u)
	}
	st, hdr, b := eh.do("GET", u, nil, nil)
	want, _ := fs.ReadFile(supportbridge.ErrorCapture, "web/error-capture/error-capture.js")
	if st != 200 || string(b) != string(want) || !strings.HasPrefix(hdr.Get("Content-Type"), "text/javascript") ||
		!strings.Contains(hdr.Get("Cache-Control"), "immutable") {
		t.Errorf("script: %d %v", st, hdr)
	}
	stale := strings.Replace(u, "/static/", "/static/0", 1)
	if st, _, _ := eh.do("GET", stale, nil, nil); st != 404 {
		t.Errorf("stale version: %d", st)
	}
	if eh.server.siteUI != nil {
		if st, _, _ := eh.do("GET", strings.Replace(u, eh.server.errs.script.version, eh.server.siteUI.version, 1), nil, nil); st != 404 {
			t.Errorf("the script under the admin page's version: %d", st)
		}
	}
}

// TestErrorCaptureNode runs the script's own tests (node --test, a fake window and
// sessionStorage, no browser) when Node is installed.
func TestErrorCaptureNode(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node is not installed")
	}
	dir, _ := filepath.Abs("../../web/error-capture")
	if _, err := os.Stat(filepath.Join(dir, "error-capture.test.js")); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(node, "--test", "error-capture.test.js")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("node --test: %v\n%s", err, out)
	}
}

func TestErrorsFromForge(t *testing.T) {
	iss := forgetest.NewIssuer(t)
	eh := newErrHarness(t, withForge(iss))
	sys := map[string]string{"Authorization": "Bearer " + iss.Sign(forgetest.Claims{})}
	if st, _, b := eh.do("POST", "/forge/lifecycle", sys, forgeEvent(forge.EventInstalled, forgetest.InstallationID, forgetest.CloudID)); st != 204 {
		t.Fatalf("installed: %d %s", st, b)
	}
	body := []byte(`{"events":[{"kind":"error","message":"from forge","stack":"at f (https://cdn.example/a.js:1:1)"}]}`)
	user := map[string]string{"Authorization": "Bearer " + iss.Sign(forgetest.Claims{Principal: "acct-forge-user"})}
	for _, hdr := range []map[string]string{user, user, sys} {
		if st, _, b := eh.do("POST", "/api/v1/errors", hdr, body); st != http.StatusAccepted {
			t.Fatalf("forge post: %d %s", st, b)
		}
	}
	// The Forge-only tenant is named by its cloud id; a call without a user counts, but
	// adds no tracking id.
	g := eh.groups(forgetest.CloudID, "").Groups
	if len(g) != 1 || g[0].Count != 3 || len(g[0].TrackingIDs) != 1 || strings.Contains(g[0].TrackingIDs[0], "acct") {
		t.Errorf("forge groups: %+v", g)
	}
}

package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/golang-jwt/jwt/v5"

	"github.com/redis/go-redis/v9"

	"github.com/supportbridge/supportbridge/internal/config"
	"github.com/supportbridge/supportbridge/internal/redisstore"
	"github.com/supportbridge/supportbridge/internal/redisstore/redistest"
	"github.com/supportbridge/supportbridge/internal/report"
)

// benchClients is the concurrency of every HTTP benchmark here: keep-alive clients that each
// send one request after another.
const benchClients = 16

// loadHTTP sends n GET requests from benchClients clients and returns requests per second.
// Every answer must have status want, so a benchmark cannot pass by measuring errors.
func loadHTTP(b *testing.B, url string, header http.Header, n, want int) float64 {
	b.Helper()
	rate, _ := load(b, "GET", url, header, nil, n, want)
	return rate
}

// load sends n requests from benchClients clients and returns requests per second and the
// 99th-percentile latency.
func load(b *testing.B, method, url string, header http.Header, body []byte, n, want int) (float64, time.Duration) {
	b.Helper()
	lat := make([]time.Duration, 0, n)
	var latMu sync.Mutex
	tr := &http.Transport{MaxIdleConnsPerHost: benchClients}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}
	var left atomic.Int64
	left.Store(int64(n))
	var wg sync.WaitGroup
	start := time.Now()
	for range benchClients {
		wg.Go(func() {
			mine := make([]time.Duration, 0, n/benchClients+1)
			defer func() { latMu.Lock(); lat = append(lat, mine...); latMu.Unlock() }()
			for left.Add(-1) >= 0 {
				req, _ := http.NewRequest(method, url, bytes.NewReader(body))
				req.Header = header.Clone()
				t0 := time.Now()
				resp, err := client.Do(req)
				if err != nil {
					b.Error(err)
					return
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				mine = append(mine, time.Since(t0))
				if resp.StatusCode != want {
					b.Errorf("status %d, want %d", resp.StatusCode, want)
					return
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	slices.Sort(lat)
	var p99 time.Duration
	if len(lat) > 0 {
		p99 = lat[len(lat)*99/100]
	}
	return float64(n) / elapsed.Seconds(), p99
}

// compare measures two endpoints in alternating rounds, so drift on the machine hits both
// alike, and reports both rates and their ratio.
func compare(b *testing.B, nameA, urlA string, hA http.Header, wantA int, nameB, urlB string, hB http.Header, wantB int) {
	b.Helper()
	n := max(b.N, 2000)
	loadHTTP(b, urlA, hA, 500, wantA) // warm connections and caches
	loadHTTP(b, urlB, hB, 500, wantB)
	b.ResetTimer()
	var a, c float64
	const rounds = 4
	for range rounds {
		a += loadHTTP(b, urlA, hA, n/rounds, wantA)
		c += loadHTTP(b, urlB, hB, n/rounds, wantB)
	}
	a, c = a/rounds, c/rounds
	b.ReportMetric(a, nameA+"_req/s")
	b.ReportMetric(c, nameB+"_req/s")
	b.ReportMetric(a/c, "ratio")
	b.ReportMetric(0, "ns/op")
}

func quietLogs(_ map[string]string, o *Options) {
	o.Logger = slog.New(slog.NewJSONHandler(io.Discard, nil))
}

// BenchmarkAuthCost prices authentication: an authenticated GET /api/v1/reports/{id} against
// the same route with authentication switched off. Tenant secrets are cached in process, so a
// verified request costs no extra Redis round trip. Target: ratio ≥ 0.85.
func BenchmarkAuthCost(b *testing.B) {
	authed := newHarness(b, quietLogs)
	authed.install("bench-tenant", secretA)
	// The same server, middleware chain and handler, with the principal set instead of
	// authenticated.
	open := newHarness(b, quietLogs)
	unauthed := open.server.newEngine()
	unauthed.Use(open.server.middleware()...)
	unauthed.GET("/api/v1/reports/:id", func(c *gin.Context) {
		c.Set(principalKey, Principal{TenantKey: "bench-tenant", AccountID: "acct-bench", Via: "none"})
	}, open.server.getReport)
	openSrv := httptest.NewServer(unauthed)
	defer openSrv.Close()
	token := "JWT " + contextToken(b, "bench-tenant", secretA, "acct-bench", func(c jwt.MapClaims) {
		now := time.Now() // iat and exp from one reading: tokens may live at most an hour
		c["iat"], c["exp"] = now.Unix(), now.Add(time.Hour).Unix()
	})
	compare(b, "auth", authed.srv.URL+"/api/v1/reports/missing", http.Header{"Authorization": {token}}, http.StatusNotFound,
		"noauth", openSrv.URL+"/api/v1/reports/missing", http.Header{}, http.StatusNotFound)
}

// BenchmarkAuthorize prices the consent gate: agent authentication plus consent.Authorize for
// an active grant, through the full middleware chain, against a bare gin handler doing one
// Redis GET. Target: ratio ≥ 0.7.
func BenchmarkAuthorize(b *testing.B) {
	ch := newConsentHarness(b)
	// Live grants expire in Redis at their end, so this one must be granted on the real clock.
	ch.clock.Advance(time.Since(ch.clock.Now()))
	id, _ := ch.newRequest(aliceToken, nil)
	ch.approve(id, "")
	grants, err := ch.svc.ListGrants(context.Background(), consentTicket)
	if err != nil || len(grants) != 1 {
		b.Fatalf("grants = %v, %v", grants, err)
	}
	g := grants[0]
	// Log as the other benchmarks do: every line is still formatted, then discarded, instead
	// of piling up in the test's buffer.
	ch.server.log = slog.New(slog.NewJSONHandler(io.Discard, nil))
	r := ch.server.Routes()
	// A small endpoint that does exactly what the log route does before reading: authenticate
	// the agent and ask Authorize, with an empty window at the start of the grant's window.
	r.GET("/bench/authorize/:id", ch.server.agentAuth(), func(c *gin.Context) {
		if _, err := ch.svc.Authorize(c.Request.Context(), c.Param("id"), actorOf(agentOf(c)), g.Streams[0], g.From, g.From); err != nil {
			c.Status(http.StatusForbidden)
			return
		}
		c.Status(http.StatusNoContent)
	})
	gated := httptest.NewServer(r)
	defer gated.Close()

	rdb := redistest.Client(b)
	rdb.Set(context.Background(), "bench:key", "value", 0)
	bare := gin.New()
	bare.GET("/get", func(c *gin.Context) {
		if err := rdb.Get(c.Request.Context(), "bench:key").Err(); err != nil {
			c.Status(http.StatusInternalServerError)
			return
		}
		c.Status(http.StatusNoContent)
	})
	plain := httptest.NewServer(bare)
	defer plain.Close()

	compare(b, "authorize", gated.URL+"/bench/authorize/"+g.ID, http.Header{"Authorization": {"Bearer " + aliceToken}}, http.StatusNoContent,
		"redis_get", plain.URL+"/get", http.Header{}, http.StatusNoContent)
}

// BenchmarkIntake prices accepting a report: an authenticated 2 KiB JSON report through the
// whole intake (authentication, validation, scrubbing, user-agent parsing, the Redis script
// with every intake check) against a bare gin handler that does one XADD of the same bytes,
// at the same concurrency in the same run. Target: ratio ≥ 0.5.
func BenchmarkIntake(b *testing.B) { benchIntake(b, false) }

// BenchmarkIntakeFloor is BenchmarkIntake with the storage cut down to one XADD of the
// report and no checks at all (no idempotency, caps, rate limits or status record): the
// most any storage could give, which prices the rest of intake on its own.
func BenchmarkIntakeFloor(b *testing.B) { benchIntake(b, true) }

// xaddIntake stores a report with one XADD of its JSON, checking nothing.
type xaddIntake struct{ rdb redis.UniversalClient }

func (xaddIntake) CheckRate(context.Context, string, string, string, report.Limits) error { return nil }
func (xaddIntake) Status(context.Context, string, string) (report.Status, error) {
	return report.Status{}, report.ErrNotFound
}

func (x xaddIntake) Enqueue(ctx context.Context, sub report.Submission, _ report.Limits) (string, bool, error) {
	doc, err := json.Marshal(sub.Report)
	if err != nil {
		return "", false, err
	}
	return sub.Report.ID, false, x.rdb.XAdd(ctx, &redis.XAddArgs{Stream: "bench:floor", Values: []any{"r", doc}}).Err()
}

func benchIntake(b *testing.B, floor bool) {
	h := newHarness(b, quietLogs, func(env map[string]string, o *Options) {
		env["SB_REPORT_RATE_PER_USER"] = "100000000"
		env["SB_REPORT_RATE_PER_TENANT"] = "100000000"
		env["SB_REPORT_MAX_QUEUE"] = "100000000"
		rdb, err := redisstore.NewClient(config.Redis{URL: env["SB_REDIS_URL"]})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { rdb.Close() })
		o.Intake = redisstore.NewReports(rdb, redisstore.ReportsOptions{CustomerKey: []byte("k")})
		if floor {
			o.Intake = xaddIntake{rdb}
		}
	})
	h.install("bench-tenant", secretA)
	token := "JWT " + contextToken(b, "bench-tenant", secretA, "acct-bench", func(c jwt.MapClaims) {
		now := time.Now() // iat and exp from one reading: tokens may live at most an hour
		c["iat"], c["exp"] = now.Unix(), now.Add(time.Hour).Unix()
	})
	body := benchReport()

	rdb := redistest.Client(b)
	bare := gin.New()
	bare.POST("/xadd", func(c *gin.Context) {
		raw, _ := io.ReadAll(c.Request.Body)
		if err := rdb.XAdd(c.Request.Context(), &redis.XAddArgs{Stream: "bench:stream", Values: []any{"r", raw}}).Err(); err != nil {
			c.Status(http.StatusInternalServerError)
			return
		}
		c.Status(http.StatusAccepted)
	})
	plain := httptest.NewServer(bare)
	defer plain.Close()

	hdr := http.Header{"Authorization": {token}, "Content-Type": {"application/json"},
		"User-Agent": {"Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15"}}
	plainHdr := http.Header{"Content-Type": {"application/json"}}
	n := max(b.N, 2000)
	load(b, "POST", h.srv.URL+"/api/v1/reports", hdr, body, 300, http.StatusAccepted)
	load(b, "POST", plain.URL+"/xadd", plainHdr, body, 300, http.StatusAccepted)
	b.ResetTimer()
	var ra, rb float64
	var pa, pb, ca, cb time.Duration
	cpuKnown := true
	const rounds = 4
	for range rounds {
		c0, ok0 := machineCPU(b)
		r, p := load(b, "POST", h.srv.URL+"/api/v1/reports", hdr, body, n/rounds, http.StatusAccepted)
		c1, ok1 := machineCPU(b)
		ra, pa, ca = ra+r, max(pa, p), ca+c1-c0
		r, p = load(b, "POST", plain.URL+"/xadd", plainHdr, body, n/rounds, http.StatusAccepted)
		c2, ok2 := machineCPU(b)
		rb, pb, cb = rb+r, max(pb, p), cb+c2-c1
		cpuKnown = cpuKnown && ok0 && ok1 && ok2
	}
	ra, rb = ra/rounds, rb/rounds
	b.ReportMetric(ra, "intake_req/s")
	b.ReportMetric(float64(pa.Microseconds())/1000, "intake_p99_ms")
	b.ReportMetric(rb, "xadd_req/s")
	b.ReportMetric(float64(pb.Microseconds())/1000, "xadd_p99_ms")
	b.ReportMetric(ra/rb, "ratio")
	if cpuKnown {
		// What one request costs the machine (this process, client included, and
		// redis-server): on two cores that run everything, this is what bounds throughput.
		sent := float64(n / rounds * rounds)
		b.ReportMetric(float64(ca.Microseconds())/sent, "intake_cpu_µs/req")
		b.ReportMetric(float64(cb.Microseconds())/sent, "xadd_cpu_µs/req")
	}
	b.ReportMetric(0, "ns/op")
}

// machineCPU is the CPU time used so far by this process and by the package's redis-server,
// which share the machine's cores with the load.
func machineCPU(b *testing.B) (time.Duration, bool) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, false
	}
	r, ok := redistest.Package(b).CPUTime()
	return time.Duration(ru.Utime.Nano()+ru.Stime.Nano()) + r, ok
}

// benchReport is a realistic report of about 2 KiB.
func benchReport() []byte {
	var errs []string
	for i := range 6 {
		errs = append(errs, fmt.Sprintf(`{"message":"TypeError: Cannot read properties of undefined (reading 'id') at row %d","occurredAt":"2026-11-28T10:0%d:00Z","source":"board.js"}`, i, i))
	}
	b := fmt.Sprintf(`{"summary":"Export to CSV fails on the board","description":"When I click Export on the sprint board nothing downloads and an error banner appears. It worked last week.","email":"jane@customer.example","operation":{"name":"board.export","requestIds":["req-8f2c1","req-8f2c2"],"occurredAt":"2026-11-28T10:05:00Z","httpStatus":500,"errorMessage":"Internal Server Error","stack":"Error: Request failed with status code 500\n    at createError (vendor.js:1:1234)\n    at settle (vendor.js:1:2345)\n    at XMLHttpRequest.onloadend (vendor.js:1:3456)"},"recentErrors":[%s],"environment":{"locale":"en-GB","timezone":"Europe/London","screen":"2560x1440","url":"https://acme.atlassian.net/jira/software/projects/ACME/boards/1"}}`, strings.Join(errs, ","))
	return []byte(b)
}

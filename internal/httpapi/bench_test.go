package httpapi

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/golang-jwt/jwt/v5"

	"github.com/supportbridge/supportbridge/internal/redisstore/redistest"
)

// benchClients is the concurrency of every HTTP benchmark here: keep-alive clients that each
// send one request after another.
const benchClients = 16

// loadHTTP sends n requests from benchClients clients and returns requests per second. Every
// answer must have status want, so a benchmark cannot pass by measuring errors.
func loadHTTP(b *testing.B, url string, header http.Header, n, want int) float64 {
	b.Helper()
	tr := &http.Transport{MaxIdleConnsPerHost: benchClients}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}
	var left atomic.Int64
	left.Store(int64(n))
	var wg sync.WaitGroup
	start := time.Now()
	for range benchClients {
		wg.Go(func() {
			for left.Add(-1) >= 0 {
				req, _ := http.NewRequest("GET", url, nil)
				req.Header = header.Clone()
				resp, err := client.Do(req)
				if err != nil {
					b.Error(err)
					return
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != want {
					b.Errorf("status %d, want %d", resp.StatusCode, want)
					return
				}
			}
		})
	}
	wg.Wait()
	return float64(n) / time.Since(start).Seconds()
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
	open := newHarness(b, quietLogs, func(_ map[string]string, o *Options) { o.SkipAppAuth = true })
	token := "JWT " + contextToken(b, "bench-tenant", secretA, "acct-bench", func(c jwt.MapClaims) {
		c["exp"] = time.Now().Add(time.Hour).Unix()
	})
	compare(b, "auth", authed.srv.URL+"/api/v1/reports/missing", http.Header{"Authorization": {token}}, http.StatusNotFound,
		"noauth", open.srv.URL+"/api/v1/reports/missing", http.Header{}, http.StatusNotFound)
}

// BenchmarkAuthorize prices the consent gate: agent authentication plus consent.Authorize for
// an active grant, through the full middleware chain, against a bare gin handler doing one
// Redis GET. Target: ratio ≥ 0.7.
func BenchmarkAuthorize(b *testing.B) {
	ch := newConsentHarness(b)
	// Live grants expire in Redis at their end, so this one must be granted on the real clock.
	ch.clock.Advance(time.Since(ch.clock.Now()))
	_, token := ch.newRequest(aliceToken, nil)
	ch.decide(token, "approve", nil)
	grants, err := ch.svc.ListGrants(context.Background(), consentTicket)
	if err != nil || len(grants) != 1 {
		b.Fatalf("grants = %v, %v", grants, err)
	}
	g := grants[0]
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

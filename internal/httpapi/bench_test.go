package httpapi

import (
	"io"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// BenchmarkAuthCost prices authentication: requests/s of an authenticated
// GET /api/v1/reports/{id} against the same route with authentication switched off, over
// real HTTP with 16 concurrent keep-alive clients, measured in one run. Tenant secrets are
// cached in process, so a verified request costs no extra Redis round trip.
func BenchmarkAuthCost(b *testing.B) {
	quiet := func(_ map[string]string, o *Options) { o.Logger = slog.New(slog.NewJSONHandler(io.Discard, nil)) }
	authed := newHarness(b, quiet)
	authed.install("bench-tenant", secretA)
	open := newHarness(b, quiet, func(_ map[string]string, o *Options) { o.SkipAppAuth = true })
	token := "JWT " + contextToken(b, "bench-tenant", secretA, "acct-bench", func(c jwt.MapClaims) {
		c["exp"] = time.Now().Add(time.Hour).Unix()
	})

	const clients = 16
	measure := func(h *harness, auth string, n int) float64 {
		tr := &http.Transport{MaxIdleConnsPerHost: clients}
		defer tr.CloseIdleConnections()
		client := &http.Client{Transport: tr}
		var left atomic.Int64
		left.Store(int64(n))
		var wg sync.WaitGroup
		start := time.Now()
		for range clients {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for left.Add(-1) >= 0 {
					req, _ := http.NewRequest("GET", h.srv.URL+"/api/v1/reports/missing", nil)
					if auth != "" {
						req.Header.Set("Authorization", auth)
					}
					resp, err := client.Do(req)
					if err != nil {
						b.Error(err)
						return
					}
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != http.StatusNotFound {
						b.Errorf("status %d, want 404", resp.StatusCode)
						return
					}
				}
			}()
		}
		wg.Wait()
		return float64(n) / time.Since(start).Seconds()
	}
	n := max(b.N, 2000)
	measure(authed, token, 500) // warm both paths and connection pools
	measure(open, "", 500)
	b.ResetTimer()
	// Alternate the two several times so drift on the machine hits both alike.
	var withAuth, without float64
	const rounds = 4
	for range rounds {
		withAuth += measure(authed, token, n/rounds)
		without += measure(open, "", n/rounds)
	}
	withAuth, without = withAuth/rounds, without/rounds
	b.ReportMetric(withAuth, "auth_req/s")
	b.ReportMetric(without, "noauth_req/s")
	b.ReportMetric(withAuth/without, "ratio")
	b.ReportMetric(0, "ns/op")
}

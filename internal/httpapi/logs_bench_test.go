package httpapi

import (
	"compress/gzip"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// writeBigDay writes about size bytes of log lines for stream app on the day of t, with an
// address, an IP and a token in every line, as in a busy app's log.
func writeBigDay(b *testing.B, root string, t time.Time, size int) {
	b.Helper()
	day := t.UTC().Truncate(24 * time.Hour)
	path := filepath.Join(root, consentTenant, "app", day.Format("2006-01-02")+".log")
	var sb strings.Builder
	sb.Grow(size + 512)
	n := 0
	for sb.Len() < size {
		ts := day.Add(time.Duration(n) * time.Duration(24*time.Hour) / time.Duration(size/190))
		fmt.Fprintf(&sb, `{"time":%q,"level":"info","msg":"GET /rest/api/3/issue/SUP-%d 200 in %dms","user":"user%d@customer.example","ip":"10.%d.%d.%d","trace":"%016x"}`+"\n",
			ts.Format(time.RFC3339Nano), n%9000, n%300, n%1000, n%250, n%200, n%100, n*7919)
		n++
	}
	if err := os.WriteFile(path, []byte(sb.String()), 0o644); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkGrantLogs measures a grant read through the whole route: agent authentication,
// consent, the reader, redaction, encoding (text/plain, the route's default, and NDJSON) and
// HTTP, with the client in the same process. Run with -cpu=1 for the one-core figure. MB/s
// is of bytes sent; MB/cpu-s is the same per second of this process's CPU time (client and
// server), which the neighbours on a shared machine do not move.
func BenchmarkGrantLogs(b *testing.B) {
	for _, c := range []struct {
		name         string
		personalData bool
		accept       string
		gzip         bool
	}{
		{"text/pseudonymised", false, "text/plain", false}, {"text/secrets_only", true, "text/plain", false},
		{"ndjson/pseudonymised", false, "application/x-ndjson", false}, {"ndjson/secrets_only", true, "application/x-ndjson", false},
		// What the agent CLI asks for; MB/s is of the lines after the client's gunzip.
		{"ndjson_gzip/pseudonymised", false, "application/x-ndjson", true},
	} {
		b.Run(c.name, func(b *testing.B) {
			ch := newConsentHarness(b)
			day := ch.clock.Now().Add(-24 * time.Hour)
			writeBigDay(b, ch.logDir, day, 32<<20)
			grant := ch.approvedGrant(func(m map[string]any) { m["personalData"] = c.personalData })
			from := day.UTC().Truncate(24 * time.Hour)
			url := ch.srv.URL + "/api/v1/grants/" + grant + "/logs?stream=app&from=" + from.Format(time.RFC3339) +
				"&to=" + from.Add(24*time.Hour).Format(time.RFC3339)
			client := &http.Client{Transport: &http.Transport{DisableCompression: true}}
			b.ResetTimer()
			cpu0, cpuOK := cpuTime()
			var total, wireTotal int64
			for b.Loop() {
				req, _ := http.NewRequest("GET", url, nil)
				req.Header.Set("Authorization", "Bearer "+aliceToken)
				req.Header.Set("Accept", c.accept)
				if c.gzip {
					req.Header.Set("Accept-Encoding", "gzip")
				}
				resp, err := client.Do(req)
				if err != nil {
					b.Fatal(err)
				}
				wire := &countingReader{r: resp.Body}
				var body io.Reader = wire
				if c.gzip {
					if body, err = gzip.NewReader(wire); err != nil {
						b.Fatal(err)
					}
				}
				n, _ := io.Copy(io.Discard, body)
				resp.Body.Close()
				if resp.StatusCode != 200 || n < 16<<20 {
					b.Fatalf("read: %d, %d bytes", resp.StatusCode, n)
				}
				total += n
				wireTotal += wire.n
			}
			b.SetBytes(total / int64(b.N))
			if c.gzip && total > 0 {
				b.ReportMetric(float64(wireTotal)/float64(total), "wire/bytes")
			}
			if cpu1, ok := cpuTime(); cpuOK && ok && cpu1 > cpu0 {
				b.ReportMetric(float64(total)/1e6/(cpu1-cpu0).Seconds(), "MB/cpu-s")
			}
		})
	}
}

// BenchmarkGateCheck prices the re-check a running read makes twice a second; the share of
// a second it takes is the gate's cost to streaming.
func BenchmarkGateCheck(b *testing.B) {
	ch := newConsentHarness(b)
	grant := ch.approvedGrant(nil)
	g, _ := ch.svc.GetGrant(b.Context(), grant)
	b.ResetTimer()
	start := time.Now()
	for b.Loop() {
		if _, err := ch.svc.AuthorizeGrant(b.Context(), grant, g.Agent); err != nil {
			b.Fatal(err)
		}
	}
	per := time.Since(start) / time.Duration(b.N)
	b.ReportMetric(float64(2*per)/float64(time.Second)*100, "%-of-stream")
}

// countingReader counts the bytes read through it.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

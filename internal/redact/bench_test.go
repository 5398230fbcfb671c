package redact

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

// syntheticLog builds a deterministic log of at least size bytes that looks like what apps
// attach to reports: timestamps, levels, request ids, URLs with harmless queries, durations,
// JSON fragments, and now and then a secret of each kind the scrubber knows.
func syntheticLog(size int) string {
	r := rand.New(rand.NewPCG(1, 2))
	var b strings.Builder
	b.Grow(size + 1024)
	t := time.Date(2025, 3, 14, 9, 26, 53, 0, time.UTC)
	levels := []string{"DEBUG", "INFO", "INFO", "INFO", "WARN", "ERROR"}
	paths := []string{"/rest/api/3/issue/PROJ-", "/rest/servicedeskapi/request/SD-", "/wiki/api/v2/pages/", "/gateway/api/graphql?op="}
	hex := func(n int) string {
		const digits = "0123456789abcdef"
		buf := make([]byte, n)
		for i := range buf {
			buf[i] = digits[r.IntN(16)]
		}
		return string(buf)
	}
	uuid := func() string { return hex(8) + "-" + hex(4) + "-" + hex(4) + "-" + hex(4) + "-" + hex(12) }
	for b.Len() < size {
		t = t.Add(time.Duration(r.IntN(5000)) * time.Millisecond)
		fmt.Fprintf(&b, "%s %-5s [req=%s] ", t.Format(time.RFC3339Nano), levels[r.IntN(len(levels))], hex(16))
		switch n := r.IntN(1000); {
		case n < 2:
			fmt.Fprintf(&b, "outbound call Authorization: Bearer %s\n", hex(40))
		case n < 3:
			fmt.Fprintf(&b, "install callback https://acme.atlassian.net/plugins/servlet/ac/app?jwt=eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJpc3MiOiJ%s.%s&lic=active\n", hex(30), hex(43))
		case n < 4:
			fmt.Fprintf(&b, "verifying context eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJpc3MiOiJ%s.%s from forge\n", hex(30), hex(43))
		case n < 5:
			fmt.Fprintf(&b, "retrying with ATATT3xFfGF0%s for user admin@acme.example\n", hex(120))
		case n < 6:
			fmt.Fprintf(&b, "payment failed card=4111 1111 1111 1111 amount=%d.%02d\n", r.IntN(500), r.IntN(100))
		case n < 8:
			fmt.Fprintf(&b, "config loaded {\"db_password\":\"%s\",\"pool\":%d}\n", hex(20), r.IntN(50))
		case n < 40:
			fmt.Fprintf(&b, "user %s@customer%d.example opened the dialog\n", hex(6), r.IntN(100))
		case n < 300:
			fmt.Fprintf(&b, "GET https://acme.atlassian.net%s%d?expand=names,renderedFields&startAt=%d status=%d dur=%dms bytes=%d\n",
				paths[r.IntN(len(paths))], r.IntN(99999), r.IntN(500), 200+r.IntN(4)*100, r.IntN(2000), r.IntN(1<<20))
		case n < 500:
			fmt.Fprintf(&b, "{\"ts\":%d,\"event\":\"issue_viewed\",\"issueId\":\"%d\",\"accountId\":\"557058:%s\",\"trace\":\"%s\"}\n",
				t.UnixMilli(), 10000+r.IntN(90000), uuid(), hex(32))
		case n < 700:
			fmt.Fprintf(&b, "cache miss key=tenant:%s:config version=1.%d.%d took %d.%03ds\n", uuid(), r.IntN(30), r.IntN(10), r.IntN(3), r.IntN(1000))
		default:
			fmt.Fprintf(&b, "worker %d processed %d items in %dms queue_depth=%d pid=%d build=%s\n",
				r.IntN(16), r.IntN(1000), r.IntN(5000), r.IntN(100), 1000+r.IntN(60000), hex(7))
		}
	}
	return b.String()
}

func BenchmarkScrub50MB(b *testing.B) {
	in := syntheticLog(50 << 20)
	opts := Options{KeepEmail: "reporter@acme.example", Secrets: []string{"Zk3Jm9QpX2wVt7LsR4nB8cYd1Hf6Ga0EuTo5Wi2Kx"}}
	b.SetBytes(int64(len(in)))
	cpu0, ok := cpuTime()
	n := 0
	for b.Loop() {
		s := New(opts)
		if out := s.String(in); len(out) == 0 {
			b.Fatal("empty output")
		}
		n++
	}
	if cpu1, ok1 := cpuTime(); ok && ok1 && cpu1 > cpu0 {
		// The scrub is single-threaded; GC work on other threads is included, which only
		// makes the figure more conservative.
		b.ReportMetric(float64(len(in))*float64(n)/1e6/(cpu1-cpu0).Seconds(), "MB/cpu-s")
	}
}

// BenchmarkPathological feeds inputs built to make a careless scanner quadratic (every
// separator starting a long value, every "eyJ" starting a long run, …). Each should run at a
// speed of the same order as the realistic log; a quadratic one would take minutes.
func BenchmarkPathological(b *testing.B) {
	const n = 1 << 20
	for _, tc := range []struct{ name, unit string }{
		{"token", "token="}, {"cookie", "Cookie: "}, {"authorization", "Authorization: "},
		{"bracket", "token=["}, {"quote", `"token":"`}, {"eyJ", "eyJ"}, {"eyJdot", "eyJabcdefghij."},
		{"pem", "-----BEGIN PRIVATE KEY-----"}, {"digits", "1 "}, {"card-groups", "4111 "},
		{"at", "a@"}, {"email", "a@b.cc"}, {"pct40", "%40"}, {"url", "://"}, {"userinfo", "://a@"},
		{"bearer", "Bearer "}, {"private-key", "private key="}, {"query", "&code="},
		{"secret", "aaaaaaaa"}, {"prefix", "ghp_"}, {"prefix-run", "xoxb-aaaaaa-"},
		{"akia", "AKIA"}, {"flag-user", " -u a:"}, {"flag-password", " --password x"},
		{"login-p", "login -p x "}, {"webhook", "https://hooks.slack.com/services/"},
		{"mask", "token=xxxxxx:"}, {"placeholder", "token=${"}, {"telegram", "bot12345678:AA"},
		{"xml", "<password>x</password>"}, {"xml-attr", `<a name="password" value=`},
		{"k8s-env", "- name: token\n  value: x\n"}, {"mysql", "mysql -px "},
		{"azure", "abc8Q~"},
	} {
		in := strings.Repeat(tc.unit, n/len(tc.unit))
		b.Run(tc.name, func(b *testing.B) {
			b.SetBytes(int64(len(in)))
			for b.Loop() {
				New(Options{Secrets: []string{"aaaaaaaa"}}).String(in)
			}
		})
	}
}

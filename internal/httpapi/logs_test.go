package httpapi

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/supportbridge/supportbridge/internal/consent"
	"github.com/supportbridge/supportbridge/internal/logaccess"
	"github.com/supportbridge/supportbridge/internal/logstore"
)

// approvedGrant makes a request as alice for the app stream, approves it, and returns the
// grant id.
func (ch *consentHarness) approvedGrant(mutate func(map[string]any)) string {
	ch.t.Helper()
	id, _ := ch.newRequest(aliceToken, mutate)
	ch.approve(id, "")
	r, err := ch.svc.GetRequest(ch.t.Context(), id)
	if err != nil || r.GrantID == "" {
		ch.t.Fatalf("no grant: %+v %v", r, err)
	}
	return r.GrantID
}

// readLogs reads a grant's logs as the agent with token and returns the status, headers and
// the (decompressed) body.
func (ch *consentHarness) readLogs(token, grant, query string, headers map[string]string) (int, http.Header, []byte) {
	ch.t.Helper()
	req, _ := http.NewRequest("GET", ch.srv.URL+"/api/v1/grants/"+grant+"/logs"+query, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	tr := &http.Transport{DisableCompression: true}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		ch.t.Fatal(err)
	}
	defer resp.Body.Close()
	var body io.Reader = resp.Body
	if resp.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(resp.Body)
		if err != nil {
			ch.t.Fatal(err)
		}
		body = zr
	}
	b, _ := io.ReadAll(body)
	// Trailers are only there once the body is read.
	for k, v := range resp.Trailer {
		resp.Header[k] = v
	}
	return resp.StatusCode, resp.Header, b
}

func TestGrantLogsNDJSON(t *testing.T) {
	ch := newConsentHarness(t)
	grant := ch.approvedGrant(nil)
	g, _ := ch.svc.GetGrant(t.Context(), grant)
	from := g.To.Add(-2 * time.Hour)
	q := "?stream=app&from=" + from.Format(time.RFC3339)
	for _, gz := range []bool{false, true} {
		h := map[string]string{"Accept": "application/x-ndjson"}
		if gz {
			h["Accept-Encoding"] = "gzip"
		}
		st, hdr, body := ch.readLogs(aliceToken, grant, q, h)
		if st != 200 || hdr.Get("Content-Type") != "application/x-ndjson" {
			t.Fatalf("read: %d %v %s", st, hdr, body)
		}
		if gz != (hdr.Get("Content-Encoding") == "gzip") {
			t.Errorf("gzip %v but Content-Encoding %q", gz, hdr.Get("Content-Encoding"))
		}
		lines := strings.Split(strings.TrimSuffix(string(body), "\n"), "\n")
		if len(lines) != 121 || lines[len(lines)-1] != `{"end":"complete"}` {
			t.Fatalf("got %d lines ending %q, want 120 records and the end", len(lines), lines[len(lines)-1])
		}
		for _, l := range lines[:120] {
			var rec struct{ Time, Stream, Line string }
			if err := json.Unmarshal([]byte(l), &rec); err != nil || rec.Stream != "app" {
				t.Fatalf("record %q: %v", l, err)
			}
			tm, _ := time.Parse(time.RFC3339, rec.Time)
			if tm.Before(from) || !tm.Before(g.To) {
				t.Errorf("record at %v outside [%v, %v)", tm, from, g.To)
			}
			for _, leak := range []string{"@customer.example", "ghp_", "10.0."} {
				if strings.Contains(rec.Line, leak) {
					t.Errorf("record leaks %q: %s", leak, rec.Line)
				}
			}
			if !strings.Contains(rec.Line, "[email:") || !strings.Contains(rec.Line, "[ip:") {
				t.Errorf("record without pseudonyms: %s", rec.Line)
			}
		}
		// The receipt hashes exactly the records sent.
		sent := []byte(strings.Join(lines[:120], "\n") + "\n")
		sum := sha256.Sum256(sent)
		as := ch.accesses(grant)
		last := as[len(as)-1]
		if last.SHA256 != hex.EncodeToString(sum[:]) || last.Bytes != int64(len(sent)) || last.Lines != 120 || last.End != "complete" {
			t.Errorf("receipt %+v, want %d bytes, 120 lines, sha %x", last, len(sent), sum)
		}
		if last.Redactions["email"] == 0 || !last.From.Equal(from) || !last.To.Equal(g.To) {
			t.Errorf("receipt window or redactions: %+v", last)
		}
	}
}

func (ch *consentHarness) accesses(grant string) []consent.Access {
	ch.t.Helper()
	v, err := ch.svc.SiteView(ch.t.Context(), consent.SiteAdmin{Tenant: consentTenant, AccountID: siteAdminAccount, Via: "connect"}, mustRequestOf(ch, grant))
	if err != nil {
		ch.t.Fatal(err)
	}
	return v.Accesses
}

func mustRequestOf(ch *consentHarness, grant string) string {
	g, err := ch.svc.GetGrant(ch.t.Context(), grant)
	if err != nil {
		ch.t.Fatal(err)
	}
	return g.RequestID
}

func TestGrantLogsText(t *testing.T) {
	ch := newConsentHarness(t)
	grant := ch.approvedGrant(func(b map[string]any) { b["personalData"] = true })
	g, _ := ch.svc.GetGrant(t.Context(), grant)
	st, hdr, body := ch.readLogs(aliceToken, grant, "?stream=app&from="+g.To.Add(-time.Hour).Format(time.RFC3339), nil)
	if st != 200 || !strings.HasPrefix(hdr.Get("Content-Type"), "text/plain") || hdr.Get("X-Supportbridge-End") != "complete" {
		t.Fatalf("read: %d %v", st, hdr)
	}
	lines := strings.Split(strings.TrimSuffix(string(body), "\n"), "\n")
	if len(lines) != 60 {
		t.Errorf("%d lines, want 60", len(lines))
	}
	// Personal data allowed: addresses stay, the secret still goes.
	if !strings.Contains(lines[0], "@customer.example") || strings.Contains(lines[0], "ghp_") {
		t.Errorf("line with personal data allowed: %s", lines[0])
	}
}

// TestGrantLogsRefusals: who may not read, and windows and streams outside the grant.
func TestGrantLogsRefusals(t *testing.T) {
	ch := newConsentHarness(t)
	grant := ch.approvedGrant(nil)
	g, _ := ch.svc.GetGrant(t.Context(), grant)
	cases := []struct {
		name, token, grant, query string
		want                      int
	}{
		{"other agent", bobToken, grant, "?stream=app", 403},
		{"our admin", rootToken, grant, "?stream=app", 403},
		{"unknown grant", aliceToken, "gr_00000000000000000000000000000000", "?stream=app", 404},
		{"stream not granted", aliceToken, grant, "?stream=audit", 403},
		{"window before the grant's", aliceToken, grant, "?stream=app&to=" + g.From.Add(-time.Hour).Format(time.RFC3339), 416},
		{"bad time", aliceToken, grant, "?stream=app&from=yesterday", 400},
		{"site page token", ch.pageToken(siteAdminAccount), grant, "?stream=app", 401},
	}
	for _, c := range cases {
		st, hdr, body := ch.readLogs(c.token, c.grant, c.query, nil)
		if st != c.want {
			t.Errorf("%s: %d %s, want %d", c.name, st, body, c.want)
			continue
		}
		decodeProblem(t, hdr, body)
	}
	if n := len(ch.accesses(grant)); n != 0 {
		t.Errorf("%d receipts for refused reads", n)
	}
	// After a revocation the agent is told why.
	if st, _, b := ch.agent("POST", "/api/v1/grants/"+grant+"/revoke", bearer(aliceToken), nil); st != 204 {
		t.Fatalf("revoke: %d %s", st, b)
	}
	st, hdr, body := ch.readLogs(aliceToken, grant, "?stream=app", nil)
	p := decodeProblem(t, hdr, body)
	if st != 403 || p.EndReason != consent.ReasonRevokedByAgent {
		t.Errorf("read after revocation: %d %+v", st, p)
	}
}

// TestRevocationCutsARunningRead: a read in progress stops within a second of the
// customer's revocation, ends with the reason, and still leaves a receipt of what was sent.
func TestRevocationCutsARunningRead(t *testing.T) {
	ch := newConsentHarness(t)
	grant := ch.approvedGrant(nil)
	ch.src.setDelay(20 * time.Millisecond) // about 800 KB/s: the read would take seconds
	req, _ := http.NewRequest("GET", ch.srv.URL+"/api/v1/grants/"+grant+"/logs?stream=app", nil)
	req.Header.Set("Authorization", "Bearer "+aliceToken)
	req.Header.Set("Accept", "application/x-ndjson")
	resp, err := ch.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	if _, err := br.ReadString('\n'); err != nil {
		t.Fatalf("first record: %v", err)
	}
	page := ch.pageToken(siteAdminAccount)
	revoked := time.Now()
	if st, _, b := ch.siteCall(page, "POST", "/api/v1/site/grants/"+grant+"/revoke", nil); st != 200 {
		t.Fatalf("revoke: %d %s", st, b)
	}
	var last string
	var received int
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			break
		}
		received++
		last = line
	}
	took := time.Since(revoked)
	if took > time.Second {
		t.Errorf("the read ran on %v after the revocation, want under a second", took)
	}
	if strings.TrimSpace(last) != `{"end":"revoked_by_customer"}` {
		t.Errorf("last record %q, want the end with the reason", last)
	}
	// The receipt is written after the stream ends; give the handler a moment to finish.
	deadline := time.Now().Add(5 * time.Second)
	for len(ch.accesses(grant)) == 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	as := ch.accesses(grant)
	if len(as) != 1 || as[0].End != consent.ReasonRevokedByCustomer || as[0].Lines == 0 {
		t.Errorf("receipt after the cut: %+v", as)
	}
}

// TestDisconnectLeavesAReceipt: an agent who goes away mid-read still leaves a receipt of
// the bytes actually sent.
func TestDisconnectLeavesAReceipt(t *testing.T) {
	ch := newConsentHarness(t)
	grant := ch.approvedGrant(nil)
	ch.src.setDelay(20 * time.Millisecond)
	req, _ := http.NewRequest("GET", ch.srv.URL+"/api/v1/grants/"+grant+"/logs?stream=app", nil)
	req.Header.Set("Authorization", "Bearer "+aliceToken)
	resp, err := ch.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4096)
	io.ReadFull(resp.Body, buf)
	resp.Body.Close()
	deadline := time.Now().Add(5 * time.Second)
	for len(ch.accesses(grant)) == 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	as := ch.accesses(grant)
	if len(as) != 1 || as[0].End != "client_gone" || as[0].Bytes < 4096 {
		t.Errorf("receipt after the agent left: %+v", as)
	}
}

// TestPreviewIsWhatTheAgentWouldGet: the admin page's preview shows the first lines exactly
// as a read under the grant returns them, pseudonyms included.
func TestPreviewIsWhatTheAgentWouldGet(t *testing.T) {
	ch := newConsentHarness(t)
	id, _ := ch.newRequest(aliceToken, nil)
	st, _, body := ch.siteCall(ch.pageToken(siteAdminAccount), "GET", "/api/v1/site/access-requests/"+id, nil)
	var v struct {
		Preview consent.Preview
	}
	if err := json.Unmarshal(body, &v); st != 200 || err != nil || !v.Preview.Available || len(v.Preview.Lines) != 20 || v.Preview.Files == 0 || v.Preview.Bytes == 0 {
		t.Fatalf("preview: %d %s", st, body)
	}
	ch.approve(id, "")
	r, _ := ch.svc.GetRequest(t.Context(), id)
	_, _, got := ch.readLogs(aliceToken, r.GrantID, "?stream=app", map[string]string{"Accept": "application/x-ndjson"})
	first := bytes.SplitN(got, []byte("\n"), 21)
	for i, l := range v.Preview.Lines {
		var rec struct{ Line string }
		json.Unmarshal(first[i], &rec)
		if rec.Line != l.Line {
			t.Fatalf("line %d: preview %q, read %q", i, l.Line, rec.Line)
		}
	}
	// The preview was recorded as shown, not as an access.
	if as := ch.accesses(r.GrantID); len(as) != 1 {
		t.Errorf("%d accesses, want only the read", len(as))
	}
}

// TestPseudonymsDifferAcrossGrants: the same address gets one pseudonym within a grant and
// another in the next grant.
func TestPseudonymsDifferAcrossGrants(t *testing.T) {
	ch := newConsentHarness(t)
	read := func() []string {
		grant := ch.approvedGrant(nil)
		g, _ := ch.svc.GetGrant(t.Context(), grant)
		_, _, body := ch.readLogs(aliceToken, grant, "?stream=app&from="+g.To.Add(-10*time.Minute).Format(time.RFC3339), nil)
		return strings.Split(strings.TrimSpace(string(body)), "\n")
	}
	a, b := read(), read()
	pseud := func(l string) string {
		i := strings.Index(l, "[email:")
		return l[i : i+strings.Index(l[i:], "]")+1]
	}
	// Lines 0 and 5 have the same address (user%5): one pseudonym within the grant.
	if pseud(a[0]) != pseud(a[5]) || pseud(a[0]) == pseud(a[1]) {
		t.Errorf("within a grant: %s %s %s", pseud(a[0]), pseud(a[5]), pseud(a[1]))
	}
	if pseud(a[0]) == pseud(b[0]) {
		t.Errorf("two grants share the pseudonym %s", pseud(a[0]))
	}
}

// TestByteBudgetEndsTheRead: a grant serves at most its budget over all reads; the read that
// reaches it ends with "budget", and the next is refused.
func TestByteBudgetEndsTheRead(t *testing.T) {
	ch := newConsentHarness(t)
	grant := ch.approvedGrant(nil)
	small, err := logaccess.New(logaccess.Options{Consent: ch.svc, Logs: logstore.New(ch.src),
		Secrets: logaccess.TenantSecrets{Dir: harnessTenants{ch}}, MaxBytes: 64 << 10,
		PseudonymKey: []byte("httpapi-tests-pseudonym-key-0123456789")})
	if err != nil {
		t.Fatal(err)
	}
	ch.server.logReader = small
	st, _, body := ch.readLogs(aliceToken, grant, "?stream=app", map[string]string{"Accept": "application/x-ndjson"})
	lines := strings.Split(strings.TrimSpace(string(body)), "\n")
	if st != 200 || lines[len(lines)-1] != `{"end":"budget"}` || len(body) > 80<<10 {
		t.Fatalf("read over budget: %d, %d bytes, last %q", st, len(body), lines[len(lines)-1])
	}
	st, hdr, body := ch.readLogs(aliceToken, grant, "?stream=app", nil)
	if p := decodeProblem(t, hdr, body); st != 403 || p.EndReason != "budget" {
		t.Errorf("read after the budget: %d %+v", st, p)
	}
}

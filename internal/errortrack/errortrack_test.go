package errortrack

import (
	"context"
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"
)

func TestCleanURL(t *testing.T) {
	tests := []struct{ in, want string }{
		{"https://bob:pw@app.example/a?token=t&x=1#frag", "https://app.example/a?token=[redacted]&x=1"},
		{"https://app.example/cb?code=c&state=s&X-Amz-Signature=z&page=2", "https://app.example/cb?code=[redacted]&state=[redacted]&X-Amz-Signature=[redacted]&page=2"},
		{"https://app.example/a?client_secret=s&apiKey=k&jwt=j&flag", "https://app.example/a?client_secret=[redacted]&apiKey=[redacted]&jwt=[redacted]&flag"},
		{"http://localhost:8080/x", "http://localhost:8080/x"},
	}
	for _, tt := range tests {
		if got, err := CleanURL(tt.in); err != nil || got != tt.want {
			t.Errorf("CleanURL(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
	for _, bad := range []string{"/relative", "javascript:alert(1)", "ftp://x.example/", "https://", "%zz"} {
		if _, err := CleanURL(bad); err == nil {
			t.Errorf("CleanURL(%q) accepted", bad)
		}
	}
}

func TestFingerprint(t *testing.T) {
	base := Event{Kind: KindError, Message: "Cannot read item 17 of undefined", Stack: "TypeError: x\n    at load (https://a.example/app.js?v=1:10:5)\n    at main"}
	same := []Event{
		{Kind: KindError, Message: "Cannot read item 42 of  undefined", Stack: "TypeError: x\n    at load (https://a.example/app.js?v=2:10:5)"},
		{Kind: KindError, Message: "Cannot read item 3f2a9c1e of undefined", Stack: "at load (https://a.example/app.js:10:5)"},
	}
	differ := []Event{
		{Kind: KindError, Message: "Cannot write item 17 of undefined", Stack: base.Stack},
		{Kind: KindError, Message: base.Message, Stack: "at save (https://a.example/app.js:10:5)"},
		{Kind: KindRejection, Message: base.Message, Stack: base.Stack},
	}
	fp := Fingerprint(base)
	for _, e := range same {
		if Fingerprint(e) != fp {
			t.Errorf("%+v: different group from %+v", e, base)
		}
	}
	for _, e := range differ {
		if Fingerprint(e) == fp {
			t.Errorf("%+v: same group as %+v", e, base)
		}
	}
	h1 := Event{Kind: KindHTTP, Message: "GET failed", URL: "https://api.example/items/1?x=1", Status: 502}
	h2 := Event{Kind: KindHTTP, Message: "GET failed", URL: "https://api.example/items/2", Status: 502}
	h3 := Event{Kind: KindHTTP, Message: "GET failed", URL: "https://api.example/items/2", Status: 503}
	if Fingerprint(h1) != Fingerprint(h2) || Fingerprint(h2) == Fingerprint(h3) {
		t.Error("http events group by path with ids blanked, and by status")
	}
}

func TestTopFrame(t *testing.T) {
	tests := []struct{ stack, want string }{
		{"TypeError: a\n    at f (https://x.example/a.js?v=9:1:2)\n    at g", "at f (https://x.example/a.js:1:2)"},
		{"f@https://x.example/a.js:3:4\ng@https://x.example/b.js:1:1", "f@https://x.example/a.js:3:4"},
		{"just a message", ""},
	}
	for _, tt := range tests {
		if got := TopFrame(tt.stack); got != tt.want {
			t.Errorf("TopFrame(%q) = %q, want %q", tt.stack, got, tt.want)
		}
	}
}

// memStore records what the service asks of a Store.
type memStore struct {
	reserved int
	hits     []Hit
}

func (m *memStore) Reserve(_ context.Context, _ string, n, limit int, _ time.Duration, _ time.Time) (bool, time.Duration, error) {
	if m.reserved+n > limit {
		return false, time.Second, nil
	}
	m.reserved += n
	return true, 0, nil
}

func (m *memStore) Record(_ context.Context, _ string, hits []Hit, _ time.Time, _ Retention) error {
	m.hits = append(m.hits, hits...)
	return nil
}

func (m *memStore) Groups(context.Context, string, string, int) (Page, error) { return Page{}, nil }

func TestTrackingID(t *testing.T) {
	day := time.Date(2026, 12, 4, 23, 59, 0, 0, time.UTC)
	s, err := New(&memStore{}, Options{Key: []byte("0123456789abcdef0123")})
	if err != nil {
		t.Fatal(err)
	}
	id := s.TrackingID("t1", "acc-1", day)
	if len(id) != 24 || strings.Contains(id, "acc-1") {
		t.Errorf("id %q", id)
	}
	if s.TrackingID("t1", "acc-1", day.Add(-23*time.Hour)) != id {
		t.Error("same UTC day, different id")
	}
	for name, other := range map[string]string{
		"next day":     s.TrackingID("t1", "acc-1", day.Add(2*time.Minute)),
		"other tenant": s.TrackingID("t2", "acc-1", day),
		"other user":   s.TrackingID("t1", "acc-2", day),
		// The separator keeps ("t1a", "cc-1") from colliding with ("t1", "acc-1").
		"shifted": s.TrackingID("t1a", "cc-1", day),
	} {
		if other == id {
			t.Errorf("%s: same id", name)
		}
	}
	s2, _ := New(&memStore{}, Options{Key: []byte("another-key-0123456789")})
	if s2.TrackingID("t1", "acc-1", day) == id {
		t.Error("the id does not depend on the key")
	}
	if s.TrackingID("t1", "", day) != "" {
		t.Error("no user, no id")
	}
	if _, err := New(&memStore{}, Options{Key: []byte("short")}); err == nil {
		t.Error("short key accepted")
	}
}

func TestAcceptRateLimited(t *testing.T) {
	st := &memStore{}
	s, _ := New(st, Options{Key: []byte("0123456789abcdef"), PerWindow: 3})
	ev := []Event{{Kind: KindError, Message: "a"}, {Kind: KindError, Message: "b"}}
	if n, err := s.Accept(context.Background(), "t", "u", ev); n != 2 || err != nil {
		t.Fatalf("first: %d %v", n, err)
	}
	var rl *RateLimitedError
	if n, err := s.Accept(context.Background(), "t", "u", ev); n != 0 || !errors.As(err, &rl) {
		t.Fatalf("over budget: %d %v", n, err)
	}
	if len(st.hits) != 2 {
		t.Errorf("hits %d: a refused batch is not recorded", len(st.hits))
	}
}

func TestParseBatchScrubs(t *testing.T) {
	evs, err := ParseBatch([]byte(`{"events":[{"kind":"error","message":"mail ann@corp.example key ghp_0123456789abcdefghijABCDEFGHIJ012345",
		"url":"https://u:p@a.example/x?password=pw#t","requestId":"r-1","time":"2026-12-04T10:00:00Z"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	e := evs[0]
	if strings.Contains(e.Message, "ann@corp.example") || strings.Contains(e.Message, "ghp_") || e.URL != "https://a.example/x?password=[redacted]" {
		t.Errorf("not scrubbed: %+v", e)
	}
}

// FuzzParseBatch: any input is either refused with a ValidationError or SyntaxError, or
// gives events within the limits whose URLs are clean.
func FuzzParseBatch(f *testing.F) {
	f.Add([]byte(`{"events":[{"kind":"http","status":500,"message":"m","url":"https://a.example/?token=x"}]}`))
	f.Add([]byte(`{"events":[{"kind":"error","message":"m","stack":"at f (x:1:1)","time":"2026-01-01T00:00:00Z"}]}`))
	f.Add([]byte(`{"events":[1,{}],"x":null}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		evs, err := ParseBatch(body)
		if err != nil {
			var ve *ValidationError
			var se *SyntaxError
			if !errors.As(err, &ve) && !errors.As(err, &se) {
				t.Fatalf("unexpected error type %T", err)
			}
			return
		}
		if len(evs) == 0 || len(evs) > MaxEvents {
			t.Fatalf("%d events", len(evs))
		}
		for _, e := range evs {
			if u, err := url.Parse(e.URL); e.URL != "" && (err != nil || u.User != nil || u.Fragment != "") {
				t.Errorf("URL not clean: %q", e.URL)
			}
			_ = Fingerprint(e)
		}
	})
}

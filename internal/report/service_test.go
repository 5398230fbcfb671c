package report

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/supportbridge/supportbridge/internal/usage"
)

// memQueue is a Queue in memory: it records submissions and replays idempotency keys.
type memQueue struct {
	subs     []Submission
	byKey    map[string]string
	states   map[string]State
	rateErr  error
	checked  []string
	enqueErr error
}

func (q *memQueue) Enqueue(_ context.Context, s Submission, _ Limits) (string, bool, error) {
	if q.enqueErr != nil {
		return "", false, q.enqueErr
	}
	if id, ok := q.byKey[s.IdempotencyKey]; ok && s.IdempotencyKey != "" {
		return id, true, nil
	}
	q.subs = append(q.subs, s)
	if q.byKey == nil {
		q.byKey, q.states = map[string]string{}, map[string]State{}
	}
	q.byKey[s.IdempotencyKey] = s.Report.ID
	q.states[s.Report.ID] = StateQueued
	return s.Report.ID, false, nil
}

func (q *memQueue) CheckRate(_ context.Context, tenantKey, accountID, key string, _ Limits) error {
	q.checked = append(q.checked, tenantKey+"/"+accountID+"/"+key)
	return q.rateErr
}

func (q *memQueue) Status(_ context.Context, _ string, id string) (Status, error) {
	st, ok := q.states[id]
	if !ok {
		return Status{}, ErrNotFound
	}
	return Status{ID: id, State: st}, nil
}

type secretOf map[string]string

func (s secretOf) SharedSecret(_ context.Context, key string) (string, error) { return s[key], nil }

func newTestService(q *memQueue) *Service {
	return NewService(ServiceOptions{
		Queue: q, Secrets: secretOf{"t1": canary},
		Now: func() time.Time { return testNow },
	})
}

func TestSubmitMintsIdentityAndScrubsTheTenantSecret(t *testing.T) {
	q := &memQueue{}
	svc := newTestService(q)
	who := Submitter{TenantKey: "t1", AccountID: "acc-1", UserAgent: chromeWindows, IdempotencyKey: "k1"}
	in := Input{Summary: "Export fails " + canary, Email: "claims@other.example"}
	acc, err := svc.Submit(context.Background(), who, in, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(q.subs) != 1 {
		t.Fatalf("%d submissions, want 1", len(q.subs))
	}
	sub := q.subs[0]
	r := sub.Report
	if acc.ID != r.ID || acc.State != StateQueued || acc.Replayed {
		t.Errorf("accepted %+v for report %s", acc, r.ID)
	}
	if r.ID == "" || !strings.HasPrefix(r.Marker, "sbm") || r.TenantKey != "t1" || r.AccountID != "acc-1" {
		t.Errorf("identity of the report: %+v", r)
	}
	if strings.Contains(r.Summary, canary) {
		t.Errorf("summary keeps the tenant's secret: %q", r.Summary)
	}
	// The typed address is a hint; intake decides nothing about who the reporter is.
	if r.EmailHint != "claims@other.example" || r.Email != "" || r.EmailSource != "" {
		t.Errorf("email hint %q email %q source %q", r.EmailHint, r.Email, r.EmailSource)
	}
	if sub.Subject != "acc-1" {
		t.Errorf("rate-limit subject %q, want the verified accountId", sub.Subject)
	}
	if sub.IdempotencyKey != "k1" || sub.BodyHash != BodyHash(in, nil) {
		t.Errorf("idempotency %q hash %q", sub.IdempotencyKey, sub.BodyHash)
	}
	if !r.ReceivedAt.Equal(testNow) || r.Environment.Browser != "Chrome" {
		t.Errorf("received %v browser %q", r.ReceivedAt, r.Environment.Browser)
	}

	// The same key again is a replay of the first report, which says where that one is.
	q.states[r.ID] = StateDelivered
	again, err := svc.Submit(context.Background(), who, in, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !again.Replayed || again.ID != r.ID || again.State != StateDelivered {
		t.Errorf("replay answered %+v", again)
	}
	if len(q.subs) != 1 {
		t.Errorf("a replay stored another report")
	}
}

func TestSubmitRefusesCallsWithoutAUser(t *testing.T) {
	q := &memQueue{}
	svc := newTestService(q)
	who := Submitter{TenantKey: "t1"}
	if err := svc.Admit(context.Background(), who); !errors.Is(err, ErrNoUser) {
		t.Errorf("Admit: %v, want ErrNoUser", err)
	}
	if _, err := svc.Submit(context.Background(), who, Input{Summary: "s"}, nil); !errors.Is(err, ErrNoUser) {
		t.Errorf("Submit: %v, want ErrNoUser", err)
	}
	if len(q.subs)+len(q.checked) != 0 {
		t.Errorf("the store was asked: %d submissions, %d checks", len(q.subs), len(q.checked))
	}
}

func TestAdmitAsksTheRateLimitsOfTheSubmitter(t *testing.T) {
	limited := &RateLimitedError{Scope: "user", RetryAfter: time.Second}
	q := &memQueue{rateErr: limited}
	svc := newTestService(q)
	err := svc.Admit(context.Background(), Submitter{TenantKey: "t1", AccountID: "acc-1", IdempotencyKey: "k"})
	if !errors.Is(err, limited) {
		t.Errorf("Admit: %v, want the store's refusal", err)
	}
	if want := []string{"t1/acc-1/k"}; len(q.checked) != 1 || q.checked[0] != want[0] {
		t.Errorf("checked %v, want %v", q.checked, want)
	}
}

func TestSubmitStoresNothingWhenTheReportIsInvalid(t *testing.T) {
	q := &memQueue{}
	svc := newTestService(q)
	in := Input{Summary: "s", RecentErrors: []RecentErrorInput{{Message: "m", OccurredAt: "soon"}}}
	_, err := svc.Submit(context.Background(), Submitter{TenantKey: "t1", AccountID: "a"}, in, nil)
	var ve *ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("error %v, want a validation error", err)
	}
	if len(q.subs) != 0 {
		t.Errorf("an invalid report was stored")
	}
}

type countUsage struct{ n map[usage.Kind]int64 }

func (c *countUsage) Count(_ context.Context, tenant string, kind usage.Kind, n int64) {
	if c.n == nil {
		c.n = map[usage.Kind]int64{}
	}
	c.n[kind] += n
}

// A filed report is counted once, anonymously; its replay is not counted again.
func TestSubmitCountsFiledReportsOnce(t *testing.T) {
	q := &memQueue{}
	u := &countUsage{}
	svc := NewService(ServiceOptions{Queue: q, Usage: u})
	who := Submitter{TenantKey: "t1", AccountID: "acc-1", IdempotencyKey: "k"}
	for range 2 {
		if _, err := svc.Submit(context.Background(), who, Input{Summary: "s"}, nil); err != nil {
			t.Fatal(err)
		}
	}
	if got := u.n[usage.ReportsFiled]; got != 1 {
		t.Errorf("reports_filed = %d, want 1", got)
	}
}

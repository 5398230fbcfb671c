package redisstore

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/supportbridge/supportbridge/internal/errortrack"
	"github.com/supportbridge/supportbridge/internal/redisstore/redistest"
)

func TestErrorsRecordBoundsAndPages(t *testing.T) {
	ctx := context.Background()
	rdb := redistest.Client(t)
	st := NewErrors(rdb)
	now := time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)
	ret := errortrack.Retention{TTL: 14 * 24 * time.Hour, MaxTrackingIDs: 3, MaxGroups: 5}

	// Seven groups, three of them hit in the same millisecond, and one group hit by five ids.
	var hits []errortrack.Hit
	for i := range 5 {
		hits = append(hits, errortrack.Hit{Fingerprint: "busy", Kind: errortrack.KindError, Message: fmt.Sprint("m", i), TrackingID: fmt.Sprint("id", i)})
	}
	if err := st.Record(ctx, "t1", hits, now, ret); err != nil {
		t.Fatal(err)
	}
	for i := range 6 {
		at := now.Add(time.Duration(min(i, 3)) * time.Second)
		if err := st.Record(ctx, "t1", []errortrack.Hit{{Fingerprint: fmt.Sprint("g", i), Kind: errortrack.KindError, Message: "x"}}, at, ret); err != nil {
			t.Fatal(err)
		}
	}
	var walked []string
	cursor := ""
	for range 10 {
		p, err := st.Groups(ctx, "t1", cursor, 2)
		if err != nil {
			t.Fatal(err)
		}
		for _, g := range p.Groups {
			walked = append(walked, g.Fingerprint)
		}
		if cursor = p.NextCursor; cursor == "" {
			break
		}
	}
	// The index keeps the five most recent; g3, g4 and g5 tie at +3 s.
	if got, want := strings.Join(walked, ","), "g5,g4,g3,g2,g1"; got != want {
		t.Errorf("walk %s, want %s", got, want)
	}

	// After a restart or SCRIPT FLUSH the pipeline's EVALSHA fails; Record loads the script.
	if err := rdb.ScriptFlush(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	if err := st.Record(ctx, "t1", hits[:1], now.Add(time.Minute), ret); err != nil {
		t.Fatal(err)
	}
	p, _ := st.Groups(ctx, "t1", "", 1)
	g := p.Groups[0]
	if g.Fingerprint != "busy" || g.Count != 6 || len(g.TrackingIDs) != 3 || !g.TrackingIDsCapped || g.Message != "m0" ||
		!g.FirstSeen.Equal(now) || !g.LastSeen.Equal(now.Add(time.Minute)) {
		t.Errorf("busy group: %+v", g)
	}
	for _, k := range rdb.Keys(ctx, "*").Val() {
		if !strings.HasPrefix(k, "sb:"+tenantTag("t1")+":errors:") {
			t.Errorf("key %s outside the tenant's tag", k)
		}
	}
	if _, err := st.Groups(ctx, "t1", "bm90LWEtY3Vyc29y", 2); err != errortrack.ErrBadCursor {
		t.Errorf("bad cursor: %v", err)
	}
}

func TestErrorsReserveWindow(t *testing.T) {
	ctx := context.Background()
	st := NewErrors(redistest.Client(t))
	now := time.Date(2026, 12, 4, 10, 0, 45, 0, time.UTC)
	if ok, _, err := st.Reserve(ctx, "t1", 10, 10, time.Minute, now); !ok || err != nil {
		t.Fatalf("first: %v %v", ok, err)
	}
	ok, wait, err := st.Reserve(ctx, "t1", 1, 10, time.Minute, now)
	if ok || err != nil || wait != 15*time.Second {
		t.Errorf("over: %v %v %v", ok, wait, err)
	}
	if ok, _, _ := st.Reserve(ctx, "t2", 1, 10, time.Minute, now); !ok {
		t.Error("another tenant shares the budget")
	}
	if ok, _, _ := st.Reserve(ctx, "t1", 10, 10, time.Minute, now.Add(15*time.Second)); !ok {
		t.Error("the next window is refused")
	}
}

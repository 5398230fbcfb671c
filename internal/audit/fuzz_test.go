package audit_test

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/supportbridge/supportbridge/internal/audit"
)

// FuzzVerifyStoredEntry puts arbitrary bytes where a stored entry would be, standing in for
// whatever someone with write access to Redis leaves there. Verify must never panic, and may
// accept the bytes only if they are exactly the canonical encoding of a valid link: JSON
// that some other parser could read differently must never verify.
func FuzzVerifyStoredEntry(f *testing.F) {
	seed := audit.Entry{Seq: 1, Tenant: "t", Actor: audit.Actor{Kind: audit.ActorAgent, Name: "Ada"}, Action: audit.ActionLogsRead,
		Details: map[string]string{"bytes": "1"}, PrevHash: audit.GenesisHash}
	f.Add(audit.Canonical(seed))
	f.Add([]byte(`{"v":1,"seq":1,"seq":2}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		store := newMemStore()
		// The record claims a correct hash for whatever bytes it holds, so only the content
		// checks stand between these bytes and a verified chain.
		hash := audit.ChainHash(testKey, audit.GenesisHash, data)
		store.recs["t"] = []audit.Record{{Seq: 1, Hash: hash, Data: data}}
		store.heads["t"] = audit.Head{Seq: 1, Hash: hash}
		l := audit.New(store, testKey, nil)
		res, err := l.Verify(context.Background(), "t")
		if err != nil {
			t.Fatalf("Verify: %v", err)
		}
		if !res.OK {
			return
		}
		var m map[string]any
		if json.Unmarshal(data, &m) != nil {
			t.Fatalf("verified bytes encoding/json cannot read: %q", data)
		}
		es, err := l.List(context.Background(), "t", audit.Filter{})
		if err != nil || len(es) != 1 {
			t.Fatalf("List after a good Verify = %v, %v", es, err)
		}
		e := es[0]
		e.Hash = ""
		if got := audit.Canonical(e); string(got) != string(data) {
			t.Fatalf("verified bytes are not canonical:\n got %q\nwant %q", data, got)
		}
	})
}

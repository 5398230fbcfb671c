package audit

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"
)

// canonicalVersion names the encoding below. A later change to the encoding gets a new
// version, and entries keep the version they were hashed with.
// Version 2 added the actor's accountId and keyed the chain with an HMAC; version 1 entries
// (plain SHA-256 chain) are not accepted, because anyone with Redis access could forge them.
const canonicalVersion = 2

// canonicalEntry fixes the field order of the encoding: encoding/json writes struct fields
// in declaration order and map keys sorted, so one Entry has exactly one encoding. Hash is
// absent because it is computed over this.
type canonicalEntry struct {
	V         int               `json:"v"`
	Seq       int64             `json:"seq"`
	Time      string            `json:"time"`
	Tenant    string            `json:"tenant"`
	Ticket    string            `json:"ticket"`
	Actor     canonicalActor    `json:"actor"`
	Action    string            `json:"action"`
	RequestID string            `json:"requestId"`
	GrantID   string            `json:"grantId"`
	Details   map[string]string `json:"details,omitempty"`
	PrevHash  string            `json:"prevHash"`
}

type canonicalActor struct {
	Kind      ActorKind `json:"kind"`
	Name      string    `json:"name"`
	Email     string    `json:"email"`
	AccountID string    `json:"accountId"`
}

// Canonical is the deterministic encoding of e without its Hash: compact JSON with a fixed
// field order, sorted detail keys and the time in RFC 3339 UTC with nanoseconds. It is what
// ChainHash covers and what a Store keeps.
func Canonical(e Entry) []byte {
	b, err := json.Marshal(canonicalEntry{
		V:         canonicalVersion,
		Seq:       e.Seq,
		Time:      e.Time.UTC().Format(time.RFC3339Nano),
		Tenant:    e.Tenant,
		Ticket:    e.Ticket,
		Actor:     canonicalActor{Kind: e.Actor.Kind, Name: e.Actor.Name, Email: e.Actor.Email, AccountID: e.Actor.AccountID},
		Action:    e.Action,
		RequestID: e.RequestID,
		GrantID:   e.GrantID,
		Details:   e.Details,
		PrevHash:  e.PrevHash,
	})
	if err != nil {
		// Only strings, integers and a string map: encoding cannot fail.
		panic(fmt.Sprintf("audit: encode canonical entry: %v", err))
	}
	return b
}

// decode reads a stored record back into an Entry. It insists that the bytes are exactly the
// canonical encoding of what they decode to, so that what a reader is shown is what was
// hashed: JSON with duplicate keys, extra fields or another layout is rejected, since another
// parser could read it differently.
func decode(r Record) (Entry, error) {
	var c canonicalEntry
	dec := json.NewDecoder(bytes.NewReader(r.Data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return Entry{}, fmt.Errorf("%w: undecodable", ErrCorrupt)
	}
	if c.V != canonicalVersion {
		return Entry{}, fmt.Errorf("%w: unknown encoding version %d", ErrCorrupt, c.V)
	}
	t, err := time.Parse(time.RFC3339Nano, c.Time)
	if err != nil {
		return Entry{}, fmt.Errorf("%w: bad time", ErrCorrupt)
	}
	e := Entry{
		Seq: c.Seq, Time: t.UTC(), Tenant: c.Tenant, Ticket: c.Ticket,
		Actor:  Actor{Kind: c.Actor.Kind, Name: c.Actor.Name, Email: c.Actor.Email, AccountID: c.Actor.AccountID},
		Action: c.Action, RequestID: c.RequestID, GrantID: c.GrantID,
		Details: c.Details, PrevHash: c.PrevHash, Hash: r.Hash,
	}
	if !bytes.Equal(Canonical(e), r.Data) {
		return Entry{}, fmt.Errorf("%w: not in canonical form", ErrCorrupt)
	}
	return e, nil
}

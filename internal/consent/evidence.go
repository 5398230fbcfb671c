package consent

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/supportbridge/supportbridge/internal/audit"
)

// Evidence is everything about consent on one ticket, for the evidence pack.
type Evidence struct {
	TicketKey string          `json:"ticketKey"`
	Tenant    string          `json:"tenant"`
	Requests  []AccessRequest `json:"requests"`
	Grants    []Grant         `json:"grants"`
	Accesses  []GrantAccess   `json:"accesses"`
	Audit     []audit.Entry   `json:"audit"`
	// ChainOK is the verdict: the tenant's keyed chain is intact, every decision, end and
	// read recorded in storage has its audit entry, and every chain head posted on the ticket
	// is in the chain. A ticket's entries are only trustworthy if all three hold.
	ChainOK bool `json:"chainOk"`
	// ChainBroken is the first reason ChainOK is false.
	ChainBroken  string       `json:"chainBroken,omitempty"`
	Verification Verification `json:"verification"`
}

// Verification is how ChainOK was reached, check by check.
type Verification struct {
	// ChainIntact: every entry's keyed hash and link check out and the head matches.
	ChainIntact  bool   `json:"chainIntact"`
	ChainEntries int    `json:"chainEntries"`
	ChainHead    string `json:"chainHead"`
	// RecordsMatch: each request, grant and read in storage has the audit entry it must
	// have; Mismatches names those that do not (deleted entries, a rewritten store).
	RecordsMatch bool     `json:"recordsMatch"`
	Mismatches   []string `json:"mismatches"`
	// TicketHeads are the chain heads our comments on the ticket carried, each with whether
	// it is still in the chain (a missing one means entries were removed after it was
	// posted). TicketHeadsChecked is false when the ticket's comments could not be read.
	TicketHeadsChecked bool         `json:"ticketHeadsChecked"`
	TicketHeads        []TicketHead `json:"ticketHeads"`
}

// TicketHead is one chain head found in a ticket comment.
type TicketHead struct {
	Head    string `json:"head"`
	InChain bool   `json:"inChain"`
}

// GrantAccess is an Access with the grant it was made under.
type GrantAccess struct {
	GrantID string `json:"grantId"`
	Access
}

var headRE = regexp.MustCompile(regexp.QuoteMeta(AuditHeadPrefix) + `([0-9a-f]{16})\b`)

// Evidence returns everything about consent on a ticket: requests, grants, reads and the
// ticket's audit entries, with the verdict on them. A ticket without any consent records is
// ErrNotFound. It reads the ticket's comments from JSM, the one witness outside our storage.
func (s *Service) Evidence(ctx context.Context, ticketKey string) (Evidence, error) {
	tenant, err := s.o.Store.TicketTenant(ctx, ticketKey)
	if err != nil {
		return Evidence{}, fmt.Errorf("evidence: %w", err)
	}
	ev := Evidence{TicketKey: ticketKey, Tenant: tenant, Accesses: []GrantAccess{}}
	reqs, err := s.o.Store.TicketRequests(ctx, tenant, ticketKey)
	if err != nil {
		return Evidence{}, fmt.Errorf("evidence: %w", err)
	}
	grants, err := s.o.Store.TicketGrants(ctx, tenant, ticketKey)
	if err != nil {
		return Evidence{}, fmt.Errorf("evidence: %w", err)
	}
	if ev.Requests, err = s.ListRequests(ctx, ticketKey); err != nil {
		return Evidence{}, err
	}
	if ev.Grants, err = s.ListGrants(ctx, ticketKey); err != nil {
		return Evidence{}, err
	}
	reads := map[string]int{}
	for _, g := range ev.Grants {
		as, err := s.o.Store.Accesses(ctx, tenant, g.ID)
		if err != nil {
			return Evidence{}, fmt.Errorf("evidence: %w", err)
		}
		reads[g.ID] = len(as)
		for _, a := range as {
			ev.Accesses = append(ev.Accesses, GrantAccess{GrantID: g.ID, Access: a})
		}
	}
	all, err := s.o.Audit.List(ctx, tenant, audit.Filter{})
	if errors.Is(err, audit.ErrCorrupt) {
		all = nil // Verify below says where the chain broke
	} else if err != nil {
		return Evidence{}, fmt.Errorf("evidence: %w", err)
	}
	ev.Audit = []audit.Entry{}
	for _, e := range all {
		if e.Ticket == ticketKey {
			ev.Audit = append(ev.Audit, e)
		}
	}
	res, err := s.o.Audit.Verify(ctx, tenant)
	if err != nil {
		return Evidence{}, fmt.Errorf("evidence: %w", err)
	}
	v := &ev.Verification
	v.ChainIntact, v.ChainEntries = res.OK, res.Entries
	v.ChainHead = audit.GenesisHash
	if n := len(all); n > 0 {
		v.ChainHead = all[n-1].Hash
	}
	v.Mismatches = crossCheck(reqs, grants, reads, ev.Audit)
	v.RecordsMatch = len(v.Mismatches) == 0
	v.TicketHeads = []TicketHead{}
	comments, cerr := s.o.Tickets.Comments(ctx, ticketKey)
	if cerr == nil {
		v.TicketHeadsChecked = true
		for _, c := range comments {
			for _, m := range headRE.FindAllStringSubmatch(c, -1) {
				v.TicketHeads = append(v.TicketHeads, TicketHead{Head: m[1], InChain: inChain(m[1], all)})
			}
		}
	} else {
		s.o.Logger.Warn("evidence_ticket_comments_unavailable", "error", cerr)
	}

	switch {
	case !res.OK:
		ev.ChainBroken = fmt.Sprintf("audit chain broken at entry %d: %s", res.FirstBroken, res.Reason)
	case !v.RecordsMatch:
		ev.ChainBroken = "stored consent records have no matching audit entry: " + v.Mismatches[0]
	case !v.TicketHeadsChecked:
		ev.ChainBroken = "the ticket's comments could not be read to check the audit heads posted there; retry"
	default:
		for _, h := range v.TicketHeads {
			if !h.InChain {
				ev.ChainBroken = "audit head " + h.Head + " posted on the ticket is not in the chain: entries were removed or rewritten"
				break
			}
		}
	}
	ev.ChainOK = ev.ChainBroken == ""
	return ev, nil
}

// inChain reports whether head (16 hex digits) begins the hash of an entry of the chain, or
// the genesis hash (a comment posted before the first entry).
func inChain(head string, entries []audit.Entry) bool {
	if strings.HasPrefix(audit.GenesisHash, head) {
		return true
	}
	for _, e := range entries {
		if strings.HasPrefix(e.Hash, head) {
			return true
		}
	}
	return false
}

// crossCheck lists the records whose audit entries are missing. An entry still owed (the
// record's notice not yet audited) is not missing: the scheduler will write it.
func crossCheck(reqs []RequestRecord, grants []GrantRecord, reads map[string]int, entries []audit.Entry) []string {
	type key struct{ id, action string }
	have := map[key]int{}
	for _, e := range entries {
		if e.RequestID != "" {
			have[key{e.RequestID, e.Action}]++
		}
		if e.GrantID != "" {
			have[key{e.GrantID, e.Action}]++
		}
	}
	owed := func(notice string, audited bool) string {
		if audited {
			return ""
		}
		return notice
	}
	out := []string{}
	for _, rec := range reqs {
		r := rec.Request
		pending := owed(rec.Notice, rec.NoticeAudited)
		asked := audit.ActionAccessRequested
		if r.Reconfirms != "" {
			asked = "reconfirmation_requested"
		}
		if pending != noticeRequested && pending != noticeReconfirmRequested &&
			r.CancelReason != ReasonNotifyFailed && have[key{r.ID, asked}] == 0 {
			out = append(out, "request "+r.ID+": no entry for the request")
		}
		want := map[string]string{
			RequestApproved: audit.ActionApproved, RequestDenied: audit.ActionDenied,
			RequestCancelled: audit.ActionRequestCancelled, RequestExpired: audit.ActionRequestExpired,
		}[r.Status]
		if r.Status == RequestApproved && r.Reconfirms != "" {
			want = "reconfirmed"
		}
		if want != "" && pending == "" && have[key{r.ID, want}] == 0 {
			out = append(out, "request "+r.ID+": no entry for its "+r.Status+" decision")
		}
	}
	for _, rec := range grants {
		g := rec.Grant
		if g.Status != GrantActive && owed(rec.Notice, rec.NoticeAudited) == "" {
			ended := false
			for k, n := range have {
				if k.id == g.ID && n > 0 && k.action != audit.ActionLogsRead && k.action != audit.ActionApproved &&
					k.action != "reconfirmed" && k.action != audit.ActionAccessRequested {
					ended = true
				}
			}
			if !ended {
				out = append(out, "grant "+g.ID+": no entry for its end")
			}
		}
		if n := reads[g.ID]; have[key{g.ID, audit.ActionLogsRead}] < n {
			out = append(out, fmt.Sprintf("grant %s: %d reads recorded but fewer audit entries", g.ID, n))
		}
	}
	return out
}

package agentcli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
)

// evidencePack is the part of the evidence pack (api/evidence-pack.schema.json) that the
// local checks read.
type evidencePack struct {
	TicketKey string `json:"ticketKey"`
	Tenant    string `json:"tenant"`
	Requests  []struct {
		ID           string `json:"id"`
		Status       string `json:"status"`
		Reconfirms   string `json:"reconfirms"`
		CancelReason string `json:"cancelReason"`
	} `json:"requests"`
	Grants []struct {
		ID        string `json:"id"`
		Status    string `json:"status"`
		EndReason string `json:"endReason"`
	} `json:"grants"`
	Accesses []struct {
		GrantID string `json:"grantId"`
		Stream  string `json:"stream"`
		Lines   int64  `json:"lines"`
		Bytes   int64  `json:"bytes"`
		SHA256  string `json:"sha256"`
		End     string `json:"end"`
	} `json:"accesses"`
	Audit        []auditEntry `json:"audit"`
	ChainOK      bool         `json:"chainOk"`
	ChainBroken  string       `json:"chainBroken"`
	Verification *struct {
		ChainIntact        bool     `json:"chainIntact"`
		ChainEntries       int      `json:"chainEntries"`
		ChainHead          string   `json:"chainHead"`
		RecordsMatch       bool     `json:"recordsMatch"`
		Mismatches         []string `json:"mismatches"`
		TicketHeadsChecked bool     `json:"ticketHeadsChecked"`
		TicketHeads        []struct {
			Head    string `json:"head"`
			InChain bool   `json:"inChain"`
		} `json:"ticketHeads"`
	} `json:"verification"`
}

type auditEntry struct {
	Seq       int64             `json:"seq"`
	Action    string            `json:"action"`
	RequestID string            `json:"requestId"`
	GrantID   string            `json:"grantId"`
	Details   map[string]string `json:"details"`
	PrevHash  string            `json:"prevHash"`
	Hash      string            `json:"hash"`
}

func cmdEvidence(ctx context.Context, e *env, args []string) error {
	fs, c := e.newFlagSet("evidence --ticket KEY [--verify] [-o FILE]",
		`  supportbridge agent evidence --ticket SUP-42 --verify
  supportbridge agent evidence --ticket SUP-42 -o SUP-42-evidence.json

--verify checks what can be checked without the service's key and exits 1 if anything fails.
`)
	ticket := fs.String("ticket", "", "the ticket `KEY` (required)")
	verify := fs.Bool("verify", false, "check the pack locally; exit 1 if a check fails")
	out := fs.String("o", "", "also save the pack's JSON to `FILE` (mode 0600)")
	if _, err := e.parse(fs, c, args, 0); err != nil {
		return err
	}
	if *ticket == "" {
		return usagef("--ticket is required")
	}
	b, err := e.call(ctx, http.MethodGet, "/api/v1/tickets/"+url.PathEscape(*ticket)+"/evidence", nil, nil)
	if err != nil {
		return err
	}
	if *out != "" {
		if err := writeFileAtomic(*out, b); err != nil {
			return err
		}
	}
	// With --json the pack is the output and the verdict goes to stderr, so a script can
	// keep the one and still see the other.
	report := e.stdout
	if e.json {
		e.printJSON(b)
		report = e.stderr
	}
	var pack evidencePack
	if err := decode(b, &pack); err != nil {
		return err
	}
	if !e.json {
		writeEvidenceSummary(report, &pack)
	}
	if !*verify {
		return nil
	}
	checks := verifyPack(&pack)
	failed := writeChecks(report, checks)
	if failed > 0 {
		return fmt.Errorf("%d of %d checks failed", failed, len(checks))
	}
	return nil
}

func writeEvidenceSummary(w io.Writer, p *evidencePack) {
	fmt.Fprintf(w, "ticket %s (tenant %s): %d requests, %d grants, %d reads, %d audit entries\n",
		p.TicketKey, p.Tenant, len(p.Requests), len(p.Grants), len(p.Accesses), len(p.Audit))
	if p.ChainOK {
		fmt.Fprintln(w, "service verdict: chain ok")
	} else {
		fmt.Fprintf(w, "service verdict: NOT ok: %s\n", p.ChainBroken)
	}
}

// check is one local verification and its outcome.
type check struct {
	name     string
	problems []string
	note     string
}

// writeChecks prints each check and returns how many failed.
func writeChecks(w io.Writer, cs []check) int {
	failed := 0
	fmt.Fprintln(w, "\nlocal checks:")
	for _, c := range cs {
		status := "ok  "
		if len(c.problems) > 0 {
			status = "FAIL"
			failed++
		}
		fmt.Fprintf(w, "  %s %s", status, c.name)
		if c.note != "" {
			fmt.Fprintf(w, " (%s)", c.note)
		}
		fmt.Fprintln(w)
		for _, p := range c.problems {
			fmt.Fprintf(w, "       - %s\n", p)
		}
	}
	fmt.Fprintln(w, "\nThe chain's hashes are an HMAC keyed by the service; they cannot be recomputed here, so")
	fmt.Fprintln(w, "chain integrity itself is the service's verdict above. The local checks catch a pack that")
	fmt.Fprintln(w, "contradicts itself.")
	if failed == 0 {
		fmt.Fprintln(w, "result: all checks passed")
	} else {
		fmt.Fprintf(w, "result: %d check(s) FAILED\n", failed)
	}
	return failed
}

// verifyPack checks what an agent can check without the service's key. The pack holds only
// the ticket's entries of the tenant's chain, so sequence numbers may skip (other tickets'
// entries) and prevHash links are checked only where two returned entries are neighbours.
func verifyPack(p *evidencePack) []check {
	var cs []check

	seq := check{name: "audit sequence numbers increase without repeats"}
	links := check{name: "prevHash links between neighbouring entries"}
	linked, gaps := 0, 0
	for i, a := range p.Audit {
		if a.Seq < 1 {
			seq.problems = append(seq.problems, fmt.Sprintf("entry %d has seq %d", i, a.Seq))
		}
		if !isHex64(a.Hash) || !isHex64(a.PrevHash) {
			links.problems = append(links.problems, fmt.Sprintf("entry %d: hash or prevHash is not 64 hex digits", a.Seq))
		}
		if i == 0 {
			continue
		}
		prev := p.Audit[i-1]
		switch {
		case a.Seq <= prev.Seq:
			seq.problems = append(seq.problems, fmt.Sprintf("entry %d follows entry %d", a.Seq, prev.Seq))
		case a.Seq == prev.Seq+1:
			linked++
			if a.PrevHash != prev.Hash {
				links.problems = append(links.problems, fmt.Sprintf("entry %d's prevHash is not entry %d's hash", a.Seq, prev.Seq))
			}
		default:
			gaps++
		}
	}
	if n := len(p.Audit); n > 0 {
		seq.note = fmt.Sprintf("seq %d..%d, %d entries", p.Audit[0].Seq, p.Audit[n-1].Seq, n)
		if gaps > 0 {
			seq.note += fmt.Sprintf(", %d gaps where other tickets' entries are", gaps)
		}
	}
	links.note = fmt.Sprintf("%d links checked", linked)
	cs = append(cs, seq, links)

	// Every read has its own logs_read entry with the same SHA-256; an entry serves one read.
	reads := check{name: "every read has a logs_read entry with the same sha256"}
	used := make([]bool, len(p.Audit))
	for _, a := range p.Accesses {
		found := false
		for i, e := range p.Audit {
			if !used[i] && e.Action == "logs_read" && e.GrantID == a.GrantID && e.Details["sha256"] == a.SHA256 {
				used[i], found = true, true
				break
			}
		}
		if !found {
			reads.problems = append(reads.problems, fmt.Sprintf("read of %s under %s (%d lines, sha256 %s) has no matching entry",
				a.Stream, a.GrantID, a.Lines, short(a.SHA256)))
		}
	}
	reads.note = fmt.Sprintf("%d reads", len(p.Accesses))
	cs = append(cs, reads)

	has := func(id string, actions ...string) bool {
		for _, e := range p.Audit {
			if (e.RequestID == id || e.GrantID == id) && slices.Contains(actions, e.Action) {
				return true
			}
		}
		return false
	}
	decisions := check{name: "every request, decision and grant end has an entry"}
	for _, r := range p.Requests {
		asked := "access_requested"
		if r.Reconfirms != "" {
			asked = "reconfirmation_requested"
		}
		// A request that could not be announced on the ticket was withdrawn before it
		// was ever recorded as asked.
		if r.CancelReason != "customer_not_notified" && !has(r.ID, asked) {
			decisions.problems = append(decisions.problems, "request "+r.ID+": no "+asked+" entry")
		}
		want := map[string][]string{
			"approved": {"approved", "reconfirmed"}, "denied": {"denied"},
			"cancelled": {"request_cancelled"}, "expired": {"request_expired"},
		}[r.Status]
		if want != nil && !has(r.ID, want...) {
			decisions.problems = append(decisions.problems, "request "+r.ID+": no entry for its "+r.Status+" decision")
		}
	}
	for _, g := range p.Grants {
		if g.Status == "active" {
			continue
		}
		if !has(g.ID, "revoked", "expired", "ticket_closed", "ticket_deleted", "tenant_uninstalled", "not_reconfirmed") {
			decisions.problems = append(decisions.problems, "grant "+g.ID+": no entry for its end ("+firstNonEmpty(g.EndReason, g.Status)+")")
		}
	}
	decisions.note = fmt.Sprintf("%d requests, %d grants", len(p.Requests), len(p.Grants))
	cs = append(cs, decisions)

	verdict := check{name: "the service reports the chain verified (chainOk, verification)"}
	if !p.ChainOK {
		verdict.problems = append(verdict.problems, "chainOk is false: "+firstNonEmpty(p.ChainBroken, "no reason given"))
	}
	if v := p.Verification; v == nil {
		verdict.problems = append(verdict.problems, "the pack has no verification section")
	} else {
		if !v.ChainIntact {
			verdict.problems = append(verdict.problems, "verification.chainIntact is false")
		}
		if !v.RecordsMatch {
			verdict.problems = append(verdict.problems, "verification.recordsMatch is false: "+strings.Join(v.Mismatches, "; "))
		}
		if !v.TicketHeadsChecked {
			verdict.problems = append(verdict.problems, "the ticket's comments could not be read to check the heads posted there")
		}
		for _, h := range v.TicketHeads {
			if !h.InChain {
				verdict.problems = append(verdict.problems, "head "+h.Head+" posted on the ticket is not in the chain")
			}
		}
		if p.ChainOK && (!v.ChainIntact || !v.RecordsMatch) {
			verdict.problems = append(verdict.problems, "chainOk contradicts the verification section")
		}
		verdict.note = fmt.Sprintf("%d entries in the tenant's chain, head %s, %d ticket heads", v.ChainEntries, short(v.ChainHead), len(v.TicketHeads))
	}
	cs = append(cs, verdict)
	return cs
}

func isHex64(s string) bool {
	if len(s) != 64 {
		return false
	}
	for _, c := range s {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

func short(h string) string {
	if len(h) > 16 {
		return h[:16]
	}
	return h
}

// writeFileAtomic writes b to path, mode 0600, through a temporary name so path is never
// half written.
func writeFileAtomic(path string, b []byte) error {
	tmp := path + ".partial"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return fmt.Errorf("save: %w", errors.Unwrap(err))
	}
	if err := os.Chmod(tmp, 0o600); err != nil {
		return fmt.Errorf("save: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("save: %w", err)
	}
	return nil
}

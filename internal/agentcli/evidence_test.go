package agentcli

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func hex64(c byte) string { return strings.Repeat(string(c), 64) }

// goodPack is a consistent pack: a request approved, its grant revoked after one read, in
// entries 3..7 of the tenant's chain (1 and 2 belong to another ticket).
func goodPack() map[string]any {
	req, gr := "ar_0123456789abcdef0123456789abcdef", "gr_0123456789abcdef0123456789abcdef"
	entry := func(seq int, action, prev, h string, details map[string]string) map[string]any {
		e := map[string]any{"seq": seq, "time": "2026-03-01T00:00:00Z", "tenant": "t", "ticket": "SUP-1",
			"actor": map[string]any{"kind": "agent"}, "action": action, "requestId": req, "prevHash": prev, "hash": h}
		if action != "access_requested" {
			e["grantId"] = gr
		}
		if details != nil {
			e["details"] = details
		}
		return e
	}
	return map[string]any{
		"ticketKey": "SUP-1", "tenant": "t",
		"requests": []any{map[string]any{"id": req, "status": "approved", "grantId": gr}},
		"grants":   []any{map[string]any{"id": gr, "requestId": req, "status": "revoked", "endReason": "revoked_by_agent"}},
		"accesses": []any{map[string]any{"grantId": gr, "stream": "app", "lines": 3, "bytes": 90, "sha256": hex64('d'), "end": "complete"}},
		"audit": []any{
			entry(3, "access_requested", hex64('2'), hex64('3'), nil),
			entry(4, "approved", hex64('3'), hex64('4'), nil),
			entry(6, "logs_read", hex64('5'), hex64('6'), map[string]string{"sha256": hex64('d')}),
			entry(7, "revoked", hex64('6'), hex64('7'), nil),
		},
		"chainOk": true,
		"verification": map[string]any{"chainIntact": true, "chainEntries": 7, "chainHead": hex64('7'), "recordsMatch": true,
			"mismatches": []any{}, "ticketHeadsChecked": true, "ticketHeads": []any{map[string]any{"head": hex64('4')[:16], "inChain": true}}},
	}
}

func TestEvidenceVerify(t *testing.T) {
	audit := func(p map[string]any, i int) map[string]any { return p["audit"].([]any)[i].(map[string]any) }
	tests := []struct {
		name     string
		change   func(p map[string]any)
		wantCode int
		want     string
	}{
		{"consistent", func(map[string]any) {}, ExitOK, "all checks passed"},
		{"broken link", func(p map[string]any) { audit(p, 1)["prevHash"] = hex64('9') }, ExitRefused,
			"entry 4's prevHash is not entry 3's hash"},
		{"seq out of order", func(p map[string]any) { audit(p, 2)["seq"] = 4 }, ExitRefused, "entry 4 follows entry 4"},
		{"read without its entry", func(p map[string]any) { audit(p, 2)["details"] = map[string]string{"sha256": hex64('e')} }, ExitRefused,
			"read of app under gr_0123456789abcdef0123456789abcdef (3 lines, sha256 dddddddddddddddd) has no matching entry"},
		{"decision without its entry", func(p map[string]any) { audit(p, 1)["action"] = "preview_shown" }, ExitRefused,
			"no entry for its approved decision"},
		{"grant end without its entry", func(p map[string]any) { p["audit"] = p["audit"].([]any)[:3] }, ExitRefused,
			"grant gr_0123456789abcdef0123456789abcdef: no entry for its end (revoked_by_agent)"},
		{"service says broken", func(p map[string]any) {
			p["chainOk"], p["chainBroken"] = false, "audit chain broken at entry 5: hash mismatch"
			p["verification"].(map[string]any)["chainIntact"] = false
		}, ExitRefused, "chainOk is false: audit chain broken at entry 5"},
		{"head not in chain", func(p map[string]any) {
			p["verification"].(map[string]any)["ticketHeads"] = []any{map[string]any{"head": "0123456789abcdef", "inChain": false}}
		}, ExitRefused, "head 0123456789abcdef posted on the ticket is not in the chain"},
		{"no verification", func(p map[string]any) { delete(p, "verification") }, ExitRefused, "no verification section"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := goodPack()
			tt.change(p)
			body, _ := json.Marshal(p)
			base := fakeService(t, map[string]http.HandlerFunc{
				"GET /api/v1/tickets/SUP-1/evidence": func(w http.ResponseWriter, r *http.Request) {
					writeJSON(w, 200, "application/json", string(body))
				},
			})
			code, out, errOut := runCLI(t, context.Background(), base, "evidence", "--ticket", "SUP-1", "--verify")
			if code != tt.wantCode || !strings.Contains(out, tt.want) {
				t.Errorf("exit %d, want %d with %q; stdout:\n%s\nstderr: %s", code, tt.wantCode, tt.want, out, errOut)
			}
			if !strings.Contains(out, "cannot be recomputed here") {
				t.Errorf("the summary does not say the HMAC cannot be checked locally:\n%s", out)
			}
		})
	}
}

func TestEvidenceSaveAndJSON(t *testing.T) {
	body, _ := json.Marshal(goodPack())
	base := fakeService(t, map[string]http.HandlerFunc{
		"GET /api/v1/tickets/SUP-1/evidence": func(w http.ResponseWriter, r *http.Request) {
			writeJSON(w, 200, "application/json", string(body))
		},
	})
	file := filepath.Join(t.TempDir(), "pack.json")
	code, out, errOut := runCLI(t, context.Background(), base, "evidence", "--ticket", "SUP-1", "--json", "--verify", "-o", file)
	if code != 0 || out != string(body)+"\n" {
		t.Errorf("--json: exit %d, stdout is not the pack: %s", code, out)
	}
	if !strings.Contains(errOut, "all checks passed") {
		t.Errorf("with --json the checks go to stderr: %q", errOut)
	}
	b, err := os.ReadFile(file)
	if err != nil || string(b) != string(body) {
		t.Errorf("-o wrote %q %v", b, err)
	}
	if info, _ := os.Stat(file); info.Mode().Perm() != 0o600 {
		t.Errorf("mode %v", info.Mode().Perm())
	}
	code, out, _ = runCLI(t, context.Background(), base, "evidence", "--ticket", "SUP-1")
	if code != 0 || !strings.Contains(out, "ticket SUP-1 (tenant t): 1 requests, 1 grants, 1 reads, 4 audit entries") ||
		strings.Contains(out, "local checks") {
		t.Errorf("summary without --verify: exit %d\n%s", code, out)
	}
}

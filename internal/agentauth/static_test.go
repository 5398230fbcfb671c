package agentauth

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

const (
	adaToken   = "sbat_3q2+7w9ZxVb0pQ1rK8sT4uY6iO5lM2nB"
	graceToken = "sbat_h8Jk2Lm4Np6Qr8St0Uv2Wx4Yz6Ab8Cd0"
)

func staticAuth(t *testing.T) (*Authenticator, string) {
	t.Helper()
	path := writeFile(t, "", []any{
		entry("ada", "ada@vendor.example", "agent", adaToken),
		entry("grace", "grace@vendor.example", "admin", graceToken),
	})
	a, err := New(Options{TokensFile: path})
	if err != nil {
		t.Fatal(err)
	}
	return a, path
}

func TestStaticTokens(t *testing.T) {
	a, _ := staticAuth(t)
	ada := Agent{Name: "ada", Email: "ada@vendor.example", Role: RoleAgent, Subject: "static:ada"}
	grace := Agent{Name: "grace", Email: "grace@vendor.example", Role: RoleAdmin, Subject: "static:grace"}
	tests := []struct {
		name, header string
		want         Agent
		reason       string
	}{
		{"agent", "Bearer " + adaToken, ada, ""},
		{"admin", "Bearer " + graceToken, grace, ""},
		{"scheme is case-insensitive", "bearer  " + adaToken, ada, ""},
		{"surrounding space", "  Bearer " + adaToken + " ", ada, ""},
		{"empty", "", Agent{}, ReasonMissing},
		{"no token", "Bearer ", Agent{}, ReasonMissing},
		{"other scheme", "Basic " + adaToken, Agent{}, ReasonMissing},
		{"unknown", "Bearer sbat_not-a-real-token", Agent{}, ReasonUnknownToken},
		{"prefix of a token", "Bearer " + adaToken[:10], Agent{}, ReasonUnknownToken},
		{"token with space", "Bearer " + adaToken + " x", Agent{}, ReasonMalformed},
		{"control character", "Bearer abc\x00def", Agent{}, ReasonMalformed},
		{"too long", "Bearer " + strings.Repeat("a", maxTokenBytes+1), Agent{}, ReasonMalformed},
		{"jwt without oidc", "Bearer eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln", Agent{}, ReasonUnknownToken},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := a.Authenticate(context.Background(), tc.header)
			if tc.reason == "" {
				if err != nil {
					t.Fatalf("Authenticate: %v", err)
				}
				if diff := cmp.Diff(tc.want, got); diff != "" {
					t.Errorf("agent (-want +got):\n%s", diff)
				}
				if got.IsAdmin() != (tc.want.Role == RoleAdmin) {
					t.Errorf("IsAdmin = %v for role %s", got.IsAdmin(), got.Role)
				}
				return
			}
			checkRejected(t, err, ErrUnauthenticated, tc.reason)
			if strings.Contains(err.Error(), adaToken) {
				t.Errorf("error quotes the token: %v", err)
			}
		})
	}
}

// checkRejected asserts err is an *Error of kind with reason.
func checkRejected(t *testing.T, err, kind error, reason string) {
	t.Helper()
	var ae *Error
	if !errors.As(err, &ae) {
		t.Fatalf("err = %v, want *Error", err)
	}
	if !errors.Is(err, kind) || ae.Reason != reason {
		t.Fatalf("err = %v (reason %q), want %v with reason %q", err, ae.Reason, kind, reason)
	}
}

func TestTokenFileReportsAllProblems(t *testing.T) {
	good := entry("ada", "ada@vendor.example", "agent", adaToken)
	path := writeFile(t, "", []any{
		good,
		map[string]string{"name": "", "email": "not-an-email", "role": "root", "tokenSha256": "abc"},
		entry("ada", "ada2@vendor.example", "admin", "other-token"),
		map[string]string{"name": "bob", "email": "bob@vendor.example", "role": "agent", "tokenSha256": good["tokenSha256"]},
		map[string]string{"name": "eve", "email": "eve@vendor.example", "role": "agent", "tokenSha256": hashHex(""), "tokenSHA": "x"},
		"just a string",
		map[string]string{"name": " carol", "email": "Carol <carol@vendor.example>", "role": "admin", "tokenSha256": hashHex("c")},
	})
	_, err := New(Options{TokensFile: path})
	var fe *TokenFileError
	if !errors.As(err, &fe) {
		t.Fatalf("err = %v, want *TokenFileError", err)
	}
	want := []string{
		"entry 1: name is required",
		"entry 1: email is not a plain address",
		`entry 1: role must be "agent" or "admin"`,
		"entry 1: tokenSha256 must be 64 hex digits (sha256sum of the token)",
		`entry 2: name "ada" repeats entry 0`,
		"entry 3: tokenSha256 repeats entry 0",
		"entry 4: unknown field \"tokenSHA\"",
		"entry 5: must be a agentauth.tokenEntry, not a JSON string",
		"entry 6: name must be printable text of at most 200 bytes without surrounding spaces",
		"entry 6: email is not a plain address",
	}
	if diff := cmp.Diff(want, fe.Problems); diff != "" {
		t.Errorf("problems (-want +got):\n%s", diff)
	}
	if strings.Contains(err.Error(), good["tokenSha256"]) {
		t.Errorf("error quotes a token hash: %v", err)
	}
}

func TestTokenFileEmptyHashReported(t *testing.T) {
	path := writeFile(t, "", []any{entry("eve", "eve@vendor.example", "agent", "")})
	_, err := New(Options{TokensFile: path})
	var fe *TokenFileError
	if !errors.As(err, &fe) || len(fe.Problems) != 1 || !strings.Contains(fe.Problems[0], "empty token") {
		t.Fatalf("err = %v, want one problem about the empty token", err)
	}
}

func TestTokenFileNotAnArray(t *testing.T) {
	for name, content := range map[string]string{
		"object":    `{"name":"ada"}`,
		"truncated": `[{"name":"ada"`,
		"empty":     ``,
	} {
		t.Run(name, func(t *testing.T) {
			path := writeFile(t, "", content)
			if _, err := New(Options{TokensFile: path}); err == nil {
				t.Fatal("New accepted a file that is not an array of entries")
			}
		})
	}
	if _, err := New(Options{TokensFile: "/nonexistent/agents.json"}); err == nil {
		t.Fatal("New accepted a missing file")
	}
}

func TestReload(t *testing.T) {
	a, path := staticAuth(t)
	ctx := context.Background()
	const newToken = "sbat_rotated-token-for-ada-0001"

	// A rotation: ada's token changes, grace is removed.
	writeFile(t, path, []any{entry("ada", "ada@vendor.example", "agent", newToken)})
	if err := a.Reload(); err != nil {
		t.Fatalf("Reload: %v", err)
	}
	if _, err := a.Authenticate(ctx, "Bearer "+newToken); err != nil {
		t.Errorf("new token rejected after reload: %v", err)
	}
	for _, old := range []string{adaToken, graceToken} {
		if _, err := a.Authenticate(ctx, "Bearer "+old); !errors.Is(err, ErrUnauthenticated) {
			t.Errorf("removed token still accepted after reload: err = %v", err)
		}
	}

	// A broken edit: the last good set stays in force.
	writeFile(t, path, `[{"name":"ada","role":"agent"`)
	err := a.Reload()
	var fe *TokenFileError
	if !errors.As(err, &fe) {
		t.Fatalf("Reload of a broken file: err = %v, want *TokenFileError", err)
	}
	if _, err := a.Authenticate(ctx, "Bearer "+newToken); err != nil {
		t.Errorf("invalid reload dropped the previous set: %v", err)
	}
}

func TestWatchSIGHUPReloads(t *testing.T) {
	a, path := staticAuth(t)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	var logs syncBuffer
	logger := slog.New(slog.NewTextHandler(&logs, nil))
	a.WatchSIGHUP(ctx, logger)

	const newToken = "sbat_after-sighup-0002"
	writeFile(t, path, []any{entry("ada", "ada@vendor.example", "agent", newToken)})
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, err := a.Authenticate(ctx, "Bearer "+newToken); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("SIGHUP did not reload the tokens file")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if !strings.Contains(logs.String(), "agent_tokens_reloaded") {
		t.Errorf("reload not logged: %s", logs.String())
	}
}

func TestReloadOnSignalLogsFailureWithoutSecrets(t *testing.T) {
	a, path := staticAuth(t)
	var logs syncBuffer
	logger := slog.New(slog.NewTextHandler(&logs, nil))
	writeFile(t, path, []any{map[string]string{"name": "x", "email": "x@vendor.example", "role": "root", "tokenSha256": hashHex(adaToken)}})
	a.reloadOnSignal(logger)
	out := logs.String()
	if !strings.Contains(out, "agent_tokens_reload_failed") || !strings.Contains(out, "role must be") {
		t.Errorf("failed reload not logged with its problem: %s", out)
	}
	if strings.Contains(out, hashHex(adaToken)) || strings.Contains(out, adaToken) {
		t.Errorf("log carries token material: %s", out)
	}
	if _, err := a.Authenticate(context.Background(), "Bearer "+adaToken); err != nil {
		t.Errorf("failed reload dropped the previous set: %v", err)
	}
}

func TestAgentLogValueOmitsEmail(t *testing.T) {
	var buf bytes.Buffer
	slog.New(slog.NewTextHandler(&buf, nil)).Info("x", "agent", Agent{Name: "ada", Email: "ada@vendor.example", Role: RoleAgent, Subject: "static:ada"})
	if strings.Contains(buf.String(), "ada@vendor.example") {
		t.Errorf("agent log value carries the email: %s", buf.String())
	}
}

func TestNotConfigured(t *testing.T) {
	a, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = a.Authenticate(context.Background(), "Bearer "+adaToken)
	checkRejected(t, err, ErrUnauthenticated, ReasonNotConfigured)
}

// BenchmarkStaticLookup shows that a match on the first entry, on the last and no match at
// all cost the same: the lookup always compares every entry.
func BenchmarkStaticLookup(b *testing.B) {
	var entries []any
	var tokens []string
	for i := range 100 {
		tok := "sbat_bench_" + strings.Repeat("x", i)
		tokens = append(tokens, tok)
		entries = append(entries, entry("agent"+strings.Repeat("a", i), "a@vendor.example", "agent", tok))
	}
	a, err := New(Options{TokensFile: writeFile(b, "", entries)})
	if err != nil {
		b.Fatal(err)
	}
	for name, tok := range map[string]string{"first": tokens[0], "last": tokens[99], "none": "sbat_none"} {
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				a.static.lookup(tok)
			}
		})
	}
}

// syncBuffer is a bytes.Buffer safe for the watcher goroutine and the test to share.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

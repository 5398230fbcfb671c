package agentauth

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/mail"
	"os"
	"os/signal"
	"strings"
	"sync/atomic"
	"syscall"
	"unicode"
	"unicode/utf8"
)

const (
	// maxTokenFileBytes keeps a wrong path (a log file, /dev/zero) from eating memory.
	maxTokenFileBytes = 1 << 20
	// maxNameLen bounds names, which end up in audit entries and ticket comments.
	maxNameLen = 200
)

// emptyTokenHash is SHA-256(""). An entry with it would match no request (empty tokens are
// rejected before lookup), so it is a mistake worth reporting.
const emptyTokenHash = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

// TokenFileError lists every problem of a tokens file, each naming the entry by its index, so
// an operator fixes the file in one go.
type TokenFileError struct {
	Path     string
	Problems []string
}

// Error lists all problems in one line, for the startup log.
func (e *TokenFileError) Error() string {
	return fmt.Sprintf("agent tokens file %s: %s", e.Path, strings.Join(e.Problems, "; "))
}

// tokenEntry is one element of the file as written.
type tokenEntry struct {
	Name        string `json:"name"`
	Email       string `json:"email"`
	Role        string `json:"role"`
	TokenSHA256 string `json:"tokenSha256"`
}

// staticEntry is a validated entry: the hash as bytes, ready for constant-time comparison.
type staticEntry struct {
	hash  [sha256.Size]byte
	agent Agent
}

// tokenSet is one version of the file. It is never modified, only replaced whole.
type tokenSet struct {
	entries []staticEntry
}

// staticTokens holds the current set. Reload swaps the pointer, so a request sees either the
// old set or the new one, never a mix.
type staticTokens struct {
	set atomic.Pointer[tokenSet]
}

// lookup hashes the presented token and compares it with every entry in constant time. It
// neither stops at a match nor indexes a map by the hash, so how long it takes says nothing
// about which entry, or how much of a hash, matched.
func (s *staticTokens) lookup(token string) (Agent, bool) {
	sum := sha256.Sum256([]byte(token))
	entries := s.set.Load().entries
	found, idx := 0, 0
	for i := range entries {
		m := subtle.ConstantTimeCompare(sum[:], entries[i].hash[:])
		idx = subtle.ConstantTimeSelect(m, i, idx)
		found |= m
	}
	if found == 0 {
		return Agent{}, false
	}
	return entries[idx].agent, true
}

// loadTokenFile reads and validates the file, returning a *TokenFileError that lists every
// problem found.
func loadTokenFile(path string) (*tokenSet, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, &TokenFileError{Path: path, Problems: []string{"cannot open: " + pathErrorText(err)}}
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxTokenFileBytes+1))
	if err != nil {
		return nil, &TokenFileError{Path: path, Problems: []string{"cannot read: " + pathErrorText(err)}}
	}
	if len(b) > maxTokenFileBytes {
		return nil, &TokenFileError{Path: path, Problems: []string{"larger than 1 MiB"}}
	}
	set, problems := parseTokenFile(b)
	if len(problems) > 0 {
		return nil, &TokenFileError{Path: path, Problems: problems}
	}
	return set, nil
}

// pathErrorText drops the path from an *os.PathError: TokenFileError already names it.
func pathErrorText(err error) string {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}

// parseTokenFile validates every entry and collects all problems rather than stopping at the
// first. Problems never quote a hash: that would put token material in logs.
func parseTokenFile(b []byte) (*tokenSet, []string) {
	var raws []json.RawMessage
	if err := json.Unmarshal(b, &raws); err != nil {
		return nil, []string{"not a JSON array of token entries: " + jsonErrorText(err)}
	}
	var problems []string
	add := func(i int, format string, args ...any) {
		problems = append(problems, fmt.Sprintf("entry %d: ", i)+fmt.Sprintf(format, args...))
	}
	set := &tokenSet{}
	names := map[string]int{}
	hashes := map[string]int{}
	for i, raw := range raws {
		var e tokenEntry
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.DisallowUnknownFields() // a misspelt field would otherwise silently be empty
		if err := dec.Decode(&e); err != nil {
			add(i, "%s", jsonErrorText(err))
			continue
		}
		before := len(problems)
		switch {
		case e.Name == "":
			add(i, "name is required")
		case e.Name != strings.TrimSpace(e.Name) || !printable(e.Name) || len(e.Name) > maxNameLen:
			add(i, "name must be printable text of at most %d bytes without surrounding spaces", maxNameLen)
		default:
			if j, dup := names[e.Name]; dup {
				add(i, "name %q repeats entry %d", e.Name, j)
			} else {
				names[e.Name] = i
			}
		}
		if e.Email == "" {
			add(i, "email is required")
		} else if a, err := mail.ParseAddress(e.Email); err != nil || a.Address != e.Email || a.Name != "" {
			add(i, "email is not a plain address")
		}
		if r := Role(e.Role); !r.valid() {
			add(i, "role must be %q or %q", RoleAgent, RoleAdmin)
		}
		h := strings.ToLower(e.TokenSHA256)
		sum, err := hex.DecodeString(h)
		switch {
		case e.TokenSHA256 == "":
			add(i, "tokenSha256 is required")
		case err != nil || len(sum) != sha256.Size:
			add(i, "tokenSha256 must be 64 hex digits (sha256sum of the token)")
		case h == emptyTokenHash:
			add(i, "tokenSha256 is the hash of an empty token")
		default:
			if j, dup := hashes[h]; dup {
				add(i, "tokenSha256 repeats entry %d", j)
			} else {
				hashes[h] = i
			}
		}
		if len(problems) > before {
			continue
		}
		var se staticEntry
		copy(se.hash[:], sum)
		se.agent = Agent{Name: e.Name, Email: e.Email, Role: Role(e.Role), Subject: "static:" + e.Name}
		set.entries = append(set.entries, se)
	}
	return set, problems
}

// jsonErrorText describes a decoding error without quoting the input.
func jsonErrorText(err error) string {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return fmt.Sprintf("invalid JSON at byte %d", se.Offset)
	case errors.As(err, &te):
		if te.Field != "" {
			return fmt.Sprintf("field %s must be a %s", te.Field, te.Type)
		}
		return fmt.Sprintf("must be a %s, not a JSON %s", te.Type, te.Value)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return "unknown field " + strings.TrimPrefix(err.Error(), "json: unknown field ")
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "unexpected end of JSON"
	default:
		return "invalid JSON"
	}
}

func printable(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if !unicode.IsPrint(r) {
			return false
		}
	}
	return true
}

// Reload re-reads the tokens file. If the new file is invalid the current set stays in force
// and the error says why: a half-edited file must not lock every agent out. Without a tokens
// file it does nothing.
func (a *Authenticator) Reload() error {
	if a.static == nil {
		return nil
	}
	set, err := loadTokenFile(a.tokensFile)
	if err != nil {
		return err
	}
	a.static.set.Store(set)
	return nil
}

// WatchSIGHUP reloads the tokens file whenever the process receives SIGHUP, until ctx ends.
// The signal is subscribed before it returns, so a SIGHUP sent afterwards never hits the
// default action (terminating the process). Without a tokens file it does nothing.
func (a *Authenticator) WatchSIGHUP(ctx context.Context, logger *slog.Logger) {
	if a.static == nil {
		return
	}
	if logger == nil {
		logger = a.log
	}
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGHUP)
	go func() {
		defer signal.Stop(ch)
		for {
			select {
			case <-ctx.Done():
				return
			case <-ch:
				a.reloadOnSignal(logger)
			}
		}
	}()
}

// reloadOnSignal is the SIGHUP handler: there is nobody to return an error to, so the outcome
// is logged.
func (a *Authenticator) reloadOnSignal(logger *slog.Logger) {
	if err := a.Reload(); err != nil {
		logger.Error("agent_tokens_reload_failed", slog.String("path", a.tokensFile), slog.Any("error", err))
		return
	}
	logger.Info("agent_tokens_reloaded", slog.String("path", a.tokensFile),
		slog.Int("tokens", len(a.static.set.Load().entries)))
}

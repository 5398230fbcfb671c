package agentauth

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

// FuzzAuthenticate feeds arbitrary Authorization headers to an Authenticator that knows one
// static token and trusts a local identity provider. Nothing may panic, and the only headers
// accepted are those carrying exactly the static token or the one JWT minted here: a mutation
// that still authenticates would be a forgery. The committed seeds (testdata/fuzz) are signed
// by other keys or not at all, so mutations of them reach every rejection path.
func FuzzAuthenticate(f *testing.F) {
	p := newIDP(f)
	path := writeFile(f, "", []any{entry("ada", "ada@vendor.example", "agent", adaToken)})
	opts := p.options()
	opts.MinRefreshInterval = time.Hour // made-up kids must not fetch the JWKS per input
	a, err := New(Options{TokensFile: path, OIDC: opts})
	if err != nil {
		f.Fatal(err)
	}
	jwt := p.sign(f, "ES256", ecKID, claims())
	valid := map[string]Agent{}
	for _, tok := range []string{adaToken, jwt} {
		agent, err := a.Authenticate(context.Background(), "Bearer "+tok)
		if err != nil {
			f.Fatalf("seed token rejected: %v", err)
		}
		valid[tok] = agent
	}
	for _, s := range []string{"Bearer " + adaToken, "Bearer " + jwt, "bearer " + jwt, "", "Bearer", "Bearer a.b.c", "Basic " + adaToken} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, header string) {
		agent, err := a.Authenticate(context.Background(), header)
		if err != nil {
			var ae *Error
			if !errors.As(err, &ae) {
				t.Fatalf("error %v is not an *Error", err)
			}
			if !errors.Is(err, ErrUnauthenticated) && !errors.Is(err, ErrForbidden) && !errors.Is(err, ErrUnavailable) {
				t.Fatalf("error %v matches none of the sentinels", err)
			}
			if tok := strings.TrimSpace(header); len(tok) >= 16 && strings.Contains(err.Error(), tok) {
				t.Fatalf("error quotes the header: %v", err)
			}
			return
		}
		fields := strings.Fields(header)
		if len(fields) != 2 {
			t.Fatalf("accepted a header that is not scheme and token: %q", header)
		}
		want, ok := valid[fields[1]]
		if !ok || agent != want {
			t.Fatalf("accepted %q as %+v", header, agent)
		}
	})
}

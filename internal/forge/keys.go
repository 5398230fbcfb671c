package forge

import (
	"context"
	"crypto/rsa"
	"errors"
	"fmt"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"

	"github.com/supportbridge/supportbridge/internal/jwks"
)

const (
	// minRSABits refuses keys too weak to trust, whatever the JWKS says.
	minRSABits = 2048
)

// keySet is the FIT signing keys (internal/jwks), with its errors in this package's terms.
type keySet struct{ set *jwks.Set[*rsa.PublicKey] }

// key returns the public key for kid: ErrKeysUnavailable when the set cannot be fetched,
// an invalid-token error when the issuer has no such key.
func (s *keySet) key(ctx context.Context, kid string) (*rsa.PublicKey, error) {
	k, err := s.set.Key(ctx, kid)
	switch {
	case errors.Is(err, jwks.ErrUnknownKey):
		return nil, invalid(ReasonUnknownKey)
	case err != nil:
		return nil, fmt.Errorf("%w: %w", ErrKeysUnavailable, err)
	}
	return k, nil
}

// parseJWKS keeps the RSA public signing keys with a kid. Keys marked for another use or
// algorithm are skipped rather than trusted for RS256; the first key wins on a repeated kid.
// One entry we cannot parse (a new key type, a weak key) is skipped too, instead of failing
// the whole set and with it every tenant.
func parseJWKS(body []byte) (map[string]*rsa.PublicKey, error) {
	set, err := jwk.Parse(body, jwk.WithStrictKeySetParsing(false))
	if err != nil {
		return nil, fmt.Errorf("parse jwks: %w", err)
	}
	keys := make(map[string]*rsa.PublicKey, set.Len())
	for i := range set.Len() {
		k, ok := set.Key(i)
		if !ok || k.KeyType() != jwa.RSA() {
			continue
		}
		kid, ok := k.KeyID()
		if !ok || kid == "" {
			continue
		}
		if _, dup := keys[kid]; dup {
			continue
		}
		if use, ok := k.KeyUsage(); ok && use != "sig" {
			continue
		}
		if alg, ok := k.Algorithm(); ok && alg.String() != jwa.RS256().String() {
			continue
		}
		var pub rsa.PublicKey
		if err := jwk.Export(k, &pub); err != nil || pub.N == nil || pub.N.BitLen() < minRSABits {
			continue // a private key in a JWKS, or a weak one, is not something to trust
		}
		keys[kid] = &pub
	}
	if len(keys) == 0 {
		return nil, errors.New("parse jwks: no usable RS256 keys")
	}
	return keys, nil
}

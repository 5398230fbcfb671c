package forge

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseJWKSKeepsOnlyRS256SigningKeys(t *testing.T) {
	strong, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	weak, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	b64 := base64.RawURLEncoding.EncodeToString
	rsaJWK := func(kid, use, alg string, k *rsa.PrivateKey) map[string]any {
		m := map[string]any{"kty": "RSA", "n": b64(k.N.Bytes()), "e": b64(big.NewInt(int64(k.E)).Bytes())}
		for name, v := range map[string]string{"kid": kid, "use": use, "alg": alg} {
			if v != "" {
				m[name] = v
			}
		}
		return m
	}
	body, err := json.Marshal(map[string]any{"keys": []any{
		rsaJWK("good", "sig", "RS256", strong),
		rsaJWK("bare", "", "", strong),
		rsaJWK("good", "sig", "RS256", weak), // repeated kid: the first one wins
		rsaJWK("", "sig", "RS256", strong),
		rsaJWK("enc", "enc", "RS256", strong),
		rsaJWK("rs512", "sig", "RS512", strong),
		rsaJWK("weak", "sig", "RS256", weak),
		map[string]any{"kty": "oct", "kid": "hmac", "k": b64([]byte("secret"))},
	}})
	if err != nil {
		t.Fatal(err)
	}
	keys, err := parseJWKS(body)
	if err != nil {
		t.Fatalf("parseJWKS: %v", err)
	}
	var kids []string
	for kid := range keys {
		kids = append(kids, kid)
	}
	slices.Sort(kids)
	if diff := cmp.Diff([]string{"bare", "good"}, kids); diff != "" {
		t.Errorf("kept kids mismatch (-want +got):\n%s", diff)
	}
	if !keys["good"].Equal(&strong.PublicKey) {
		t.Error("kid good does not hold the first key published under it")
	}
}

func TestParseJWKSRejectsUselessSets(t *testing.T) {
	for _, body := range []string{``, `{}`, `{"keys":[]}`, `{"keys":[{"kty":"oct","kid":"a","k":"c2VjcmV0"}]}`, `not json`} {
		if _, err := parseJWKS([]byte(body)); err == nil {
			t.Errorf("parseJWKS(%q) succeeded", body)
		}
	}
}

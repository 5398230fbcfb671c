// Package seal encrypts small secrets at rest (tenant shared secrets) with AES-256-GCM under
// SB_SECRET_KEY. The owner's id is bound in as additional data, so a ciphertext copied onto
// another tenant's record does not decrypt.
package seal

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"errors"
	"fmt"
)

// ErrOpen means a ciphertext could not be decrypted: wrong key, tampering or the wrong owner.
var ErrOpen = errors.New("seal: cannot open ciphertext")

// version prefixes every ciphertext so the key or algorithm can be rotated later.
const version byte = 1

// Sealer encrypts and decrypts with one 32-byte key.
type Sealer struct{ aead cipher.AEAD }

// New builds a Sealer from a 32-byte key.
func New(key []byte) (*Sealer, error) {
	if len(key) != 32 {
		return nil, fmt.Errorf("seal: key must be 32 bytes, got %d", len(key))
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("seal: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("seal: %w", err)
	}
	return &Sealer{aead: aead}, nil
}

// Seal encrypts plaintext for owner; the result is version|nonce|ciphertext.
func (s *Sealer) Seal(owner string, plaintext []byte) []byte {
	nonce := make([]byte, s.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		panic("seal: no randomness: " + err.Error()) // crypto/rand never fails on supported platforms
	}
	out := append([]byte{version}, nonce...)
	return s.aead.Seal(out, nonce, plaintext, []byte(owner))
}

// Open decrypts what Seal produced for the same owner.
func (s *Sealer) Open(owner string, sealed []byte) ([]byte, error) {
	n := s.aead.NonceSize()
	if len(sealed) < 1+n+s.aead.Overhead() || sealed[0] != version {
		return nil, ErrOpen
	}
	pt, err := s.aead.Open(nil, sealed[1:1+n], sealed[1+n:], []byte(owner))
	if err != nil {
		return nil, ErrOpen
	}
	return pt, nil
}

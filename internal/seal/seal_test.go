package seal

import (
	"bytes"
	"errors"
	"testing"
)

func TestSealRoundTripAndBinding(t *testing.T) {
	key := bytes.Repeat([]byte{7}, 32)
	s, err := New(key)
	if err != nil {
		t.Fatal(err)
	}
	ct := s.Seal("tenant-a", []byte("shh"))
	if bytes.Contains(ct, []byte("shh")) {
		t.Fatal("ciphertext contains the plaintext")
	}
	pt, err := s.Open("tenant-a", ct)
	if err != nil || string(pt) != "shh" {
		t.Fatalf("Open = %q, %v; want shh", pt, err)
	}
	if _, err := s.Open("tenant-b", ct); !errors.Is(err, ErrOpen) {
		t.Errorf("Open for another owner: err = %v, want ErrOpen", err)
	}
	ct[len(ct)-1] ^= 1
	if _, err := s.Open("tenant-a", ct); !errors.Is(err, ErrOpen) {
		t.Errorf("Open of tampered ciphertext: err = %v, want ErrOpen", err)
	}
	other, _ := New(bytes.Repeat([]byte{8}, 32))
	if _, err := other.Open("tenant-a", s.Seal("tenant-a", []byte("x"))); !errors.Is(err, ErrOpen) {
		t.Errorf("Open with another key: err = %v, want ErrOpen", err)
	}
	if _, err := s.Open("tenant-a", []byte{1, 2}); !errors.Is(err, ErrOpen) {
		t.Errorf("Open of short input: err = %v, want ErrOpen", err)
	}
	if _, err := New([]byte("short")); err == nil {
		t.Error("New accepted a short key")
	}
}

package secret

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

func TestSecretNeverPrints(t *testing.T) {
	const canary = "canary-7f3a9c"
	s := New(canary)
	var logBuf bytes.Buffer
	slog.New(slog.NewJSONHandler(&logBuf, nil)).Info("x", "secret", s)
	js, err := json.Marshal(struct{ S Secret }{s})
	if err != nil {
		t.Fatal(err)
	}
	outs := []string{
		fmt.Sprint(s), fmt.Sprintf("%v %+v %#v %s %q", s, s, s, s, s),
		fmt.Sprintf("%+v", struct{ S Secret }{s}), string(js), logBuf.String(),
	}
	for _, o := range outs {
		if strings.Contains(o, canary) {
			t.Errorf("secret printed: %s", o)
		}
	}
	if s.Reveal() != canary {
		t.Errorf("Reveal() = %q, want %q", s.Reveal(), canary)
	}
	if !s.Equal(New(canary)) || s.Equal(New("other")) {
		t.Error("Equal gives the wrong answer")
	}
}

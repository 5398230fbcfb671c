package logstore

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestStreams(t *testing.T) {
	root := t.TempDir()
	for _, p := range []string{"t1/app", "t1/audit", "t1/.hidden", "t2/other"} {
		if err := os.MkdirAll(filepath.Join(root, p), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	os.WriteFile(filepath.Join(root, "t1", "stray.log"), []byte("x"), 0o644)
	d := Dir{Root: root}
	got, err := d.Streams(context.Background(), "t1")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"app", "audit"}, got); diff != "" {
		t.Errorf("streams (-want +got):\n%s", diff)
	}
	if got, err := d.Streams(context.Background(), "nobody"); err != nil || len(got) != 0 {
		t.Errorf("unknown tenant: %v %v", got, err)
	}
	for _, bad := range []string{"../t1", "..", "a/b", ""} {
		if _, err := d.Streams(context.Background(), bad); !errors.Is(err, ErrBadName) {
			t.Errorf("Streams(%q): err = %v, want ErrBadName", bad, err)
		}
	}
}

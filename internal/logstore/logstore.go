// Package logstore reads the app's log files: SB_LOG_DIR/<tenant>/<stream>/<YYYY-MM-DD>.log or
// .log.gz. This part lists a tenant's streams, which access requests name; the gated reader
// that serves lines under a grant builds on it.
package logstore

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// ErrBadName means a tenant or stream name could escape the store's root.
var ErrBadName = errors.New("logstore: name not allowed")

// Dir is a log store on the filesystem.
type Dir struct{ Root string }

// validName accepts the names the store itself creates: no separators, no dot files, no
// traversal, bounded length.
func validName(s string) bool {
	if s == "" || len(s) > 200 || strings.HasPrefix(s, ".") {
		return false
	}
	return !strings.ContainsAny(s, "/\\\x00")
}

// Streams lists the tenant's streams (its folders), sorted. A tenant without logs has none.
func (d Dir) Streams(ctx context.Context, tenant string) ([]string, error) {
	if d.Root == "" {
		return nil, nil
	}
	if !validName(tenant) {
		return nil, ErrBadName
	}
	entries, err := os.ReadDir(filepath.Join(d.Root, tenant))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list streams: %w", err)
	}
	var out []string
	for _, e := range entries {
		if e.IsDir() && validName(e.Name()) {
			out = append(out, e.Name())
		}
	}
	sort.Strings(out)
	return out, nil
}

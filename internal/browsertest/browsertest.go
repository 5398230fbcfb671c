// Package browsertest finds what the browser tests need: Chromium and the e2e Node packages,
// which scripts/ensure-deps.sh installs.
package browsertest

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// Deps returns the repository root and the node binary. When something is missing it skips
// the test, or fails it in CI (CI=true), where a skipped browser test would hide a broken
// install step.
func Deps(t testing.TB) (root, node string) {
	t.Helper()
	root, err := repoRoot()
	if err != nil {
		t.Fatal(err)
	}
	missing := ""
	for _, p := range []string{"/usr/bin/chromium", filepath.Join(root, "e2e", "node_modules", "playwright-core"), filepath.Join(root, "e2e", "node_modules", "axe-core")} {
		if _, err := os.Stat(p); err != nil {
			missing = p
		}
	}
	node, err = exec.LookPath("node")
	if err != nil {
		missing = "node"
	}
	if missing != "" {
		msg := "browser test needs " + missing + " (run scripts/ensure-deps.sh)"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return root, node
}

// repoRoot is the nearest directory above the test's package that holds go.mod.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", os.ErrNotExist
		}
		dir = parent
	}
}

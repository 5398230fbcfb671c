package sitesandbox_test

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// TestNoTestingInProduction keeps the package servable from the production binary: dev mode
// links it, and the binary must not link testing or net/http/httptest.
func TestNoTestingInProduction(t *testing.T) {
	t.Parallel()
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Skipf("go list unavailable: %v", err)
	}
	deps := strings.Fields(string(out))
	for _, banned := range []string{"testing", "net/http/httptest"} {
		if slices.Contains(deps, banned) {
			t.Errorf("sitesandbox links %s", banned)
		}
	}
}

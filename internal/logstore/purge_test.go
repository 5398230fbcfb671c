package logstore

import (
	"context"
	"errors"
	"testing"
)

// TestDeleteTenant: a purge deletes every file of the tenant and nothing of another tenant
// whose name starts the same, says how many went, and is harmless when run again.
func TestDeleteTenant(t *testing.T) {
	eachSource(t, func(t *testing.T, s source) {
		ctx := context.Background()
		for _, k := range []string{"acme/app/2026-03-01.log", "acme/app/2026-03-02.log.gz", "acme/audit/2026-03-01.log",
			"acme-two/app/2026-03-01.log"} {
			s.put(t, k, []byte("2026-03-01T00:00:00Z line\n"))
		}
		del, ok := s.src.(interface {
			DeleteTenant(ctx context.Context, tenant string) (int64, error)
		})
		if !ok {
			t.Fatalf("%s store cannot delete a tenant", s.name)
		}
		n, err := del.DeleteTenant(ctx, "acme")
		if err != nil || n != 3 {
			t.Fatalf("DeleteTenant = %d, %v; want 3 files", n, err)
		}
		st := New(s.src)
		if streams, err := st.Streams(ctx, "acme"); err != nil || len(streams) != 0 {
			t.Errorf("after the purge the tenant has streams %v, %v", streams, err)
		}
		if streams, err := st.Streams(ctx, "acme-two"); err != nil || len(streams) != 1 {
			t.Errorf("the other tenant's streams = %v, %v; want its one", streams, err)
		}
		if n, err := del.DeleteTenant(ctx, "acme"); err != nil || n != 0 {
			t.Errorf("second DeleteTenant = %d, %v; want 0, nil", n, err)
		}
		for _, bad := range []string{"", "..", "a/b"} {
			if _, err := del.DeleteTenant(ctx, bad); !errors.Is(err, ErrBadName) {
				t.Errorf("DeleteTenant(%q) = %v, want ErrBadName", bad, err)
			}
		}
	})
}

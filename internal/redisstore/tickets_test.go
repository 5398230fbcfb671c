package redisstore

import (
	"context"
	"errors"
	"testing"

	"github.com/supportbridge/supportbridge/internal/redisstore/redistest"
)

func TestTicketLinks(t *testing.T) {
	ctx := context.Background()
	tk := NewTickets(redistest.Client(t))
	if _, err := tk.TenantOf(ctx, "SUP-1"); !errors.Is(err, ErrTicketNotLinked) {
		t.Errorf("unlinked: err = %v", err)
	}
	if err := tk.Link(ctx, "SUP-1", "tenant-a"); err != nil {
		t.Fatal(err)
	}
	if err := tk.Link(ctx, "sup-1", "tenant-a"); err != nil {
		t.Errorf("relink to the same tenant: %v", err)
	}
	if err := tk.Link(ctx, "SUP-1", "tenant-b"); err == nil {
		t.Error("relinking to another tenant was allowed")
	}
	if got, err := tk.TenantOf(ctx, "SUP-1"); err != nil || got != "tenant-a" {
		t.Errorf("TenantOf = %q, %v", got, err)
	}
}

package jsm

import (
	"context"
	"errors"
	"testing"

	"github.com/supportbridge/supportbridge/internal/consent"
	"github.com/supportbridge/supportbridge/internal/jsmsandbox"
)

func TestTicketsForConsent(t *testing.T) {
	e := newEnv(t, jsmsandbox.Options{}, nil)
	ctx := context.Background()
	acct, err := e.c.ResolveCustomer(ctx, "ann@customer.example", "Ann")
	if err != nil {
		t.Fatal(err)
	}
	tk, err := e.c.CreateRequest(ctx, NewRequest{Summary: "s", Description: "d", RaiseOnBehalfOf: acct})
	if err != nil {
		t.Fatal(err)
	}
	links := map[string]string{tk.Key: "tenant-a", "SUP-999": "tenant-a"}
	tickets := Tickets{Client: e.c, TenantOf: func(_ context.Context, key string) (string, error) {
		if t, ok := links[key]; ok {
			return t, nil
		}
		return "", errors.New("not linked")
	}}
	if got, err := tickets.TicketTenant(ctx, tk.Key); err != nil || got != "tenant-a" {
		t.Errorf("TicketTenant(%s) = %q, %v", tk.Key, got, err)
	}
	// Linked but gone from JSM, and never linked: both unknown.
	for _, key := range []string{"SUP-999", "SUP-5"} {
		if _, err := tickets.TicketTenant(ctx, key); !errors.Is(err, consent.ErrTicketUnknown) {
			t.Errorf("TicketTenant(%s): err = %v, want ErrTicketUnknown", key, err)
		}
	}
	if err := tickets.AddComment(ctx, tk.Key, "We would like to read your logs.", true); err != nil {
		t.Fatal(err)
	}
	if done, err := tickets.TicketDone(ctx, tk.Key); err != nil || done {
		t.Errorf("TicketDone before resolving = %v, %v", done, err)
	}
	if err := e.sb.SetIssueStatus(tk.Key, "Resolved", "done"); err != nil {
		t.Fatal(err)
	}
	if done, err := tickets.TicketDone(ctx, tk.Key); err != nil || !done {
		t.Errorf("TicketDone after resolving = %v, %v", done, err)
	}
	reqs := e.sb.Requests()
	if len(reqs[0].Comments) != 1 || !reqs[0].Comments[0].Public {
		t.Errorf("comments = %+v, want one public comment", reqs[0].Comments)
	}
}

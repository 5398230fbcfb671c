package jsm

import (
	"context"
	"errors"
	"fmt"

	"github.com/supportbridge/supportbridge/internal/consent"
)

// Tickets gives the consent service what it needs of JSM: whether a ticket exists and whose it
// is, comments to the customer, and whether the ticket is done.
type Tickets struct {
	Client *Client
	// TenantOf names the tenant whose report created a ticket.
	TenantOf func(ctx context.Context, issueKey string) (string, error)
}

// TicketTenant returns the ticket's tenant, after checking that JSM still knows the ticket.
func (t Tickets) TicketTenant(ctx context.Context, key string) (string, error) {
	tenant, err := t.TenantOf(ctx, key)
	if err != nil {
		return "", fmt.Errorf("%w: %w", consent.ErrTicketUnknown, err)
	}
	if _, err := t.Client.RequestStatus(ctx, key); err != nil {
		var je *Error
		if errors.As(err, &je) && (je.Status == 404 || je.Status == 400) {
			return "", fmt.Errorf("%w: %w", consent.ErrTicketUnknown, err)
		}
		return "", err
	}
	return tenant, nil
}

// AddComment posts a comment on the ticket. A ticket JSM no longer has is
// consent.ErrTicketDeleted.
func (t Tickets) AddComment(ctx context.Context, key, body string, public bool) error {
	_, err := t.Client.AddComment(ctx, key, body, public)
	return deleted(err)
}

// TicketDone reports whether the ticket's status category is Done; a ticket JSM no longer
// has is consent.ErrTicketDeleted.
func (t Tickets) TicketDone(ctx context.Context, key string) (bool, error) {
	st, err := t.Client.RequestStatus(ctx, key)
	if err != nil {
		return false, deleted(err)
	}
	return st.Done, nil
}

// deleted turns JSM's 404 for a request into consent.ErrTicketDeleted.
func deleted(err error) error {
	var je *Error
	if errors.As(err, &je) && je.Status == 404 {
		return fmt.Errorf("%w: %w", consent.ErrTicketDeleted, err)
	}
	return err
}

// Comments returns the bodies of the ticket's public comments, oldest first.
func (t Tickets) Comments(ctx context.Context, key string) ([]string, error) {
	return t.Client.Comments(ctx, key)
}

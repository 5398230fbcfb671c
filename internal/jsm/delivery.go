package jsm

import (
	"context"
	"errors"

	"github.com/supportbridge/supportbridge/internal/delivery"
)

// ForDelivery adapts c to the delivery worker's port: the worker's own request and ticket
// types, and every *Error translated into a *delivery.Failure, so the worker never sees
// this package (nor go-jira behind it).
func ForDelivery(c *Client) delivery.JSM { return deliveryPort{c} }

type deliveryPort struct{ c *Client }

func (p deliveryPort) ResolveCustomer(ctx context.Context, email string) (string, error) {
	id, err := p.c.ResolveCustomer(ctx, email, "")
	return id, failure(err)
}

func (p deliveryPort) CreateRequest(ctx context.Context, r delivery.Request) (delivery.Ticket, error) {
	t, err := p.c.CreateRequest(ctx, NewRequest{Summary: r.Summary, Description: r.Description, RaiseOnBehalfOf: r.RaiseOnBehalfOf})
	return delivery.Ticket{Key: t.Key, WebURL: t.WebURL}, failure(err)
}

func (p deliveryPort) FindByMarker(ctx context.Context, marker string) (delivery.Ticket, bool, error) {
	t, ok, err := p.c.FindByMarker(ctx, marker)
	return delivery.Ticket{Key: t.Key, WebURL: t.WebURL}, ok, failure(err)
}

func (p deliveryPort) UploadTemporary(ctx context.Context, filename string, content []byte) (string, error) {
	id, err := p.c.UploadTemporary(ctx, filename, content)
	return id, failure(err)
}

func (p deliveryPort) AttachTemporary(ctx context.Context, issueKey string, tempIDs []string, public bool) error {
	return failure(p.c.AttachTemporary(ctx, issueKey, tempIDs, public))
}

func (p deliveryPort) AddComment(ctx context.Context, issueKey, body string, public bool) (string, error) {
	id, err := p.c.AddComment(ctx, issueKey, body, public)
	return id, failure(err)
}

// failure translates this package's errors into the worker's terms.
func failure(err error) error {
	if err == nil {
		return nil
	}
	var e *Error
	if !errors.As(err, &e) {
		return err
	}
	kinds := map[Kind]delivery.Kind{Transient: delivery.Transient, Permanent: delivery.Permanent, Ambiguous: delivery.Ambiguous}
	refusals := map[Subject]delivery.Refusal{
		SubjectConfig: delivery.RefusedConfig, SubjectCustomer: delivery.RefusedCustomer, SubjectInput: delivery.RefusedInput,
	}
	return &delivery.Failure{
		Op: e.Op, Status: e.Status, Kind: kinds[e.Kind], Refused: refusals[e.Subject],
		RetryAfter: e.RetryAfter, Text: e.Error(), Cause: e.cause,
	}
}

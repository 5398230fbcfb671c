package redisstore

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/redis/go-redis/v9"
)

// ErrTicketNotLinked means no report of a known tenant created this ticket.
var ErrTicketNotLinked = errors.New("ticket not linked to a tenant")

// ticketKey maps a JSM issue key to the tenant whose report created it; consent requests are
// bound to that tenant, so an agent cannot point a grant at another customer's logs.
func ticketKey(issueKey string) string { return "sb:ticket:" + strings.ToUpper(issueKey) }

// Tickets links tickets to tenants.
type Tickets struct{ rdb redis.UniversalClient }

// NewTickets returns the ticket index.
func NewTickets(rdb redis.UniversalClient) *Tickets { return &Tickets{rdb: rdb} }

// Link records that tenant's report created issueKey. Relinking to another tenant is refused.
func (t *Tickets) Link(ctx context.Context, issueKey, tenant string) error {
	ok, err := t.rdb.SetNX(ctx, ticketKey(issueKey), tenant, 0).Result()
	if err != nil {
		return fmt.Errorf("link ticket: %w: %w", ErrUnavailable, err)
	}
	if !ok {
		cur, err := t.TenantOf(ctx, issueKey)
		if err != nil {
			return err
		}
		if cur != tenant {
			return fmt.Errorf("link ticket %s: already linked to another tenant", issueKey)
		}
	}
	return nil
}

// TenantOf returns the tenant whose report created issueKey.
func (t *Tickets) TenantOf(ctx context.Context, issueKey string) (string, error) {
	v, err := t.rdb.Get(ctx, ticketKey(issueKey)).Result()
	if errors.Is(err, redis.Nil) {
		return "", ErrTicketNotLinked
	}
	if err != nil {
		return "", fmt.Errorf("ticket tenant: %w: %w", ErrUnavailable, err)
	}
	return v, nil
}

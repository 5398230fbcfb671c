package consent

import (
	"context"

	"github.com/supportbridge/supportbridge/internal/usage"
)

// UsageCounter is the anonymous usage count; *usage.Counter implements it. Only the tenant
// and what happened are counted, never who.
type UsageCounter interface {
	Count(ctx context.Context, tenant string, kind usage.Kind, n int64)
}

// count adds one of kind for tenant when counting is wired.
func (s *Service) count(ctx context.Context, tenant string, kind usage.Kind) {
	if s.o.Usage != nil {
		s.o.Usage.Count(ctx, tenant, kind, 1)
	}
}

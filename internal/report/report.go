// Package report holds problem reports from end users: what they contain, how they are
// validated, and their delivery status.
package report

import (
	"errors"
	"time"
)

// ErrNotFound means no report with this id exists for this tenant.
var ErrNotFound = errors.New("report not found")

// State is where a report is on its way to a JSM request.
type State string

// The states of a report.
const (
	StateQueued     State = "queued"
	StateDelivering State = "delivering"
	StateDelivered  State = "delivered"
	StateFailed     State = "failed"
)

// Status is what the reporter's app may see about a report.
type Status struct {
	ID        string `json:"id"`
	State     State  `json:"status"`
	TicketKey string `json:"ticketKey,omitempty"`
	TicketURL string `json:"ticketUrl,omitempty"`
	Reason    string `json:"reason,omitempty"`
	// EmailSource says, once the worker has asked the reporter's site, whether support
	// will answer by email (site) or only through the ticket (unverified).
	EmailSource EmailSource `json:"emailSource,omitempty"`
	CreatedAt   time.Time   `json:"createdAt"`
	UpdatedAt   time.Time   `json:"updatedAt"`
}

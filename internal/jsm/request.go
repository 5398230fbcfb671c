package jsm

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"unicode/utf16"
)

// NewRequest is a customer request to raise.
type NewRequest struct {
	Summary string
	// Description is JSM wiki markup. It must contain the delivery marker, which is how
	// FindByMarker recognises the request after an ambiguous create.
	Description string
	// RaiseOnBehalfOf is the customer's accountId from ResolveCustomer.
	RaiseOnBehalfOf string
}

// Ticket identifies a created request.
type Ticket struct {
	Key    string // e.g. SUP-42
	ID     string // the issue id
	WebURL string // the customer portal link; empty when JSM did not send one
}

// Status is where a request stands in its workflow.
type Status struct {
	Name     string // the status name, e.g. "Waiting for support"
	Category string // NEW, INDETERMINATE, DONE (or UNDEFINED)
	Done     bool   // the request is resolved or closed
}

// maxSummary is Jira's limit on the summary field, in characters as Java counts them:
// UTF-16 code units, so an emoji counts two.
const maxSummary = 255

var (
	markerRE   = regexp.MustCompile(`^[A-Za-z0-9_-]{1,128}$`)
	issueKeyRE = regexp.MustCompile(`^([A-Z][A-Z0-9_]*-[1-9][0-9]*|[1-9][0-9]*)$`)
)

// requestDTO is our own view of JSM's CustomerRequestDTO. go-jira's Request type cannot
// decode every successful answer (it types field values as strings) and would lose the
// key of a ticket that exists; this struct reads only what we need.
type requestDTO struct {
	IssueID  string `json:"issueId"`
	IssueKey string `json:"issueKey"`
	Links    struct {
		Web string `json:"web"`
	} `json:"_links"`
	CurrentStatus struct {
		Status         string `json:"status"`
		StatusCategory string `json:"statusCategory"`
	} `json:"currentStatus"`
}

// CreateRequest raises r on the desk on behalf of the customer, or as the service account
// when r.RaiseOnBehalfOf is empty (the field is then left out). It is sent exactly once:
// on any unknown outcome the error is Ambiguous and the caller must FindByMarker before
// calling again.
func (c *Client) CreateRequest(ctx context.Context, r NewRequest) (Ticket, error) {
	const op = "create request"
	if strings.TrimSpace(r.Summary) == "" {
		return Ticket{}, invalid(op, "summary is required")
	}
	body := struct {
		ServiceDeskID      string            `json:"serviceDeskId"`
		RequestTypeID      string            `json:"requestTypeId"`
		RequestFieldValues map[string]string `json:"requestFieldValues"`
		RaiseOnBehalfOf    string            `json:"raiseOnBehalfOf,omitempty"`
	}{
		ServiceDeskID: c.desk,
		RequestTypeID: c.rtype,
		RequestFieldValues: map[string]string{
			"summary":     cleanSummary(r.Summary),
			"description": r.Description,
		},
		RaiseOnBehalfOf: r.RaiseOnBehalfOf,
	}
	var got requestDTO
	err := c.do(ctx, call{
		op: op, method: http.MethodPost, retry: writeOnce,
		path: "rest/servicedeskapi/request", body: body,
	}, &got)
	if err != nil {
		return Ticket{}, err
	}
	if got.IssueKey == "" {
		// Created, but we cannot name it: only the marker search can find it.
		return Ticket{}, &Error{Op: op, Status: http.StatusCreated, Kind: Ambiguous}
	}
	return Ticket{Key: got.IssueKey, ID: got.IssueID, WebURL: got.Links.Web}, nil
}

// cleanSummary fits user text into Jira's summary field, which rejects line breaks and
// more than 255 UTF-16 code units; a report must not fail over its title. The cut falls
// between characters, never inside one or between the halves of a surrogate pair.
func cleanSummary(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	used := 0
	for i, r := range s {
		if used += utf16.RuneLen(r); used > maxSummary {
			return cutUTF16(s[:i], maxSummary-1) + "…" // the ellipsis is one unit
		}
	}
	return s
}

// cutUTF16 returns the longest prefix of s, whole characters only, of at most n UTF-16
// code units.
func cutUTF16(s string, n int) string {
	used := 0
	for i, r := range s {
		if used += utf16.RuneLen(r); used > n {
			return s[:i]
		}
	}
	return s
}

// FindByMarker looks for the request whose text contains marker. Jira's search is
// eventually consistent, so "not found" soon after a create is not proof; the worker
// searches again with delays before creating anew.
func (c *Client) FindByMarker(ctx context.Context, marker string) (Ticket, bool, error) {
	const op = "find by marker"
	// Checked, not escaped: with only these characters nothing can break out of the JQL
	// string (the project key is checked in New).
	if !markerRE.MatchString(marker) {
		return Ticket{}, false, invalid(op, "marker must match %s", markerRE)
	}
	q := url.Values{
		// Oldest first: if a duplicate ever slipped through, every caller settles on the same one.
		"jql":        {fmt.Sprintf(`project = "%s" AND text ~ "\"%s\"" ORDER BY created ASC`, c.pkey, marker)},
		"fields":     {"summary"},
		"maxResults": {"2"}, // a second hit means a duplicate, which we want to hear about
	}
	var res struct {
		Issues []struct {
			ID  string `json:"id"`
			Key string `json:"key"`
		} `json:"issues"`
	}
	err := c.do(ctx, call{
		op: op, method: http.MethodGet, retry: repeatable,
		path: "rest/api/3/search/jql?" + q.Encode(),
	}, &res)
	if err != nil {
		return Ticket{}, false, err
	}
	if len(res.Issues) == 0 {
		return Ticket{}, false, nil
	}
	if len(res.Issues) > 1 {
		c.logger.WarnContext(ctx, "marker_on_several_requests",
			slog.String("marker", marker), slog.String("first_key", res.Issues[0].Key))
	}
	hit := res.Issues[0]
	// The search knows the issue, not its portal link; the request endpoint knows both.
	got, err := c.request(ctx, op, hit.Key)
	if err != nil {
		return Ticket{}, false, err
	}
	return Ticket{Key: hit.Key, ID: hit.ID, WebURL: got.Links.Web}, true, nil
}

// RequestStatus reads the request's current status.
func (c *Client) RequestStatus(ctx context.Context, issueKey string) (Status, error) {
	got, err := c.request(ctx, "request status", issueKey)
	if err != nil {
		return Status{}, err
	}
	s := got.CurrentStatus
	return Status{Name: s.Status, Category: s.StatusCategory, Done: s.StatusCategory == "DONE"}, nil
}

func (c *Client) request(ctx context.Context, op, issueKey string) (requestDTO, error) {
	var got requestDTO
	if !issueKeyRE.MatchString(issueKey) {
		return got, invalid(op, "not an issue key")
	}
	err := c.do(ctx, call{
		op: op, method: http.MethodGet, retry: repeatable,
		path: "rest/servicedeskapi/request/" + url.PathEscape(issueKey),
	}, &got)
	return got, err
}

// AddComment adds a comment to the request: public comments are emailed to the customer,
// internal ones are seen by agents only. Like a create it is sent once; an Ambiguous error
// means the comment may exist.
func (c *Client) AddComment(ctx context.Context, issueKey, body string, public bool) (string, error) {
	const op = "add comment"
	if !issueKeyRE.MatchString(issueKey) {
		return "", invalid(op, "not an issue key")
	}
	if strings.TrimSpace(body) == "" {
		return "", invalid(op, "empty comment")
	}
	var got struct {
		ID string `json:"id"`
	}
	err := c.do(ctx, call{
		op: op, method: http.MethodPost, retry: writeOnce,
		path: "rest/servicedeskapi/request/" + url.PathEscape(issueKey) + "/comment",
		body: struct {
			Body   string `json:"body"`
			Public bool   `json:"public"`
		}{body, public},
	}, &got)
	return got.ID, err
}

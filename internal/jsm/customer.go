package jsm

import (
	"context"
	"errors"
	"net/http"
	"net/mail"
	"net/url"
	"strings"
)

// ResolveCustomer returns the accountId that requests for email are raised on behalf of,
// creating the JSM customer and adding it to the desk when needed. It is safe to call again
// after any error: every step either reads or is idempotent on the server.
//
// The order matters: desk customers are found with one call and need nothing more; an
// existing Atlassian account (a staff member, or a customer of another desk) must be reused,
// because creating a customer for its email fails; only then is a customer created.
func (c *Client) ResolveCustomer(ctx context.Context, email, displayName string) (string, error) {
	const op = "resolve customer"
	addr, err := mail.ParseAddress(email)
	if err != nil || addr.Address != email || addr.Name != "" {
		return "", invalid(op, "not a plain email address")
	}
	if id, err := c.deskCustomer(ctx, email); err != nil || id != "" {
		// A desk customer is a member already.
		return id, err
	}
	id, err := c.userByEmail(ctx, email)
	if err != nil {
		return "", err
	}
	if id == "" {
		id, err = c.createCustomer(ctx, email, displayName)
		if errors.Is(err, ErrConflict) {
			// Someone (another worker, an agent) created it between our search and our
			// create. strictConflictStatusCode answers 409 without the id, so search again.
			id, err = c.findAfterConflict(ctx, email)
		}
		if err != nil {
			return "", err
		}
	}
	// Closed desks accept requests only from their own customers; on open desks this is a
	// harmless 204 too.
	if err := c.addToDesk(ctx, id); err != nil {
		return "", err
	}
	return id, nil
}

// userDTO is the part of JSM's UserDTO and Jira's User we read.
type userDTO struct {
	AccountID    string `json:"accountId"`
	EmailAddress string `json:"emailAddress"`
	AccountType  string `json:"accountType"` // Jira only
}

// deskCustomer searches the desk's customers. The query matches names and email prefixes,
// so only an exact (case-insensitive) email match counts.
func (c *Client) deskCustomer(ctx context.Context, email string) (string, error) {
	q := url.Values{"query": {email}, "limit": {"50"}}
	var page struct {
		Values []userDTO `json:"values"`
	}
	err := c.do(ctx, call{
		op: "search desk customers", method: http.MethodGet, retry: repeatable,
		path: "rest/servicedeskapi/servicedesk/" + url.PathEscape(c.desk) + "/customer?" + q.Encode(),
		// This endpoint is experimental in JSM and refuses calls without the opt-in.
		headers: map[string]string{"X-ExperimentalApi": "opt-in"},
	}, &page)
	if err != nil {
		return "", err
	}
	return matchEmail(page.Values, email), nil
}

// userByEmail searches all Atlassian accounts visible to the service account. Emails hidden
// by a user's privacy settings cannot match; such a user is then found by the 409 path.
func (c *Client) userByEmail(ctx context.Context, email string) (string, error) {
	q := url.Values{"query": {email}, "maxResults": {"50"}}
	var users []userDTO
	err := c.do(ctx, call{
		op: "search users", method: http.MethodGet, retry: repeatable,
		path: "rest/api/3/user/search?" + q.Encode(),
	}, &users)
	if err != nil {
		return "", err
	}
	// App accounts cannot raise requests.
	users = dropApps(users)
	return matchEmail(users, email), nil
}

func dropApps(us []userDTO) []userDTO {
	out := us[:0]
	for _, u := range us {
		if u.AccountType != "app" {
			out = append(out, u)
		}
	}
	return out
}

func matchEmail(us []userDTO, email string) string {
	for _, u := range us {
		if u.AccountID != "" && strings.EqualFold(u.EmailAddress, email) {
			return u.AccountID
		}
	}
	return ""
}

// createCustomer creates a JSM customer account. strictConflictStatusCode makes an existing
// email a 409 instead of a 400 that would look like a configuration error. Repeating it is
// harmless (the repeat answers 409), so it is retried like a read.
func (c *Client) createCustomer(ctx context.Context, email, displayName string) (string, error) {
	if strings.TrimSpace(displayName) == "" {
		// JSM needs a name to show agents; the local part is what a person would type.
		displayName, _, _ = strings.Cut(email, "@")
	}
	var u userDTO
	err := c.do(ctx, call{
		op: "create customer", method: http.MethodPost, retry: repeatable,
		path: "rest/servicedeskapi/customer?strictConflictStatusCode=true",
		body: struct {
			Email       string `json:"email"`
			DisplayName string `json:"displayName"`
		}{email, displayName},
	}, &u)
	if err != nil {
		return "", err
	}
	if u.AccountID == "" {
		return "", &Error{Op: "create customer", Status: http.StatusCreated, Kind: Transient}
	}
	return u.AccountID, nil
}

// findAfterConflict looks for the account that made the create answer 409. If search has
// not caught up yet (or privacy settings hide the email), the result is a Transient
// ErrConflict so the worker tries again later, within its bounded attempts.
func (c *Client) findAfterConflict(ctx context.Context, email string) (string, error) {
	if id, err := c.deskCustomer(ctx, email); err != nil || id != "" {
		return id, err
	}
	if id, err := c.userByEmail(ctx, email); err != nil || id != "" {
		return id, err
	}
	return "", &Error{Op: "resolve customer", Status: http.StatusConflict, Kind: Transient}
}

// addToDesk makes the account a customer of our desk; JSM answers 204 whether or not it
// already was one, so repeating it is harmless.
func (c *Client) addToDesk(ctx context.Context, accountID string) error {
	return c.do(ctx, call{
		op: "add customer to desk", method: http.MethodPost, retry: repeatable,
		path: "rest/servicedeskapi/servicedesk/" + url.PathEscape(c.desk) + "/customer",
		body: struct {
			AccountIDs []string `json:"accountIds"`
		}{[]string{accountID}},
	}, nil)
}

package jsmsandbox

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Request is a snapshot of one customer request (a Jira issue) as the sandbox holds it.
type Request struct {
	Key, ID                      string
	ServiceDeskID, RequestTypeID string
	Summary, Description         string
	ReporterAccountID            string
	// Status is the workflow status name; StatusCategory is Jira's category key of that
	// status: "new", "indeterminate" or "done".
	Status, StatusCategory string
	Comments               []Comment
	Attachments            []Attachment
	Created                time.Time
}

// Comment is a comment on a request. Internal comments (Public false) are what agents see
// and customers never do, so tests check the visibility of everything posted.
type Comment struct {
	ID, Body string
	Public   bool
	Created  time.Time
}

// Attachment is a file attached to a request, with its content so tests can check exactly
// what was uploaded.
type Attachment struct {
	ID, Filename, MediaType string
	Size                    int
	Public                  bool
	Content                 []byte
}

// Customer is an Atlassian account the sandbox knows: a JSM customer account created
// through the API, a regular Atlassian account from AddUser, or the service account.
type Customer struct {
	AccountID, Email, DisplayName string
	// AccountType is "customer" for JSM customer accounts and "atlassian" otherwise.
	AccountType string
	// InDesk reports whether the account is a customer of the sandbox's service desk.
	InDesk bool
}

// Call is one /rest call received, for tests that count creates or retries.
type Call struct {
	Method, Path, Query string
	// Status is the status answered, or 0 when the connection was dropped without one.
	Status int
	Time   time.Time
}

const (
	accountTypeCustomer  = "customer"
	accountTypeAtlassian = "atlassian"
)

// Jira's three status categories, by key. JSM's CustomerRequestStatusDTO spells them in
// upper case; the platform API uses these keys with ids and names.
const (
	categoryNew           = "new"
	categoryIndeterminate = "indeterminate"
	categoryDone          = "done"
)

type account struct {
	id, email, displayName, accountType string
	inDesk                              bool
}

type issue struct {
	id, key                    string
	deskID, requestTypeID      string
	summary, description       string
	reporter                   *account
	status, category           string
	created, updated, statusAt time.Time
	comments                   []*comment
	attachments                []*attachment
}

type comment struct {
	id, body string
	public   bool
	author   *account
	created  time.Time
}

type attachment struct {
	id, filename, mediaType string
	content                 []byte
	public                  bool
	author                  *account
	created                 time.Time
}

type tempFile struct {
	id, deskID, filename, mediaType string
	content                         []byte
	expires                         time.Time
}

// AddUser adds an existing Atlassian account that is not (yet) a customer of the desk, such
// as a user of the vendor's app who never contacted support.
func (s *Sandbox) AddUser(email, displayName string) (accountID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := &account{id: newAtlassianAccountID(), email: email, displayName: displayName, accountType: accountTypeAtlassian}
	s.accounts = append(s.accounts, a)
	return a.id
}

// ServiceAccountID is the accountId of the API user the client authenticates as; requests
// raised without raiseOnBehalfOf are reported by it.
func (s *Sandbox) ServiceAccountID() string { return s.serviceAccount.id }

// Customers returns every account the sandbox knows, in creation order.
func (s *Sandbox) Customers() []Customer {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Customer, 0, len(s.accounts))
	for _, a := range s.accounts {
		out = append(out, Customer{AccountID: a.id, Email: a.email, DisplayName: a.displayName,
			AccountType: a.accountType, InDesk: a.inDesk})
	}
	return out
}

// Requests returns a deep copy of every request, oldest first.
func (s *Sandbox) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Request, 0, len(s.issues))
	for _, is := range s.issues {
		out = append(out, is.snapshot())
	}
	return out
}

func (is *issue) snapshot() Request {
	r := Request{Key: is.key, ID: is.id, ServiceDeskID: is.deskID, RequestTypeID: is.requestTypeID,
		Summary: is.summary, Description: is.description, ReporterAccountID: is.reporter.id,
		Status: is.status, StatusCategory: is.category, Created: is.created}
	for _, c := range is.comments {
		r.Comments = append(r.Comments, Comment{ID: c.id, Body: c.body, Public: c.public, Created: c.created})
	}
	for _, a := range is.attachments {
		r.Attachments = append(r.Attachments, Attachment{ID: a.id, Filename: a.filename, MediaType: a.mediaType,
			Size: len(a.content), Public: a.public, Content: bytes.Clone(a.content)})
	}
	return r
}

// SetIssueStatus moves a request to another status, as an agent working the ticket would.
// categoryKey is "new", "indeterminate" or "done".
func (s *Sandbox) SetIssueStatus(key, name, categoryKey string) error {
	if !slices.Contains([]string{categoryNew, categoryIndeterminate, categoryDone}, categoryKey) {
		return fmt.Errorf("jsmsandbox: unknown status category %q", categoryKey)
	}
	if name == "" {
		return errors.New("jsmsandbox: status name is empty")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	is := s.issueLocked(key)
	if is == nil {
		return fmt.Errorf("jsmsandbox: no request %q", key)
	}
	now := s.now()
	is.status, is.category, is.statusAt, is.updated = name, categoryKey, now, now
	return nil
}

// issueLocked finds a request by id or key; Jira accepts keys in any case.
func (s *Sandbox) issueLocked(idOrKey string) *issue {
	for _, is := range s.issues {
		if is.id == idOrKey || strings.EqualFold(is.key, idOrKey) {
			return is
		}
	}
	return nil
}

func (s *Sandbox) accountLocked(id string) *account {
	for _, a := range s.accounts {
		if a.id == id {
			return a
		}
	}
	return nil
}

// accountByEmailLocked matches emails case-insensitively, as Atlassian accounts do.
func (s *Sandbox) accountByEmailLocked(email string) *account {
	for _, a := range s.accounts {
		if strings.EqualFold(a.email, email) {
			return a
		}
	}
	return nil
}

// nextIDLocked numbers issues, comments and attachments from one sequence, like Jira's
// database ids: unique across kinds, increasing, meaningless to clients.
func (s *Sandbox) nextIDLocked() string {
	s.seq++
	return strconv.Itoa(10000 + s.seq)
}

// newCustomerAccountID returns an id shaped like those of JSM customer accounts
// ("qm:<uuid>:<uuid>"), so clients that treat account ids as opaque strings are exercised.
func newCustomerAccountID() string {
	return "qm:" + randomUUID() + ":" + randomUUID()
}

// newAtlassianAccountID returns an id shaped like a classic Atlassian account id.
func newAtlassianAccountID() string {
	return randomHex(12)
}

// newTemporaryAttachmentID returns an id shaped like JSM's ("temp" and a long number).
func newTemporaryAttachmentID() string {
	var b [8]byte
	rand.Read(b[:])
	return "temp" + strconv.FormatUint(binary.BigEndian.Uint64(b[:])>>1, 10)
}

func randomUUID() string {
	var b [16]byte
	rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40 // version 4
	b[8] = b[8]&0x3f | 0x80 // RFC 9562 variant
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

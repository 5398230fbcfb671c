package jsmsandbox

import (
	"encoding/json"
	"hash/fnv"
	"html"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// This file holds the wire shapes: Atlassian's DTOs as the real site serialises them (field
// names, nesting, links, date objects), built from the sandbox's state.

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json;charset=UTF-8")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false) // Atlassian does not escape <, > and & in JSON
	enc.Encode(v)
}

// errorResponse is servicedeskapi's ErrorResponse.
type errorResponse struct {
	ErrorMessage     string       `json:"errorMessage"`
	I18nErrorMessage i18nErrorDTO `json:"i18nErrorMessage"`
}

type i18nErrorDTO struct {
	I18nKey    string   `json:"i18nKey"`
	Parameters []string `json:"parameters"`
}

// errorCollection is the platform API's ErrorCollection.
type errorCollection struct {
	ErrorMessages []string          `json:"errorMessages"`
	Errors        map[string]string `json:"errors"`
}

// writeError answers in the error shape of the API the call was made to; the i18n key only
// appears in servicedeskapi errors.
func (a apiFamily) writeError(w http.ResponseWriter, status int, i18nKey, msg string) {
	if a == servicedeskAPI {
		writeJSON(w, status, errorResponse{ErrorMessage: msg, I18nErrorMessage: i18nErrorDTO{I18nKey: i18nKey, Parameters: []string{}}})
		return
	}
	writeJSON(w, status, errorCollection{ErrorMessages: []string{msg}, Errors: map[string]string{}})
}

func sdError(w http.ResponseWriter, status int, i18nKey, msg string) {
	servicedeskAPI.writeError(w, status, i18nKey, msg)
}

func platformError(w http.ResponseWriter, status int, msg string) {
	platformAPI.writeError(w, status, "", msg)
}

// decodeJSON reads a JSON request body the way Atlassian's REST layer does: other media
// types are refused with 415, malformed JSON with 400.
func decodeJSON(w http.ResponseWriter, r *http.Request, v any) bool {
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/json" {
		sdError(w, http.StatusUnsupportedMediaType, "sd.api.unsupported.media.type", "Unsupported media type: the body must be application/json.")
		return false
	}
	if err := json.NewDecoder(r.Body).Decode(v); err != nil {
		sdError(w, http.StatusBadRequest, "sd.api.invalid.json", "The request body is not valid JSON for this resource.")
		return false
	}
	return true
}

// baseURL is the site URL used in links.
func (s *Sandbox) baseURL(r *http.Request) string {
	if s.opts.BaseURL != "" {
		return strings.TrimSuffix(s.opts.BaseURL, "/")
	}
	return "http://" + r.Host
}

// dateDTO is JSM's DateDTO: one instant in four spellings.
type dateDTO struct {
	EpochMillis int64  `json:"epochMillis"`
	Friendly    string `json:"friendly"`
	ISO8601     string `json:"iso8601"`
	Jira        string `json:"jira"`
}

func newDate(t time.Time) dateDTO {
	t = t.UTC()
	return dateDTO{EpochMillis: t.UnixMilli(), Friendly: t.Format("02/Jan/06 3:04 PM"),
		ISO8601: t.Format("2006-01-02T15:04:05-0700"), Jira: t.Format(jiraTime)}
}

// jiraTime is how Jira spells instants in both APIs.
const jiraTime = "2006-01-02T15:04:05.000-0700"

func avatarURLs(base string) map[string]string {
	m := make(map[string]string, 4)
	for _, size := range []string{"16x16", "24x24", "32x32", "48x48"} {
		m[size] = base + "/images/avatar-default.png?size=" + size
	}
	return m
}

// userDTO is JSM's UserDTO. Account ids are the only identity: the deprecated name and key
// are gone from Atlassian Cloud responses.
type userDTO struct {
	AccountID    string       `json:"accountId"`
	EmailAddress string       `json:"emailAddress,omitempty"`
	DisplayName  string       `json:"displayName"`
	Active       bool         `json:"active"`
	TimeZone     string       `json:"timeZone"`
	Links        userLinksDTO `json:"_links"`
}

type userLinksDTO struct {
	JiraRest   string            `json:"jiraRest"`
	AvatarURLs map[string]string `json:"avatarUrls"`
	Self       string            `json:"self"`
}

func newUserDTO(a *account, base string) userDTO {
	u := base + "/rest/api/2/user?accountId=" + url.QueryEscape(a.id)
	return userDTO{AccountID: a.id, EmailAddress: a.email, DisplayName: a.displayName, Active: true,
		TimeZone: "Etc/UTC", Links: userLinksDTO{JiraRest: u, AvatarURLs: avatarURLs(base), Self: u}}
}

// pageDTO is JSM's PagedDTO of anything.
type pageDTO[T any] struct {
	Expands    []string     `json:"_expands"`
	Size       int          `json:"size"`
	Start      int          `json:"start"`
	Limit      int          `json:"limit"`
	IsLastPage bool         `json:"isLastPage"`
	Links      pageLinksDTO `json:"_links"`
	Values     []T          `json:"values"`
}

type pageLinksDTO struct {
	Base    string `json:"base"`
	Context string `json:"context"`
	Next    string `json:"next,omitempty"`
	Prev    string `json:"prev,omitempty"`
}

// newPage cuts one page out of all values; path and query build the next and prev links.
func newPage[T any](all []T, start, limit int, base, path string, query url.Values) pageDTO[T] {
	from := min(start, len(all))
	to := min(from+limit, len(all))
	p := pageDTO[T]{Expands: []string{}, Size: to - from, Start: start, Limit: limit, IsLastPage: to >= len(all),
		Links: pageLinksDTO{Base: base + "/rest/servicedeskapi", Context: ""}, Values: all[from:to]}
	if p.Values == nil {
		p.Values = []T{}
	}
	link := func(start int) string {
		q := url.Values{}
		for k, v := range query {
			q[k] = v
		}
		q.Set("start", strconv.Itoa(start))
		q.Set("limit", strconv.Itoa(limit))
		return base + path + "?" + q.Encode()
	}
	if !p.IsLastPage {
		p.Links.Next = link(to)
	}
	if start > 0 {
		p.Links.Prev = link(max(0, start-limit))
	}
	return p
}

// customerRequestDTO is JSM's CustomerRequestDTO.
type customerRequestDTO struct {
	Expands            []string         `json:"_expands"`
	IssueID            string           `json:"issueId"`
	IssueKey           string           `json:"issueKey"`
	Summary            string           `json:"summary"`
	RequestTypeID      string           `json:"requestTypeId"`
	ServiceDeskID      string           `json:"serviceDeskId"`
	CreatedDate        dateDTO          `json:"createdDate"`
	Reporter           userDTO          `json:"reporter"`
	RequestFieldValues []fieldValueDTO  `json:"requestFieldValues"`
	CurrentStatus      requestStatusDTO `json:"currentStatus"`
	Links              requestLinksDTO  `json:"_links"`
}

// fieldValueDTO is JSM's CustomerRequestFieldValueDTO. Value is untyped on purpose: real
// values are strings, arrays or objects depending on the field.
type fieldValueDTO struct {
	FieldID       string `json:"fieldId"`
	Label         string `json:"label"`
	Value         any    `json:"value"`
	RenderedValue any    `json:"renderedValue,omitempty"`
}

type requestStatusDTO struct {
	Status         string  `json:"status"`
	StatusCategory string  `json:"statusCategory"`
	StatusDate     dateDTO `json:"statusDate"`
}

type requestLinksDTO struct {
	JiraRest string `json:"jiraRest"`
	Web      string `json:"web"`
	Agent    string `json:"agent"`
	Self     string `json:"self"`
}

func newCustomerRequestDTO(is *issue, base string) customerRequestDTO {
	fields := []fieldValueDTO{{FieldID: "summary", Label: "Summary", Value: is.summary}}
	if is.description != "" {
		fields = append(fields, fieldValueDTO{FieldID: "description", Label: "Description", Value: is.description,
			RenderedValue: map[string]string{"html": "<p>" + html.EscapeString(is.description) + "</p>"}})
	}
	// Request types carry an Attachment field whose value is an array. That shape is why
	// go-jira's RequestFieldValue (Value string) cannot decode real responses.
	fields = append(fields, fieldValueDTO{FieldID: "attachment", Label: "Attachment", Value: []any{}})
	return customerRequestDTO{
		Expands:            []string{"participant", "status", "sla", "requestType", "serviceDesk", "attachment", "action", "comment"},
		IssueID:            is.id,
		IssueKey:           is.key,
		Summary:            is.summary,
		RequestTypeID:      is.requestTypeID,
		ServiceDeskID:      is.deskID,
		CreatedDate:        newDate(is.created),
		Reporter:           newUserDTO(is.reporter, base),
		RequestFieldValues: fields,
		CurrentStatus: requestStatusDTO{Status: is.status, StatusCategory: strings.ToUpper(is.category),
			StatusDate: newDate(is.statusAt)},
		Links: requestLinksDTO{
			JiraRest: base + "/rest/api/2/issue/" + is.id,
			Web:      base + "/servicedesk/customer/portal/" + is.deskID + "/" + is.key,
			Agent:    base + "/browse/" + is.key,
			Self:     base + "/rest/servicedeskapi/request/" + is.id,
		},
	}
}

// commentDTO is JSM's CommentDTO.
type commentDTO struct {
	Expands []string    `json:"_expands"`
	ID      string      `json:"id"`
	Body    string      `json:"body"`
	Public  bool        `json:"public"`
	Author  userDTO     `json:"author"`
	Created dateDTO     `json:"created"`
	Links   selfLinkDTO `json:"_links"`
}

type selfLinkDTO struct {
	Self string `json:"self"`
}

func newCommentDTO(is *issue, c *comment, base string) commentDTO {
	return commentDTO{Expands: []string{"attachment", "renderedBody"}, ID: c.id, Body: c.body, Public: c.public,
		Author: newUserDTO(c.author, base), Created: newDate(c.created),
		Links: selfLinkDTO{Self: base + "/rest/servicedeskapi/request/" + is.id + "/comment/" + c.id}}
}

// attachmentDTO is JSM's AttachmentDTO.
type attachmentDTO struct {
	Filename string             `json:"filename"`
	Author   userDTO            `json:"author"`
	Created  dateDTO            `json:"created"`
	Size     int                `json:"size"`
	MimeType string             `json:"mimeType"`
	Links    attachmentLinksDTO `json:"_links"`
}

type attachmentLinksDTO struct {
	Self     string `json:"self"`
	JiraRest string `json:"jiraRest"`
	Content  string `json:"content"`
}

func newAttachmentDTO(a *attachment, base string) attachmentDTO {
	return attachmentDTO{Filename: a.filename, Author: newUserDTO(a.author, base), Created: newDate(a.created),
		Size: len(a.content), MimeType: a.mediaType, Links: attachmentLinksDTO{
			Self:     base + "/rest/servicedeskapi/request/attachment/" + a.id,
			JiraRest: base + "/rest/api/2/attachment/" + a.id,
			Content:  base + "/secure/attachment/" + a.id + "/" + url.PathEscape(a.filename),
		}}
}

// platformUser is the platform API's User.
type platformUser struct {
	Self         string            `json:"self"`
	AccountID    string            `json:"accountId"`
	AccountType  string            `json:"accountType"`
	EmailAddress string            `json:"emailAddress,omitempty"`
	AvatarURLs   map[string]string `json:"avatarUrls"`
	DisplayName  string            `json:"displayName"`
	Active       bool              `json:"active"`
	TimeZone     string            `json:"timeZone"`
	Locale       string            `json:"locale"`
}

func newPlatformUser(a *account, base string) platformUser {
	return platformUser{Self: base + "/rest/api/3/user?accountId=" + url.QueryEscape(a.id), AccountID: a.id,
		AccountType: a.accountType, EmailAddress: a.email, AvatarURLs: avatarURLs(base), DisplayName: a.displayName,
		Active: true, TimeZone: "Etc/UTC", Locale: "en_US"}
}

// statusCategories are Jira's three categories with their real ids, names and colours.
var statusCategories = map[string]struct {
	id          int
	name, color string
}{
	categoryNew:           {2, "To Do", "blue-gray"},
	categoryIndeterminate: {4, "In Progress", "yellow"},
	categoryDone:          {3, "Done", "green"},
}

func newPlatformStatus(is *issue, base string) map[string]any {
	cat := statusCategories[is.category]
	// Status ids are per site; a hash of the name keeps one status one id.
	h := fnv.New32a()
	h.Write([]byte(is.status))
	id := strconv.Itoa(10000 + int(h.Sum32()%90000))
	return map[string]any{
		"self":        base + "/rest/api/3/status/" + id,
		"description": "",
		"iconUrl":     base + "/images/icons/status_generic.gif",
		"name":        is.status,
		"id":          id,
		"statusCategory": map[string]any{
			"self":      base + "/rest/api/3/statuscategory/" + strconv.Itoa(cat.id),
			"id":        cat.id,
			"key":       is.category,
			"colorName": cat.color,
			"name":      cat.name,
		},
	}
}

// adfDocument renders plain text as the Atlassian Document Format the v3 API returns for
// rich-text fields: one paragraph per non-empty line.
func adfDocument(text string) map[string]any {
	content := []any{}
	for line := range strings.SplitSeq(text, "\n") {
		if line = strings.TrimRight(line, "\r"); line == "" {
			continue
		}
		content = append(content, map[string]any{"type": "paragraph",
			"content": []any{map[string]any{"type": "text", "text": line}}})
	}
	return map[string]any{"type": "doc", "version": 1, "content": content}
}

package jsmsandbox

import (
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/mail"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// The servicedeskapi handlers. Messages follow JSM's where they are known; what matters to
// clients is the status and the error shape, since JSM's wording changes without notice.

const (
	maxSummaryUnits     = 255   // Jira's limit on the summary field, in UTF-16 code units (Java chars)
	maxTextRunes        = 32767 // Jira's limit on description and comment bodies
	maxTemporaryFiles   = 60    // attachTemporaryFile's documented limit per call
	defaultPageLimit    = 50
	experimentalHeader  = "X-ExperimentalApi"
	experimentalMessage = "This API is experimental. Experimental APIs are not guaranteed to be stable within the preview period. You must set the header 'X-ExperimentalApi: opt-in' to opt into using this API."
)

// deskFound answers 404 unless the path names the sandbox's desk.
func (s *Sandbox) deskFound(w http.ResponseWriter, r *http.Request) bool {
	if r.PathValue("serviceDeskId") != s.opts.ServiceDeskID {
		sdError(w, http.StatusNotFound, "sd.service.desk.not.found", "The service desk does not exist.")
		return false
	}
	return true
}

// pageParams reads start and limit, which JSM pages use everywhere.
func pageParams(w http.ResponseWriter, q url.Values) (start, limit int, ok bool) {
	start, err1 := intParam(q, "start", 0)
	limit, err2 := intParam(q, "limit", defaultPageLimit)
	if err1 != nil || err2 != nil || start < 0 || limit < 1 {
		sdError(w, http.StatusBadRequest, "sd.api.invalid.paging", "start must be zero or more and limit one or more.")
		return 0, 0, false
	}
	return start, limit, true
}

func intParam(q url.Values, name string, def int) (int, error) {
	v := q.Get(name)
	if v == "" {
		return def, nil
	}
	return strconv.Atoi(v)
}

// boolParam reads a boolean query parameter as Jersey does: only "true" is true.
func boolParam(q url.Values, name string, def bool) bool {
	v := q.Get(name)
	if v == "" {
		return def
	}
	return strings.EqualFold(v, "true")
}

// createCustomer creates a JSM customer account. Like JSM, it never reveals the account that
// already owns an email: the client has to find it by searching.
func (s *Sandbox) createCustomer(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Email       string `json:"email"`
		DisplayName string `json:"displayName"`
		FullName    string `json:"fullName"`
	}
	if !decodeJSON(w, r, &in) {
		return
	}
	if addr, err := mail.ParseAddress(in.Email); err != nil || addr.Address != in.Email {
		sdError(w, http.StatusBadRequest, "sd.customer.email.invalid", "The email address is invalid.")
		return
	}
	name := cmp.Or(in.DisplayName, in.FullName)
	if strings.TrimSpace(name) == "" {
		sdError(w, http.StatusBadRequest, "sd.customer.displayname.required", "You must specify a display name.")
		return
	}
	s.mu.Lock()
	if s.accountByEmailLocked(in.Email) != nil {
		s.mu.Unlock()
		status := http.StatusBadRequest
		if boolParam(r.URL.Query(), "strictConflictStatusCode", false) {
			status = http.StatusConflict
		}
		sdError(w, status, "sd.customer.email.exists", "An account already exists for this email")
		return
	}
	a := &account{id: newCustomerAccountID(), email: in.Email, displayName: name, accountType: accountTypeCustomer}
	s.accounts = append(s.accounts, a)
	dto := newUserDTO(a, s.baseURL(r))
	s.mu.Unlock()
	writeJSON(w, http.StatusCreated, dto)
}

// listDeskCustomers is an experimental JSM API: without the opt-in header JSM refuses it.
func (s *Sandbox) listDeskCustomers(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get(experimentalHeader) != "opt-in" {
		sdError(w, http.StatusBadRequest, "sd.api.experimental.not.opted.in", experimentalMessage)
		return
	}
	if !s.deskFound(w, r) {
		return
	}
	q := r.URL.Query()
	start, limit, ok := pageParams(w, q)
	if !ok {
		return
	}
	// JSM matches the query against display name and email as a case-insensitive substring.
	needle := strings.ToLower(q.Get("query"))
	base := s.baseURL(r)
	s.mu.Lock()
	var matches []userDTO
	for _, a := range s.accounts {
		if a.inDesk && (strings.Contains(strings.ToLower(a.email), needle) || strings.Contains(strings.ToLower(a.displayName), needle)) {
			matches = append(matches, newUserDTO(a, base))
		}
	}
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, newPage(matches, start, limit, base, r.URL.Path, url.Values{"query": {q.Get("query")}}))
}

// addDeskCustomers adds accounts to the desk. As in JSM, valid accounts are added even when
// others in the same call do not exist, and that call still answers 400.
func (s *Sandbox) addDeskCustomers(w http.ResponseWriter, r *http.Request) {
	if !s.deskFound(w, r) {
		return
	}
	var in struct {
		AccountIDs []string `json:"accountIds"`
		Usernames  []string `json:"usernames"`
	}
	if !decodeJSON(w, r, &in) {
		return
	}
	if len(in.Usernames) > 0 {
		sdError(w, http.StatusBadRequest, "sd.api.gdpr.username", "usernames are not supported; use accountIds.")
		return
	}
	if len(in.AccountIDs) == 0 {
		sdError(w, http.StatusBadRequest, "sd.customer.ids.required", "accountIds must name at least one account.")
		return
	}
	s.mu.Lock()
	missing := 0
	for _, id := range in.AccountIDs {
		if a := s.accountLocked(id); a != nil {
			a.inDesk = true
		} else {
			missing++
		}
	}
	s.mu.Unlock()
	if missing > 0 {
		sdError(w, http.StatusBadRequest, "sd.customer.not.found", fmt.Sprintf("%d of the accounts do not exist.", missing))
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// createRequest raises a customer request. Every check runs before anything is stored, so a
// rejected request leaves no trace.
func (s *Sandbox) createRequest(w http.ResponseWriter, r *http.Request) {
	var in struct {
		ServiceDeskID       string                     `json:"serviceDeskId"`
		RequestTypeID       string                     `json:"requestTypeId"`
		RequestFieldValues  map[string]json.RawMessage `json:"requestFieldValues"`
		RaiseOnBehalfOf     string                     `json:"raiseOnBehalfOf"`
		RequestParticipants []string                   `json:"requestParticipants"`
		IsAdfRequest        bool                       `json:"isAdfRequest"`
	}
	if !decodeJSON(w, r, &in) {
		return
	}
	if in.ServiceDeskID != s.opts.ServiceDeskID {
		sdError(w, http.StatusBadRequest, "sd.service.desk.not.found", "The service desk does not exist.")
		return
	}
	if in.RequestTypeID != s.opts.RequestTypeID {
		sdError(w, http.StatusBadRequest, "sd.request.type.not.found", "The request type does not exist in this service desk.")
		return
	}
	if in.IsAdfRequest {
		sdError(w, http.StatusBadRequest, "sd.api.adf.unsupported", "isAdfRequest is not supported by the sandbox; send wiki markup strings.")
		return
	}
	summary, description, problem := requestFields(in.RequestFieldValues)
	if problem != "" {
		sdError(w, http.StatusBadRequest, "sd.validation.request.creation.failure",
			"Your request could not be created. Please check the fields have been correctly filled in. "+problem)
		return
	}

	s.mu.Lock()
	reporter := s.serviceAccount
	if in.RaiseOnBehalfOf != "" {
		reporter = s.accountLocked(in.RaiseOnBehalfOf)
	}
	problem = ""
	switch {
	case reporter == nil:
		problem = "raiseOnBehalfOf names an account that does not exist."
	case s.opts.ClosedDesk && reporter != s.serviceAccount && !reporter.inDesk:
		// A closed desk only takes requests from its customers; the client must add the
		// account to the desk first.
		problem = "The customer is not a customer of this service desk, which only its customers can raise requests in."
	}
	for _, id := range in.RequestParticipants {
		if s.accountLocked(id) == nil {
			problem = "requestParticipants names an account that does not exist."
		}
	}
	if problem != "" {
		s.mu.Unlock()
		sdError(w, http.StatusBadRequest, "sd.request.create.invalid.user", problem)
		return
	}
	now := s.now()
	n := len(s.issues) + 1
	is := &issue{id: s.nextIDLocked(), key: fmt.Sprintf("%s-%d", s.opts.ProjectKey, n),
		deskID: in.ServiceDeskID, requestTypeID: in.RequestTypeID, summary: summary, description: description,
		reporter: reporter, status: "Waiting for support", category: categoryNew,
		created: now, updated: now, statusAt: now}
	s.issues = append(s.issues, is)
	dto := newCustomerRequestDTO(is, s.baseURL(r))
	s.mu.Unlock()

	if s.faults.takeDrop() {
		dropConnection(w)
		return
	}
	writeJSON(w, http.StatusCreated, dto)
}

// requestFields checks requestFieldValues against the sandbox's request type, which has a
// required summary and an optional description, both wiki-markup strings. Unknown fields are
// refused, as JSM refuses fields that are not on the request type.
func requestFields(values map[string]json.RawMessage) (summary, description, problem string) {
	keys := make([]string, 0, len(values))
	for k := range values {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		var v *string
		if err := json.Unmarshal(values[k], &v); err != nil {
			if k == "summary" || k == "description" {
				return "", "", fmt.Sprintf("Field '%s' must be a string.", k)
			}
			return "", "", fmt.Sprintf("Field '%s' is not valid for this request type.", k)
		}
		switch k {
		case "summary":
			if v != nil {
				summary = *v
			}
		case "description":
			if v != nil {
				description = *v
			}
		default:
			return "", "", fmt.Sprintf("Field '%s' is not valid for this request type.", k)
		}
	}
	switch {
	case strings.TrimSpace(summary) == "":
		return "", "", "Summary is required."
	case strings.ContainsAny(summary, "\r\n"):
		return "", "", "The summary is invalid because it contains newline characters."
	case len(utf16.Encode([]rune(summary))) > maxSummaryUnits:
		// Jira counts a Java String's length: an emoji is two characters.
		return "", "", "Summary must be less than 255 characters."
	case utf8.RuneCountInString(description) > maxTextRunes:
		return "", "", "Description: the entered text is too long. It exceeds the allowed limit of 32,767 characters."
	}
	return summary, description, ""
}

func (s *Sandbox) getRequest(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	is := s.issueLocked(r.PathValue("issueIdOrKey"))
	var dto customerRequestDTO
	if is != nil {
		dto = newCustomerRequestDTO(is, s.baseURL(r))
	}
	s.mu.Unlock()
	if is == nil {
		requestNotFound(w)
		return
	}
	writeJSON(w, http.StatusOK, dto)
}

func requestNotFound(w http.ResponseWriter) {
	sdError(w, http.StatusNotFound, "sd.request.not.found", "The request does not exist or you do not have permission to see it.")
}

type uploadedFile struct {
	filename, mediaType string
	content             []byte
}

// attachTemporaryFile stores uploaded files until they are attached or expire. The spec
// describes its body as Java objects, so the wire format is checked here instead, and a
// malformed body counts as a spec violation like any other.
func (s *Sandbox) attachTemporaryFile(w http.ResponseWriter, r *http.Request) {
	if !s.deskFound(w, r) {
		return
	}
	files, err := readFileParts(r)
	if err != nil {
		s.addViolation(r, err.Error())
		sdError(w, http.StatusBadRequest, "sd.attachment.invalid", err.Error())
		return
	}
	if len(files) > maxTemporaryFiles {
		sdError(w, http.StatusRequestEntityTooLarge, "sd.attachment.too.many", "More than 60 files were uploaded.")
		return
	}
	type tempDTO struct {
		TemporaryAttachmentID string `json:"temporaryAttachmentId"`
		FileName              string `json:"fileName"`
	}
	out := struct {
		TemporaryAttachments []tempDTO `json:"temporaryAttachments"`
	}{}
	s.mu.Lock()
	now := s.now()
	for id, t := range s.temps {
		if !now.Before(t.expires) {
			delete(s.temps, id)
		}
	}
	for _, f := range files {
		t := &tempFile{id: newTemporaryAttachmentID(), deskID: s.opts.ServiceDeskID, filename: f.filename,
			mediaType: f.mediaType, content: f.content, expires: now.Add(s.opts.TempAttachmentTTL)}
		s.temps[t.id] = t
		out.TemporaryAttachments = append(out.TemporaryAttachments, tempDTO{TemporaryAttachmentID: t.id, FileName: t.filename})
	}
	s.mu.Unlock()
	writeJSON(w, http.StatusCreated, out)
}

// readFileParts reads the `file` parts of a multipart/form-data body; other parts are
// ignored, as JSM ignores them.
func readFileParts(r *http.Request) ([]uploadedFile, error) {
	const want = "body must be multipart/form-data with one or more `file` parts that have a filename"
	mt, params, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/form-data" || params["boundary"] == "" {
		return nil, fmt.Errorf("%s; got Content-Type %q", want, r.Header.Get("Content-Type"))
	}
	body, _ := io.ReadAll(r.Body)
	mr := multipart.NewReader(bytes.NewReader(body), params["boundary"])
	var files []uploadedFile
	for {
		part, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%s; malformed multipart body: %v", want, err)
		}
		if part.FormName() != "file" {
			continue
		}
		if part.FileName() == "" {
			return nil, fmt.Errorf("%s; a file part has no filename", want)
		}
		content, err := io.ReadAll(part)
		if err != nil {
			return nil, fmt.Errorf("%s; malformed multipart body: %v", want, err)
		}
		mediaType := part.Header.Get("Content-Type")
		if mediaType == "" || mediaType == "application/octet-stream" {
			mediaType = http.DetectContentType(content)
		}
		files = append(files, uploadedFile{filename: part.FileName(), mediaType: mediaType, content: content})
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("%s; found none", want)
	}
	return files, nil
}

// attachToRequest turns temporary files into attachments of a request, with a comment whose
// visibility is that of the files. Temporary files are single use.
func (s *Sandbox) attachToRequest(w http.ResponseWriter, r *http.Request) {
	var in struct {
		TemporaryAttachmentIDs []string `json:"temporaryAttachmentIds"`
		Public                 *bool    `json:"public"`
		AdditionalComment      *struct {
			Body string `json:"body"`
		} `json:"additionalComment"`
	}
	if !decodeJSON(w, r, &in) {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	is := s.issueLocked(r.PathValue("issueIdOrKey"))
	if is == nil {
		requestNotFound(w)
		return
	}
	if in.Public == nil {
		sdError(w, http.StatusBadRequest, "sd.attachment.public.required", "The field 'public' is required.")
		return
	}
	if len(in.TemporaryAttachmentIDs) == 0 {
		sdError(w, http.StatusBadRequest, "sd.attachment.ids.required", "The field 'temporaryAttachmentIds' must name at least one file.")
		return
	}
	now := s.now()
	for i, id := range in.TemporaryAttachmentIDs {
		t := s.temps[id]
		if t == nil || t.deskID != is.deskID || !now.Before(t.expires) || slices.Contains(in.TemporaryAttachmentIDs[:i], id) {
			sdError(w, http.StatusBadRequest, "sd.attachment.temporary.expired",
				"A temporary attachment has expired, was already used, or does not exist.")
			return
		}
	}
	// JSM records attachments as a comment that links the files, with the given text first.
	var body []string
	if in.AdditionalComment != nil && in.AdditionalComment.Body != "" {
		body = append(body, in.AdditionalComment.Body)
	}
	base := s.baseURL(r)
	result := struct {
		Comment     commentDTO             `json:"comment"`
		Attachments pageDTO[attachmentDTO] `json:"attachments"`
	}{}
	var dtos []attachmentDTO
	for _, id := range in.TemporaryAttachmentIDs {
		t := s.temps[id]
		delete(s.temps, id)
		a := &attachment{id: s.nextIDLocked(), filename: t.filename, mediaType: t.mediaType, content: t.content,
			public: *in.Public, author: s.serviceAccount, created: now}
		is.attachments = append(is.attachments, a)
		body = append(body, fmt.Sprintf("[^%s] _(%d B)_", a.filename, len(a.content)))
		dtos = append(dtos, newAttachmentDTO(a, base))
	}
	c := &comment{id: s.nextIDLocked(), body: strings.Join(body, " "), public: *in.Public, author: s.serviceAccount, created: now}
	is.comments = append(is.comments, c)
	is.updated = now
	result.Comment = newCommentDTO(is, c, base)
	result.Attachments = newPage(dtos, 0, len(dtos), base, "/rest/servicedeskapi/request/"+is.id+"/comment/"+c.id+"/attachment", nil)
	writeJSON(w, http.StatusCreated, result)
}

func (s *Sandbox) createComment(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Body   string `json:"body"`
		Public *bool  `json:"public"`
	}
	if !decodeJSON(w, r, &in) {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	is := s.issueLocked(r.PathValue("issueIdOrKey"))
	switch {
	case is == nil:
		requestNotFound(w)
	case in.Public == nil:
		sdError(w, http.StatusBadRequest, "sd.comment.public.required", "The field 'public' is required.")
	case strings.TrimSpace(in.Body) == "":
		sdError(w, http.StatusBadRequest, "sd.comment.body.required", "The comment body is required.")
	case utf8.RuneCountInString(in.Body) > maxTextRunes:
		sdError(w, http.StatusBadRequest, "sd.comment.body.too.long", "The comment is too long. It exceeds the allowed limit of 32,767 characters.")
	default:
		now := s.now()
		c := &comment{id: s.nextIDLocked(), body: in.Body, public: *in.Public, author: s.serviceAccount, created: now}
		is.comments = append(is.comments, c)
		is.updated = now
		writeJSON(w, http.StatusCreated, newCommentDTO(is, c, s.baseURL(r)))
	}
}

func (s *Sandbox) listComments(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	start, limit, ok := pageParams(w, q)
	if !ok {
		return
	}
	public, internal := boolParam(q, "public", true), boolParam(q, "internal", true)
	base := s.baseURL(r)
	s.mu.Lock()
	is := s.issueLocked(r.PathValue("issueIdOrKey"))
	var comments []commentDTO
	if is != nil {
		for _, c := range is.comments {
			if (c.public && public) || (!c.public && internal) {
				comments = append(comments, newCommentDTO(is, c, base))
			}
		}
	}
	s.mu.Unlock()
	if is == nil {
		requestNotFound(w)
		return
	}
	query := url.Values{"public": {strconv.FormatBool(public)}, "internal": {strconv.FormatBool(internal)}}
	writeJSON(w, http.StatusOK, newPage(comments, start, limit, base, r.URL.Path, query))
}

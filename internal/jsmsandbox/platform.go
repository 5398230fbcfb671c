package jsmsandbox

import (
	"cmp"
	"encoding/base64"
	"net/http"
	"slices"
	"strconv"
	"strings"
)

// The Jira platform (/rest/api/3) handlers: user search, JQL search and issue reads.

const (
	maxSearchResults    = 100  // per page when fields beyond id are requested
	maxSearchResultsIDs = 5000 // per page when only ids are requested, as in Jira Cloud
	maxUserResults      = 1000
)

// findUsers searches all accounts. Like Jira's it is a fuzzy search (a case-insensitive
// substring of the email or display name), so a client must still compare emails exactly.
func (s *Sandbox) findUsers(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	query, accountID := q.Get("query"), q.Get("accountId")
	switch {
	case q.Has("username"):
		platformError(w, http.StatusBadRequest, "The query parameter 'username' is not supported in GDPR strict mode.")
		return
	case query == "" && accountID == "":
		platformError(w, http.StatusBadRequest, "One of 'query', 'accountId' or 'property' parameters must be supplied.")
		return
	case query != "" && accountID != "":
		platformError(w, http.StatusBadRequest, "Only one of 'query' and 'accountId' may be supplied.")
		return
	}
	startAt, err1 := intParam(q, "startAt", 0)
	maxResults, err2 := intParam(q, "maxResults", 50)
	if err1 != nil || err2 != nil || startAt < 0 || maxResults < 0 {
		platformError(w, http.StatusBadRequest, "startAt and maxResults must be zero or more.")
		return
	}
	maxResults = min(maxResults, maxUserResults)
	needle := strings.ToLower(query)
	base := s.baseURL(r)
	s.mu.Lock()
	var users []platformUser
	for _, a := range s.accounts {
		if (accountID != "" && a.id == accountID) ||
			(query != "" && (strings.Contains(strings.ToLower(a.email), needle) || strings.Contains(strings.ToLower(a.displayName), needle))) {
			users = append(users, newPlatformUser(a, base))
		}
	}
	s.mu.Unlock()
	from := min(startAt, len(users))
	page := users[from:min(from+maxResults, len(users))]
	if page == nil {
		page = []platformUser{}
	}
	writeJSON(w, http.StatusOK, page)
}

// searchJQL is the enhanced JQL search. Its index lags: an issue is found only SearchLag
// after it was created, and a comment only SearchLag after it was added, so a client that
// searches right after an ambiguous create must retry with delays, as with Jira Cloud.
func (s *Sandbox) searchJQL(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	query, err := parseJQL(q.Get("jql"))
	if err != nil {
		platformError(w, http.StatusBadRequest, err.Error())
		return
	}
	if len(query.clauses) == 0 {
		platformError(w, http.StatusBadRequest, "Unbounded JQL queries are not allowed here. Please add a search restriction to your query.")
		return
	}
	for _, c := range query.clauses {
		if c.field == "project" && !strings.EqualFold(c.value, s.opts.ProjectKey) {
			platformError(w, http.StatusBadRequest, "The value '"+c.value+"' does not exist for the field 'project'.")
			return
		}
	}
	fields := parseFieldSet(q["fields"], "id")
	limit := maxSearchResults
	if fields.onlyID() {
		limit = maxSearchResultsIDs
	}
	maxResults, err := intParam(q, "maxResults", 50)
	if err != nil || maxResults < 1 {
		platformError(w, http.StatusBadRequest, "maxResults must be one or more.")
		return
	}
	maxResults = min(maxResults, limit)
	offset, ok := decodePageToken(q.Get("nextPageToken"))
	if !ok {
		platformError(w, http.StatusBadRequest, "The nextPageToken is invalid or has expired.")
		return
	}

	base := s.baseURL(r)
	s.mu.Lock()
	now := s.now()
	var found []*issue
	for _, is := range s.issues {
		if now.Before(is.created.Add(s.opts.SearchLag)) {
			continue
		}
		d := indexedIssue{is: is}
		for _, c := range is.comments {
			if !now.Before(c.created.Add(s.opts.SearchLag)) {
				d.comments = append(d.comments, c.body)
			}
		}
		if query.matches(d) {
			found = append(found, is)
		}
	}
	sortIssues(found, query.order)
	from := min(offset, len(found))
	to := min(from+maxResults, len(found))
	issues := make([]map[string]any, 0, to-from)
	for _, is := range found[from:to] {
		issues = append(issues, issueJSON(is, fields, base))
	}
	s.mu.Unlock()

	out := map[string]any{"issues": issues, "isLast": to >= len(found)}
	if to < len(found) {
		out["nextPageToken"] = encodePageToken(to)
	}
	writeJSON(w, http.StatusOK, out)
}

// sortIssues applies the first ORDER BY key, with the id breaking ties; without ORDER BY
// the newest issues come first. Keys sort like ids because both grow with each create.
func sortIssues(issues []*issue, order []jqlOrder) {
	o := jqlOrder{field: "created", desc: true}
	if len(order) > 0 {
		o = order[0]
	}
	slices.SortStableFunc(issues, func(a, b *issue) int {
		ai, _ := strconv.Atoi(a.id)
		bi, _ := strconv.Atoi(b.id)
		c := cmp.Compare(ai, bi)
		switch o.field {
		case "created":
			c = cmp.Or(a.created.Compare(b.created), c)
		case "updated":
			c = cmp.Or(a.updated.Compare(b.updated), c)
		}
		if o.desc {
			return -c
		}
		return c
	})
}

// Page tokens are opaque to clients; the sandbox's only carry the offset.
func encodePageToken(offset int) string {
	return base64.RawURLEncoding.EncodeToString([]byte("offset:" + strconv.Itoa(offset)))
}

func decodePageToken(token string) (int, bool) {
	if token == "" {
		return 0, true
	}
	b, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil {
		return 0, false
	}
	n, err := strconv.Atoi(strings.TrimPrefix(string(b), "offset:"))
	return n, err == nil && n >= 0 && strings.HasPrefix(string(b), "offset:")
}

// getIssue reads one issue straight from the database, so unlike search it never lags.
func (s *Sandbox) getIssue(w http.ResponseWriter, r *http.Request) {
	fields := parseFieldSet(r.URL.Query()["fields"], "*all")
	s.mu.Lock()
	is := s.issueLocked(r.PathValue("issueIdOrKey"))
	var out map[string]any
	if is != nil {
		out = issueJSON(is, fields, s.baseURL(r))
	}
	s.mu.Unlock()
	if is == nil {
		platformError(w, http.StatusNotFound, "Issue does not exist or you do not have permission to see it.")
		return
	}
	writeJSON(w, http.StatusOK, out)
}

// fieldSet is the fields parameter: names given as repeated parameters or comma-separated,
// *all and *navigable for every field, and -name to leave one out.
type fieldSet struct {
	all      bool
	names    map[string]bool
	excluded map[string]bool
}

func parseFieldSet(values []string, def string) fieldSet {
	if len(values) == 0 {
		values = []string{def}
	}
	fs := fieldSet{names: map[string]bool{}, excluded: map[string]bool{}}
	for _, v := range values {
		for name := range strings.SplitSeq(v, ",") {
			switch name = strings.TrimSpace(name); {
			case name == "*all" || name == "*navigable":
				fs.all = true
			case strings.HasPrefix(name, "-"):
				fs.excluded[name[1:]] = true
			case name != "":
				fs.names[name] = true
			}
		}
	}
	return fs
}

func (fs fieldSet) has(name string) bool {
	return !fs.excluded[name] && (fs.all || fs.names[name])
}

// onlyID reports whether nothing but the id was asked for; Jira then returns bare ids.
func (fs fieldSet) onlyID() bool {
	if fs.all {
		return false
	}
	for name := range fs.names {
		if name != "id" {
			return false
		}
	}
	return true
}

// issueJSON is the platform API's IssueBean with the requested fields; unknown field names
// are ignored, as Jira ignores them.
func issueJSON(is *issue, fs fieldSet, base string) map[string]any {
	out := map[string]any{"id": is.id}
	if fs.onlyID() {
		return out
	}
	out["expand"] = ""
	out["self"] = base + "/rest/api/3/issue/" + is.id
	out["key"] = is.key
	fields := map[string]any{}
	if fs.has("summary") {
		fields["summary"] = is.summary
	}
	if fs.has("description") {
		if is.description == "" {
			fields["description"] = nil
		} else {
			fields["description"] = adfDocument(is.description)
		}
	}
	if fs.has("status") {
		fields["status"] = newPlatformStatus(is, base)
	}
	if fs.has("created") {
		fields["created"] = is.created.UTC().Format(jiraTime)
	}
	if fs.has("updated") {
		fields["updated"] = is.updated.UTC().Format(jiraTime)
	}
	if fs.has("reporter") {
		fields["reporter"] = newPlatformUser(is.reporter, base)
	}
	if fs.has("project") {
		key := projectKeyOf(is.key)
		fields["project"] = map[string]any{"self": base + "/rest/api/3/project/" + key, "id": "10000",
			"key": key, "name": key + " support", "projectTypeKey": "service_desk"}
	}
	out["fields"] = fields
	return out
}

package sitesandbox

import (
	"encoding/json"
	"mime"
	"net/http"
	"slices"
)

// administer is the global permission of Jira administrators, the one supportbridge checks
// before it lets someone decide on log access.
const administer = "ADMINISTER"

// globalPermissionKeys are Jira Cloud's built-in global permissions. Asking for any other
// key is answered 400, as Jira does; of these the site only ever grants ADMINISTER.
var globalPermissionKeys = []string{
	administer, "SYSTEM_ADMIN", "USER_PICKER", "CREATE_SHARED_OBJECTS",
	"MANAGE_GROUP_FILTER_SUBSCRIPTIONS", "BULK_CHANGE", "MANAGE_GLOBAL_ISSUE_FILTER_SUBSCRIPTIONS",
	"SERVICEDESK_AGENT", "BROWSE_USERS",
}

// userEmail answers GET /rest/api/3/user/email with Jira's UnrestrictedUserEmail.
func (s *Site) userEmail(w http.ResponseWriter, r *http.Request) {
	id := r.URL.Query().Get("accountId")
	if id == "" {
		// The spec makes accountId required; this only matters when running unvalidated.
		writeError(w, http.StatusBadRequest, "The accountId query parameter needs to be provided.")
		return
	}
	s.mu.Lock()
	u, ok := s.users[id]
	var email string
	if ok {
		email = u.email
	}
	s.mu.Unlock()
	if !ok {
		writeError(w, http.StatusNotFound, "Specified user does not exist or you do not have required permissions.")
		return
	}
	writeJSON(w, http.StatusOK, struct {
		AccountID string `json:"accountId"`
		Email     string `json:"email"`
	}{id, email})
}

// bulkPermissionsRequest is Jira's BulkPermissionsRequestBean.
type bulkPermissionsRequest struct {
	AccountID          string            `json:"accountId"`
	GlobalPermissions  []string          `json:"globalPermissions"`
	ProjectPermissions []json.RawMessage `json:"projectPermissions"`
}

// bulkPermissionGrants is Jira's BulkPermissionGrants; both arrays are required and never
// null.
type bulkPermissionGrants struct {
	GlobalPermissions  []string `json:"globalPermissions"`
	ProjectPermissions []any    `json:"projectPermissions"`
}

// checkPermissions answers POST /rest/api/3/permissions/check with the asked-for global
// permissions the account holds. Without accountId Jira answers for the caller, which for
// an app is the app's own user: never an administrator. An account the site does not have
// holds nothing.
func (s *Site) checkPermissions(w http.ResponseWriter, r *http.Request) {
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/json" {
		writeError(w, http.StatusUnsupportedMediaType, "Unsupported media type: the body must be application/json.")
		return
	}
	var req bulkPermissionsRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		writeError(w, http.StatusBadRequest, "The request body is not valid JSON.")
		return
	}
	if len(req.ProjectPermissions) > 0 {
		// The site has no projects; answering "none" would let a client rely on behaviour
		// nobody checked.
		s.addViolation(r.Method, r.URL.Path, "projectPermissions not implemented by sitesandbox")
		writeError(w, http.StatusBadRequest, "projectPermissions are not implemented by the sandbox.")
		return
	}
	unknown := map[string]string{}
	for _, p := range req.GlobalPermissions {
		if !slices.Contains(globalPermissionKeys, p) {
			unknown[p] = "Unrecognized permission"
		}
	}
	if len(unknown) > 0 {
		writeJSON(w, http.StatusBadRequest, errorCollection{ErrorMessages: []string{}, Errors: unknown})
		return
	}
	s.mu.Lock()
	admin := req.AccountID != "" && s.users[req.AccountID] != nil && s.users[req.AccountID].admin
	s.mu.Unlock()
	grants := bulkPermissionGrants{GlobalPermissions: []string{}, ProjectPermissions: []any{}}
	if admin && slices.Contains(req.GlobalPermissions, administer) {
		grants.GlobalPermissions = append(grants.GlobalPermissions, administer)
	}
	writeJSON(w, http.StatusOK, grants)
}

// errorCollection is the platform API's ErrorCollection, Jira's shape for every error.
type errorCollection struct {
	ErrorMessages []string          `json:"errorMessages"`
	Errors        map[string]string `json:"errors"`
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, errorCollection{ErrorMessages: []string{msg}, Errors: map[string]string{}})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json;charset=UTF-8")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false) // Jira does not escape <, > and & in JSON
	enc.Encode(v)
}

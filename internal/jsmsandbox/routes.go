package jsmsandbox

import "net/http"

// routes lists every endpoint the sandbox implements. A call to anything else under /rest/
// is answered 404 and recorded as a violation, so a client cannot come to depend on an
// endpoint nobody checked.
func (s *Sandbox) routes() {
	api := http.NewServeMux()
	api.HandleFunc("POST /rest/servicedeskapi/customer", s.createCustomer)
	api.HandleFunc("GET /rest/servicedeskapi/servicedesk/{serviceDeskId}/customer", s.listDeskCustomers)
	api.HandleFunc("POST /rest/servicedeskapi/servicedesk/{serviceDeskId}/customer", s.addDeskCustomers)
	api.HandleFunc("POST /rest/servicedeskapi/servicedesk/{serviceDeskId}/attachTemporaryFile", s.attachTemporaryFile)
	api.HandleFunc("POST /rest/servicedeskapi/request", s.createRequest)
	api.HandleFunc("GET /rest/servicedeskapi/request/{issueIdOrKey}", s.getRequest)
	api.HandleFunc("POST /rest/servicedeskapi/request/{issueIdOrKey}/attachment", s.attachToRequest)
	api.HandleFunc("GET /rest/servicedeskapi/request/{issueIdOrKey}/comment", s.listComments)
	api.HandleFunc("POST /rest/servicedeskapi/request/{issueIdOrKey}/comment", s.createComment)
	api.HandleFunc("GET /rest/api/3/user/search", s.findUsers)
	api.HandleFunc("GET /rest/api/3/search/jql", s.searchJQL)
	api.HandleFunc("GET /rest/api/3/issue/{issueIdOrKey}", s.getIssue)
	s.api = api

	web := http.NewServeMux()
	web.HandleFunc("GET /{$}", s.servePage)
	// The links JSM puts in _links.web and _links.agent lead to the request on the page.
	web.HandleFunc("GET /browse/{key}", s.redirectToRequest)
	web.HandleFunc("GET /servicedesk/customer/portal/{serviceDeskId}/{key}", s.redirectToRequest)
	s.web = web
}

package report

import "github.com/supportbridge/supportbridge/internal/tenant"

// Renderer turns a report into what the delivery worker sends to JSM: the request
// description, the internal comment for agents and the support bundle file.
type Renderer struct {
	// AppKey is the Connect app key shown in the account data.
	AppKey string
}

// Description is the request description in JSM wiki markup, ending with the marker.
func (r Renderer) Description(rep Report) string { return RenderDescription(rep) }

// InternalComment is the agents-only comment with account and operation data.
func (r Renderer) InternalComment(rep Report, t tenant.Tenant) string {
	return RenderInternalComment(rep, t, r.AppKey)
}

// Bundle is the support bundle JSON attached to the request for agents only.
func (r Renderer) Bundle(rep Report, t tenant.Tenant) ([]byte, error) {
	return NewBundle(rep, t, r.AppKey).JSON()
}

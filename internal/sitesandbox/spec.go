package sitesandbox

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"

	"github.com/supportbridge/supportbridge/internal/jsmsandbox"
)

// This file validates calls against the platform spec, as jsmsandbox/spec.go does for the
// JSM and platform specs together; the site answers a handful of platform operations only.

// Spec is Atlassian's Jira platform OpenAPI spec, parsed and routed. It is read-only once
// loaded and may be shared by any number of sites.
type Spec struct {
	router routers.Router
}

// LoadSpec parses the platform spec at path.
//
// The document is not validated: Atlassian's published spec fails kin-openapi's
// doc.Validate (examples stored as JSON strings, an enum default ""), yet its paths,
// parameters and DTOs are exact, which is what validation needs. Its servers entry
// (your-domain.atlassian.net) is dropped so that routing matches on the path alone.
func LoadSpec(path string) (*Spec, error) {
	doc, err := openapi3.NewLoader().LoadFromFile(path)
	if err != nil {
		return nil, fmt.Errorf("sitesandbox: load spec %s: %w", path, err)
	}
	doc.Servers = nil
	router, err := gorillamux.NewRouter(doc)
	if err != nil {
		return nil, fmt.Errorf("sitesandbox: route spec %s: %w", path, err)
	}
	return &Spec{router: router}, nil
}

// SpecPathFromEnv returns where the platform spec should be: SB_JIRA_SPEC, or else
// ../shared/jira-platform-openapi.json next to the module root, as jsmsandbox finds it. ok
// says whether a file is there; dev mode serves unvalidated without it, tests skip (or fail
// in CI).
func SpecPathFromEnv() (path string, ok bool) {
	_, path = jsmsandbox.SpecPathsFromEnv()
	if path == "" {
		return "", false
	}
	_, err := os.Stat(path)
	return path, err == nil
}

// checkedRequest is a request that passed validation, kept to validate its answer.
type checkedRequest struct {
	input *openapi3filter.RequestValidationInput
}

// validateRequest finds the operation of a /rest call and validates the call against it.
// Credentials are the site's own business (the spec documents only basic auth and OAuth2),
// defaults are left out of the request, and a body sent to an operation that takes none is
// refused. With no spec every call passes unchecked.
func (sp *Spec) validateRequest(r *http.Request, body []byte) (*checkedRequest, error) {
	if sp == nil {
		return nil, nil
	}
	route, params, err := sp.router.FindRoute(r)
	if err != nil {
		return nil, fmt.Errorf("no operation in Atlassian's spec: %w", err)
	}
	vr := r.Clone(r.Context())
	vr.Body = io.NopCloser(bytes.NewReader(body))
	input := &openapi3filter.RequestValidationInput{
		Request: vr, PathParams: params, Route: route,
		Options: &openapi3filter.Options{
			AuthenticationFunc:                openapi3filter.NoopAuthenticationFunc,
			SkipSettingDefaults:               true,
			RejectWhenRequestBodyNotSpecified: true,
		},
	}
	if err := openapi3filter.ValidateRequest(context.WithoutCancel(r.Context()), input); err != nil {
		return nil, err
	}
	return &checkedRequest{input: input}, nil
}

// response validates what the site answered, so a site that drifts from Jira fails the
// tests that rely on it instead of teaching the client the wrong shapes.
func (c *checkedRequest) response(r *http.Request, rec *recorder) error {
	if c == nil || rec.status == 0 {
		return nil
	}
	input := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: c.input,
		Status:                 rec.status,
		Header:                 rec.Header(),
		Options:                &openapi3filter.Options{IncludeResponseStatus: false},
	}
	input.SetBodyBytes(bytes.Clone(rec.body.Bytes()))
	return openapi3filter.ValidateResponse(context.WithoutCancel(r.Context()), input)
}

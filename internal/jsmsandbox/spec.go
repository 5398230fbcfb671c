package jsmsandbox

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
)

// Specs are Atlassian's OpenAPI specs of the JSM and Jira platform REST APIs, parsed and
// routed. A Specs is read-only once loaded and may be shared by any number of sandboxes.
type Specs struct {
	jsm, platform routers.Router
}

// LoadSpecs parses the JSM and the Jira platform specs.
//
// The documents are not validated: Atlassian's published specs fail kin-openapi's
// doc.Validate (examples stored as JSON strings, a duplicate operationId getArticles, an
// enum default ""), yet their paths, parameters and DTOs are exact, which is what request
// validation needs. Their servers entry (your-domain.atlassian.net) is dropped so that
// routing matches on the path alone.
func LoadSpecs(jsmPath, platformPath string) (*Specs, error) {
	if jsmPath == "" || platformPath == "" {
		return nil, errors.New("jsmsandbox: both the JSM and the platform spec paths are needed")
	}
	jsm, err := loadRouter(jsmPath)
	if err != nil {
		return nil, err
	}
	platform, err := loadRouter(platformPath)
	if err != nil {
		return nil, err
	}
	return &Specs{jsm: jsm, platform: platform}, nil
}

func loadRouter(path string) (routers.Router, error) {
	doc, err := openapi3.NewLoader().LoadFromFile(path)
	if err != nil {
		return nil, fmt.Errorf("jsmsandbox: load spec %s: %w", path, err)
	}
	doc.Servers = nil
	router, err := gorillamux.NewRouter(doc)
	if err != nil {
		return nil, fmt.Errorf("jsmsandbox: route spec %s: %w", path, err)
	}
	return router, nil
}

// SpecPathsFromEnv returns the spec paths from SB_JSM_SPEC and SB_JIRA_SPEC, defaulting to
// ../shared/jsm-openapi.json and ../shared/jira-platform-openapi.json next to the module
// root (found by walking up from the working directory to go.mod), which is where the
// specs live in a checkout. A default is empty when no module root is found.
func SpecPathsFromEnv() (jsmPath, platformPath string) {
	jsmPath, platformPath = os.Getenv("SB_JSM_SPEC"), os.Getenv("SB_JIRA_SPEC")
	if jsmPath != "" && platformPath != "" {
		return jsmPath, platformPath
	}
	root := moduleRoot()
	if root == "" {
		return jsmPath, platformPath
	}
	shared := filepath.Join(filepath.Dir(root), "shared")
	if jsmPath == "" {
		jsmPath = filepath.Join(shared, "jsm-openapi.json")
	}
	if platformPath == "" {
		platformPath = filepath.Join(shared, "jira-platform-openapi.json")
	}
	return jsmPath, platformPath
}

// moduleRoot is the nearest directory at or above the working directory holding a go.mod;
// tests run in their package directory, so this finds the repository from any package.
func moduleRoot() string {
	dir, err := os.Getwd()
	if err != nil {
		return ""
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return ""
		}
		dir = parent
	}
}

// sharedSpecs memoises parsed specs by path for NewTestServer. Parsing the 2.4 MB platform
// spec takes most of a second, a package may start dozens of test servers, and a Specs is
// never mutated after loading, so sharing it cannot couple tests.
var sharedSpecs sync.Map // [2]string → func() (*Specs, error)

// LoadSpecsOnce is LoadSpecs, loading each pair of files once per process: tests start many
// sandboxes, and parsing the specs takes a while.
func LoadSpecsOnce(jsmPath, platformPath string) (*Specs, error) {
	return loadSharedSpecs(jsmPath, platformPath)
}

func loadSharedSpecs(jsmPath, platformPath string) (*Specs, error) {
	load, _ := sharedSpecs.LoadOrStore([2]string{jsmPath, platformPath},
		sync.OnceValues(func() (*Specs, error) { return LoadSpecs(jsmPath, platformPath) }))
	return load.(func() (*Specs, error))()
}

// validationOptions accept any credentials (the sandbox checks Basic auth itself, and the
// JSM spec documents only OAuth2), leave defaults out of the request, and reject bodies sent
// to operations that take none.
func validationOptions(skipBody bool) *openapi3filter.Options {
	return &openapi3filter.Options{
		AuthenticationFunc:                openapi3filter.NoopAuthenticationFunc,
		SkipSettingDefaults:               true,
		RejectWhenRequestBodyNotSpecified: true,
		ExcludeRequestBody:                skipBody,
	}
}

// checkedRequest is a request that passed validation, kept to validate its response.
type checkedRequest struct {
	input *openapi3filter.RequestValidationInput
}

// validateRequest finds the operation of a /rest call and validates the call against it.
// With no specs loaded every call passes unchecked (dev mode without the shared files).
func (sp *Specs) validateRequest(r *http.Request, body []byte) (*checkedRequest, error) {
	if sp == nil {
		return nil, nil
	}
	router := sp.platform
	if apiOf(r.URL.Path) == servicedeskAPI {
		router = sp.jsm
	}
	route, params, err := router.FindRoute(r)
	if err != nil {
		return nil, fmt.Errorf("no operation in Atlassian's spec: %w", err)
	}
	// attachTemporaryFile's body is described as Java MultipartFile objects, not as the
	// multipart wire format; its handler checks the parts itself.
	skipBody := route.Operation.OperationID == "attachTemporaryFile"
	vr := r.Clone(r.Context())
	vr.Body = io.NopCloser(bytes.NewReader(body))
	input := &openapi3filter.RequestValidationInput{
		Request: vr, PathParams: params, Route: route, Options: validationOptions(skipBody),
	}
	if err := openapi3filter.ValidateRequest(context.WithoutCancel(r.Context()), input); err != nil {
		return nil, err
	}
	return &checkedRequest{input: input}, nil
}

// response validates what the sandbox answered, so a sandbox that drifts from JSM fails the
// tests that rely on it instead of teaching the client the wrong shapes. Most JSM
// operations document only examples; those with a schema are checked.
func (c *checkedRequest) response(r *http.Request, rec *recorder) error {
	if c == nil || rec.dropped || rec.status == 0 {
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

// apiFamily tells the two REST APIs apart: they differ in error shape and in spec.
type apiFamily int

const (
	platformAPI apiFamily = iota
	servicedeskAPI
)

func apiOf(path string) apiFamily {
	if strings.HasPrefix(path, "/rest/servicedeskapi/") {
		return servicedeskAPI
	}
	return platformAPI
}

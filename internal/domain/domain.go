// Package domain holds what every use case of supportbridge shares and no adapter owns:
// today the one error that says a dependency could not be reached. Use-case packages
// (report, tenant, consent, …) declare their own errors; the HTTP layer maps them all in
// one table (internal/httpapi/errors.go).
package domain

import "errors"

// ErrUnavailable means a store or service the use case depends on could not be reached or
// did not answer in time. Nothing was changed, and the caller may retry (HTTP 503). Adapters
// wrap their library's errors with it; nothing above them needs to know which library.
var ErrUnavailable = errors.New("dependency unavailable")

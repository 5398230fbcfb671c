// Package supportbridge carries the files that belong to the whole service rather than to
// one package, such as the HTTP contract, so the binary can serve them.
package supportbridge

import _ "embed"

// OpenAPI is openapi.yaml, the HTTP contract; GET /openapi.yaml serves it.
//
//go:embed openapi.yaml
var OpenAPI []byte

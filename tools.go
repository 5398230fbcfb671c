//go:build tools

package supportbridge

import (
	_ "github.com/alicebob/miniredis/v2"
	_ "github.com/andygrunwald/go-jira"
	_ "github.com/gabriel-vasile/mimetype"
	_ "github.com/getkin/kin-openapi/openapi3"
	_ "github.com/gin-gonic/gin"
	_ "github.com/go-playground/validator/v10"
	_ "github.com/golang-jwt/jwt/v5"
	_ "github.com/google/go-cmp/cmp"
	_ "github.com/hashicorp/go-retryablehttp"
	_ "github.com/lestrrat-go/jwx/v3/jwk"
	_ "github.com/medama-io/go-useragent"
	_ "github.com/prometheus/client_golang/prometheus"
	_ "github.com/redis/go-redis/v9"
	_ "github.com/santhosh-tekuri/jsonschema/v6"
	_ "gopkg.in/yaml.v3"
)

// Package connect authenticates Atlassian Connect traffic and describes the app to Atlassian.
//
// It owns three things that must agree byte for byte with Atlassian: the canonical request
// and query string hash (qsh) that bind a JWT to one HTTP request, the verification of the
// RS256 signed-install tokens and HS256 context tokens that carry tenant identity, and the
// app descriptor that tells Atlassian where those requests go. It knows nothing of HTTP
// routing or storage: callers pass the request URL and a shared-secret lookup, and map the
// errors returned here to responses.
package connect

package redisstore

import (
	"regexp"
	"strings"
)

// KeyFamilies lists every kind of Redis key the service writes, as patterns: {t} is a
// tenant's hash tag, {q} the delivery queue's, <…> one segment without a colon. The README's
// data inventory has one row per family, and a test checks both against each other and
// against the keys a fully used database holds, so a new key family cannot go undocumented.
var KeyFamilies = []string{
	// Tenant data, all under the tenant's tag: deleted by a purge.
	"sb:{t}:tenant",
	"sb:{t}:report:<id>",
	"sb:{t}:report:<id>:files",
	"sb:{t}:idem:<hash>",
	"sb:{t}:sitetoken",
	"sb:{t}:gcra:user:<hash>",
	"sb:{t}:gcra:tenant",
	"sb:{t}:customer:<mac>",
	"sb:{t}:reporter:<mac>",
	"sb:{t}:consent:req:<id>",
	"sb:{t}:consent:grant:<id>",
	"sb:{t}:consent:grant:<id>:live",
	"sb:{t}:consent:grant:<id>:access",
	"sb:{t}:consent:due",
	"sb:{t}:consent:tickets",
	"sb:{t}:consent:reqs",
	"sb:{t}:consent:grants",
	"sb:{t}:consent:ticket:<digest>:req",
	"sb:{t}:consent:ticket:<digest>:grant",
	"sb:{t}:audit",
	"sb:{t}:audit:head",
	"sb:{t}:audit:tickets",
	"sb:{t}:errors:groups",
	"sb:{t}:errors:group:<fingerprint>",
	"sb:{t}:errors:group:<fingerprint>:ids",
	"sb:{t}:errors:rate:<window>",
	"sb:{t}:usage:<day>",
	"sb:{t}:purge",
	"sb:{t}:tombstone",
	// Lookups that name a tenant from outside its tag: removed by a purge while they still
	// name it.
	"sb:idx:cloud:<cloudId>",
	"sb:idx:installation:<id>",
	"sb:idx:filed-by:<id>",
	"sb:idx:consent-req:<id>",
	"sb:idx:consent-grant:<id>",
	"sb:idx:consent-ticket:<digest>",
	"sb:idx:consent-token:<hash>",
	"sb:ticket:<issueKey>",
	"sb:consent:tenants",
	// The delivery queue, shared by all tenants.
	"sb:{q}:stream",
	"sb:{q}:dead",
	"sb:{q}:bytes",
	"sb:{q}:held",
	"sb:{q}:intents",
	// Service-wide.
	"sb:usage:<day>",
	"sb:lifecycle:marked",
	"sb:lease:<name>",
	"sb:{purge}:lease",
	"sb:{purge}:fence",
}

// familyRE turns a family pattern into the regexp of its keys.
func familyRE(pattern string) *regexp.Regexp {
	var b strings.Builder
	b.WriteString("^")
	rest := pattern
	for rest != "" {
		switch {
		case strings.HasPrefix(rest, "{t}"):
			b.WriteString(`\{t:[0-9a-f]{16}\}`)
			rest = rest[3:]
		case strings.HasPrefix(rest, "{q}"):
			b.WriteString(`\{q:[0-9a-f]{12}\}`)
			rest = rest[3:]
		case rest[0] == '<':
			end := strings.IndexByte(rest, '>')
			b.WriteString(`[^:]+`)
			rest = rest[end+1:]
		default:
			b.WriteString(regexp.QuoteMeta(rest[:1]))
			rest = rest[1:]
		}
	}
	b.WriteString("$")
	return regexp.MustCompile(b.String())
}

// KeyFamily names the family of key, or "" when none matches.
func KeyFamily(key string) string {
	for _, f := range KeyFamilies {
		if familyRE(f).MatchString(key) {
			return f
		}
	}
	return ""
}

package report

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/supportbridge/supportbridge/internal/tenant"
)

// MaxJiraText is the longest description or comment Jira accepts, in characters (UTF-16
// code units: Jira counts like Java does).
const MaxJiraText = 32767

// MarkerPrefix introduces the marker on the last line of a request description; the worker
// searches for the marker itself, the prefix tells an agent what the token is.
const MarkerPrefix = "supportbridge-ref: "

// Output budgets of the rendered sections, in UTF-16 code units after escaping. Together
// with the fixed text they stay under MaxJiraText even when every field is at its input
// limit and full of characters that need escaping; fitJira is the backstop.
const (
	budgetName        = 600
	budgetError       = 2500
	budgetRequestIDs  = 3000
	budgetDescription = 11000
	budgetCell        = 300
	budgetURL         = 2500
	budgetRecentError = 400
	budgetStack       = 5000
	maxRecentShown    = 10
)

// RenderDescription renders a report as the JSM request description in Jira wiki markup,
// laid out so that an agent sees at a glance what the user did, what failed and where.
// Every user-supplied value is escaped, so a report cannot inject links, mentions, images
// or macros; bare URLs are still linked by Jira, which shows their real target. The last
// line carries the marker, and the result never exceeds MaxJiraText.
func RenderDescription(r Report) string {
	var sections []string

	var did strings.Builder
	did.WriteString("h3. What the user did\n")
	fmt.Fprintf(&did, "*Operation:* %s\n", orNotReported(inline(r.Operation.Name, budgetName)))
	fmt.Fprintf(&did, "*When:* %s (reported %s)", orNotReported(formatTime(r.Operation.OccurredAt)), formatTime(r.ReceivedAt))
	sections = append(sections, did.String())

	var failed strings.Builder
	failed.WriteString("h3. What failed\n")
	status := ""
	if r.Operation.HTTPStatus != 0 {
		status = strconv.Itoa(r.Operation.HTTPStatus)
	}
	fmt.Fprintf(&failed, "*HTTP status:* %s\n", orNotReported(status))
	fmt.Fprintf(&failed, "*Error:* %s\n", orNotReported(block(r.Operation.ErrorMessage, budgetError)))
	fmt.Fprintf(&failed, "*Request ids:* %s", orNotReported(monospaceList(r.Operation.RequestIDs, budgetRequestIDs)))
	sections = append(sections, failed.String())

	desc := block(r.Description, budgetDescription)
	if desc == "" {
		desc = "_No description given._"
	}
	sections = append(sections, "h3. Description\n"+desc)

	env := r.Environment
	sections = append(sections, "h3. Environment\n"+table([][2]string{
		{"Browser", inline(env.Browser, budgetCell)},
		{"Version", inline(env.BrowserVersion, budgetCell)},
		{"OS", inline(env.OS, budgetCell)},
		{"Locale", inline(env.Locale, budgetCell)},
		{"Timezone", inline(env.Timezone, budgetCell)},
		{"Screen", inline(env.Screen, budgetCell)},
		{"URL", inline(env.URL, budgetURL)},
	}))

	if n := len(r.RecentErrors); n > 0 {
		var b strings.Builder
		fmt.Fprintf(&b, "h3. Recent errors (%d)", n)
		for _, e := range r.RecentErrors[:min(n, maxRecentShown)] {
			b.WriteString("\n* ")
			if !e.OccurredAt.IsZero() {
				b.WriteString(formatTime(e.OccurredAt) + " ")
			}
			if e.Source != "" {
				b.WriteString(monospace(e.Source, budgetCell) + " ")
			}
			b.WriteString(inline(e.Message, budgetRecentError))
		}
		if n > maxRecentShown {
			fmt.Fprintf(&b, "\n* _and %d more, listed in the support bundle_", n-maxRecentShown)
		}
		sections = append(sections, b.String())
	}

	if r.Operation.Stack != "" {
		sections = append(sections, "h3. Stack trace\n{code}\n"+codeBlock(r.Operation.Stack, budgetStack)+"\n{code}")
	}
	return fitJira(sections, MarkerPrefix+r.Marker)
}

// RenderInternalComment renders the account and operation data for the internal comment
// that only agents see. The tenant's shared secret is never part of it.
func RenderInternalComment(r Report, t tenant.Tenant, appKey string) string {
	if appKey == "" {
		appKey = t.Key
	}
	hide := secretHider(t.SharedSecret.Reveal())
	cell := func(s string) string { return inline(hide(s), budgetCell) }
	mono := func(s string) string { return monospace(hide(s), budgetCell) }
	sections := []string{
		"h3. Account\n" + table([][2]string{
			{"App key", mono(appKey)},
			{"Product", cell(t.ProductType)},
			{"Client key", mono(t.ClientKey)},
			{"Base URL", cell(t.BaseURL)},
			{"Display URL", cell(t.DisplayURL)},
			{"SEN", mono(t.ServiceEntitlementNumber)},
			{"Entitlement id", mono(t.EntitlementID)},
			{"Entitlement number", mono(t.EntitlementNumber)},
			{"OAuth client id", mono(t.OAuthClientID)},
			{"Installation id", mono(t.InstallationID)},
			{"Cloud id", mono(t.CloudID)},
			{"Forge installation id", mono(t.ForgeInstallationID)},
		}),
		"h3. Reporter\n" + table(reporterRows(r, cell, mono)),
		"h3. Operation\n" + table([][2]string{
			{"Report id", mono(r.ID)},
			{"Received", formatTime(r.ReceivedAt)},
			{"Operation", inline(hide(r.Operation.Name), budgetName)},
			{"Occurred", formatTime(r.Operation.OccurredAt)},
			{"HTTP status", httpStatus(r.Operation.HTTPStatus)},
			{"Error", inline(hide(r.Operation.ErrorMessage), budgetError)},
			{"Request ids", monospaceList(hideAll(hide, r.Operation.RequestIDs), budgetRequestIDs)},
			{"User agent", inline(hide(r.Environment.UserAgent), budgetURL)},
			{"Attachments", attachmentList(r.Attachments, hide)},
			{"Redactions", redactionList(r.Redactions)},
		}),
	}
	return fitJira(sections, "")
}

// reporterRows says who reported and how support can reach them. A typed address the site
// did not confirm is shown as what it is, an unverified hint: nobody was notified at it.
func reporterRows(r Report, cell, mono func(string) string) [][2]string {
	rows := [][2]string{{"Account id", mono(r.AccountID)}}
	switch r.EmailSource {
	case EmailFromSite:
		rows = append(rows, [2]string{"Email (confirmed by the site)", cell(r.Email)})
	case EmailUnverified:
		rows = append(rows, [2]string{"Email", "none confirmed by the site: raised by the service account, answer through the request"})
	}
	if r.EmailHint != "" && r.EmailHint != r.Email {
		rows = append(rows, [2]string{"Typed contact (unverified, not notified)", cell(r.EmailHint)})
	}
	return rows
}

func httpStatus(n int) string {
	if n == 0 {
		return ""
	}
	return strconv.Itoa(n)
}

func hideAll(hide func(string) string, in []string) []string {
	out := make([]string, len(in))
	for i, s := range in {
		out[i] = hide(s)
	}
	return out
}

func attachmentList(atts []AttachmentMeta, hide func(string) string) string {
	parts := make([]string, 0, len(atts))
	for _, a := range atts {
		parts = append(parts, fmt.Sprintf("%s (%s, %d bytes)",
			inline(hide(a.Filename), budgetCell), inline(a.MediaType, 64), a.Size))
	}
	return strings.Join(parts, ", ")
}

func redactionList(counts map[string]int) string {
	parts := make([]string, 0, len(counts))
	for _, k := range slices.Sorted(maps.Keys(counts)) {
		parts = append(parts, fmt.Sprintf("%s: %d", inline(k, 64), counts[k]))
	}
	return strings.Join(parts, ", ")
}

func orNotReported(s string) string {
	if s == "" {
		return "_not reported_"
	}
	return s
}

func formatTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format("2006-01-02 15:04:05 MST")
}

// table renders label/value rows; an empty value shows as "–" so the row stays readable.
func table(rows [][2]string) string {
	lines := make([]string, len(rows))
	for i, r := range rows {
		v := r[1]
		if v == "" {
			v = "–"
		}
		lines[i] = "||" + r[0] + "|" + v + "|"
	}
	return strings.Join(lines, "\n")
}

// monospaceList renders ids as {{id}}, {{id}}, … within budget, and says how many did not fit.
func monospaceList(ids []string, budget int) string {
	var b strings.Builder
	used := 0
	for i, id := range ids {
		item := monospace(id, budgetCell)
		if i > 0 {
			item = ", " + item
		}
		if used+jiraLen(item) > budget-40 {
			fmt.Fprintf(&b, " and %d more", len(ids)-i)
			break
		}
		b.WriteString(item)
		used += jiraLen(item)
	}
	return b.String()
}

// monospace renders user text as {{text}}. Jira finds the closing "}}" without regard to
// escapes, so text with braces of its own is shown plain rather than cut short.
func monospace(s string, budget int) string {
	if s == "" {
		return ""
	}
	if strings.ContainsAny(s, "{}") {
		return inline(s, budget)
	}
	return "{{" + inline(s, budget-4) + "}}"
}

// inline escapes user text for use inside a line: a table cell, a list item, a label's
// value. Line breaks become spaces, since they would end the cell or the item.
func inline(s string, budget int) string {
	s = strings.ReplaceAll(strings.ReplaceAll(strings.ReplaceAll(s, "\r\n", " "), "\n", " "), "\r", " ")
	return escapeWiki(s, budget)
}

// block escapes user text that may span lines, such as the description.
func block(s string, budget int) string {
	s = strings.ReplaceAll(strings.ReplaceAll(s, "\r\n", "\n"), "\r", "\n")
	return escapeWiki(s, budget)
}

// escapeWiki makes s render as itself in Jira wiki markup and cuts the result to budget
// code units, ending in "…" when cut. Escapes are never split by the cut.
//
// Every character the markup gives a meaning to is backslash-escaped, wherever it stands:
// deciding whether "-" or "*" would start strikethrough or bold depends on context, and an
// escape that was not needed costs nothing on screen. A backslash itself becomes the entity
// &#92;, because "\\" is Jira's forced line break. At the start of a line, "h1." to "h6."
// and "bq." would make a heading or quote; their dot becomes the entity &#46;.
func escapeWiki(s string, budget int) string {
	var b strings.Builder
	used := 0
	tokStart := -1 // index of the first non-blank character of the line, -1 before it
	for i, r := range s {
		var unit string
		switch {
		case r == '\\':
			unit = "&#92;"
		case strings.ContainsRune(`*_-+^~?{}[]|!#`, r):
			unit = `\` + string(r)
		case r == '.' && tokStart >= 0 && isBlockToken(s[tokStart:i]):
			unit = "&#46;"
		default:
			unit = string(r)
		}
		switch {
		case r == '\n':
			tokStart = -1
		case tokStart < 0 && r != ' ' && r != '\t':
			tokStart = i
		}
		n := jiraLen(unit)
		last := i+utf8.RuneLen(r) >= len(s)
		if used+n > budget || (!last && used+n > budget-1) {
			b.WriteString("…") // one unit, kept free until the last character
			return b.String()
		}
		b.WriteString(unit)
		used += n
	}
	return b.String()
}

// isBlockToken reports whether tok, followed by "." as the first word of a line, makes a
// heading ("h1." … "h6.") or a quote ("bq.").
func isBlockToken(tok string) bool {
	return strings.EqualFold(tok, "bq") || len(tok) == 2 && (tok[0] == 'h' || tok[0] == 'H') && tok[1] >= '1' && tok[1] <= '6'
}

// codeBlock prepares text for a {code} block, where markup is not interpreted, and cuts it
// to budget at a line break where possible. The only way out of the block is the closing
// "{code}" token, so every "{code" in the text gets a space after its brace.
func codeBlock(s string, budget int) string {
	s = strings.ReplaceAll(strings.ReplaceAll(s, "\r\n", "\n"), "\r", "\n")
	s = neutralizeCodeTags(s)
	if jiraLen(s) <= budget {
		return s
	}
	const note = "\n… (cut; the full stack trace is in the support bundle)"
	cut := cutToLen(s, budget-jiraLen(note))
	if i := strings.LastIndexByte(cut, '\n'); i > len(cut)/2 {
		cut = cut[:i]
	}
	return cut + note
}

func neutralizeCodeTags(s string) string {
	var b strings.Builder
	for {
		i := indexFold(s, "{code")
		if i < 0 {
			b.WriteString(s)
			return b.String()
		}
		b.WriteString(s[:i+1])
		b.WriteByte(' ')
		s = s[i+1:]
	}
}

// indexFold is strings.Index ignoring ASCII case.
func indexFold(s, sub string) int {
	for i := 0; i+len(sub) <= len(s); i++ {
		if strings.EqualFold(s[i:i+len(sub)], sub) {
			return i
		}
	}
	return -1
}

// fitJira joins the sections and the tail line, and makes sure the result fits in Jira.
// The budgets keep every section small enough; should they ever not, the longest sections
// are replaced by a note, never cut mid-markup, and the tail (the marker) always survives.
func fitJira(sections []string, tail string) string {
	join := func() string {
		out := strings.Join(sections, "\n\n")
		if tail != "" {
			out += "\n\n" + tail
		}
		return out
	}
	out := join()
	for jiraLen(out) > MaxJiraText {
		longest := 0
		for i := range sections {
			if len(sections[i]) > len(sections[longest]) {
				longest = i
			}
		}
		title, _, _ := strings.Cut(sections[longest], "\n")
		replacement := title + "\n_Too long to show here; see the support bundle._"
		if len(replacement) >= len(sections[longest]) {
			// Nothing left to shrink: only a pathological tail can get here.
			return cutToLen(out, MaxJiraText)
		}
		sections[longest] = replacement
		out = join()
	}
	return out
}

// jiraLen is the length Jira sees: UTF-16 code units.
func jiraLen(s string) int {
	n := 0
	for _, r := range s {
		n += utf16.RuneLen(r)
	}
	return n
}

// cutToLen cuts s to at most n UTF-16 code units without splitting a character.
func cutToLen(s string, n int) string {
	used := 0
	for i, r := range s {
		if used += utf16.RuneLen(r); used > n {
			return s[:i]
		}
	}
	return s
}

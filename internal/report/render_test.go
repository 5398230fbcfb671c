package report

import (
	"fmt"
	"math/rand/v2"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestRenderDescriptionLayout(t *testing.T) {
	r := Report{
		ID: "r1", Marker: "sbmabcdefghijklmnopqrstuvwxyz", ReceivedAt: testNow,
		Summary: "Export fails", Description: "I clicked Export.\n\nNothing happened.",
		Operation: Operation{
			Name: "export.csv", OccurredAt: testNow.Add(-time.Minute), HTTPStatus: 502,
			ErrorMessage: "Bad gateway", RequestIDs: []string{"req-1", "req-2"},
			Stack: "Error: boom\n    at export (app.js:10:5)",
		},
		RecentErrors: []RecentError{{Message: "timeout", OccurredAt: testNow.Add(-2 * time.Minute), Source: "api"}, {Message: "again"}},
		Environment: Environment{
			Browser: "Chrome", BrowserVersion: "131.0.0.0", OS: "Windows", Locale: "en-US",
			Timezone: "Europe/Berlin", Screen: "1920x1080", URL: "https://acme.atlassian.net/x",
		},
	}
	want := `h3. What the user did
*Operation:* export.csv
*When:* 2025-01-31 14:05:10 UTC (reported 2025-01-31 14:06:10 UTC)

h3. What failed
*HTTP status:* 502
*Error:* Bad gateway
*Request ids:* {{req\-1}}, {{req\-2}}

h3. Description
I clicked Export.

Nothing happened.

h3. Environment
||Browser|Chrome|
||Version|131.0.0.0|
||OS|Windows|
||Locale|en\-US|
||Timezone|Europe/Berlin|
||Screen|1920x1080|
||URL|https://acme.atlassian.net/x|

h3. Recent errors (2)
* 2025-01-31 14:04:10 UTC {{api}} timeout
* again

h3. Stack trace
{code}
Error: boom
    at export (app.js:10:5)
{code}

supportbridge-ref: sbmabcdefghijklmnopqrstuvwxyz`
	if diff := cmp.Diff(want, RenderDescription(r)); diff != "" {
		t.Errorf("description (-want +got):\n%s", diff)
	}
}

func TestRenderDescriptionEmptyReport(t *testing.T) {
	got := RenderDescription(Report{Marker: "sbmx", ReceivedAt: testNow})
	for _, want := range []string{
		"*Operation:* _not reported_", "*HTTP status:* _not reported_", "*Request ids:* _not reported_",
		"_No description given._", "||Browser|–|",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("missing %q in:\n%s", want, got)
		}
	}
	if strings.Contains(got, "Recent errors") || strings.Contains(got, "{code}") {
		t.Errorf("empty sections shown:\n%s", got)
	}
}

// injections are what a user might type to change the ticket's markup.
var injections = []string{
	"[click here|https://evil.example/login]",
	"[~accountid:5b10ac8d82e05b22cc7d4ef5] please approve",
	"!https://evil.example/pixel.png!",
	"{color:red}URGENT{color} {panel}x{panel} {quote}q{quote}",
	"{{mono}} *bold* _italic_ -strike- +under+ ^sup^ ~sub~ ??cite??",
	"||head||\n|cell|cell|",
	"h1. Fake heading\n  h2. Indented\nbq. quoted\nH3. upper",
	"# numbered\n* bullet\n- dash\n----",
	`a \\ forced break and \[ fake escape`,
	"{code}\nout of the box{code}\n{noformat}",
}

// unescapeWiki reverses escapeWiki, for checking that escaping lost nothing.
func unescapeWiki(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch {
		case strings.HasPrefix(s[i:], "&#92;"):
			b.WriteByte('\\')
			i += len("&#92;") - 1
		case strings.HasPrefix(s[i:], "&#46;"):
			b.WriteByte('.')
			i += len("&#46;") - 1
		case s[i] == '\\' && i+1 < len(s):
			i++
			b.WriteByte(s[i])
		default:
			b.WriteByte(s[i])
		}
	}
	return b.String()
}

// markupLeft reports markup that escaping should have neutralised: a special character not
// preceded by a backslash, a backslash that escapes nothing special, or a block token at
// the start of a line. The entities escapeWiki writes are skipped.
func markupLeft(s string) string {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case strings.HasPrefix(s[i:], "&#92;") || strings.HasPrefix(s[i:], "&#46;"):
			i += len("&#92;") - 1
		case c == '\\':
			if i+1 >= len(s) || !strings.ContainsRune(`*_-+^~?{}[]|!#`, rune(s[i+1])) {
				return fmt.Sprintf("bare backslash at %d", i)
			}
			i++
		case strings.IndexByte(`*_-+^~?{}[]|!#`, c) >= 0:
			return fmt.Sprintf("unescaped %q at %d", c, i)
		}
	}
	for line := range strings.SplitSeq(s, "\n") {
		l := strings.ToLower(strings.TrimLeft(line, " \t"))
		if len(l) >= 3 && l[0] == 'h' && l[1] >= '1' && l[1] <= '6' && l[2] == '.' || strings.HasPrefix(l, "bq.") {
			return fmt.Sprintf("block markup in line %q", line)
		}
	}
	return ""
}

func TestEscapeWiki(t *testing.T) {
	tests := []struct{ in, want string }{
		{"plain text, 100% fine.", "plain text, 100% fine."},
		{"[x|http://e.example]", `\[x\|http://e.example\]`},
		{"a\\b", "a&#92;b"},
		{"h1. Title\n h6. x\nbq. q\nh7. no\nah1. no", "h1&#46; Title\n h6&#46; x\nbq&#46; q\nh7. no\nah1. no"},
		{"{{x}}", `\{\{x\}\}`},
	}
	for _, tt := range tests {
		if got := escapeWiki(tt.in, 1000); got != tt.want {
			t.Errorf("escapeWiki(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
	for _, in := range injections {
		got := escapeWiki(in, 10000)
		if problem := markupLeft(got); problem != "" {
			t.Errorf("escapeWiki(%q) = %q: %s", in, got, problem)
		}
		if back := unescapeWiki(got); back != in {
			t.Errorf("escapeWiki(%q) does not round-trip: got back %q", in, back)
		}
	}
}

// TestEscapeWikiRandom checks the two properties on random text drawn from the characters
// that matter, including cut results.
func TestEscapeWikiRandom(t *testing.T) {
	alphabet := []rune("ab h1.bq\n\t \\*_-+^~?{}[]|!#&;é😀")
	rng := rand.New(rand.NewPCG(1, 2))
	for range 5000 {
		rs := make([]rune, rng.IntN(40))
		for i := range rs {
			rs[i] = alphabet[rng.IntN(len(alphabet))]
		}
		in := string(rs)
		budget := 5 + rng.IntN(200)
		got := escapeWiki(in, budget)
		if jiraLen(got) > budget {
			t.Fatalf("escapeWiki(%q, %d) = %q: %d units, over budget", in, budget, got, jiraLen(got))
		}
		if problem := markupLeft(strings.TrimSuffix(got, "…")); problem != "" {
			t.Fatalf("escapeWiki(%q) = %q: %s", in, got, problem)
		}
		if cut, ok := strings.CutSuffix(got, "…"); ok && !strings.HasSuffix(in, "…") {
			if back := unescapeWiki(cut); !strings.HasPrefix(in, back) {
				t.Fatalf("escapeWiki(%q) cut to %q, which is not a prefix", in, got)
			}
		} else if back := unescapeWiki(got); back != in {
			t.Fatalf("escapeWiki(%q) = %q does not round-trip: %q", in, got, back)
		}
	}
}

func TestRenderDescriptionEscapesUserText(t *testing.T) {
	payload := strings.Join(injections, "\n")
	oneLine := strings.ReplaceAll(payload, "\n", " ")
	r := Report{
		Marker: "sbmabcdefghijklmnopqrstuvwxyz", ReceivedAt: testNow, Description: payload,
		Operation: Operation{
			Name: oneLine, ErrorMessage: payload, RequestIDs: []string{"[x|http://e.example]", "{{y}}"},
			Stack: "at x\n{code}\nh1. escaped the code block\n{CODE}\n[link|http://e.example]",
		},
		RecentErrors: []RecentError{{Message: payload, Source: oneLine}},
		Environment: Environment{
			Browser: oneLine, BrowserVersion: oneLine, OS: oneLine, Locale: "|x|", Timezone: "*x*",
			Screen: "!x!", URL: "https://e.example/[a|b]",
		},
	}
	got := RenderDescription(r)

	// The structure is ours alone: headings, table rows, bullets and one code block.
	code := strings.Index(got, "{code}\n")
	end := strings.LastIndex(got, "\n{code}")
	if code < 0 || end < code || strings.Count(got, "{code}") != 2 {
		t.Fatalf("want exactly one code block:\n%s", got)
	}
	outside := got[:code] + got[end+len("\n{code}"):]
	var headings, rows, bullets int
	for line := range strings.SplitSeq(outside, "\n") {
		l := strings.ToLower(strings.TrimLeft(line, " \t"))
		switch {
		case strings.HasPrefix(l, "h3. "):
			headings++
		case slices.ContainsFunc([]string{"*operation:* ", "*when:* ", "*http status:* ", "*error:* ", "*request ids:* "},
			func(label string) bool { return strings.HasPrefix(l, label) }):
			// our labels
		case strings.HasPrefix(l, "||"):
			rows++
		case strings.HasPrefix(l, "* "):
			bullets++
		case len(l) >= 3 && l[0] == 'h' && l[1] >= '1' && l[1] <= '6' && l[2] == '.',
			strings.HasPrefix(l, "bq."), strings.HasPrefix(l, "#"), strings.HasPrefix(l, "-"),
			strings.HasPrefix(l, "|"), strings.HasPrefix(l, "{"), strings.HasPrefix(l, "*"):
			t.Errorf("user text made block markup: %q", line)
		}
	}
	if headings != 6 || rows != 7 || bullets != 1 {
		t.Errorf("got %d headings, %d table rows, %d bullets; want 6, 7, 1:\n%s", headings, rows, bullets, got)
	}
	// Every user value is in there escaped, and no payload survives raw.
	for _, want := range []string{
		inline(oneLine, budgetName), block(payload, budgetError), block(payload, budgetDescription),
		"*Request ids:* {{" + inline(r.Operation.RequestIDs[0], budgetCell-4) + "}}, " + inline("{{y}}", budgetCell), "||Locale|\\|x\\||", "||URL|https://e.example/\\[a\\|b\\]|",
	} {
		if !strings.Contains(outside, want) {
			t.Errorf("missing escaped value %.80q", want)
		}
	}
	for _, raw := range []string{"[click", "[~", "!https", "{color", "{{mono", "*bold*", "||head", `\\`, "{noformat}"} {
		if regexp.MustCompile(`(^|[^\\])` + regexp.QuoteMeta(raw)).MatchString(outside) {
			t.Errorf("raw markup %q survived", raw)
		}
	}
	// Inside it, the stack cannot close the block early.
	inside := got[code+len("{code}\n") : end]
	if strings.Contains(strings.ToLower(inside), "{code") {
		t.Errorf("the stack closes the code block:\n%s", inside)
	}
	if !strings.Contains(inside, "{ code}") || !strings.Contains(inside, "{ CODE}") {
		t.Errorf("the stack lost its text:\n%s", inside)
	}
}

func TestRenderDescriptionMarkerLast(t *testing.T) {
	r := Report{Marker: NewMarker(), ReceivedAt: testNow, Description: "x"}
	got := RenderDescription(r)
	lines := strings.Split(got, "\n")
	if last := lines[len(lines)-1]; last != "supportbridge-ref: "+r.Marker {
		t.Errorf("last line %q, want the marker", last)
	}
	if strings.Count(got, r.Marker) != 1 {
		t.Errorf("marker appears %d times, want once", strings.Count(got, r.Marker))
	}
}

// worstCaseReport fills every field to its input limit with characters that grow most when
// escaped (a backslash becomes five characters) or count double in UTF-16.
func worstCaseReport(unit string) Report {
	fill := func(n int) string { return strings.Repeat(unit, n/len(unit)) }
	var ids []string
	for range 50 {
		ids = append(ids, fill(128))
	}
	var recent []RecentError
	for range 50 {
		recent = append(recent, RecentError{Message: fill(4096), Source: fill(255), OccurredAt: testNow})
	}
	return Report{
		ID: "r1", Marker: "sbmabcdefghijklmnopqrstuvwxyz", ReceivedAt: testNow,
		Description: fill(32768), RecentErrors: recent,
		Operation: Operation{
			Name: fill(255), RequestIDs: ids, ErrorMessage: fill(4096), Stack: fill(65536), HTTPStatus: 500, OccurredAt: testNow,
		},
		Environment: Environment{
			Browser: fill(255), BrowserVersion: fill(255), OS: fill(255), Locale: fill(35), Timezone: fill(64),
			Screen: fill(32), URL: fill(2048), UserAgent: fill(1024),
		},
		Attachments: []AttachmentMeta{{Filename: fill(255)}, {Filename: fill(255)}, {Filename: fill(255)}, {Filename: fill(255)}, {Filename: fill(255)}},
		Redactions:  map[string]int{"email": 3},
	}
}

func TestRenderStaysWithinJiraLimit(t *testing.T) {
	for _, unit := range []string{`\`, "😀", "{code}", "a\n", "|"} {
		t.Run(fmt.Sprintf("%q", unit), func(t *testing.T) {
			r := worstCaseReport(unit)
			desc := RenderDescription(r)
			if n := jiraLen(desc); n > MaxJiraText {
				t.Errorf("description is %d characters, over %d", n, MaxJiraText)
			}
			if !strings.HasSuffix(desc, "\nsupportbridge-ref: "+r.Marker) {
				t.Errorf("description lost the marker")
			}
			if !strings.Contains(desc, "and 40 more, listed in the support bundle") {
				t.Errorf("description does not say how many recent errors are not shown")
			}
			if n := jiraLen(RenderInternalComment(r, testTenant(), "")); n > MaxJiraText {
				t.Errorf("internal comment is %d characters, over %d", n, MaxJiraText)
			}
		})
	}
}

func TestFitJiraBackstop(t *testing.T) {
	big := "h3. Huge\n" + strings.Repeat("x", MaxJiraText)
	got := fitJira([]string{"h3. Small\nok", big}, "supportbridge-ref: sbmx")
	want := "h3. Small\nok\n\nh3. Huge\n_Too long to show here; see the support bundle._\n\nsupportbridge-ref: sbmx"
	if got != want {
		t.Errorf("got %.200q, want %q", got, want)
	}
}

func TestCodeBlockCut(t *testing.T) {
	stack := strings.Repeat("    at frame (app.js:1:1)\n", 1000)
	got := codeBlock(stack, 1000)
	if jiraLen(got) > 1000 || !strings.HasSuffix(got, "… (cut; the full stack trace is in the support bundle)") {
		t.Errorf("got %d characters ending %q", jiraLen(got), got[max(0, len(got)-80):])
	}
	if !strings.HasSuffix(strings.TrimSuffix(got, "\n… (cut; the full stack trace is in the support bundle)"), "(app.js:1:1)") {
		t.Errorf("the cut is not at a line end")
	}
}

func TestRenderInternalComment(t *testing.T) {
	ten := testTenant()
	ten.ProductType = "jira|[x|http://e.example]"
	r := Report{
		ID: "r1", AccountID: "acc-1", EmailSource: EmailUnverified, EmailHint: "hint@x.example", ReceivedAt: testNow,
		Operation:   Operation{Name: "export", HTTPStatus: 500, RequestIDs: []string{"q1"}, ErrorMessage: "boom " + canary},
		Attachments: []AttachmentMeta{{Filename: "a.png", MediaType: "image/png", Size: 3}},
		Redactions:  map[string]int{"email": 2, "jwt": 1},
	}
	got := RenderInternalComment(r, ten, "")
	for _, want := range []string{
		"||App key|{{com.vendor.app}}|", "||Client key|{{client\\-key\\-1}}|", "||Base URL|https://acme.atlassian.net|",
		"||SEN|{{SEN\\-123}}|", "||Cloud id|{{cloud\\-1}}|", "||Account id|{{acc\\-1}}|", "||Typed contact (unverified, not notified)|hint@x.example|",
		"||HTTP status|500|", "||Request ids|{{q1}}|", "||Attachments|a.png (image/png, 3 bytes)|",
		"||Redactions|email: 2, jwt: 1|", "||Product|jira\\|\\[x\\|http://e.example\\]|", "||Error|boom \\[redacted\\]|",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("missing %q in:\n%s", want, got)
		}
	}
	if strings.Contains(got, canary) {
		t.Errorf("internal comment contains the shared secret:\n%s", got)
	}
}

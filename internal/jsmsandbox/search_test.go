package jsmsandbox

import (
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// searchKeys runs a JQL search and returns the keys found.
func searchKeys(t *testing.T, c apiClient, jql string) []string {
	t.Helper()
	res := c.get("/rest/api/3/search/jql?"+url.Values{"jql": {jql}, "fields": {"summary"}}.Encode(), nil)
	wantStatus(t, "search "+jql, res, http.StatusOK)
	var out struct {
		Issues []struct{ Key string }
		IsLast bool
	}
	res.decode(t, &out)
	keys := []string{}
	for _, is := range out.Issues {
		keys = append(keys, is.Key)
	}
	return keys
}

// TestSearchLag checks that search is eventually consistent while reads are not: the
// situation the worker is in after a create whose answer was lost.
func TestSearchLag(t *testing.T) {
	t.Parallel()
	clock := newTestClock()
	opts := testOptions()
	opts.Now = clock.Now
	opts.SearchLag = 5 * time.Second
	_, srv := NewTestServer(t, opts)
	c := apiClient{t: t, base: srv.URL}
	key := createTestRequest(t, c, "Export fails", "Details.\n\nsupportbridge-ref: sbr-7f3a9c")
	jql := `project = SUP AND text ~ "\"sbr-7f3a9c\""`

	if got := searchKeys(t, c, jql); len(got) != 0 {
		t.Fatalf("found %v before the index caught up", got)
	}
	wantStatus(t, "read before the index caught up", c.get("/rest/api/3/issue/"+key+"?fields=status", nil), http.StatusOK)
	clock.Advance(5 * time.Second)
	if diff := cmp.Diff([]string{key}, searchKeys(t, c, jql)); diff != "" {
		t.Errorf("search after the lag (-want +got):\n%s", diff)
	}

	// Comments are indexed with the same lag.
	wantStatus(t, "comment", c.post("/rest/servicedeskapi/request/"+key+"/comment",
		map[string]any{"body": "marker sbr-comment1", "public": false}), http.StatusCreated)
	if got := searchKeys(t, c, `project = SUP AND comment ~ "sbr-comment1"`); len(got) != 0 {
		t.Fatalf("found comment %v before the index caught up", got)
	}
	clock.Advance(5 * time.Second)
	if got := searchKeys(t, c, `project = SUP AND comment ~ "sbr-comment1"`); len(got) != 1 {
		t.Errorf("comment search found %v after the lag", got)
	}
}

func TestSearchJQL(t *testing.T) {
	t.Parallel()
	_, srv := NewTestServer(t, testOptions())
	c := apiClient{t: t, base: srv.URL}
	createTestRequest(t, c, "Export fails for large boards", "ref sbr-aaa111")
	createTestRequest(t, c, "Login loop", "ref sbr-bbb222 and export")

	tests := []struct {
		jql  string
		want []string
	}{
		{`project = SUP AND text ~ "\"sbr-aaa111\""`, []string{"SUP-1"}},
		{`project = sup AND description ~ "\"sbr bbb222\""`, []string{"SUP-2"}},
		{`project = "SUP" AND text ~ "export"`, []string{"SUP-2", "SUP-1"}},
		{`project = SUP AND text ~ "export" ORDER BY created ASC`, []string{"SUP-1", "SUP-2"}},
		{`project = SUP AND summary ~ "export"`, []string{"SUP-1"}},
		{`project = SUP AND text ~ "\"sbr-aaa\""`, []string{}}, // whole words only, as in Jira
		{`project = SUP AND text ~ "sbr-aaa*"`, []string{"SUP-1"}},
		{`project = SUP AND text !~ "export"`, []string{}},
		{`key = SUP-2`, []string{"SUP-2"}},
		{`statusCategory = "To Do" AND project = SUP`, []string{"SUP-2", "SUP-1"}},
	}
	for _, tt := range tests {
		if diff := cmp.Diff(tt.want, searchKeys(t, c, tt.jql)); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tt.jql, diff)
		}
	}

	for _, jql := range []string{
		``, // unbounded
		`ORDER BY created`,
		`project = SUP OR text ~ "x"`,
		`project = OTHER`,
		`project ~ SUP`,
		`text = "x"`,
		`nosuchfield = 1`,
		`project in (SUP)`,
		`reporter = currentUser()`,
		`text ~ "unterminated`,
	} {
		res := c.get("/rest/api/3/search/jql?"+url.Values{"jql": {jql}}.Encode(), nil)
		var e errorCollection
		res.decode(t, &e)
		if res.status != http.StatusBadRequest || len(e.ErrorMessages) != 1 {
			t.Errorf("%q: status %d body %s, want 400 with one message", jql, res.status, res.body)
		}
	}
}

// TestSearchPaging follows nextPageToken through all results; bare ids come back when no
// fields are asked for, as in Jira Cloud.
func TestSearchPaging(t *testing.T) {
	t.Parallel()
	_, srv := NewTestServer(t, testOptions())
	c := apiClient{t: t, base: srv.URL}
	for range 5 {
		createTestRequest(t, c, "Same problem", "")
	}
	var ids []string
	token := ""
	for pages := 0; ; pages++ {
		if pages > 5 {
			t.Fatal("paging does not end")
		}
		q := url.Values{"jql": {"project = SUP"}, "maxResults": {"2"}}
		if token != "" {
			q.Set("nextPageToken", token)
		}
		res := c.get("/rest/api/3/search/jql?"+q.Encode(), nil)
		wantStatus(t, "search page", res, http.StatusOK)
		var page struct {
			Issues        []map[string]any
			IsLast        bool
			NextPageToken string
		}
		res.decode(t, &page)
		for _, is := range page.Issues {
			if len(is) != 1 {
				t.Errorf("issue %v, want only an id", is)
			}
			ids = append(ids, is["id"].(string))
		}
		if page.IsLast {
			break
		}
		token = page.NextPageToken
	}
	if len(ids) != 5 {
		t.Errorf("paged through %d ids, want 5", len(ids))
	}
}

func TestTextMatches(t *testing.T) {
	t.Parallel()
	tests := []struct {
		query, text string
		want        bool
	}{
		{`"sbr-1234"`, "see sbr-1234.", true},
		{`"sbr-1234"`, "see sbr-12345", false},
		{`"export fails"`, "Export   FAILS now", true},
		{`"export fails"`, "fails export", false},
		{`export fails`, "fails then export", true},
		{`expo*`, "Exporting", true},
		{`export`, "exported", false},
	}
	for _, tt := range tests {
		if got := textMatches(tt.query, tt.text); got != tt.want {
			t.Errorf("textMatches(%q, %q) = %v, want %v", tt.query, tt.text, got, tt.want)
		}
	}
}

func FuzzParseJQL(f *testing.F) {
	for _, seed := range []string{
		`project = SUP AND text ~ "\"sbr-7f3a9c\""`,
		`project = SUP ORDER BY created DESC, key`,
		`summary ~ 'it\'s \u00e9' AND status != Done`,
		`text ~ "\`, `!`, `(`, `a = b = c`,
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, src string) {
		q, err := parseJQL(src)
		if err != nil {
			return
		}
		is := &issue{id: "10001", key: "SUP-1", reporter: &account{}, category: categoryNew}
		q.matches(indexedIssue{is: is, comments: []string{src}})
	})
}

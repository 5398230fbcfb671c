package connect

import (
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// qshVector is one entry of qsh-vectors.json, computed with Atlassian's atlassian-jwt.
type qshVector struct {
	Method    string `json:"method"`
	URL       string `json:"url"`
	Canonical string `json:"canonical"`
	QSH       string `json:"qsh"`
}

// loadQSHVectors reads the shared vectors. They live outside the repository so that nobody
// edits them to make a test pass; CI must have them, a laptop without them skips.
func loadQSHVectors(t *testing.T) []qshVector {
	t.Helper()
	path := os.Getenv("SB_QSH_VECTORS")
	if path == "" {
		path = "../../../shared/qsh-vectors.json"
	}
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		if os.Getenv("CI") == "true" {
			t.Fatalf("qsh vectors %s missing (set SB_QSH_VECTORS)", path)
		}
		t.Skipf("qsh vectors %s missing; set SB_QSH_VECTORS to run against Atlassian's vectors", path)
	}
	if err != nil {
		t.Fatalf("read qsh vectors: %v", err)
	}
	var doc struct {
		Vectors []qshVector `json:"vectors"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatalf("decode %s: %v", path, err)
	}
	if len(doc.Vectors) == 0 {
		t.Fatalf("%s holds no vectors", path)
	}
	return doc.Vectors
}

func TestQSHMatchesAtlassianVectors(t *testing.T) {
	for _, v := range loadQSHVectors(t) {
		t.Run(v.Method+" "+v.URL, func(t *testing.T) {
			u := mustURL(t, v.URL)
			if got := CanonicalRequest(v.Method, u, ""); got != v.Canonical {
				t.Errorf("canonical:\n got %q\nwant %q", got, v.Canonical)
			}
			if got := QSH(v.Method, u, ""); got != v.QSH {
				t.Errorf("qsh: got %s, want %s", got, v.QSH)
			}
			// Behind a base path, and as a full URL, the same request hashes the same.
			for _, base := range []string{"/sb", "/sb/"} {
				u := mustURL(t, "https://apps.example.com/sb"+v.URL)
				if got := QSH(v.Method, u, base); got != v.QSH {
					t.Errorf("qsh with base path %q: got %s, want %s", base, got, v.QSH)
				}
			}
		})
	}
}

func TestCanonicalRequest(t *testing.T) {
	tests := []struct {
		name     string
		method   string
		url      string
		basePath string
		want     string
	}{
		{"method upper-cased", "post", "/a", "", "POST&/a&"},
		{"empty path is root", "GET", "https://x.example", "", "GET&/&"},
		{"trailing slash removed", "GET", "/a/b/", "", "GET&/a/b&"},
		{"root keeps its slash", "GET", "/?", "", "GET&/&"},
		{"ampersand in path", "GET", "/a&b", "", "GET&/a%26b&"},
		{"base path stripped", "GET", "/sb/connect/installed", "/sb", "GET&/connect/installed&"},
		{"base path itself is root", "GET", "/sb", "/sb", "GET&/&"},
		{"base path only at a segment boundary", "GET", "/sbx/a", "/sb", "GET&/sbx/a&"},
		{"path stays as sent", "GET", "/a%2Fb/c%20d", "", "GET&/a%2Fb/c%20d&"},
		{"jwt excluded", "GET", "/a?jwt=x.y.z&b=1", "", "GET&/a&b=1"},
		{"only jwt", "GET", "/a?jwt=x.y.z", "", "GET&/a&"},
		{"encoded jwt key excluded too", "GET", "/a?j%77t=x&b=1", "", "GET&/a&b=1"},
		{"plus is a space", "GET", "/a?q=a+b", "", "GET&/a&q=a%20b"},
		{"reserved characters encoded", "GET", "/a?q=*%2B,!'()", "", "GET&/a&q=%2A%2B%2C%21%27%28%29"},
		{"unreserved kept", "GET", "/a?q=AZaz09-._~", "", "GET&/a&q=AZaz09-._~"},
		{"utf-8 encoded", "GET", "/a?q=%C3%A9", "", "GET&/a&q=%C3%A9"},
		{"key without value", "GET", "/a?flag&b=", "", "GET&/a&b=&flag="},
		{"empty pairs skipped", "GET", "/a?&&b=1&", "", "GET&/a&b=1"},
		{"semicolon is not a separator", "GET", "/a?b=1;c=2", "", "GET&/a&b=1%3Bc%3D2"},
		{"bad escape kept literal", "GET", "/a?b=%zz", "", "GET&/a&b=%25zz"},
		{"repeated values sorted", "GET", "/a?r=b&r=a&r=B", "", "GET&/a&r=B,a,b"},
		{"keys sorted", "GET", "/a?b=1&a=2&A=3", "", "GET&/a&A=3&a=2&b=1"},
		{"comma in value not confused with a list", "GET", "/a?r=a%2Cb", "", "GET&/a&r=a%2Cb"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := CanonicalRequest(tt.method, mustURL(t, tt.url), tt.basePath)
			if got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestCanonicalRequestNilURL(t *testing.T) {
	if got, want := CanonicalRequest("get", nil, ""), "GET&/&"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

// JavaScript sorts by UTF-16 code units: U+1F600 (a surrogate pair starting 0xD83D) comes
// before U+FF01, although its code point is larger.
func TestCompareUTF16(t *testing.T) {
	got := []string{"\uff01", "\U0001F600", "b", "a", "ab", "", "\xff"}
	slices.SortFunc(got, compareUTF16)
	want := []string{"", "a", "ab", "b", "\U0001F600", "\uff01", "\xff"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("order (-want +got):\n%s", diff)
	}
}

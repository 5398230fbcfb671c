package jsm

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
)

// maxCommentPages bounds how many pages of comments Comments reads (100 a page).
const maxCommentPages = 50

// Comments returns the bodies of a request's public comments, oldest first. The evidence pack
// reads the audit-chain heads our comments carry from them.
func (c *Client) Comments(ctx context.Context, issueKey string) ([]string, error) {
	const op = "list comments"
	if !issueKeyRE.MatchString(issueKey) {
		return nil, invalid(op, "not an issue key")
	}
	var out []string
	for start := 0; start/100 < maxCommentPages; {
		var page struct {
			Values []struct {
				Body string `json:"body"`
			} `json:"values"`
			IsLastPage bool `json:"isLastPage"`
			Size       int  `json:"size"`
		}
		q := url.Values{"public": {"true"}, "internal": {"false"}, "start": {strconv.Itoa(start)}, "limit": {"100"}}
		err := c.do(ctx, call{
			op: op, method: http.MethodGet, retry: repeatable,
			path: "rest/servicedeskapi/request/" + url.PathEscape(issueKey) + "/comment?" + q.Encode(),
		}, &page)
		if err != nil {
			return nil, err
		}
		for _, v := range page.Values {
			out = append(out, v.Body)
		}
		if page.IsLastPage || len(page.Values) == 0 {
			break
		}
		start += len(page.Values)
	}
	return out, nil
}

package jsm

import (
	"bytes"
	"context"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"net/url"
	"path"
	"strings"
	"unicode"
)

// UploadTemporary stores content as a temporary file on the desk and returns its id for
// AttachTemporary. JSM deletes temporary files that are never attached, so a repeated
// upload only leaves an orphan that expires; uploads are therefore retried like reads.
//
// go-jira has no call for this and its multipart helper sends "X-Atlassian-Token: nocheck";
// JSM documents "no-check" and rejects the upload without it (XSRF protection).
func (c *Client) UploadTemporary(ctx context.Context, filename string, content []byte) (string, error) {
	const op = "upload temporary file"
	name := cleanFilename(filename)
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	h := textproto.MIMEHeader{}
	// multipart.FileContentDisposition escapes quotes and backslashes; cleanFilename
	// has already removed line breaks, which it does not.
	h.Set("Content-Disposition", multipart.FileContentDisposition("file", name))
	h.Set("Content-Type", http.DetectContentType(content))
	part, err := mw.CreatePart(h)
	if err == nil {
		_, err = part.Write(content)
	}
	if err == nil {
		err = mw.Close()
	}
	if err != nil {
		return "", invalid(op, "build multipart body: %v", err)
	}
	var got struct {
		TemporaryAttachments []struct {
			TemporaryAttachmentID string `json:"temporaryAttachmentId"`
		} `json:"temporaryAttachments"`
	}
	err = c.do(ctx, call{
		op: op, method: http.MethodPost, retry: repeatable,
		path:      "rest/servicedeskapi/servicedesk/" + url.PathEscape(c.desk) + "/attachTemporaryFile",
		multipart: &buf, contentType: mw.FormDataContentType(),
		headers: map[string]string{
			"X-Atlassian-Token": "no-check",
			"X-ExperimentalApi": "opt-in", // Atlassian's own example sends it
		},
	}, &got)
	if err != nil {
		return "", err
	}
	if len(got.TemporaryAttachments) != 1 || got.TemporaryAttachments[0].TemporaryAttachmentID == "" {
		return "", &Error{Op: op, Status: http.StatusCreated, Kind: Transient}
	}
	return got.TemporaryAttachments[0].TemporaryAttachmentID, nil
}

// cleanFilename keeps the last path element of a name chosen by an end user and drops
// control characters, which would otherwise break the part's header.
func cleanFilename(name string) string {
	name = path.Base(strings.ReplaceAll(name, `\`, "/"))
	name = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return -1
		}
		return r
	}, name)
	if name == "" || name == "." || name == "/" || name == ".." {
		return "attachment"
	}
	return name
}

// AttachTemporary attaches uploaded temporary files to the request, publicly (the customer
// sees them) or internally. It is sent once: a repeat would fail (temporary files are used
// up) or attach twice, so an unknown outcome is Ambiguous.
func (c *Client) AttachTemporary(ctx context.Context, issueKey string, tempIDs []string, public bool) error {
	const op = "attach temporary files"
	if !issueKeyRE.MatchString(issueKey) {
		return invalid(op, "not an issue key")
	}
	if len(tempIDs) == 0 {
		return invalid(op, "no temporary attachment ids")
	}
	return c.do(ctx, call{
		op: op, method: http.MethodPost, retry: writeOnce,
		path: "rest/servicedeskapi/request/" + url.PathEscape(issueKey) + "/attachment",
		body: struct {
			TemporaryAttachmentIDs []string `json:"temporaryAttachmentIds"`
			Public                 bool     `json:"public"`
		}{tempIDs, public},
	}, nil)
}

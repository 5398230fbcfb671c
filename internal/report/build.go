package report

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/medama-io/go-useragent"

	"github.com/supportbridge/supportbridge/internal/bufpool"
	"github.com/supportbridge/supportbridge/internal/redact"
)

// BuildContext is what Build needs besides the report itself; every field comes from the
// server (a verified token, a header, the clock), never from the report body.
type BuildContext struct {
	// ID is the new report's id (NewID); Marker its dedupe token (NewMarker).
	ID, Marker string
	// TenantKey and AccountID identify the installation and the user, from the token.
	TenantKey, AccountID string
	// UserAgent is the request's User-Agent header.
	UserAgent string
	// Now is the time the report was received.
	Now time.Time
	// SharedSecret is the tenant's shared secret, given only so that it can be scrubbed out
	// wherever a user pasted it.
	SharedSecret string
}

// maxUserAgent is the longest User-Agent kept; real ones are a few hundred bytes, and the
// header is otherwise bounded only by the server's header limit.
const maxUserAgent = 1024

// maxSummary is JSM's limit on a request summary, in UTF-16 code units as Jira counts (an
// emoji is two); scrubbing can lengthen a summary (a secret of 8 bytes becomes
// "[redacted]"), so it is cut again afterwards.
const maxSummary = 255

// Build turns a validated Input into the Report to queue: it parses the User-Agent and
// scrubs every text field and every text attachment with one scrubber, so that
// Report.Redactions counts everything that was removed. The attachments returned are new
// values with ID set, the caller's are not modified; the content of those that are not
// scrubbed (images, PDFs) is shared with the caller's.
//
// A typed email is kept only as a hint (Report.EmailHint); who the reporter is, and so
// which address the request is raised for, is for the delivery worker to ask the site.
func Build(in Input, atts []Attachment, c BuildContext) (Report, []Attachment, error) {
	if c.ID == "" || c.Marker == "" {
		return Report{}, nil, errors.New("build report: id and marker are required")
	}
	hint := strings.TrimSpace(in.Email)

	var errs fieldErrors
	opAt := parseTime(in.Operation.OccurredAt, "/operation/occurredAt", &errs)
	recent := make([]RecentError, 0, len(in.RecentErrors))
	for i, e := range in.RecentErrors {
		recent = append(recent, RecentError{
			Message:    e.Message,
			OccurredAt: parseTime(e.OccurredAt, "/recentErrors/"+strconv.Itoa(i)+"/occurredAt", &errs),
			Source:     e.Source,
		})
	}
	if err := errs.err(); err != nil {
		return Report{}, nil, err // only for an Input that did not come from a Parser
	}

	ua := clipBytes(c.UserAgent, maxUserAgent)
	agent := useragent.NewParser().Parse(ua) // the library builds its table once per process

	// One scrubber for the whole report: its counts are the report's redactions. The
	// address the reporter typed stays readable where they wrote it again: it is theirs.
	s := redact.New(redact.Options{KeepEmail: hint, Secrets: []string{c.SharedSecret}})
	r := Report{
		ID:          c.ID,
		TenantKey:   c.TenantKey,
		AccountID:   c.AccountID,
		EmailHint:   hint,
		ReceivedAt:  c.Now.UTC(),
		Marker:      c.Marker,
		Summary:     cutToLen(s.String(in.Summary), maxSummary),
		Description: s.String(in.Description),
		Operation: Operation{
			Name:         s.String(in.Operation.Name),
			RequestIDs:   scrubAll(s, in.Operation.RequestIDs),
			OccurredAt:   opAt,
			ErrorMessage: s.String(in.Operation.ErrorMessage),
			Stack:        s.String(in.Operation.Stack),
		},
		Environment: Environment{
			Locale:         s.String(in.Environment.Locale),
			Timezone:       s.String(in.Environment.Timezone),
			Screen:         s.String(in.Environment.Screen),
			URL:            s.String(in.Environment.URL),
			UserAgent:      s.String(ua),
			Browser:        s.String(string(agent.Browser())),
			BrowserVersion: s.String(agent.BrowserVersion()),
			OS:             s.String(string(agent.OS())),
		},
	}
	if in.Operation.HTTPStatus != nil {
		r.Operation.HTTPStatus = *in.Operation.HTTPStatus
	}
	for i := range recent {
		recent[i].Message = s.String(recent[i].Message)
		recent[i].Source = s.String(recent[i].Source)
	}
	if len(recent) > 0 {
		r.RecentErrors = recent
	}

	out := make([]Attachment, len(atts))
	for i, a := range atts {
		a.ID = c.ID + "-" + strconv.Itoa(i+1)
		a.Filename = s.String(a.Filename)
		if isText(a.MediaType) {
			a.Content = []byte(s.String(string(a.Content)))
		}
		// Other content is shared with the caller, not copied: nobody writes to it, and a
		// copy of every upload would double the memory each report holds.
		a.Size = int64(len(a.Content))
		out[i] = a
		r.Attachments = append(r.Attachments, a.AttachmentMeta)
	}

	if counts := s.Counts(); len(counts) > 0 {
		r.Redactions = counts
	}
	return r, out, nil
}

// isText reports whether attachments of this type are scrubbed; images and PDFs pass
// through, since the scrubber cannot see into them and would only corrupt them.
func isText(mediaType string) bool {
	t := bareType(mediaType)
	return t == "text/plain" || t == "application/json"
}

func scrubAll(s *redact.Scrubber, in []string) []string {
	if len(in) == 0 {
		return nil
	}
	out := make([]string, len(in))
	for i, v := range in {
		out[i] = s.String(v)
	}
	return out
}

func parseTime(v, path string, errs *fieldErrors) time.Time {
	if v == "" {
		return time.Time{}
	}
	t, ok := parseRFC3339(v)
	if !ok {
		errs.add(path, "must be an RFC 3339 date and time, like 2025-01-31T14:05:00Z")
	}
	return t // zero when refused
}

// NewID returns a new report id: 128 random bits in lower-case base32, safe in URLs and
// Redis keys without escaping.
func NewID() string { return strings.ToLower(rand.Text()) }

// NewMarker returns a new dedupe marker: "sbm" and 26 lower-case base32 characters. Letters
// and digits only, so Jira's text index keeps it as one word and a JQL text search finds it
// exactly; 128 random bits, so it never occurs in a ticket by chance.
func NewMarker() string { return "sbm" + strings.ToLower(rand.Text()) }

// BodyHash identifies a request for idempotency: a hex SHA-256 over a canonical encoding of
// the decoded request, taken before scrubbing (so that a change of scrubbing rules between a
// request and its replay does not make the replay look different). The encoding is the
// Input's JSON (fixed field order) followed by each attachment's name, type and content
// hash, every item length-prefixed so that no two requests encode alike.
func BodyHash(in Input, atts []Attachment) string {
	h := sha256.New()
	field := func(b []byte) {
		var n [8]byte
		binary.BigEndian.PutUint64(n[:], uint64(len(b)))
		h.Write(n[:])
		h.Write(b)
	}
	field([]byte("supportbridge report v1"))
	// The same bytes as json.Marshal(in), in a recycled buffer: strings, slices and an int
	// pointer, so encoding cannot fail. Encode adds a newline, which is not hashed.
	buf := bufpool.Get()
	_ = json.NewEncoder(buf).Encode(in)
	field(bytes.TrimSuffix(buf.Bytes(), []byte("\n")))
	bufpool.Put(buf)
	for _, a := range atts {
		sum := sha256.Sum256(a.Content)
		field([]byte(a.Filename))
		field([]byte(a.MediaType))
		field(sum[:])
	}
	return hex.EncodeToString(h.Sum(nil))
}

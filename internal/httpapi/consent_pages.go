package httpapi

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"errors"
	"fmt"
	"html/template"
	"mime"
	"net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/supportbridge/supportbridge/internal/consent"
)

//go:embed templates/*.html templates/*.css
var templateFS embed.FS

// consentCSS is the stylesheet, inlined into every consent page. Inlining keeps the page a
// single request (it has to work on a phone on a poor connection) and the CSP can still allow
// exactly this stylesheet and nothing else by its hash.
var consentCSS = mustRead("templates/consent.css")

// consentCSP allows the page's own stylesheet and forms posting back to us, and nothing
// else: no script, no images, no framing, no other origin.
var consentCSP = func() string {
	sum := sha256.Sum256(consentCSS)
	return "default-src 'none'; style-src 'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) +
		"'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
}()

// Consent page templates: each page is the layout plus its content.
var (
	decidePage  = mustPage("decide.html")
	statePage   = mustPage("state.html")
	messagePage = mustPage("message.html")
)

func mustRead(name string) []byte {
	b, err := templateFS.ReadFile(name)
	if err != nil {
		panic(err)
	}
	return b
}

func mustPage(name string) *template.Template {
	return template.Must(template.New(name).ParseFS(templateFS, "templates/layout.html", "templates/"+name))
}

// consentPageHeaders sets the headers of every consent page. The token is a credential in
// the URL, so nothing may carry the URL elsewhere: no referrer, no cache, no framing.
func (s *Server) consentPageHeaders() gin.HandlerFunc {
	return func(c *gin.Context) {
		h := c.Writer.Header()
		h.Set("Content-Security-Policy", consentCSP)
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cache-Control", "no-store")
		h.Set("X-Frame-Options", "DENY")
		h.Set("X-Robots-Tag", "noindex, nofollow")
		c.Next()
	}
}

// consentForm admits form posts: URL-encoded bodies only (the forms send nothing else, and a
// cross-site text/plain or multipart post is then refused before any parsing), within the
// body limit, carrying the CSRF pair.
func (s *Server) consentForm() gin.HandlerFunc {
	return func(c *gin.Context) {
		mt, _, err := mime.ParseMediaType(c.GetHeader("Content-Type"))
		if err != nil || mt != "application/x-www-form-urlencoded" {
			s.consentMessage(c, http.StatusUnsupportedMediaType, "The form could not be read",
				"The answer must be sent from the form on the consent page. Open the link again and retry.", "")
			return
		}
		if err := c.Request.ParseForm(); err != nil {
			var maxErr *http.MaxBytesError
			if errors.As(err, &maxErr) {
				s.consentMessage(c, http.StatusRequestEntityTooLarge, "The answer is too long",
					"Shorten the reason and retry.", s.consentURL(c.Param("token")))
				return
			}
			s.consentMessage(c, http.StatusBadRequest, "The form could not be read",
				"Open the link again and retry.", s.consentURL(c.Param("token")))
			return
		}
		if !s.checkCSRF(c, c.Param("token")) {
			s.consentMessage(c, http.StatusForbidden, "Please answer from the consent page",
				"For your protection, answers are accepted only from the consent page itself, in a browser that has it open. Open the link again and retry.",
				s.consentURL(c.Param("token")))
			return
		}
		c.Next()
	}
}

// consentURL is the page of token, as a path on our own origin.
func (s *Server) consentURL(token string) string {
	return s.basePath + "/consent/" + token
}

// consentPage shows a pending request with its choices, or what became of it.
func (s *Server) consentPage(c *gin.Context) {
	token := c.Param("token")
	v, err := s.consent.Service.View(c.Request.Context(), token)
	if err != nil {
		s.consentFail(c, err, token)
		return
	}
	switch v.Request.Status {
	case consent.RequestCancelled:
		s.consentMessage(c, http.StatusGone, "This request was withdrawn",
			"The support agent withdrew the request before it was answered, so there is nothing to decide. No logs were shared.", "")
		return
	case consent.RequestExpired:
		s.consentMessage(c, http.StatusGone, "This link has expired",
			"The request was not answered in time, so it lapsed. No logs were shared. The support agent can ask again if needed.", "")
		return
	}
	data := s.pageData(c, v, token)
	if v.Request.Status == consent.RequestPending {
		data.Title = "Access to your app logs is requested"
		s.renderConsent(c, http.StatusOK, decidePage, data)
		return
	}
	s.renderConsent(c, http.StatusOK, statePage, data)
}

// consentApprove approves for the requested duration or the shorter one chosen.
func (s *Server) consentApprove(c *gin.Context) {
	token := c.Param("token")
	if _, err := s.consent.Service.Approve(c.Request.Context(), token, c.Request.PostForm.Get("duration")); err != nil {
		s.consentFail(c, err, token)
		return
	}
	s.backToPage(c, token)
}

func (s *Server) consentDeny(c *gin.Context) {
	token := c.Param("token")
	if err := s.consent.Service.Deny(c.Request.Context(), token, c.Request.PostForm.Get("reason")); err != nil {
		s.consentFail(c, err, token)
		return
	}
	s.backToPage(c, token)
}

func (s *Server) consentRevoke(c *gin.Context) {
	token := c.Param("token")
	if err := s.consent.Service.RevokeByCustomer(c.Request.Context(), token); err != nil {
		s.consentFail(c, err, token)
		return
	}
	s.backToPage(c, token)
}

// backToPage answers a successful post with 303 to the page, so reloading the result does not
// post again.
func (s *Server) backToPage(c *gin.Context, token string) {
	c.Redirect(http.StatusSeeOther, s.consentURL(token))
}

// consentFail answers a consent page or form with an HTML page for err. Not found is the same
// page whatever made the token unknown (mistyped, cut short, forged), so the answer says
// nothing about which tokens exist.
func (s *Server) consentFail(c *gin.Context, err error, token string) {
	var ve *consent.ValidationError
	switch {
	case errors.Is(err, consent.ErrNotFound):
		s.consentMessage(c, http.StatusNotFound, "This link does not work",
			"Check that you opened the whole link from the email about your ticket; a link that is cut short or mistyped does not work.", "")
	case errors.Is(err, consent.ErrGone):
		s.consentMessage(c, http.StatusGone, "This link has expired",
			"The request is no longer open: it was not answered in time or the support agent withdrew it. No logs were shared under it.", "")
	case errors.Is(err, consent.ErrAlreadyDecided):
		s.consentMessage(c, http.StatusConflict, "This request was already answered",
			"Each request can be answered once, and this one already was (perhaps in another window). Nothing was changed.", s.consentURL(token))
	case errors.Is(err, consent.ErrNoActiveGrant):
		s.consentMessage(c, http.StatusConflict, "Access has already ended",
			"There is no active access to revoke. Nothing was changed.", s.consentURL(token))
	case errors.As(err, &ve):
		problems := make([]string, 0, len(ve.Fields))
		for _, f := range ve.Fields {
			problems = append(problems, formFieldName(f.Path)+": "+f.Message)
		}
		data := s.baseData(c, "The answer could not be accepted")
		data.Message = "Nothing was changed. Please go back and correct this:"
		data.Problems = problems
		data.BackURL = s.consentURL(token)
		s.renderConsent(c, http.StatusBadRequest, messagePage, data)
	default:
		s.log.ErrorContext(c.Request.Context(), "consent_page_failed", "request_id", requestID(c), "route", c.FullPath(), "error", err)
		s.consentMessage(c, http.StatusInternalServerError, "Something went wrong",
			"Your answer may not have been saved. Please try again in a few minutes.", "")
	}
}

// formFieldName names a field as the customer saw it on the form.
func formFieldName(path string) string {
	switch strings.TrimPrefix(path, "/") {
	case "duration":
		return "Allow access for"
	case "reason":
		return "Reason"
	}
	return "Answer"
}

// writeConsentUnconfiguredPage answers consent pages of a deployment without consent.
func (s *Server) writeConsentUnconfiguredPage(c *gin.Context) {
	s.consentMessage(c, http.StatusServiceUnavailable, "Consent is not available",
		"This service does not handle log-access requests at the moment. Please reply on your ticket instead.", "")
	c.Abort()
}

func (s *Server) consentMessage(c *gin.Context, status int, title, message, back string) {
	data := s.baseData(c, title)
	data.Message = message
	data.BackURL = back
	s.renderConsent(c, status, messagePage, data)
	c.Abort()
}

// renderConsent renders into a buffer first, so a template error becomes a clean 500 rather
// than half a page under a 200.
func (s *Server) renderConsent(c *gin.Context, status int, t *template.Template, data pageData) {
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, "layout", data); err != nil {
		s.log.ErrorContext(c.Request.Context(), "render_failed", "request_id", requestID(c), "route", c.FullPath(), "error", err)
		c.Data(http.StatusInternalServerError, "text/plain; charset=utf-8", []byte("Internal error. Reference: "+requestID(c)+"\n"))
		return
	}
	c.Data(status, "text/html; charset=utf-8", buf.Bytes())
}

// pageData is what the consent templates show. Every value is plain text; html/template
// escapes it, so a reason holding markup is shown as text.
type pageData struct {
	Title, AppName, RequestID string
	CSS                       template.CSS

	Req      *requestView
	Form     *formView
	Preview  string
	AnswerBy timeView
	TimeLeft string
	Renewal  *timeView

	Active     bool
	StateText  string
	DenyReason string
	Accesses   []accessView

	Message  string
	Problems []string
	BackURL  string
}

type requestView struct {
	AgentName, AgentEmail, TicketKey, Reason, Duration string
	Streams                                            []string
	From, To                                           timeView
	PersonalData                                       bool
}

type formView struct {
	CSRF, ApproveURL, DenyURL, RevokeURL string
	Durations                            []durationOption
	MaxReason                            int
}

type durationOption struct {
	Value, Label string
	Selected     bool
}

type accessView struct {
	When, From, To      timeView
	Who, Stream, Amount string
}

// timeView is a time for the <time> element: machine-readable and written out in UTC, since
// we do not know the customer's zone without script.
type timeView struct{ ISO, Text string }

func newTimeView(t time.Time) timeView {
	if t.IsZero() {
		return timeView{Text: "not set"}
	}
	t = t.UTC()
	return timeView{ISO: t.Format(time.RFC3339), Text: t.Format("Mon 2 Jan 2006, 15:04 UTC")}
}

func (s *Server) baseData(c *gin.Context, title string) pageData {
	name := s.cfg.ConnectAppName
	if name == "" {
		name = "supportbridge"
	}
	return pageData{Title: title, AppName: name, RequestID: requestID(c), CSS: template.CSS(consentCSS)}
}

// pageData builds the page of a request that is pending or decided.
func (s *Server) pageData(c *gin.Context, v consent.View, token string) pageData {
	r := v.Request
	d := s.baseData(c, "")
	d.Req = &requestView{
		AgentName: r.Agent.Name, AgentEmail: r.Agent.Email, TicketKey: r.TicketKey, Reason: r.Reason,
		Streams: r.Streams, From: newTimeView(r.From), To: newTimeView(r.To), PersonalData: r.PersonalData,
		Duration: capitalize(r.Duration.Words()),
	}
	csrf := csrfField(s.csrfKey(), s.csrfCookie(c), token)
	base := s.consentURL(token)
	d.Form = &formView{
		CSRF: csrf, ApproveURL: base + "/approve", DenyURL: base + "/deny", RevokeURL: base + "/revoke",
		Durations: durationOptions(v.MaxDuration, r.Duration), MaxReason: consent.MaxDenyLen,
	}
	d.Preview = previewLine(r.PersonalData)
	d.AnswerBy = newTimeView(r.ExpiresAt)
	d.TimeLeft = timeLeftWords(v.TimeLeft)
	for _, a := range v.Accesses {
		who := a.Agent.Name
		if a.Agent.Email != "" {
			who += " (" + a.Agent.Email + ")"
		}
		d.Accesses = append(d.Accesses, accessView{
			When: newTimeView(a.Time), From: newTimeView(a.From), To: newTimeView(a.To),
			Who: who, Stream: a.Stream, Amount: amountWords(a.Lines, a.Bytes),
		})
	}
	if r.Status == consent.RequestPending {
		if v.Grant != nil && v.Grant.UntilRevoked {
			t := newTimeView(v.Grant.ReconfirmBy)
			d.Renewal = &t
		}
		return d
	}
	d.Title, d.StateText, d.Active = stateWords(r, v.Grant, v.TimeLeft)
	if r.Status == consent.RequestDenied {
		d.DenyReason = r.DenyReason
	}
	return d
}

// stateWords says what became of a decided request, in the customer's terms.
func stateWords(r consent.AccessRequest, g *consent.Grant, left time.Duration) (title, text string, active bool) {
	if r.Status == consent.RequestDenied {
		return "You denied access", "You denied this request on " + newTimeView(r.DecidedAt).Text + ". No logs were shared.", false
	}
	if g == nil {
		return "Access was approved", "This request was approved.", false
	}
	when := newTimeView(g.EndedAt).Text
	switch g.Status {
	case consent.GrantActive:
		if g.UntilRevoked {
			return "You approved access", "Access is active until you revoke it. You will be asked to confirm it again by " +
				newTimeView(g.ReconfirmBy).Text + ".", true
		}
		return "You approved access", "Access is active: " + timeLeftWords(left) + " left, until " + newTimeView(g.End).Text + ".", true
	case consent.GrantExpired:
		return "Access has ended", "The approved time ran out on " + when + ".", false
	case consent.GrantRevoked:
		switch g.EndReason {
		case consent.ReasonRevokedByAgent:
			return "Access has ended", "The support agent gave up access on " + when + ".", false
		case consent.ReasonRevokedByAdmin:
			return "Access has ended", "A support administrator ended access on " + when + ".", false
		}
		return "You revoked access", "You revoked access on " + when + ".", false
	}
	switch g.EndReason {
	case consent.ReasonTicketClosed:
		return "Access has ended", "Access ended on " + when + " because the ticket was resolved or closed.", false
	case consent.ReasonTenantUninstalled:
		return "Access has ended", "Access ended on " + when + " because the app was uninstalled.", false
	case consent.ReasonNotReconfirmed:
		return "Access has ended", "Standing access ended on " + when + " because it was not confirmed again.", false
	}
	return "Access has ended", "Access ended on " + when + ".", false
}

// standardDurations are the shorter choices offered beside the requested duration.
var standardDurations = []time.Duration{
	time.Hour, 4 * time.Hour, 8 * time.Hour, 24 * time.Hour, 72 * time.Hour,
	7 * 24 * time.Hour, 14 * 24 * time.Hour, 30 * 24 * time.Hour,
}

// durationOptions lists the requested duration (selected) and every standard shorter one,
// longest first: the customer may shorten, never lengthen.
func durationOptions(max, requested consent.Duration) []durationOption {
	if max == (consent.Duration{}) {
		max = requested
	}
	opts := []durationOption{{Value: max.String(), Label: capitalize(max.Words()) + " (as asked)", Selected: true}}
	if max.UntilRevoked {
		opts[0].Label = "Until I revoke it (as asked; confirmed again every 90 days)"
	}
	for i := len(standardDurations) - 1; i >= 0; i-- {
		d := consent.Duration{D: standardDurations[i]}
		if d.AtMost(max) && d != max {
			opts = append(opts, durationOption{Value: d.String(), Label: capitalize(d.Words())})
		}
	}
	return opts
}

// previewLine is the illustration of a log line on the decision page.
func previewLine(personalData bool) string {
	if personalData {
		return `2026-03-01T09:14:07Z ERROR export failed user=jane.doe@example.com ip=203.0.113.7 project=ACME token=[removed]`
	}
	return `2026-03-01T09:14:07Z ERROR export failed user=[email removed] ip=[ip removed] project=ACME token=[removed]`
}

// timeLeftWords writes a remaining time to the minute: "3 days 4 hours", "45 minutes".
func timeLeftWords(d time.Duration) string {
	if d <= 0 {
		return "no time"
	}
	d = d.Round(time.Minute)
	if d < time.Minute {
		return "less than a minute"
	}
	days, hours, mins := d/(24*time.Hour), (d%(24*time.Hour))/time.Hour, (d%time.Hour)/time.Minute
	var parts []string
	add := func(n time.Duration, unit string) {
		if n == 1 {
			parts = append(parts, "1 "+unit)
		} else if n > 1 {
			parts = append(parts, fmt.Sprintf("%d %ss", n, unit))
		}
	}
	add(days, "day")
	add(hours, "hour")
	if days == 0 {
		add(mins, "minute")
	}
	return strings.Join(parts, " ")
}

func amountWords(lines, bytes int64) string {
	l := fmt.Sprintf("%d lines", lines)
	if lines == 1 {
		l = "1 line"
	}
	switch {
	case bytes >= 1<<20:
		return fmt.Sprintf("%s, %.1f MB", l, float64(bytes)/(1<<20))
	case bytes >= 1<<10:
		return fmt.Sprintf("%s, %.1f kB", l, float64(bytes)/(1<<10))
	}
	return fmt.Sprintf("%s, %d bytes", l, bytes)
}

func capitalize(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

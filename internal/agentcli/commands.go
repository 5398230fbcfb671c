package agentcli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"text/tabwriter"
	"time"
)

// actor, accessRequest and grant hold the fields of the service's JSON that the tables
// show; --json prints the service's own document, so nothing is lost by decoding less.
type actor struct {
	Kind  string `json:"kind"`
	Name  string `json:"name"`
	Email string `json:"email"`
}

func (a *actor) String() string {
	if a == nil {
		return "-"
	}
	switch {
	case a.Name != "":
		return a.Name
	case a.Email != "":
		return a.Email
	case a.Kind != "":
		return a.Kind
	}
	return "-"
}

type accessRequest struct {
	ID           string    `json:"id"`
	TicketKey    string    `json:"ticketKey"`
	Status       string    `json:"status"`
	Streams      []string  `json:"streams"`
	From         time.Time `json:"from"`
	To           time.Time `json:"to"`
	Duration     string    `json:"duration"`
	PersonalData bool      `json:"personalData"`
	Agent        actor     `json:"agent"`
	CreatedAt    time.Time `json:"createdAt"`
	ExpiresAt    time.Time `json:"expiresAt"`
	GrantID      string    `json:"grantId"`
	DenyReason   string    `json:"denyReason"`
	CancelReason string    `json:"cancelReason"`
}

type grant struct {
	ID           string    `json:"id"`
	RequestID    string    `json:"requestId"`
	TicketKey    string    `json:"ticketKey"`
	Streams      []string  `json:"streams"`
	From         time.Time `json:"from"`
	To           time.Time `json:"to"`
	PersonalData bool      `json:"personalData"`
	Agent        actor     `json:"agent"`
	Start        time.Time `json:"start"`
	End          time.Time `json:"end"`
	UntilRevoked bool      `json:"untilRevoked"`
	Status       string    `json:"status"`
	EndReason    string    `json:"endReason"`
}

// stamp prints times in UTC to the minute: a table is for reading, --json has the rest.
func stamp(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format("2006-01-02 15:04Z")
}

// printJSON writes the service's body as is, ending with a newline.
func (e *env) printJSON(b []byte) {
	e.stdout.Write(b)
	if len(b) == 0 || b[len(b)-1] != '\n' {
		fmt.Fprintln(e.stdout)
	}
}

// decode reads the service's JSON; a body that is not what openapi.yaml promises is a
// failure of the operation, not a crash.
func decode(b []byte, v any) error {
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("the service's answer is not what this CLI expects (%v); try --json", err)
	}
	return nil
}

func cmdAccessRequest(ctx context.Context, e *env, args []string) error {
	fs, c := e.newFlagSet("access request --ticket KEY --reason TEXT --streams a,b --from T --to T --duration D [--personal-data]",
		`  supportbridge agent access request --ticket SUP-42 --reason "sync fails with 500 since Monday" \
      --streams app,sync --from 2026-03-01T00:00:00Z --to 2026-03-02T00:00:00Z --duration 4h
`)
	var (
		ticket, reason, streams, from, to, duration string
		personal                                    bool
	)
	fs.StringVar(&ticket, "ticket", "", "the ticket `KEY`, such as SUP-42 (required)")
	fs.StringVar(&reason, "reason", "", "why you need the logs, as the customer will read it (required, 10 to 1000 characters)")
	fs.StringVar(&streams, "streams", "", "comma-separated log streams (required)")
	fs.StringVar(&from, "from", "", "start of the log window, RFC 3339 (required)")
	fs.StringVar(&to, "to", "", "end of the log window, RFC 3339, not in the future (required)")
	fs.StringVar(&duration, "duration", "", `how long access lasts once approved, "1h" to "720h" or "until-revoked" (required)`)
	fs.BoolVar(&personal, "personal-data", false, "ask to see personal data unpseudonymised")
	if _, err := e.parse(fs, c, args, 0); err != nil {
		return err
	}
	var missing []string
	for _, f := range []struct{ name, v string }{{"--ticket", ticket}, {"--reason", reason}, {"--streams", streams}, {"--from", from}, {"--to", to}, {"--duration", duration}} {
		if strings.TrimSpace(f.v) == "" {
			missing = append(missing, f.name)
		}
	}
	if len(missing) > 0 {
		return usagef("missing %s", strings.Join(missing, ", "))
	}
	// Times are checked here only for shape, so the agent gets the mistake before a round
	// trip; every rule about them (window length, not in the future) is the service's.
	for _, t := range []struct{ name, v string }{{"--from", from}, {"--to", to}} {
		if _, err := time.Parse(time.RFC3339, t.v); err != nil {
			return usagef("%s must be an RFC 3339 time such as 2026-03-01T12:00:00Z", t.name)
		}
	}
	var list []string
	for _, s := range strings.Split(streams, ",") {
		if s = strings.TrimSpace(s); s != "" {
			list = append(list, s)
		}
	}
	body := map[string]any{"ticketKey": ticket, "reason": reason, "streams": list, "from": from, "to": to,
		"duration": duration, "personalData": personal}
	b, err := e.call(ctx, http.MethodPost, "/api/v1/access-requests", nil, body)
	if err != nil {
		return err
	}
	if e.json {
		e.printJSON(b)
		return nil
	}
	var r accessRequest
	if err := decode(b, &r); err != nil {
		return err
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "id:\t%s\nstatus:\t%s\nticket:\t%s\nstreams:\t%s\nwindow:\t%s to %s\nduration:\t%s\nclaim by:\t%s\n",
		r.ID, r.Status, r.TicketKey, strings.Join(r.Streams, ","), stamp(r.From), stamp(r.To), r.Duration, stamp(r.ExpiresAt))
	tw.Flush()
	fmt.Fprintf(e.stdout, "\nAn administrator of the customer's Atlassian site decides, in the app's Support access page\n"+
		"there; the comment posted on %s links to it. Check with: supportbridge agent access list --ticket %s\n", r.TicketKey, r.TicketKey)
	return nil
}

func cmdAccessList(ctx context.Context, e *env, args []string) error {
	fs, c := e.newFlagSet("access list --ticket KEY", "  supportbridge agent access list --ticket SUP-42\n")
	ticket := fs.String("ticket", "", "the ticket `KEY` (required)")
	if _, err := e.parse(fs, c, args, 0); err != nil {
		return err
	}
	if *ticket == "" {
		return usagef("--ticket is required: the service lists the requests of one ticket")
	}
	b, err := e.call(ctx, http.MethodGet, "/api/v1/access-requests", url.Values{"ticketKey": {*ticket}}, nil)
	if err != nil {
		return err
	}
	if e.json {
		e.printJSON(b)
		return nil
	}
	var v struct {
		Requests []accessRequest `json:"requests"`
	}
	if err := decode(b, &v); err != nil {
		return err
	}
	writeRequests(e.stdout, v.Requests)
	return nil
}

// writeRequests is the access list table.
func writeRequests(w io.Writer, rs []accessRequest) {
	if len(rs) == 0 {
		fmt.Fprintln(w, "no access requests")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSTATUS\tSTREAMS\tWINDOW\tDURATION\tAGENT\tCREATED\tGRANT/NOTE")
	for _, r := range rs {
		note := r.GrantID
		if note == "" {
			note = firstNonEmpty(r.DenyReason, r.CancelReason, "-")
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s – %s\t%s\t%s\t%s\t%s\n", r.ID, r.Status, strings.Join(r.Streams, ","),
			stamp(r.From), stamp(r.To), r.Duration, r.Agent.String(), stamp(r.CreatedAt), note)
	}
	tw.Flush()
}

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}

func cmdAccessCancel(ctx context.Context, e *env, args []string) error {
	fs, c := e.newFlagSet("access cancel ID", "  supportbridge agent access cancel ar_0123456789abcdef0123456789abcdef\n")
	pos, err := e.parse(fs, c, args, 1)
	if err != nil {
		return err
	}
	if _, err := e.call(ctx, http.MethodDelete, "/api/v1/access-requests/"+url.PathEscape(pos[0]), nil, nil); err != nil {
		return err
	}
	if e.json {
		fmt.Fprintf(e.stdout, "{\"id\":%q,\"status\":\"cancelled\"}\n", pos[0])
		return nil
	}
	fmt.Fprintf(e.stdout, "cancelled %s\n", pos[0])
	return nil
}

func cmdGrantsList(ctx context.Context, e *env, args []string) error {
	fs, c := e.newFlagSet("grants list --ticket KEY", "  supportbridge agent grants list --ticket SUP-42\n")
	ticket := fs.String("ticket", "", "the ticket `KEY` (required)")
	if _, err := e.parse(fs, c, args, 0); err != nil {
		return err
	}
	if *ticket == "" {
		return usagef("--ticket is required: the service lists the grants of one ticket")
	}
	b, err := e.call(ctx, http.MethodGet, "/api/v1/grants", url.Values{"ticketKey": {*ticket}}, nil)
	if err != nil {
		return err
	}
	if e.json {
		e.printJSON(b)
		return nil
	}
	var v struct {
		Grants []grant `json:"grants"`
	}
	if err := decode(b, &v); err != nil {
		return err
	}
	writeGrants(e.stdout, v.Grants)
	return nil
}

// writeGrants is the grants list table.
func writeGrants(w io.Writer, gs []grant) {
	if len(gs) == 0 {
		fmt.Fprintln(w, "no grants")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSTATUS\tSTREAMS\tWINDOW\tPERSONAL DATA\tAGENT\tUNTIL\tEND REASON")
	for _, g := range gs {
		until := stamp(g.End)
		if g.UntilRevoked {
			until = "revoked"
		}
		pd := "pseudonymised"
		if g.PersonalData {
			pd = "shown"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s – %s\t%s\t%s\t%s\t%s\n", g.ID, g.Status, strings.Join(g.Streams, ","),
			stamp(g.From), stamp(g.To), pd, g.Agent.String(), until, firstNonEmpty(g.EndReason, "-"))
	}
	tw.Flush()
}

func cmdGrantsRevoke(ctx context.Context, e *env, args []string) error {
	fs, c := e.newFlagSet("grants revoke ID", "  supportbridge agent grants revoke gr_0123456789abcdef0123456789abcdef\n")
	pos, err := e.parse(fs, c, args, 1)
	if err != nil {
		return err
	}
	if _, err := e.call(ctx, http.MethodPost, "/api/v1/grants/"+url.PathEscape(pos[0])+"/revoke", nil, nil); err != nil {
		return err
	}
	if e.json {
		fmt.Fprintf(e.stdout, "{\"id\":%q,\"status\":\"revoked\"}\n", pos[0])
		return nil
	}
	fmt.Fprintf(e.stdout, "revoked %s; the customer and the ticket are told\n", pos[0])
	return nil
}

func cmdReportsRetry(ctx context.Context, e *env, args []string) error {
	fs, c := e.newFlagSet("reports retry ID", "  supportbridge agent reports retry rep_0123456789abcdef   (admin token)\n")
	pos, err := e.parse(fs, c, args, 1)
	if err != nil {
		return err
	}
	b, err := e.call(ctx, http.MethodPost, "/api/v1/reports/"+url.PathEscape(pos[0])+"/retry", nil, nil)
	if err != nil {
		return err
	}
	if e.json {
		e.printJSON(b)
		return nil
	}
	var v struct{ ID, Status string }
	if err := decode(b, &v); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "report %s: %s\n", v.ID, v.Status)
	return nil
}

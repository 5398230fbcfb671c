// Package agentcli is the support agent's command line: `supportbridge agent …`. It speaks
// to the service over HTTP with an agent token, as curl would, so it needs nothing the
// service does not already expose (openapi.yaml), and it turns the service's answers into
// tables for people, raw JSON for scripts, and exit codes that say what happened.
package agentcli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"
)

// Exit codes. Scripts branch on them, so each means one thing.
const (
	ExitOK          = 0 // done
	ExitRefused     = 1 // the service refused (4xx) or the operation failed
	ExitUsage       = 2 // bad flags, arguments or configuration
	ExitUnavailable = 3 // the service could not be reached or answered 5xx
	ExitGrantEnded  = 4 // the grant ended before the logs were all read
)

const usage = `usage: supportbridge agent <command> [flags]

Talks to supportbridge as a support agent. Configuration:
  SB_URL           the service's base URL (or --url)
  SB_AGENT_TOKEN   the agent token (or --token-file PATH, readable by you only)

commands:
  access request --ticket KEY --reason TEXT --streams a,b --from T --to T --duration 4h [--personal-data]
  access list --ticket KEY
  access cancel ID
  grants list --ticket KEY
  grants revoke ID
  logs GRANT [--stream S] [--from T] [--to T] [-o FILE] [--progress]
  evidence --ticket KEY [--verify] [-o FILE]
  reports retry ID                      (admins)

Every command takes --url, --token-file and --json (print the service's JSON as is).
Run "supportbridge agent <command> --help" for its flags and examples.

exit codes: 0 ok, 1 refused or failed, 2 usage or configuration, 3 service unavailable,
4 the grant ended while reading logs
`

// Run runs one agent command and returns its exit code. ctx ends on Ctrl-C (the caller
// installs the signal handler), which stops any request in flight.
func Run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return ExitUsage
	}
	e := &env{getenv: getenv, stdout: stdout, stderr: stderr}
	var cmd func(context.Context, *env, []string) error
	name := args[0]
	rest := args[1:]
	switch name {
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return ExitOK
	case "access", "grants", "reports":
		if len(rest) == 0 {
			fmt.Fprintf(stderr, "supportbridge agent %s: name a subcommand\n\n%s", name, usage)
			return ExitUsage
		}
		name += " " + rest[0]
		rest = rest[1:]
	}
	switch name {
	case "access request":
		cmd = cmdAccessRequest
	case "access list":
		cmd = cmdAccessList
	case "access cancel":
		cmd = cmdAccessCancel
	case "grants list":
		cmd = cmdGrantsList
	case "grants revoke":
		cmd = cmdGrantsRevoke
	case "logs":
		cmd = cmdLogs
	case "evidence":
		cmd = cmdEvidence
	case "reports retry":
		cmd = cmdReportsRetry
	default:
		fmt.Fprintf(stderr, "supportbridge agent: unknown command %q\n\n%s", name, usage)
		return ExitUsage
	}
	e.name = name
	return e.exitCode(cmd(ctx, e, rest))
}

// env is what one command runs with: where to write, how to reach the service.
type env struct {
	name           string
	getenv         func(string) string
	stdout, stderr io.Writer
	json           bool
	common         *commonFlags
	client         *client
}

// exitCode prints err the way a person needs it and maps it to an exit code. Go error
// chains never reach the terminal: the service's problem document says it better.
func (e *env) exitCode(err error) int {
	var (
		p     *Problem
		ue    *usageError
		ended *grantEndedError
		ne    *networkError
	)
	switch {
	case err == nil:
		return ExitOK
	case errors.Is(err, flag.ErrHelp):
		return ExitOK
	case errors.As(err, &ue):
		if ue.msg != "" {
			fmt.Fprintf(e.stderr, "supportbridge agent %s: %s\n", e.name, ue.msg)
		}
		return ExitUsage
	case errors.As(err, &ended):
		fmt.Fprintf(e.stderr, "supportbridge agent %s: %s\n", e.name, ended.Error())
		return ExitGrantEnded
	case errors.As(err, &p):
		p.print(e.stderr)
		if p.Status >= 500 {
			return ExitUnavailable
		}
		return ExitRefused
	case errors.As(err, &ne):
		fmt.Fprintf(e.stderr, "supportbridge agent %s: the service is unreachable: %s\n", e.name, ne.Error())
		return ExitUnavailable
	case errors.Is(err, context.Canceled):
		fmt.Fprintf(e.stderr, "supportbridge agent %s: interrupted\n", e.name)
		return ExitRefused
	default:
		fmt.Fprintf(e.stderr, "supportbridge agent %s: %s\n", e.name, err)
		return ExitRefused
	}
}

// usageError is a mistake in how the command was called; msg is already written for a person.
type usageError struct{ msg string }

func (u *usageError) Error() string { return u.msg }

func usagef(format string, a ...any) error { return &usageError{msg: fmt.Sprintf(format, a...)} }

// networkError is a failure to talk to the service at all: connection refused, timeout,
// a broken stream. It is "unavailable" (exit 3), not "refused".
type networkError struct{ err error }

func (n *networkError) Error() string {
	// url.Error repeats the method and URL; the cause alone is what the agent can act on.
	var ue *url.Error
	if errors.As(n.err, &ue) {
		return ue.Err.Error()
	}
	return n.err.Error()
}

func (n *networkError) Unwrap() error { return n.err }

// grantEndedError is the end of a log read for any reason but "complete".
type grantEndedError struct {
	reason string
	lines  int64
	kept   string // where the lines read so far were left, if in a file
	before bool   // the grant had ended before the read began
}

func (g *grantEndedError) Error() string {
	if g.before {
		return fmt.Sprintf("the grant has ended: %s (%s)", g.reason, describeEnd(g.reason))
	}
	msg := fmt.Sprintf("the read ended before the logs were complete: %s (%s); %d lines received",
		g.reason, describeEnd(g.reason), g.lines)
	if g.kept != "" {
		msg += "; they are in " + g.kept
	}
	return msg
}

// describeEnd explains the service's end reasons in words.
func describeEnd(reason string) string {
	switch reason {
	case "revoked_by_customer":
		return "the customer revoked the grant"
	case "revoked_by_agent", "revoked_by_admin":
		return "the grant was revoked"
	case "expired":
		return "the grant expired"
	case "ticket_closed":
		return "the ticket was resolved or closed"
	case "ticket_deleted":
		return "the ticket was deleted"
	case "tenant_uninstalled":
		return "the customer uninstalled or disabled the app"
	case "budget":
		return "the grant has served all the bytes it may; ask for a new grant"
	case "client_gone":
		return "the connection was closed"
	case "error":
		return "the service could not read the logs; try again"
	case "":
		return "the stream stopped without saying why"
	}
	return "the grant is no longer active"
}

// Problem is an RFC 9457 problem document as the service sends it.
type Problem struct {
	Type      string `json:"type"`
	Title     string `json:"title"`
	Status    int    `json:"status"`
	Detail    string `json:"detail"`
	RequestID string `json:"requestId"`
	Errors    []struct {
		Field   string `json:"field"`
		Message string `json:"message"`
	} `json:"errors"`
	EndReason string `json:"endReason"`
}

// Error lets a problem travel as an error to the one place that prints it.
func (p *Problem) Error() string { return fmt.Sprintf("%d %s: %s", p.Status, p.Title, p.Detail) }

// print writes the problem for a person: title and detail, each field error, and the
// request id to quote to the service's operators.
func (p *Problem) print(w io.Writer) {
	title := p.Title
	if title == "" {
		title = http.StatusText(p.Status)
	}
	fmt.Fprintf(w, "error: %s (HTTP %d)\n", title, p.Status)
	if p.Detail != "" {
		fmt.Fprintf(w, "  %s\n", p.Detail)
	}
	for _, fe := range p.Errors {
		fmt.Fprintf(w, "  %s: %s\n", fe.Field, fe.Message)
	}
	if p.RequestID != "" {
		fmt.Fprintf(w, "  request id: %s\n", p.RequestID)
	}
}

// commonFlags are the flags every command takes.
type commonFlags struct {
	url       string
	tokenFile string
	json      bool
}

func (c *commonFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&c.url, "url", "", "service base URL (default $SB_URL)")
	fs.StringVar(&c.tokenFile, "token-file", "", "read the agent token from `PATH` (mode 0600; default $SB_AGENT_TOKEN)")
	fs.BoolVar(&c.json, "json", false, "print the service's JSON as is, for scripts")
}

// newFlagSet makes a command's flag set with the common flags and a help text of its own.
func (e *env) newFlagSet(synopsis, examples string) (*flag.FlagSet, *commonFlags) {
	fs := flag.NewFlagSet(e.name, flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	c := &commonFlags{}
	c.register(fs)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: supportbridge agent %s\n\nflags:\n", synopsis)
		fs.PrintDefaults()
		if examples != "" {
			fmt.Fprintf(fs.Output(), "\nexamples:\n%s", examples)
		}
	}
	return fs, c
}

// parse parses flags anywhere among the arguments ("access cancel ID --json" works as well
// as "access cancel --json ID") and returns the positional ones.
func (e *env) parse(fs *flag.FlagSet, c *commonFlags, args []string, positional int) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, err
			}
			return nil, &usageError{} // flag already said what was wrong
		}
		args = fs.Args()
		if len(args) == 0 {
			break
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
	if len(pos) != positional {
		if positional == 0 {
			return nil, usagef("unexpected arguments: %s", strings.Join(pos, " "))
		}
		return nil, usagef("expects %d argument(s), got %d (see --help)", positional, len(pos))
	}
	e.json, e.common = c.json, c
	return pos, nil
}

// api is the client, made on first use so that a command's own usage errors (a missing
// --ticket) are reported before missing configuration.
func (e *env) api() (*client, error) {
	if e.client == nil {
		cl, err := newClient(e.common, e.getenv)
		if err != nil {
			return nil, err
		}
		e.client = cl
	}
	return e.client, nil
}

// call is client.getJSON with the client made on first use.
func (e *env) call(ctx context.Context, method, path string, query url.Values, body any) ([]byte, error) {
	cl, err := e.api()
	if err != nil {
		return nil, err
	}
	return cl.getJSON(ctx, method, path, query, body)
}

// newClient reads where the service is and the token. Flags win over the environment.
func newClient(c *commonFlags, getenv func(string) string) (*client, error) {
	base := c.url
	if base == "" {
		base = getenv("SB_URL")
	}
	if base == "" {
		return nil, usagef("no service URL: set SB_URL or pass --url")
	}
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, usagef("the service URL %q is not an http(s) URL", base)
	}
	var token string
	if c.tokenFile != "" {
		token, err = readTokenFile(c.tokenFile)
		if err != nil {
			return nil, err
		}
	} else {
		token = strings.TrimSpace(getenv("SB_AGENT_TOKEN"))
	}
	if token == "" {
		return nil, usagef("no agent token: set SB_AGENT_TOKEN or pass --token-file")
	}
	return &client{base: strings.TrimRight(u.String(), "/"), token: token, http: &http.Client{}}, nil
}

// readTokenFile refuses a token file others can read: a token that leaked to the group is
// a token someone else can act with.
func readTokenFile(path string) (string, error) {
	info, err := os.Stat(path)
	if err != nil {
		return "", usagef("token file: %v", errors.Unwrap(err))
	}
	if info.Mode().Perm()&0o077 != 0 {
		return "", usagef("token file %s is readable by others (mode %04o); run: chmod 600 %s", path, info.Mode().Perm(), path)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", usagef("token file: %v", errors.Unwrap(err))
	}
	return strings.TrimSpace(string(b)), nil
}

// client calls the service as one agent. The token lives only here and in the
// Authorization header; nothing prints it.
type client struct {
	base  string
	token string
	http  *http.Client
}

// callTimeout bounds every call but log reads, which last as long as the logs do.
const callTimeout = 60 * time.Second

// do sends a request and returns the response when it is 2xx; otherwise the problem the
// service answered (or one made up from the status when the body is not a problem).
func (c *client) do(ctx context.Context, method, path string, query url.Values, body any, hdr http.Header) (*http.Response, error) {
	u := c.base + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd = strings.NewReader(string(b))
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	for k, v := range hdr {
		req.Header[k] = v
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		// Ctrl-C is the agent's choice; a call that timed out is the service not answering.
		if errors.Is(ctx.Err(), context.Canceled) {
			return nil, ctx.Err()
		}
		return nil, &networkError{err: err}
	}
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return resp, nil
	}
	defer resp.Body.Close()
	return nil, readProblem(resp)
}

// readProblem turns an error response into a Problem. A proxy's HTML page or an empty body
// still gives a useful line from the status.
func readProblem(resp *http.Response) *Problem {
	p := &Problem{}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if json.Unmarshal(b, p) != nil || p.Title == "" {
		p = &Problem{Title: http.StatusText(resp.StatusCode)}
	}
	p.Status = resp.StatusCode
	return p
}

// getJSON calls the service and returns the raw JSON body, for --json and for decoding.
func (c *client) getJSON(ctx context.Context, method, path string, query url.Values, body any) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	resp, err := c.do(ctx, method, path, query, body, nil)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, &networkError{err: err}
	}
	return b, nil
}

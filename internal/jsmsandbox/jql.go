package jsmsandbox

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// The JQL the sandbox understands: clauses joined by AND, optionally followed by ORDER BY.
// That covers what supportbridge sends (project = SUP AND text ~ "\"<marker>\"") plus a few
// neighbours. Anything else (OR, NOT, parentheses, IN, functions) is refused with a 400 that
// says so, rather than answered wrongly.

// jqlQuery is a parsed query.
type jqlQuery struct {
	clauses []jqlClause
	order   []jqlOrder
}

// jqlClause is one "field op value" condition; field is the canonical lower-case name.
type jqlClause struct {
	field, op, value string
}

type jqlOrder struct {
	field string
	desc  bool
}

// jqlFields maps the field names the sandbox knows (with Jira's aliases) to their canonical
// name, and whether they are text fields searched with ~ rather than compared with =.
var jqlFields = map[string]struct {
	canonical string
	text      bool
}{
	"project":        {"project", false},
	"key":            {"key", false},
	"issue":          {"key", false},
	"issuekey":       {"key", false},
	"status":         {"status", false},
	"statuscategory": {"statuscategory", false},
	"reporter":       {"reporter", false},
	"text":           {"text", true},
	"summary":        {"summary", true},
	"description":    {"description", true},
	"comment":        {"comment", true},
}

var jqlSortFields = []string{"created", "updated", "key"}

type jqlTokenKind int

const (
	tokEOF jqlTokenKind = iota
	tokWord
	tokString
	tokOperator
	tokPunct // ( ) ,
)

type jqlToken struct {
	kind jqlTokenKind
	text string
	pos  int
}

// lexJQL splits a query into tokens. Strings are quoted with " or ' and take JQL's escapes.
func lexJQL(src string) ([]jqlToken, error) {
	var toks []jqlToken
	for i := 0; i < len(src); {
		c := src[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case c == '"' || c == '\'':
			s, n, err := lexString(src[i:])
			if err != nil {
				return nil, jqlErrorf("%v at position %d", err, i)
			}
			toks = append(toks, jqlToken{tokString, s, i})
			i += n
		case c == '(' || c == ')' || c == ',':
			toks = append(toks, jqlToken{tokPunct, string(c), i})
			i++
		case strings.ContainsRune("=!~<>", rune(c)):
			n := 1
			if i+1 < len(src) && src[i+1] == '=' || (c == '!' && i+1 < len(src) && src[i+1] == '~') {
				n = 2
			}
			op := src[i : i+n]
			if op == "!" {
				return nil, jqlErrorf("unexpected '!' at position %d", i)
			}
			toks = append(toks, jqlToken{tokOperator, op, i})
			i += n
		default:
			j := i
			for j < len(src) && !strings.ContainsRune(" \t\n\r\"'(),=!~<>", rune(src[j])) {
				j++
			}
			toks = append(toks, jqlToken{tokWord, src[i:j], i})
			i = j
		}
	}
	return append(toks, jqlToken{tokEOF, "", len(src)}), nil
}

// lexString reads a quoted string at the start of s and returns its value and length.
func lexString(s string) (string, int, error) {
	quote := s[0]
	var b strings.Builder
	for i := 1; i < len(s); {
		c := s[i]
		switch {
		case c == quote:
			return b.String(), i + 1, nil
		case c == '\\':
			if i+1 >= len(s) {
				return "", 0, jqlErrorf("unterminated escape")
			}
			switch e := s[i+1]; e {
			case '"', '\'', '\\', ' ':
				b.WriteByte(e)
			case 'n':
				b.WriteByte('\n')
			case 'r':
				b.WriteByte('\r')
			case 't':
				b.WriteByte('\t')
			case 'u':
				if i+6 > len(s) {
					return "", 0, jqlErrorf("illegal unicode escape")
				}
				r, err := strconv.ParseUint(s[i+2:i+6], 16, 32)
				if err != nil {
					return "", 0, jqlErrorf("illegal unicode escape")
				}
				b.WriteRune(rune(r))
				i += 4
			default:
				return "", 0, jqlErrorf("illegal escape sequence '\\%c'", e)
			}
			i += 2
		default:
			_, n := utf8.DecodeRuneInString(s[i:])
			b.WriteString(s[i : i+n])
			i += n
		}
	}
	return "", 0, jqlErrorf("unterminated string")
}

// parseJQL parses a query; errors read like Jira's, since clients may show or log them.
func parseJQL(src string) (jqlQuery, error) {
	toks, err := lexJQL(src)
	if err != nil {
		return jqlQuery{}, jqlErrorf("Error in the JQL Query: %v.", err)
	}
	p := &jqlParser{toks: toks}
	var q jqlQuery
	if p.peek().kind == tokEOF {
		return q, nil
	}
	if !p.peekKeyword("order") {
		for {
			c, err := p.clause()
			if err != nil {
				return jqlQuery{}, err
			}
			q.clauses = append(q.clauses, c)
			if !p.peekKeyword("and") {
				break
			}
			p.next()
		}
	}
	switch t := p.peek(); {
	case t.kind == tokEOF:
		return q, nil
	case p.peekKeyword("order"):
		if q.order, err = p.orderBy(); err != nil {
			return jqlQuery{}, err
		}
		if t := p.peek(); t.kind != tokEOF {
			return jqlQuery{}, jqlErrorf("Error in the JQL Query: unexpected '%s' at position %d.", t.text, t.pos)
		}
		return q, nil
	case p.peekKeyword("or"):
		return jqlQuery{}, jqlErrorf("The sandbox supports only clauses joined by AND; OR at position %d is not supported.", t.pos)
	default:
		return jqlQuery{}, jqlErrorf("Error in the JQL Query: expecting AND or ORDER BY but got '%s' at position %d.", t.text, t.pos)
	}
}

type jqlParser struct {
	toks []jqlToken
	i    int
}

func (p *jqlParser) peek() jqlToken { return p.toks[p.i] }

func (p *jqlParser) next() jqlToken {
	t := p.toks[p.i]
	if t.kind != tokEOF {
		p.i++
	}
	return t
}

func (p *jqlParser) peekKeyword(kw string) bool {
	t := p.peek()
	return t.kind == tokWord && strings.EqualFold(t.text, kw)
}

func (p *jqlParser) clause() (jqlClause, error) {
	t := p.next()
	if t.kind == tokPunct || (t.kind == tokWord && strings.EqualFold(t.text, "not")) {
		return jqlClause{}, jqlErrorf("The sandbox supports only clauses joined by AND; '%s' at position %d is not supported.", t.text, t.pos)
	}
	if t.kind != tokWord && t.kind != tokString {
		return jqlClause{}, jqlErrorf("Error in the JQL Query: expecting a field name at position %d.", t.pos)
	}
	f, ok := jqlFields[strings.ToLower(t.text)]
	if !ok {
		return jqlClause{}, jqlErrorf("Field '%s' does not exist or you do not have permission to view it.", t.text)
	}
	op := p.next()
	if op.kind == tokWord {
		// IN, IS, WAS and friends are JQL operators the sandbox does not implement.
		return jqlClause{}, jqlErrorf("The sandbox does not support the operator '%s' (position %d).", op.text, op.pos)
	}
	if op.kind != tokOperator {
		return jqlClause{}, jqlErrorf("Error in the JQL Query: expecting an operator after '%s' at position %d.", t.text, op.pos)
	}
	supported := []string{"=", "!="}
	if f.text {
		supported = []string{"~", "!~"}
	}
	if !slices.Contains(supported, op.text) {
		return jqlClause{}, jqlErrorf("The operator '%s' is not supported by the '%s' field.", op.text, t.text)
	}
	v := p.next()
	if v.kind != tokWord && v.kind != tokString {
		return jqlClause{}, jqlErrorf("Error in the JQL Query: expecting a value after '%s' at position %d.", op.text, v.pos)
	}
	if p.peek().kind == tokPunct && p.peek().text == "(" {
		return jqlClause{}, jqlErrorf("The sandbox does not support JQL functions such as '%s()'.", v.text)
	}
	if f.text && len(textTokens(v.text)) == 0 {
		return jqlClause{}, jqlErrorf("The field '%s' does not support searching for an empty string.", t.text)
	}
	return jqlClause{field: f.canonical, op: op.text, value: v.text}, nil
}

func (p *jqlParser) orderBy() ([]jqlOrder, error) {
	p.next() // ORDER
	if !p.peekKeyword("by") {
		return nil, jqlErrorf("Error in the JQL Query: expecting BY after ORDER at position %d.", p.peek().pos)
	}
	p.next()
	var order []jqlOrder
	for {
		t := p.next()
		field := strings.ToLower(t.text)
		if t.kind != tokWord || !slices.Contains(jqlSortFields, field) {
			return nil, jqlErrorf("Not able to sort using field '%s'.", t.text)
		}
		o := jqlOrder{field: field}
		if p.peekKeyword("asc") {
			p.next()
		} else if p.peekKeyword("desc") {
			p.next()
			o.desc = true
		}
		order = append(order, o)
		if t := p.peek(); t.kind != tokPunct || t.text != "," {
			return order, nil
		}
		p.next()
	}
}

// indexedIssue is what the search index holds for an issue at a moment: it only knows the
// comments indexed so far.
type indexedIssue struct {
	is       *issue
	comments []string
}

func (q jqlQuery) matches(d indexedIssue) bool {
	for _, c := range q.clauses {
		if c.matches(d) == (c.op == "!=" || c.op == "!~") {
			return false
		}
	}
	return true
}

// matches evaluates the clause as if its operator were the positive one (= or ~).
func (c jqlClause) matches(d indexedIssue) bool {
	is := d.is
	switch c.field {
	case "project":
		return strings.EqualFold(c.value, projectKeyOf(is.key))
	case "key":
		return strings.EqualFold(c.value, is.key) || c.value == is.id
	case "status":
		return strings.EqualFold(c.value, is.status)
	case "statuscategory":
		cat := statusCategories[is.category]
		return strings.EqualFold(c.value, is.category) || strings.EqualFold(c.value, cat.name) || c.value == strconv.Itoa(cat.id)
	case "reporter":
		return c.value == is.reporter.id
	case "summary":
		return textMatches(c.value, is.summary)
	case "description":
		return textMatches(c.value, is.description)
	case "comment":
		return slices.ContainsFunc(d.comments, func(body string) bool { return textMatches(c.value, body) })
	case "text":
		all := append([]string{is.summary, is.description}, d.comments...)
		return slices.ContainsFunc(all, func(text string) bool { return textMatches(c.value, text) })
	}
	return false
}

func projectKeyOf(issueKey string) string {
	key, _, _ := strings.Cut(issueKey, "-")
	return key
}

// textMatches approximates Jira's Lucene text search: both sides are split into lower-case
// words; a query wrapped in double quotes is a phrase that must appear as consecutive
// words, otherwise every word must appear somewhere, and a trailing * matches a prefix.
// Matching whole words matters: Jira does not find "abc" inside "xabcx", so neither does
// the sandbox.
func textMatches(query, text string) bool {
	words := textTokens(text)
	query = strings.TrimSpace(query)
	if len(query) >= 2 && strings.HasPrefix(query, `"`) && strings.HasSuffix(query, `"`) {
		return containsRun(words, textTokens(query[1:len(query)-1]), false)
	}
	for _, term := range strings.Fields(query) {
		prefix, wildcard := strings.CutSuffix(term, "*")
		if t := textTokens(prefix); len(t) > 0 && !containsRun(words, t, wildcard) {
			return false
		}
	}
	return true
}

func textTokens(s string) []string {
	return strings.FieldsFunc(strings.ToLower(s), func(r rune) bool {
		return !unicode.IsLetter(r) && !unicode.IsDigit(r)
	})
}

// containsRun reports whether run appears in words as consecutive elements; with
// lastIsPrefix its last element need only be a prefix of the word it lines up with.
func containsRun(words, run []string, lastIsPrefix bool) bool {
	if len(run) == 0 {
		return false
	}
	last := len(run) - 1
	for i := 0; i+len(run) <= len(words); i++ {
		w := words[i : i+len(run)]
		if slices.Equal(w[:last], run[:last]) &&
			(w[last] == run[last] || (lastIsPrefix && strings.HasPrefix(w[last], run[last]))) {
			return true
		}
	}
	return false
}

// jqlError is a message for the client, worded like Jira's own JQL errors.
type jqlError struct{ msg string }

func (e *jqlError) Error() string { return e.msg }

func jqlErrorf(format string, args ...any) error {
	return &jqlError{msg: fmt.Sprintf(format, args...)}
}

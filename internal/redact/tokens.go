package redact

import "strings"

// Vendors have taken to prefixing their credentials ("ghp_", "glpat-", "xoxb-", "AKIA", …) so
// that scanners can find them without a key name; a user who pastes "token ghs_… rejected"
// into a report relies on exactly that. The formats below are the ones public secret
// scanners and the vendors themselves document.

// tokenFormat is one self-identifying credential: a fixed prefix and a body of at least min
// bytes of class body (and at most max, when the length is fixed).
type tokenFormat struct {
	prefix   string
	body     uint16
	min, max int
}

const (
	alnumClass = cAlpha | cDigit
	urlClass   = cB64URL           // A-Z a-z 0-9 - _
	urlDot     = cB64URL | cDot    // bodies made of dotted base64url parts
	b64Class   = cB64URL | cB64Std // either base64 alphabet, with padding
	upperNum   = cUpper | cDigit
)

// tokenFormats lists the formats; a longer prefix must come before a shorter one that it
// starts with ("sk-ant-" before "sk-"), because the first match wins. The minimum lengths
// are what keeps a mention of a prefix in documentation ("tokens start with ghp_") alive.
// Where a body may contain '_', the prefix or the minimum is long enough that a snake_case
// identifier ("ops_dashboard_…", "github_pat_expiry_…") cannot pass: the tokens whose body
// is base64-encoded JSON carry its "eyJ" in the prefix.
var tokenFormats = [...]tokenFormat{
	// GitHub: personal, OAuth, user-to-server, installation and refresh tokens.
	{prefix: "ghp_", body: alnumClass, min: 30},
	{prefix: "gho_", body: alnumClass, min: 30},
	{prefix: "ghu_", body: alnumClass, min: 30},
	{prefix: "ghs_", body: alnumClass, min: 30},
	{prefix: "ghr_", body: alnumClass, min: 30},
	{prefix: "github_pat_", body: urlClass, min: 70},
	// GitLab: personal, deploy, runner, pipeline trigger, CI job, incoming mail, SCIM,
	// feed, OAuth application and agent tokens.
	{prefix: "glpat-", body: urlDot, min: 20},
	{prefix: "gldt-", body: urlDot, min: 20},
	{prefix: "glrt-", body: urlDot, min: 20},
	{prefix: "glptt-", body: urlDot, min: 20},
	{prefix: "glcbt-", body: urlDot, min: 20},
	{prefix: "glimt-", body: urlDot, min: 20},
	{prefix: "glsoat-", body: urlDot, min: 20},
	{prefix: "glft-", body: urlDot, min: 20},
	{prefix: "gloas-", body: urlDot, min: 20},
	{prefix: "glagent-", body: urlDot, min: 20},
	// Slack: bot, user, workspace, refresh, legacy and app-level tokens.
	{prefix: "xoxb-", body: urlClass, min: 10},
	{prefix: "xoxp-", body: urlClass, min: 10},
	{prefix: "xoxa-", body: urlClass, min: 10},
	{prefix: "xoxr-", body: urlClass, min: 10},
	{prefix: "xoxs-", body: urlClass, min: 10},
	{prefix: "xoxe-", body: urlClass, min: 10},
	{prefix: "xapp-", body: urlClass, min: 20},
	// Stripe secret and restricted keys (the publishable "pk_" keys are public), and
	// webhook signing secrets.
	{prefix: "sk_live_", body: alnumClass, min: 20},
	{prefix: "sk_test_", body: alnumClass, min: 20},
	{prefix: "rk_live_", body: alnumClass, min: 20},
	{prefix: "rk_test_", body: alnumClass, min: 20},
	{prefix: "whsec_", body: b64Class, min: 24},
	// AI providers: Anthropic, OpenAI (project, service account, admin, legacy), xAI,
	// Groq, Perplexity, Replicate, Hugging Face (user and organisation).
	{prefix: "sk-ant-", body: urlClass, min: 40},
	{prefix: "sk-proj-", body: urlClass, min: 40},
	{prefix: "sk-svcacct-", body: urlClass, min: 40},
	{prefix: "sk-admin-", body: urlClass, min: 40},
	{prefix: "sk-", body: alnumClass, min: 40},
	{prefix: "xai-", body: alnumClass, min: 60},
	{prefix: "gsk_", body: alnumClass, min: 48},
	{prefix: "pplx-", body: alnumClass, min: 40},
	{prefix: "r8_", body: alnumClass, min: 30},
	{prefix: "hf_", body: cAlpha, min: 30},
	{prefix: "api_org_", body: cAlpha, min: 30},
	// Cloud, hosting and registries: AWS access key ids (long-term, temporary, and two
	// rarer kinds), Google API keys, OAuth client secrets and access tokens, DigitalOcean,
	// npm, PyPI, RubyGems, Docker Hub, Pulumi, PlanetScale, Netlify.
	{prefix: "AKIA", body: upperNum, min: 16, max: 16},
	{prefix: "ASIA", body: upperNum, min: 16, max: 16},
	{prefix: "ABIA", body: upperNum, min: 16, max: 16},
	{prefix: "ACCA", body: upperNum, min: 16, max: 16},
	{prefix: "AIza", body: urlClass, min: 35},
	{prefix: "GOCSPX-", body: urlClass, min: 24},
	{prefix: "ya29.", body: urlDot, min: 20},
	{prefix: "dop_v1_", body: cHex, min: 64},
	{prefix: "doo_v1_", body: cHex, min: 64},
	{prefix: "dor_v1_", body: cHex, min: 64},
	{prefix: "npm_", body: alnumClass, min: 36},
	{prefix: "pypi-AgE", body: urlClass, min: 50},
	{prefix: "rubygems_", body: cHex, min: 48},
	{prefix: "dckr_pat_", body: urlClass, min: 20},
	{prefix: "pul-", body: cHex, min: 40},
	{prefix: "pscale_tkn_", body: urlDot, min: 32},
	{prefix: "pscale_pw_", body: urlDot, min: 32},
	{prefix: "pscale_oauth_", body: urlDot, min: 32},
	{prefix: "nfp_", body: alnumClass, min: 36},
	// Secret stores and encryption: Vault service, batch and recovery tokens, Doppler,
	// 1Password service accounts, age identities.
	{prefix: "hvs.", body: urlClass, min: 24},
	{prefix: "hvb.", body: urlClass, min: 24},
	{prefix: "hvr.", body: urlClass, min: 24},
	{prefix: "dp.pt.", body: alnumClass, min: 40},
	{prefix: "dp.st.", body: alnumClass, min: 40},
	{prefix: "dp.sa.", body: alnumClass, min: 40},
	{prefix: "dp.ct.", body: alnumClass, min: 40},
	{prefix: "ops_eyJ", body: b64Class, min: 50},
	{prefix: "AGE-SECRET-KEY-1", body: upperNum, min: 50},
	// SaaS APIs: SendGrid, Brevo, Shopify (admin, custom app, partner, shared
	// secret), Square, Shippo, Flutterwave, Linear, Notion, Figma, Postman, New Relic,
	// Grafana (service account, cloud), Sentry (org and user), Bitbucket app passwords.
	{prefix: "SG.", body: urlDot, min: 40},
	{prefix: "xkeysib-", body: urlClass, min: 60},
	{prefix: "shpat_", body: alnumClass, min: 32},
	{prefix: "shpca_", body: alnumClass, min: 32},
	{prefix: "shppa_", body: alnumClass, min: 32},
	{prefix: "shpss_", body: alnumClass, min: 32},
	{prefix: "sq0atp-", body: urlClass, min: 22},
	{prefix: "sq0csp-", body: urlClass, min: 40},
	{prefix: "shippo_live_", body: cHex, min: 40},
	{prefix: "FLWSECK-", body: urlClass, min: 32},
	{prefix: "lin_api_", body: alnumClass, min: 40},
	{prefix: "secret_", body: alnumClass, min: 43},
	{prefix: "ntn_", body: alnumClass, min: 40},
	{prefix: "figd_", body: urlClass, min: 40},
	{prefix: "PMAK-", body: urlClass, min: 50},
	{prefix: "NRAK-", body: upperNum, min: 27},
	{prefix: "glsa_", body: urlClass, min: 32},
	{prefix: "glc_eyJ", body: b64Class, min: 32},
	{prefix: "sntrys_eyJ", body: b64Class, min: 60},
	{prefix: "sntryu_", body: cHex, min: 64},
	{prefix: "ATBB", body: alnumClass, min: 32},
	// Developer tooling: Supabase, SonarQube (user, project, analysis), Buildkite, CircleCI,
	// Heroku, Contentful, Dynatrace, Typeform, Prefect, ReadMe, JFrog, Mapbox.
	{prefix: "sbp_", body: alnumClass, min: 40},
	{prefix: "squ_", body: alnumClass, min: 40},
	{prefix: "sqp_", body: alnumClass, min: 40},
	{prefix: "sqa_", body: alnumClass, min: 40},
	{prefix: "bkua_", body: alnumClass, min: 40},
	{prefix: "CCIPAT_", body: urlClass, min: 40},
	{prefix: "HRKU-", body: urlClass, min: 40},
	{prefix: "CFPAT-", body: urlClass, min: 40},
	{prefix: "dt0c01.", body: urlDot, min: 80},
	{prefix: "tfp_", body: urlClass, min: 40},
	{prefix: "pnu_", body: alnumClass, min: 36},
	{prefix: "rdme_", body: alnumClass, min: 60},
	{prefix: "AKCp", body: alnumClass, min: 60},
	{prefix: "sk.eyJ", body: urlDot, min: 60},
}

// maxTokenBody bounds how far a token's body is read: longer than any real token (a
// 1Password service account token is under 1 kB), and short enough that a long run of token
// bytes with a prefix every few bytes cannot make the scan quadratic.
const maxTokenBody = 1024

// maxPrefixWord is the longest run of letters and digits that starts a prefix ("rubygems").
const maxPrefixWord = 8

// tokenIndex holds, for each first byte, the formats whose prefix starts with it, and for
// each format where its first separator is; a word before a separator is compared with the
// few formats that start like it, and most words (hex ids, ordinary keys) with none.
//
// pairs is a bit set of the two bytes before each prefix's first separator, per separator:
// scan tests it inline, so that the separators in UUIDs, dates, host names and snake_case
// keys, nearly all of them, cost three table reads and no call.
type tokenIndex struct {
	byFirst [256][]uint8
	sepAt   [len(tokenFormats)]uint8
	pairs   [3][1 << 16 / 8]uint8
}

var tokens = func() (t tokenIndex) {
	for i, f := range tokenFormats {
		t.byFirst[f.prefix[0]] = append(t.byFirst[f.prefix[0]], uint8(i))
		t.sepAt[i] = uint8(len(f.prefix))
		if k := strings.IndexAny(f.prefix, "_-."); k >= 0 {
			t.sepAt[i] = uint8(k)
			pair := uint(f.prefix[k-2])<<8 | uint(f.prefix[k-1])
			t.pairs[sepIndex(f.prefix[k])][pair/8] |= 1 << (pair % 8)
		}
	}
	return t
}()

// sepIndex numbers the separators that end a token prefix.
func sepIndex(c byte) int {
	switch c {
	case '_':
		return 0
	case '-':
		return 1
	}
	return 2
}

// mayEndPrefix reports whether the separator at i (i >= 2) follows the last two bytes of a
// token prefix's first word.
func mayEndPrefix(in string, i int) bool {
	pair := uint(in[i-2])<<8 | uint(in[i-1])
	return tokens.pairs[sepIndex(in[i])][pair/8]&(1<<(pair%8)) != 0
}

// matchToken reports the end of the token that starts at p, whose prefix has its first
// separator at sep (or has none when sep is -1), or -1.
func matchToken(in string, p, sep int) int {
	for _, fi := range tokens.byFirst[in[p]] {
		if sep >= 0 && int(tokens.sepAt[fi]) != sep-p {
			continue
		}
		f := &tokenFormats[fi]
		if !strings.HasPrefix(in[p:], f.prefix) {
			continue
		}
		bs := p + len(f.prefix)
		e := bs
		for e < len(in) && e-bs < maxTokenBody && is(in[e], f.body) {
			e++
		}
		if n := e - bs; n < f.min || f.max > 0 && n > f.max || isPlaceholderBody(in[bs:e]) {
			continue
		}
		return e
	}
	return -1
}

// isPlaceholderBody recognises the bodies that documentation and sample configs use
// ("sk_live_xxxxxxxxxxxxxxxxxxxxxxxx", "AKIAIOSFODNN7EXAMPLE"): a run of six equal bytes is
// practically impossible in a random token.
func isPlaceholderBody(b string) bool {
	run := 1
	for i := 1; i < len(b); i++ {
		if b[i] == b[i-1] {
			if run++; run >= 6 {
				return true
			}
		} else {
			run = 1
		}
	}
	return strings.HasSuffix(b, "EXAMPLE")
}

// separator handles a '_', '-' or '.' at i that may end a token prefix. It returns where
// scanning goes on.
func (s *Scrubber) separator(in string, i int) int {
	ws := i
	for ws > 0 && i-ws <= maxPrefixWord && isAlnum(in[ws-1]) {
		ws--
	}
	if ws == i || i-ws > maxPrefixWord || len(tokens.byFirst[in[ws]]) == 0 {
		return i + 1
	}
	if e := matchToken(in, ws, i); e >= 0 {
		s.add(ws, e, kindToken)
		return e
	}
	return i + 1
}

// upperA handles an upper-case 'A', which starts the prefixes without a separator ("AKIA",
// "AIza", "ATBB") and "AGE-SECRET-KEY-1".
func (s *Scrubber) upperA(in string, i int) int {
	if e := matchToken(in, i, -1); e >= 0 {
		s.add(i, e, kindToken)
		return e
	}
	return i + 1
}

// flag handles a command-line flag starting at the '-' at i, whose value follows after a
// blank: "--password hunter2", "--token …", curl's "-u user:pass" and "--user user:pass",
// the short password flags of a few commands (passwordFlags), and mysql's glued "-pS3cret".
// "--password=…" is keyValue's.
func (s *Scrubber) flag(in string, i int) int {
	ns := i + 1
	long := ns < len(in) && in[ns] == '-'
	if long {
		ns++
	}
	if ns >= len(in) || !is(in[ns], cAlpha) {
		return i + 1 // "-----BEGIN", "- item", "-1"
	}
	ne := ns
	for ne < len(in) && ne-ns <= 40 && (isAlnum(in[ne]) || in[ne] == '-' || in[ne] == '_') {
		ne++
	}
	if !long && ne-ns > 1 && in[ns] == 'p' && commandBefore(in, i, "mysql") {
		// mysql and mysqldump take the password glued to the flag: "-pS3cret".
		vs, ve := ns+1, ns+1
		for ve < len(in) && !is(in[ve], cTermValue) {
			ve++
		}
		if !isHarmlessValue(in, vs, ve, "password") {
			s.add(vs, ve, kindCommandLine)
			return ve
		}
		return ne
	}
	if ne+1 >= len(in) || in[ne] != ' ' {
		return i + 1
	}
	name := in[ns:ne]
	user := false
	switch {
	case long && name == "user", !long && name == "u":
		user = true
	case long && classifyKey(name) == keySecret:
	case !long && isPasswordFlag(in, i, name):
	default:
		return i + 1
	}
	v := ne + 1
	var vs, ve int
	switch c := in[v]; c {
	case '"', '\'':
		var ok bool
		if vs, ve, ok = quotedValue(in, v+1, c); !ok {
			return i + 1
		}
	case '-':
		return i + 1 // no value: the next flag
	default:
		vs, ve = v, v
		for ve < len(in) && !is(in[ve], cTermValue) {
			ve++
		}
	}
	if user {
		// Only the password goes: the user name tells support which account was used.
		colon := strings.IndexByte(in[vs:ve], ':')
		if colon < 0 {
			return i + 1
		}
		vs += colon + 1
		if scanClass(in, vs, cDigit) == ve {
			return i + 1 // "-u 1000:1000" is a uid:gid pair
		}
	}
	if vs == ve || strings.HasPrefix(in[vs:], marker) || isHarmlessValue(in, vs, ve, name) ||
		isOneOf(in[vs:ve], proseWords[:]) {
		return i + 1
	}
	s.add(vs, ve, kindCommandLine)
	return ve
}

// proseWords follow a flag in documentation rather than on a command line ("run with
// --token to authenticate", "--password followed by …"); none is a password worth hiding.
var proseWords = [...]string{
	"a", "an", "and", "are", "as", "can", "flag", "followed", "for", "from", "if", "in",
	"instead", "of", "on", "only", "option", "or", "should", "the", "to", "will", "with", "you",
	"your",
}

// passwordFlags are the short flags that mean a password only for some commands: elsewhere
// "-p" is a port or "parents", "-a" "all".
var passwordFlags = [...]struct{ command, flag string }{
	{"login ", "p"}, // docker, podman, helm registry, oras
	{"sshpass", "p"},
	{"redis-cli", "a"},
}

// isPasswordFlag reports whether the short flag name at i is a password for the command
// its line runs.
func isPasswordFlag(in string, i int, name string) bool {
	for _, f := range passwordFlags {
		if name == f.flag && commandBefore(in, i, f.command) {
			return true
		}
	}
	return false
}

// commandBefore reports whether cmd precedes i on its line, within 200 bytes.
func commandBefore(in string, i int, cmd string) bool {
	from := max(0, i-200)
	ls := strings.LastIndexByte(in[from:i], '\n') + 1 + from
	return strings.Contains(in[ls:i], cmd)
}

// webhookHosts are services whose webhook URLs carry their credential in the path: whoever
// has the URL can post to the channel. The path up to the prefix stays, so support can see
// which service it was.
var webhookHosts = [...]struct{ host, path string }{
	{"hooks.slack.com", "/services/"},
	{"hooks.slack.com", "/workflows/"},
	{"hooks.slack.com", "/triggers/"},
	{".webhook.office.com", "/webhookb2/"},
	{"outlook.office.com", "/webhook/"},
	{"discord.com", "/api/webhooks/"},
	{"discordapp.com", "/api/webhooks/"},
}

// webhook records the secret path of a webhook URL whose host starts at a.
func (s *Scrubber) webhook(in string, a int) {
	he := a
	for he < len(in) && he-a < 256 && is(in[he], cDomain) {
		he++
	}
	if he == a || he >= len(in) || in[he] != '/' {
		return
	}
	host := in[a:he]
	for _, w := range webhookHosts {
		if !(host == w.host || w.host[0] == '.' && strings.HasSuffix(host, w.host)) ||
			!strings.HasPrefix(in[he:], w.path) {
			continue
		}
		ps := he + len(w.path)
		pe := ps
		for pe < len(in) && pe-ps < 512 && !is(in[pe], cTermValue) && in[pe] != '?' && in[pe] != '#' {
			pe++
		}
		if pe-ps >= 20 && !strings.HasPrefix(in[ps:], marker) && !isPlaceholderBody(in[ps:pe]) {
			s.add(ps, pe, kindWebhook)
		}
		return
	}
}

// azureSecret records an Azure AD (Entra ID) client secret around the '~' at i. Microsoft's
// format has no prefix but a fixed marker: three characters, a digit and "Q~", then 31 to
// 34 more, all from [A-Za-z0-9_.~-].
func (s *Scrubber) azureSecret(in string, i int) int {
	st := i - 5
	if st < 0 || in[i-1] != 'Q' || !isDigit(in[i-2]) ||
		!isAzureSecretByte(in[st]) || !isAzureSecretByte(in[st+1]) || !isAzureSecretByte(in[st+2]) ||
		st > 0 && isAzureSecretByte(in[st-1]) {
		return i + 1
	}
	e := i + 1
	for e < len(in) && e-i <= 35 && isAzureSecretByte(in[e]) {
		e++
	}
	if n := e - i - 1; n < 31 || n > 34 || isPlaceholderBody(in[i+1:e]) {
		return i + 1
	}
	s.add(st, e, kindToken)
	return e
}

func isAzureSecretByte(c byte) bool { return is(c, cB64URL) || c == '.' || c == '~' }

// telegramToken records a Telegram bot token whose ':' is at p: the bot's numeric id, then
// 35 base64url bytes that start with "AA". In the Bot API URL it follows "bot".
func (s *Scrubber) telegramToken(in string, p int) bool {
	ds := p
	for ds > 0 && p-ds <= 10 && isDigit(in[ds-1]) {
		ds--
	}
	if p-ds < 8 || p-ds > 10 || ds > 0 && isAlnum(in[ds-1]) && !strings.HasSuffix(in[:ds], "bot") {
		return false
	}
	e := p + 1
	for e < len(in) && e-p <= 36 && is(in[e], cB64URL) {
		e++
	}
	if e-p-1 != 35 {
		return false
	}
	s.add(ds, e, kindToken)
	return true
}

package redact

import "strings"

// Configs, scripts and docs that customers paste name secrets far more often than they
// contain them: "password=${DB_PASSWORD}", "token: <your-token-here>", "password: ********",
// "SECRET_PATH = "PAYMENTS-DB-PASSWORD"". Replacing those hides nothing and makes support
// wonder what was there, so the value of a secret-named key is left alone when it is
// plainly not a secret. Every test here is on the shape of the whole value; none guesses
// from entropy, which would let short real passwords through.

// isHarmlessValue reports whether the value in[vs:ve] of the key named key is a reference
// to a secret kept elsewhere, a placeholder, a mask, a status word or the name of a secret.
// The text after ve is consulted for unquoted values that a delimiter cut short ("$(…)", a
// call "getpass.getpass()").
func isHarmlessValue(in string, vs, ve int, key string) bool {
	v := in[vs:ve]
	if v == "" || len(v) > maxHarmless {
		return false
	}
	if ve < len(in) && vs > 0 && in[vs-1] != '"' && in[vs-1] != '\'' {
		if v[0] == '!' && in[ve] == ' ' && onlyBytes(v[1:], cAlpha, "") {
			return true // a YAML tag before the value: "!vault |", "!Ref DbPassword"
		}
		switch in[ve] {
		case '(', '[':
			// An unquoted value followed by a call or an index is code, not a literal:
			// "password = getpass.getpass()", "token = os.environ["TOKEN"]".
			if isIdentPath(v) || v == "$" {
				return true
			}
		}
	}
	return isPlaceholder(v) || isStatusWord(v) || isSecretName(v, key)
}

// maxHarmless bounds the values isHarmlessValue considers: placeholders and names are
// short, and a value kept is scanned again, so a long one could make the scan quadratic.
const maxHarmless = 256

// isPlaceholder reports whether v is a variable reference, a template expression, a fill-in
// or a mask.
func isPlaceholder(v string) bool {
	if v == "" {
		return false
	}
	switch c := v[0]; {
	case c == '$' && len(v) > 1:
		switch v[1] {
		case '{':
			// "${DB_PASSWORD}", "${{ secrets.TOKEN }}"; not "${DB_PASSWORD:-hunter2}",
			// whose default is a literal.
			return v[len(v)-1] == '}' && onlyBytes(v[2:len(v)-1], alnumClass, "_.{} ")
		case '(':
			return v[len(v)-1] == ')' // "$(cat /run/secrets/db)"
		}
		// "$DB_PASSWORD": environment variables are upper case by convention, and a real
		// password that starts with '$' rarely is.
		return onlyBytes(v[1:], cUpper|cDigit, "_") && !isDigit(v[1])
	case c == '{' && strings.HasPrefix(v, "{{") && strings.HasSuffix(v, "}}"):
		return true // Helm, Jinja, Go and Handlebars templates
	case c == '<' && v[len(v)-1] == '>' && len(v) > 2:
		return onlyBytes(v[1:len(v)-1], alnumClass, " _.-") // "<your-token-here>"
	case c == '%' && v[len(v)-1] == '%' && len(v) > 2:
		return onlyBytes(v[1:len(v)-1], alnumClass, "_") // "%DB_PASSWORD%"
	case c == '[' && v[len(v)-1] == ']' && len(v) > 2:
		return onlyBytes(v[1:len(v)-1], cAlpha, " _-") // "[hidden]", "[REDACTED]"
	case c == '~' && len(v) == 1:
		return true // YAML's null
	}
	for _, p := range envReaders {
		if strings.HasPrefix(v, p) {
			return true
		}
	}
	// Masks: "********", "xxxxxxxxxxxxxxxx", "sk_live_xxxxxxxxxxxxxxxxxxxxxxxx".
	if len(v) >= 3 && strings.Count(v, "*") == len(v) {
		return true
	}
	// "EXAMPLE" marks the sample credentials of vendor documentation
	// ("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY").
	return strings.Contains(v, "xxxxxx") || strings.Contains(v, "XXXXXX") || strings.Contains(v, "******") ||
		strings.Contains(v, "EXAMPLE")
}

// envReaders start code that reads a secret from the environment.
var envReaders = [...]string{
	"process.env.", "os.environ", "os.getenv(", "System.getenv(", "ENV[", "ENV.fetch(", "getenv(",
	"Environment.GetEnvironmentVariable(",
}

// statusWords follow "password:" or "token:" in validation messages and permission lists
// ("password: required", "using password: YES", "id-token: write"); as a password each would
// be so weak that naming it costs nothing.
var statusWords = [...]string{
	"must", "is", "was", "required", "missing", "invalid", "incorrect", "expired", "empty", "not",
	"ok", "yes", "no", "none", "read", "write", "unknown", "unset", "changed", "reset", "wrong",
	"rejected", "accepted", "valid", "present", "absent", "hidden", "masked", "redacted",
	"provided", "set",
}

func isStatusWord(v string) bool {
	if len(v) > 8 {
		return false
	}
	for _, w := range statusWords {
		if strings.EqualFold(v, w) {
			return true
		}
	}
	return false
}

// isSecretName reports whether v names a secret rather than being one: a constant name
// ("PAYMENTS-DB-PASSWORD", "YOUR_SECRET_ACCESS_KEY"), a property or variable path whose last
// part is a secret-named key ("spring.datasource.password", "self.token"), or the key itself
// ("password=password", a keyword argument passed on).
func isSecretName(v, key string) bool {
	if isConstantName(v) {
		return true
	}
	if !isIdentPath(v) {
		return false
	}
	if strings.EqualFold(v, key) {
		return true
	}
	dot := strings.LastIndexByte(v, '.')
	return dot > 0 && classifyKey(v[dot+1:]) != keyPlain
}

// isConstantName reports whether v is an upper-case name of words joined by '_' or '-' that
// names a secret or says to fill one in: "PAYMENTS-DB-PASSWORD", "CHANGE_ME_IN_PRODUCTION".
// Each word is letters, then perhaps digits ("DB2"), and at most 12 bytes, so that keys
// issued in groups ("K7F3-Q9Z2-M4X8") and the random bodies of tokens ("NRAK-…") are not
// taken for names.
func isConstantName(v string) bool {
	parts, n, digits, filler := 0, 0, false, false
	for i := 0; i <= len(v); i++ {
		if i == len(v) || v[i] == '_' || v[i] == '-' {
			if n == 0 || n > 12 {
				return false
			}
			filler = filler || isOneOf(v[i-n:i], fillerWords[:])
			parts++
			n, digits = 0, false
			continue
		}
		switch {
		case isUpper(v[i]) && !digits:
		case isDigit(v[i]) && n > 0:
			digits = true
		default:
			return false
		}
		n++
	}
	return parts >= 2 && (filler || classifyKey(v) != keyPlain)
}

// fillerWords in a constant name ask for a value rather than being one.
var fillerWords = [...]string{
	"your", "change", "changeme", "replace", "placeholder", "dummy", "todo", "fixme", "insert",
	"here", "fake", "sample", "example",
}

// isIdentPath reports whether v is an identifier or a dotted path of identifiers, with no
// digits: code ("self.token", "config.db_password"), not a literal.
func isIdentPath(v string) bool {
	if v == "" || v[0] == '.' || v[len(v)-1] == '.' || strings.Contains(v, "..") {
		return false
	}
	return onlyBytes(v, cAlpha, "_.")
}

// onlyBytes reports whether every byte of s is of class or one of extra.
func onlyBytes(s string, class uint16, extra string) bool {
	for i := range len(s) {
		if !is(s[i], class) && strings.IndexByte(extra, s[i]) < 0 {
			return false
		}
	}
	return true
}

package redact

// Byte classes, looked up in one table instead of chains of comparisons because the scanners
// test every byte of multi-megabyte logs.
const (
	cAlpha     uint16 = 1 << iota // A-Z a-z
	cDigit                        // 0-9
	cB64URL                       // base64url: A-Z a-z 0-9 - _
	cB64Std                       // standard base64 with padding: A-Z a-z 0-9 + / =
	cKey                          // an unquoted key: A-Z a-z 0-9 _ . -
	cLocal                        // an email local part: A-Z a-z 0-9 . _ % + -
	cDomain                       // a host name: A-Z a-z 0-9 . -
	cSpace                        // ASCII white space
	cTermValue                    // ends an unquoted value after "key=" or "key:"
	cTermQuery                    // ends a value in a URL query
	cTermAuth                     // ends a URL authority (user:pass@host:port)
	cTrigger                      // a byte that scan must look at
	cUpper                        // A-Z
	cHex                          // lower-case hex: 0-9 a-f
	cDot                          // '.', inside some token bodies
)

// classes is immutable after package initialisation; it is built by a function rather than
// written out so that each class is defined once, by its characters.
var classes = func() (t [256]uint16) {
	set := func(c uint16, chars string) {
		for i := range len(chars) {
			t[chars[i]] |= c
		}
	}
	const (
		upper  = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
		lower  = "abcdefghijklmnopqrstuvwxyz"
		digits = "0123456789"
		alnum  = upper + lower + digits
		space  = " \t\n\r\v\f"
	)
	set(cAlpha, upper+lower)
	set(cDigit, digits)
	set(cB64URL, alnum+"-_")
	set(cB64Std, alnum+"+/=")
	set(cKey, alnum+"_.-")
	set(cLocal, alnum+"._%+-")
	set(cDomain, alnum+".-")
	set(cSpace, space)
	// A password may contain almost anything, but in a log line the value of key=value ends
	// at the next blank or punctuation that delimits fields; '#' is deliberately absent.
	set(cTermValue, space+"&,;\"'<>()[]{}`\\")
	set(cTermQuery, space+"&#,;\"'<>()[]{}`\\")
	set(cTermAuth, space+"/?#\"'<>`\\")
	// '_', '-' and '.' end the prefix of a self-identifying token ("ghp_", "glpat-", "SG."),
	// '-' also starts a command-line flag, 'A' starts the tokens whose prefix has no
	// separator ("AKIA", "AIza", "ATBB"), and '~' marks an Azure AD client secret.
	set(cTrigger, "=:BJbj_-.A~")
	set(cUpper, upper)
	set(cHex, digits+"abcdef")
	set(cDot, ".")
	return t
}()

func is(c byte, class uint16) bool { return classes[c]&class != 0 }

func isUpper(c byte) bool { return c >= 'A' && c <= 'Z' }
func isLower(c byte) bool { return c >= 'a' && c <= 'z' }
func isDigit(c byte) bool { return c >= '0' && c <= '9' }
func isAlnum(c byte) bool { return is(c, cAlpha|cDigit) }

// isBlank is a space or tab: the white space allowed inside one logical field.
func isBlank(c byte) bool { return c == ' ' || c == '\t' }

// hasPrefixFold reports whether s starts with the lower-case ASCII prefix p, ignoring case.
func hasPrefixFold(s, p string) bool {
	if len(s) < len(p) {
		return false
	}
	for i := range len(p) {
		c := s[i]
		if isUpper(c) {
			c += 'a' - 'A'
		}
		if c != p[i] {
			return false
		}
	}
	return true
}

// containsFold reports whether s contains the lower-case ASCII string sub, ignoring case,
// without allocating a lower-cased copy of s.
func containsFold(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if hasPrefixFold(s[i:], sub) {
			return true
		}
	}
	return false
}

// isWord reports whether s is the lower-case ASCII word w in any case; it is
// strings.EqualFold for the short constant words the scanners test on every separator.
func isWord(s, w string) bool { return len(s) == len(w) && hasPrefixFold(s, w) }

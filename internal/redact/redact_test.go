package redact

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

const (
	testKeep   = "reporter@customer.example"
	testSecret = "Zk3Jm9QpX2wVt7LsR4nB8cYd1Hf6Ga0EuTo5Wi2Kx"
	testJWT    = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJpc3MiOiJhcHAiLCJxc2giOiJhYmMifQ.dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
	testATATT  = "ATATT3xFfGF0T1nqkq2VY4gGZt8XyT6rJ7dL9pWm3sQ=A1B2C3D4"
	testPEM    = "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA7bq0Z4v\nq8w+Yk9/ab==\n-----END RSA PRIVATE KEY-----"
)

func newTestScrubber() *Scrubber {
	return New(Options{KeepEmail: testKeep, Secrets: []string{testSecret}})
}

type ruleCase struct {
	name  string
	in    string
	want  string
	kinds map[string]int // nil: not checked
}

// ruleCases are positive cases: each shows a rule removing what it is for.
var ruleCases = []ruleCase{
	// Secret-named keys in free text.
	{"logfmt password", "user=bob password=hunter2 ok", "user=bob password=[redacted] ok", map[string]int{"secret_key": 1}},
	{"yaml passwd", "passwd: hunter2", "passwd: [redacted]", nil},
	{"pwd", "PWD=abc123", "PWD=[redacted]", nil},
	{"json secret", `{"secret":"s1","name":"x"}`, `{"secret":"[redacted]","name":"x"}`, nil},
	{"json sharedSecret", `{"sharedSecret": "abc", "key": "app"}`, `{"sharedSecret": "[redacted]", "key": "app"}`, nil},
	{"client_secret", "client_secret=xyz&grant_type=refresh", "client_secret=[redacted]&grant_type=refresh", nil},
	{"token", "token: abc.def", "token: [redacted]", nil},
	{"access_token", `access_token="a b c"`, `access_token="[redacted]"`, nil},
	{"refresh_token camel", "refreshToken=r-123", "refreshToken=[redacted]", nil},
	{"id_token kebab", "id-token: zz9", "id-token: [redacted]", nil},
	{"jwt key", "jwt=notreallyajwt", "jwt=[redacted]", nil},
	{"acpt", "acpt: opaque", "acpt: [redacted]", nil},
	{"auth", "auth=abc", "auth=[redacted]", nil},
	{"cookie to end of line", "Cookie: a=b; session=c\nnext=1", "Cookie: [redacted]\nnext=1", nil},
	{"set-cookie", "Set-Cookie: JSESSIONID=abc; Path=/; HttpOnly", "Set-Cookie: [redacted]", nil},
	{"session", "session=s%3Aabc", "session=[redacted]", nil},
	{"sessionid", "SESSIONID=abc", "SESSIONID=[redacted]", nil},
	{"session id words", "session id: abc", "session id: [redacted]", nil},
	{"csrf", "_csrf=tok", "_csrf=[redacted]", nil},
	{"xsrf header", "X-XSRF-TOKEN: tok", "X-XSRF-TOKEN: [redacted]", nil},
	{"atlassian cookie name", "cloud.session.token=abc; x", "cloud.session.token=[redacted]; x", nil},
	{"credentials", "credentials: user:pass", "credentials: [redacted]", nil},
	{"private key words", "private key: abc", "private key: [redacted]", nil},
	{"private_key", `"private_key": "abc"`, `"private_key": "[redacted]"`, nil},
	{"privateKey", "privateKey=abc", "privateKey=[redacted]", nil},
	{"signature", "signature=abcdef", "signature=[redacted]", nil},
	{"sig", "sig: abcdef", "sig: [redacted]", nil},
	{"api key words", "API key = abc", "API key = [redacted]", nil},
	{"apikey", "apikey=abc", "apikey=[redacted]", nil},
	{"api_key", "api_key=abc", "api_key=[redacted]", nil},
	{"x-api-key", "X-Api-Key: abc", "X-Api-Key: [redacted]", nil},
	{"env var", "AWS_SECRET_ACCESS_KEY=wJalr/K7MDENG", "AWS_SECRET_ACCESS_KEY=[redacted]", nil},
	{"flag", "--password=hunter2 --verbose", "--password=[redacted] --verbose", nil},
	{"go struct", "&{User:bob Password:hunter2}", "&{User:bob Password:[redacted]}", nil},
	{"escaped json", `{"msg":"{\"token\":\"abc\"}"}`, `{"msg":"{\"token\":\"[redacted]\"}"}`, nil},
	{"json object value", `{"credentials": {"user": "a", "pass": "b"}, "n": 1}`, `{"credentials": [redacted], "n": 1}`, nil},
	{"json number value", `{"pin_password": 1234}`, `{"pin_password": [redacted]}`, nil},
	{"spaced equals", "password = hunter2", "password = [redacted]", nil},
	{"single quotes", "password='hunter 2'", "password='[redacted]'", nil},

	// Authorization.
	{"authorization bearer", "Authorization: Bearer abc", "Authorization: Bearer [redacted]", map[string]int{"authorization": 1}},
	{"authorization basic", "authorization: Basic dXNlcjpwYXNz", "authorization: Basic [redacted]", nil},
	{"authorization jwt", "Authorization: JWT abc", "Authorization: JWT [redacted]", nil},
	{"authorization digest", `Authorization: Digest username="bob", response="6629fae4"` + "\nnext", "Authorization: Digest [redacted]\nnext", nil},
	{"authorization no scheme", "Authorization: abc123", "Authorization: [redacted]", nil},
	{"authorization json", `{"Authorization":"Bearer abc","x":1}`, `{"Authorization":"Bearer [redacted]","x":1}`, nil},
	{"proxy-authorization", "Proxy-Authorization: Basic abc", "Proxy-Authorization: Basic [redacted]", nil},
	{"auth key with scheme", "auth: Bearer abc next", "auth: Bearer [redacted] next", map[string]int{"secret_key": 1}},
	{"token key with scheme", `{"token":"Bearer abc"}`, `{"token":"[redacted]"}`, nil},
	{"bare bearer", "calling jira with Bearer 9f8e7d6c5b4a3f21 now", "calling jira with Bearer [redacted] now", map[string]int{"authorization": 1}},
	{"bare basic", "header Basic dXNlcjpwYXNz sent", "header Basic [redacted] sent", nil},
	{"bare jwt scheme", "JWT abc.def.ghi1", "JWT [redacted]", nil},

	// URLs.
	{"userinfo", "https://user:pass@host.example/x", "https://[redacted]@host.example/x", map[string]int{"url_credentials": 1}},
	{"userinfo user only", "ssh://git@bitbucket.org/acme/app.git", "ssh://[redacted]@bitbucket.org/acme/app.git", nil},
	{"userinfo with at", "postgres://u:p@ss@db.internal:5432/app", "postgres://[redacted]@db.internal:5432/app", nil},
	{"query jwt", "https://a.example/p?jwt=abc&lic=active", "https://a.example/p?jwt=[redacted]&lic=active", map[string]int{"url_query": 1}},
	{"query code", "https://a.example/cb?state=s1&code=c0de", "https://a.example/cb?state=s1&code=[redacted]", nil},
	{"query key", "https://maps.example/api?key=k123", "https://maps.example/api?key=[redacted]", nil},
	{"query amz", "https://s3.example/o?X-Amz-Credential=AKIA%2F2025&X-Amz-Signature=ab12#frag", "https://s3.example/o?X-Amz-Credential=[redacted]&X-Amz-Signature=[redacted]#frag", nil},
	{"query fragment in text", "… &jwt=abc&sig=def& …", "… &jwt=[redacted]&sig=[redacted]& …", nil},
	{"query html escaped", "href=\"/cb?a=1&amp;code=xyz\"", "href=\"/cb?a=1&amp;code=[redacted]\"", nil},
	{"query json escaped amp", `"/cb?a=1\u0026code=xyz"`, `"/cb?a=1\u0026code=[redacted]"`, nil},

	// Self-identifying tokens.
	{"jwt in text", "got " + testJWT + " from host", "got [redacted] from host", map[string]int{"jwt": 1}},
	{"jwt in query", "/p?jwt=" + testJWT + "&x=1", "/p?jwt=[redacted]&x=1", map[string]int{"url_query": 1}},
	{"atlassian token", "used " + testATATT + " today", "used [redacted] today", map[string]int{"atlassian_token": 1}},
	{"pem", "key:\n" + testPEM + "\nafter", "key:\n[redacted]\nafter", map[string]int{"private_key": 1}},
	{"pem ec in json", `{"k":"-----BEGIN EC PRIVATE KEY-----\nMHcCAQEE\n-----END EC PRIVATE KEY-----\n"}`, `{"k":"[redacted]\n"}`, nil},
	{"pem openssh", "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----", "[redacted]", nil},
	{"pem encrypted pkcs8", "-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIFHDBOBgkqhkiG9w0BBQ0w\n-----END ENCRYPTED PRIVATE KEY-----", "[redacted]", nil},
	{"pem pgp", "-----BEGIN PGP PRIVATE KEY BLOCK-----\n\nlQOYBF\n-----END PGP PRIVATE KEY BLOCK-----", "[redacted]", nil},
	{"pem truncated", "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\nMIIEvQIBA… (truncated)", "[redacted]… (truncated)", nil},

	// Cards.
	{"card contiguous", "card 4111111111111111 declined", "card [redacted] declined", map[string]int{"card_number": 1}},
	{"card spaced", "card 4111 1111 1111 1111.", "card [redacted].", nil},
	{"card dashed", "5500-0000-0000-0004", "[redacted]", nil},
	{"card amex", "amex 3782 822463 10005", "amex [redacted]", nil},
	{"card after number", "qty 12 4111 1111 1111 1111", "qty 12 [redacted]", nil},
	{"card mastercard 2-series", "2223000048400011", "[redacted]", nil},
	{"card 19 digits", "pan=6200000000000000000 x", "pan=[redacted] x", nil},
	{"card 5500 dashed in json", `{"n":"5500-0000-0000-0004"}`, `{"n":"[redacted]"}`, nil},

	// Vendor tokens that identify themselves, in free text. The bodies are assembled here
	// so that no string in the repository looks like a leaked credential.
	{"github installation token", "token ghs_" + strings.Repeat("aB3dE", 8) + " rejected", "token [redacted] rejected", map[string]int{"service_token": 1}},
	{"gitlab deploy token", "gldt-" + strings.Repeat("Zq9_x", 5) + " revoked", "[redacted] revoked", nil},
	{"slack bot token in code", `WebClient(token="xoxb-1234567890-` + strings.Repeat("Ab9", 8) + `")`, `WebClient(token="[redacted]")`, nil},
	{"aws access key id", "key AKIA" + strings.Repeat("Q7", 8) + " is not authorised", "key [redacted] is not authorised", map[string]int{"service_token": 1}},
	{"aws key id inside a word", "XAKIA" + strings.Repeat("Q7", 8), "XAKIA" + strings.Repeat("Q7", 8), map[string]int{}},
	{"age identity", "AGE-SECRET-KEY-1" + strings.Repeat("QZ7", 20), "[redacted]", nil},
	{"sendgrid", "apikey/SG." + strings.Repeat("aZ9-", 6) + "." + strings.Repeat("Qw8_", 11) + " failed", "apikey/[redacted] failed", nil},
	{"azure ad client secret", "AZURE_CLIENT_SECRET value " + "ab1" + "8Q~" + strings.Repeat("k3_F.", 6) + "Zq rejected", "AZURE_CLIENT_SECRET value [redacted] rejected", nil},
	{"telegram bot", "https://api.telegram.org/bot123456789:AA" + strings.Repeat("hZ3_k", 6) + "Q32/sendMessage", "https://api.telegram.org/bot[redacted]/sendMessage", nil},

	// Webhook URLs: the path is the credential; the host and the kind of path stay.
	{"slack webhook", "POST https://hooks.slack.com/services/T0A1B2C3D/B4E5F6G7H/" + strings.Repeat("Xy7", 8) + " 404", "POST https://hooks.slack.com/services/[redacted] 404", map[string]int{"webhook_url": 1}},
	{"teams webhook", "https://acme.webhook.office.com/webhookb2/1a2b@3c4d/IncomingWebhook/" + strings.Repeat("9f", 16) + "/5e6f", "https://acme.webhook.office.com/webhookb2/[redacted]", nil},
	{"discord webhook", `"https://discord.com/api/webhooks/1234567890/` + strings.Repeat("Ab-", 10) + `"`, `"https://discord.com/api/webhooks/[redacted]"`, nil},

	// Secrets given as command-line flags.
	{"curl -u", "curl -u deploy:Blue7!river https://nexus.example/", "curl -u deploy:[redacted] https://nexus.example/", map[string]int{"command_line": 1}},
	{"curl --user quoted", "curl --user 'ci:p4ss word' x", "curl --user 'ci:[redacted]' x", nil},
	{"long flag", "pg_dump --password hunter22 --dbname=app", "pg_dump --password [redacted] --dbname=app", nil},
	{"login -p", "docker login -u acme -p hunter22 registry.example", "docker login -u acme -p [redacted] registry.example", nil},
	{"redis-cli -a", "redis-cli -h cache -a hunter22 ping", "redis-cli -h cache -a [redacted] ping", nil},
	{"mysql glued -p", "mysql -u root -pS3cr*t! app", "mysql -u root -p[redacted] app", nil},
	{"kubernetes env", "- name: DB_PASSWORD\n  value: hunter22", "- name: DB_PASSWORD\n  value: [redacted]", nil},
	{"authorization in a quoted header", `curl -H "Authorization: Bearer abc123def" https://x.example`, `curl -H "Authorization: Bearer [redacted]" https://x.example`, nil},
	{"userinfo with a token-named user", "https://deploy-token-42:hunter2@gitlab.example/app.git", "https://[redacted]@gitlab.example/app.git", map[string]int{"url_credentials": 1}},
	{"exception named for credentials", "BadCredentialsException: 401 for token=abc123", "BadCredentialsException: 401 for token=[redacted]", nil},
	{"json name and value", `{"name": "DB_PASSWORD", "value": "hunter22"}`, `{"name": "DB_PASSWORD", "value": "[redacted]"}`, nil},
	{"xml element", "<password>hunter22</password>", "<password>[redacted]</password>", nil},
	{"xml attribute", `<add key="SmtpPassword" value="hunter22"/>`, `<add key="SmtpPassword" value="[redacted]"/>`, nil},
	{"azure account key", "AccountName=acme;AccountKey=" + strings.Repeat("Kq+/", 8) + "==;EndpointSuffix=core.windows.net", "AccountName=acme;AccountKey=[redacted];EndpointSuffix=core.windows.net", nil},

	// Values that resemble placeholders or names but may be real secrets.
	{"placeholder with default", "password=${DB_PASSWORD:-hunter2}", "password=[redacted]", nil},
	{"quoted placeholder with default", `password: "${DB_PASSWORD:-hunter2}"`, `password: "[redacted]"`, nil},
	{"grouped key", "api_key: K7F3-Q9Z2-M4X8", "api_key: [redacted]", nil},
	{"upper-case password", "password=HUNTER-TWO", "password=[redacted]", nil},
	{"bang password", "password: !hunter", "password: [redacted]", nil},
	{"password naming a secret word", "password=Password123", "password=[redacted]", nil},
	{"lower-case dollar", "password=$ecret99", "password=[redacted]", nil},

	// Caller's secrets.
	{"shared secret", "secret is " + testSecret + "!", "secret is [redacted]!", map[string]int{"shared_secret": 1}},
	{"shared secret glued", "x" + testSecret + testSecret + "y", "x[redacted][redacted]y", map[string]int{"shared_secret": 2}},

	// Emails.
	{"email other", "contact bob.smith+jira@acme.example now", "contact [email] now", map[string]int{"email": 1}},
	{"email kept", "from Reporter@Customer.example", "from Reporter@Customer.example", map[string]int{}},
	{"email percent", "/search?q=bob%40acme.example", "/search?q=[email]", nil},
	{"email in path", "GET /users/bob@acme.example/profile", "GET /users/[email]/profile", nil},
}

func TestStringRules(t *testing.T) {
	for _, tc := range ruleCases {
		t.Run(tc.name, func(t *testing.T) {
			s := newTestScrubber()
			got := s.String(tc.in)
			if got != tc.want {
				t.Errorf("String(%q)\n got %q\nwant %q", tc.in, got, tc.want)
			}
			if tc.kinds != nil {
				if diff := cmp.Diff(tc.kinds, s.Counts()); diff != "" {
					t.Errorf("Counts() mismatch (-want +got):\n%s", diff)
				}
			}
		})
	}
}

// TestStringUnchanged lists what must survive: words and values that resemble secrets.
func TestStringUnchanged(t *testing.T) {
	for _, in := range []string{
		// Allowlisted look-alike keys.
		"author=bob authority=ca authenticated=true authorName=Bob",
		`{"author":"bob","authority":"x","authenticated":"yes","authorName":"Bob"}`,
		"tokenizer=bpe tokens=1200 maxTokens=4096 tokenCount=3 token_type=Bearer",
		"sessionTimeout=30 signatureAlgorithm=RS256 public_key=abc key=PROJ-1 issueKey=PROJ-2 id=7",
		"secretary=alice", // a strong word inside a longer one that names no secret
		// Prose.
		"the token expired and the session ended; password reset requested",
		"Basic authentication failed for bearer token-based login; JWT validation-failed",
		"Bearer short",
		// Values already absent.
		"password= next", "token=null", `"token": null`, `"password": ""`, "auth:\n  user: x",
		// Numbers and ids.
		"ts=1700000000000 nanos=1700000000000000000 epoch=1710408413",
		"4111111111111112",                      // Luhn fails
		"1234567812345678",                      // no issuer starts with 1
		"4111111111111111111111",                // 22 digits: an id, not a card
		"id4111111111111111 0.4111111111111111", // glued to a word or a decimal
		"order-4111111111111111",
		"123e4567-e89b-12d3-a456-426614174000 550e8400-e29b-41d4-a716-446655440000",
		"12345678-1234-1234-1234-123456789012",
		"req=5f3a9c1e2b4d6f80a1b2c3d4e5f60718 trace=4bf92f3577b34da6a3ce929d0e0e4736",
		"2025-03-14T09:26:53.123456789Z 2025-03-14 09:26:53,123 +0000 20250314092653",
		"v1.2.3 go1.26.8 pkg@1.2.3 node@20.11.1 4.19.0-1-amd64",
		"+44 20 7946 0958",
		// URLs without secrets.
		"https://acme.atlassian.net/rest/api/3/issue/PROJ-123?expand=names&fields=summary#top",
		"http://[::1]:8080/healthz https://example.com:443/a/b;c=d?q=1",
		"file:///var/log/app.log",
		// Addresses that are not emails, and the reporter's own.
		"user@localhost @types/node ping@ 1@2 reporter@customer.example",
		// Placeholders, references and names of secrets.
		"password=${DB_PASSWORD} token=$(cat /run/secrets/api_token) PGPASSWORD=$PGPASSWORD",
		`"token": "<your-token-here>", "secret": "********", api_key: "xxxxxxxxxxxxxxxx"`,
		"GITHUB_TOKEN: ${{ secrets.GITHUB_TOKEN }}",
		`password: "{{ vault_db_password }}"`,
		`password = os.environ["DB_PASSWORD"]; token = getpass.getpass()`,
		"conn = connect(user=user, password=password); Client(token=self.token)",
		`curl -u "$USER:$PASS" -H "Authorization: Bearer $API_TOKEN" https://example.com`,
		"credentialsId: 'jenkins-nexus' passwordVariable: 'NEXUS_PASS'",
		`SECRET_PATH = "PAYMENTS-DB-PASSWORD" password_file=/run/secrets/db`,
		`"secretArn": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:prod/db-AbCdEf"`,
		"credential.helper=store nextPageToken: CAUQAA",
		"validation failed: password: required; error: token: expired; id-token: write",
		// Prefixes without a token, ids that resemble tokens, flags that are no passwords.
		"tokens start with ghp_ and xoxb- and glpat-; sk_live_xxxxxxxxxxxxxxxxxxxx is an example",
		"cus_NffrFeUfNV2Hib pk_live_51H8AbCdEfGhIjKl hf_hub_download npm_config_cache=/tmp",
		"docker run -p 8080:80 -u 1000:1000 acme/app; mkdir -p /var/log; psql -p 5432",
		"GET https://hooks.slack.com/ 404 and https://discord.com/developers/docs/resources/webhook",
		"token_type=Bearer expires_in=3599",
		"cd ~/.ssh && ls ~/projects/Q~1 v1.2~rc1 ~~~~~~~~",
		`{"name": "DB_HOST", "value": "db.internal"}, {"key": "Accept", "value": "*/*"}`,
		"- name: DB_HOST\n  value: db.internal\nmysql -u root -p\nredis-cli -p 6379 -a\nssh -p 22 host",
		"aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
		"<password>${env.NEXUS_PASSWORD}</password><passwordPolicy>strong</passwordPolicy>",
		// Markers from an earlier scrub.
		"password=[redacted] Authorization: Bearer [redacted] https://[redacted]@host [email]",
		"ATATT3 is the prefix of Atlassian API tokens",
	} {
		s := newTestScrubber()
		if got := s.String(in); got != in {
			t.Errorf("String(%q)\n got %q\nwant it unchanged", in, got)
		}
	}
}

func TestStringIdempotent(t *testing.T) {
	inputs := []string{syntheticLog(64 << 10)}
	for _, tc := range ruleCases {
		inputs = append(inputs, tc.in)
	}
	for _, in := range inputs {
		once := newTestScrubber().String(in)
		twice := newTestScrubber().String(once)
		if once != twice {
			t.Errorf("not idempotent for %.80q\n once %.200q\ntwice %.200q", in, once, twice)
		}
	}
}

// TestSyntheticLogClean checks the benchmark's input too, so that a fast scrub is also a
// correct one: every planted secret is gone and the reporter's address stays.
func TestSyntheticLogClean(t *testing.T) {
	in := syntheticLog(1 << 20)
	s := New(Options{KeepEmail: "admin@acme.example"})
	out := s.String(in)
	for _, leak := range []string{"Bearer 0", "Bearer 1", "eyJhbGci", "ATATT3x", "4111 1111", `"db_password":"0`} {
		if strings.Contains(out, leak) {
			t.Errorf("output still contains %q", leak)
		}
	}
	if !strings.Contains(out, "admin@acme.example") {
		t.Error("the reporter's address was removed")
	}
	c := s.Counts()
	for _, k := range []string{"authorization", "jwt", "atlassian_token", "card_number", "secret_key", "email"} {
		if c[k] == 0 {
			t.Errorf("Counts()[%q] = 0, want > 0 (counts %v)", k, c)
		}
	}
}

func TestShortAndMarkerSecretsIgnored(t *testing.T) {
	s := New(Options{Secrets: []string{"", "abc", "redacted", "[redacted]"}})
	in := "abc redacted [redacted] text"
	if got := s.String(in); got != in {
		t.Errorf("String(%q) = %q, want it unchanged", in, got)
	}
}

func TestBracketedSecret(t *testing.T) {
	// A secret with a bracket may be spelled by a marker and the text next to it; the
	// guarantee that it never survives still holds.
	const sec = "d]tail-xyz"
	s := New(Options{Secrets: []string{sec}})
	for _, in := range []string{"password=abc" + "]tail-xyz", "x " + sec + " y", "token=re" + sec} {
		if got := s.String(in); strings.Contains(got, sec) {
			t.Errorf("String(%q) = %q, still contains the secret", in, got)
		}
	}
}

func TestCountsAccumulate(t *testing.T) {
	s := newTestScrubber()
	s.String("password=a token=b bob@acme.example")
	s.String("alice@acme.example")
	want := map[string]int{"secret_key": 2, "email": 2}
	if diff := cmp.Diff(want, s.Counts()); diff != "" {
		t.Errorf("Counts() mismatch (-want +got):\n%s", diff)
	}
}

func TestClassifyKey(t *testing.T) {
	for k, want := range map[string]keyClass{
		"password": keySecret, "Password": keySecret, "PASSWORD": keySecret, "db_password": keySecret,
		"newPassword2": keySecret, "passwd": keySecret, "pwd": keySecret, "secret": keySecret,
		"sharedSecret": keySecret, "client_secret": keySecret, "clientSecret": keySecret,
		"token": keySecret, "access_token": keySecret, "accessToken": keySecret, "XSRFToken": keySecret,
		"refresh-token": keySecret, "id_token": keySecret, "jwt": keySecret, "acpt": keySecret,
		"auth": keySecret, "basicAuth": keySecret, "session": keySecret, "sessionid": keySecret,
		"session_id": keySecret, "JSESSIONID": keySecret, "csrf": keySecret, "xsrf": keySecret,
		"credentials": keySecret, "X-Amz-Credential": keySecret, "private_key": keySecret,
		"privateKey": keySecret, "private key": keySecret, "signature": keySecret, "sig": keySecret,
		"apikey": keySecret, "api_key": keySecret, "x-api-key": keySecret, "APIKey": keySecret,
		"cloud.session.token": keySecret, "u0026jwt": keySecret, "oauth2Token": keySecret,
		"cookie": keyCookie, "Set-Cookie": keyCookie, "authorization": keyAuthorization,
		"Proxy-Authorization": keyAuthorization,

		"author": keyPlain, "authority": keyPlain, "authenticated": keyPlain, "authorName": keyPlain,
		"tokenizer": keyPlain, "tokens": keyPlain, "tokenCount": keyPlain, "token_type": keyPlain,
		"sessionTimeout": keyPlain, "key": keyPlain, "issueKey": keyPlain, "public_key": keyPlain,
		"id": keyPlain, "secretary": keyPlain, "signatureAlgorithm": keyPlain, "code": keyPlain,
		"": keyPlain, "ts": keyPlain, "2025-03-14T09": keyPlain,
	} {
		if got := classifyKey(k); got != want {
			t.Errorf("classifyKey(%q) = %d, want %d", k, got, want)
		}
	}
}

func TestIsCardNumber(t *testing.T) {
	for digits, want := range map[string]bool{
		"4111111111111111": true, "5500000000000004": true, "378282246310005": true,
		"6011111111111117": true, "3530111333300000": true, "30569309025904": true,
		"2223000048400011": true, "4222222222222": true,
		"4111111111111112": false, "1700000000000": false, "2024031409265300": false,
		"411111111111": false, "41111111111111111111": false, "411111111111111a": false,
	} {
		if got := isCardNumber(digits); got != want {
			t.Errorf("isCardNumber(%q) = %v, want %v", digits, got, want)
		}
	}
}

// TestQueryNames checks every query parameter the issue names is redacted after '?'.
func TestQueryNames(t *testing.T) {
	for _, name := range []string{
		"jwt", "acpt", "token", "access_token", "refresh_token", "id_token", "code", "sig",
		"signature", "key", "api_key", "apikey", "api-key", "password", "passwd", "pwd", "secret",
		"client_secret", "session", "sessionid", "auth", "X-Amz-Signature", "X-Amz-Credential",
		"X-Amz-Security-Token",
	} {
		in := "https://h.example/p?" + name + "=v4lue&x=1"
		want := "https://h.example/p?" + name + "=[redacted]&x=1"
		if got := newTestScrubber().String(in); got != want {
			t.Errorf("String(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestKeepEmailsKeepsEveryAddress(t *testing.T) {
	in := "from alice@example.com to bob@example.org, token=sk_live_abcdefghijklmnopqrstuvwx"
	got := New(Options{KeepEmails: true}).String(in)
	if !strings.Contains(got, "alice@example.com") || !strings.Contains(got, "bob@example.org") {
		t.Errorf("String() = %q, want both addresses kept", got)
	}
	if strings.Contains(got, "sk_live_") && strings.Contains(got, "abcdefghijklmnopqrstuvwx") {
		t.Errorf("String() = %q, want the secret removed", got)
	}
	if got := New(Options{}).String(in); strings.Contains(got, "alice@example.com") {
		t.Errorf("without KeepEmails String() = %q, want the address replaced", got)
	}
}

// TestTokenFormats checks the assumptions the token scan makes about its table: scan
// filters a separator by the two bytes before it and finds the word before it by walking
// back at most maxPrefixWord bytes, and the first format that matches wins.
func TestTokenFormats(t *testing.T) {
	for i, f := range tokenFormats {
		word := f.prefix
		if k := strings.IndexAny(f.prefix, "_-."); k >= 0 {
			word = f.prefix[:k]
			if k < 2 {
				t.Errorf("%q: the word before the separator is shorter than the two bytes mayEndPrefix reads", f.prefix)
			}
		} else if f.prefix[0] != 'A' {
			t.Errorf("%q: a prefix without separator must start with the trigger 'A'", f.prefix)
		}
		if len(word) > maxPrefixWord || scanClass(word, 0, alnumClass) != len(word) {
			t.Errorf("%q: the word before the separator is not %d letters or digits at most", f.prefix, maxPrefixWord)
		}
		for _, g := range tokenFormats[:i] {
			if strings.HasPrefix(f.prefix, g.prefix) {
				t.Errorf("%q comes after %q, which would always match first", f.prefix, g.prefix)
			}
		}
	}
}

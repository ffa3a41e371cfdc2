package kalla

import (
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Mask is what Redact writes in place of a secret.
const Mask = "xxxxx"

// secretNames are the parameter names whose values are credentials, in
// lower case with "-" read as "_" (so X-Amz-Signature is x_amz_signature).
// Names ending in one of secretSuffixes count too (sslpassword,
// client_secret, x_amz_security_token, …).
var secretNames = map[string]bool{
	"api_key": true, "apikey": true, "key": true, "sig": true, "signature": true,
	"secret": true, "password": true, "passwd": true, "pwd": true, "pass": true,
	"token": true, "access_token": true, "auth": true, "credential": true, "credentials": true,
	"secret_key": true, "access_key": true, "private_key": true, "session_key": true,
	"aws_secret_access_key": true, "authorization": true,
}

var secretSuffixes = []string{"password", "passwd", "secret", "token", "signature", "credential", "_key"}

// nonSecretKeys end in "_key" but name no credential: they are how
// recipes and rules talk about join columns.
var nonSecretKeys = map[string]bool{
	"left_key": true, "right_key": true, "primary_key": true, "sort_key": true, "match_key": true, "foreign_key": true,
}

// SecretParam reports whether a query or connection-string parameter
// named name carries a credential. It is the one list Kalla redacts by.
func SecretParam(name string) bool {
	n := strings.ReplaceAll(strings.ToLower(name), "-", "_")
	if secretNames[n] {
		return true
	}
	if nonSecretKeys[n] {
		return false
	}
	for _, s := range secretSuffixes {
		if strings.HasSuffix(n, s) {
			return true
		}
	}
	return false
}

var (
	// uriToken is a URI as it may appear in a message: a scheme, "://",
	// then anything up to white space or a quote.
	uriToken = regexp.MustCompile("[A-Za-z][A-Za-z0-9+.-]*://[^\\s\"'`<>]*")
	// mysqlDSN is the Go MySQL driver's DSN, user:password@proto(addr)/db
	// or user:password@/db: the password runs to the last "@" that is
	// followed by a protocol and address or by the database's "/".
	mysqlDSN = regexp.MustCompile("(?:^|[\\s\"'`(=,;])[^\\s\"'`:@/()=,;]*:([^\\s\"'`]*)@(?:[a-z0-9]+\\([^\\s\"'`]*?\\))?/")
	// keyValue is name=value in a connection string (libpq's
	// "password=x host=y", ADO's "Password=x;Server=y") or a query
	// string; a quoted value runs to its closing quote.
	keyValue = regexp.MustCompile("(?:^|[^A-Za-z0-9_.-])([A-Za-z][A-Za-z0-9_-]*)\\s*=\\s*('(?:[^'\\\\]|\\\\.)*'?|\"(?:[^\"\\\\]|\\\\.)*\"?|[^\\s&;\"'`]*)")
)

// Redact returns s with every credential it carries replaced by Mask:
// s may be a URI or URL (its userinfo password and the values of secret
// query parameters), a MySQL DSN (user:password@tcp(host)/db), a
// key=value connection string, or a message quoting any of those. It
// masks each secret at its position in the parsed token, never by
// searching for the secret's text elsewhere: a password "tcp" leaves
// "dial tcp 127.0.0.1:1" alone, and the mangling cannot reveal a short
// password. Everything Kalla shows, logs, stores as a message or writes to
// a file passes through it; it is the one redaction function.
func Redact(s string) string {
	var spans [][2]int // secret byte ranges, in order, not overlapping
	var uris [][]int
	for _, m := range uriToken.FindAllStringIndex(s, -1) {
		uris = append(uris, m)
		spans = append(spans, uriSecrets(s, m[0], m[1])...)
	}
	inURI := func(i int) bool {
		for _, m := range uris {
			if i >= m[0] && i < m[1] {
				return true
			}
		}
		return false
	}
	for _, m := range mysqlDSN.FindAllStringSubmatchIndex(s, -1) {
		if m[3] > m[2] && !inURI(m[2]) {
			spans = append(spans, [2]int{m[2], m[3]})
		}
	}
	for _, m := range keyValue.FindAllStringSubmatchIndex(s, -1) {
		if inURI(m[2]) || m[5] <= m[4] || !SecretParam(s[m[2]:m[3]]) {
			continue
		}
		v0, v1 := m[4], m[5]
		if c := s[v0]; (c == '\'' || c == '"') && v1-v0 >= 2 && s[v1-1] == c {
			v0, v1 = v0+1, v1-1 // keep the quotes
		}
		if v1 > v0 {
			spans = append(spans, [2]int{v0, v1})
		}
	}
	if len(spans) == 0 {
		return s
	}
	return mask(s, spans)
}

// uriSecrets returns the secret ranges of the URI s[start:end]: the
// password of its userinfo and the values of secret query parameters.
func uriSecrets(s string, start, end int) [][2]int {
	var out [][2]int
	tok := s[start:end]
	rest := strings.Index(tok, "://") + 3
	authEnd := len(tok)
	if i := strings.IndexAny(tok[rest:], "/?#"); i >= 0 {
		authEnd = rest + i
	}
	at := strings.LastIndexByte(tok[rest:authEnd], '@')
	if at < 0 {
		// A password holding an unescaped "/", "?" or "#" ends the
		// authority early; the URI then does not parse, and the
		// userinfo runs to the first "@" after the scheme.
		if _, err := url.Parse(tok); err != nil {
			if i := strings.IndexByte(tok[rest:], '@'); i >= 0 && strings.Contains(tok[rest:rest+i], ":") {
				authEnd, at = rest+i+1, i
			}
		}
	}
	if at >= 0 {
		user := tok[rest : rest+at]
		if c := strings.IndexByte(user, ':'); c >= 0 && c+1 < len(user) {
			out = append(out, [2]int{start + rest + c + 1, start + rest + at})
		}
	}
	q := strings.IndexByte(tok[rest:], '?')
	if q < 0 {
		return out
	}
	pos := rest + q + 1
	query := tok[pos:]
	if h := strings.IndexByte(query, '#'); h >= 0 {
		query = query[:h]
	}
	for _, part := range strings.FieldsFunc(query, func(r rune) bool { return r == '&' || r == ';' }) {
		i := strings.Index(tok[pos:], part) + pos
		pos = i + len(part)
		eq := strings.IndexByte(part, '=')
		if eq < 0 || eq == len(part)-1 {
			continue
		}
		name, err := url.QueryUnescape(part[:eq])
		if err != nil {
			name = part[:eq]
		}
		if SecretParam(name) {
			out = append(out, [2]int{start + i + eq + 1, start + i + len(part)})
		}
	}
	return out
}

// mask replaces each span of s by Mask. Overlapping spans merge.
func mask(s string, spans [][2]int) string {
	// insertion sort: there are only ever a few
	for i := 1; i < len(spans); i++ {
		for j := i; j > 0 && spans[j][0] < spans[j-1][0]; j-- {
			spans[j], spans[j-1] = spans[j-1], spans[j]
		}
	}
	var b strings.Builder
	last := 0
	for _, sp := range spans {
		if sp[1] <= last {
			continue
		}
		if sp[0] < last {
			sp[0] = last
		}
		b.WriteString(s[last:sp[0]])
		b.WriteString(Mask)
		last = sp[1]
	}
	b.WriteString(s[last:])
	return b.String()
}

// RedactError returns err whose message passes through Redact, keeping
// err in the chain for errors.Is and errors.As. Connectors wrap driver
// errors with it before anything shows them: a driver may echo its DSN.
func RedactError(err error) error {
	if err == nil {
		return nil
	}
	return &redactedError{err: err}
}

type redactedError struct{ err error }

func (r *redactedError) Error() string { return Redact(r.err.Error()) }
func (r *redactedError) Unwrap() error { return r.err }

// excerptMax is the most characters of user input an error message quotes.
const excerptMax = 200

// Excerpt returns s, or when it is longer than a message should quote, its
// start and end with how many characters were left out between them. Every
// error that quotes user input (a filter value, a URI, a recipe field)
// quotes it through Excerpt, so a 100,000-character value cannot make a
// 100,000-character message. Redact first: an excerpt may cut a URI
// where Redact would no longer recognise its password.
func Excerpt(s string) string {
	n := utf8.RuneCountInString(s)
	if n <= excerptMax {
		return s
	}
	const head, tail = 120, 40
	r := []rune(s)
	return string(r[:head]) + "…[" + strconv.Itoa(n-head-tail) + " characters cut]…" + string(r[n-tail:])
}

// Redacted returns a copy of rec whose source URIs pass through Redact:
// recipes are shown, never their credentials.
func (rec Recipe) Redacted() Recipe {
	rec.Sources.Left.URI = Redact(rec.Sources.Left.URI)
	rec.Sources.Right.URI = Redact(rec.Sources.Right.URI)
	return rec
}

// Redacted returns a copy of r whose recipe URIs, callback URL and error
// pass through Redact.
func (r *RunRecord) Redacted() *RunRecord {
	c := *r
	c.Recipe = r.Recipe.Redacted()
	c.CallbackURL = Redact(r.CallbackURL)
	c.Error = Redact(r.Error)
	return &c
}

package kalla

import (
	"errors"
	"net/url"
	"regexp"
	"strings"
)

func asErr[T any](err error, target *T) bool { return errors.As(err, target) }

var userinfoPattern = regexp.MustCompile(`(?i)([a-z][a-z0-9+.-]*://)([^/@\s]*)@`)
var secretParam = regexp.MustCompile(`(?i)((?:password|passwd|pwd|secret|secret_key|token|access_key|sslpassword)=)[^&\s]*`)

// RedactURI returns uri with any password (and secret-looking query
// parameters) replaced by "xxxxx". Every URI Kalla prints, logs or returns
// goes through it.
func RedactURI(uri string) string {
	if u, err := url.Parse(uri); err == nil && u.Scheme != "" {
		if _, has := u.User.Password(); u.User != nil && has {
			u.User = url.UserPassword(u.User.Username(), "xxxxx")
		}
		q := u.Query()
		changed := false
		for k := range q {
			if secretParam.MatchString(k + "=") {
				q.Set(k, "xxxxx")
				changed = true
			}
		}
		if changed {
			u.RawQuery = q.Encode()
		}
		return u.String()
	}
	// Not parseable as a URL: redact anything that looks like user:pass@.
	out := userinfoPattern.ReplaceAllStringFunc(uri, func(m string) string {
		sub := userinfoPattern.FindStringSubmatch(m)
		user := sub[2]
		for i := 0; i < len(user); i++ {
			if user[i] == ':' {
				return sub[1] + user[:i] + ":xxxxx@"
			}
		}
		return m
	})
	return secretParam.ReplaceAllString(out, "${1}xxxxx")
}

// RedactError returns err with every one of secrets replaced by "xxxxx" in
// its text, keeping err in the chain for errors.Is and errors.As. Connectors
// wrap driver errors with it before anything shows them: a driver may echo
// its DSN, password included.
func RedactError(err error, secrets ...string) error {
	if err == nil {
		return nil
	}
	return &redactedError{err: err, secrets: secrets}
}

type redactedError struct {
	err     error
	secrets []string
}

func (r *redactedError) Error() string {
	msg := r.err.Error()
	for _, s := range r.secrets {
		if s != "" {
			msg = strings.ReplaceAll(msg, s, "xxxxx")
		}
	}
	return msg
}

func (r *redactedError) Unwrap() error { return r.err }

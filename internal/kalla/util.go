package kalla

import (
	"errors"
	"net/url"
	"path/filepath"
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

// partialSuffix ends the name of a file Kalla is still writing.
const partialSuffix = ".partial"

// PartialPath is where a file that will end up at path is written first:
// ".<name>.partial" beside it, renamed to path once complete. Uploads and
// run outputs both use it, so that a file at its final name is whole.
func PartialPath(path string) string {
	return filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+partialSuffix)
}

// IsPartialPath reports whether the last element of path (a local path or
// a URI) names a file still being written (see PartialPath): one a crash
// may have left half done, which must never be read as a source.
func IsPartialPath(path string) bool {
	if i := strings.IndexAny(path, "?#"); i >= 0 && strings.Contains(path, "://") {
		path = path[:i]
	}
	base := path[strings.LastIndexAny(path, `/\`)+1:]
	return strings.HasPrefix(base, ".") && strings.HasSuffix(strings.ToLower(base), partialSuffix)
}

// ErrPartialFile is the cause of every refusal of a partial file.
var ErrPartialFile = errors.New("it is a file Kalla was still writing (an upload or an output cut off by a crash), not a finished file")

// CheckNotPartial refuses a source URI that names a partial file.
// Errors: EINVALID, wrapping ErrPartialFile.
func CheckNotPartial(uri string) error {
	if IsPartialPath(uri) {
		return WrapError(EINVALID, ErrPartialFile, "source %s cannot be read", RedactURI(uri))
	}
	return nil
}

package kalla

import (
	"context"
	"errors"
	"fmt"
)

// Error codes for user-facing errors. One table (HTTPStatus) maps each to an
// HTTP status; the CLI maps them to exit codes.
const (
	EINVALID      = "invalid"      // bad input: recipe, filter, URI, SQL
	ENOTFOUND     = "not_found"    // a named thing does not exist
	ECONFLICT     = "conflict"     // state does not allow the action
	EUNAUTHORIZED = "unauthorized" // missing or wrong credentials for Kalla itself
	EFORBIDDEN    = "forbidden"    // refused whatever the credentials: another site's page, a foreign Host
	EUNAVAILABLE  = "unavailable"  // a source or dependency cannot be reached
	ETOOMANY      = "too_many"     // a limit is reached (the run queue is full): try again later
	EUNRUNNABLE   = "unrunnable"   // well formed, but checked against its sources it would not run (a recipe naming a column that does not exist)
	EINTERNAL     = "internal"     // a bug or an unexpected failure
	// ERESOURCE: the machine ran out of memory or disk for the work as
	// configured (a memory limit, a spill folder): not the input's fault;
	// the message says what to change.
	ERESOURCE = "resource_exhausted"
	// EFOUREYES: the approval of a decision was refused because the
	// approver is the person who prepared it (four eyes).
	EFOUREYES = "four_eyes"
)

// Error is a user-facing error: Code says what kind of failure it is and
// Message says, in words a user can act on, what went wrong. Err keeps the
// underlying cause for errors.Is, and its text is part of Error() because it
// usually says exactly what is wrong (DuckDB's conversion error, the line of
// a CSV). So every layer that wraps a cause must first make sure it carries
// no secret: connectors redact driver messages before wrapping them.
type Error struct {
	Code    string
	Message string
	Err     error
}

// Error returns the message (and the cause, when there is one) so that logs
// and CLI output carry the full story.
func (e *Error) Error() string {
	if e.Err != nil && e.Message == "" {
		return e.Err.Error()
	}
	if e.Err != nil {
		return e.Message + ": " + e.Err.Error()
	}
	return e.Message
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// Errorf returns an *Error with the given code and a formatted message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// WrapError returns an *Error with the given code and message, keeping err as
// the cause.
func WrapError(code string, err error, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...), Err: err}
}

// ErrorCode returns the code of the first *Error in err's chain, or EINTERNAL
// when there is none.
func ErrorCode(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return EINTERNAL
}

// ErrorMessage returns the user-facing message of err: the message of the
// first *Error in its chain with its user-facing causes, or a generic text for
// errors that were never classified, whose details are for logs only.
func ErrorMessage(err error) string {
	var se *SourceError
	if errors.As(err, &se) {
		return se.prefix() + ErrorMessage(se.Err)
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Error()
	}
	return "internal error"
}

// HTTPStatus maps an error code to the one HTTP status it stands for.
func HTTPStatus(code string) int {
	switch code {
	case EINVALID:
		return 400
	case EUNAUTHORIZED:
		return 401
	case EFORBIDDEN, EFOUREYES:
		return 403
	case ENOTFOUND:
		return 404
	case ECONFLICT:
		return 409
	case EUNAVAILABLE:
		return 502
	case ETOOMANY:
		return 429
	case EUNRUNNABLE:
		return 422
	case ERESOURCE:
		return 503
	default:
		return 500
	}
}

// SourceKind says what went wrong with a source, for callers that act on
// the kind (retry an unreachable source, tell the user to fix a path)
// instead of reading the message.
type SourceKind string

// Source error kinds.
const (
	SourceNotFound    SourceKind = "not_found"   // the file, table or database does not exist
	SourceUnreachable SourceKind = "unreachable" // no connection, a refused login, a broken connection
	SourceStalled     SourceKind = "stalled"     // the source sent nothing for the idle timeout
	SourceInvalid     SourceKind = "invalid"     // the URI, settings or filters are wrong
	SourceFailed      SourceKind = "failed"      // any other failure reading it
)

// SourceError is the failure of one source, named by its alias (and its
// side in a recipe): what every entry point (CLI, API, UI, a run's failure
// reason) reports for a missing file, a missing table, a refused connection
// or a stalled read, with the same words. Err is the connector's *Error,
// whose message names the source by its redacted URI; its code is the
// SourceError's code. Test for it with errors.As.
type SourceError struct {
	Side  string // "left" or "right" for a recipe's source; empty otherwise
	Alias string // the source's alias; empty when it has none
	Kind  SourceKind
	Err   error
}

// Error names the side and alias, then the connector's message with its
// causes.
func (e *SourceError) Error() string { return e.prefix() + e.Err.Error() }

func (e *SourceError) prefix() string {
	switch {
	case e.Alias == "" && e.Side == "":
		return ""
	case e.Side == "":
		return "source " + e.Alias + ": "
	case e.Alias == "":
		return e.Side + " source: "
	}
	return e.Side + " source " + e.Alias + ": "
}

// Unwrap returns the connector's error.
func (e *SourceError) Unwrap() error { return e.Err }

// SourceKindOf returns the kind a connector error stands for, from its
// code: ENOTFOUND is SourceNotFound, EUNAVAILABLE SourceUnreachable,
// EINVALID SourceInvalid, anything else SourceFailed.
func SourceKindOf(err error) SourceKind {
	switch ErrorCode(err) {
	case ENOTFOUND:
		return SourceNotFound
	case EUNAVAILABLE:
		return SourceUnreachable
	case EINVALID:
		return SourceInvalid
	}
	return SourceFailed
}

// AsSourceError returns err as a *SourceError naming side and alias: err
// itself when it is one (with side and alias filled in where empty), a new
// one whose kind follows err's code otherwise. Nil stays nil; a context
// error is returned as it is, so that callers still tell a cancellation
// from a failure.
func AsSourceError(err error, side, alias string) error {
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	var se *SourceError
	if errors.As(err, &se) {
		c := *se
		if c.Side == "" {
			c.Side = side
		}
		if c.Alias == "" {
			c.Alias = alias
		}
		return &c
	}
	return &SourceError{Side: side, Alias: alias, Kind: SourceKindOf(err), Err: err}
}

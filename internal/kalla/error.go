package kalla

import (
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
	EINTERNAL     = "internal"     // a bug or an unexpected failure
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
	case EFORBIDDEN:
		return 403
	case ENOTFOUND:
		return 404
	case ECONFLICT:
		return 409
	case EUNAVAILABLE:
		return 502
	default:
		return 500
	}
}

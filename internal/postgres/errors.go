package postgres

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/kalla-recon/kalla/internal/connector"
	"github.com/kalla-recon/kalla/internal/kalla"
)

// fail turns an error from the driver into a *kalla.Error naming the
// source by its redacted URI; what says what was being done. A cancelled
// or expired ctx is returned as ctx.Err(), so callers can tell a
// cancellation from a failure. The driver's text is kept as the cause with
// every secret of the URI removed.
func (s *Source) fail(ctx context.Context, err error, what string) error {
	if cerr := ctx.Err(); cerr != nil {
		return cerr
	}
	var ke *kalla.Error
	if errors.As(err, &ke) {
		return err
	}
	cause := kalla.RedactError(err)
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch {
		case pe.Code == "28P01" || pe.Code == "28000":
			return kalla.WrapError(kalla.EUNAVAILABLE, cause, "source %s: the server rejected the user name or password", s.name)
		case pe.Code == "3D000":
			return kalla.WrapError(kalla.ENOTFOUND, cause, "source %s: the database does not exist", s.name)
		case pe.Code == "57014":
			return kalla.WrapError(kalla.EUNAVAILABLE, cause, "source %s: %s: the statement ran past its timeout or was cancelled", s.name, what)
		case pe.Code == "42P01":
			return kalla.WrapError(kalla.ENOTFOUND, cause, "source %s: table %s not found in schema %s", s.name, s.table, s.schema)
		case pe.Code == "42501":
			return kalla.WrapError(kalla.EUNAVAILABLE, cause, "source %s: %s: permission denied", s.name, what)
		case strings.HasPrefix(pe.Code, "22"):
			// Data exceptions: a filter value the column's type rejects.
			return kalla.WrapError(kalla.EINVALID, cause, "source %s: %s", s.name, what)
		case strings.HasPrefix(pe.Code, "08"), strings.HasPrefix(pe.Code, "53"),
			strings.HasPrefix(pe.Code, "57"), strings.HasPrefix(pe.Code, "58"):
			return kalla.WrapError(kalla.EUNAVAILABLE, cause, "source %s: %s", s.name, what)
		}
		return kalla.WrapError(kalla.EINTERNAL, cause, "source %s: %s", s.name, what)
	}
	var ce *pgconn.ConnectError
	if errors.As(err, &ce) {
		return kalla.WrapError(kalla.EUNAVAILABLE, cause, "cannot reach source %s: %s", s.name, reason(err))
	}
	var ne net.Error
	if errors.As(err, &ne) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || pgconn.Timeout(err) {
		return kalla.WrapError(kalla.EUNAVAILABLE, cause, "source %s: %s: the connection failed", s.name, what)
	}
	return kalla.WrapError(kalla.EINTERNAL, cause, "source %s: %s", s.name, what)
}

// reason says why a connection could not be made: pgx reports its own
// connect timeout, which the connectors' shared reasons do not know.
func reason(err error) string {
	if pgconn.Timeout(err) {
		return "no answer within the connect timeout"
	}
	return connector.DialReason(err)
}

package mysql

import (
	"context"
	"database/sql/driver"
	"errors"
	"io"
	"net"

	"github.com/go-sql-driver/mysql"

	"github.com/kalla-recon/kalla/internal/connector"
	"github.com/kalla-recon/kalla/internal/kalla"
)

// fail turns an error from the driver into a *kalla.Error naming the
// source by its redacted URI; what says what was being done. A cancelled
// or expired ctx is returned as ctx.Err(). The driver's text is kept as the
// cause with every secret of the URI removed.
func (s *Source) fail(ctx context.Context, err error, what string) error {
	if cerr := ctx.Err(); cerr != nil {
		return cerr
	}
	var ke *kalla.Error
	if errors.As(err, &ke) {
		return err
	}
	cause := kalla.RedactError(err)
	var me *mysql.MySQLError
	if errors.As(err, &me) {
		switch me.Number {
		case 1045, 1698: // access denied (using password), plugin refused
			return kalla.WrapError(kalla.EUNAVAILABLE, cause, "source %s: the server rejected the user name or password", s.name)
		case 1049: // unknown database
			return kalla.WrapError(kalla.ENOTFOUND, cause, "source %s: the database does not exist", s.name)
		case 1146: // table does not exist (dropped since Open)
			return kalla.WrapError(kalla.ENOTFOUND, cause, "source %s: table %s not found in database %s", s.name, s.table, s.db)
		case 1044, 1142, 1143: // database, table or column access denied
			return kalla.WrapError(kalla.EUNAVAILABLE, cause, "source %s: %s: permission denied", s.name, what)
		case 1969, 3024, 1317, 1028: // MariaDB and MySQL statement time limits, interrupted query, sort aborted
			return kalla.WrapError(kalla.EUNAVAILABLE, cause, "source %s: %s: the statement ran past its time limit or was interrupted", s.name, what)
		case 1292, 1366, 1264, 1265, 1367, 1690: // bad or out-of-range values
			return kalla.WrapError(kalla.EINVALID, cause, "source %s: %s", s.name, what)
		case 1040, 1203, 1226, 2006, 2013: // too many connections, limits, server gone
			return kalla.WrapError(kalla.EUNAVAILABLE, cause, "source %s: %s", s.name, what)
		}
		return kalla.WrapError(kalla.EINTERNAL, cause, "source %s: %s", s.name, what)
	}
	var op *net.OpError
	if (errors.As(err, &op) && op.Op == "dial") || errors.Is(err, context.DeadlineExceeded) {
		return kalla.WrapError(kalla.EUNAVAILABLE, cause, "cannot reach source %s: %s", s.name, connector.DialReason(err))
	}
	var ne net.Error
	if errors.As(err, &ne) || errors.Is(err, mysql.ErrInvalidConn) || errors.Is(err, driver.ErrBadConn) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return kalla.WrapError(kalla.EUNAVAILABLE, cause, "source %s: %s: the connection failed", s.name, what)
	}
	return kalla.WrapError(kalla.EINTERNAL, cause, "source %s: %s", s.name, what)
}

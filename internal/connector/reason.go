package connector

import (
	"context"
	"errors"
	"net"
)

// DialReason says in a few words why a connection to a database server
// could not be made, for the "cannot reach source" messages every database
// connector gives.
func DialReason(err error) string {
	var dns *net.DNSError
	var op *net.OpError
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return "no answer within the connect timeout"
	case errors.As(err, &dns):
		return "host " + dns.Name + " not found"
	case errors.As(err, &op) && op.Err != nil:
		if errors.Is(op.Err, context.DeadlineExceeded) || op.Timeout() {
			return "no answer within the connect timeout"
		}
		return op.Err.Error()
	}
	return "connection failed"
}

package postgres_test

import (
	"context"
	"database/sql/driver"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/kalla-recon/kalla/internal/connector"
	"github.com/kalla-recon/kalla/internal/kalla"
)

// cancellingSink cancels a context once after rows have been appended,
// so that a test cancels a Stage while rows are streaming.
type cancellingSink struct {
	connector.Sink
	after  int
	cancel context.CancelFunc
	rows   int
	at     time.Time
}

func (s *cancellingSink) Append(ctx context.Context, cols []kalla.Column, fill func(connector.RowWriter) error) (int64, error) {
	return s.Sink.Append(ctx, cols, func(w connector.RowWriter) error {
		return fill(writerFunc(func(vals ...driver.Value) error {
			s.rows++
			if s.rows == s.after {
				s.at = time.Now()
				s.cancel()
			}
			return w.WriteRow(vals...)
		}))
	})
}

type writerFunc func(vals ...driver.Value) error

func (f writerFunc) WriteRow(vals ...driver.Value) error { return f(vals...) }

// listenSilently starts a TCP listener on 127.0.0.1 that accepts
// connections and never writes, and returns its address.
func listenSilently(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return ln.Addr().String()
}

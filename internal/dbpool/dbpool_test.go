package dbpool_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/kalla-recon/kalla/internal/dbpool"
)

// These tests need no server: creating a pool does not connect.
func TestLeasesAndEviction(t *testing.T) {
	c := dbpool.New(dbpool.Options{IdleTimeout: 200 * time.Millisecond, JanitorInterval: 20 * time.Millisecond})
	defer c.Close()
	const pg = "postgres://u:secretpw@127.0.0.1:1/db"
	const my = "u:secretpw@tcp(127.0.0.1:1)/db"
	p1, l1, err := c.Postgres(pg, "postgres://u:xxxxx@127.0.0.1:1/db")
	if err != nil {
		t.Fatal(err)
	}
	p2, l2, err := c.Postgres(pg, "postgres://u:xxxxx@127.0.0.1:1/db")
	if err != nil {
		t.Fatal(err)
	}
	if p1 != p2 {
		t.Fatal("the same DSN gave two pools")
	}
	if p1.Config().MaxConns != dbpool.DefaultMaxConns || p1.Config().ConnConfig.ConnectTimeout != dbpool.DefaultConnectTimeout {
		t.Errorf("pool config: max %d, connect timeout %v", p1.Config().MaxConns, p1.Config().ConnConfig.ConnectTimeout)
	}
	db, l3, err := c.MySQL(my, "mysql://u:xxxxx@127.0.0.1:1/db")
	if err != nil {
		t.Fatal(err)
	}
	if db.Stats().MaxOpenConnections != dbpool.DefaultMaxConns {
		t.Errorf("mysql max open %d", db.Stats().MaxOpenConnections)
	}
	st := c.Stats()
	if len(st) != 2 || st[0].Kind != "mysql" || st[1].Leases != 2 || st[1].Cap != dbpool.DefaultMaxConns {
		t.Fatalf("stats %+v", st)
	}
	for _, s := range st {
		if strings.Contains(s.Source, "secretpw") {
			t.Errorf("stats carry a password: %+v", s)
		}
	}
	l1.Release()
	l1.Release() // harmless
	time.Sleep(400 * time.Millisecond)
	if st := c.Stats(); len(st) != 2 {
		t.Fatalf("a leased pool was evicted: %+v", st)
	}
	l2.Release()
	l3.Release()
	time.Sleep(400 * time.Millisecond)
	if st := c.Stats(); len(st) != 0 {
		t.Fatalf("idle pools were not evicted: %+v", st)
	}
	if _, _, err := c.Postgres("postgres://u@h/db?sslmode=bogus", "x"); err == nil {
		t.Error("a bad connection string was accepted")
	}
	if _, _, err := c.MySQL("u:secretpw@tcp(h:1/db", "x"); err == nil || strings.Contains(err.Error(), "secretpw") {
		t.Errorf("bad mysql DSN: %v", err)
	}
	c.Close()
	c.Close()
	if _, _, err := c.Postgres(pg, "x"); !errors.Is(err, dbpool.ErrClosed) {
		t.Errorf("after Close: %v", err)
	}
}

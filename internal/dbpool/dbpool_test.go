package dbpool_test

import (
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kalla-recon/kalla/internal/dbpool"
)

// clock is a manual clock for dbpool.Options.Now: time moves only when the
// test says so.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// These tests need no server: creating a pool does not connect. The
// janitor's interval is an hour, so pools are evicted only when the test
// calls EvictIdle, at an age it set with the manual clock.
func TestLeasesAndEviction(t *testing.T) {
	clk := &clock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	const idle = time.Minute
	c := dbpool.New(dbpool.Options{IdleTimeout: idle, JanitorInterval: time.Hour, Now: clk.Now})
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
	clk.advance(2 * idle)
	c.EvictIdle()
	if st := c.Stats(); len(st) != 2 {
		t.Fatalf("a leased pool was evicted: %+v", st)
	}
	l2.Release()
	l3.Release()
	clk.advance(idle - time.Second)
	c.EvictIdle()
	if st := c.Stats(); len(st) != 2 {
		t.Fatalf("pools idle for less than IdleTimeout were evicted: %+v", st)
	}
	clk.advance(time.Second)
	c.EvictIdle()
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

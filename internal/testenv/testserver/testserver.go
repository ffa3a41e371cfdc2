// Package testserver starts Kalla servers for tests. It is apart from
// testenv because it imports the server, which imports the connectors
// whose own tests use testenv.
package testserver

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/kalla-recon/kalla/internal/recon"
	"github.com/kalla-recon/kalla/internal/server"
)

// Config is how tests run a Kalla server: a free local port, a fresh
// data folder, fast polling and progress, a small engine, and a log that
// goes to the test's output at level. roots are the folders local file
// sources may name.
func Config(t testing.TB, level slog.Level, roots ...string) server.Config {
	return server.Config{
		Addr:             "127.0.0.1:0",
		DataDir:          t.TempDir(),
		FileRoots:        roots,
		ShutdownTimeout:  5 * time.Second,
		PollInterval:     200 * time.Millisecond,
		ProgressInterval: 50 * time.Millisecond,
		SSEPoll:          200 * time.Millisecond,
		Engine:           recon.DuckDBOptions{Threads: 2, MemoryLimit: "2GB"},
		Logger:           slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: level})),
	}
}

// Start starts a server with cfg and closes it when the test ends.
func Start(t testing.TB, cfg server.Config) *server.Main {
	t.Helper()
	m := server.NewMain(cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := m.Run(ctx); err != nil {
		t.Fatalf("start server: %v", err)
	}
	t.Cleanup(func() {
		if err := m.Close(); err != nil {
			t.Errorf("close server: %v", err)
		}
	})
	return m
}

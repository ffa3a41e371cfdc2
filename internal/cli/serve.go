package cli

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/kalla-recon/kalla/internal/server"
)

// serveFlags are the flags of `kalla serve` and `kalla migrate`; each
// overrides its environment variable when given.
type serveFlags struct {
	addr            string
	dataDir         string
	databaseURL     string
	maxRuns         int
	maxQueued       int
	idleTimeout     time.Duration
	maxDuration     time.Duration
	fileRoots       []string
	callbackHosts   []string
	allowedHosts    []string
	shutdownTimeout time.Duration
	memoryLimit     string
	memoryBudget    string
	threads         int
	role            string
	lease           time.Duration
	retryInterrupt  bool
	sparkRemote     string
}

// serverConfig reads the server configuration once: defaults, then the
// environment, then the flags the user gave, then the connector layer's
// settings. It validates nothing; server.Main does.
func (e *env) serverConfig(cmd *cobra.Command, f *serveFlags) (server.Config, error) {
	cfg := server.DefaultConfig()
	if err := cfg.FromEnv(os.Getenv); err != nil {
		return cfg, usageError{err}
	}
	flags := cmd.Flags()
	if flags.Changed("addr") {
		cfg.Addr = f.addr
	}
	if flags.Changed("data-dir") {
		cfg.DataDir = f.dataDir
	}
	if flags.Changed("database-url") {
		cfg.DatabaseURL = f.databaseURL
	}
	if flags.Changed("max-concurrent-runs") {
		cfg.MaxConcurrentRuns = f.maxRuns
	}
	if flags.Changed("max-queued-runs") {
		cfg.MaxQueuedRuns = f.maxQueued
	}
	if flags.Changed("source-idle-timeout") {
		cfg.SourceIdleTimeout = f.idleTimeout
	}
	if flags.Changed("max-run-duration") {
		cfg.MaxRunDuration = f.maxDuration
	}
	if flags.Changed("file-root") {
		cfg.FileRoots = append(cfg.FileRoots, f.fileRoots...)
	}
	if flags.Changed("callback-allow") {
		cfg.CallbackHosts = append(cfg.CallbackHosts, f.callbackHosts...)
	}
	if flags.Changed("allowed-host") {
		for _, h := range f.allowedHosts {
			cfg.AllowedHosts = append(cfg.AllowedHosts, server.SplitList(h)...)
		}
	}
	if flags.Changed("shutdown-timeout") {
		cfg.ShutdownTimeout = f.shutdownTimeout
	}
	if flags.Changed("memory-budget") {
		cfg.MemoryBudget = f.memoryBudget
	}
	if flags.Changed("memory-limit") {
		cfg.Engine.MemoryLimit = f.memoryLimit
	}
	if flags.Changed("threads") {
		cfg.Engine.Threads = f.threads
	}
	if flags.Changed("role") {
		cfg.Role = server.Role(f.role)
	}
	if flags.Changed("lease") {
		cfg.LeaseTTL = f.lease
	}
	if flags.Changed("retry-interrupted") {
		cfg.RetryInterrupted = f.retryInterrupt
	}
	src, err := e.sourcesConfig()
	if err != nil {
		return cfg, err
	}
	cfg.Sources = src
	return cfg, nil
}

// serverLogger logs at info level: a server's lifecycle (listening, runs
// started and finished) is what its operator reads; KALLA_DEBUG adds SQL.
func (e *env) serverLogger() *slog.Logger {
	level := slog.LevelInfo
	if os.Getenv("KALLA_DEBUG") != "" {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(e.stderr, &slog.HandlerOptions{Level: level}))
}

func (e *env) serveCmd() *cobra.Command {
	f := &serveFlags{}
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Serve the web UI and HTTP API and run queued reconciliations in the background",
		Long: `Serve Kalla's web UI (at /) and HTTP API (see GET /api/openapi.json), and
execute queued runs with a bounded pool of workers. Sources, recipes and runs are kept in the metadata store:
a SQLite file in the data folder by default, or PostgreSQL given as
KALLA_DATABASE_URL.

Several processes may share one PostgreSQL store and one data folder (the same
--data-dir, e.g. a shared volume): each run is claimed by one process under a
lease (--lease, default 30s) that its heartbeat renews every third of it. When
a process dies, any other notices its expired lease and marks the run failed,
"interrupted" (or queues it once more with --retry-interrupted). --role web
serves the API and UI and queues runs without executing any; --role worker
executes runs and serves only /healthz, /readyz and /metrics; --role all (the
default) does both.

Environment: KALLA_ADDR, KALLA_DATA_DIR, KALLA_DATABASE_URL, KALLA_API_TOKEN,
KALLA_MAX_CONCURRENT_RUNS, KALLA_MAX_QUEUED_RUNS, KALLA_SOURCE_IDLE_TIMEOUT,
KALLA_MAX_RUN_DURATION, KALLA_CALLBACK_ALLOW (host names, IPs or CIDR ranges a
run's callback_url may reach, comma separated; none by default), KALLA_ALLOWED_HOSTS
(names the server answers to besides its listening address, comma separated),
KALLA_FILE_ROOTS (folders API clients may read files from besides the data
folder, separated by ':'), KALLA_UPLOAD_BUCKET and
KALLA_UPLOAD_PREFIX (keep uploads in S3), KALLA_SHUTDOWN_TIMEOUT,
KALLA_MEMORY_LIMIT, KALLA_ROLE, KALLA_LEASE, KALLA_RETRY_INTERRUPTED,
KALLA_SPARK_REMOTE and KALLA_SPARK_TOKEN (a Spark Connect endpoint and its
token: runs may then choose "engine": "spark"), and the S3_* and
KALLA_HTTP_ALLOW settings of the connector layer. Flags override the
environment.

The server listens on 127.0.0.1 unless told otherwise; on any other address it
asks every request for a token and refuses to start without one to ask for:
KALLA_API_TOKEN (the bootstrap admin) or a named token (kalla token create),
which clients send as "Authorization: Bearer <token>". On loopback it asks for
one once KALLA_API_TOKEN is set or any named token exists. Whatever the token, it answers only to its
listening address (on loopback also localhost, 127.0.0.1 and [::1]; on all
interfaces any IP address) and the --allowed-host names, and refuses (403)
state-changing requests that a browser says come from another site's page.
On SIGTERM it stops accepting requests, lets running runs finish for up to
--shutdown-timeout, then cancels them.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := e.serverConfig(cmd, f)
			if err != nil {
				return err
			}
			cfg.Logger = e.serverLogger()
			cfg.Sources.Logger = cfg.Logger
			if cfg.Engines, err = sparkEngines(sparkRemote(f.sparkRemote), cfg.Logger); err != nil {
				return err
			}
			return e.serve(cmd.Context(), cfg)
		},
	}
	cmd.Flags().StringVar(&f.addr, "addr", server.DefaultAddr, "host:port to listen on")
	addStoreFlags(cmd, f)
	cmd.Flags().IntVar(&f.maxRuns, "max-concurrent-runs", server.DefaultMaxConcurrentRuns, "runs executed at once")
	cmd.Flags().IntVar(&f.maxQueued, "max-queued-runs", server.DefaultMaxQueuedRuns, "runs that may wait to start; beyond it POST /api/runs answers 429")
	cmd.Flags().DurationVar(&f.idleTimeout, "source-idle-timeout", server.DefaultSourceIdleTimeout, "fail a run whose source sends nothing for this long")
	cmd.Flags().DurationVar(&f.maxDuration, "max-run-duration", 0, "fail a run still going after this long (0: no limit)")
	cmd.Flags().StringArrayVar(&f.callbackHosts, "callback-allow", nil, "a host name, IP (either optionally :port) or CIDR range runs' callback_url may reach; a listed name resolving to a loopback, private or link-local address needs that address listed too (repeatable; none by default)")
	cmd.Flags().StringArrayVar(&f.allowedHosts, "allowed-host", nil, "a name (host or host:port) browsers and clients may reach the server by, besides its listening address (repeatable or comma separated)")
	cmd.Flags().StringArrayVar(&f.fileRoots, "file-root", nil, "a folder API clients may read source files from, besides the data folder (repeatable)")
	cmd.Flags().DurationVar(&f.shutdownTimeout, "shutdown-timeout", server.DefaultShutdownTimeout, "how long running runs may finish after SIGTERM before they are cancelled")
	cmd.Flags().StringVar(&f.memoryLimit, "memory-limit", "", "memory budget per run, e.g. 4GB (DuckDB spills to disk beyond its share); replaces the budget's shares")
	cmd.Flags().StringVar(&f.memoryBudget, "memory-budget", "", "memory all runs and previews share, e.g. 8GB; each engine gets an equal part (default: half of the machine's memory)")
	cmd.Flags().IntVar(&f.threads, "threads", 0, "DuckDB worker threads per run (0: one per core)")
	cmd.Flags().StringVar(&f.role, "role", string(server.RoleAll), "all (serve HTTP and execute runs), web (serve the API and UI, queue runs) or worker (execute runs; serve only the probes)")
	cmd.Flags().DurationVar(&f.lease, "lease", server.DefaultLeaseTTL, "how long a run stays its process's without a heartbeat; a run whose process died is marked interrupted after it")
	cmd.Flags().BoolVar(&f.retryInterrupt, "retry-interrupted", false, "queue a run whose process died once more instead of failing it")
	cmd.Flags().StringVar(&f.sparkRemote, "spark-remote", "", sparkRemoteUsage+"; runs may then choose \"engine\": \"spark\"")
	return cmd
}

// addStoreFlags adds the flags that say where the server keeps its data.
func addStoreFlags(cmd *cobra.Command, f *serveFlags) {
	cmd.Flags().StringVar(&f.dataDir, "data-dir", server.DefaultDataDir, "folder for the SQLite store, run outputs and uploads")
	cmd.Flags().StringVar(&f.databaseURL, "database-url", "", "metadata store: a SQLite path or postgres:// URL (default: <data-dir>/kalla.db)")
}

// serve runs the server until ctx ends (SIGINT or SIGTERM), then shuts it
// down gracefully.
func (e *env) serve(ctx context.Context, cfg server.Config) error {
	m := server.NewMain(cfg)
	if err := m.Run(ctx); err != nil {
		return err
	}
	fmt.Fprintf(e.stderr, "kalla: serving on %s (data folder %s)\n", m.URL(), cfg.DataDir)
	var serveErr error
	select {
	case <-ctx.Done():
		fmt.Fprintf(e.stderr, "kalla: shutting down: waiting up to %s for running runs\n", cfg.ShutdownTimeout)
	case serveErr = <-m.Errors():
	}
	if err := m.Close(); err != nil && serveErr == nil {
		serveErr = err
	}
	return serveErr
}

package server

import (
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/kalla-recon/kalla/internal/engine"
	"github.com/kalla-recon/kalla/internal/kalla"
	"github.com/kalla-recon/kalla/internal/sources"
)

// Defaults of Config.
const (
	DefaultAddr              = "127.0.0.1:8080"
	DefaultDataDir           = "./kalla-data"
	DefaultMaxConcurrentRuns = 2
	DefaultShutdownTimeout   = 30 * time.Second
	DefaultUploadPrefix      = "uploads/"
	DefaultMaxQueuedRuns     = 100
	DefaultSourceIdleTimeout = 2 * time.Minute
)

// Config is everything `kalla serve` needs, read once (environment, then
// flags) by the command line, validated, and passed down as plain values.
type Config struct {
	// Addr is the host:port to listen on. Anything but a loopback address
	// needs APIToken.
	Addr string
	// DataDir holds the SQLite store (unless DatabaseURL is set), run
	// outputs, local uploads and spill files.
	DataDir string
	// DatabaseURL is the metadata store: a SQLite path or sqlite:// URL,
	// or postgres://. Empty means DataDir/kalla.db.
	DatabaseURL string
	// APIToken, when set, is required as "Authorization: Bearer" on every
	// /api/ route.
	APIToken string
	// MaxConcurrentRuns bounds the runs executed at once.
	MaxConcurrentRuns int
	// MaxQueuedRuns bounds the runs waiting to start; beyond it
	// POST /api/runs answers 429. Zero means DefaultMaxQueuedRuns.
	MaxQueuedRuns int
	// SourceIdleTimeout fails a run whose source sends nothing (no row,
	// no byte of a remote file) for this long: a frozen database or
	// server must not hold a run forever. Zero means
	// DefaultSourceIdleTimeout.
	SourceIdleTimeout time.Duration
	// MaxRunDuration, when positive, fails a run still going after this
	// long. Zero means no limit.
	MaxRunDuration time.Duration
	// FileRoots are folders besides DataDir whose files API clients may
	// name as sources.
	FileRoots []string
	// CallbackHosts are the hosts (host or host:port) a run's callback_url
	// may name. Empty refuses every callback_url: the server must not be
	// made to POST to an arbitrary address given through the API.
	CallbackHosts []string
	// UploadBucket, when set, stores uploads in this S3 bucket (reached
	// with Sources.Remote.S3) under UploadPrefix, and admits csv_uri
	// values there; otherwise uploads stay in DataDir.
	UploadBucket string
	UploadPrefix string
	// ShutdownTimeout is how long running runs may go on after SIGTERM
	// before they are cancelled.
	ShutdownTimeout time.Duration
	// MaxBodyBytes and MaxUploadBytes cap request bodies; zero takes the
	// API's defaults (1 MiB, 1 GiB).
	MaxBodyBytes   int64
	MaxUploadBytes int64
	// Sources configures the connector layer (S3, https allow-list, pools
	// of source databases).
	Sources sources.Config
	// Engine configures each run's DuckDB (memory limit, threads).
	Engine engine.Options
	// Logger receives the server's logs. Nil discards.
	Logger *slog.Logger

	// PollInterval, ProgressInterval and SSEPoll tune the run queue and
	// event streams (see runner.Config and api.Config); zero takes their
	// defaults. Tests shorten them.
	PollInterval     time.Duration
	ProgressInterval time.Duration
	SSEPoll          time.Duration
}

// DefaultConfig returns the configuration of a bare `kalla serve`.
func DefaultConfig() Config {
	return Config{
		Addr:              DefaultAddr,
		DataDir:           DefaultDataDir,
		MaxConcurrentRuns: DefaultMaxConcurrentRuns,
		MaxQueuedRuns:     DefaultMaxQueuedRuns,
		SourceIdleTimeout: DefaultSourceIdleTimeout,
		ShutdownTimeout:   DefaultShutdownTimeout,
		UploadPrefix:      DefaultUploadPrefix,
	}
}

// Environment variables read by FromEnv.
const (
	EnvAddr              = "KALLA_ADDR"
	EnvDataDir           = "KALLA_DATA_DIR"
	EnvDatabaseURL       = "KALLA_DATABASE_URL"
	EnvAPIToken          = "KALLA_API_TOKEN"
	EnvMaxConcurrentRuns = "KALLA_MAX_CONCURRENT_RUNS"
	EnvFileRoots         = "KALLA_FILE_ROOTS"
	EnvCallbackHosts     = "KALLA_CALLBACK_ALLOW"
	EnvUploadBucket      = "KALLA_UPLOAD_BUCKET"
	EnvUploadPrefix      = "KALLA_UPLOAD_PREFIX"
	EnvShutdownTimeout   = "KALLA_SHUTDOWN_TIMEOUT"
	EnvMemoryLimit       = "KALLA_MEMORY_LIMIT"
	EnvMaxQueuedRuns     = "KALLA_MAX_QUEUED_RUNS"
	EnvSourceIdleTimeout = "KALLA_SOURCE_IDLE_TIMEOUT"
	EnvMaxRunDuration    = "KALLA_MAX_RUN_DURATION"
)

// FromEnv overrides c with the variables getenv returns (os.Getenv in the
// command; a map in tests). The token is read only from the environment,
// never from a flag, so it does not show in process listings.
// KALLA_FILE_ROOTS is a list separated like PATH. Errors: EINVALID for an
// unparseable number or duration.
func (c *Config) FromEnv(getenv func(string) string) error {
	set := func(name string, dst *string) {
		if v := strings.TrimSpace(getenv(name)); v != "" {
			*dst = v
		}
	}
	set(EnvAddr, &c.Addr)
	set(EnvDataDir, &c.DataDir)
	set(EnvDatabaseURL, &c.DatabaseURL)
	set(EnvUploadBucket, &c.UploadBucket)
	set(EnvUploadPrefix, &c.UploadPrefix)
	set(EnvMemoryLimit, &c.Engine.MemoryLimit)
	if v := getenv(EnvAPIToken); v != "" {
		c.APIToken = v
	}
	for name, dst := range map[string]*int{EnvMaxConcurrentRuns: &c.MaxConcurrentRuns, EnvMaxQueuedRuns: &c.MaxQueuedRuns} {
		if v := strings.TrimSpace(getenv(name)); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil {
				return kalla.Errorf(kalla.EINVALID, "%s=%q is not a whole number", name, v)
			}
			*dst = n
		}
	}
	for name, dst := range map[string]*time.Duration{EnvShutdownTimeout: &c.ShutdownTimeout, EnvSourceIdleTimeout: &c.SourceIdleTimeout, EnvMaxRunDuration: &c.MaxRunDuration} {
		if v := strings.TrimSpace(getenv(name)); v != "" {
			d, err := time.ParseDuration(v)
			if err != nil {
				return kalla.Errorf(kalla.EINVALID, "%s=%q is not a duration such as 30s or 5m", name, v)
			}
			*dst = d
		}
	}
	for _, h := range strings.Split(getenv(EnvCallbackHosts), ",") {
		if h = strings.TrimSpace(h); h != "" {
			c.CallbackHosts = append(c.CallbackHosts, h)
		}
	}
	if v := getenv(EnvFileRoots); v != "" {
		for _, d := range filepath.SplitList(v) {
			if d = strings.TrimSpace(d); d != "" {
				c.FileRoots = append(c.FileRoots, d)
			}
		}
	}
	return nil
}

// Validate checks the configuration. Above all it refuses to serve the API
// beyond this machine without a token: the API reads files and databases
// with the server's credentials. Errors: EINVALID.
func (c Config) Validate() error {
	host, _, err := net.SplitHostPort(c.Addr)
	if err != nil {
		return kalla.Errorf(kalla.EINVALID, "listen address %q must be host:port, such as %s", c.Addr, DefaultAddr)
	}
	if !isLoopback(host) && strings.TrimSpace(c.APIToken) == "" {
		return kalla.Errorf(kalla.EINVALID, "refusing to listen on %s without an API token: anyone who can reach it could read your sources. Set %s (clients send it as \"Authorization: Bearer <token>\"), or listen on 127.0.0.1", c.Addr, EnvAPIToken)
	}
	if strings.TrimSpace(c.DataDir) == "" {
		return kalla.Errorf(kalla.EINVALID, "the data folder is required (--data-dir or %s)", EnvDataDir)
	}
	if c.MaxConcurrentRuns < 1 {
		return kalla.Errorf(kalla.EINVALID, "--max-concurrent-runs must be at least 1, not %d", c.MaxConcurrentRuns)
	}
	if c.MaxQueuedRuns < 0 {
		return kalla.Errorf(kalla.EINVALID, "--max-queued-runs must be at least 1, not %d", c.MaxQueuedRuns)
	}
	if c.ShutdownTimeout < 0 || c.SourceIdleTimeout < 0 || c.MaxRunDuration < 0 {
		return kalla.Errorf(kalla.EINVALID, "shutdown timeout, source idle timeout and maximum run duration must not be negative")
	}
	if c.UploadBucket != "" {
		if err := c.Sources.Remote.S3.Validate(); err != nil {
			return err
		}
	}
	for _, d := range c.FileRoots {
		if st, err := os.Stat(d); err != nil || !st.IsDir() {
			return kalla.Errorf(kalla.EINVALID, "file root %s is not a folder", d)
		}
	}
	return nil
}

// isLoopback reports whether host names only this machine. An empty host
// (all interfaces) and names other than localhost count as reachable from
// elsewhere: a name's addresses can change after the check.
func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(strings.Trim(host, "[]"))
	return ip != nil && ip.IsLoopback()
}

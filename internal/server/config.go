package server

import (
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/kalla-recon/kalla/internal/kalla"
	kallamcp "github.com/kalla-recon/kalla/internal/mcp"
	"github.com/kalla-recon/kalla/internal/recon"
	"github.com/kalla-recon/kalla/internal/runner"
	"github.com/kalla-recon/kalla/internal/sources"
)

// Defaults of Config.
const (
	DefaultAddr              = "127.0.0.1:8080"
	DefaultDataDir           = "./kalla-data"
	DefaultMaxConcurrentRuns = 2
	DefaultShutdownTimeout   = 30 * time.Second
	DefaultUploadPrefix      = "uploads/"
	DefaultLeaseTTL          = runner.DefaultLeaseTTL
	DefaultMaxQueuedRuns     = 100
	DefaultSourceIdleTimeout = 2 * time.Minute
)

// Role is what a `kalla serve` process does (--role).
type Role string

// Roles. Several processes share work through one PostgreSQL store and one
// data folder: any number of each role may run.
const (
	// RoleAll serves HTTP (API, UI) and executes runs: the default.
	RoleAll Role = "all"
	// RoleWeb serves the API and the UI and queues runs, but executes
	// none.
	RoleWeb Role = "web"
	// RoleWorker executes queued runs and serves only /healthz, /readyz
	// and /metrics on its address.
	RoleWorker Role = "worker"
)

func (r Role) runsWork() bool  { return r == RoleAll || r == RoleWorker }
func (r Role) servesWeb() bool { return r == RoleAll || r == RoleWeb }

// Config is everything `kalla serve` needs, read once (environment, then
// flags) by the command line, validated, and passed down as plain values.
type Config struct {
	// Addr is the host:port to listen on. Anything but a loopback address
	// needs credentials on every request, and refuses to start unless
	// APIToken is set or the store holds a named token.
	Addr string
	// DataDir holds the SQLite store (unless DatabaseURL is set), run
	// outputs, local uploads and spill files.
	DataDir string
	// DatabaseURL is the metadata store: a SQLite path or sqlite:// URL,
	// or postgres://. Empty means DataDir/kalla.db.
	DatabaseURL string
	// APIToken (KALLA_API_TOKEN), when set, is the bootstrap admin token:
	// it admits the principal "admin" with the admin role, and makes
	// credentials required on every /api/ route (see package auth for
	// when named tokens make them required).
	APIToken string
	// MaxConcurrentRuns bounds the runs executed at once.
	MaxConcurrentRuns int
	// MaxQueuedRuns bounds the runs waiting to start; beyond it
	// POST /api/runs answers 429. Zero means DefaultMaxQueuedRuns.
	MaxQueuedRuns int
	// ExceptionCodes are the resolution codes people may give
	// (--exception-codes); nil means exceptions.DefaultCodes.
	ExceptionCodes []string
	// ApprovalAmount is the amount from which a write-off or a manual
	// match with a difference needs a second person's approval
	// (--approval-amount); empty means exceptions.DefaultApprovalAmount.
	ApprovalAmount string
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
	// CallbackHosts are the host names, IPs (either optionally with
	// :port) and CIDR ranges a run's callback_url may reach (see
	// runner.CallbackPolicy). Empty refuses every callback_url: the server must not be
	// made to POST to an arbitrary address given through the API.
	CallbackHosts []string
	// AllowedHosts are the names (host, or host:port) under which clients
	// may reach the server besides its listening address: every request's
	// Host header must name one (guard.go), so that a web page cannot reach
	// the server through a name of its own (DNS rebinding). A name without
	// a port admits any port, as behind a proxy or a port mapping.
	AllowedHosts []string
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
	// MemoryBudget is the memory (a size such as "8GB") all DuckDB
	// engines share: each concurrent run and each engine slot gets an equal
	// part as its memory_limit, beyond which DuckDB spills to disk. Empty
	// means half of the machine's memory (or of the cgroup's limit). An
	// explicit Engine.MemoryLimit replaces the shares.
	MemoryBudget string
	// EngineSlots is how many recipe previews and validations may hold an
	// engine at once; 0 means DefaultEngineSlots.
	EngineSlots int
	// Engine configures each run's DuckDB (memory limit, threads).
	Engine recon.DuckDBOptions
	// Engines are the engines besides DuckDB runs may choose, by name
	// (recon.Spark when `kalla serve --spark-remote` is given). The command
	// line builds them, so this package imports no engine of its own.
	Engines map[string]recon.Factory
	// Logger receives the server's logs. Nil discards.
	Logger *slog.Logger

	// LLM is the optional language model of the MCP tools filter_from_text
	// and rule_from_text (KALLA_LLM_URL, KALLA_LLM_MODEL, KALLA_LLM_KEY).
	LLM kallamcp.LLMConfig
	// NoListen builds everything but listens on no address: `kalla mcp`
	// serves the API in-process to its MCP tools only.
	NoListen bool

	// Role says whether this process serves the web side, executes runs,
	// or both (the default).
	Role Role
	// LeaseTTL is how long a claimed run stays this process's without a
	// heartbeat (renewed every third of it); a run whose process died is
	// failed, "interrupted", by another within about LeaseTTL. Zero takes
	// DefaultLeaseTTL.
	LeaseTTL time.Duration
	// ReapInterval is how often expired leases are looked for; zero means
	// a third of LeaseTTL.
	ReapInterval time.Duration
	// RetryInterrupted queues a run whose process died once more instead
	// of failing it.
	RetryInterrupted bool

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
		Role:              RoleAll,
		LeaseTTL:          DefaultLeaseTTL,
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
	EnvAllowedHosts      = "KALLA_ALLOWED_HOSTS"
	EnvUploadBucket      = "KALLA_UPLOAD_BUCKET"
	EnvUploadPrefix      = "KALLA_UPLOAD_PREFIX"
	EnvShutdownTimeout   = "KALLA_SHUTDOWN_TIMEOUT"
	EnvMemoryLimit       = "KALLA_MEMORY_LIMIT"
	EnvRole              = "KALLA_ROLE"
	EnvLease             = "KALLA_LEASE"
	EnvRetryInterrupted  = "KALLA_RETRY_INTERRUPTED"
	EnvMemoryBudget      = "KALLA_MEMORY_BUDGET"
	EnvMaxQueuedRuns     = "KALLA_MAX_QUEUED_RUNS"
	EnvSourceIdleTimeout = "KALLA_SOURCE_IDLE_TIMEOUT"
	EnvMaxRunDuration    = "KALLA_MAX_RUN_DURATION"
)

// Environment variables of the exception queue: the approval amount of
// four eyes and the resolution codes, comma-separated.
const (
	EnvApprovalAmount = "KALLA_APPROVAL_AMOUNT"
	EnvExceptionCodes = "KALLA_EXCEPTION_CODES"
)

// FromEnv overrides c with the variables getenv returns (os.Getenv in the
// command; a map in tests). The token is read only from the environment,
// never from a flag, so it does not show in process listings.
// KALLA_FILE_ROOTS is a list separated like PATH. KALLA_ALLOWED_HOSTS is
// comma separated. Errors: EINVALID for an unparseable number or duration.
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
	set(EnvMemoryBudget, &c.MemoryBudget)
	set(EnvApprovalAmount, &c.ApprovalAmount)
	if v := strings.TrimSpace(getenv(EnvExceptionCodes)); v != "" {
		c.ExceptionCodes = nil
		for _, code := range strings.Split(v, ",") {
			if code = strings.TrimSpace(code); code != "" {
				c.ExceptionCodes = append(c.ExceptionCodes, code)
			}
		}
	}
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
	for name, dst := range map[string]*time.Duration{EnvShutdownTimeout: &c.ShutdownTimeout, EnvLease: &c.LeaseTTL, EnvSourceIdleTimeout: &c.SourceIdleTimeout, EnvMaxRunDuration: &c.MaxRunDuration} {
		if v := strings.TrimSpace(getenv(name)); v != "" {
			d, err := time.ParseDuration(v)
			if err != nil {
				return kalla.Errorf(kalla.EINVALID, "%s=%q is not a duration such as 30s or 5m", name, v)
			}
			*dst = d
		}
	}
	if v := strings.TrimSpace(getenv(EnvRole)); v != "" {
		c.Role = Role(v)
	}
	if v := strings.TrimSpace(getenv(EnvRetryInterrupted)); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return kalla.Errorf(kalla.EINVALID, "%s=%q is not true or false", EnvRetryInterrupted, v)
		}
		c.RetryInterrupted = b
	}
	for _, h := range strings.Split(getenv(EnvCallbackHosts), ",") {
		if h = strings.TrimSpace(h); h != "" {
			c.CallbackHosts = append(c.CallbackHosts, h)
		}
	}
	c.AllowedHosts = append(c.AllowedHosts, SplitList(getenv(EnvAllowedHosts))...)
	llm, err := kallamcp.LLMFromEnv(getenv)
	if err != nil {
		return err
	}
	c.LLM = llm
	if v := getenv(EnvFileRoots); v != "" {
		for _, d := range filepath.SplitList(v) {
			if d = strings.TrimSpace(d); d != "" {
				c.FileRoots = append(c.FileRoots, d)
			}
		}
	}
	return nil
}

// Validate checks the configuration. Whether a listener beyond loopback
// has a token to ask for (the API reads files and databases with the
// server's credentials) needs the store, so Main.Run checks it once the
// store is open. Errors: EINVALID.
func (c Config) Validate() error {
	if _, _, err := net.SplitHostPort(c.Addr); err != nil {
		return kalla.Errorf(kalla.EINVALID, "listen address %q must be host:port, such as %s", c.Addr, DefaultAddr)
	}
	if c.APIToken != "" && strings.TrimSpace(c.APIToken) == "" {
		return kalla.Errorf(kalla.EINVALID, "%s is blank: set a real token or unset it", EnvAPIToken)
	}
	if strings.TrimSpace(c.DataDir) == "" {
		return kalla.Errorf(kalla.EINVALID, "the data folder is required (--data-dir or %s)", EnvDataDir)
	}
	if c.MaxConcurrentRuns < 1 {
		return kalla.Errorf(kalla.EINVALID, "--max-concurrent-runs must be at least 1, not %d", c.MaxConcurrentRuns)
	}
	if c.MaxQueuedRuns < 0 {
		return kalla.Errorf(kalla.EINVALID, "--max-queued-runs is %d: it must not be negative (0 means the default, %d)", c.MaxQueuedRuns, DefaultMaxQueuedRuns)
	}
	if c.ShutdownTimeout < 0 || c.SourceIdleTimeout < 0 || c.MaxRunDuration < 0 {
		return kalla.Errorf(kalla.EINVALID, "shutdown timeout, source idle timeout and maximum run duration must not be negative")
	}
	switch c.Role {
	case RoleAll, RoleWeb, RoleWorker:
	default:
		return kalla.Errorf(kalla.EINVALID, "role %q is not all, web or worker (--role or %s)", c.Role, EnvRole)
	}
	// Below a second, a heartbeat every third of it is mostly overhead
	// and a pause of the process (or of the store) costs it its runs.
	if c.LeaseTTL < time.Second {
		return kalla.Errorf(kalla.EINVALID, "the run lease must be at least 1s, not %s (--lease or %s)", c.LeaseTTL, EnvLease)
	}
	if c.UploadBucket != "" {
		if err := c.Sources.Remote.S3.Validate(); err != nil {
			return err
		}
	}
	for _, h := range c.AllowedHosts {
		if _, err := parseAllowedHost(h); err != nil {
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

// SplitList splits a comma-separated list of names, dropping blanks, as
// the environment and repeatable flags may give them.
func SplitList(s string) []string {
	var out []string
	for _, v := range strings.Split(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			out = append(out, v)
		}
	}
	return out
}

// loopbackOnly reports whether the listen address names only this
// machine; an address that does not parse counts as reachable.
func (c Config) loopbackOnly() bool {
	host, _, err := net.SplitHostPort(c.Addr)
	return err == nil && isLoopback(host)
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

// Package api is Kalla's HTTP API: JSON over stdlib ServeMux method
// patterns, one route table (routes.go), one file per resource, handlers as
// methods of Handler returning (data, error) and one writer that turns an
// error into {"error": {"code", "message"}} with the status its kalla error
// code stands for.
//
// The handler owns no background work and no source data: registered
// sources, recipes and runs live in the metadata store (Store), source rows
// are read through the connector layer (Sources) from the source's own URI,
// and runs are executed by the runner pool (Runs), which the handler only
// wakes, cancels and listens to. Every dependency is a small interface
// declared here, so tests can hand in fakes.
package api

import (
	"context"
	"database/sql"
	"io"
	"log/slog"
	"net/http"
	"regexp"
	"sync"
	"time"

	"github.com/kalla-recon/kalla/internal/auth"
	"github.com/kalla-recon/kalla/internal/connector"
	"github.com/kalla-recon/kalla/internal/exceptions"
	"github.com/kalla-recon/kalla/internal/kalla"
	"github.com/kalla-recon/kalla/internal/learn"
	"github.com/kalla-recon/kalla/internal/recon"
	"github.com/kalla-recon/kalla/internal/runner"
	"github.com/kalla-recon/kalla/internal/store"
)

// Store is what the API needs of the metadata store. Errors are
// *kalla.Error values: ENOTFOUND for a missing alias, recipe or run,
// ECONFLICT for a recipe id taken or a run already finished.
type Store interface {
	Ping(ctx context.Context) error

	UpsertSource(ctx context.Context, src *kalla.RegisteredSource) error
	GetSource(ctx context.Context, alias string) (*kalla.RegisteredSource, error)
	ListSources(ctx context.Context) ([]*kalla.RegisteredSource, error)
	DeleteSource(ctx context.Context, alias string) error

	CreateRecipe(ctx context.Context, r *kalla.StoredRecipe) error
	PutRecipe(ctx context.Context, r *kalla.StoredRecipe) error
	GetRecipe(ctx context.Context, id string) (*kalla.StoredRecipe, error)
	ListRecipes(ctx context.Context) ([]*kalla.StoredRecipe, error)
	DeleteRecipe(ctx context.Context, id string) error

	CreateRun(ctx context.Context, r *kalla.RunRecord) error
	// CountRunsByStatus counts runs per status, for the queue's bound.
	CountRunsByStatus(ctx context.Context) (map[kalla.RunStatus]int, error)
	GetRun(ctx context.Context, id string) (*kalla.RunRecord, error)
	ListRuns(ctx context.Context, q store.RunQuery) ([]*kalla.RunRecord, error)
	// RequestCancel cancels a queued run or flags a running one and
	// returns the status afterwards; ECONFLICT when the run has finished.
	RequestCancel(ctx context.Context, id string) (kalla.RunStatus, error)

	// CreateToken records a named token by its hash; ECONFLICT when the
	// name has one already. ListTokens lists them all, revoked ones too;
	// RevokeToken revokes name's token (ENOTFOUND when it has none).
	CreateToken(ctx context.Context, t *kalla.APIToken, hash string) error
	ListTokens(ctx context.Context) ([]*kalla.APIToken, error)
	RevokeToken(ctx context.Context, name string) (*kalla.APIToken, error)
}

// Sources opens sources through the connector layer (*sources.Manager).
type Sources interface {
	Open(ctx context.Context, spec kalla.SourceSpec, baseDir string) (connector.Source, error)
}

// Runs is the runner pool as the API sees it (*runner.Pool).
type Runs interface {
	// Wake makes an idle worker look for queued runs now.
	Wake()
	// Cancel stops a run this process executes; false when it does not.
	Cancel(id string) bool
	// Subscribe signals changes of a run made in this process.
	Subscribe(id string) (<-chan struct{}, func())
	// Notify signals a change made outside the pool.
	Notify(id string)
}

// Uploader stores uploaded files in object storage (*objstore.Store).
// Remove takes back an upload the server refused after storing it.
type Uploader interface {
	Put(ctx context.Context, key string, r io.Reader, size int64) (uri string, err error)
	Remove(ctx context.Context, key string) error
}

// Defaults for Config fields left zero.
const (
	DefaultMaxBodyBytes   = 1 << 20 // JSON bodies: recipes and filters are small
	DefaultMaxUploadBytes = 1 << 30
	DefaultSSEPoll        = time.Second
	DefaultSSEKeepAlive   = 15 * time.Second
	DefaultMaxQueuedRuns  = 100
	// queueRetryAfter is the Retry-After of a full queue: about how long
	// a worker takes to free a place for a small run.
	queueRetryAfter = 30 * time.Second
)

// Config configures a Handler.
type Config struct {
	// DataDir is the server's data folder: run outputs under runs/<id>,
	// local uploads under uploads/<id>.
	DataDir string
	// Roots confines file-source paths given through the API. Required.
	Roots *Roots
	// Auth resolves credentials to principals (bearer tokens: the
	// bootstrap token and named ones) and says when they are required;
	// nil means one that knows only Token.
	Auth *auth.Authenticator
	// Token is the bootstrap token (KALLA_API_TOKEN) when Auth is nil.
	Token string
	// Session, when set, names the principal of a request that carries no
	// Authorization header: the web UI's session cookie
	// (ui.Handler.Session), since a browser's EventSource and download
	// links cannot send headers and no token may be written into a page.
	Session func(r *http.Request) (kalla.Principal, bool)
	// Callbacks is the allow-list a run's callback_url must pass; nil
	// refuses every callback_url (a client must not make the server POST
	// to an internal service or a cloud metadata endpoint).
	Callbacks *runner.CallbackPolicy
	// MaxBodyBytes caps JSON request bodies; MaxUploadBytes caps uploads.
	MaxBodyBytes   int64
	MaxUploadBytes int64
	// Uploads, when set, receives uploads (S3); nil keeps them under
	// DataDir. UploadBucket and UploadPrefix say where in S3 they go: only
	// csv_uri values under s3://UploadBucket/UploadPrefix are loaded.
	Uploads      Uploader
	UploadBucket string
	UploadPrefix string
	// EngineSlots bounds the DuckDB engines recipe previews and
	// validations open at once, so that their memory stays within the
	// server's budget (each takes Engine.MemoryLimit); 0 means 2. A request
	// beyond them waits for a slot.
	EngineSlots int
	// Engine configures the DuckDB of previews and validations when Recon
	// is nil.
	Engine recon.DuckDBOptions
	// Recon is the reconciliation service previews and validations go
	// through; nil means one made from Engine, the handler's Sources and
	// Roots.
	Recon *recon.Service
	// Metrics serves /metrics; nil answers 404.
	Metrics http.Handler
	// SSEPoll is how often an event stream re-reads its run when no
	// in-process signal arrives (runs executed by another process);
	// SSEKeepAlive is how often an idle stream sends a comment so proxies
	// keep it open.
	SSEPoll      time.Duration
	SSEKeepAlive time.Duration
	// MaxQueuedRuns bounds the runs waiting in the queue (all processes
	// of a shared store together): beyond it POST /api/runs answers 429
	// (ETOOMANY) with Retry-After, so a client in a loop cannot fill the
	// store with runs nobody will execute for hours. Zero means
	// DefaultMaxQueuedRuns.
	MaxQueuedRuns int
	// Exceptions serves the exception queue and the audit trail
	// (/api/exceptions, /api/audit); nil answers 502 unavailable there.
	Exceptions *exceptions.Service
	// Learn proposes and saves rules learned from people's manual matches
	// (POST /api/recipes/{id}/learn); nil answers 503.
	Learn *learn.Learner
	// Logger receives request errors. Nil discards.
	Logger *slog.Logger
}

// Handler serves the API. Create it with New; Shutdown ends its event
// streams and Close releases its resources.
type Handler struct {
	store   Store
	sources Sources
	runs    Runs
	recon   *recon.Service
	cfg     Config
	auth    *auth.Authenticator
	log     *slog.Logger
	mux     *http.ServeMux
	routes  []route

	// queueMu makes counting the queue and adding to it one step within
	// this process; processes sharing a store may overshoot the bound by
	// the requests they admit at the same instant.
	queueMu sync.Mutex

	closing   chan struct{}
	closeOnce sync.Once

	engines chan struct{} // one token per engine slot

	resultsMu sync.Mutex
	resultsDB *sql.DB // DuckDB reading run outputs, opened on first use
}

// New returns a Handler.
func New(store Store, sources Sources, runs Runs, cfg Config) *Handler {
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if cfg.MaxUploadBytes <= 0 {
		cfg.MaxUploadBytes = DefaultMaxUploadBytes
	}
	if cfg.SSEPoll <= 0 {
		cfg.SSEPoll = DefaultSSEPoll
	}
	if cfg.EngineSlots <= 0 {
		cfg.EngineSlots = 2
	}
	if cfg.SSEKeepAlive <= 0 {
		cfg.SSEKeepAlive = DefaultSSEKeepAlive
	}
	if cfg.MaxQueuedRuns <= 0 {
		cfg.MaxQueuedRuns = DefaultMaxQueuedRuns
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	h := &Handler{store: store, sources: sources, runs: runs, recon: cfg.Recon, cfg: cfg, auth: cfg.Auth, log: log, closing: make(chan struct{}), engines: make(chan struct{}, cfg.EngineSlots)}
	if h.auth == nil {
		h.auth = auth.New(auth.Config{Bootstrap: cfg.Token, Logger: log})
	}
	if h.recon == nil {
		opts := recon.Options{DuckDB: cfg.Engine, Sources: sources, Logger: log}
		if cfg.Roots != nil {
			opts.CheckSource = cfg.Roots.CheckSpec
		}
		h.recon = recon.New(opts)
	}
	h.mux = http.NewServeMux()
	h.routes = h.routeTable()
	for _, rt := range h.routes {
		h.mux.Handle(rt.Method+" "+rt.Path, h.serve(rt))
	}
	h.shadowWildcards()
	return h
}

// ServeHTTP routes the request. Unknown /api/ paths and methods get the
// JSON error body like every other API error, not the mux's plain text.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if _, pattern := h.mux.Handler(r); pattern == "" {
		h.noRoute(w, r)
		return
	}
	h.mux.ServeHTTP(w, r)
}

// BeginShutdown ends every open event stream, so that the HTTP server's
// graceful shutdown is not held up by clients following runs. Streams end
// without a final event; clients reconnect to another instance or later.
func (h *Handler) BeginShutdown() {
	h.closeOnce.Do(func() { close(h.closing) })
}

// Close ends event streams and closes the results database.
func (h *Handler) Close() error {
	h.BeginShutdown()
	h.resultsMu.Lock()
	defer h.resultsMu.Unlock()
	if h.resultsDB != nil {
		err := h.resultsDB.Close()
		h.resultsDB = nil
		return err
	}
	return nil
}

// lookup fetches the stored object named id with get. An id that does not
// fit its pattern and one the store does not know are the same 404, said
// with notFound (a format taking the id), so a caller cannot tell them
// apart.
func lookup[T any](ctx context.Context, id string, valid *regexp.Regexp, get func(context.Context, string) (T, error), notFound string) (T, error) {
	var zero T
	if !valid.MatchString(id) {
		return zero, kalla.Errorf(kalla.ENOTFOUND, notFound, id)
	}
	v, err := get(ctx, id)
	if err != nil {
		if kalla.ErrorCode(err) == kalla.ENOTFOUND {
			return zero, kalla.Errorf(kalla.ENOTFOUND, notFound, id)
		}
		return zero, err
	}
	return v, nil
}

// engineSlot waits for one of the engine slots, so that previews and
// validations together never hold more memory than their share of the
// budget; release gives the slot back. The service calls it just before
// the engine takes its memory (recon.Job.Admit). Errors: ctx's when the
// request ends while waiting.
func (h *Handler) engineSlot(ctx context.Context) (release func(), err error) {
	select {
	case h.engines <- struct{}{}:
		return func() { <-h.engines }, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

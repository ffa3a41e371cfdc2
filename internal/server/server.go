// Package server builds `kalla serve`'s object graph in one place, in the
// manner of WTF Dial's cmd/wtfd: Main opens the metadata store, settles runs
// whose process died (their lease expired), starts the connector layer, the
// run pool, the HTTP API (under /api/ and the probes) and the web UI
// (everything else) behind one guard against other sites' pages (guard.go),
// and Close takes them down in the reverse order. Its role decides which of
// these a process runs: all of them, only the web side (API, UI, queuing),
// or only the workers (with the probes). The
// command line only reads the Config and waits for a signal; tests start a
// Main on 127.0.0.1:0 with a temporary data folder.
package server

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/kalla-recon/kalla/internal/api"
	"github.com/kalla-recon/kalla/internal/auth"
	"github.com/kalla-recon/kalla/internal/exceptions"
	"github.com/kalla-recon/kalla/internal/kalla"
	"github.com/kalla-recon/kalla/internal/learn"
	kallamcp "github.com/kalla-recon/kalla/internal/mcp"
	"github.com/kalla-recon/kalla/internal/objstore"
	"github.com/kalla-recon/kalla/internal/recon"
	"github.com/kalla-recon/kalla/internal/runner"
	"github.com/kalla-recon/kalla/internal/scratch"
	"github.com/kalla-recon/kalla/internal/sources"
	"github.com/kalla-recon/kalla/internal/store"
	"github.com/kalla-recon/kalla/internal/ui"
	"github.com/kalla-recon/kalla/internal/version"
)

// The concrete types must satisfy the interfaces their consumers declare.
var (
	_ api.Store     = (*store.Store)(nil)
	_ runner.Store  = (*store.Store)(nil)
	_ api.Sources   = (*sources.Manager)(nil)
	_ runner.Opener = (*sources.Manager)(nil)
	_ auth.Store    = (*store.Store)(nil)
	_ api.Runs      = (*runner.Pool)(nil)
	_ api.Uploader  = (*objstore.Store)(nil)
)

// InterruptedReason is the error recorded on runs whose process stopped
// without finishing them (it stopped renewing their lease).
const InterruptedReason = runner.InterruptedReason

// httpShutdownTimeout bounds the wait for in-flight requests at shutdown;
// event streams are ended at once, so only ordinary requests remain.
const httpShutdownTimeout = 10 * time.Second

// Main is a running server.
type Main struct {
	cfg Config
	log *slog.Logger

	// The parts, exposed for tests.
	Store   *store.Store
	Sources *sources.Manager
	Pool    *runner.Pool
	API     *api.Handler
	UI      *ui.Handler
	// Recon is the reconciliation service the run queue and the API share;
	// engines beyond DuckDB are registered on it.
	Recon *recon.Service
	MCP   *kallamcp.HTTPHandler

	dataDir  string
	srv      *http.Server
	ln       net.Listener
	serveErr chan error

	closeOnce sync.Once
	closeErr  error
}

// NewMain returns a server for cfg; Run starts it. Zero fields of cfg take
// DefaultConfig's values.
func NewMain(cfg Config) *Main {
	def := DefaultConfig()
	if cfg.Addr == "" {
		cfg.Addr = def.Addr
	}
	if cfg.DataDir == "" {
		cfg.DataDir = def.DataDir
	}
	if cfg.MaxConcurrentRuns == 0 {
		cfg.MaxConcurrentRuns = def.MaxConcurrentRuns
	}
	if cfg.ShutdownTimeout == 0 {
		cfg.ShutdownTimeout = def.ShutdownTimeout
	}
	if cfg.Role == "" {
		cfg.Role = def.Role
	}
	if cfg.LeaseTTL == 0 {
		cfg.LeaseTTL = def.LeaseTTL
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Main{cfg: cfg, log: log, serveErr: make(chan error, 1)}
}

// Run starts the server and returns once it is listening: the HTTP server
// and the run pool work in the background until Close. On error everything
// Run started is released. Errors: EINVALID for a bad configuration,
// EUNAVAILABLE when the metadata store cannot be opened, and listen errors.
func (m *Main) Run(ctx context.Context) (err error) {
	defer func() {
		if err != nil {
			m.Close()
		}
	}()
	cfg := m.cfg
	if err := cfg.Validate(); err != nil {
		return err
	}
	if m.dataDir, err = filepath.Abs(cfg.DataDir); err != nil {
		return fmt.Errorf("data folder: %w", err)
	}
	for _, d := range []string{m.dataDir, filepath.Join(m.dataDir, "runs"), filepath.Join(m.dataDir, "uploads")} {
		if err := os.MkdirAll(d, 0o750); err != nil {
			return kalla.WrapError(kalla.EINVALID, err, "cannot create the data folder %s", d)
		}
	}
	m.removeDeadTemp()
	if err := m.removePartialUploads(); err != nil {
		return err
	}

	dbURL := cfg.DatabaseURL
	if dbURL == "" {
		dbURL = filepath.Join(m.dataDir, "kalla.db")
	}
	if m.Store, err = store.Open(ctx, dbURL); err != nil {
		return fmt.Errorf("open metadata store: %w", err)
	}
	authn := auth.New(auth.Config{Store: m.Store, Bootstrap: cfg.APIToken, Always: !cfg.loopbackOnly() && !cfg.NoListen, Logger: m.log})
	if !cfg.loopbackOnly() && !cfg.NoListen && cfg.APIToken == "" {
		has, err := m.Store.HasTokens(ctx)
		if err != nil {
			return err
		}
		if !has {
			return kalla.Errorf(kalla.EINVALID, "refusing to listen on %s without a token to ask for: anyone who can reach it could read your sources. "+
				"Create a named admin token first (kalla token create --name NAME --role admin), or set %s (clients send either as \"Authorization: Bearer <token>\"), or listen on 127.0.0.1", cfg.Addr, EnvAPIToken)
		}
	}

	srcCfg := cfg.Sources
	if srcCfg.IdleTimeout == 0 {
		srcCfg.IdleTimeout = cfg.SourceIdleTimeout
	}
	if srcCfg.Logger == nil {
		srcCfg.Logger = m.log
	}
	m.Sources = sources.New(srcCfg)
	roots, err := api.NewRoots(append([]string{m.dataDir}, cfg.FileRoots...)...)
	if err != nil {
		return err
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		newStoreCollector(m.Store, m.log),
		newPoolCollector(m.Sources, cfg.Sources.Pools.MaxConns),
	)
	engineOpts := cfg.Engine
	if cfg.SourceIdleTimeout > 0 {
		engineOpts.SourceIdleTimeout = cfg.SourceIdleTimeout
	}
	if engineOpts.Logger == nil {
		engineOpts.Logger = m.log
	}
	callbacks, err := runner.NewCallbackPolicy(cfg.CallbackHosts)
	if err != nil {
		return err
	}
	slots := cfg.EngineSlots
	if slots <= 0 {
		slots = DefaultEngineSlots
	}
	mem, err := planMemory(cfg.MemoryBudget, cfg.Engine.MemoryLimit, cfg.MaxConcurrentRuns, slots)
	if err != nil {
		return err
	}
	engineOpts.MemoryLimit = mem.limit
	reg.MustRegister(newMemoryCollector(mem))
	// One reconciliation service for the run queue and the API's previews
	// and validations: the same engines, options and source confinement.
	m.Recon = recon.New(recon.Options{DuckDB: engineOpts, Sources: m.Sources, CheckSource: roots.CheckSpec, Logger: m.log})
	for name, f := range cfg.Engines {
		m.Recon.Register(name, f)
	}
	m.log.Info("engines available", "engines", m.Recon.Engines())
	excs, err := exceptions.New(m.Store, exceptions.Config{Codes: cfg.ExceptionCodes, ApprovalAmount: cfg.ApprovalAmount, Logger: m.log})
	if err != nil {
		return err
	}
	m.Pool = runner.New(m.Store, m.Sources, runner.Config{
		Callbacks:        callbacks,
		Workers:          cfg.MaxConcurrentRuns,
		DataDir:          m.dataDir,
		PollInterval:     cfg.PollInterval,
		ProgressInterval: cfg.ProgressInterval,
		LeaseTTL:         cfg.LeaseTTL,
		ReapInterval:     cfg.ReapInterval,
		RetryInterrupted: cfg.RetryInterrupted,
		Engine:           engineOpts,
		Recon:            m.Recon,
		MaxRunDuration:   cfg.MaxRunDuration,
		CheckSource:      roots.CheckSpec,
		Logger:           m.log,
		Metrics:          runner.NewMetrics(reg),
		OnCompleted:      exceptions.Recorder(excs),
	})
	// Runs a dead process left running are settled now, before any worker
	// claims: only those whose lease expired, so runs other live processes
	// execute on a shared store are left alone.
	if err := m.Pool.Reap(ctx); err != nil {
		return err
	}
	if cfg.Role.runsWork() {
		m.Pool.Start()
	} else {
		m.Pool.StartReaper()
	}

	// The web UI at "/": its session cookie admits the browser to the API.
	if m.UI, err = ui.New(ui.Config{Store: m.Store, Auth: authn, Version: version.Version, Engines: m.Recon.Engines(), Exceptions: excs, Logger: m.log}); err != nil {
		return fmt.Errorf("web ui: %w", err)
	}
	apiCfg := api.Config{
		DataDir:        m.dataDir,
		Roots:          roots,
		Auth:           authn,
		Callbacks:      callbacks,
		Session:        m.UI.Session,
		MaxBodyBytes:   cfg.MaxBodyBytes,
		MaxUploadBytes: cfg.MaxUploadBytes,
		Engine:         engineOpts,
		Recon:          m.Recon,
		EngineSlots:    slots,
		Metrics:        promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorLog: slog.NewLogLogger(m.log.Handler(), slog.LevelWarn)}),
		SSEPoll:        cfg.SSEPoll,
		MaxQueuedRuns:  cfg.MaxQueuedRuns,
		Exceptions:     excs,
		Learn:          learn.New(m.Store, m.Recon, func(id string) string { return runner.OutDir(m.dataDir, id) }),
		Logger:         m.log,
	}
	if cfg.UploadBucket != "" {
		up, err := objstore.NewStore(cfg.Sources.Remote.S3, cfg.UploadBucket, cfg.UploadPrefix)
		if err != nil {
			return err
		}
		apiCfg.Uploads, apiCfg.UploadBucket, apiCfg.UploadPrefix = up, cfg.UploadBucket, cfg.UploadPrefix
	}
	m.API = api.New(m.Store, m.Sources, m.Pool, apiCfg)
	if cfg.NoListen {
		m.log.Info("kalla ready without listening", "role", cfg.Role, "owner", m.Pool.Owner(), "data_dir", m.dataDir, "store", m.Store.Backend())
		return nil
	}

	if m.ln, err = net.Listen("tcp", cfg.Addr); err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.Addr, err)
	}
	mux := http.NewServeMux()
	for _, p := range []string{"/healthz", "/readyz", "/metrics"} {
		mux.Handle(p, m.API)
	}
	// A worker answers only the probes and metrics: the API and the UI,
	// which queue runs, belong to the web role.
	if cfg.Role.servesWeb() {
		mux.Handle("/api/", m.API)
		// MCP over streamable HTTP: its tools call the API in-process
		// with the caller's credentials (package mcp).
		m.MCP = kallamcp.NewHTTPHandler(kallamcp.NewServer(kallamcp.Config{API: m.API, LLM: cfg.LLM, Logger: m.log}), m.API.Authorized)
		mux.Handle("/mcp", m.MCP)
		mux.Handle("/", m.UI)
	}
	guard, err := newGuard(cfg.Addr, m.ln.Addr(), cfg.AllowedHosts, m.log, mux)
	if err != nil {
		return err
	}
	m.srv = &http.Server{
		Handler:           guard,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(m.log.Handler(), slog.LevelWarn),
	}
	go func() {
		if err := m.srv.Serve(m.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			m.serveErr <- err
		}
	}()
	m.log.Info("kalla serving", "url", m.URL(), "role", cfg.Role, "owner", m.Pool.Owner(), "data_dir", m.dataDir,
		"store", m.Store.Backend(), "max_concurrent_runs", cfg.MaxConcurrentRuns, "token", cfg.APIToken != "",
		"allowed_hosts", cfg.AllowedHosts)
	return nil
}

// URL is the server's base URL, such as http://127.0.0.1:41234.
func (m *Main) URL() string {
	if m.ln == nil {
		return ""
	}
	return "http://" + m.ln.Addr().String()
}

// Errors delivers an error if the HTTP server stops on its own.
func (m *Main) Errors() <-chan error { return m.serveErr }

// Close shuts the server down in order: stop accepting connections and end
// event streams; let in-flight requests finish (up to 10 s); let running
// runs finish up to ShutdownTimeout, then cancel them (they record
// "failed", "interrupted: …"); release the connector layer and the store.
// It is safe to call more than once.
func (m *Main) Close() error {
	m.closeOnce.Do(func() {
		var errs []error
		if m.API != nil {
			m.API.BeginShutdown()
		}
		if m.MCP != nil {
			m.MCP.Shutdown()
		}
		if m.srv != nil {
			ctx, cancel := context.WithTimeout(context.Background(), httpShutdownTimeout)
			if err := m.srv.Shutdown(ctx); err != nil {
				m.srv.Close()
			}
			cancel()
		}
		if m.Pool != nil {
			ctx, cancel := context.WithTimeout(context.Background(), m.cfg.ShutdownTimeout)
			if err := m.Pool.Shutdown(ctx); err != nil {
				m.log.Warn("runs were cancelled at shutdown", "timeout", m.cfg.ShutdownTimeout)
			}
			cancel()
		}
		if m.API != nil {
			errs = append(errs, m.API.Close())
		}
		if m.Sources != nil {
			errs = append(errs, m.Sources.Close())
		}
		if m.Store != nil {
			errs = append(errs, m.Store.Close())
		}
		m.closeErr = errors.Join(errs...)
	})
	return m.closeErr
}

// removeDeadTemp removes what processes that are gone left in the data
// folder's tmp/: their runs' spill folders, previews and upload checks.
// Only theirs: several processes may share the data folder, and each
// holds its own folders locked while it lives (package scratch), where
// removing all of tmp/ took the spill files from under the others' runs.
// Entries not named as scratch folders are from a Kalla before it locked
// them, and go.
func (m *Main) removeDeadTemp() {
	tmp := filepath.Join(m.dataDir, "tmp")
	var bytes int64
	removed := scratch.Sweep(tmp, "kalla-")
	for _, r := range removed {
		bytes += r.Bytes
	}
	entries, _ := os.ReadDir(tmp)
	for _, e := range entries {
		if name := e.Name(); !scratch.Named(name, "kalla-") {
			if os.RemoveAll(filepath.Join(tmp, name)) == nil {
				removed = append(removed, scratch.Removed{Path: filepath.Join(tmp, name)})
			}
		}
	}
	if len(removed) > 0 {
		m.log.Info("removed temporary folders left by stopped processes", "folders", len(removed), "bytes", bytes)
	}
}

// emptyUploadAge is how old an empty upload folder must be before a
// starting server removes it (see removePartialUploads).
const emptyUploadAge = time.Minute

// removePartialUploads deletes the upload files a killed process was still
// writing (uploads/<id>/.<name>.partial), and the upload folders they
// leave empty: nothing will finish them, and a half file must never be
// read as a source (file sources refuse such names too). A partial file a
// live process holds, on this host or another sharing the data folder,
// stays.
//
// A folder found empty is removed only once it is a minute old
// (emptyUploadAge): a live process makes the folder, then the file in it,
// and removing the folder in between failed that upload.
func (m *Main) removePartialUploads() error {
	dirs, err := os.ReadDir(filepath.Join(m.dataDir, "uploads"))
	if err != nil {
		return fmt.Errorf("list uploads: %w", err)
	}
	removed := 0
	for _, d := range dirs {
		if !d.IsDir() {
			continue
		}
		dir := filepath.Join(m.dataDir, "uploads", d.Name())
		info, err := d.Info()
		if err != nil {
			continue // removed meanwhile
		}
		files, err := os.ReadDir(dir)
		if errors.Is(err, fs.ErrNotExist) {
			continue // another starting process removed it
		}
		if err != nil {
			return fmt.Errorf("list uploads: %w", err)
		}
		left, gone := len(files), 0
		for _, f := range files {
			if !kalla.IsPartialPath(f.Name()) {
				continue
			}
			// Only a dead process's: one sharing this data folder may be
			// writing it now, and holds it (scratch.Hold).
			ok, err := scratch.RemoveUnheld(filepath.Join(dir, f.Name()))
			if err != nil && !errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("remove a partial upload: %w", err)
			}
			if ok {
				gone++
				left--
			}
		}
		// Each upload has a folder of its own: once its dead partial file
		// is gone, nothing else will use it.
		if left == 0 && (gone > 0 || time.Since(info.ModTime()) >= emptyUploadAge) {
			os.Remove(dir)
		}
		removed += gone
	}
	if removed > 0 {
		m.log.Info("removed partial uploads left by a stopped process", "files", removed)
	}
	return nil
}

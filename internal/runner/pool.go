// Package runner executes queued reconciliation runs in the background: a
// bounded pool of workers claims runs from the metadata store, executes each
// on its own DuckDB engine, writes progress back to the store as it goes and
// records the outcome.
//
// The store, not this process, is the queue: a run is queued by inserting it,
// claimed by an atomic queued → running update, and finished by one final
// update. So a restart knows what was running (the server marks such runs
// failed, "interrupted", before starting the pool), and several processes
// could share one Postgres store. Within a process, Wake makes an idle worker
// claim immediately instead of waiting for its next poll, and Cancel stops a
// run through its context; a cancel requested through another process is
// seen through the store's cancel_requested flag, which the worker polls.
package runner

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"path/filepath"
	"sync"
	"time"

	"github.com/kalla-recon/kalla/internal/connector"
	"github.com/kalla-recon/kalla/internal/engine"
	"github.com/kalla-recon/kalla/internal/kalla"
)

// Store is what the pool needs of the metadata store. Errors are
// *kalla.Error values; ClaimRun reports "nothing queued" as ENOTFOUND.
type Store interface {
	// ClaimRun moves the oldest queued run to running and returns it.
	ClaimRun(ctx context.Context) (*kalla.RunRecord, error)
	// GetRun returns one run, for the cancel_requested flag.
	GetRun(ctx context.Context, id string) (*kalla.RunRecord, error)
	// UpdateRunProgress records where a running run is.
	UpdateRunProgress(ctx context.Context, id, stage string, progress float64, leftRows, rightRows int64) error
	// FinishRun records a run's final status, its summary when it
	// completed and the reason when it did not.
	FinishRun(ctx context.Context, id string, status kalla.RunStatus, summary *kalla.Summary, errMsg string) error
}

// Opener opens one side of a recipe through the connector layer
// (*sources.Manager). Runs never read data through the metadata store.
type Opener interface {
	Open(ctx context.Context, spec kalla.SourceSpec, baseDir string) (connector.Source, error)
}

// Defaults for Config fields left zero.
const (
	DefaultWorkers             = 2
	DefaultPollInterval        = 2 * time.Second
	DefaultProgressInterval    = 250 * time.Millisecond
	DefaultCancelCheckInterval = time.Second
)

// Config configures a Pool.
type Config struct {
	// Workers is the number of runs executed at once
	// (--max-concurrent-runs). Each run has its own DuckDB database, so this
	// bounds the server's memory and CPU use.
	Workers int
	// DataDir holds each run's outputs under runs/<id>/ and its DuckDB
	// spill files under tmp/<id>/.
	DataDir string
	// PollInterval is how often an idle worker looks for queued runs when
	// nobody wakes it: runs queued by another process are picked up
	// within this time.
	PollInterval time.Duration
	// ProgressInterval throttles progress writes to the store: the engine
	// reports every 64k rows, far too often for a database round trip.
	ProgressInterval time.Duration
	// CancelCheckInterval is how often a running run reads its
	// cancel_requested flag, for cancels made through another process.
	CancelCheckInterval time.Duration
	// Engine configures each run's DuckDB (memory limit, threads). TempDir
	// is replaced by a per-run folder under DataDir.
	Engine engine.Options
	// MaxRunDuration, when positive, fails a run still going after this
	// long (--max-run-duration). The idle timeout of its sources is
	// Engine.SourceIdleTimeout.
	MaxRunDuration time.Duration
	// Formats are the output formats; "parquet" is always written, since
	// the API pages results from it.
	Formats []string
	// CheckSource, when set, vets every source of a run before it is
	// opened (the API's file-root confinement), so that a run stored by
	// some other path cannot read outside the allowed folders either.
	CheckSource func(kalla.SourceSpec) error
	// HTTPClient posts callbacks; nil means a client with short timeouts.
	HTTPClient *http.Client
	// CallbackRetries is how many times a final callback (complete or
	// error) is attempted; 0 means 5.
	CallbackRetries int
	// CallbackBackoff is the wait before the first retry, doubled after
	// each; 0 means 500ms.
	CallbackBackoff time.Duration
	// Logger receives run lifecycle logs. Nil discards.
	Logger *slog.Logger
	// Metrics, when set, is updated as runs progress and finish.
	Metrics *Metrics
}

// Errors that say why a run's context was cancelled (context.Cause).
var (
	// ErrCancelled means a user asked for the run to stop.
	ErrCancelled = errors.New("cancelled by request")
	// ErrShutdown means the server stopped before the run finished.
	ErrShutdown = errors.New("interrupted: the server shut down before the run finished")
)

// Pool runs queued runs with a bounded number of workers. Create it with
// New, start it with Start, stop it with Shutdown.
type Pool struct {
	store Store
	open  Opener
	cfg   Config
	log   *slog.Logger
	hub   *hub
	cb    *callbacks

	wake chan struct{} // one pending wake-up is enough: a woken worker re-wakes after a claim
	stop chan struct{} // closed by Shutdown: claim nothing more

	runCtx    context.Context // parent of every run; cancelled when Shutdown gives up waiting
	runCancel context.CancelCauseFunc

	startOnce sync.Once
	workers   sync.WaitGroup

	mu      sync.Mutex
	running map[string]context.CancelCauseFunc

	shutdownOnce sync.Once
	shutdownErr  error
}

// New returns a Pool; it does nothing until Start.
func New(store Store, open Opener, cfg Config) *Pool {
	if cfg.Workers <= 0 {
		cfg.Workers = DefaultWorkers
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = DefaultPollInterval
	}
	if cfg.ProgressInterval <= 0 {
		cfg.ProgressInterval = DefaultProgressInterval
	}
	if cfg.CancelCheckInterval <= 0 {
		cfg.CancelCheckInterval = DefaultCancelCheckInterval
	}
	cfg.Formats = withParquet(cfg.Formats)
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	p := &Pool{
		store:   store,
		open:    open,
		cfg:     cfg,
		log:     log,
		hub:     newHub(),
		wake:    make(chan struct{}, 1),
		stop:    make(chan struct{}),
		running: map[string]context.CancelCauseFunc{},
	}
	p.runCtx, p.runCancel = context.WithCancelCause(context.Background())
	p.cb = newCallbacks(cfg, log)
	return p
}

func withParquet(formats []string) []string {
	for _, f := range formats {
		if f == engine.FormatParquet {
			return formats
		}
	}
	return append([]string{engine.FormatParquet}, formats...)
}

// OutDir is where run id's outputs are written under dataDir. The API serves
// files from the same place.
func OutDir(dataDir, id string) string {
	return filepath.Join(dataDir, "runs", id)
}

// Start launches the workers. Calling it again does nothing.
func (p *Pool) Start() {
	p.startOnce.Do(func() {
		for i := 0; i < p.cfg.Workers; i++ {
			p.workers.Add(1)
			go p.worker()
		}
	})
}

// Wake tells an idle worker to look for queued runs now. It never blocks,
// so the API can call it right after queuing a run.
func (p *Pool) Wake() {
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// Cancel stops run id if this process is executing it and reports whether
// it was. The run records status "cancelled".
func (p *Pool) Cancel(id string) bool {
	p.mu.Lock()
	cancel, ok := p.running[id]
	p.mu.Unlock()
	if ok {
		cancel(ErrCancelled)
	}
	return ok
}

// Running returns the number of runs this process is executing.
func (p *Pool) Running() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.running)
}

// Subscribe returns a channel that receives a value whenever run id's
// record changes in this process (progress written, run finished), and a
// function to stop. Changes are coalesced: a slow reader sees the latest
// state on its next read of the store.
func (p *Pool) Subscribe(id string) (<-chan struct{}, func()) {
	return p.hub.subscribe(id)
}

// Notify tells subscribers that run id changed outside the pool (a queued
// run cancelled through the API).
func (p *Pool) Notify(id string) { p.hub.notify(id) }

// Shutdown stops claiming runs and waits for the running ones to finish
// until ctx ends; then it cancels them (they record status "failed",
// "interrupted: …") and waits for them to stop, which cancellation makes
// prompt. Final callbacks still being retried are given the rest of ctx.
// It is safe to call more than once and from several goroutines; every
// call returns the first call's result: ctx.Err() when runs had to be
// cancelled, nil when they all finished in time.
func (p *Pool) Shutdown(ctx context.Context) error {
	p.shutdownOnce.Do(func() {
		close(p.stop)
		done := make(chan struct{})
		go func() {
			p.workers.Wait()
			close(done)
		}()
		select {
		case <-done:
		case <-ctx.Done():
			p.log.Warn("runs still running at shutdown deadline: cancelling them", "running", p.Running())
			p.shutdownErr = ctx.Err()
			p.runCancel(ErrShutdown)
			<-done
		}
		p.runCancel(ErrShutdown)
		p.cb.shutdown(ctx)
	})
	return p.shutdownErr
}

// worker claims and executes runs until Shutdown.
func (p *Pool) worker() {
	defer p.workers.Done()
	tick := time.NewTicker(p.cfg.PollInterval)
	defer tick.Stop()
	for {
		select {
		case <-p.stop:
			return
		default:
		}
		rec, err := p.store.ClaimRun(p.runCtx)
		switch {
		case err == nil:
			// Another run may be queued behind this one: let an idle
			// worker look too.
			p.Wake()
			p.execute(rec)
			continue
		case kalla.ErrorCode(err) != kalla.ENOTFOUND && p.runCtx.Err() == nil:
			// The store is unreachable: try again at the next poll.
			p.log.Error("claim a queued run", "err", err)
		}
		select {
		case <-p.stop:
			return
		case <-p.wake:
		case <-tick.C:
		}
	}
}

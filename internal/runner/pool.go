// Package runner executes queued reconciliation runs in the background: a
// bounded pool of workers claims runs from the metadata store, executes each
// on the engine it was queued for (through the reconciliation service, which
// knows the engines; the pool does not), writes progress back to the store as it goes and
// records the outcome.
//
// The store, not this process, is the queue: a run is queued by inserting it,
// claimed by an atomic queued → running update under a lease that the
// claiming process's heartbeat extends, and finished by one final update
// that only the lease holder can make. So several processes can share one
// Postgres store: a run whose owner died stops being renewed, and any live
// process's reaper fails it ("interrupted") or queues it again once its
// lease expires. Within a process, Wake makes an idle worker claim
// immediately instead of waiting for its next poll, and Cancel stops a run
// through its context; a cancel requested through another process is seen
// through the store's cancel_requested flag, which the worker polls.
package runner

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/kalla-recon/kalla/internal/connector"
	"github.com/kalla-recon/kalla/internal/kalla"
	"github.com/kalla-recon/kalla/internal/recon"
)

// Store is what the pool needs of the metadata store. Errors are
// *kalla.Error values; ClaimRun reports "nothing queued" as ENOTFOUND.
type Store interface {
	// ClaimRun moves the oldest queued run to running under a lease held
	// by owner for ttl, and returns it.
	ClaimRun(ctx context.Context, owner string, ttl time.Duration) (*kalla.RunRecord, error)
	// RenewLease extends a held lease to ttl from now; ECONFLICT once the
	// lease was taken over.
	RenewLease(ctx context.Context, id string, lease kalla.Lease, ttl time.Duration) error
	// ExpireLeases ends (or queues again, below maxAttempts claims) the
	// running runs whose lease expired, and returns their IDs.
	ExpireLeases(ctx context.Context, maxAttempts int, reason string) (ended, requeued []string, err error)
	// GetRun returns one run, for the cancel_requested flag.
	GetRun(ctx context.Context, id string) (*kalla.RunRecord, error)
	// UpdateRunProgress records where a running run is, under its lease.
	UpdateRunProgress(ctx context.Context, id string, lease kalla.Lease, stage string, progress float64, leftRows, rightRows int64) error
	// FinishRun records a run's final status, its summary when it
	// completed and the reason when it did not, under its lease.
	FinishRunCode(ctx context.Context, id string, lease kalla.Lease, status kalla.RunStatus, summary *kalla.Summary, errCode, errMsg string) error
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
	DefaultLeaseTTL            = 30 * time.Second
)

// InterruptedReason is the error recorded on a run whose process stopped
// renewing its lease (it died, or lost the store) before the run finished.
const InterruptedReason = "interrupted: the process running it stopped before the run finished"

// Config configures a Pool.
type Config struct {
	// Workers is the number of runs executed at once
	// (--max-concurrent-runs). Each run has its own DuckDB database, so this
	// bounds the server's memory and CPU use.
	Workers int
	// DataDir holds each run's outputs under runs/<id>/ and its DuckDB
	// spill files under tmp/, in a folder per run (engine.SpillPrefix).
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
	// Owner names this process in the runs it claims (their lease owner);
	// empty means host name, process ID and a random suffix. It must be
	// unique among the processes sharing a store.
	Owner string
	// LeaseTTL is how long a claimed run stays this process's without a
	// heartbeat. The heartbeat renews it every third of it; a run whose
	// lease expired is settled by the reaper of any process sharing the
	// store, so a run of a process that died is failed (or retried) within
	// LeaseTTL plus ReapInterval. A process that cannot renew for LeaseTTL
	// gives its run up.
	LeaseTTL time.Duration
	// ReapInterval is how often the reaper looks for expired leases;
	// zero means a third of LeaseTTL.
	ReapInterval time.Duration
	// RetryInterrupted queues a run whose lease expired once more
	// (--retry-interrupted) instead of failing it; a second expiry fails
	// it.
	RetryInterrupted bool
	// Engine configures each run's DuckDB (memory limit, threads) when
	// Recon is nil. TempDir is replaced by DataDir's tmp/.
	Engine recon.DuckDBOptions
	// Recon is the reconciliation service runs execute through; nil
	// means one made from Engine, the pool's Opener and CheckSource.
	Recon *recon.Service
	// MaxRunDuration, when positive, fails a run still going after this
	// long (--max-run-duration). The idle timeout of its sources is
	// Engine.SourceIdleTimeout (that of Recon's DuckDB when Recon is set).
	MaxRunDuration time.Duration
	// Formats are the output formats; "parquet" is always written, since
	// the API pages results from it.
	Formats []string
	// CheckSource, when set and Recon is nil, vets every source of a run
	// before it is opened (the API's file-root confinement), so that a run stored by
	// some other path cannot read outside the allowed folders either.
	CheckSource func(kalla.SourceSpec) error
	// Callbacks is the callback allow-list every post is checked against,
	// by name and by the address dialled; nil posts no callbacks.
	Callbacks *CallbackPolicy
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
	// OnCompleted, when set, is called once a run's completion is
	// recorded, with the run as recorded and its output folder, before
	// subscribers and the callback hear of it: the exception items are
	// made there from the run's own output files. Its error is logged; the
	// run stays completed.
	OnCompleted func(ctx context.Context, rec *kalla.RunRecord, outDir string) error
}

// Errors that say why a run's context was cancelled (context.Cause).
var (
	// ErrCancelled means a user asked for the run to stop.
	ErrCancelled = errors.New("cancelled by request")
	// ErrShutdown means the server stopped before the run finished.
	ErrShutdown = errors.New("interrupted: the server shut down before the run finished")
	// ErrLeaseLost means this process could not renew the run's lease
	// (another process took the run over, or the store was unreachable
	// for a whole lease): the run is no longer this process's to finish.
	ErrLeaseLost = errors.New("interrupted: this process lost the run's lease")
)

// Pool runs queued runs with a bounded number of workers. Create it with
// New, start it with Start, stop it with Shutdown.
type Pool struct {
	store Store
	recon *recon.Service
	cfg   Config
	log   *slog.Logger
	hub   *hub
	cb    *callbacks

	wake chan struct{} // one pending wake-up is enough: a woken worker re-wakes after a claim
	stop chan struct{} // closed by Shutdown: claim nothing more

	runCtx    context.Context // parent of every run; cancelled when Shutdown gives up waiting
	runCancel context.CancelCauseFunc

	startOnce  sync.Once
	reaperOnce sync.Once
	workers    sync.WaitGroup
	reaper     sync.WaitGroup

	mu      sync.Mutex
	running map[string]context.CancelCauseFunc

	shutdownOnce sync.Once
	shutdownErr  error
}

// New returns a Pool; it does nothing until Start. open opens the runs'
// sources when cfg.Recon is nil (the service made then reads through it).
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
	if cfg.LeaseTTL <= 0 {
		cfg.LeaseTTL = DefaultLeaseTTL
	}
	if cfg.ReapInterval <= 0 {
		cfg.ReapInterval = cfg.LeaseTTL / 3
	}
	if cfg.Owner == "" {
		cfg.Owner = processOwner()
	}
	cfg.Formats = withParquet(cfg.Formats)
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	p := &Pool{
		store:   store,
		recon:   cfg.Recon,
		cfg:     cfg,
		log:     log,
		hub:     newHub(),
		wake:    make(chan struct{}, 1),
		stop:    make(chan struct{}),
		running: map[string]context.CancelCauseFunc{},
	}
	if p.recon == nil {
		p.recon = recon.New(recon.Options{DuckDB: cfg.Engine, Sources: open, CheckSource: cfg.CheckSource, Logger: log})
	}
	p.runCtx, p.runCancel = context.WithCancelCause(context.Background())
	p.cb = newCallbacks(cfg, log)
	return p
}

func withParquet(formats []string) []string {
	for _, f := range formats {
		if f == recon.FormatParquet {
			return formats
		}
	}
	return append([]string{recon.FormatParquet}, formats...)
}

// processOwner names this process uniquely among those sharing a store:
// host and PID say where to look, the random part tells a restarted process
// with a recycled PID from its predecessor.
func processOwner() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "unknown-host"
	}
	b := make([]byte, 4)
	rand.Read(b)
	return fmt.Sprintf("%s:%d:%s", host, os.Getpid(), hex.EncodeToString(b))
}

// Owner is the name this process's claims carry in the store.
func (p *Pool) Owner() string { return p.cfg.Owner }

// OutDir is where run id's outputs are written under dataDir. The API serves
// files from the same place.
func OutDir(dataDir, id string) string {
	return filepath.Join(dataDir, "runs", id)
}

// Start launches the workers and the reaper. Calling it again does nothing.
func (p *Pool) Start() {
	p.startOnce.Do(func() {
		for i := 0; i < p.cfg.Workers; i++ {
			p.workers.Add(1)
			go p.worker()
		}
	})
	p.StartReaper()
}

// StartReaper launches only the reaper, which settles runs whose lease
// expired every ReapInterval: a process that executes no runs (the web
// role) still notices runs whose process died. Calling it again does
// nothing.
func (p *Pool) StartReaper() {
	p.reaperOnce.Do(func() {
		p.reaper.Add(1)
		go p.reap()
	})
}

// Reap settles once the runs whose lease expired: each is failed with
// InterruptedReason (cancelled when a cancel was requested), or queued again
// when RetryInterrupted allows; the outputs of the runs it ended are
// removed, since their files must never be mistaken for results. The server
// calls it at start, before any worker claims; the reaper calls it
// periodically. A run a live process holds is never touched.
func (p *Pool) Reap(ctx context.Context) error {
	attempts := 1
	if p.cfg.RetryInterrupted {
		attempts = 2
	}
	ended, requeued, err := p.store.ExpireLeases(ctx, attempts, InterruptedReason)
	for _, id := range ended {
		if rmErr := os.RemoveAll(OutDir(p.cfg.DataDir, id)); rmErr != nil {
			p.log.Warn("remove outputs of an interrupted run", "run", id, "err", rmErr)
		}
		p.hub.notify(id)
	}
	for _, id := range requeued {
		p.hub.notify(id)
	}
	if len(ended) > 0 {
		p.log.Warn("runs whose process stopped renewing their lease ended", "runs", ended)
	}
	if len(requeued) > 0 {
		p.log.Warn("runs whose process stopped renewing their lease queued again", "runs", requeued)
		p.Wake()
	}
	if err != nil {
		return fmt.Errorf("settle runs with an expired lease: %w", err)
	}
	return nil
}

// reap runs Reap every ReapInterval until Shutdown.
func (p *Pool) reap() {
	defer p.reaper.Done()
	tick := time.NewTicker(p.cfg.ReapInterval)
	defer tick.Stop()
	for {
		select {
		case <-p.stop:
			return
		case <-tick.C:
		}
		ctx, cancel := context.WithTimeout(p.runCtx, p.cfg.ReapInterval)
		if err := p.Reap(ctx); err != nil && p.runCtx.Err() == nil {
			p.log.Error("reap expired leases", "err", err)
		}
		cancel()
	}
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
		p.reaper.Wait()
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
		asked := time.Now()
		rec, err := p.store.ClaimRun(p.runCtx, p.cfg.Owner, p.cfg.LeaseTTL)
		switch {
		case err == nil:
			// Another run may be queued behind this one: let an idle
			// worker look too.
			p.Wake()
			p.execute(rec, asked)
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

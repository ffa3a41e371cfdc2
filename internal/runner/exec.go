package runner

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/debug"
	"sync"
	"time"

	"github.com/kalla-recon/kalla/internal/kalla"
	"github.com/kalla-recon/kalla/internal/recon"
)

// finishTimeout bounds each attempt to record a run's outcome; the run's
// own context may be cancelled by then, so the store calls get their own.
const finishTimeout = 10 * time.Second

// execute runs one claimed run to its end and records the outcome. It never
// panics the worker: a panic in the engine is recorded as a failure.
// claimed is when the claim was asked for.
func (p *Pool) execute(rec *kalla.RunRecord, claimed time.Time) {
	ctx, cancel := context.WithCancelCause(p.runCtx)
	p.mu.Lock()
	p.running[rec.ID] = cancel
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		delete(p.running, rec.ID)
		p.mu.Unlock()
		cancel(nil)
	}()
	log := p.log.With("run", rec.ID, "recipe", rec.RecipeID)
	log.Info("run started")
	p.cfg.Metrics.runStarted()
	p.hub.notify(rec.ID)
	// Timed by this process's clock: a shared store's may be skewed.
	start := time.Now()

	if rec.Attempts > 1 {
		// What an earlier attempt left must not mix with this one's files.
		os.RemoveAll(OutDir(p.cfg.DataDir, rec.ID))
	}
	stopHeartbeat := p.heartbeat(rec, claimed, cancel, log)
	// The run's own deadline is a child of ctx, so that a cancel or a
	// shutdown (ctx's causes) is still told from running too long.
	runCtx := ctx
	if d := p.cfg.MaxRunDuration; d > 0 {
		var stop context.CancelFunc
		runCtx, stop = context.WithTimeoutCause(ctx, d, kalla.Errorf(kalla.EUNAVAILABLE,
			"the run took longer than its maximum duration of %s and was stopped", d))
		defer stop()
	}
	tr := &tracker{pool: p, rec: rec, cancel: cancel, sender: p.cb.sender(rec)}
	tr.start()
	sum, err := p.safeRun(runCtx, rec, tr)
	tr.stop()
	stopHeartbeat()

	if ctx.Err() != nil && errors.Is(context.Cause(ctx), ErrLeaseLost) {
		// The run is no longer this process's: whoever took it over
		// records its outcome, and its files are theirs to keep or remove.
		log.Warn("run given up: its lease was lost", "owner", p.cfg.Owner)
		p.cfg.Metrics.runFinished(kalla.RunFailed, time.Since(start))
		p.hub.notify(rec.ID)
		return
	}
	status, msg, code := kalla.RunCompleted, "", ""
	switch {
	case err == nil:
	case ctx.Err() == nil && runCtx.Err() != nil:
		status, msg, code = kalla.RunFailed, kalla.ErrorMessage(context.Cause(runCtx)), kalla.ErrorCode(context.Cause(runCtx))
		sum = nil
	case ctx.Err() != nil:
		cause := context.Cause(ctx)
		if errors.Is(cause, ErrCancelled) {
			status, msg = kalla.RunCancelled, ErrCancelled.Error()
		} else {
			status, msg, code = kalla.RunFailed, ErrShutdown.Error(), kalla.EUNAVAILABLE
		}
		sum = nil
	default:
		status, msg, code = kalla.RunFailed, failureMessage(err, rec), failureCode(err)
		sum = nil
	}
	if status != kalla.RunCompleted {
		// Partial outputs must never look finished; the API serves files
		// of completed runs only, and this keeps the disk clean too.
		if rmErr := os.RemoveAll(OutDir(p.cfg.DataDir, rec.ID)); rmErr != nil {
			log.Warn("remove outputs of unfinished run", "err", rmErr)
		}
	}
	if !p.finish(rec, status, sum, code, msg, log) {
		// The lease was taken over just before the final write: the
		// outcome recorded stands, and files of a run that is not
		// completed must go.
		if now, err := p.store.GetRun(context.Background(), rec.ID); err == nil && now.Status.Done() && now.Status != kalla.RunCompleted {
			os.RemoveAll(OutDir(p.cfg.DataDir, rec.ID))
		}
		p.cfg.Metrics.runFinished(kalla.RunFailed, time.Since(start))
		p.hub.notify(rec.ID)
		return
	}
	p.cfg.Metrics.runFinished(status, time.Since(start))
	if status == kalla.RunCompleted {
		p.completed(rec, log)
	}
	p.hub.notify(rec.ID)
	switch status {
	case kalla.RunCompleted:
		log.Info("run completed", "matched", sum.MatchedCount, "unmatched_left", sum.UnmatchedLeftCount,
			"unmatched_right", sum.UnmatchedRightCount, "took", time.Since(start).Round(time.Millisecond))
		tr.sender.complete(sum)
	case kalla.RunCancelled:
		log.Info("run cancelled")
		tr.sender.fail(status, code, msg, tr.stage())
	default:
		switch {
		case ctx.Err() != nil:
			log.Warn("run interrupted by shutdown")
		case runCtx.Err() != nil:
			log.Warn("run stopped at its maximum duration", "reason", msg)
		case kalla.ErrorCode(err) == kalla.EINTERNAL && !errors.Is(err, recon.ErrRecipe):
			log.Error("run failed", "err", msg)
		default:
			log.Info("run failed", "reason", msg)
		}
		tr.sender.fail(status, code, msg, tr.stage())
	}
}

// completed calls Config.OnCompleted with the run as recorded.
func (p *Pool) completed(rec *kalla.RunRecord, log *slog.Logger) {
	if p.cfg.OnCompleted == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	done, err := p.store.GetRun(ctx, rec.ID)
	if err == nil {
		err = p.cfg.OnCompleted(ctx, done, OutDir(p.cfg.DataDir, rec.ID))
	}
	if err != nil {
		log.Error("record exceptions of completed run", "err", err)
	}
}

// finish records the outcome under the run's lease, retrying briefly:
// losing it would leave the run "running" until its lease expires. It
// reports whether the outcome was recorded; false when the lease was taken
// over (the run's record is someone else's now) or the store stayed
// unreachable.
func (p *Pool) finish(rec *kalla.RunRecord, status kalla.RunStatus, sum *kalla.Summary, code, msg string, log *slog.Logger) bool {
	var err error
	for attempt := 0; attempt < 3; attempt++ {
		ctx, cancel := context.WithTimeout(context.Background(), finishTimeout)
		err = p.store.FinishRunCode(ctx, rec.ID, rec.Lease(), status, sum, code, msg)
		cancel()
		if err == nil {
			return true
		}
		if c := kalla.ErrorCode(err); c == kalla.ECONFLICT || c == kalla.ENOTFOUND {
			// Someone else settled the run (its lease expired and
			// another process took it over): its record stands.
			break
		}
		time.Sleep(time.Duration(attempt+1) * 500 * time.Millisecond)
	}
	log.Error("record run outcome", "status", status, "err", err)
	return false
}

// heartbeat renews the run's lease every third of LeaseTTL until the
// returned function is called (which waits for it to stop). When the store
// says the lease is gone, or no renewal has succeeded for a whole LeaseTTL
// (by then another process may have taken the run over), it cancels the run
// with ErrLeaseLost: this process must stop working on a run that is no
// longer its own.
func (p *Pool) heartbeat(rec *kalla.RunRecord, claimed time.Time, cancel context.CancelCauseFunc, log *slog.Logger) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		ttl := p.cfg.LeaseTTL
		tick := time.NewTicker(ttl / 3)
		defer tick.Stop()
		// Count from when the claim was asked for: the store's expiry
		// is no earlier, so this process gives up no later than the
		// lease ends (clock skew between processes aside).
		renewed := claimed
		for {
			select {
			case <-done:
				return
			case <-tick.C:
			}
			sent := time.Now()
			ctx, cancelCall := context.WithTimeout(context.Background(), ttl/3)
			err := p.store.RenewLease(ctx, rec.ID, rec.Lease(), ttl)
			cancelCall()
			switch {
			case err == nil:
				renewed = sent
			case kalla.ErrorCode(err) == kalla.ECONFLICT || kalla.ErrorCode(err) == kalla.ENOTFOUND:
				log.Warn("run lease taken over", "err", err)
				cancel(ErrLeaseLost)
				return
			case time.Since(renewed) >= ttl:
				log.Error("run lease not renewed for a whole lease: giving the run up", "err", err)
				cancel(ErrLeaseLost)
				return
			default:
				log.Warn("renew run lease", "err", err)
			}
		}
	}()
	return func() {
		close(done)
		wg.Wait()
	}
}

// safeRun is run with a recovered panic turned into an error.
func (p *Pool) safeRun(ctx context.Context, rec *kalla.RunRecord, tr *tracker) (sum *kalla.Summary, err error) {
	defer func() {
		if r := recover(); r != nil {
			p.log.Error("run panicked", "run", rec.ID, "panic", r, "stack", string(debug.Stack()))
			err = fmt.Errorf("run panicked: %v", r)
		}
	}()
	return p.run(ctx, rec, tr)
}

// run executes the recipe into the run's folder through the
// reconciliation service, which opens the sources and the engine.
func (p *Pool) run(ctx context.Context, rec *kalla.RunRecord, tr *tracker) (*kalla.Summary, error) {
	recipe := rec.Recipe
	var lf, rf []kalla.Filter
	if rec.Filters != nil {
		lf, rf = rec.Filters.Left, rec.Filters.Right
	}
	// Opening and counting a database source can take long (a slow
	// server, a view that computes its rows): the run is reading its
	// sources from here on, and says so, rather than looking not started.
	tr.event(recon.Event{Stage: recon.StageLeft})
	tr.event(recon.Event{Stage: recon.StageRight})
	// The engine was chosen (and checked) when the run was queued; the
	// pool runs it wherever the service says, knowing no engine itself.
	return p.recon.Run(ctx, rec.Engine, recon.Job{
		Recipe:       &recipe,
		LeftFilters:  lf,
		RightFilters: rf,
		CountTotals:  true,
		Out:          OutDir(p.cfg.DataDir, rec.ID),
		Formats:      p.cfg.Formats,
		// The results page shows each pair as its two whole records.
		Records:  true,
		RunID:    rec.ID,
		Progress: tr.event,
		// The engine spills to a folder of its own in there, locked
		// while this process lives: a process starting on the same
		// (perhaps shared) data folder removes only a dead one's.
		TempDir: filepath.Join(p.cfg.DataDir, "tmp"),
	})
}

// failureMessage is the reason a failed run records: the user-facing
// message of a classified error, the error text otherwise (a run's failure
// must say what went wrong), with every secret of the run's source URIs
// removed either way.
func failureMessage(err error, rec *kalla.RunRecord) string {
	var ke *kalla.Error
	msg := err.Error()
	if errors.As(err, &ke) {
		msg = kalla.ErrorMessage(err)
	}
	return kalla.Redact(msg)
}

// failureCode is the error code a failed run records: the classified
// error's, kalla.EINVALID for a recipe error that carries none.
func failureCode(err error) string {
	code := kalla.ErrorCode(err)
	if code == kalla.EINTERNAL && errors.Is(err, recon.ErrRecipe) {
		return kalla.EINVALID
	}
	return code
}

// tracker carries a run's progress from engine events to the store, the
// subscribers and the callback URL, at most once per ProgressInterval, and
// polls the store for a cancel requested through another process.
type tracker struct {
	pool   *Pool
	rec    *kalla.RunRecord
	cancel context.CancelCauseFunc
	sender *sender

	mu     sync.Mutex
	cur    progress
	seq    uint64 // bumped by every event
	staged [2]int64
	// sideDone marks the sides whose staging ended. Both sides stage at
	// once, so events of the two interleave: the stage recorded while
	// staging is the first side still being read, never merely the side
	// heard from last (a slow left source was shown as "reading the right
	// source" once the quick right one had finished).
	sideDone [2]bool
	done     chan struct{}
	finished sync.WaitGroup
}

// progress is a run's position.
type progress struct {
	Stage    string
	Fraction float64
	Rows     [2]int64
}

func (t *tracker) event(ev recon.Event) {
	t.mu.Lock()
	t.cur.Stage, t.cur.Fraction = ev.Stage, max(ev.Fraction, t.cur.Fraction)
	var side string
	var delta int64
	switch ev.Stage {
	case recon.StageLeft, recon.StageRight:
		i := 0
		side = "left"
		if ev.Stage == recon.StageRight {
			i, side = 1, "right"
		}
		delta = ev.Rows - t.staged[i]
		t.cur.Rows[i], t.staged[i] = ev.Rows, max(ev.Rows, t.staged[i])
		t.sideDone[i] = t.sideDone[i] || ev.Done
		switch {
		case !t.sideDone[0]:
			t.cur.Stage = recon.StageLeft
		case !t.sideDone[1]:
			t.cur.Stage = recon.StageRight
		}
	}
	t.seq++
	t.mu.Unlock()
	if delta > 0 {
		t.pool.cfg.Metrics.rowsStaged(side, delta)
	}
}

func (t *tracker) stage() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.cur.Stage
}

func (t *tracker) start() {
	t.done = make(chan struct{})
	t.finished.Add(1)
	go t.loop()
}

// stop ends the loop after one last flush, so that no progress write can
// land after the run's final record.
func (t *tracker) stop() {
	close(t.done)
	t.finished.Wait()
}

func (t *tracker) loop() {
	defer t.finished.Done()
	p := t.pool
	tick := time.NewTicker(p.cfg.ProgressInterval)
	defer tick.Stop()
	var written uint64
	lastCheck := time.Now()
	for {
		stopping := false
		select {
		case <-t.done:
			stopping = true
		case <-tick.C:
		}
		t.mu.Lock()
		cur, seq := t.cur, t.seq
		t.mu.Unlock()
		if seq != written {
			written = seq
			ctx, cancel := context.WithTimeout(context.Background(), finishTimeout)
			err := p.store.UpdateRunProgress(ctx, t.rec.ID, t.rec.Lease(), cur.Stage, cur.Fraction, cur.Rows[0], cur.Rows[1])
			cancel()
			if err != nil {
				p.log.Warn("record run progress", "run", t.rec.ID, "err", err)
			}
			p.hub.notify(t.rec.ID)
			t.sender.progress(cur, t.rec.Recipe)
		}
		if stopping {
			return
		}
		if time.Since(lastCheck) >= p.cfg.CancelCheckInterval {
			lastCheck = time.Now()
			ctx, cancel := context.WithTimeout(context.Background(), finishTimeout)
			r, err := p.store.GetRun(ctx, t.rec.ID)
			cancel()
			if err == nil && r.CancelRequested {
				t.cancel(ErrCancelled)
			}
		}
	}
}

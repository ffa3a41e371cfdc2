package connector

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kalla-recon/kalla/internal/kalla"
)

// DefaultIdleTimeout is how long a source may send nothing (no row, no
// byte) before its read is stopped as stalled.
const DefaultIdleTimeout = 2 * time.Minute

// Watchdog stops a read that makes no progress: a frozen database backend
// or a server that keeps a connection open and sends nothing would hold a
// run forever, since the server's own timeouts do not fire when it is the
// one that froze. The reader calls Beat on each row or chunk; Pause covers
// work the source does not own (DuckDB scanning a local file).
type Watchdog struct {
	beats  atomic.Int64
	paused atomic.Int32
	stop   chan struct{}
	once   sync.Once
	cancel context.CancelCauseFunc
}

// Watch returns a context that is cancelled with stalled as its cause
// (context.Cause) once no Beat came for idle, and the watchdog; Stop it
// when the read ends. idle <= 0 means DefaultIdleTimeout.
func Watch(ctx context.Context, idle time.Duration, stalled error) (context.Context, *Watchdog) {
	if idle <= 0 {
		idle = DefaultIdleTimeout
	}
	wctx, cancel := context.WithCancelCause(ctx)
	w := &Watchdog{stop: make(chan struct{}), cancel: cancel}
	wctx = context.WithValue(wctx, watchdogKey{}, w)
	go func() {
		t := time.NewTicker(max(idle/8, time.Millisecond))
		defer t.Stop()
		last, since := w.beats.Load(), time.Now()
		for {
			select {
			case <-w.stop:
				return
			case <-wctx.Done():
				return
			case now := <-t.C:
				if b := w.beats.Load(); b != last || w.paused.Load() > 0 {
					last, since = b, now
				} else if now.Sub(since) >= idle {
					cancel(stalled)
					return
				}
			}
		}
	}()
	return wctx, w
}

type watchdogKey struct{}

// WatchdogOf returns the watchdog of a context from Watch or WithIdle, for
// the code that sees the rows arrive; nil when there is none.
func WatchdogOf(ctx context.Context) *Watchdog {
	w, _ := ctx.Value(watchdogKey{}).(*Watchdog)
	return w
}

// Beat records progress: a row or a chunk arrived.
func (w *Watchdog) Beat() {
	if w != nil {
		w.beats.Add(1)
	}
}

// Pause stops the clock until the returned function is called: a full
// idle time starts again after it.
func (w *Watchdog) Pause() (resume func()) {
	if w == nil {
		return func() {}
	}
	w.paused.Add(1)
	return func() { w.paused.Add(-1) }
}

// Stop ends the watchdog and releases its context. It is idempotent.
func (w *Watchdog) Stop() {
	w.once.Do(func() {
		close(w.stop)
		w.cancel(context.Canceled)
	})
}

// StallError is the error of a source that sent nothing for idle: a
// *kalla.SourceError of kind SourceStalled whose code is EUNAVAILABLE.
// name is the redacted source, or empty when the caller names it.
func StallError(name string, idle time.Duration) error {
	what := "the source"
	if name != "" {
		what = "source " + name
	}
	return &kalla.SourceError{Kind: kalla.SourceStalled, Err: kalla.Errorf(kalla.EUNAVAILABLE,
		"%s sent nothing for %s, so its read was stopped: the server or the network is frozen (if the source is only slow, raise the source idle timeout)", what, idle)}
}

// Stalled returns the stall error that cancelled ctx (a context from
// Watch), or nil when ctx was not stopped by its watchdog.
func Stalled(ctx context.Context) error {
	var se *kalla.SourceError
	if cause := context.Cause(ctx); errors.As(cause, &se) && se.Kind == kalla.SourceStalled {
		return cause
	}
	return nil
}

// WithIdle runs f, a read that returns nothing until it is done (a count,
// a catalog query), under a watchdog that stops it after idle: the error
// is then the stall error, never the bare cancellation f saw. idle == 0
// means DefaultIdleTimeout; a negative idle runs f with no watchdog.
func WithIdle(ctx context.Context, idle time.Duration, f func(ctx context.Context) error) error {
	if idle < 0 {
		return f(ctx)
	}
	if idle == 0 {
		idle = DefaultIdleTimeout
	}
	wctx, wd := Watch(ctx, idle, StallError("", idle))
	err := f(wctx)
	wd.Stop()
	if err != nil && ctx.Err() == nil {
		if stall := Stalled(wctx); stall != nil {
			return stall
		}
	}
	return err
}

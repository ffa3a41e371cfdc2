package engine

import (
	"context"
	"errors"
	"sync"

	"github.com/kalla-recon/kalla/internal/connector"
)

// proofList holds the proofs the sources of one staging handed over
// (connector.Prover): a CSV file staged on what its first rows show, its
// whole-file scan running on otherwise idle cores while the run matches
// and writes.
type proofList struct {
	mu   sync.Mutex
	list []func(context.Context) error
}

func (l *proofList) add(prove func(context.Context) error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.list = append(l.list, prove)
}

// prove calls every proof not called yet, in turn, and returns the first
// error. Once one has failed the others are called with a cancelled
// context, which stops their scans: the run stages again.
func (l *proofList) prove(ctx context.Context) error {
	if l == nil {
		return nil
	}
	l.mu.Lock()
	list := l.list
	l.list = nil
	l.mu.Unlock()
	var first error
	for _, prove := range list {
		c := ctx
		if first != nil {
			c = cancelled(ctx)
		}
		if err := prove(c); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// settle ends the proofs of a run attempt that returned err. It returns
// an error wrapping connector.ErrUnproven when the attempt must be made
// again, staging without proofs: a proof failed, whether at the end of
// the attempt (err) or now. An attempt that failed otherwise may have
// failed because of what a source assumed, so its proofs are waited for;
// unless the run is cancelled, which only stops them.
func (l *proofList) settle(ctx context.Context, err error) error {
	if l == nil {
		return nil
	}
	if errors.Is(err, connector.ErrUnproven) {
		l.prove(cancelled(ctx))
		return err
	}
	if ctx.Err() != nil {
		l.prove(ctx)
		return nil
	}
	if perr := l.prove(ctx); errors.Is(perr, connector.ErrUnproven) {
		return perr
	}
	return nil
}

// cancelled is ctx, cancelled.
func cancelled(ctx context.Context) context.Context {
	c, cancel := context.WithCancel(ctx)
	cancel()
	return c
}

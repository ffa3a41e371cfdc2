package connector_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/kalla-recon/kalla/internal/connector"
	"github.com/kalla-recon/kalla/internal/kalla"
)

const idle = 50 * time.Millisecond

// TestWatchdog: no beat for idle stops the context with a stall error;
// beats and pauses keep it alive; Stop and a parent's cancel are not stalls.
func TestWatchdog(t *testing.T) {
	t.Run("silent", func(t *testing.T) {
		ctx, wd := connector.Watch(context.Background(), idle, connector.StallError("db", idle))
		defer wd.Stop()
		select {
		case <-ctx.Done():
		case <-time.After(10 * time.Second):
			t.Fatal("a silent read was not stopped")
		}
		var se *kalla.SourceError
		if err := connector.Stalled(ctx); !errors.As(err, &se) || se.Kind != kalla.SourceStalled || kalla.ErrorCode(err) != kalla.EUNAVAILABLE {
			t.Fatalf("Stalled: %v", err)
		}
	})
	for _, keep := range []string{"beats", "paused"} {
		t.Run(keep, func(t *testing.T) {
			// Longer than idle: a beat every tenth of it must never come
			// late by a whole idle time, even on a loaded 2-core machine.
			const long = 10 * idle
			ctx, wd := connector.Watch(context.Background(), long, connector.StallError("db", long))
			defer wd.Stop()
			resume := func() {}
			if keep == "paused" {
				resume = wd.Pause()
			}
			// Three idle times with progress (or a pause) must not stop it.
			for end := time.Now().Add(3 * long); time.Now().Before(end); time.Sleep(long / 10) {
				if keep == "beats" {
					wd.Beat()
				}
				if ctx.Err() != nil {
					t.Fatalf("stopped while %s: %v", keep, context.Cause(ctx))
				}
			}
			resume()
			<-ctx.Done()
			if connector.Stalled(ctx) == nil {
				t.Fatalf("after the %s ended: %v", keep, context.Cause(ctx))
			}
		})
	}
	t.Run("stop and parent", func(t *testing.T) {
		ctx, wd := connector.Watch(context.Background(), idle, connector.StallError("db", idle))
		wd.Stop()
		wd.Stop()
		if ctx.Err() == nil || connector.Stalled(ctx) != nil {
			t.Fatalf("after Stop: %v, stalled %v", ctx.Err(), connector.Stalled(ctx))
		}
		parent, cancel := context.WithCancel(context.Background())
		err := connector.WithIdle(parent, idle, func(ctx context.Context) error {
			cancel()
			<-ctx.Done()
			return ctx.Err()
		})
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("WithIdle under a cancelled parent: %v", err)
		}
		err = connector.WithIdle(context.Background(), idle, func(ctx context.Context) error {
			<-ctx.Done()
			return ctx.Err()
		})
		if kalla.ErrorCode(err) != kalla.EUNAVAILABLE || connector.WatchdogOf(context.Background()) != nil {
			t.Fatalf("WithIdle on a silent read: %v", err)
		}
	})
}

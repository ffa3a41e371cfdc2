package sources_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/kalla-recon/kalla/internal/kalla"
	"github.com/kalla-recon/kalla/internal/sources"
	"github.com/kalla-recon/kalla/internal/testenv"
)

// TestOpenFailures: a source that cannot be opened comes back as a plain
// nil (a typed nil in the interface made `recipe check` panic) and a
// *kalla.SourceError naming the alias, whose kind callers test.
func TestOpenFailures(t *testing.T) {
	mgr := sources.New(sources.Config{})
	defer mgr.Close()
	for _, b := range testenv.BrokenSources(t, t.TempDir()) {
		t.Run(b.Name, func(t *testing.T) {
			src, err := mgr.Open(context.Background(), kalla.SourceSpec{Alias: "ledger", URI: b.URI}, "")
			if src != nil || err == nil {
				t.Fatalf("Open: source %#v, error %v", src, err)
			}
			var se *kalla.SourceError
			if !errors.As(err, &se) || se.Kind != b.Kind || se.Alias != "ledger" {
				t.Fatalf("Open: %T %v, want a SourceError of kind %s for ledger", err, err, b.Kind)
			}
			msg := kalla.ErrorMessage(err)
			for _, w := range append([]string{"source ledger: "}, b.Want...) {
				if !strings.Contains(msg, w) {
					t.Errorf("message %q lacks %q", msg, w)
				}
			}
			if strings.Contains(msg, "secret") {
				t.Errorf("message shows the password: %q", msg)
			}
		})
	}
}

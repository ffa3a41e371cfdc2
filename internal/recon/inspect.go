package recon

import (
	"context"

	"github.com/kalla-recon/kalla/internal/connector"
	"github.com/kalla-recon/kalla/internal/engine"
	"github.com/kalla-recon/kalla/internal/kalla"
)

// Inspect stages two already opened sources in a fresh embedded DuckDB
// (configured as the service's runs are) and hands the Inspection to fn,
// closing the database after. Learning a rule from people's manual matches
// uses it on a run's own output files, which must not be read through the
// source opener (its roots confine user-given paths, and the run's files
// are the evidence, not a source).
func (s *Service) Inspect(ctx context.Context, leftSpec, rightSpec kalla.SourceSpec, left, right connector.Source, fn func(*engine.Inspection) error) error {
	d := &duckEngine{s: s}
	eng, closeDB, err := d.openDB(ctx, "", nil)
	if err != nil {
		return err
	}
	defer closeDB()
	in, err := eng.Inspect(ctx, leftSpec, rightSpec, left, right)
	if err != nil {
		return err
	}
	return fn(in)
}

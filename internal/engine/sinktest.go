package engine

import "github.com/kalla-recon/kalla/internal/connector"

// Sink returns the sink a run stages a source through, writing to table
// (an unquoted name) in this engine. It exists so that connector tests
// (internal/connector/conformance) can check staging against the real
// appender and DuckDB types instead of a fake; runs use Execute.
func (e *Engine) Sink(table string) connector.Sink {
	return &sink{e: e, table: table}
}

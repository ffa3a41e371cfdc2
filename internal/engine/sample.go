package engine

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"strconv"

	"github.com/kalla-recon/kalla/internal/connector"
	"github.com/kalla-recon/kalla/internal/kalla"
)

// errSampleFull stops a source's staging once the sample is complete.
var errSampleFull = errors.New("sample complete")

// sampleSource stages only the first limit rows of a source. Database
// sources are stopped after limit rows (their query is cancelled, so a
// large table is not read to the end); file sources are read by DuckDB in
// one scan and trimmed to their first limit rows, in file order.
type sampleSource struct {
	connector.Source
	limit int64
}

// Stage stages at most s.limit rows matching filters.
func (s *sampleSource) Stage(ctx context.Context, filters []kalla.Filter, sink connector.Sink) (int64, error) {
	ss := &sampleSink{Sink: sink, limit: s.limit}
	n, err := s.Source.Stage(ctx, filters, ss)
	if ss.full {
		// The source failed only because the sample was complete: the
		// appender has flushed the first limit rows.
		return s.limit, nil
	}
	if err != nil {
		return n, err
	}
	if n <= s.limit {
		return n, nil
	}
	t := sink.Table()
	if _, err := sink.ExecContext(ctx, "DELETE FROM "+t+" WHERE rowid NOT IN (SELECT rowid FROM "+t+" ORDER BY rowid LIMIT "+strconv.FormatInt(s.limit, 10)+")"); err != nil {
		return 0, fmt.Errorf("trim sample: %w", err)
	}
	return s.limit, nil
}

// sampleSink passes at most limit appended rows to the engine's sink.
type sampleSink struct {
	connector.Sink
	limit int64
	full  bool
}

// Append appends the first limit rows fill writes, then stops fill.
func (s *sampleSink) Append(ctx context.Context, cols []kalla.Column, fill func(w connector.RowWriter) error) (int64, error) {
	return s.Sink.Append(ctx, cols, func(w connector.RowWriter) error {
		return fill(&sampleWriter{w: w, s: s, left: s.limit})
	})
}

type sampleWriter struct {
	w    connector.RowWriter
	s    *sampleSink
	left int64
}

func (w *sampleWriter) WriteRow(values ...driver.Value) error {
	if w.left <= 0 {
		w.s.full = true
		return errSampleFull
	}
	w.left--
	return w.w.WriteRow(values...)
}

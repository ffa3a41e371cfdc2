package cli

import (
	"slices"
	"testing"

	"github.com/kalla-recon/kalla/internal/kalla"
)

// TestOutputNames: a DuckDB run's files are listed by name; a Spark run's
// folders once each with their part files counted, and Hadoop's .crc and
// _SUCCESS files (format "meta", checksummed in the summary) not at all.
func TestOutputNames(t *testing.T) {
	outs := []kalla.OutputFile{
		{Name: "matched.parquet/.part-00000-a.snappy.parquet.crc", Table: "matched", Format: "meta"},
		{Name: "matched.parquet/part-00000-a.snappy.parquet", Table: "matched", Format: "parquet"},
		{Name: "matched.parquet/part-00001-a.snappy.parquet", Table: "matched", Format: "parquet"},
		{Name: "matched.parquet/_SUCCESS", Table: "matched", Format: "meta"},
		{Name: "unmatched_left.parquet/part-00000-b.snappy.parquet", Table: "unmatched_left", Format: "parquet"},
		{Name: "unmatched_right.csv", Table: "unmatched_right", Format: "csv"},
	}
	got := outputNames(outs)
	want := []string{"matched.parquet/ (2 parts)", "unmatched_left.parquet/ (1 part)", "unmatched_right.csv"}
	if !slices.Equal(got, want) {
		t.Errorf("outputNames = %q, want %q", got, want)
	}
}

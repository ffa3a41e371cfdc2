package bench

import (
	"strings"
	"testing"
	"time"

	"github.com/kalla-recon/kalla/internal/gen"
	"github.com/kalla-recon/kalla/internal/kalla"
)

func TestMedian(t *testing.T) {
	for _, c := range []struct {
		in   []time.Duration
		want time.Duration
	}{{nil, 0}, {[]time.Duration{3}, 3}, {[]time.Duration{5, 1, 3}, 3}, {[]time.Duration{4, 1, 3, 2}, 2}} {
		if got := median(c.in); got != c.want {
			t.Errorf("median(%v) = %v, want %v", c.in, got, c.want)
		}
	}
}

func TestThousands(t *testing.T) {
	for n, want := range map[int]string{0: "0", 999: "999", 1000: "1,000", 1050000: "1,050,000"} {
		if got := thousands(n); got != want {
			t.Errorf("thousands(%d) = %q, want %q", n, got, want)
		}
	}
}

func TestChecks(t *testing.T) {
	tr := gen.Truth{Invoices: 10, Payments: 11, Exact: 5, Tolerance: 2, Split: 1, OrphanInvoices: 2, StrayPayments: 2}
	good := &kalla.Summary{Status: "completed", LeftCount: 10, RightCount: 11, MatchedCount: 9,
		MatchedLeftRecords: 8, MatchedRightRecords: 9, UnmatchedLeftCount: 2, UnmatchedRightCount: 2,
		Outputs: []kalla.OutputFile{{Name: "matched.parquet", Table: "matched", Rows: 9},
			{Name: "unmatched_left.parquet", Table: "unmatched_left", Rows: 2},
			{Name: "unmatched_right.parquet", Table: "unmatched_right", Rows: 2}}}
	if err := checkKalla(good, tr); err != nil {
		t.Fatal(err)
	}
	bad := *good
	bad.MatchedLeftRecords = 7
	bad.Outputs = bad.Outputs[:2]
	err := checkKalla(&bad, tr)
	if err == nil || !strings.Contains(err.Error(), "matched_left_records = 7") || !strings.Contains(err.Error(), "no output for unmatched_right") {
		t.Fatalf("checkKalla(bad) = %v", err)
	}
	// Spark writes a folder of parts per table: rows add up per table.
	parts := *good
	parts.Outputs = []kalla.OutputFile{{Name: "matched.parquet/part-0.parquet", Table: "matched", Format: "parquet", Rows: 4},
		{Name: "matched.parquet/part-1.parquet", Table: "matched", Format: "parquet", Rows: 5},
		{Name: "matched.parquet/.part-1.parquet.crc", Table: "matched", Format: "meta"},
		{Name: "unmatched_left.parquet/part-0.parquet", Table: "unmatched_left", Format: "parquet", Rows: 2},
		{Name: "unmatched_right.parquet/part-0.parquet", Table: "unmatched_right", Format: "parquet", Rows: 2}}
	if err := checkKalla(&parts, tr); err != nil {
		t.Fatal(err)
	}
	parts.Outputs = parts.Outputs[1:]
	if err := checkKalla(&parts, tr); err == nil || !strings.Contains(err.Error(), "rows of matched.parquet = 5") {
		t.Fatalf("checkKalla(a missing part) = %v", err)
	}
	p := &plainResult{Invoices: 10, Payments: 11, MatchedPairs: 9, UnmatchedLeft: 2, UnmatchedRight: 2}
	if err := checkPlain(p, tr); err != nil {
		t.Fatal(err)
	}
	p.UnmatchedRight = 3
	if err := checkPlain(p, tr); err == nil {
		t.Fatal("checkPlain accepted a wrong count")
	}
}

package exceptions

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/kalla-recon/kalla/internal/kalla"
)

// TestSparkPartFiles: a table the Spark engine wrote as a folder of part
// files is read whole, parts in name order, and Spark's bookkeeping files
// are not read as the table (recording only the first part lost records).
func TestSparkPartFiles(t *testing.T) {
	dir := t.TempDir()
	folder := filepath.Join(dir, "unmatched_left.parquet")
	if err := os.Mkdir(folder, 0o755); err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("duckdb", "")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	sum := &kalla.Summary{}
	// Listed out of order, as nothing promises the summary's order.
	for _, part := range []int{1, 0} {
		name := fmt.Sprintf("unmatched_left.parquet/part-%05d.parquet", part)
		q := fmt.Sprintf("COPY (SELECT 'INV-%d' || i AS invoice_id FROM range(2) t(i)) TO '%s' (FORMAT parquet)", part, filepath.Join(dir, name))
		if _, err := db.Exec(q); err != nil {
			t.Fatal(err)
		}
		sum.Outputs = append(sum.Outputs, kalla.OutputFile{Name: name, Table: "unmatched_left", Format: kalla.FormatParquet})
	}
	if err := os.WriteFile(filepath.Join(folder, "_meta.crc"), []byte("not parquet"), 0o644); err != nil {
		t.Fatal(err)
	}
	sum.Outputs = append(sum.Outputs, kalla.OutputFile{Name: "unmatched_left.parquet/_meta.crc", Table: "unmatched_left", Format: "meta"})

	paths, format, ok := outputFile(sum, dir, "unmatched_left")
	if !ok || format != kalla.FormatParquet || len(paths) != 2 {
		t.Fatalf("outputFile: %v %q %v", paths, format, ok)
	}
	tb, err := readOutput(context.Background(), db, paths, format)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range tb.rows {
		got = append(got, tb.get(r, "invoice_id"))
	}
	if want := []string{"INV-00", "INV-01", "INV-10", "INV-11"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("records %q, want %q", got, want)
	}
}

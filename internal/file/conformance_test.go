package file_test

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"strings"
	"testing"

	_ "github.com/duckdb/duckdb-go/v2"

	"github.com/kalla-recon/kalla/internal/connector"
	"github.com/kalla-recon/kalla/internal/connector/conformance"
	"github.com/kalla-recon/kalla/internal/dialect"
	"github.com/kalla-recon/kalla/internal/file"
)

func TestConformanceCSV(t *testing.T) {
	conformance.Run(t, func(t *testing.T, fx conformance.Fixture) connector.Source {
		p := filepath.Join(t.TempDir(), fx.Table+".csv")
		if err := os.WriteFile(p, fx.CSV(), 0o644); err != nil {
			t.Fatal(err)
		}
		src, err := file.Open(context.Background(), p, file.Options{})
		if err != nil {
			t.Fatal(err)
		}
		return src
	})
}

func TestConformanceParquet(t *testing.T) {
	conformance.Run(t, func(t *testing.T, fx conformance.Fixture) connector.Source {
		dir := t.TempDir()
		csvPath := filepath.Join(dir, "fixture.csv")
		if err := os.WriteFile(csvPath, fx.CSV(), 0o644); err != nil {
			t.Fatal(err)
		}
		// The Parquet file carries the fixture's real types, written by
		// DuckDB from the CSV read with those types.
		types := map[conformance.Type]string{conformance.Int: "BIGINT", conformance.Text: "VARCHAR", conformance.Money: "DECIMAL(12,2)", conformance.Date: "DATE"}
		var spec []string
		for _, c := range fx.Columns {
			spec = append(spec, "'"+c.Name+"': '"+types[c.Type]+"'")
		}
		db, err := sql.Open("duckdb", "")
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		out := filepath.Join(dir, fx.Table+".parquet")
		sel := make([]string, len(fx.Columns))
		for i, c := range fx.Columns {
			sel[i] = dialect.DuckDB.QuoteIdent(c.Name)
		}
		q := "COPY (SELECT " + strings.Join(sel, ", ") + " FROM read_csv('" + csvPath + "', header = true, columns = {" + strings.Join(spec, ", ") + "})) TO '" + out + "' (FORMAT parquet)"
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		src, err := file.Open(context.Background(), out, file.Options{})
		if err != nil {
			t.Fatal(err)
		}
		return src
	})
}

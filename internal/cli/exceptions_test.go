package cli_test

import (
	"context"
	"encoding/csv"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kalla-recon/kalla/internal/exceptions"
	"github.com/kalla-recon/kalla/internal/exceptions/exctest"
	"github.com/kalla-recon/kalla/internal/store"
)

// TestExceptionsCLI works a run's exceptions through the CLI on the store
// a run recorded them in: list, a bulk accept by filter, an export edited
// and imported, and audit verify, which fails once an entry is removed.
func TestExceptionsCLI(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "kalla.db")
	st, err := store.Open(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	svc, err := exceptions.New(st, exceptions.Config{})
	if err != nil {
		t.Fatal(err)
	}
	runID := exctest.CompletedRun(t, st, svc)
	st.Close()
	storeFlag := "--database-url=" + db

	code, out, errs := runKalla(t, "exceptions", "list", storeFlag, "--run", runID, "--side", "left")
	if code != 0 || !strings.Contains(out, "4 of 4 items") || !strings.Contains(out, "I9") {
		t.Fatalf("list: exit %d\n%s%s", code, out, errs)
	}
	code, _, errs = runKalla(t, "exceptions", "act", "accept", storeFlag, "--kind", "suggested", "--rule", "tol10")
	if code == 0 || !strings.Contains(errs, "actor is required") {
		t.Fatalf("act without actor: exit %d %s", code, errs)
	}
	code, out, errs = runKalla(t, "exceptions", "act", "accept", storeFlag, "--actor", "ann", "--run", runID,
		"--kind", "suggested", "--rule", "tol10", "--max-difference", "5")
	if code != 0 || !strings.Contains(out, "accept applied on 1 items by ann") {
		t.Fatalf("bulk accept (only I3-P3 differs by at most 5): exit %d\n%s%s", code, out, errs)
	}
	sheet := filepath.Join(dir, "open.csv")
	if code, _, errs = runKalla(t, "exceptions", "export", runID, storeFlag, "-o", sheet); code != 0 {
		t.Fatalf("export: %s", errs)
	}
	f, _ := os.Open(sheet)
	rows, err := csv.NewReader(f).ReadAll()
	f.Close()
	// The header, 9 open items, 5 totals (open left EUR and USD, pair,
	// right EUR and USD).
	if err != nil || len(rows) != 15 || rows[10][3] != "total" {
		t.Fatalf("export: %d rows %v", len(rows), err)
	}
	for _, r := range rows[1:] {
		if r[5] == "I5" || r[5] == "P5" {
			r[17], r[18] = "resolve", "timing difference"
		}
	}
	f, _ = os.Create(sheet)
	csv.NewWriter(f).WriteAll(rows)
	f.Close()
	code, out, errs = runKalla(t, "exceptions", "import", sheet, storeFlag, "--actor", "bob")
	if code != 0 || strings.Count(out, "resolve: applied") != 2 {
		t.Fatalf("import: exit %d\n%s%s", code, out, errs)
	}
	// The same sheet again: its rows are stale now.
	code, out, _ = runKalla(t, "exceptions", "import", sheet, storeFlag, "--actor", "bob")
	if code == 0 || strings.Count(out, "refused (conflict") != 2 {
		t.Fatalf("stale import: exit %d\n%s", code, out)
	}
	code, out, errs = runKalla(t, "audit", "verify", storeFlag)
	if code != 0 || !strings.Contains(out, "chain of 3 entries is intact") {
		t.Fatalf("verify: exit %d\n%s%s", code, out, errs)
	}
}

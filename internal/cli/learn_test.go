package cli_test

import (
	"archive/zip"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/kalla-recon/kalla/internal/exceptions"
	"github.com/kalla-recon/kalla/internal/exceptions/exctest"
	"github.com/kalla-recon/kalla/internal/kalla"
	"github.com/kalla-recon/kalla/internal/runner"
	"github.com/kalla-recon/kalla/internal/store"
	"github.com/kalla-recon/kalla/internal/testenv"
)

// TestLearnAndEvidenceCLI learns a rule from three manual matches with
// `kalla recipe learn` (the hand-worked answer of exctest.InvoicesCSV: two
// open pairs, INV-1005~P5 and INV-1006~P6), saves it with --accept, writes
// the run's evidence with `kalla run evidence` and checks every file's
// SHA-256, then changes an audit row in the store and finds the next
// export failing and naming that entry; on SQLite and PostgreSQL.
func TestLearnAndEvidenceCLI(t *testing.T) {
	for _, b := range []struct {
		name string
		url  func(t *testing.T, dir string) string
	}{
		{"sqlite", func(t *testing.T, dir string) string { return filepath.Join(dir, "kalla.db") }},
		{"postgres", func(t *testing.T, _ string) string { return testenv.Postgres(t) }},
	} {
		t.Run(b.name, func(t *testing.T) {
			ctx := context.Background()
			t.Setenv("KALLA_APPROVAL_AMOUNT", "1000000") // no four eyes on the 10.00 fee
			dir := t.TempDir()
			url := b.url(t, dir)
			st, err := store.Open(ctx, url)
			if err != nil {
				t.Fatal(err)
			}
			svc, err := exceptions.New(st, exceptions.Config{ApprovalAmount: "1000000"})
			if err != nil {
				t.Fatal(err)
			}
			rec := exctest.LearnRecipe(dir)
			if err := st.CreateRecipe(ctx, &kalla.StoredRecipe{ID: rec.RecipeID, Name: "learn", Recipe: rec}); err != nil {
				t.Fatal(err)
			}
			runID := exctest.RunRecipe(t, st, svc, dir, "run-cli-learn", rec, exctest.LearnFiles)
			page, err := svc.List(ctx, exceptions.Filter{RunID: runID}, 0, 0)
			if err != nil {
				t.Fatal(err)
			}
			key := map[string]int64{}
			for _, it := range page.Items {
				key[it.Key] = it.ID
			}
			st.Close()
			storeFlag := "--database-url=" + url

			code, _, errs := runKalla(t, "recipe", "learn", storeFlag, "--run", runID)
			if code == 0 || !strings.Contains(errs, "nobody has matched records by hand") {
				t.Fatalf("learn without manual matches: exit %d %s", code, errs)
			}
			for _, pair := range [][2]string{{"INV-1002", "P2"}, {"INV-1003", "P3"}, {"INV-1004", "P4"}} {
				args := []string{"exceptions", "act", "match", strconv.FormatInt(key[pair[0]], 10), strconv.FormatInt(key[pair[1]], 10),
					storeFlag, "--actor", "ann"}
				if pair[0] == "INV-1004" {
					args = append(args, "--code", "bank fee")
				}
				if code, out, errs := runKalla(t, args...); code != 0 {
					t.Fatalf("match %v: exit %d\n%s%s", pair, code, out, errs)
				}
			}
			code, out, errs := runKalla(t, "recipe", "learn", storeFlag, "--run", runID)
			if code != 0 || !strings.Contains(out, "would match 2 open pairs, repeat 3 manual matches, conflict with 0 decisions") ||
				!strings.Contains(out, "match     INV-1005 ~ P5") || !strings.Contains(out, "match     INV-1006 ~ P6") ||
				!strings.Contains(out, "invoice_id (without ^INV-) = reference") || !strings.Contains(out, "Nothing saved") {
				t.Fatalf("learn: exit %d\n%s%s", code, out, errs)
			}
			id := regexp.MustCompile(`Proposal ([0-9a-f]+) `).FindStringSubmatch(out)
			if id == nil {
				t.Fatalf("no proposal id in\n%s", out)
			}
			code, out, errs = runKalla(t, "recipe", "learn", storeFlag, "--run", runID, "--accept", id[1], "--actor", "carol")
			if code != 0 || !strings.Contains(out, "Saved: recipe learn-test now has 3 rules") {
				t.Fatalf("accept: exit %d\n%s%s", code, out, errs)
			}

			zipPath := filepath.Join(dir, "evidence.zip")
			code, out, errs = runKalla(t, "run", "evidence", storeFlag, "--run", runID, "--out", zipPath)
			if code != 0 || !strings.Contains(out, "The audit chain verifies") {
				t.Fatalf("evidence: exit %d\n%s%s", code, out, errs)
			}
			files := readZip(t, zipPath)
			var m exceptions.EvidenceManifest
			if err := json.Unmarshal(files["manifest.json"], &m); err != nil {
				t.Fatal(err)
			}
			if len(m.Files) != len(files)-1 || len(m.Files) < 7 {
				t.Fatalf("manifest lists %d files of %d", len(m.Files), len(files))
			}
			for _, f := range m.Files {
				sum := sha256.Sum256(files[f.Name])
				if hex.EncodeToString(sum[:]) != f.SHA256 {
					t.Fatalf("%s does not match the manifest", f.Name)
				}
			}
			var audit exceptions.EvidenceAuditFile
			if err := json.Unmarshal(files["audit.json"], &audit); err != nil {
				t.Fatal(err)
			}
			if len(audit.Entries) != 7 || !audit.Verification.OK || audit.Entries[6].Action != "learn_rule" {
				t.Fatalf("audit.json: %d entries, %+v", len(audit.Entries), audit.Verification)
			}

			// An audit row changed: the export says which entry.
			seq := audit.Entries[1].Seq
			changeRow(t, b.name, url, "UPDATE audit_log SET note = 'edited' WHERE seq = "+strconv.FormatInt(seq, 10))
			code, out, errs = runKalla(t, "run", "evidence", storeFlag, "--run", runID, "--out", zipPath)
			if code == 0 || !strings.Contains(errs, "audit chain does not verify") {
				t.Fatalf("evidence after tampering: exit %d\n%s%s", code, out, errs)
			}
			files = readZip(t, zipPath)
			if err := json.Unmarshal(files["audit.json"], &audit); err != nil {
				t.Fatal(err)
			}
			if audit.Verification.OK || audit.Verification.FirstBad != seq || !strings.Contains(audit.Verification.Message, "entry "+strconv.FormatInt(seq, 10)) {
				t.Fatalf("verification after tampering with %d: %+v", seq, audit.Verification)
			}

			// An output file changed: the export refuses before writing.
			outFile := filepath.Join(runner.OutDir(dir, runID), "unmatched_left.parquet")
			f, err := os.OpenFile(outFile, os.O_APPEND|os.O_WRONLY, 0)
			if err != nil {
				t.Fatal(err)
			}
			f.Write([]byte{0})
			f.Close()
			other := filepath.Join(dir, "other.zip")
			code, _, errs = runKalla(t, "run", "evidence", storeFlag, "--run", runID, "--out", other)
			if _, statErr := os.Stat(other); code == 0 || !strings.Contains(errs, "unmatched_left.parquet of run "+runID+" was changed after the run wrote it") || statErr == nil {
				t.Fatalf("evidence with a changed output: exit %d %s (zip written: %v)", code, errs, statErr == nil)
			}
		})
	}
}

func readZip(t *testing.T, path string) map[string][]byte {
	t.Helper()
	zr, err := zip.OpenReader(path)
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	out := map[string][]byte{}
	for _, f := range zr.File {
		r, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(r)
		r.Close()
		if err != nil {
			t.Fatal(err)
		}
		out[f.Name] = b
	}
	return out
}

// changeRow edits the store behind Kalla's back, its guard dropped first.
func changeRow(t *testing.T, backend, url, q string) {
	t.Helper()
	ctx := context.Background()
	if backend == "postgres" {
		conn, err := pgx.Connect(ctx, url)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(ctx)
		for _, s := range []string{"ALTER TABLE audit_log DISABLE TRIGGER audit_log_no_change", q} {
			if _, err := conn.Exec(ctx, s); err != nil {
				t.Fatal(err)
			}
		}
		return
	}
	// busy_timeout: wait for a store connection's lock, as the store does.
	db, err := sql.Open("sqlite", url+"?_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, s := range []string{"DROP TRIGGER audit_log_no_update", q} {
		if _, err := db.Exec(s); err != nil {
			t.Fatal(err)
		}
	}
}

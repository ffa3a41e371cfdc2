package engine_test

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/kalla-recon/kalla/internal/cli"
	"github.com/kalla-recon/kalla/internal/engine"
	"github.com/kalla-recon/kalla/internal/kalla"
)

// writeTieHeavy writes invoices and payments in blocks of ten that share a
// reference and mostly share amounts and dates, so that most records have
// several equally good candidates, over more rows than one DuckDB row
// group (122,880), so that scans and joins run on several threads.
func writeTieHeavy(t *testing.T, dir string, n int) {
	t.Helper()
	for _, side := range []struct {
		name, header string
		rows         int
		row          func(i int) string
	}{
		{"left.csv", "invoice_id,reference,amount,issued_on", n, func(i int) string {
			return fmt.Sprintf("INV-%07d,B%06d,%d.%02d,2026-01-%02d", i, i/10, 100+(i/10)%7, (i%3)*5, 1+(i/10)%20)
		}},
		{"right.csv", "payment_id,reference,amount,paid_on", n + n/10, func(i int) string {
			return fmt.Sprintf("PAY-%07d,B%06d,%d.%02d,2026-01-%02d", i, i/11, 100+(i/11)%7, (i%4)*5, 2+(i/11)%20+(i%2))
		}},
	} {
		f, err := os.Create(filepath.Join(dir, side.name))
		if err != nil {
			t.Fatal(err)
		}
		w := bufio.NewWriter(f)
		fmt.Fprintln(w, side.header)
		for i := range side.rows {
			fmt.Fprintln(w, side.row(i))
		}
		if err := w.Flush(); err != nil {
			t.Fatal(err)
		}
		f.Close()
	}
	recipe := `{"recipe_id": "ties", "sources": {
	  "left": {"alias": "invoices", "uri": "left.csv", "primary_key": ["invoice_id"]},
	  "right": {"alias": "payments", "uri": "right.csv", "primary_key": ["payment_id"]}},
	 "rules": [
	  {"name": "exact", "conditions": [{"op": "eq", "left": "reference", "right": "reference"}, {"op": "eq", "left": "amount", "right": "amount"}]},
	  {"name": "near", "auto_confirm": 0.8, "conditions": [{"op": "eq", "left": "reference", "right": "reference"},
	    {"op": "tolerance", "left": "amount", "right": "amount", "abs": 0.10}, {"op": "date_within", "left": "issued_on", "right": "paid_on", "days": 3}]},
	  {"name": "split", "pattern": "1:N", "conditions": [{"op": "eq", "left": "reference", "right": "reference"}, {"op": "tolerance", "left": "amount", "right": "amount", "pct": 0.6}]}
	 ]}`
	if err := os.WriteFile(filepath.Join(dir, "recipe.json"), []byte(recipe), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestRulesDeterministicAcrossThreads runs a tie-heavy rules recipe with
// one DuckDB thread and with the default, twice each, and requires
// byte-identical outputs: ties are decided by a total order, never by
// which thread got there first. A last run under --memory-limit, where the
// write stage runs one statement at a time, must write the same bytes too.
func TestRulesDeterministicAcrossThreads(t *testing.T) {
	if testing.Short() {
		t.Skip("large data set")
	}
	dir := t.TempDir()
	writeTieHeavy(t, dir, 130_000)
	var first map[string]string
	for i, threads := range []string{"1", "0", "1", "0", "0 --memory-limit 300MB"} {
		out := t.TempDir()
		var stdout, stderr bytes.Buffer
		args := append([]string{"run", "--recipe", filepath.Join(dir, "recipe.json"), "--out", out, "--format", "parquet,csv", "--json", "--threads"}, strings.Fields(threads)...)
		code := cli.Main(t.Context(), args, strings.NewReader(""), &stdout, &stderr)
		if code != 0 {
			t.Fatalf("run %d (--threads %s) exited %d: %s", i+1, threads, code, stderr.String())
		}
		digests := map[string]string{}
		entries, err := os.ReadDir(out)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			if e.Name() != "summary.json" {
				digests[e.Name()] = fileSHA256(t, filepath.Join(out, e.Name()))
			}
		}
		if first == nil {
			first = digests
			if !strings.Contains(stdout.String(), `"matched_count"`) {
				t.Fatalf("no summary printed: %s", stdout.String())
			}
			continue
		}
		for name, d := range first {
			if digests[name] != d {
				t.Errorf("run %d (--threads %s): %s differs from run 1 (--threads 1)", i+1, threads, name)
			}
		}
	}
}

// TestRulesRecipeCheck runs `kalla recipe check` on every rules scenario:
// the rules run on the empty staged tables, so every statement must bind
// against the real schemas.
func TestRulesRecipeCheck(t *testing.T) {
	entries, err := os.ReadDir(scenariosDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), "rules_") {
			continue
		}
		var stdout, stderr bytes.Buffer
		code := cli.Main(t.Context(), []string{"recipe", "check", filepath.Join(scenariosDir, e.Name(), "recipe.json")}, strings.NewReader(""), &stdout, &stderr)
		if code != 0 || !strings.Contains(stdout.String(), "is ready to run") {
			t.Errorf("%s: recipe check exited %d:\n%s%s", e.Name(), code, stdout.String(), stderr.String())
		}
	}
}

// TestRulesEmptyTextColumn runs a rules recipe whose later pass and whose
// explanations compare a text column that has no value at all on one side
// (the view shows it as an untyped NULL): the tables Kalla keeps between
// passes must keep it text, so the run completes and the column simply
// never matches.
func TestRulesEmptyTextColumn(t *testing.T) {
	r := runFiles(t, map[string]string{
		"left.csv":  "id,ref,memo\nL1,R1,\nL2,R2,\nL3,R3,\n",
		"right.csv": "id,ref,memo\nP1,R1,alpha\nP2,R9,beta\nP3,R8,\n",
		"recipe.json": `{"recipe_id": "empty-memo", "sources": {
		  "left": {"alias": "lefts", "uri": "left.csv", "primary_key": ["id"]},
		  "right": {"alias": "rights", "uri": "right.csv", "primary_key": ["id"]}},
		 "rules": [
		  {"name": "by_ref", "conditions": [{"op": "eq", "left": "ref", "right": "ref"}]},
		  {"name": "by_memo", "conditions": [{"op": "eq", "left": "memo", "right": "memo"}]}]}`,
	})
	// L1/P1 by reference; nothing by the empty memo.
	for _, want := range []string{`"matched_count": 1`, `"unmatched_left_count": 2`, `"unmatched_right_count": 2`} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("summary lacks %s:\n%s", want, r.stdout)
		}
	}
}

// TestRulesFilteredSource runs a rules recipe on a source whose filter
// removes rows: staged row ids keep their file positions, so they run past
// the number of records, and the sets of row ids the passes keep must be
// sized by the largest (a set sized by the count failed with "Value 3 is
// outside of provided min and max range"). Truth by hand: in scope are
// L2, L4 and L5 (EUR); L2 pays P1 exactly, L4 pays P2 within 2 %.
func TestRulesFilteredSource(t *testing.T) {
	r := runFiles(t, map[string]string{
		"left.csv":  "id,ref,amount,currency\nL1,R1,10.00,USD\nL2,R2,20.00,EUR\nL3,R3,30.00,USD\nL4,R4,40.00,EUR\nL5,R5,50.00,EUR\n",
		"right.csv": "id,ref,amount\nP1,R2,20.00\nP2,R4,40.50\nP3,R1,10.00\n",
		"recipe.json": `{"recipe_id": "filtered-rules", "sources": {
		  "left": {"alias": "lefts", "uri": "left.csv", "primary_key": ["id"], "filters": [{"column": "currency", "op": "eq", "value": "EUR"}]},
		  "right": {"alias": "rights", "uri": "right.csv", "primary_key": ["id"]}},
		 "rules": [
		  {"name": "exact", "conditions": [{"op": "eq", "left": "ref", "right": "ref"}, {"op": "eq", "left": "amount", "right": "amount"}]},
		  {"name": "near", "conditions": [{"op": "eq", "left": "ref", "right": "ref"}, {"op": "tolerance", "left": "amount", "right": "amount", "pct": 0.02}]}]}`,
	})
	for _, want := range []string{`"left_count": 3`, `"matched_count": 2`, `"unmatched_left_count": 1`, `"unmatched_right_count": 1`} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("summary lacks %s:\n%s", want, r.stdout)
		}
	}
	m, err := os.ReadFile(filepath.Join(r.out, "matched.csv"))
	if err != nil {
		t.Fatal(err)
	}
	for _, pair := range []string{"L2,P1,2,1,exact", "L4,P2,4,2,near"} {
		if !strings.Contains(string(m), pair) {
			t.Errorf("matched.csv lacks %s:\n%s", pair, m)
		}
	}
}

// writeFiles writes name -> content files into dir.
func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// runFiles writes files (among them recipe.json) into a fresh folder and
// runs that recipe, which must succeed.
func runFiles(t *testing.T, files map[string]string) run {
	t.Helper()
	dir := t.TempDir()
	writeFiles(t, dir, files)
	r := runKalla(t, filepath.Join(dir, "recipe.json"))
	if r.code != 0 {
		t.Fatalf("kalla run exited %d: %s", r.code, r.stderr)
	}
	return r
}

// TestRulesUnmatchedReasonsLineUp checks that each unmatched record of a
// rules run carries its own reason, over more records than a few DuckDB
// row groups, so that scans run on several threads: the unmatched files
// put the records and the reasons side by side by position, which holds
// only while both come in row-id order. Every invoice INV-i has one
// payment PAY-i with its reference and twice its amount, so nothing
// matches and each record's closest candidate is its partner.
func TestRulesUnmatchedReasonsLineUp(t *testing.T) {
	if testing.Short() {
		t.Skip("large data set")
	}
	const n = 300_000
	var left, right strings.Builder
	left.WriteString("invoice_id,reference,amount\n")
	right.WriteString("payment_id,reference,amount\n")
	for i := range n {
		fmt.Fprintf(&left, "INV-%07d,R%07d,%d.%02d\n", i, i, 10+i%9000, i%100)
		// The payments come in another order than their invoices.
		j := (i*7919 + 13) % n
		fmt.Fprintf(&right, "PAY-%07d,R%07d,%d.%02d\n", j, j, 2*(10+j%9000), 2*(j%100)%100)
	}
	r := t.TempDir()
	writeFiles(t, r, map[string]string{"left.csv": left.String(), "right.csv": right.String(),
		"recipe.json": `{"recipe_id": "apart", "sources": {
		  "left": {"alias": "invoices", "uri": "left.csv", "primary_key": ["invoice_id"]},
		  "right": {"alias": "payments", "uri": "right.csv", "primary_key": ["payment_id"]}},
		 "rules": [{"name": "near", "conditions": [{"op": "eq", "left": "reference", "right": "reference"},
		   {"op": "tolerance", "left": "amount", "right": "amount", "pct": 0.02}]}]}`})
	res := runKalla(t, filepath.Join(r, "recipe.json"))
	if res.code != 0 {
		t.Fatalf("kalla run exited %d: %s", res.code, res.stderr)
	}
	for _, side := range []struct{ file, own, other string }{
		{"unmatched_left.csv", "INV-", "PAY-"}, {"unmatched_right.csv", "PAY-", "INV-"},
	} {
		f, err := os.Open(filepath.Join(res.out, side.file))
		if err != nil {
			t.Fatal(err)
		}
		rows, err := csv.NewReader(f).ReadAll()
		f.Close()
		if err != nil {
			t.Fatalf("%s: %v", side.file, err)
		}
		if len(rows) != n+1 {
			t.Fatalf("%s: %d rows, want %d", side.file, len(rows)-1, n)
		}
		closest := slices.Index(rows[0], "_closest_candidate")
		if closest < 0 {
			t.Fatalf("%s: no _closest_candidate column in %v", side.file, rows[0])
		}
		bad := 0
		for k, row := range rows[1:] {
			own := strings.TrimPrefix(row[0], side.own)
			if want := side.other + own; row[closest] != want {
				if bad++; bad <= 3 {
					t.Errorf("%s row %d (%s): closest candidate %q, want %q", side.file, k+1, row[0], row[closest], want)
				}
			}
		}
		if bad > 0 {
			t.Errorf("%s: %d of %d records carry another record's reason", side.file, bad, n)
		}
	}
}

// TestRulesReportComplete checks that a rules run's summary carries the
// whole report however its details were made: beside the writes (the
// default), after them under a memory limit, and on a dry run, which
// writes nothing. The three reports must be the same, with reason counts,
// unmatched samples, compared pairs and break samples filled in.
func TestRulesReportComplete(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"left.csv":  "id,ref,amount\nI1,R1,100.00\nI2,R2,100.00\nI3,R3,50.00\nI4,R4,10.00\nI5,R5,7.00\n",
		"right.csv": "id,ref,amount\nP1,R1,100.00\nP2,R2,98.50\nP3a,R3,20.00\nP3b,R3,30.50\nP4,R4,99.00\nP9,R9,1.00\n",
		"recipe.json": `{"recipe_id": "report", "sources": {
		  "left": {"alias": "invoices", "uri": "left.csv", "primary_key": ["id"]},
		  "right": {"alias": "payments", "uri": "right.csv", "primary_key": ["id"]}},
		 "rules": [{"name": "tol", "conditions": [{"op": "eq", "left": "ref", "right": "ref"}, {"op": "tolerance", "left": "amount", "right": "amount", "pct": 0.02}]},
		   {"name": "split", "pattern": "1:N", "conditions": [{"op": "eq", "left": "ref", "right": "ref"}, {"op": "tolerance", "left": "amount", "right": "amount", "abs": 1}]}]}`})
	recipe := filepath.Join(dir, "recipe.json")
	var reports, amounts []string
	var files [2][]string // name and checksum of each file, without and with a memory limit
	for i, extra := range [][]string{nil, {"--memory-limit", "256MB"}, {"--dry-run"}} {
		var stdout, stderr bytes.Buffer
		args := append([]string{"run", "--recipe", recipe, "--out", t.TempDir(), "--json"}, extra...)
		if code := cli.Main(t.Context(), args, strings.NewReader(""), &stdout, &stderr); code != 0 {
			t.Fatalf("kalla %v exited %d: %s", extra, code, stderr.String())
		}
		var sum kalla.Summary
		if err := json.Unmarshal(stdout.Bytes(), &sum); err != nil {
			t.Fatal(err)
		}
		rep := sum.Rules
		if rep == nil || len(rep.Reasons["left"]) == 0 || len(rep.Reasons["right"]) == 0 ||
			len(rep.UnmatchedSamples["left"]) == 0 || len(rep.Breaks) == 0 || rep.Breaks[0].Compared == 0 {
			t.Fatalf("kalla %v: incomplete report %+v", extra, rep)
		}
		b, _ := json.Marshal(rep)
		reports = append(reports, string(b))
		if i < 2 {
			for _, o := range sum.Outputs {
				files[i] = append(files[i], fmt.Sprintf("%s %d %s", o.Name, o.Rows, o.SHA256))
			}
			// The money totals: summed beside the writes without a
			// limit, after them under one.
			b, _ := json.Marshal(sum.Amounts)
			amounts = append(amounts, string(b))
		}
	}
	if want := `{"left_column":"amount","right_column":"amount","from":"rule","totals":[{"left_matched":"250.00","left_open":"17.00","right_matched":"249.00","right_open":"100.00","matched_difference":"1.00"}]}`; amounts[0] != want || amounts[1] != want {
		t.Errorf("money totals:\n  without a limit %s\n  with a limit    %s\n  want            %s", amounts[0], amounts[1], want)
	}
	// Under a limit the files are written in another order, the two
	// unmatched ones side by side: the same bytes.
	if len(files[0]) < 4 || !slices.Equal(files[0], files[1]) {
		t.Errorf("the files differ:\n  without a limit %q\n  with a limit    %q", files[0], files[1])
	}
	if reports[1] != reports[0] || reports[2] != reports[0] {
		t.Errorf("the reports differ:\n  beside the writes  %s\n  memory limit       %s\n  dry run            %s", reports[0], reports[1], reports[2])
	}
	if !strings.Contains(reports[0], `"samples":[{`) {
		t.Errorf("no break sample: %s", reports[0])
	}
}

// TestRulesOwnReasons runs rules whose searches find no candidate for any
// unmatched record (no key shared, no rule naming amounts), so every
// reason is words about the record's own keys and the unmatched files
// compute it from the records they write instead of lining them up with a
// table of reasons. Every reason must be what the record's key says, the
// files must hold every unmatched record once in source order, and the
// bytes must not depend on the thread count, a memory limit or how the
// set of open records is held.
func TestRulesOwnReasons(t *testing.T) {
	if testing.Short() {
		t.Skip("large data set")
	}
	const n = 200_000 // over one row group: the scans run on several threads
	var left, right strings.Builder
	left.WriteString("invoice_id,reference,amount,currency\n")
	right.WriteString("payment_id,reference,amount,currency\n")
	for i := range n {
		ref := fmt.Sprintf("R%07d", i)
		if i%3 == 0 {
			ref = fmt.Sprintf("X%07d", i) // no payment carries it
		}
		if i%7 == 0 {
			ref = "" // no key at all
		}
		fmt.Fprintf(&left, "INV-%07d,%s,%d.%02d,EUR\n", i, ref, 10+i%900, i%100)
		pref := fmt.Sprintf("R%07d", i)
		if i%5 == 0 {
			pref = fmt.Sprintf("Y%07d", i)
		}
		fmt.Fprintf(&right, "PAY-%07d,%s,%d.%02d,EUR\n", i, pref, 10+i%900, i%100)
	}
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"left.csv": left.String(), "right.csv": right.String(),
		"recipe.json": `{"recipe_id": "own", "sources": {
		  "left": {"alias": "invoices", "uri": "left.csv", "primary_key": ["invoice_id"]},
		  "right": {"alias": "payments", "uri": "right.csv", "primary_key": ["payment_id"]}},
		 "rules": [{"name": "exact", "conditions": [{"op": "eq", "left": "reference", "right": "reference"}, {"op": "eq", "left": "amount", "right": "amount"}]},
		   {"name": "currency", "conditions": [{"op": "eq", "left": "reference", "right": "reference"}, {"op": "eq", "left": "currency", "right": "currency"}]}]}`})
	recipe := filepath.Join(dir, "recipe.json")
	// The ground truth, from the generator's rules alone: an invoice is
	// open when its reference is empty or no payment carries it, and a
	// payment when no invoice carries its reference.
	want := map[string][]string{}
	for i := range n {
		switch {
		case i%7 == 0:
			want["left"] = append(want["left"], fmt.Sprintf("INV-%07d|exact, currency: reference is empty", i))
		case i%3 == 0 || i%5 == 0:
			want["left"] = append(want["left"], fmt.Sprintf("INV-%07d|exact, currency: no payments record matches on reference", i))
		}
		if i%5 == 0 || i%3 == 0 || i%7 == 0 {
			want["right"] = append(want["right"], fmt.Sprintf("PAY-%07d|exact, currency: no invoices record matches on reference", i))
		}
	}
	t.Setenv("KALLA_DEBUG", "1") // the log shows how the files were written
	var sums []string
	for i, extra := range [][]string{nil, {"--threads", "1"}, {"--memory-limit", "256MB"}, nil} {
		if i == 3 {
			// The sets of open records in pieces, as for sides of
			// millions of rows (engine.SetPiecesAbove).
			defer engine.SetPiecesAbove(-1)()
		}
		out := t.TempDir()
		var stdout, stderr bytes.Buffer
		args := append([]string{"run", "--recipe", recipe, "--out", out, "--format", "parquet,csv", "--json"}, extra...)
		if code := cli.Main(t.Context(), args, strings.NewReader(""), &stdout, &stderr); code != 0 {
			t.Fatalf("kalla %v exited %d: %s", extra, code, stderr.String())
		}
		// Two unmatched files, each in two formats.
		if got := strings.Count(stderr.String(), "_reason, CAST(NULL AS VARCHAR) AS _closest_candidate"); got != 4 {
			t.Errorf("kalla %v: %d unmatched files computed their reasons from the records, want 4", extra, got)
		}
		// The files (two, in two formats) tested the open records
		// through pieces joined by row group.
		if got := strings.Count(stderr.String(), "__kalla_p ON __kalla_p.__kalla_k = CAST(s.rowid // 122880 AS INTEGER)"); (got >= 4) != (i == 3) {
			t.Errorf("kalla %v: %d scans joined sets in pieces", extra, got)
		}
		var sum kalla.Summary
		if err := json.Unmarshal(stdout.Bytes(), &sum); err != nil {
			t.Fatal(err)
		}
		var files []string
		for _, o := range sum.Outputs {
			files = append(files, fmt.Sprintf("%s %d %s", o.Name, o.Rows, o.SHA256))
		}
		sums = append(sums, strings.Join(files, "\n"))
		for _, side := range []string{"left", "right"} {
			tab := readCSV(t, filepath.Join(out, "unmatched_"+side+".csv"))
			reason, closest := slices.Index(tab.header, "_reason"), slices.Index(tab.header, "_closest_candidate")
			var got []string
			for _, row := range tab.rows {
				got = append(got, row[0]+"|"+row[reason])
				if row[closest] != "" {
					t.Fatalf("kalla %v: %s has a closest candidate %q", extra, row[0], row[closest])
				}
			}
			if !slices.Equal(got, want[side]) {
				t.Fatalf("kalla %v: unmatched %s: %d rows, want %d; first %q, want %q", extra, side, len(got), len(want[side]), got[:min(3, len(got))], want[side][:3])
			}
			if k := sum.Rules.Reasons[side]["no_candidate"]; k != int64(len(want[side])) {
				t.Errorf("kalla %v: %d %s reasons counted no_candidate, want %d", extra, k, side, len(want[side]))
			}
		}
	}
	if sums[1] != sums[0] || sums[2] != sums[0] || sums[3] != sums[0] {
		t.Errorf("the files differ:\n  default\n%s\n  --threads 1\n%s\n  --memory-limit\n%s\n  sets in pieces\n%s", sums[0], sums[1], sums[2], sums[3])
	}
}

package server_test

import (
	"crypto/sha256"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kalla-recon/kalla/internal/gen"
	"github.com/kalla-recon/kalla/internal/kalla"
	"github.com/kalla-recon/kalla/internal/server"
	"github.com/kalla-recon/kalla/internal/testenv"
)

// scoped is the answer of preview and load-scoped.
type scoped struct {
	Alias       string         `json:"alias"`
	Columns     []kalla.Column `json:"columns"`
	Rows        [][]*string    `json:"rows"`
	TotalRows   int64          `json:"total_rows"`
	TotalKind   string         `json:"total_kind"`
	TotalExact  bool           `json:"total_exact"`
	PreviewRows int            `json:"preview_rows"`
}

// countCSV counts the data rows of a CSV file for which keep is true,
// computed in Go from the file itself, not by Kalla.
func countCSV(t *testing.T, path string, keep func(rec map[string]string) bool) int64 {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	all, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	for _, row := range all[1:] {
		rec := map[string]string{}
		for i, h := range all[0] {
			rec[h] = row[i]
		}
		if keep(rec) {
			n++
		}
	}
	return n
}

func atof(t *testing.T, s string) float64 {
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// TestEndToEnd drives a real server over HTTP through the whole life of a
// reconciliation, on a SQLite and on a Postgres metadata store: register
// sources, preview and scope them, store and validate a recipe, run it,
// follow it over SSE, check its counts against the generator's ground
// truth, page its results and download its evidence.
func TestEndToEnd(t *testing.T) {
	forEachStore(t, func(t *testing.T, dbURL string) {
		s := startServer(t, func(c *server.Config) { c.DatabaseURL = dbURL })

		// Sources: registered after a connection test, shown redacted.
		var src struct {
			Alias      string `json:"alias"`
			URI        string `json:"uri"`
			SourceType string `json:"source_type"`
			Status     string `json:"status"`
		}
		s.call("POST", "/api/sources", map[string]string{"alias": "invoices", "uri": small.Invoices, "source_type": "csv"}, 200, &src)
		if src.Alias != "invoices" || src.URI != small.Invoices || src.Status != "ok" || src.SourceType != "csv" {
			t.Fatalf("registered source: %+v", src)
		}
		s.call("POST", "/api/sources", map[string]string{"alias": "payments", "uri": small.Payments}, 200, &src)
		if src.SourceType != "csv" {
			t.Fatalf("type not inferred: %+v", src)
		}
		var list struct {
			Sources []struct {
				Alias string `json:"alias"`
			} `json:"sources"`
		}
		s.call("GET", "/api/sources", nil, 200, &list)
		if len(list.Sources) != 2 || list.Sources[0].Alias != "invoices" || list.Sources[1].Alias != "payments" {
			t.Fatalf("sources: %+v", list)
		}
		s.call("GET", "/api/sources/payments", nil, 200, &src)

		// Preview: columns, a sample, the true total.
		var p scoped
		s.call("GET", "/api/sources/payments/preview?limit=5", nil, 200, &p)
		if p.TotalRows != int64(smallTruth.Payments) || p.PreviewRows != 5 || len(p.Rows) != 5 || len(p.Columns) != 5 {
			t.Fatalf("preview: total %d rows %d cols %d", p.TotalRows, len(p.Rows), len(p.Columns))
		}
		if p.Columns[0].Name != "payment_id" || p.Columns[3].Name != "paid_amount" {
			t.Fatalf("preview columns: %+v", p.Columns)
		}

		// Load-scoped: filters pushed to the source, the true total of
		// matching rows, default limit 200 and cap 1000.
		wantBig := countCSV(t, small.Payments, func(r map[string]string) bool { return atof(t, r["paid_amount"]) >= 10000 })
		s.call("POST", "/api/sources/payments/load-scoped", map[string]any{
			"conditions": []map[string]any{{"column": "paid_amount", "op": "gte", "value": 10000}},
		}, 200, &p)
		if p.TotalRows != wantBig || p.PreviewRows != min(200, int(wantBig)) || p.Alias != "payments" {
			t.Fatalf("load-scoped gte: total %d (want %d), preview %d", p.TotalRows, wantBig, p.PreviewRows)
		}
		for _, row := range p.Rows {
			if atof(t, *row[3]) < 10000 {
				t.Fatalf("row %v does not satisfy the filter", row)
			}
		}
		wantAcme := countCSV(t, small.Payments, func(r map[string]string) bool {
			return r["payer"] == "Acme GmbH" && strings.HasPrefix(r["reference_number"], "INV-")
		})
		s.call("POST", "/api/sources/payments/load-scoped", map[string]any{
			"conditions": []map[string]any{
				{"column": "payer", "op": "eq", "value": "Acme GmbH"},
				{"column": "reference_number", "op": "like", "value": "INV-%"},
			},
			"limit": 5000,
		}, 200, &p)
		if p.TotalRows != wantAcme || p.PreviewRows != min(1000, int(wantAcme)) {
			t.Fatalf("load-scoped eq+like: total %d (want %d) preview %d", p.TotalRows, wantAcme, p.PreviewRows)
		}
		s.call("POST", "/api/sources/payments/load-scoped", map[string]any{
			"conditions": []map[string]any{{"column": "paid_amount", "op": "gte", "value": 10000}}, "limit": 0,
		}, 200, &p)
		if p.TotalRows != wantBig || p.PreviewRows != 0 || len(p.Rows) != 0 || len(p.Columns) != 5 {
			t.Fatalf("load-scoped limit 0: total %d (want %d), preview %d", p.TotalRows, wantBig, p.PreviewRows)
		}
		s.call("POST", "/api/sources/invoices/load-scoped", map[string]any{"conditions": []any{}}, 200, &p)
		if p.TotalRows != int64(smallTruth.Invoices) || p.PreviewRows != 200 {
			t.Fatalf("load-scoped default limit: total %d preview %d", p.TotalRows, p.PreviewRows)
		}

		// A Postgres source whose table is called "sources", like the
		// store's own: load-scoped reads the user's database, never the
		// metadata store's.
		userDB := testenv.Postgres(t)
		pgExec(t, userDB, `CREATE TABLE sources (code text, weight int)`, `INSERT INTO sources VALUES ('a', 1), ('b', 2), ('c', 3)`)
		s.call("POST", "/api/sources", map[string]string{"alias": "user_sources", "uri": withTable(userDB, "sources")}, 200, nil)
		s.call("POST", "/api/sources/user_sources/load-scoped", map[string]any{
			"conditions": []map[string]any{{"column": "weight", "op": "gte", "value": 2}},
		}, 200, &p)
		if p.TotalRows != 2 || len(p.Columns) != 2 || p.Columns[0].Name != "code" || *p.Rows[0][0] != "b" {
			t.Fatalf("load-scoped of a table named like the store's: %+v", p)
		}
		s.call("DELETE", "/api/sources/user_sources", nil, 204, nil)

		// Recipes: stored, listed, validated like `kalla recipe check`.
		rec := gen.Recipe(small)
		var stored struct {
			ID     string       `json:"recipe_id"`
			Recipe kalla.Recipe `json:"recipe"`
		}
		s.call("POST", "/api/recipes", rec, 201, &stored)
		if stored.ID != rec.RecipeID || stored.Recipe.MatchSQL != rec.MatchSQL {
			t.Fatalf("stored recipe: %+v", stored)
		}
		s.wantError("POST", "/api/recipes", rec, 409, kalla.ECONFLICT, "exists already")
		var chk struct {
			OK       bool           `json:"ok"`
			Problems []string       `json:"problems"`
			Output   []kalla.Column `json:"output_columns"`
		}
		s.call("POST", "/api/recipes/validate", rec, 200, &chk)
		if !chk.OK || len(chk.Output) == 0 {
			t.Fatalf("validate: %+v", chk)
		}
		bad := *rec
		bad.Sources.Left.PrimaryKey = []string{"no_such_column"}
		s.call("POST", "/api/recipes/validate", bad, 200, &chk)
		if chk.OK || len(chk.Problems) == 0 || !strings.Contains(strings.Join(chk.Problems, " "), "no_such_column") {
			t.Fatalf("validate bad key: %+v", chk)
		}
		renamed := *rec
		renamed.Name = "renamed"
		s.call("PUT", "/api/recipes/"+rec.RecipeID, renamed, 200, &stored)
		var recipes struct {
			Recipes []struct {
				Name string `json:"name"`
			} `json:"recipes"`
		}
		s.call("GET", "/api/recipes", nil, 200, &recipes)
		if len(recipes.Recipes) != 1 || recipes.Recipes[0].Name != "renamed" {
			t.Fatalf("recipes: %+v", recipes)
		}

		// A run: queued, followed over SSE to the end, counts checked
		// against ground truth.
		id := s.startRun(map[string]string{"recipe_id": rec.RecipeID})
		evs := s.follow(id, 60*time.Second)
		if len(evs) < 2 || evs[len(evs)-1].Event != "done" {
			t.Fatalf("events: %+v", evs)
		}
		last := -1.0
		for _, ev := range evs[:len(evs)-1] {
			var pe struct {
				Status   string  `json:"status"`
				Progress float64 `json:"progress"`
			}
			if ev.Event != "progress" || json.Unmarshal([]byte(ev.Data), &pe) != nil {
				t.Fatalf("bad event %+v", ev)
			}
			if pe.Progress < last {
				t.Errorf("progress went back: %v after %v", pe.Progress, last)
			}
			last = pe.Progress
		}
		var done run
		if err := json.Unmarshal([]byte(evs[len(evs)-1].Data), &done); err != nil {
			t.Fatal(err)
		}
		if done.Status != kalla.RunCompleted {
			t.Fatalf("run ended %s: %s", done.Status, done.Error)
		}
		r := s.getRun(id)
		want := map[string]int64{
			"left_count": int64(smallTruth.Invoices), "right_count": int64(smallTruth.Payments),
			"matched_count":        int64(smallTruth.MatchedPairs()),
			"unmatched_left_count": int64(smallTruth.OrphanInvoices), "unmatched_right_count": int64(smallTruth.StrayPayments),
		}
		got := map[string]*int64{
			"left_count": r.LeftCount, "right_count": r.RightCount, "matched_count": r.MatchedCount,
			"unmatched_left_count": r.UnmatchedLeftCount, "unmatched_right_count": r.UnmatchedRightCount,
		}
		for k, w := range want {
			if got[k] == nil || *got[k] != w {
				t.Errorf("%s = %v, want %d", k, got[k], w)
			}
		}
		if r.Progress != 1 || r.LeftRowsStaged != int64(smallTruth.Invoices) || r.RightRowsStaged != int64(smallTruth.Payments) {
			t.Errorf("progress %v, staged %d/%d", r.Progress, r.LeftRowsStaged, r.RightRowsStaged)
		}

		// Per-run filter overrides scope the sides of one run only.
		wantInv := countCSV(t, small.Invoices, func(r map[string]string) bool { return atof(t, r["amount"]) >= 10000 })
		scopedRun := s.startRun(map[string]any{"recipe_id": rec.RecipeID, "filters": map[string]any{
			"left": []map[string]any{{"column": "amount", "op": "gte", "value": 10000}},
		}})
		sr := s.waitRun(scopedRun, 30*time.Second, "completion", func(r run) bool { return r.Status.Done() })
		if sr.Status != kalla.RunCompleted || *sr.LeftCount != wantInv || *sr.RightCount != int64(smallTruth.Payments) {
			t.Fatalf("filtered run: %s %q left %v right %v (want %d left)", sr.Status, sr.Error, sr.LeftCount, sr.RightCount, wantInv)
		}

		// Results, paged from the Parquet outputs.
		var page struct {
			Columns   []kalla.Column `json:"columns"`
			Rows      [][]*string    `json:"rows"`
			TotalRows int64          `json:"total_rows"`
		}
		s.call("GET", "/api/runs/"+id+"/results/matched?limit=50", nil, 200, &page)
		if page.TotalRows != int64(smallTruth.MatchedPairs()) || len(page.Rows) != 50 || page.Columns[0].Name != "invoice_id" {
			t.Fatalf("matched page: total %d rows %d cols %v", page.TotalRows, len(page.Rows), page.Columns)
		}
		first := *page.Rows[0][0]
		s.call("GET", "/api/runs/"+id+"/results/matched?offset=1&limit=1", nil, 200, &page)
		if len(page.Rows) != 1 || *page.Rows[0][0] < first {
			t.Fatalf("offset page: %v", page.Rows)
		}
		off := smallTruth.OrphanInvoices - 3
		s.call("GET", "/api/runs/"+id+"/results/unmatched_left?offset="+strconv.Itoa(off), nil, 200, &page)
		if page.TotalRows != int64(smallTruth.OrphanInvoices) || len(page.Rows) != 3 {
			t.Fatalf("last page of unmatched_left: total %d rows %d", page.TotalRows, len(page.Rows))
		}
		s.wantError("GET", "/api/runs/"+id+"/results/everything", nil, 400, kalla.EINVALID, "matched")

		// Evidence: the downloaded file's digest is the one summary.json
		// records.
		var sum kalla.Summary
		s.call("GET", "/api/runs/"+id+"/files/summary.json", nil, 200, &sum)
		// matched, unmatched_left, unmatched_right, and the matched
		// records of each side (every server run keeps them).
		if len(sum.Outputs) != 5 {
			t.Fatalf("summary outputs: %+v", sum.Outputs)
		}
		for _, o := range sum.Outputs {
			resp, err := s.client.Get(s.url + "/api/runs/" + id + "/files/" + o.Name)
			if err != nil {
				t.Fatal(err)
			}
			h := sha256.New()
			body, _ := readAll(resp)
			h.Write(body)
			if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/vnd.apache.parquet" {
				t.Fatalf("%s: %d %s", o.Name, resp.StatusCode, resp.Header.Get("Content-Type"))
			}
			if got := hex.EncodeToString(h.Sum(nil)); got != o.SHA256 {
				t.Errorf("%s: sha256 %s, summary says %s", o.Name, got, o.SHA256)
			}
		}
		s.wantError("GET", "/api/runs/"+id+"/files/..%2Fkalla.db", nil, 404, kalla.ENOTFOUND)
		s.wantError("GET", "/api/runs/"+id+"/files/other.parquet", nil, 404, kalla.ENOTFOUND)

		// Listing by status; a finished run cannot be cancelled.
		var runs struct {
			Runs []run `json:"runs"`
		}
		s.call("GET", "/api/runs?status=completed&limit=1&offset=1", nil, 200, &runs)
		if len(runs.Runs) != 1 || runs.Runs[0].ID != id { // newest first: the filtered run, then this one
			t.Fatalf("completed runs: %+v", runs)
		}
		s.call("GET", "/api/runs?status=failed", nil, 200, &runs)
		if len(runs.Runs) != 0 {
			t.Fatalf("failed runs: %+v", runs)
		}
		s.wantError("POST", "/api/runs/"+id+"/cancel", nil, 409, kalla.ECONFLICT, "already finished")

		// Metrics reflect the run.
		_, m := s.do("GET", "/metrics", nil)
		for _, line := range []string{`kalla_runs{status="completed"} 2`, `kalla_run_duration_seconds_count{status="completed"} 2`, "kalla_run_queue_depth 0",
			fmt.Sprintf(`kalla_rows_staged_total{side="left"} %d`, int64(smallTruth.Invoices)+wantInv)} {
			if !strings.Contains(string(m), line) {
				t.Errorf("metrics lack %q", line)
			}
		}

		// Deletions.
		s.call("DELETE", "/api/recipes/"+rec.RecipeID, nil, 204, nil)
		s.wantError("GET", "/api/recipes/"+rec.RecipeID, nil, 404, kalla.ENOTFOUND)
		s.call("DELETE", "/api/sources/payments", nil, 204, nil)
		s.wantError("GET", "/api/sources/payments", nil, 404, kalla.ENOTFOUND)
		// The run keeps its recipe snapshot.
		if r := s.getRun(id); r.Recipe.MatchSQL != rec.MatchSQL {
			t.Errorf("run lost its recipe snapshot")
		}
	})
}

package server_test

import (
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/kalla-recon/kalla/internal/kalla"
	"github.com/kalla-recon/kalla/internal/recon"
	"github.com/kalla-recon/kalla/internal/runner"
	"github.com/kalla-recon/kalla/internal/server"
	"github.com/kalla-recon/kalla/internal/spark"
	"github.com/kalla-recon/kalla/internal/testenv"
)

// sparkRunTimeout bounds one small run on the test cluster: Spark takes
// seconds per query, and minutes when the cluster's two cores are shared
// with other test runs.
const sparkRunTimeout = 15 * time.Minute

// startSparkServer starts a server with the Spark engine registered as
// `kalla serve --spark-remote` registers it, on the test cluster.
func startSparkServer(t *testing.T, edit func(*server.Config)) *testServer {
	t.Helper()
	remote := os.Getenv("KALLA_TEST_SPARK_REMOTE")
	if remote == "" {
		if testenv.Required() {
			t.Fatal("KALLA_TEST_SPARK_REMOTE not set and services are required: eval \"$(bash scripts/services.sh env)\"")
		}
		t.Skip("KALLA_TEST_SPARK_REMOTE not set")
	}
	eng, err := spark.New(spark.OptionsFromEnv(remote, nil))
	if err != nil {
		t.Fatal(err)
	}
	return startServer(t, func(c *server.Config) {
		c.Engines = map[string]recon.Factory{recon.Spark: eng.Factory()}
		if edit != nil {
			edit(c)
		}
	})
}

// engineRun is what these tests read of a run besides run.
type engineRun struct {
	Engine string `json:"engine"`
}

func (s *testServer) runEngine(id string) string {
	s.t.Helper()
	var r engineRun
	s.call("GET", "/api/runs/"+id, nil, 200, &r)
	return r.Engine
}

// allResults reads a completed run's output table through the results
// API, every page, as text.
func (s *testServer) allResults(id, table string) (cols []string, rows [][]*string) {
	s.t.Helper()
	for off := 0; ; {
		var page struct {
			Columns []struct {
				Name string `json:"name"`
			} `json:"columns"`
			Rows      [][]*string `json:"rows"`
			TotalRows int         `json:"total_rows"`
		}
		s.call("GET", fmt.Sprintf("/api/runs/%s/results/%s?offset=%d&limit=1000", id, table, off), nil, 200, &page)
		if cols == nil {
			for _, c := range page.Columns {
				cols = append(cols, c.Name)
			}
		}
		rows = append(rows, page.Rows...)
		off += len(page.Rows)
		if len(page.Rows) == 0 || off >= page.TotalRows {
			if off != page.TotalRows {
				s.t.Fatalf("%s of run %s: read %d rows, the API counts %d", table, id, off, page.TotalRows)
			}
			return cols, rows
		}
	}
}

// TestSparkRunOverAPI runs the same stored recipe on both engines through
// the HTTP API. The recipe says "engine": "spark", so a run that names no
// engine goes to Spark, and one that names duckdb goes there (the request
// wins). Both give the same counts and the same matched and unmatched
// rows; the Spark run's progress reaches the event stream through the
// same events as DuckDB's, and the engine is on the run, the list and the
// summary.
func TestSparkRunOverAPI(t *testing.T) {
	s := startSparkServer(t, nil)
	var health struct {
		Engines []string `json:"engines"`
	}
	s.call("GET", "/healthz", nil, 200, &health)
	if want := []string{"duckdb", "spark"}; !reflect.DeepEqual(health.Engines, want) {
		t.Fatalf("/healthz engines = %q, want %q", health.Engines, want)
	}

	rec := smallRecipe()
	rec.RecipeID, rec.Engine = "on-spark", kalla.EngineSpark
	s.call("POST", "/api/recipes", rec, 201, nil)

	var queued struct {
		RunID  string `json:"run_id"`
		Engine string `json:"engine"`
	}
	s.call("POST", "/api/runs", map[string]any{"recipe_id": rec.RecipeID}, 202, &queued)
	if queued.Engine != kalla.EngineSpark {
		t.Fatalf("a run of a recipe on spark is queued for %q", queued.Engine)
	}
	onSpark := queued.RunID
	type followed struct {
		evs []sseEvent
		err error
	}
	sse := make(chan followed, 1)
	go func() {
		evs, err := followEvents(s.url, s.token, onSpark, sparkRunTimeout)
		sse <- followed{evs, err}
	}()
	s.call("POST", "/api/runs", map[string]any{"recipe_id": rec.RecipeID, "engine": "duckdb"}, 202, &queued)
	if queued.Engine != kalla.EngineDuckDB {
		t.Fatalf("a run asking for duckdb is queued for %q", queued.Engine)
	}
	onDuck := queued.RunID

	done := func(r run) bool { return r.Status.Done() }
	d := s.waitRun(onDuck, sparkRunTimeout, "the end", done)
	sp := s.waitRun(onSpark, sparkRunTimeout, "the end", done)
	for _, r := range []run{d, sp} {
		if r.Status != kalla.RunCompleted {
			t.Fatalf("run %s: %s %s %q", r.ID, r.Status, r.ErrorCode, r.Error)
		}
	}
	if got := s.runEngine(onSpark); got != kalla.EngineSpark {
		t.Errorf("GET run on spark says engine %q", got)
	}
	if got := s.runEngine(onDuck); got != kalla.EngineDuckDB {
		t.Errorf("GET run on duckdb says engine %q", got)
	}
	// Every file the Spark run wrote (a folder of part files per table)
	// downloads with the digest its summary records.
	var sum kalla.Summary
	s.call("GET", "/api/runs/"+onSpark+"/files/summary.json", nil, 200, &sum)
	if len(sum.Outputs) < 3 {
		t.Fatalf("spark summary outputs: %+v", sum.Outputs)
	}
	for _, o := range sum.Outputs {
		resp, err := s.client.Get(s.url + "/api/runs/" + onSpark + "/files/" + url.PathEscape(o.Name))
		if err != nil {
			t.Fatal(err)
		}
		body, _ := readAll(resp)
		if resp.StatusCode != 200 {
			t.Fatalf("download %s: %d %s", o.Name, resp.StatusCode, body)
		}
		if got := fmt.Sprintf("%x", sha256.Sum256(body)); got != o.SHA256 {
			t.Errorf("download %s: sha256 %s, summary says %s", o.Name, got, o.SHA256)
		}
	}
	s.wantError("GET", "/api/runs/"+onSpark+"/files/matched.parquet%2F..%2F..%2Fkalla.db", nil, 404, kalla.ENOTFOUND)
	var list struct {
		Runs []struct {
			ID     string `json:"run_id"`
			Engine string `json:"engine"`
		} `json:"runs"`
	}
	s.call("GET", "/api/runs", nil, 200, &list)
	engines := map[string]string{}
	for _, r := range list.Runs {
		engines[r.ID] = r.Engine
	}
	if engines[onSpark] != kalla.EngineSpark || engines[onDuck] != kalla.EngineDuckDB {
		t.Errorf("GET /api/runs engines: %v", engines)
	}

	// The same counts, and the counts the generator knows are true.
	counts := func(r run) [5]int64 {
		return [5]int64{*r.LeftCount, *r.RightCount, *r.MatchedCount, *r.UnmatchedLeftCount, *r.UnmatchedRightCount}
	}
	if counts(d) != counts(sp) {
		t.Fatalf("counts (left, right, matched, unmatched left, unmatched right): duckdb %v, spark %v", counts(d), counts(sp))
	}
	if want := int64(smallTruth.MatchedPairs()); *sp.MatchedCount != want {
		t.Errorf("spark run: %d matched pairs, the generator says %d", *sp.MatchedCount, want)
	}
	t.Logf("both engines: left %d right %d matched %d unmatched %d/%d", *sp.LeftCount, *sp.RightCount, *sp.MatchedCount, *sp.UnmatchedLeftCount, *sp.UnmatchedRightCount)

	// The same rows, in the same order, as the results API reads them.
	for _, table := range []string{recon.TableMatched, recon.TableUnmatchedLeft, recon.TableUnmatchedRight} {
		dc, dr := s.allResults(onDuck, table)
		sc, sr := s.allResults(onSpark, table)
		if !reflect.DeepEqual(dc, sc) {
			t.Errorf("%s columns: duckdb %q, spark %q", table, dc, sc)
			continue
		}
		if len(dr) != len(sr) {
			t.Errorf("%s: duckdb %d rows, spark %d", table, len(dr), len(sr))
			continue
		}
		for i := range dr {
			if a, b := rowText(dr[i]), rowText(sr[i]); a != b {
				t.Errorf("%s row %d: duckdb %s, spark %s", table, i, a, b)
				break
			}
		}
	}

	// The summary names the engine, in the record and in summary.json.
	if sum.Engine != kalla.EngineSpark || !strings.HasPrefix(sum.EngineVersion, "spark") {
		t.Errorf("summary.json of the spark run: engine %q, version %q", sum.Engine, sum.EngineVersion)
	}
	s.call("GET", "/api/runs/"+onDuck+"/files/"+recon.SummaryFile, nil, 200, &sum)
	if sum.Engine != kalla.EngineDuckDB {
		t.Errorf("summary.json of the duckdb run: engine %q", sum.Engine)
	}

	// Progress of the Spark run reached the event stream as DuckDB's does:
	// stages in order, a fraction that never goes back, then done.
	f := <-sse
	if f.err != nil {
		t.Fatal(f.err)
	}
	var stages []string
	last := -1.0
	for _, ev := range f.evs[:len(f.evs)-1] {
		if ev.Event != "progress" {
			t.Fatalf("event %q before the end", ev.Event)
		}
		var p struct {
			Status   kalla.RunStatus `json:"status"`
			Stage    string          `json:"stage"`
			Progress float64         `json:"progress"`
		}
		if err := json.Unmarshal([]byte(ev.Data), &p); err != nil {
			t.Fatal(err)
		}
		if p.Progress < last {
			t.Errorf("progress went back from %.2f to %.2f", last, p.Progress)
		}
		last = p.Progress
		if p.Stage != "" && (len(stages) == 0 || stages[len(stages)-1] != p.Stage) {
			stages = append(stages, p.Stage)
		}
	}
	end := f.evs[len(f.evs)-1]
	var final struct {
		Status kalla.RunStatus `json:"status"`
		Engine string          `json:"engine"`
	}
	if err := json.Unmarshal([]byte(end.Data), &final); err != nil || end.Event != "done" || final.Status != kalla.RunCompleted || final.Engine != kalla.EngineSpark {
		t.Fatalf("last event %s %s (%v), want done, completed on spark", end.Event, end.Data, err)
	}
	t.Logf("spark run's stages as the event stream showed them: %v", stages)
	seen := map[string]bool{}
	for _, st := range stages {
		seen[st] = true
	}
	for _, st := range []string{recon.StageLeft, recon.StageMatch, recon.StageWrite} {
		if !seen[st] {
			t.Errorf("the event stream never showed stage %s: %v", st, stages)
		}
	}
}

// rowText prints a row of the results API, NULL apart from "NULL".
func rowText(row []*string) string {
	parts := make([]string, len(row))
	for i, v := range row {
		if v == nil {
			parts[i] = "<null>"
		} else {
			parts[i] = fmt.Sprintf("%q", *v)
		}
	}
	return strings.Join(parts, ",")
}

// TestSparkCancel cancels a Spark run through the API while Spark works
// on it: the Spark operation is interrupted, the run ends cancelled soon
// after, and its output folder (with any summary) is gone.
func TestSparkCancel(t *testing.T) {
	s := startSparkServer(t, nil)
	rec := smallRecipe()
	rec.RecipeID = "cancelled-on-spark"
	id := s.startRun(map[string]any{"recipe": rec, "engine": "spark"})
	// The right side is staged once Spark has read the left one: the run
	// is inside Spark operations from here on.
	s.waitRun(id, sparkRunTimeout, "staging the right side", func(r run) bool {
		return r.Status.Done() || r.Stage == recon.StageRight || r.Stage == recon.StageMatch
	})
	t0 := time.Now()
	var r run
	s.call("POST", "/api/runs/"+id+"/cancel", nil, 202, &r)
	r = s.waitRun(id, 3*time.Minute, "cancelled", func(r run) bool { return r.Status.Done() })
	t.Logf("spark run cancelled %s after the request, in stage %s", time.Since(t0).Round(time.Millisecond), r.Stage)
	if r.Status != kalla.RunCancelled || r.Error != runner.ErrCancelled.Error() {
		t.Fatalf("cancelled spark run: %s %q", r.Status, r.Error)
	}
	if got := s.runEngine(id); got != kalla.EngineSpark {
		t.Errorf("cancelled run's engine %q", got)
	}
	out := runner.OutDir(s.dataDir, id)
	if _, err := os.Stat(filepath.Join(out, recon.SummaryFile)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a summary of the cancelled spark run remains: %v", err)
	}
	if _, err := os.Stat(out); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("outputs of the cancelled spark run remain: %v", err)
	}
	s.wantError("GET", "/api/runs/"+id+"/files/summary.json", nil, 409, kalla.ECONFLICT)
}

// TestEngineRefused: a server without --spark-remote refuses spark at
// POST time, whether the request or the recipe asks for it, and an
// engine Kalla does not have, naming the engines it has; nothing is
// queued.
func TestEngineRefused(t *testing.T) {
	s := startServer(t, nil)
	var health struct {
		Engines []string `json:"engines"`
	}
	s.call("GET", "/healthz", nil, 200, &health)
	if want := []string{"duckdb"}; !reflect.DeepEqual(health.Engines, want) {
		t.Fatalf("/healthz engines = %q, want %q", health.Engines, want)
	}
	rec := smallRecipe()
	s.wantError("POST", "/api/runs", map[string]any{"recipe": rec, "engine": "spark"}, 400, kalla.EINVALID,
		`the run's "engine"`, `engine "spark" is not configured: start kalla with --spark-remote (available: duckdb)`)
	s.wantError("POST", "/api/runs", map[string]any{"recipe": rec, "engine": "oracle"}, 400, kalla.EINVALID,
		`unknown engine "oracle" (available: duckdb)`)

	onSpark := smallRecipe()
	onSpark.RecipeID, onSpark.Engine = "wants-spark", kalla.EngineSpark
	s.call("POST", "/api/recipes", onSpark, 201, nil)
	s.wantError("POST", "/api/runs", map[string]any{"recipe_id": onSpark.RecipeID}, 400, kalla.EINVALID,
		`recipe "wants-spark" asks for it in its "engine"`, "--spark-remote", "available: duckdb")
	// The request wins over the recipe.
	id := s.startRun(map[string]any{"recipe_id": onSpark.RecipeID, "engine": "duckdb"})
	if got := s.runEngine(id); got != kalla.EngineDuckDB {
		t.Errorf("run asking for duckdb of a recipe on spark: engine %q", got)
	}

	// A recipe naming an engine Kalla does not know is not a recipe.
	bad := smallRecipe()
	bad.Engine = "oracle"
	s.wantError("POST", "/api/runs", map[string]any{"recipe": bad}, 400, kalla.EINVALID, `"engine" "oracle" is not an engine`)
	s.wantError("POST", "/api/recipes", bad, 400, kalla.EINVALID, `"engine" "oracle" is not an engine`)

	var list struct {
		Runs []json.RawMessage `json:"runs"`
	}
	s.call("GET", "/api/runs", nil, 200, &list)
	if len(list.Runs) != 1 {
		t.Errorf("%d runs queued, want only the one on duckdb", len(list.Runs))
	}
	s.waitRun(id, time.Minute, "completion", func(r run) bool { return r.Status == kalla.RunCompleted })
}

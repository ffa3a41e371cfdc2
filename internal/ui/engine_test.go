package ui_test

import (
	"strings"
	"testing"
	"time"

	"github.com/kalla-recon/kalla/internal/gen"
	"github.com/kalla-recon/kalla/internal/kalla"
	"github.com/kalla-recon/kalla/internal/recon"
	"github.com/kalla-recon/kalla/internal/server"
	"github.com/kalla-recon/kalla/internal/spark"
	"github.com/kalla-recon/kalla/internal/testenv"
)

// TestEngineShownWithoutChoice: on a server with DuckDB only, the runs
// list and the run page say which engine ran each run, and no page offers
// an engine choice there is none to make.
func TestEngineShownWithoutChoice(t *testing.T) {
	data := newDataset(t, 200)
	s := startServer(t, nil, data.dir)
	rec := gen.Recipe(data.files)
	apiCall(t, s.url, "", "POST", "/api/recipes", rec, nil)
	id := queueRun(t, s, map[string]string{"recipe_id": rec.RecipeID})
	waitRun(t, s, id, time.Minute, func(st kalla.RunStatus, _ float64) bool { return st.Done() })

	runs := get(t, s.url, "/runs")
	if strings.Contains(runs, `id="start-engine"`) {
		t.Errorf("the start form offers an engine choice on a server with DuckDB only")
	}
	if !strings.Contains(runs, `<th scope="col">Engine</th>`) || !strings.Contains(runs, `<td class="engine"><span class="tag">duckdb</span></td>`) {
		t.Errorf("the runs list does not show the run's engine")
	}
	page := get(t, s.url, "/runs/"+id)
	if !strings.Contains(page, `id="run-engine">duckdb<`) {
		t.Errorf("the run page does not show the run's engine")
	}
	if strings.Contains(page, `id="rerun-engine"`) {
		t.Errorf("the run page offers an engine choice on a server with DuckDB only")
	}
}

// TestStartOnSparkInBrowser: on a server with Spark, the start form offers
// the engine; a run started on spark from the page runs there, its page
// follows it to the result and says spark, and the runs list says so too.
func TestStartOnSparkInBrowser(t *testing.T) {
	remote := testenv.SparkRemote(t)
	chromium(t)
	eng, err := spark.New(spark.OptionsFromEnv(remote, nil))
	if err != nil {
		t.Fatal(err)
	}
	data := newDataset(t, 200)
	s := startServer(t, func(c *server.Config) {
		c.Engines = map[string]recon.Factory{recon.Spark: eng.Factory()}
	}, data.dir)
	rec := gen.Recipe(data.files)
	apiCall(t, s.url, "", "POST", "/api/recipes", rec, nil)
	b := newTab(t, s.url)

	b.open("/runs#start")
	b.choose("#start-engine", "spark")
	b.click("#start-form[data-ready] button[type=submit]")
	b.waitText("#run-engine", "spark", 20*time.Second)
	runID := strings.TrimPrefix(b.location(), s.url+"/runs/")
	// The page follows the Spark run over the event stream as it does a
	// DuckDB run's: it leaves "queued" for a stage.
	b.waitUntil("a stage after reading the left source, live", `(() => {
		const e = document.getElementById("p-stage");
		return e && ["Reading the right source", "Matching", "Writing results"].includes(e.textContent.trim()) ? e.textContent : null;
	})()`, 3*time.Minute)

	// A tab lives a few minutes; a Spark run on the shared test cluster
	// may take longer, so the outcome is looked at in a fresh one.
	waitRun(t, s, runID, 15*time.Minute, func(st kalla.RunStatus, _ float64) bool { return st.Done() })
	b = newTab(t, s.url)
	b.open("/runs/" + runID)
	b.waitText("main h2", "Result", 20*time.Second)
	b.waitText("#c-matched", fmtInt(int64(data.truth.MatchedPairs())), 5*time.Second)
	b.eval("run again offers spark, this run's engine", `document.getElementById("rerun-engine").value === "spark"`)

	b.open("/runs")
	b.waitText(`tr[data-run="`+runID+`"] td.engine`, "spark", 10*time.Second)
}

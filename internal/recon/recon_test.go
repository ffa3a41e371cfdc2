package recon_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kalla-recon/kalla/internal/kalla"
	"github.com/kalla-recon/kalla/internal/recon"
	"github.com/kalla-recon/kalla/internal/sources"
)

// writeFiles writes name → content into a new folder and returns it.
func writeFiles(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// invoices is a small reconciliation: are paid, A-3 is not, P-9
// pays nothing on the left.
var invoices = map[string]string{
	"left.csv":  "invoice_id,amount\nA-1,10.00\nA-2,20.00\nA-3,30.00\n",
	"right.csv": "payment_id,reference,amount\nP-1,A-2,20.00\nP-2,A-1,10.00\nP-9,Z-9,99.00\n",
}

// recipe is the invoices recipe with relative paths, as a recipe file
// beside its data gives them.
func recipe() *kalla.Recipe {
	return &kalla.Recipe{
		RecipeID: "recon-test",
		MatchSQL: "SELECT l.invoice_id, r.payment_id FROM left_src l JOIN right_src r ON r.reference = l.invoice_id AND r.amount = l.amount",
		Sources: kalla.Sources{
			Left:  kalla.SourceSpec{Alias: "invoices", URI: "left.csv", PrimaryKey: []string{"invoice_id"}},
			Right: kalla.SourceSpec{Alias: "payments", URI: "right.csv", PrimaryKey: []string{"payment_id"}},
		},
	}
}

func newService(t *testing.T, opts recon.Options) *recon.Service {
	t.Helper()
	mgr := sources.New(sources.Config{})
	t.Cleanup(func() { mgr.Close() })
	opts.Sources = mgr
	return recon.New(opts)
}

func TestRunOnDuckDB(t *testing.T) {
	dir := writeFiles(t, invoices)
	out := filepath.Join(t.TempDir(), "out")
	svc := newService(t, recon.Options{DuckDB: recon.DuckDBOptions{Threads: 2}})
	var stages []string
	sum, err := svc.Run(context.Background(), "", recon.Job{
		Recipe: recipe(), BaseDir: dir, Out: out, RunID: "r1",
		Progress: func(ev recon.Event) {
			if ev.Done {
				stages = append(stages, ev.Stage)
			}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if sum.MatchedCount != 2 || sum.UnmatchedLeftCount != 1 || sum.UnmatchedRightCount != 1 || sum.RunID != "r1" {
		t.Errorf("summary: %d matched, %d/%d unmatched, run %q; want 2, 1/1, r1", sum.MatchedCount, sum.UnmatchedLeftCount, sum.UnmatchedRightCount, sum.RunID)
	}
	// The summary keeps the URI as the recipe gave it.
	if sum.Sources.Left.URI != "left.csv" {
		t.Errorf("summary left URI %q, want left.csv", sum.Sources.Left.URI)
	}
	for _, name := range []string{recon.TableMatched + ".parquet", recon.TableUnmatchedLeft + ".parquet", recon.TableUnmatchedRight + ".parquet", recon.SummaryFile} {
		if _, err := os.Stat(filepath.Join(out, name)); err != nil {
			t.Errorf("output %s: %v", name, err)
		}
	}
	want := []string{recon.StageLeft, recon.StageRight, recon.StageMatch, recon.StageWrite}
	for _, w := range want {
		if !strings.Contains(strings.Join(stages, " "), w) {
			t.Errorf("no done event for stage %s (got %v)", w, stages)
		}
	}
}

func TestDryRunWritesNothing(t *testing.T) {
	dir := writeFiles(t, invoices)
	out := filepath.Join(t.TempDir(), "out")
	svc := newService(t, recon.Options{})
	sum, err := svc.Run(context.Background(), recon.DuckDB, recon.Job{Recipe: recipe(), BaseDir: dir, Out: out, DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	if sum.MatchedCount != 2 {
		t.Errorf("dry run matched %d pairs, want 2", sum.MatchedCount)
	}
	if _, err := os.Stat(out); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("dry run touched its output folder: %v", err)
	}
}

func TestSampleCountsWholeSides(t *testing.T) {
	dir := writeFiles(t, invoices)
	rec := recipe()
	rec.Sources.Left.URI = filepath.Join(dir, "left.csv")
	rec.Sources.Right.URI = filepath.Join(dir, "right.csv")
	svc := newService(t, recon.Options{})
	counted := map[string]int64{}
	admitted, released := 0, 0
	sum, err := svc.Run(context.Background(), "", recon.Job{
		Recipe: rec, Out: filepath.Join(t.TempDir(), "out"), Sample: 1,
		Counted: func(side string, n int64, _ string) { counted[side] = n },
		Admit: func(context.Context) (func(), error) {
			admitted++
			return func() { released++ }, nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if counted["left"] != 3 || counted["right"] != 3 {
		t.Errorf("counted %v, want 3 rows a side", counted)
	}
	if sum.LeftCount != 1 || sum.RightCount != 1 {
		t.Errorf("sample staged %d/%d rows, want 1/1", sum.LeftCount, sum.RightCount)
	}
	if admitted != 1 || released != 1 {
		t.Errorf("admitted %d times, released %d, want once each", admitted, released)
	}
}

func TestRunSourceErrors(t *testing.T) {
	dir := writeFiles(t, invoices)
	t.Run("missing file", func(t *testing.T) {
		rec := recipe()
		rec.Sources.Right.URI = "nowhere.csv"
		_, err := newService(t, recon.Options{}).Run(context.Background(), "", recon.Job{Recipe: rec, BaseDir: dir, Out: t.TempDir()})
		var se *kalla.SourceError
		if !errors.As(err, &se) || se.Side != "right" || se.Alias != "payments" || kalla.ErrorCode(err) != kalla.ENOTFOUND {
			t.Fatalf("got %v (code %s), want a not_found SourceError naming the right side", err, kalla.ErrorCode(err))
		}
	})
	t.Run("refused by policy", func(t *testing.T) {
		refuse := errors.New("outside the allowed folders")
		svc := newService(t, recon.Options{CheckSource: func(s kalla.SourceSpec) error {
			if s.Alias == "invoices" {
				return kalla.WrapError(kalla.EINVALID, refuse, "source %s is outside the allowed folders", s.URI)
			}
			return nil
		}})
		_, err := svc.Run(context.Background(), "", recon.Job{Recipe: recipe(), BaseDir: dir, Out: t.TempDir()})
		var se *kalla.SourceError
		if !errors.As(err, &se) || se.Side != "left" || !errors.Is(err, refuse) {
			t.Fatalf("got %v, want the policy's error on the left side", err)
		}
		chk, err := svc.Check(context.Background(), "", recipe(), recon.CheckOptions{BaseDir: dir})
		if err != nil {
			t.Fatal(err)
		}
		if chk.OK() || !strings.Contains(strings.Join(chk.Problems, "\n"), "outside the allowed folders") {
			t.Errorf("check problems %q, want the refusal", chk.Problems)
		}
	})
}

func TestRecipeErrorIsClassified(t *testing.T) {
	dir := writeFiles(t, invoices)
	rec := recipe()
	rec.MatchSQL = "SELECT l.invoice_id, r.payment_id FROM left_src l JOIN right_src r ON r.no_such_column = l.invoice_id"
	_, err := newService(t, recon.Options{}).Run(context.Background(), "", recon.Job{Recipe: rec, BaseDir: dir, Out: t.TempDir()})
	if !errors.Is(err, recon.ErrRecipe) || kalla.ErrorCode(err) != kalla.EINVALID {
		t.Fatalf("got %v (code %s), want an invalid ErrRecipe", err, kalla.ErrorCode(err))
	}
	if !strings.Contains(err.Error(), "no_such_column") {
		t.Errorf("error %q does not name the column", err)
	}
}

func TestCheck(t *testing.T) {
	dir := writeFiles(t, invoices)
	svc := newService(t, recon.Options{})
	chk, err := svc.Check(context.Background(), "", recipe(), recon.CheckOptions{BaseDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if !chk.OK() || len(chk.LeftColumns) != 2 || len(chk.RightColumns) != 3 {
		t.Fatalf("check: problems %q, %d/%d columns; want none, 2/3", chk.Problems, len(chk.LeftColumns), len(chk.RightColumns))
	}
	rec := recipe()
	rec.Sources.Left.PrimaryKey = []string{"nope"}
	chk, err = svc.Check(context.Background(), "", rec, recon.CheckOptions{BaseDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if chk.OK() || !strings.Contains(strings.Join(chk.Problems, "\n"), "nope") {
		t.Errorf("check problems %q, want the missing key named", chk.Problems)
	}
}

func TestBadMemoryLimitIsEngineConfig(t *testing.T) {
	dir := writeFiles(t, invoices)
	svc := newService(t, recon.Options{DuckDB: recon.DuckDBOptions{MemoryLimit: "lots"}})
	_, err := svc.Run(context.Background(), "", recon.Job{Recipe: recipe(), BaseDir: dir, Out: t.TempDir()})
	if !errors.Is(err, recon.ErrEngineConfig) || kalla.ErrorCode(err) != kalla.EINVALID || !strings.Contains(err.Error(), `"lots"`) {
		t.Fatalf("got %v (code %s), want an invalid engine-configuration error naming the limit", err, kalla.ErrorCode(err))
	}
}

func TestUnknownEngines(t *testing.T) {
	svc := newService(t, recon.Options{})
	for _, tc := range []struct{ name, want string }{
		{"spark", `engine "spark" is not configured: start kalla with --spark-remote (available: duckdb)`},
		{"oracle", `unknown engine "oracle" (available: duckdb)`},
	} {
		_, err := svc.Run(context.Background(), tc.name, recon.Job{Recipe: recipe()})
		if kalla.ErrorCode(err) != kalla.EINVALID || kalla.ErrorMessage(err) != tc.want {
			t.Errorf("run on %s: got %v (code %s), want %q", tc.name, err, kalla.ErrorCode(err), tc.want)
		}
		_, err = svc.Check(context.Background(), tc.name, recipe(), recon.CheckOptions{})
		if kalla.ErrorMessage(err) != tc.want {
			t.Errorf("check on %s: got %v, want %q", tc.name, err, tc.want)
		}
	}
	if err := svc.CheckEngine("oracle"); kalla.ErrorMessage(err) != `unknown engine "oracle" (available: duckdb)` {
		t.Errorf("CheckEngine(oracle): got %v", err)
	}
	if err := svc.CheckEngine(""); err != nil {
		t.Errorf("CheckEngine(default): %v", err)
	}
	if !svc.Has("") || !svc.Has(recon.DuckDB) || svc.Has(recon.Spark) {
		t.Errorf("Has: default %v, duckdb %v, spark %v; want true, true, false", svc.Has(""), svc.Has(recon.DuckDB), svc.Has(recon.Spark))
	}
}

// recorder is an engine that keeps what it was given, standing in for an
// engine registered later (Spark): the service must hand it the job as
// the caller built it and close it after.
type recorder struct {
	jobs   []recon.Job
	closed int
}

func (r *recorder) Name() string { return "recorder" }
func (r *recorder) Run(_ context.Context, job recon.Job) (*kalla.Summary, error) {
	r.jobs = append(r.jobs, job)
	return &kalla.Summary{RecipeID: job.Recipe.RecipeID, RunID: job.RunID}, nil
}
func (r *recorder) Check(context.Context, *kalla.Recipe, recon.CheckOptions) (*recon.Check, error) {
	return &recon.Check{Problems: []string{}}, nil
}
func (r *recorder) Close() error { r.closed++; return nil }

func TestRegisteredEngine(t *testing.T) {
	svc := newService(t, recon.Options{CheckSource: func(s kalla.SourceSpec) error {
		if strings.Contains(s.URI, "secret") {
			return kalla.Errorf(kalla.EINVALID, "refused")
		}
		return nil
	}})
	rec := &recorder{}
	made := 0
	svc.Register("recorder", func(context.Context) (recon.Engine, error) { made++; return rec, nil })
	if got := strings.Join(svc.Engines(), ","); got != "duckdb,recorder" {
		t.Errorf("engines %s, want duckdb,recorder", got)
	}
	sum, err := svc.Run(context.Background(), "recorder", recon.Job{Recipe: recipe(), RunID: "x", Out: "s3://bucket/prefix"})
	if err != nil || sum.RunID != "x" {
		t.Fatalf("run: %v, %+v", err, sum)
	}
	if len(rec.jobs) != 1 || rec.jobs[0].Recipe.Sources.Left.URI != "left.csv" || rec.jobs[0].Out != "s3://bucket/prefix" || rec.closed != 1 {
		t.Errorf("engine got %+v and was closed %d times", rec.jobs, rec.closed)
	}
	// A refused source never reaches the engine.
	bad := recipe()
	bad.Sources.Right.URI = "/secret/right.csv"
	if _, err := svc.Run(context.Background(), "recorder", recon.Job{Recipe: bad}); err == nil || made != 1 {
		t.Errorf("refused run: err %v, engine made %d times (want an error and no new engine)", err, made)
	}
}

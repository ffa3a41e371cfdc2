package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/kalla-recon/kalla/internal/kalla"
)

// sparkRemote is the Spark Connect endpoint the Spark benchmark uses:
// KALLA_SPARK_REMOTE as `kalla run --engine spark` reads it, else the test
// cluster's KALLA_TEST_SPARK_REMOTE; empty skips it.
func sparkRemote() string {
	if r := os.Getenv("KALLA_SPARK_REMOTE"); r != "" {
		return r
	}
	return os.Getenv("KALLA_TEST_SPARK_REMOTE")
}

// runSpark is runKalla with --engine spark: the same recipe, the same
// checks against the truth.
func (f *fixture) runSpark(ctx context.Context, remote, out string) (kallaRun, error) {
	stdout, d, err := timed(ctx, f.kallaBin, "run", "--recipe", f.recipe, "--out", out, "--json", "--engine", "spark", "--spark-remote", remote)
	if err != nil {
		return kallaRun{}, err
	}
	var s kalla.Summary
	if err := json.Unmarshal(stdout, &s); err != nil {
		return kallaRun{}, fmt.Errorf("kalla --engine spark --json printed no summary: %v\n%s", err, stdout)
	}
	for _, o := range s.Outputs {
		if _, err := os.Stat(filepath.Join(out, o.Name)); err != nil {
			return kallaRun{}, fmt.Errorf("kalla spark output: %w", err)
		}
	}
	return kallaRun{timing: d, Summary: &s}, checkKalla(&s, f.truth)
}

// BenchmarkSparkVsDuckDB runs the engine benchmark's recipe on the 1M set
// with `kalla run --engine spark` and with the default DuckDB engine,
// KALLA_BENCH_SPARK_REPS times each (default 1: Spark on a small cluster
// takes minutes), checks both answers against the truth and prints both
// times. Without a Spark remote it prints one line and skips. The data sit
// in a local temp folder (TMPDIR): the cluster must see the same path, as
// the local test cluster does. Run it once: -benchtime 1x.
func BenchmarkSparkVsDuckDB(b *testing.B) {
	remote := sparkRemote()
	if remote == "" {
		fmt.Println("\n== Spark engine benchmark: skipped (set KALLA_SPARK_REMOTE=sc://host:port to run it) ==")
		b.Skip("no Spark remote")
	}
	fixOnce.Do(func() { fix, fixErr = prepare() })
	if fixErr != nil {
		b.Fatal(fixErr)
	}
	reps, err := envInt("KALLA_BENCH_SPARK_REPS", 1)
	if err != nil {
		b.Fatal(err)
	}
	ctx := b.Context()
	for range b.N {
		var spark, duck []kallaRun
		load := loadAverage()
		for i := range reps {
			out := filepath.Join(fix.dir, fmt.Sprintf("out-spark-%d", i))
			s, err := fix.runSpark(ctx, remote, out)
			if err != nil {
				b.Fatal(err)
			}
			os.RemoveAll(out)
			spark = append(spark, s)
			out = filepath.Join(fix.dir, fmt.Sprintf("out-spark-duck-%d", i))
			d, err := fix.runKalla(ctx, out)
			if err != nil {
				b.Fatal(err)
			}
			os.RemoveAll(out)
			duck = append(duck, d)
			fmt.Fprintf(os.Stderr, "spark rep %d/%d: spark %s, duckdb %s\n", i+1, reps, secs(s.Wall), secs(d.Wall))
		}
		writeSparkReport(os.Stdout, remote, load, loadAverage(), spark, duck)
		sm, dm := medians(timings(spark)).Wall, medians(timings(duck)).Wall
		b.ReportMetric(sm.Seconds(), "spark-s")
		b.ReportMetric(dm.Seconds(), "duckdb-s")
		b.ReportMetric(ratio(sm, dm), "spark/duckdb")
	}
}

func timings(rs []kallaRun) []timing {
	out := make([]timing, len(rs))
	for i, r := range rs {
		out[i] = r.timing
	}
	return out
}

// writeSparkReport prints both engines' times and Spark's stages.
func writeSparkReport(w io.Writer, remote, loadBefore, loadAfter string, spark, duck []kallaRun) {
	t := fix.truth
	fmt.Fprintf(w, "\n== Kalla on Spark vs DuckDB (same recipe, same binary) ==\n")
	fmt.Fprintf(w, "data      gen.Standard(%s): %s invoices, %s payments; truth %s matched pairs, %s unmatched invoices, %s unmatched payments\n",
		thousands(fix.spec.Invoices), thousands(t.Invoices), thousands(t.Payments), thousands(t.MatchedPairs()), thousands(t.OrphanInvoices), thousands(t.StrayPayments))
	fmt.Fprintf(w, "machine   %d CPUs, load average %s before, %s after\n", runtime.NumCPU(), loadBefore, loadAfter)
	fmt.Fprintf(w, "spark     kalla run --engine spark --spark-remote %s (%s)\n", remote, spark[0].Summary.EngineVersion)
	fmt.Fprintf(w, "duckdb    kalla run (%s)\n", duck[0].Summary.EngineVersion)
	fmt.Fprintf(w, "answers   every run checked against the truth: all correct\n\n")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "rep\tspark wall\tduckdb wall\tspark/duckdb\t")
	for i := range min(len(spark), len(duck)) {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%.1f\t\n", i+1, secs(spark[i].Wall), secs(duck[i].Wall), ratio(spark[i].Wall, duck[i].Wall))
	}
	sm, dm := medians(timings(spark)).Wall, medians(timings(duck)).Wall
	fmt.Fprintf(tw, "median\t%s\t%s\t%.1f\t\n", secs(sm), secs(dm), ratio(sm, dm))
	tw.Flush()
	fmt.Fprintf(w, "\nSpark stages (each run's summary.json):\n")
	sparkStages(spark).write(w, len(spark))
	fmt.Fprintln(w, "\nSpark on a few local cores is far slower than DuckDB: the figure is for the record; the point is the same answers and a path past one machine.")
}

// sparkStages tabulates the Spark runs' stages, their sum and the rest of
// the process. Unlike DuckDB's, the Spark engine stages the two sides one
// after the other, so both count towards the sum.
func sparkStages(runs []kallaRun) *stageTable {
	t := &stageTable{}
	for i, k := range runs {
		var sum time.Duration
		for _, s := range k.Summary.Stages {
			d := time.Duration(s.DurationMS) * time.Millisecond
			sum += d
			t.add(i, s.Name, d)
		}
		t.add(i, rowSum, sum)
		t.add(i, rowRest, k.Wall-sum)
	}
	return t
}

// Package bench is Kalla's engine benchmark: `bin/kalla run` end to end
// against the same reconciliation written by hand in plain DuckDB SQL
// (./plainduck), both as subprocesses over the same generated files, with
// every answer checked against the generator's ground truth.
//
// The benchmark itself is BenchmarkKallaVsPlainDuckDB in bench_test.go; run
// it with scripts/bench.sh (make bench). This file holds what it needs that
// can be tested cheaply: the answer checks, the medians and the report.
package bench

import (
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/kalla-recon/kalla/internal/bench/plainsql"
	"github.com/kalla-recon/kalla/internal/gen"
	"github.com/kalla-recon/kalla/internal/kalla"
	"github.com/kalla-recon/kalla/internal/recon"
)

// Target is the ratio of Kalla's median time to plain DuckDB's that the
// project aims for with a SQL recipe (issue 18: no slower than the same
// work written by hand, with every guarantee kept). The benchmark reports
// it; it never fails on it.
const Target = 1.0

// plainResult is what the baselines print.
type plainResult = plainsql.Result

// mismatch collects differences between an answer and the truth.
type mismatch []string

func (m *mismatch) check(what string, got int64, want int) {
	if got != int64(want) {
		*m = append(*m, fmt.Sprintf("%s = %d, truth says %d", what, got, want))
	}
}

func (m mismatch) err(who string) error {
	if len(m) == 0 {
		return nil
	}
	return fmt.Errorf("%s gave a WRONG ANSWER: %s", who, strings.Join(m, "; "))
}

// checkKalla compares a Kalla run summary with the generator's truth. Each
// payment settles at most one invoice, so every matched pair uses a distinct
// payment: matched right records equal matched pairs.
func checkKalla(s *kalla.Summary, t gen.Truth) error {
	var m mismatch
	if s.Status != "completed" {
		m = append(m, fmt.Sprintf("status = %q, want completed", s.Status))
	}
	m.check("left_count", s.LeftCount, t.Invoices)
	m.check("right_count", s.RightCount, t.Payments)
	m.check("matched_count", s.MatchedCount, t.MatchedPairs())
	m.check("matched_left_records", s.MatchedLeftRecords, t.MatchedInvoices())
	m.check("matched_right_records", s.MatchedRightRecords, t.MatchedPairs())
	m.check("unmatched_left_count", s.UnmatchedLeftCount, t.OrphanInvoices)
	m.check("unmatched_right_count", s.UnmatchedRightCount, t.StrayPayments)
	want := map[string]int{
		"matched":         t.MatchedPairs(),
		"unmatched_left":  t.OrphanInvoices,
		"unmatched_right": t.StrayPayments,
	}
	// A table is one file on DuckDB and a folder of part files (and
	// "meta" files without rows) on Spark: rows are summed per table and
	// format.
	rows := map[[2]string]int64{}
	for _, o := range s.Outputs {
		if o.Format != "meta" {
			rows[[2]string{o.Table, o.Format}] += o.Rows
		}
	}
	seen := map[string]bool{}
	for tf, n := range rows {
		if w, ok := want[tf[0]]; ok {
			m.check("rows of "+tf[0]+"."+tf[1], n, w)
			seen[tf[0]] = true
		}
	}
	for table := range want {
		if !seen[table] {
			m = append(m, "no output for "+table)
		}
	}
	return m.err("kalla")
}

// checkPlain compares plainduck's counts with the generator's truth.
func checkPlain(r *plainResult, t gen.Truth) error {
	var m mismatch
	m.check("invoices loaded", r.Invoices, t.Invoices)
	m.check("payments loaded", r.Payments, t.Payments)
	m.check("matched pairs", r.MatchedPairs, t.MatchedPairs())
	m.check("matched invoices", r.Invoices-r.UnmatchedLeft, t.MatchedInvoices())
	m.check("unmatched invoices", r.UnmatchedLeft, t.OrphanInvoices)
	m.check("unmatched payments", r.UnmatchedRight, t.StrayPayments)
	return m.err("plain DuckDB")
}

// median returns the middle value (the mean of the two middle values for an
// even count); 0 for none.
func median(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// timing is what one subprocess cost: wall time, and CPU time (user plus
// system, all threads), which other load on a shared machine disturbs less.
type timing struct {
	Wall, CPU time.Duration
}

// kallaRun is one timed `kalla run`.
type kallaRun struct {
	timing
	Summary *kalla.Summary
}

// plainRun is one timed plainduck run.
type plainRun struct {
	timing
	Result *plainResult
}

// report is everything the benchmark prints.
type report struct {
	Spec             gen.Spec
	Truth            gen.Truth
	GenTime          time.Duration
	LeftMB, RightMB  float64
	CPUs             int
	Kalla            []kallaRun
	Plain            []plainRun
	KallaBin, DuckDB string
	// Schema says the recipe declared the amount columns' types.
	Schema bool
	// LoadBefore and LoadAfter are the 1-minute load averages around the
	// runs: a load above the CPU count means the times are not clean.
	LoadBefore, LoadAfter string
}

// loadAverage returns the 1-minute load average, or "?" where the system
// does not say.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	if f := strings.Fields(string(b)); len(f) > 0 {
		return f[0]
	}
	return "?"
}

func (r *report) kallaTimings() []timing {
	ts := make([]timing, len(r.Kalla))
	for i, k := range r.Kalla {
		ts[i] = k.timing
	}
	return ts
}

func (r *report) plainTimings() []timing {
	ts := make([]timing, len(r.Plain))
	for i, p := range r.Plain {
		ts[i] = p.timing
	}
	return ts
}

// medians returns the median wall and CPU times.
func medians(ts []timing) timing {
	wall := make([]time.Duration, len(ts))
	cpu := make([]time.Duration, len(ts))
	for i, t := range ts {
		wall[i], cpu[i] = t.Wall, t.CPU
	}
	return timing{Wall: median(wall), CPU: median(cpu)}
}

func (r *report) kallaMedian() time.Duration { return medians(r.kallaTimings()).Wall }
func (r *report) plainMedian() time.Duration { return medians(r.plainTimings()).Wall }

// ratio is Kalla's median wall time over plain DuckDB's.
func (r *report) ratio() float64 { return ratio(r.kallaMedian(), r.plainMedian()) }

func ratio(a, b time.Duration) float64 {
	if b == 0 {
		return 0
	}
	return float64(a) / float64(b)
}

// spread is the largest run over the smallest, by wall time: how noisy the
// runs were.
func spread(ts []timing) float64 {
	if len(ts) == 0 {
		return 1
	}
	lo, hi := ts[0].Wall, ts[0].Wall
	for _, t := range ts {
		lo, hi = min(lo, t.Wall), max(hi, t.Wall)
	}
	return ratio(hi, lo)
}

// stageTable is a per-run timing table: one row per stage, one column per
// run, and the median.
type stageTable struct {
	names []string
	runs  [][]time.Duration // runs[stage][run]
}

func (t *stageTable) add(run int, name string, d time.Duration) {
	i := slices.Index(t.names, name)
	if i < 0 {
		i = len(t.names)
		t.names = append(t.names, name)
		t.runs = append(t.runs, nil)
	}
	for len(t.runs[i]) < run {
		t.runs[i] = append(t.runs[i], 0)
	}
	t.runs[i] = append(t.runs[i], d)
}

func (t *stageTable) write(w io.Writer, runs int) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprint(tw, "  \t")
	for i := range runs {
		fmt.Fprintf(tw, "%9s\t", fmt.Sprintf("rep %d", i+1))
	}
	fmt.Fprintf(tw, "%9s\t\n", "median")
	for i, n := range t.names {
		fmt.Fprintf(tw, "  %s\t", n)
		for j := range runs {
			if j < len(t.runs[i]) {
				fmt.Fprintf(tw, "%9s\t", secs(t.runs[i][j]))
			} else {
				fmt.Fprintf(tw, "%9s\t", "-")
			}
		}
		fmt.Fprintf(tw, "%9s\t\n", secs(median(t.runs[i])))
	}
	tw.Flush()
}

// Rows added to the stage tables after the stages themselves.
const (
	rowSum  = "(sum)"
	rowRest = "(rest of process)"
)

// kallaStages tabulates the stages of Kalla's summaries, then their sum and
// what the process spent outside them. The two staging stages run at once,
// so only the longer counts towards the sum.
func (r *report) kallaStages() *stageTable {
	t := &stageTable{}
	for i, k := range r.Kalla {
		var sum, staging time.Duration
		for _, s := range k.Summary.Stages {
			d := time.Duration(s.DurationMS) * time.Millisecond
			if s.Name == recon.StageLeft || s.Name == recon.StageRight {
				staging = max(staging, d)
			} else {
				sum += d
			}
			t.add(i, s.Name, d)
		}
		sum += staging
		t.add(i, rowSum, sum)
		t.add(i, rowRest, k.Wall-sum)
	}
	return t
}

// plainSteps tabulates plainduck's statements, then their sum and what the
// process spent outside them.
func (r *report) plainSteps() *stageTable {
	t := &stageTable{}
	for i, p := range r.Plain {
		var sum time.Duration
		for _, s := range p.Result.Steps {
			d := time.Duration(s.DurationMS * float64(time.Millisecond))
			sum += d
			t.add(i, s.Name, d)
		}
		t.add(i, rowSum, sum)
		t.add(i, rowRest, p.Wall-sum)
	}
	return t
}

func secs(d time.Duration) string { return fmt.Sprintf("%.3f s", d.Seconds()) }

// thousands formats a count (never negative here) with comma separators.
func thousands(n int) string {
	s := fmt.Sprint(n)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

// write prints the report.
func (r *report) write(w io.Writer) {
	t := r.Truth
	fmt.Fprintf(w, "\n== Kalla engine benchmark ==\n")
	fmt.Fprintf(w, "data      gen.Standard(%s): %s invoices (%.1f MB), %s payments (%.1f MB), generated in %s\n",
		thousands(r.Spec.Invoices), thousands(t.Invoices), r.LeftMB, thousands(t.Payments), r.RightMB, secs(r.GenTime))
	fmt.Fprintf(w, "truth     %s matched pairs, %s matched invoices, %s unmatched invoices, %s unmatched payments\n",
		thousands(t.MatchedPairs()), thousands(t.MatchedInvoices()), thousands(t.OrphanInvoices), thousands(t.StrayPayments))
	fmt.Fprintf(w, "machine   %d CPUs, %s, load average %s before, %s after\n", r.CPUs, r.DuckDB, r.LoadBefore, r.LoadAfter)
	fmt.Fprintf(w, "kalla     %s run --recipe recipe.json --out DIR --json (whole process)\n", r.KallaBin)
	if r.Schema {
		fmt.Fprintf(w, "          recipe = gen.Recipe + schema {amount, paid_amount: DECIMAL(18,2)} (KALLA_BENCH_SCHEMA=1)\n")
	} else {
		fmt.Fprintf(w, "          recipe = gen.Recipe as is: Kalla infers and measures the amount types\n")
	}
	fmt.Fprintf(w, "plain     plainduck: read_csv (amounts DECIMAL(18,2)), hash join, 2 anti-joins, Parquet (whole process)\n")
	fmt.Fprintf(w, "answers   every run checked against the truth: all correct\n\n")

	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "rep\tkalla wall\tplain wall\tkalla/plain\tkalla CPU\tplain CPU\tkalla/plain\t")
	row := func(name string, k, p timing) {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%.2f\t%s\t%s\t%.2f\t\n", name,
			secs(k.Wall), secs(p.Wall), ratio(k.Wall, p.Wall), secs(k.CPU), secs(p.CPU), ratio(k.CPU, p.CPU))
	}
	for i := range min(len(r.Kalla), len(r.Plain)) {
		row(fmt.Sprint(i+1), r.Kalla[i].timing, r.Plain[i].timing)
	}
	row("median", medians(r.kallaTimings()), medians(r.plainTimings()))
	tw.Flush()
	fmt.Fprintf(w, "(CPU = user+system time of the process, all threads)\n")
	writeVerdict(w, r.ratio(), Target)
	if sk, sp := spread(r.kallaTimings()), spread(r.plainTimings()); sk > 1.25 || sp > 1.25 {
		fmt.Fprintf(w, "NOTE: runs of one side differ by up to %.0f%% (kalla) and %.0f%% (plain): the machine was not quiet;\n  the CPU-time ratio is the steadier figure.\n", (sk-1)*100, (sp-1)*100)
	}
	fmt.Fprintln(w)

	fmt.Fprintf(w, "Kalla stages (each run's summary.json):\n")
	r.kallaStages().write(w, len(r.Kalla))
	fmt.Fprintf(w, "\nPlain DuckDB statements (timed inside plainduck):\n")
	r.plainSteps().write(w, len(r.Plain))
	fmt.Fprintf(w, "\n%s: Kalla stages both sides at once, so its sum counts the longer of stage_left and stage_right.\n", rowSum)
	fmt.Fprintf(w, "%s: process wall time minus the timed parts (start-up, DuckDB open/close, exit;\n  for Kalla also reading the recipe and opening the sources).\n", rowRest)
	fmt.Fprintln(w)
}

// writeVerdict prints the median wall-time ratio against its target. Three
// decimals: at two, a ratio just over the target (1.253 on 7 Dec) printed
// as the target itself beside "OVER TARGET".
func writeVerdict(w io.Writer, ratio, target float64) {
	verdict := "within target"
	if ratio > target {
		verdict = "OVER TARGET"
	}
	fmt.Fprintf(w, "\nratio kalla/plain (median wall times) = %.3f   target <= %.2f: %s\n", ratio, target, verdict)
}

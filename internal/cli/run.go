package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/kalla-recon/kalla/internal/connector"
	"github.com/kalla-recon/kalla/internal/kalla"
	"github.com/kalla-recon/kalla/internal/recon"
	"github.com/kalla-recon/kalla/internal/sources"
)

// runFlags are the settings of a local run.
type runFlags struct {
	recipe      string
	out         string
	format      string
	json        bool
	memoryLimit string
	threads     int
	tempDir     string
	idle        time.Duration
	maxDuration time.Duration
	// records asks for matched_left/matched_right (kalla run --records).
	records bool
	engineFlags
}

func (f *runFlags) engineOptions(e *env) recon.DuckDBOptions {
	return recon.DuckDBOptions{MemoryLimit: f.memoryLimit, Threads: f.threads, TempDir: f.tempDir, SourceIdleTimeout: f.idle, Logger: e.log}
}

func (e *env) runCmd() *cobra.Command {
	f := &runFlags{}
	cmd := &cobra.Command{
		Use:   "run --recipe RECIPE --out DIR",
		Short: "Reconcile two sources by a recipe and write the evidence",
		Long: `Reconcile the recipe's two sources and write into DIR:
  matched.parquet          one row per matched pair, with both records' keys
  unmatched_left.parquet   the full rows of left records no match used
  unmatched_right.parquet  the same for the right side
  summary.json             counts, timings and a SHA-256 of every file (written last)`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if f.recipe == "" {
				return usagef("--recipe is required")
			}
			if f.out == "" {
				return usagef("--out is required")
			}
			rec, base, err := readRecipe(f.recipe)
			if err != nil {
				return err
			}
			return e.run(cmd.Context(), rec, base, f)
		},
	}
	cmd.Flags().StringVar(&f.recipe, "recipe", "", "recipe file (JSON or YAML)")
	cmd.Flags().StringVar(&f.out, "out", "", "folder for the outputs")
	cmd.Flags().BoolVar(&f.records, "records", false, "also write matched_left and matched_right: the whole records each side's pairs use, for reading pairs as two records (costs about +20% on large runs)")
	addEngineFlags(cmd, f)
	e.addDryRun(cmd, f)
	cmd.AddCommand(e.runEvidenceCmd())
	return cmd
}

func addEngineFlags(cmd *cobra.Command, f *runFlags) {
	cmd.Flags().StringVar(&f.format, "format", "parquet", "output formats: parquet, csv or parquet,csv")
	cmd.Flags().BoolVar(&f.json, "json", false, "print the summary as JSON")
	cmd.Flags().StringVar(&f.memoryLimit, "memory-limit", "", "memory budget of the run, e.g. 4GB: DuckDB gets what leaves room for the process's own buffers, and spills to disk beyond it")
	cmd.Flags().IntVar(&f.threads, "threads", 0, "DuckDB worker threads (0: one per core)")
	cmd.Flags().StringVar(&f.tempDir, "temp-dir", "", "folder DuckDB spills to (default: a temporary folder)")
	cmd.Flags().DurationVar(&f.idle, "source-idle-timeout", connector.DefaultIdleTimeout, "fail when a source sends nothing for this long")
	cmd.Flags().DurationVar(&f.maxDuration, "max-duration", 0, "fail the run if it takes longer than this (0: no limit)")
	f.engineFlags.add(cmd)
}

// readRecipe reads and validates a recipe file; relative source paths in it
// are resolved against the file's folder.
func readRecipe(path string) (*kalla.Recipe, string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, "", usagef("recipe file %s does not exist", path)
		}
		return nil, "", fmt.Errorf("read recipe: %w", err)
	}
	rec, err := kalla.ParseRecipe(data)
	if err != nil {
		return nil, "", fmt.Errorf("%s: %w", path, errors.Join(errInvalidRecipe, err))
	}
	base, err := filepath.Abs(filepath.Dir(path))
	if err != nil {
		return nil, "", fmt.Errorf("resolve recipe folder: %w", err)
	}
	return rec, base, nil
}

func parseFormats(s string) ([]string, error) {
	var out []string
	for _, p := range strings.Split(s, ",") {
		p = strings.ToLower(strings.TrimSpace(p))
		switch p {
		case recon.FormatParquet, recon.FormatCSV:
			out = append(out, p)
		case "":
		default:
			return nil, usagef("--format: unknown format %q (use parquet, csv or parquet,csv)", p)
		}
	}
	if len(out) == 0 {
		return nil, usagef("--format: give parquet, csv or parquet,csv")
	}
	return out, nil
}

// run executes a recipe locally and prints the summary.
func (e *env) run(ctx context.Context, rec *kalla.Recipe, base string, f *runFlags) error {
	formats, err := parseFormats(f.format)
	if err != nil {
		return err
	}
	sum, err := e.execute(ctx, rec, base, f, recon.Job{Out: f.out, Formats: formats, Records: f.records})
	if err != nil {
		return err
	}
	if f.json {
		return e.printJSON(sum)
	}
	printSummary(e.stdout, sum, f.out)
	printRulesReport(e.stdout, sum)
	return nil
}

// execute runs job (its recipe, base folder and progress filled in here)
// through the reconciliation service, with progress on stderr; the service
// opens and closes the sources and the engine (DuckDB only released when the
// process is exiting; see Process). run and the dry run share it.
func (e *env) execute(ctx context.Context, rec *kalla.Recipe, base string, f *runFlags, job recon.Job) (*kalla.Summary, error) {
	if f.idle <= 0 || f.maxDuration < 0 {
		return nil, usagef("--source-idle-timeout must be positive and --max-duration not negative")
	}
	var tooLong error
	if f.maxDuration > 0 {
		tooLong = kalla.Errorf(kalla.EUNAVAILABLE, "the run took longer than its maximum duration of %s (--max-duration) and was stopped", f.maxDuration)
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeoutCause(ctx, f.maxDuration, tooLong)
		defer cancel()
	}
	sum, err := e.executeIn(ctx, rec, base, f, job)
	if err != nil && tooLong != nil && context.Cause(ctx) == tooLong {
		return nil, tooLong
	}
	return sum, err
}

// executeIn is execute within its deadline.
func (e *env) executeIn(ctx context.Context, rec *kalla.Recipe, base string, f *runFlags, job recon.Job) (*kalla.Summary, error) {
	cfg, err := e.sourcesConfig()
	if err != nil {
		return nil, err
	}
	cfg.IdleTimeout = f.idle
	mgr := sources.New(cfg)
	defer mgr.Close()
	svc := e.newRecon(mgr, f.engineOptions(e))
	if err := f.engineFlags.register(e, svc, rec); err != nil {
		return nil, err
	}
	prog := newProgress(e.stderr, f.json)
	job.Recipe, job.BaseDir, job.Progress = rec, base, prog.event
	sum, err := svc.Run(ctx, f.engine, job)
	prog.finish()
	if errors.Is(err, recon.ErrEngineConfig) {
		return nil, usageError{err} // a bad --memory-limit
	}
	return sum, err
}

// printJSON writes v to stdout as indented JSON.
func (e *env) printJSON(v any) error {
	enc := json.NewEncoder(e.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// progress shows a run's progress on stderr: a bar on a terminal, a plain
// line per finished stage otherwise, nothing with --json.
type progress struct {
	w     io.Writer
	bar   *progressbar.ProgressBar
	plain bool
	start time.Time
}

func newProgress(w io.Writer, quiet bool) *progress {
	p := &progress{w: w, start: time.Now()}
	if quiet {
		return p
	}
	if f, ok := w.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		p.bar = progressbar.NewOptions(1000,
			progressbar.OptionSetWriter(w),
			progressbar.OptionSetWidth(30),
			progressbar.OptionSetDescription("starting"),
			progressbar.OptionClearOnFinish(),
			progressbar.OptionThrottle(100*time.Millisecond),
		)
		return p
	}
	p.plain = true
	return p
}

func (p *progress) event(ev recon.Event) {
	switch {
	case p.bar != nil:
		desc := ev.Stage
		if ev.Rows > 0 {
			desc = fmt.Sprintf("%s %s rows", ev.Stage, thousands(ev.Rows))
		}
		p.bar.Describe(desc)
		p.bar.Set(int(ev.Fraction * 1000))
	case p.plain && ev.Done:
		if ev.Rows > 0 || strings.HasPrefix(ev.Stage, "stage_") {
			fmt.Fprintf(p.w, "%-12s done  %s rows  (%.1fs)\n", ev.Stage, thousands(ev.Rows), time.Since(p.start).Seconds())
		} else {
			fmt.Fprintf(p.w, "%-12s done  (%.1fs)\n", ev.Stage, time.Since(p.start).Seconds())
		}
	}
}

func (p *progress) finish() {
	if p.bar != nil {
		p.bar.Finish()
		p.bar.Clear()
	}
}

func printSummary(w io.Writer, s *kalla.Summary, out string) {
	pct := func(r float64) string { return fmt.Sprintf("%.1f%%", r*100) }
	fmt.Fprintf(w, "Recipe     %s\n", s.RecipeID)
	fmt.Fprintf(w, "Left       %-10s %12s rows   matched %s (%s)   unmatched %s\n", s.Sources.Left.Alias, thousands(s.LeftCount), thousands(s.MatchedLeftRecords), pct(s.MatchRateLeft), thousands(s.UnmatchedLeftCount))
	fmt.Fprintf(w, "Right      %-10s %12s rows   matched %s (%s)   unmatched %s\n", s.Sources.Right.Alias, thousands(s.RightCount), thousands(s.MatchedRightRecords), pct(s.MatchRateRight), thousands(s.UnmatchedRightCount))
	fmt.Fprintf(w, "Pairs      %s matched pairs\n", thousands(s.MatchedCount))
	var st []string
	for _, x := range s.Stages {
		d := (time.Duration(x.DurationMS) * time.Millisecond).String()
		switch x.Name {
		case recon.StageLeft:
			// The sides stage at the same time: their times overlap.
			st = append(st, "stage_left "+d+" and")
		case recon.StageRight:
			if n := len(st); n > 0 && strings.HasSuffix(st[n-1], " and") {
				st[n-1] += " stage_right " + d + " at once"
			} else {
				st = append(st, "stage_right "+d)
			}
		default:
			st = append(st, x.Name+" "+d)
		}
	}
	fmt.Fprintf(w, "Time       %s (total %s)\n", strings.Join(st, ", "), (time.Duration(s.DurationMS) * time.Millisecond).String())
	for _, x := range s.Warnings {
		fmt.Fprintf(w, "Warning    %s\n", x.Message)
	}
	fmt.Fprintf(w, "Output     %s: %s, %s\n", out, strings.Join(outputNames(s.Outputs), ", "), recon.SummaryFile)
}

// outputNames lists a run's outputs as a person reads them: a file by its
// name, a folder of part files (a Spark run's) once, with its parts
// counted; the folder's other files (Hadoop's .crc and _SUCCESS, format
// "meta") have checksums in the summary but are not listed here.
func outputNames(outs []kalla.OutputFile) []string {
	var names []string
	parts := map[string]int{}
	for _, o := range outs {
		dir, _, inDir := strings.Cut(o.Name, "/")
		switch {
		case !inDir:
			names = append(names, o.Name)
		case o.Format == "meta":
		default:
			if parts[dir] == 0 {
				names = append(names, dir+"/")
			}
			parts[dir]++
		}
	}
	for i, n := range names {
		switch k := parts[strings.TrimSuffix(n, "/")]; k {
		case 0: // a file
		case 1:
			names[i] += " (1 part)"
		default:
			names[i] += fmt.Sprintf(" (%d parts)", k)
		}
	}
	return names
}

// thousands formats n with comma separators.
func thousands(n int64) string {
	s := fmt.Sprint(n)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, r := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(r)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

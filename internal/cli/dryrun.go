package cli

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"github.com/kalla-recon/kalla/internal/kalla"
	"github.com/kalla-recon/kalla/internal/recon"
)

// addDryRun gives `kalla run` its --dry-run flag. A dry run does all the
// work of a run (staging, matching, reasons, breaks) and prints what it
// found, but writes no file, so a recipe can be tried on real data without
// touching the folder its evidence would go to; --out is then optional.
func (e *env) addDryRun(cmd *cobra.Command, f *runFlags) {
	var dry bool
	cmd.Flags().BoolVar(&dry, "dry-run", false, "match and report without writing any output (--out is then not needed)")
	run := cmd.RunE
	cmd.RunE = func(c *cobra.Command, args []string) error {
		if !dry {
			return run(c, args)
		}
		if f.recipe == "" {
			return usagef("--recipe is required")
		}
		rec, base, err := readRecipe(f.recipe)
		if err != nil {
			return err
		}
		return e.dryRun(c.Context(), rec, base, f)
	}
}

// dryRun executes a recipe without writing outputs and prints the summary.
func (e *env) dryRun(ctx context.Context, rec *kalla.Recipe, base string, f *runFlags) error {
	sum, err := e.execute(ctx, rec, base, f, recon.Job{DryRun: true})
	if err != nil {
		return err
	}
	if f.json {
		return e.printJSON(sum)
	}
	printDryRun(e.stdout, sum)
	return nil
}

// printDryRun prints a dry run's summary: the counts, then what the rules
// found.
func printDryRun(w io.Writer, s *kalla.Summary) {
	pct := func(r float64) string { return fmt.Sprintf("%.1f%%", r*100) }
	fmt.Fprintf(w, "Dry run    nothing was written\n")
	fmt.Fprintf(w, "Recipe     %s\n", s.RecipeID)
	fmt.Fprintf(w, "Left       %-10s %12s rows   matched %s (%s)   unmatched %s\n", s.Sources.Left.Alias, thousands(s.LeftCount), thousands(s.MatchedLeftRecords), pct(s.MatchRateLeft), thousands(s.UnmatchedLeftCount))
	fmt.Fprintf(w, "Right      %-10s %12s rows   matched %s (%s)   unmatched %s\n", s.Sources.Right.Alias, thousands(s.RightCount), thousands(s.MatchedRightRecords), pct(s.MatchRateRight), thousands(s.UnmatchedRightCount))
	fmt.Fprintf(w, "Pairs      %s matched pairs\n", thousands(s.MatchedCount))
	for _, x := range s.Warnings {
		fmt.Fprintf(w, "Warning    %s\n", x.Message)
	}
	printRulesReport(w, s)
}

// printRulesReport prints what a rules recipe's run found beyond the
// counts: per rule, the breaks per compared column, and why records stayed
// unmatched. It prints nothing for a match_sql recipe.
func printRulesReport(w io.Writer, s *kalla.Summary) {
	r := s.Rules
	if r == nil {
		return
	}
	for i, x := range r.Rules {
		head := "Rules"
		if i > 0 {
			head = ""
		}
		fmt.Fprintf(w, "%-10s %d. %s (%s): %s pairs, %s left, %s right records; %s confirmed, %s suggested\n", head, i+1, x.Name, x.Pattern,
			thousands(x.Pairs), thousands(x.LeftRecords), thousands(x.RightRecords), thousands(x.Confirmed), thousands(x.Suggested))
	}
	for i, b := range r.Breaks {
		head := "Breaks"
		if i > 0 {
			head = ""
		}
		line := fmt.Sprintf("%-10s %s ~ %s: %s of %s differ", head, b.LeftColumn, b.RightColumn, thousands(b.Differing), thousands(b.Compared))
		if b.MaxDifference != nil {
			line += fmt.Sprintf(", max %s, total %s", num(*b.MaxDifference), num(*b.TotalDifference))
		}
		fmt.Fprintln(w, line)
		for _, x := range b.Samples[:min(3, len(b.Samples))] {
			d := ""
			if x.Difference != nil {
				d = " (" + num(*x.Difference) + ")"
			}
			fmt.Fprintf(w, "%-10s   %s / %s: %s vs %s%s [%s]\n", "", x.LeftKey, x.RightKey, str(x.LeftValue), str(x.RightValue), d, x.Rule)
		}
	}
	for _, side := range []string{"left", "right"} {
		kinds := r.Reasons[side]
		if len(kinds) == 0 {
			continue
		}
		names := make([]string, 0, len(kinds))
		for k := range kinds {
			names = append(names, k)
		}
		sort.Strings(names)
		parts := make([]string, len(names))
		for i, k := range names {
			parts[i] = fmt.Sprintf("%s %s", thousands(kinds[k]), strings.ReplaceAll(k, "_", " "))
		}
		head := "Reasons"
		if side == "right" && len(r.Reasons["left"]) > 0 {
			head = ""
		}
		fmt.Fprintf(w, "%-10s %s unmatched: %s\n", head, side, strings.Join(parts, ", "))
		for _, u := range r.UnmatchedSamples[side] {
			fmt.Fprintf(w, "%-10s   %s (row %d): %s\n", "", u.Key, u.Row, u.Reason)
		}
	}
}

func num(f float64) string { return fmt.Sprintf("%.10g", f) }

func str(s *string) string {
	if s == nil {
		return "(empty)"
	}
	return *s
}

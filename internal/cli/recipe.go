package cli

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/kalla-recon/kalla/internal/kalla"
	"github.com/kalla-recon/kalla/internal/recon"
)

func (e *env) recipeCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "recipe", Short: "Work with recipes"}
	cmd.AddCommand(e.recipeCheckCmd(), e.recipeSuggestCmd(), e.recipeLearnCmd())
	return cmd
}

func (e *env) recipeCheckCmd() *cobra.Command {
	var asJSON bool
	var ef engineFlags
	cmd := &cobra.Command{
		Use:   "check RECIPE",
		Short: "Validate a recipe against its real sources without running it",
		Long: `Check that the recipe is well formed, both sources are readable, the primary
keys exist, the match SQL binds against the real schemas, and its output lets
Kalla tell which records matched. Every problem is listed with what to change.
Exit code 0 when the recipe is ready to run, 2 when it has problems.`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			rec, base, err := readRecipe(args[0])
			if err != nil {
				var ke *kalla.Error
				if asJSON && errors.As(err, &ke) {
					e.printCheckJSON(&recon.Check{Problems: []string{ke.Error()}})
				}
				return err
			}
			mgr, err := e.newSources()
			if err != nil {
				return err
			}
			defer mgr.Close()
			svc := e.newRecon(mgr, recon.DuckDBOptions{})
			if err := ef.register(e, svc, rec); err != nil {
				return err
			}
			chk, err := svc.Check(ctx, ef.engine, rec, recon.CheckOptions{BaseDir: base})
			if err != nil {
				return err
			}
			if asJSON {
				e.printCheckJSON(chk)
			} else if chk.OK() {
				fmt.Fprintf(e.stdout, "Recipe %s is ready to run.\n", rec.RecipeID)
				fmt.Fprintf(e.stdout, "  left   %s: %d columns, key %v\n", rec.Sources.Left.Alias, len(chk.LeftColumns), rec.Sources.Left.PrimaryKey)
				fmt.Fprintf(e.stdout, "  right  %s: %d columns, key %v\n", rec.Sources.Right.Alias, len(chk.RightColumns), rec.Sources.Right.PrimaryKey)
				fmt.Fprintf(e.stdout, "  match  output columns: %s\n", kalla.ColumnNames(chk.OutputColumns))
			} else {
				fmt.Fprintf(e.stdout, "Recipe %s has %d problem(s):\n", rec.RecipeID, len(chk.Problems))
				for _, p := range chk.Problems {
					fmt.Fprintf(e.stdout, "  - %s\n", p)
				}
			}
			if !chk.OK() {
				return fmt.Errorf("%w: %d problem(s)", errInvalidRecipe, len(chk.Problems))
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the result as JSON")
	ef.add(cmd)
	return cmd
}

func (e *env) printCheckJSON(c *recon.Check) {
	enc := json.NewEncoder(e.stdout)
	enc.SetIndent("", "  ")
	enc.Encode(struct {
		OK bool `json:"ok"`
		*recon.Check
	}{c.OK(), c})
}

package cli

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/kalla-recon/kalla/internal/gen"
)

func (e *env) demoCmd() *cobra.Command {
	f := &runFlags{}
	var dir string
	var invoices int
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Reconcile a small generated invoices/payments data set",
		Long: `Write a small invoices/payments data set (exact payments, payments within 2%,
split payments, unpaid invoices and payments that reference no invoice) with
its recipe into a folder, reconcile it, and print the summary.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if dir == "" {
				d, err := os.MkdirTemp("", "kalla-demo-")
				if err != nil {
					return fmt.Errorf("create demo folder: %w", err)
				}
				dir = d
			}
			if invoices < 1 {
				return usagef("--invoices must be at least 1")
			}
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return fmt.Errorf("create demo folder: %w", err)
			}
			spec := gen.Standard(invoices)
			spec.Seed = 7
			files, truth, err := gen.Write(dir, spec)
			if err != nil {
				return err
			}
			rec := gen.Recipe(gen.Files{Invoices: "invoices.csv", Payments: "payments.csv"})
			b, err := json.MarshalIndent(rec, "", "  ")
			if err != nil {
				return fmt.Errorf("encode recipe: %w", err)
			}
			recipePath := filepath.Join(dir, "recipe.json")
			if err := os.WriteFile(recipePath, append(b, '\n'), 0o644); err != nil {
				return fmt.Errorf("write recipe: %w", err)
			}
			out := filepath.Join(dir, "results")
			f.out = out
			if !f.json {
				fmt.Fprintf(e.stdout, "Demo data   %s (%d invoices, %d payments)\n", dir, truth.Invoices, truth.Payments)
				fmt.Fprintf(e.stdout, "            %d paid exactly, %d within 2%%, %d split in two, %d unpaid; %d payments reference no invoice\n",
					truth.Exact, truth.Tolerance, truth.Split, truth.OrphanInvoices, truth.StrayPayments)
				fmt.Fprintf(e.stdout, "Recipe      %s\n\n", recipePath)
			}
			_ = files
			rec, base, err := readRecipe(recipePath)
			if err != nil {
				return err
			}
			if err := e.run(cmd.Context(), rec, base, f); err != nil {
				return err
			}
			if !f.json {
				fmt.Fprintf(e.stdout, "\nTry: kalla run --recipe %s --out %s --format parquet,csv\n", recipePath, out)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&dir, "dir", "", "folder for the demo data and results (default: a new temporary folder)")
	cmd.Flags().IntVar(&invoices, "invoices", 40, "number of invoices to generate")
	addEngineFlags(cmd, f)
	return cmd
}

package cli

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/kalla-recon/kalla/internal/kalla"
	"github.com/kalla-recon/kalla/internal/learn"
	"github.com/kalla-recon/kalla/internal/recon"
	"github.com/kalla-recon/kalla/internal/runner"
	"github.com/kalla-recon/kalla/internal/store"
)

// outDirs says where a run's output files are: the folder the store
// recorded for it when it still exists (a run made elsewhere on the same
// store), else the data folder's runs/<id>, where kalla serve writes them.
func (e *env) outDirs(cmd *cobra.Command, f *serveFlags, st *store.Store) (func(string) string, error) {
	cfg, err := e.serverConfig(cmd, f)
	if err != nil {
		return nil, err
	}
	return func(id string) string {
		if rec, err := st.GetRun(cmd.Context(), id); err == nil && rec.OutDir != "" {
			if _, err := os.Stat(filepath.Join(rec.OutDir, kalla.SummaryFile)); err == nil {
				return rec.OutDir
			}
		}
		return runner.OutDir(cfg.DataDir, id)
	}, nil
}

func (e *env) recipeLearnCmd() *cobra.Command {
	f := &serveFlags{}
	var runID, recipeID, accept, actor, note string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "learn --run ID [--accept PROPOSAL --actor NAME]",
		Short: "Propose a rule learned from the records people matched by hand",
		Long: `The records people matched by hand on a recipe's runs are confirmed example
pairs: 'kalla recipe suggest' learns rules from them, and the rules the recipe
lacks are proposed, after its own, with what they would have matched on the
run (--run, else the recipe's last completed run): pairs of still-open
records, people's matches repeated, and records a person decided otherwise
(conflicts). Records are read from the runs' output files, never the sources.

Nothing is saved until --accept names the proposal's ID: the recipe's new
version is stored and the change appended to the audit trail.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if runID == "" && recipeID == "" {
				return usagef("--run or --recipe is required")
			}
			if accept != "" && actor == "" {
				return usagef("--actor is required with --accept: name the person saving the change")
			}
			st, _, err := e.openExceptions(cmd, f)
			if err != nil {
				return err
			}
			defer st.Close()
			dirs, err := e.outDirs(cmd, f, st)
			if err != nil {
				return err
			}
			l := learn.New(st, e.newRecon(nil, recon.DuckDBOptions{}), dirs)
			var p *learn.Proposal
			var acc *learn.Accepted
			if accept != "" {
				if acc, err = l.Accept(cmd.Context(), recipeID, runID, accept, kalla.Principal{Name: actor, Role: kalla.RoleAdmin}, note); err != nil {
					return err
				}
				p = acc.Proposal
			} else if p, err = l.Propose(cmd.Context(), recipeID, runID); err != nil {
				return err
			}
			if asJSON {
				enc := json.NewEncoder(e.stdout)
				enc.SetIndent("", "  ")
				if acc != nil {
					return enc.Encode(acc)
				}
				return enc.Encode(p)
			}
			printProposal(e, p)
			if acc != nil {
				fmt.Fprintf(e.stdout, "Saved: recipe %s now has %d rules (audit entry %d by %s).\n", p.RecipeID, len(p.After.Rules), acc.Audit.Seq, acc.Audit.Actor)
			} else {
				fmt.Fprintf(e.stdout, "Nothing saved. To save: kalla recipe learn --run %s --accept %s --actor NAME\n", p.RunID, p.ID)
			}
			return nil
		},
	}
	addStoreFlags(cmd, f)
	fl := cmd.Flags()
	fl.StringVar(&runID, "run", "", "the run to try the rules on (default: the recipe's last completed run)")
	fl.StringVar(&recipeID, "recipe", "", "the recipe (default: the run's)")
	fl.StringVar(&accept, "accept", "", "save the proposal with this ID as the recipe's new version")
	fl.StringVar(&actor, "actor", "", "who accepts (with --accept)")
	fl.StringVar(&note, "note", "", "a note for the audit trail (with --accept)")
	fl.BoolVar(&asJSON, "json", false, "print the proposal as JSON (recipe before and after included)")
	return cmd
}

func printProposal(e *env, p *learn.Proposal) {
	fmt.Fprintf(e.stdout, "Proposal %s for recipe %s, learned from %d manual matches (runs %v):\n", p.ID, p.RecipeID, len(p.Examples), p.ExampleRuns)
	for _, d := range p.Diff {
		fmt.Fprintln(e.stdout, d)
	}
	im := p.Impact
	fmt.Fprintf(e.stdout, "On run %s (%d open left, %d open right records): would match %d open pairs, repeat %d manual matches, conflict with %d decisions.\n",
		p.RunID, im.OpenLeft, im.OpenRight, im.WouldMatch, im.Confirms, im.Conflicts)
	fmt.Fprintf(e.stdout, "The recipe's own rules matched %d pairs on the run; the new rules run after them and change none.\n", im.RuleMatches)
	for _, pp := range im.Pairs {
		line := fmt.Sprintf("  %-9s %s ~ %s (rule %s)", pp.Effect, pp.Left, pp.Right, pp.Rule)
		if pp.Note != "" {
			line += ": " + pp.Note
		}
		fmt.Fprintln(e.stdout, line)
	}
	for _, n := range p.Notes {
		fmt.Fprintf(e.stderr, "# %s\n", n)
	}
}

func (e *env) runEvidenceCmd() *cobra.Command {
	f := &serveFlags{}
	var runID, out string
	cmd := &cobra.Command{
		Use:   "evidence --run ID --out FILE",
		Short: "Write a completed run's evidence package (a zip) from the metadata store",
		Long: `Write a zip holding the run's output files exactly as written (each checked
against the SHA-256 summary.json records, else nothing is written), summary.json,
the decisions people took on its exceptions (decisions.json, decisions.csv),
the audit entries touching the run with their hash chain and the whole chain's
verification (audit.json), and manifest.json with the SHA-256 of every file.
Exits non-zero (after writing the zip) when the audit chain does not verify.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if runID == "" || out == "" {
				return usagef("--run and --out are required")
			}
			st, svc, err := e.openExceptions(cmd, f)
			if err != nil {
				return err
			}
			defer st.Close()
			dirs, err := e.outDirs(cmd, f, st)
			if err != nil {
				return err
			}
			tmp, err := os.CreateTemp(filepath.Dir(out), ".evidence-*.zip")
			if err != nil {
				return fmt.Errorf("evidence: %w", err)
			}
			defer os.Remove(tmp.Name())
			m, err := svc.WriteEvidence(cmd.Context(), tmp, runID, dirs(runID))
			if cerr := tmp.Close(); err == nil && cerr != nil {
				err = fmt.Errorf("evidence: %w", cerr)
			}
			if err != nil {
				return err
			}
			if err := os.Rename(tmp.Name(), out); err != nil {
				return fmt.Errorf("evidence: %w", err)
			}
			fmt.Fprintf(e.stdout, "Wrote %s: %d files, outputs verified against summary.json.\n", out, len(m.Files)+1)
			if !m.AuditOK {
				return kalla.Errorf(kalla.ECONFLICT, "the audit chain does not verify (audit.json in %s says which entry)", out)
			}
			fmt.Fprintln(e.stdout, "The audit chain verifies.")
			return nil
		},
	}
	addStoreFlags(cmd, f)
	cmd.Flags().StringVar(&runID, "run", "", "run ID")
	cmd.Flags().StringVarP(&out, "out", "o", "", "zip file to write")
	return cmd
}

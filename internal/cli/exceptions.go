package cli

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/kalla-recon/kalla/internal/exceptions"
	"github.com/kalla-recon/kalla/internal/kalla"
	"github.com/kalla-recon/kalla/internal/store"
)

// openExceptions opens the metadata store kalla serve would open (the same
// flags and environment) and the exception service over it.
func (e *env) openExceptions(cmd *cobra.Command, f *serveFlags) (*store.Store, *exceptions.Service, error) {
	cfg, err := e.serverConfig(cmd, f)
	if err != nil {
		return nil, nil, err
	}
	url := cfg.DatabaseURL
	if url == "" {
		url = filepath.Join(cfg.DataDir, "kalla.db")
		if _, err := os.Stat(url); err != nil {
			return nil, nil, kalla.Errorf(kalla.ENOTFOUND, "no metadata store at %s: give --data-dir or --database-url", url)
		}
	}
	st, err := store.Open(cmd.Context(), url)
	if err != nil {
		return nil, nil, err
	}
	svc, err := exceptions.New(st, exceptions.Config{Codes: cfg.ExceptionCodes, ApprovalAmount: cfg.ApprovalAmount})
	if err != nil {
		st.Close()
		return nil, nil, err
	}
	return st, svc, nil
}

// filterFlags are the list and export filters, as the API's query.
type filterFlags struct {
	f                    exceptions.Filter
	minAmount, maxAmount string
	maxDifference        string
	limit, offset        int
}

func addFilterFlags(cmd *cobra.Command, ff *filterFlags) {
	fl := cmd.Flags()
	fl.StringVar(&ff.f.RunID, "run", "", "run ID")
	fl.StringVar(&ff.f.Status, "status", "", "open, accepted, rejected, matched, resolved or pending")
	fl.StringVar(&ff.f.Kind, "kind", "", "unmatched or suggested")
	fl.StringVar(&ff.f.Side, "side", "", "left, right or pair")
	fl.StringVar(&ff.f.Rule, "rule", "", "rule name")
	fl.StringVar(&ff.f.Reason, "reason", "", "reason contains this (ignoring case)")
	fl.StringVar(&ff.f.Assignee, "assignee", "", "assigned to")
	fl.StringVar(&ff.f.Age, "age", "", "age bucket in days: 0-7, 8-30, 90+")
	fl.StringVar(&ff.minAmount, "min-amount", "", "amount at least")
	fl.StringVar(&ff.maxAmount, "max-amount", "", "amount at most")
	fl.StringVar(&ff.maxDifference, "max-difference", "", "a pair's absolute difference at most")
}

func (ff *filterFlags) filter() (exceptions.Filter, error) {
	f := ff.f
	for _, x := range []struct {
		name string
		v    string
		dst  **float64
	}{{"min-amount", ff.minAmount, &f.MinAmount}, {"max-amount", ff.maxAmount, &f.MaxAmount}, {"max-difference", ff.maxDifference, &f.MaxDifference}} {
		if x.v == "" {
			continue
		}
		n, err := strconv.ParseFloat(x.v, 64)
		if err != nil {
			return f, usagef("--%s %q is not a number", x.name, x.v)
		}
		*x.dst = &n
	}
	return f, nil
}

func (e *env) exceptionsCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "exceptions",
		Short: "Work on the exceptions of completed runs in the metadata store",
		Long: `List, act on, export and import the exception items of completed runs:
unmatched records and suggested pairs, recorded when a run completes. The
store is the one kalla serve would open (--data-dir, --database-url or
KALLA_DATABASE_URL). Every action names its actor (--actor) and is appended
to the audit trail.`,
	}
	cmd.AddCommand(e.excListCmd(), e.excActCmd(), e.excExportCmd(), e.excImportCmd())
	return cmd
}

func (e *env) excListCmd() *cobra.Command {
	f := &serveFlags{}
	ff := &filterFlags{}
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List exception items",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			filter, err := ff.filter()
			if err != nil {
				return err
			}
			st, svc, err := e.openExceptions(cmd, f)
			if err != nil {
				return err
			}
			defer st.Close()
			page, err := svc.List(cmd.Context(), filter, ff.limit, ff.offset)
			if err != nil {
				return err
			}
			if asJSON {
				enc := json.NewEncoder(e.stdout)
				enc.SetIndent("", "  ")
				return enc.Encode(page)
			}
			tw := tabwriter.NewWriter(e.stdout, 2, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tVER\tRUN\tSIDE\tKEY\tAMOUNT\tDIFF\tCCY\tSTATUS\tAGE\tCLOSEST\tREASON")
			for _, it := range page.Items {
				key := it.Key
				if it.RightKey != "" {
					key += " ↔ " + it.RightKey
				}
				fmt.Fprintf(tw, "%d\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s\n", it.ID, it.Version, it.RunID, it.Side, key, it.Amount,
					it.Difference, it.Currency, it.Status, it.AgeDays, it.Closest, kalla.Excerpt(it.Reason))
			}
			tw.Flush()
			fmt.Fprintf(e.stdout, "%d of %d items\n", len(page.Items), page.Total)
			return nil
		},
	}
	addStoreFlags(cmd, f)
	addFilterFlags(cmd, ff)
	cmd.Flags().IntVar(&ff.limit, "limit", 100, "items per page (0: all)")
	cmd.Flags().IntVar(&ff.offset, "offset", 0, "items to skip")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON, as GET /api/exceptions")
	return cmd
}

func (e *env) excActCmd() *cobra.Command {
	f := &serveFlags{}
	ff := &filterFlags{}
	var req exceptions.ActionRequest
	cmd := &cobra.Command{
		Use:   "act ACTION [ID...]",
		Short: "Apply one action to items, all or none: " + strings.Join(exceptions.Actions, ", "),
		Long: `Apply one action to the items named by ID, or to every item the filter
flags select when no ID is given (for example: act accept --run R --kind
suggested --status open --rule tolerance --max-difference 0.05). The actor
(--actor) acts as admin: the CLI works on the store directly.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			req.Action = args[0]
			for _, a := range args[1:] {
				id, err := strconv.ParseInt(a, 10, 64)
				if err != nil {
					return usagef("item ID %q is not a number", a)
				}
				req.Items = append(req.Items, id)
			}
			if len(req.Items) == 0 {
				filter, err := ff.filter()
				if err != nil {
					return err
				}
				req.Filter = &filter
			}
			st, svc, err := e.openExceptions(cmd, f)
			if err != nil {
				return err
			}
			defer st.Close()
			res, err := svc.Act(cmd.Context(), req)
			if err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "%s %s on %d items by %s (action %d)\n", req.Action, res.Action.Result, len(res.Items), res.Action.Actor, res.Action.ID)
			if m := res.Match; m != nil {
				fmt.Fprintf(e.stdout, "left %s, right %s, difference %s (tolerance %s)\n", m.Left, m.Right, m.Difference, m.Tolerance)
			}
			return nil
		},
	}
	addStoreFlags(cmd, f)
	addFilterFlags(cmd, ff)
	cmd.Flags().StringVar(&req.Actor, "actor", "", "who takes the action (required)")
	cmd.Flags().StringVar(&req.Code, "code", "", "resolution code")
	cmd.Flags().StringVar(&req.Note, "note", "", "note")
	cmd.Flags().StringVar(&req.Assignee, "assign-to", "", "assignee, for assign")
	return cmd
}

func (e *env) excExportCmd() *cobra.Command {
	f := &serveFlags{}
	ff := &filterFlags{}
	var out string
	cmd := &cobra.Command{
		Use:   "export RUN_ID",
		Short: "Write a run's open exceptions as CSV or XLSX with a decision column",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			filter, err := ff.filter()
			if err != nil {
				return err
			}
			filter.RunID = args[0]
			format := "csv"
			if strings.HasSuffix(strings.ToLower(out), ".xlsx") {
				format = "xlsx"
			}
			st, svc, err := e.openExceptions(cmd, f)
			if err != nil {
				return err
			}
			defer st.Close()
			if _, err := st.GetRun(cmd.Context(), args[0]); err != nil {
				return err
			}
			if out == "" || out == "-" {
				return svc.Export(cmd.Context(), filter, "csv", e.stdout)
			}
			file, err := os.Create(out)
			if err != nil {
				return fmt.Errorf("create %s: %w", out, err)
			}
			w := bufio.NewWriter(file)
			if err := svc.Export(cmd.Context(), filter, format, w); err != nil {
				file.Close()
				os.Remove(out)
				return err
			}
			if err := w.Flush(); err != nil {
				file.Close()
				return fmt.Errorf("write %s: %w", out, err)
			}
			return file.Close()
		},
	}
	addStoreFlags(cmd, f)
	addFilterFlags(cmd, ff)
	cmd.Flags().StringVarP(&out, "output", "o", "", "file to write (.csv or .xlsx); standard output (CSV) by default")
	return cmd
}

func (e *env) excImportCmd() *cobra.Command {
	f := &serveFlags{}
	var actor string
	cmd := &cobra.Command{
		Use:   "import FILE",
		Short: "Apply an edited export, each row with a decision as an action, all or none",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			file, err := os.Open(args[0])
			if err != nil {
				return kalla.WrapError(kalla.ENOTFOUND, err, "open %s", args[0])
			}
			defer file.Close()
			st, svc, err := e.openExceptions(cmd, f)
			if err != nil {
				return err
			}
			defer st.Close()
			res, err := svc.Import(cmd.Context(), actor, file)
			if res != nil {
				for _, r := range res.Rows {
					if r.Status == "skipped" {
						continue
					}
					line := fmt.Sprintf("row %d: item %d %s: %s", r.Row, r.ID, r.Action, r.Status)
					if r.Error != "" {
						line += " (" + r.Code + ": " + r.Error + ")"
					}
					fmt.Fprintln(e.stdout, line)
				}
			}
			return err
		},
	}
	addStoreFlags(cmd, f)
	cmd.Flags().StringVar(&actor, "actor", "", "who takes the actions (required)")
	return cmd
}

func (e *env) auditCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "audit", Short: "Check the audit trail of exception actions"}
	f := &serveFlags{}
	verify := &cobra.Command{
		Use:   "verify",
		Short: "Recompute the audit chain and name the first entry changed or removed",
		Long: `Recompute the SHA-256 chain of the audit trail in the metadata store and
compare its end with the head recorded at the last append. Exit 0 when intact;
1 with the first entry changed or removed. Keep the printed head hash
elsewhere: a log rewritten whole, head included, can only be told from a copy.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			st, svc, err := e.openExceptions(cmd, f)
			if err != nil {
				return err
			}
			defer st.Close()
			v, err := svc.Verify(cmd.Context())
			if err != nil {
				return err
			}
			if !v.OK {
				return kalla.Errorf(kalla.ECONFLICT, "audit chain broken at entry %d (%s): %s", v.FirstBad, v.Problem, v.Message)
			}
			fmt.Fprintf(e.stdout, "%s; head %d %s\n", v.Message, v.HeadSeq, v.HeadHash)
			return nil
		},
	}
	addStoreFlags(verify, f)
	cmd.AddCommand(verify)
	return cmd
}

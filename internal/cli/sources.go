package cli

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"text/tabwriter"
	"unicode/utf8"

	"github.com/spf13/cobra"

	"github.com/kalla-recon/kalla/internal/connector"
	"github.com/kalla-recon/kalla/internal/kalla"
)

func (e *env) sourcesCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "sources", Short: "Look at data sources"}
	cmd.AddCommand(e.previewCmd())
	return cmd
}

// parseWhere reads --where: one condition object or an array of them.
func parseWhere(s string) ([]kalla.Filter, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, nil
	}
	if !strings.HasPrefix(s, "[") {
		s = "[" + s + "]"
	}
	var fs []kalla.Filter
	dec := json.NewDecoder(bytes.NewReader([]byte(s)))
	if err := dec.Decode(&fs); err != nil {
		var ke *kalla.Error
		if errors.As(err, &ke) {
			return nil, usageError{ke}
		}
		return nil, usagef("--where: %v (give a JSON condition such as {\"column\":\"amount\",\"op\":\"gte\",\"value\":100}, or an array of them)", err)
	}
	for _, f := range fs {
		if err := f.Validate(); err != nil {
			return nil, usageError{err}
		}
	}
	return fs, nil
}

func (e *env) previewCmd() *cobra.Command {
	var where string
	var limit int
	var asJSON, exact bool
	cmd := &cobra.Command{
		Use:   "preview URI",
		Short: "Show a source's columns and a sample of rows matching filters, with their count",
		Long: `Preview a source: its columns with types, up to --limit rows matching --where
(default 200, at most 1000), and the number of matching rows: exact when that is
cheap, else a lower bound said as one ("at least 1,001"); --exact-total counts
every row however long it takes.

URI is a file path, file://, s3://bucket/key, https://, postgres://user:pass@host/db?table=T
or mysql://user:pass@host/db?table=T.
--where takes one condition or an array: {"column": "amount", "op": "gte", "value": 100};
ops eq, neq, gt, gte, lt, lte, between ([low, high]), in ([...]), like, and
is_null, is_not_null (no value): {"column": "reference", "op": "is_null"}.`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			filters, err := parseWhere(where)
			if err != nil {
				return err
			}
			if limit < 0 || limit > connector.MaxLimit {
				return usagef("--limit must be between 1 and %d", connector.MaxLimit)
			}
			mgr, err := e.newSources()
			if err != nil {
				return err
			}
			defer mgr.Close()
			src, err := mgr.OpenURI(ctx, args[0])
			if err != nil {
				return err
			}
			defer src.Close()
			p, err := connector.LoadWith(ctx, src, kalla.Redact(args[0]), filters, limit, connector.LoadOptions{ExactTotal: exact})
			if err != nil {
				return err
			}
			if asJSON {
				enc := json.NewEncoder(e.stdout)
				enc.SetIndent("", "  ")
				return enc.Encode(p)
			}
			printPreview(e, p)
			return nil
		},
	}
	cmd.Flags().StringVar(&where, "where", "", "filter conditions as JSON")
	cmd.Flags().IntVar(&limit, "limit", connector.DefaultLimit, "rows to show (at most 1000)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print one JSON object: columns, rows, total_rows, total_kind, total_exact, preview_rows")
	cmd.Flags().BoolVar(&exact, "exact-total", false, "count every matching row, however long it takes")
	return cmd
}

func printPreview(e *env, p *connector.Preview) {
	fmt.Fprintf(e.stdout, "Columns (%d):\n", len(p.Columns))
	for _, c := range p.Columns {
		null := ""
		if !c.Nullable {
			null = "  not null"
		}
		fmt.Fprintf(e.stdout, "  %-24s %s%s\n", c.Name, c.DataType, null)
	}
	fmt.Fprintln(e.stdout)
	tw := tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', 0)
	names := make([]string, len(p.Columns))
	for i, c := range p.Columns {
		names[i] = c.Name
	}
	fmt.Fprintln(tw, strings.Join(names, "\t"))
	for _, r := range p.Rows {
		cells := make([]string, len(r))
		for i, v := range r {
			if v == nil {
				cells[i] = "NULL"
			} else {
				cells[i] = clip(*v, 40)
			}
		}
		fmt.Fprintln(tw, strings.Join(cells, "\t"))
	}
	tw.Flush()
	bound := ""
	if !p.TotalExact {
		bound = "at least "
	}
	fmt.Fprintf(e.stdout, "\n%d of %s%s matching rows shown.\n", p.PreviewRows, bound, thousands(p.TotalRows))
}

func clip(s string, n int) string {
	s = strings.NewReplacer("\n", "⏎", "\t", " ").Replace(s)
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	return string([]rune(s)[:n-1]) + "…"
}

package cli

import (
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/spf13/cobra"

	"github.com/kalla-recon/kalla/internal/kalla"
	"github.com/kalla-recon/kalla/internal/recon"
	"github.com/kalla-recon/kalla/internal/suggest"
)

func (e *env) recipeSuggestCmd() *cobra.Command {
	var left, right, leftKey, rightKey, pairs string
	cmd := &cobra.Command{
		Use:   "suggest --left URI --right URI [--left-key COL] [--right-key COL] [--pairs pairs.csv]",
		Short: "Propose a recipe for two sources, learned from their data and example pairs",
		Long: `Read both sources, detect each side's key, pair their columns (by name, type and
shared values) and print a recipe with rules from strict to loose, each with its
evidence, as JSON ready for 'kalla run'. Findings that are not rules go to
standard error.

pairs.csv holds confirmed pairs, one per line under the header left_key,right_key.
A left key in several lines shows a split payment (1:N); a right key in several,
a batch (N:1). From them Kalla learns which columns are equal (after which
normalisation), how far amounts and dates drift, and the pattern.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if left == "" || right == "" {
				return usagef("--left and --right are required")
			}
			ctx := cmd.Context()
			opt := suggest.Options{LeftKey: leftKey, RightKey: rightKey, Left: specFor(left, "left"), Right: specFor(right, "right")}
			if opt.Left.Alias == opt.Right.Alias {
				opt.Right.Alias += "_2"
			}
			if pairs != "" {
				var err error
				if opt.Pairs, err = readPairs(pairs); err != nil {
					return err
				}
			}
			mgr, err := e.newSources()
			if err != nil {
				return err
			}
			defer mgr.Close()
			res, err := e.newRecon(mgr, recon.DuckDBOptions{}).Suggest(ctx, opt)
			if err != nil {
				if kalla.ErrorCode(err) == kalla.EINVALID {
					return usageError{err}
				}
				return err
			}
			for _, n := range res.Notes {
				fmt.Fprintf(e.stderr, "# %s\n", n)
			}
			for _, p := range res.Pairings {
				fmt.Fprintf(e.stderr, "# pairing %s ~ %s (%s): %s\n", p.Left, p.Right, p.Kind, p.Evidence)
			}
			enc := json.NewEncoder(e.stdout)
			enc.SetIndent("", "  ")
			enc.SetEscapeHTML(false)
			return enc.Encode(res.Recipe)
		},
	}
	cmd.Flags().StringVar(&left, "left", "", "left source URI (file path, s3://, https://, postgres://, mysql://)")
	cmd.Flags().StringVar(&right, "right", "", "right source URI")
	cmd.Flags().StringVar(&leftKey, "left-key", "", "left key column (detected when not given)")
	cmd.Flags().StringVar(&rightKey, "right-key", "", "right key column (detected when not given)")
	cmd.Flags().StringVar(&pairs, "pairs", "", "CSV of confirmed example pairs: header left_key,right_key")
	return cmd
}

var aliasChars = regexp.MustCompile(`[^A-Za-z0-9_]+`)

// specFor describes a side from its URI: the alias is the file or table
// name, and a local path becomes absolute so the printed recipe runs from
// any folder.
func specFor(uri, fallback string) kalla.SourceSpec {
	spec := kalla.SourceSpec{URI: uri}
	if !strings.Contains(uri, "://") {
		if abs, err := filepath.Abs(uri); err == nil {
			spec.URI = abs
		}
	}
	base := uri
	if i := strings.IndexAny(base, "?#"); i >= 0 && strings.Contains(base, "://") {
		base = base[:i]
	}
	base = filepath.Base(base)
	for _, ext := range []string{".gz", ".csv", ".tsv", ".txt", ".parquet", ".pq"} {
		base = strings.TrimSuffix(base, ext)
	}
	alias := strings.Trim(aliasChars.ReplaceAllString(base, "_"), "_")
	if alias == "" || alias[0] >= '0' && alias[0] <= '9' || strings.EqualFold(alias, "left_src") || strings.EqualFold(alias, "right_src") {
		alias = fallback + "_" + alias
	}
	spec.Alias = strings.Trim(alias, "_")
	if len(spec.Alias) > 63 {
		spec.Alias = spec.Alias[:63]
	}
	return spec
}

// readPairs reads a pairs file: header left_key,right_key, one pair a line.
func readPairs(path string) ([][2]string, error) {
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, usagef("pairs file %s does not exist", path)
		}
		return nil, fmt.Errorf("read pairs: %w", err)
	}
	defer f.Close()
	r := csv.NewReader(f)
	r.FieldsPerRecord = 2
	head, err := r.Read()
	if err != nil {
		return nil, usagef("pairs file %s: %v (it needs the header left_key,right_key)", path, err)
	}
	if strings.TrimSpace(head[0]) != "left_key" || strings.TrimSpace(head[1]) != "right_key" {
		return nil, usagef("pairs file %s: header must be left_key,right_key, not %s", path, strings.Join(head, ","))
	}
	var out [][2]string
	for {
		rec, err := r.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, usagef("pairs file %s: %v", path, err)
		}
		out = append(out, [2]string{strings.TrimSpace(rec[0]), strings.TrimSpace(rec[1])})
	}
	if len(out) == 0 {
		return nil, usagef("pairs file %s has no pairs", path)
	}
	return out, nil
}

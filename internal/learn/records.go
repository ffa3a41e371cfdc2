package learn

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/kalla-recon/kalla/internal/dialect"
	"github.com/kalla-recon/kalla/internal/engine"
	"github.com/kalla-recon/kalla/internal/exceptions"
	"github.com/kalla-recon/kalla/internal/file"
	"github.com/kalla-recon/kalla/internal/kalla"
	"github.com/kalla-recon/kalla/internal/store"
)

// copyRecords writes the unmatched records of one side of runs to dest
// (Parquet), without the columns a rules run adds: the records exactly as
// the sources held them when each run read them. Records repeated across
// runs (a break still open the next day) are kept once; a single run's
// keep their file order, which the rules' one-to-one choices follow.
func (l *Learner) copyRecords(ctx context.Context, db *sql.DB, runs []*kalla.RunRecord, side, dest string) error {
	var parts []string
	for _, r := range runs {
		paths, format, ok := exceptions.OutputPaths(r.Summary, l.outDir(r.ID), "unmatched_"+side)
		if !ok {
			return kalla.Errorf(kalla.EINVALID, "run %s wrote no unmatched_%s file: its records cannot be read without the sources", r.ID, side)
		}
		quoted := make([]string, len(paths))
		for i, p := range paths {
			if _, err := os.Stat(p); err != nil {
				return kalla.WrapError(kalla.ENOTFOUND, err, "output %s of run %s is no longer in the data folder", filepath.Base(p), r.ID)
			}
			quoted[i] = dialect.DuckDB.QuoteString(p)
		}
		list := "[" + strings.Join(quoted, ", ") + "]"
		if format == kalla.FormatCSV {
			parts = append(parts, "SELECT * FROM read_csv("+list+", header = true)")
		} else {
			parts = append(parts, "SELECT * FROM read_parquet("+list+")")
		}
	}
	src := "(" + strings.Join(parts, " UNION ALL BY NAME ") + ") AS t"
	rows, err := db.QueryContext(ctx, "DESCRIBE SELECT * FROM "+src)
	if err != nil {
		return fmt.Errorf("read unmatched_%s of the runs: %w", side, err)
	}
	var keep []string
	cols, _ := rows.Columns()
	for rows.Next() {
		vals := make([]sql.NullString, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			rows.Close()
			return fmt.Errorf("read unmatched_%s of the runs: %w", side, err)
		}
		name := vals[0].String
		if !slices.ContainsFunc(reasonColumns, func(c string) bool { return strings.EqualFold(c, name) }) {
			keep = append(keep, dialect.DuckDB.QuoteIdent(name))
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read unmatched_%s of the runs: %w", side, err)
	}
	distinct := ""
	if len(runs) > 1 {
		distinct = "DISTINCT "
	}
	q := fmt.Sprintf("COPY (SELECT %s%s FROM %s) TO %s (FORMAT parquet)", distinct, strings.Join(keep, ", "), src, dialect.DuckDB.QuoteString(dest))
	if _, err := db.ExecContext(ctx, q); err != nil {
		return fmt.Errorf("copy unmatched_%s of the runs: %w", side, err)
	}
	return nil
}

// inspect opens the two Parquet files specs name and stages them.
func (l *Learner) inspect(ctx context.Context, specs [2]kalla.SourceSpec, fn func(*engine.Inspection) error) error {
	var srcs [2]*file.Source
	for i, spec := range specs {
		src, err := file.Open(ctx, spec.URI, file.Options{Type: kalla.SourceParquet})
		if err != nil {
			return err
		}
		defer src.Close()
		srcs[i] = src
	}
	return l.insp.Inspect(ctx, specs[0], specs[1], srcs[0], srcs[1], fn)
}

// impact tries the proposal's new rules on the run's unmatched records
// (read from its output files) and sorts each pair they make: two open
// records (a match the rules would add), a person's own manual match
// repeated, or a record a person decided otherwise (a conflict).
func (l *Learner) impact(ctx context.Context, db *sql.DB, tmp string, run *kalla.RunRecord, rec *kalla.Recipe, p *Proposal) error {
	specs := [2]kalla.SourceSpec{rec.Sources.Left, rec.Sources.Right}
	for s, side := range []string{"left", "right"} {
		dest := filepath.Join(tmp, "run_"+side+".parquet")
		if err := l.copyRecords(ctx, db, []*kalla.RunRecord{run}, side, dest); err != nil {
			return err
		}
		specs[s] = kalla.SourceSpec{Alias: specs[s].Alias, Type: kalla.SourceParquet, URI: dest, PrimaryKey: specs[s].PrimaryKey}
	}
	items, _, err := l.st.ListExceptions(ctx, store.ExceptionQuery{RunID: run.ID, Kind: kalla.ExcKindUnmatched})
	if err != nil {
		return err
	}
	bySide := [2]map[string]*kalla.ExceptionItem{{}, {}}
	for _, it := range items {
		s := 0
		if it.Side == "right" {
			s = 1
		}
		bySide[s][it.Key] = it
		if it.Status == kalla.ExcOpen {
			if s == 0 {
				p.Impact.OpenLeft++
			} else {
				p.Impact.OpenRight++
			}
		}
	}
	var pairs []engine.TrialPair
	if err := l.inspect(ctx, specs, func(in *engine.Inspection) error {
		if _, err := in.TryRules(ctx, p.NewRules); err != nil {
			return err
		}
		pairs, err = in.TrialPairs(ctx)
		return err
	}); err != nil {
		return err
	}
	p.Impact.RuleMatches = run.Summary.MatchedCount
	p.Impact.Pairs = []ProposedPair{}
	for _, tp := range pairs {
		pp := ProposedPair{Left: tp.Left, Right: tp.Right, Rule: tp.Rule, Effect: "match"}
		li, ri := bySide[0][tp.Left], bySide[1][tp.Right]
		if li != nil {
			pp.LeftItem = li.ID
		}
		if ri != nil {
			pp.RightItem = ri.ID
		}
		switch {
		case li != nil && ri != nil && li.Status == kalla.ExcMatched && ri.Status == kalla.ExcMatched && li.MatchGroup == ri.MatchGroup:
			pp.Effect, pp.Note = "confirms", "a person matched these two by hand"
			p.Impact.Confirms++
		case li != nil && li.Status != kalla.ExcOpen || ri != nil && ri.Status != kalla.ExcOpen:
			pp.Effect = "conflict"
			var why []string
			for _, it := range []*kalla.ExceptionItem{li, ri} {
				if it != nil && it.Status != kalla.ExcOpen {
					why = append(why, decided(it))
				}
			}
			pp.Note = strings.Join(why, "; ")
			p.Impact.Conflicts++
		default:
			p.Impact.WouldMatch++
		}
		p.Impact.Pairs = append(p.Impact.Pairs, pp)
	}
	p.Impact.BreaksExisting = p.Impact.Conflicts > 0
	return nil
}

// decided says what a person decided on an item, for a conflict's note.
func decided(it *kalla.ExceptionItem) string {
	switch it.Status {
	case kalla.ExcMatched:
		return fmt.Sprintf("%s %s was matched by hand with other records (group %s)", it.Side, it.Key, it.MatchGroup)
	case kalla.ExcResolved:
		return fmt.Sprintf("%s %s was resolved as %q", it.Side, it.Key, it.Code)
	default:
		return fmt.Sprintf("%s %s is %s", it.Side, it.Key, it.Status)
	}
}

func slicesContainsRun(runs []*kalla.RunRecord, id string) bool {
	return slices.ContainsFunc(runs, func(r *kalla.RunRecord) bool { return r.ID == id })
}

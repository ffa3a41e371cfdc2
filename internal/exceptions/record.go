package exceptions

import (
	"context"
	"database/sql"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/kalla-recon/kalla/internal/dialect"
	"github.com/kalla-recon/kalla/internal/duck"
	"github.com/kalla-recon/kalla/internal/kalla"
)

// columns says which columns of one side carry a record's key, amount,
// currency and date.
type columns struct {
	key                    []string
	amount, currency, date string
}

// sideColumns chooses the columns of one side. A rules recipe tells them:
// the key is the primary key, the amount the column its tolerance
// conditions compare, the date the column of its date_within (or truncated
// eq) conditions, the currency an eq condition's column named like one. A
// SQL recipe (or a rules recipe lacking such a condition) is read by name
// among the side's output columns: the first named amount, else one
// containing amount, amt, total or value; the first containing date; the
// first named currency, ccy or cur(rency)_code. A SQL recipe whose amount
// columns the summary knows (kalla.AmountColumns) uses those.
func sideColumns(r *kalla.Recipe, side string, have []string) columns {
	spec := r.Sources.Left
	if side == "right" {
		spec = r.Sources.Right
	}
	c := columns{key: spec.PrimaryKey}
	pick := func(cond kalla.Condition) string {
		if side == "right" {
			return cond.Right
		}
		return cond.Left
	}
	for _, rule := range r.Rules {
		for _, cond := range rule.Conditions {
			col := pick(cond)
			switch {
			case cond.Op == kalla.CondTolerance && c.amount == "":
				c.amount = col
			case cond.Op == kalla.CondDateWithin && c.date == "", cond.Op == kalla.CondEq && cond.Truncate != "" && c.date == "":
				c.date = col
			case cond.Op == kalla.CondEq && c.currency == "" && currencyName(col):
				c.currency = col
			}
		}
	}
	if spec, ok := kalla.AmountColumns(r); ok && len(r.Rules) == 0 {
		// A SQL recipe's amounts are the summary's: the sources'
		// amount_column, else the match SQL's one tolerance_match.
		i := 0
		if side == "right" {
			i = 1
		}
		c.amount = spec.Column[i]
		if spec.Currency[i] != "" {
			c.currency = spec.Currency[i]
		}
	}
	if c.amount == "" {
		c.amount = byName(have, func(n string) bool { return n == "amount" }, func(n string) bool {
			return strings.Contains(n, "amount") || strings.Contains(n, "amt") || strings.Contains(n, "total") || strings.Contains(n, "value")
		})
	}
	if c.date == "" {
		c.date = byName(have, func(n string) bool { return strings.Contains(n, "date") })
	}
	if c.currency == "" {
		c.currency = byName(have, currencyName)
	}
	return c
}

func currencyName(col string) bool {
	n := strings.ToLower(col)
	return n == "currency" || n == "ccy" || n == "cur" || n == "currency_code" || n == "curr"
}

// byName returns the first of have (Kalla's own _columns skipped) that the
// first test accepts, else the first the next accepts, and so on.
func byName(have []string, tests ...func(string) bool) string {
	for _, test := range tests {
		for _, h := range have {
			if strings.HasPrefix(h, "_") {
				continue
			}
			if test(strings.ToLower(h)) {
				return h
			}
		}
	}
	return ""
}

// outputFile returns the paths of a run's output table, Parquet preferred:
// one file from the DuckDB engine, the part files of the table's folder in
// name (= write) order from the Spark engine. Spark's bookkeeping files
// (format "meta") are not the table's.
func outputFile(sum *kalla.Summary, outDir, table string) (paths []string, format string, ok bool) {
	for _, want := range []string{kalla.FormatParquet, kalla.FormatCSV} {
		for _, o := range sum.Outputs {
			if o.Table == table && o.Format == want {
				paths = append(paths, filepath.Join(outDir, o.Name))
			}
		}
		if len(paths) > 0 {
			sort.Strings(paths)
			return paths, want, true
		}
	}
	return nil, "", false
}

// table is an output file read as text: column names and rows.
type table struct {
	cols []string
	rows [][]sql.NullString
}

func (t *table) index(name string) int {
	for i, c := range t.cols {
		if c == name {
			return i
		}
	}
	return -1
}

// get returns row's value of column name, "" when the column is missing or
// the value NULL.
func (t *table) get(row []sql.NullString, name string) string {
	if name == "" {
		return ""
	}
	if i := t.index(name); i >= 0 {
		return row[i].String
	}
	return ""
}

// fileSource is the DuckDB table function reading a run's output files.
func fileSource(paths []string, format string) string {
	quoted := make([]string, len(paths))
	for i, p := range paths {
		quoted[i] = dialect.DuckDB.QuoteString(p)
	}
	list := "[" + strings.Join(quoted, ", ") + "]"
	if format == kalla.FormatCSV {
		return fmt.Sprintf("read_csv(%s, header = true, all_varchar = true)", list)
	}
	return fmt.Sprintf("read_parquet(%s)", list)
}

// readOutput reads a run's output files (Parquet or CSV; several are the
// parts of one table) with DuckDB, every value as text in file order.
func readOutput(ctx context.Context, db *sql.DB, paths []string, format string) (*table, error) {
	for _, p := range paths {
		if _, err := os.Stat(p); err != nil {
			return nil, fmt.Errorf("run output %s: %w", filepath.Base(p), err)
		}
	}
	path := paths[0]
	rows, err := db.QueryContext(ctx, "SELECT CAST(COLUMNS(*) AS VARCHAR) FROM "+fileSource(paths, format))
	if err != nil {
		return nil, fmt.Errorf("read run output %s: %w", filepath.Base(path), err)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return nil, fmt.Errorf("read run output %s: %w", filepath.Base(path), err)
	}
	t := &table{cols: cols}
	for rows.Next() {
		row := make([]sql.NullString, len(cols))
		ptrs := make([]any, len(cols))
		for i := range row {
			ptrs[i] = &row[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return nil, fmt.Errorf("read run output %s: %w", filepath.Base(path), err)
		}
		t.rows = append(t.rows, row)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read run output %s: %w", filepath.Base(path), err)
	}
	return t, nil
}

// Items makes a completed run's exception items from its own output files
// (never its sources): one per row of unmatched_left and unmatched_right,
// and one per matched pair whose _status is suggested. A pair's amounts are
// taken from the matched file when it carries the amount columns (as
// <column>, _left_<column>/_right_<column> or l_/r_<column>); the rules'
// matched file carries only keys, and then a pair's amounts stay empty.
func Items(ctx context.Context, rec *kalla.RunRecord, outDir string) ([]*kalla.ExceptionItem, error) {
	sum := rec.Summary
	if sum == nil {
		return nil, kalla.Errorf(kalla.ECONFLICT, "run %q has no summary: only a completed run has exceptions", rec.ID)
	}
	db, err := duck.Open(ctx)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	finished := time.Now().UTC()
	if rec.FinishedAt != nil {
		finished = rec.FinishedAt.UTC()
	} else if !sum.FinishedAt.IsZero() {
		finished = sum.FinishedAt.UTC()
	}
	day := finished.Format(time.DateOnly)
	var items []*kalla.ExceptionItem
	bySide := map[string][]*kalla.ExceptionItem{}
	for _, side := range []string{"left", "right"} {
		paths, format, ok := outputFile(sum, outDir, "unmatched_"+side)
		if !ok {
			continue
		}
		t, err := readOutput(ctx, db, paths, format)
		if err != nil {
			return nil, err
		}
		c := sideColumns(&rec.Recipe, side, t.cols)
		for i, row := range t.rows {
			it := &kalla.ExceptionItem{RunID: rec.ID, RecipeID: rec.RecipeID, Kind: kalla.ExcKindUnmatched, Side: side,
				Row: int64(i + 1), Amount: strings.TrimSpace(t.get(row, c.amount)), Currency: t.get(row, c.currency),
				Date: t.get(row, c.date), Reason: t.get(row, "_reason"), Closest: t.get(row, "_closest_candidate"),
				Status: kalla.ExcOpen}
			keys := make([]string, len(c.key))
			for k, col := range c.key {
				keys[k] = t.get(row, col)
			}
			it.Key = strings.Join(keys, "|")
			if it.Reason == "" {
				it.Reason = "unmatched"
			}
			it.AgeFrom = ageFrom(it.Date, day)
			items = append(items, it)
			bySide[side] = append(bySide[side], it)
		}
	}
	if rec.Recipe.MatchSQL != "" && len(rec.Recipe.Rules) == 0 && len(items) > 0 {
		if err := sqlReasons(ctx, db, rec, outDir, bySide); err != nil {
			return nil, err
		}
	}
	if paths, format, ok := outputFile(sum, outDir, kalla.TableMatched); ok {
		t, err := readOutput(ctx, db, paths, format)
		if err != nil {
			return nil, err
		}
		if t.index("_status") >= 0 {
			lc := sideColumns(&rec.Recipe, "left", nil)
			rc := sideColumns(&rec.Recipe, "right", nil)
			for i, row := range t.rows {
				if t.get(row, "_status") != "suggested" {
					continue
				}
				it := &kalla.ExceptionItem{RunID: rec.ID, RecipeID: rec.RecipeID, Kind: kalla.ExcKindSuggested, Side: "pair",
					Row: int64(i + 1), Rule: t.get(row, "_rule"), Status: kalla.ExcOpen,
					Reason: "suggested below the rule's auto_confirm"}
				it.Key = pairKey(t, row, "_left_", rec.Recipe.Sources.Left.PrimaryKey)
				it.RightKey = pairKey(t, row, "_right_", rec.Recipe.Sources.Right.PrimaryKey)
				it.Closest = it.RightKey
				if s := t.get(row, "_score"); s != "" {
					var f float64
					if _, err := fmt.Sscan(s, &f); err == nil {
						it.Score = &f
					}
				}
				it.Amount = pairValue(t, row, "left", lc.amount)
				it.RightAmount = pairValue(t, row, "right", rc.amount)
				it.Date = pairValue(t, row, "left", lc.date)
				it.Currency = pairValue(t, row, "left", lc.currency)
				if d, ok := difference(it.Amount, it.RightAmount); ok {
					it.Difference = d
				}
				it.AgeFrom = ageFrom(it.Date, day)
				items = append(items, it)
			}
		}
	}
	return items, nil
}

func pairKey(t *table, row []sql.NullString, prefix string, pk []string) string {
	keys := make([]string, len(pk))
	for k, col := range pk {
		keys[k] = t.get(row, prefix+col)
	}
	return strings.Join(keys, "|")
}

// pairValue finds a side's column in a matched file by the names engines
// give it.
func pairValue(t *table, row []sql.NullString, side, col string) string {
	if col == "" {
		return ""
	}
	for _, name := range []string{"_" + side + "_" + col, side[:1] + "_" + col, side + "_" + col} {
		if t.index(name) >= 0 {
			return t.get(row, name)
		}
	}
	return ""
}

// ageFrom is the record's date (its first ten characters when they are a
// date), else the day the run finished.
func ageFrom(date, fallback string) string {
	if len(date) >= 10 {
		if _, err := time.Parse(time.DateOnly, date[:10]); err == nil {
			return date[:10]
		}
	}
	return fallback
}

// decimal parses an exact decimal text.
func decimal(s string) (*big.Rat, bool) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, false
	}
	r, ok := new(big.Rat).SetString(s)
	return r, ok
}

// difference is b − a, exactly, when both are numbers.
func difference(a, b string) (string, bool) {
	x, ok1 := decimal(a)
	y, ok2 := decimal(b)
	if !ok1 || !ok2 {
		return "", false
	}
	return format(new(big.Rat).Sub(y, x)), true
}

// format writes a decimal with as many digits as it needs (at least two).
func format(r *big.Rat) string {
	for prec := 2; prec <= 12; prec++ {
		s := r.FloatString(prec)
		if back, _ := new(big.Rat).SetString(s); back.Cmp(r) == 0 {
			return s
		}
	}
	return r.FloatString(12)
}

// OutputPaths returns the paths of a run's output table under outDir and
// their format (Parquet preferred, CSV otherwise); false when the run wrote
// no such table. Readers of a run's records (learning a rule, the evidence
// export) use it instead of the sources.
func OutputPaths(sum *kalla.Summary, outDir, table string) ([]string, string, bool) {
	return outputFile(sum, outDir, table)
}

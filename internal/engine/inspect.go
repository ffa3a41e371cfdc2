package engine

import (
	"context"
	"database/sql"
	"fmt"
	"strings"

	"github.com/kalla-recon/kalla/internal/connector"
	"github.com/kalla-recon/kalla/internal/kalla"
	"github.com/kalla-recon/kalla/internal/rules"
)

// Inspection is two sources staged to be looked at rather than reconciled:
// recipe suggestions read their columns and values, and try candidate rules
// on them. The sides are staged exactly as for a run (left_src/right_src
// with their hidden row ids), so a rule that works here works in a run.
type Inspection struct {
	e     *Engine
	sides [2]*side
}

// Inspect stages both sources and then sandboxes the database, as a run
// does before its match: queries on the Inspection see the two staged sides
// and nothing else. The specs name the sides (alias, URI) and
// may leave the primary keys empty; SetKeys gives them once known. Running
// out of memory or disk is kalla.ERESOURCE, as in Execute.
func (e *Engine) Inspect(ctx context.Context, leftSpec, rightSpec kalla.SourceSpec, left, right connector.Source) (*Inspection, error) {
	in := &Inspection{e: e}
	for i, x := range []struct {
		spec kalla.SourceSpec
		src  connector.Source
	}{{leftSpec, left}, {rightSpec, right}} {
		name := []string{"left", "right"}[i]
		spec := x.spec
		pk := spec.PrimaryKey
		spec.PrimaryKey = nil
		s := &side{name: name, names: sideNames{view: name + "_src", alias: spec.Alias}, spec: spec, table: "__kalla_" + name, stage: "stage_" + name}
		if err := e.stageSide(ctx, s, x.src, nil, nil); err != nil {
			if rerr := e.resourceFailure(s.stage, "", err); rerr != nil && ctx.Err() == nil {
				return nil, rerr
			}
			return nil, err
		}
		in.sides[i] = s
		if len(pk) > 0 {
			if err := in.SetKey(i, pk); err != nil {
				return nil, err
			}
		}
	}
	// What suggest runs next reads only the staged sides.
	if err := e.sandbox(ctx, nil); err != nil {
		return nil, err
	}
	return in, nil
}

// Columns returns side i's columns (0 left, 1 right) as staged.
func (in *Inspection) Columns(i int) []kalla.Column { return in.sides[i].cols }

// Rows returns side i's row count.
func (in *Inspection) Rows(i int) int64 { return in.sides[i].count }

// View returns the name of side i's view (left_src, right_src).
func (in *Inspection) View(i int) string { return in.sides[i].names.view }

// SetKey sets side i's primary key, checking the columns exist.
func (in *Inspection) SetKey(i int, pk []string) error {
	s := in.sides[i]
	var real []string
	for _, k := range pk {
		j := kalla.FindColumn(s.cols, k)
		if j < 0 {
			return kalla.Errorf(kalla.EINVALID, "%s has no column %q (columns: %s)", s.spec.Alias, k, kalla.ColumnNames(s.cols))
		}
		real = append(real, s.cols[j].Name)
	}
	s.pk, s.names.pk, s.spec.PrimaryKey = real, real, real
	return nil
}

// QueryContext runs a read-only query over the staged sides.
func (in *Inspection) QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	return in.e.conn.QueryContext(ctx, q, args...)
}

// ExecContext runs a statement, for helper tables (example pairs).
func (in *Inspection) ExecContext(ctx context.Context, q string, args ...any) (sql.Result, error) {
	return in.e.exec(ctx, q, args...)
}

// Trial is what a set of rules matched on the staged data.
type Trial struct {
	Pairs, LeftRecords, RightRecords int64
	Report                           *kalla.RulesReport
}

// TryRules runs rules on the staged sides, as a dry run would, and counts
// what they matched. Both keys must have been set.
func (in *Inspection) TryRules(ctx context.Context, rules []kalla.Rule) (*Trial, error) {
	l, r := in.sides[0], in.sides[1]
	if len(l.pk) == 0 || len(r.pk) == 0 {
		return nil, fmt.Errorf("try rules: both sides need a primary key")
	}
	rec := &kalla.Recipe{RecipeID: "trial", Rules: rules, Sources: kalla.Sources{Left: l.spec, Right: r.spec}}
	m, err := in.e.matchRules(ctx, rec, l, r)
	if err == nil {
		err = m.reportDetails(ctx, in.e)
	}
	if err != nil {
		if rerr := in.e.resourceFailure(StageMatch, "", err); rerr != nil && ctx.Err() == nil {
			return nil, rerr
		}
		return nil, err
	}
	return &Trial{Pairs: m.pairs, LeftRecords: m.leftRecords, RightRecords: m.rightRecords, Report: m.report}, nil
}

// TrialPair is one pair the last TryRules matched: each side's key (its
// primary-key columns joined with "|") and the rule that matched it.
type TrialPair struct {
	Left, Right, Rule string
}

// TrialPairs returns the pairs the last TryRules matched, in (left row,
// right row) order, so a caller can say which records a proposed rule
// would pair, not only how many.
func (in *Inspection) TrialPairs(ctx context.Context) ([]TrialPair, error) {
	l, r := in.sides[0], in.sides[1]
	key := func(side string, n int) string {
		parts := make([]string, n)
		for i := range parts {
			parts[i] = "coalesce(CAST(" + pkCol(side, i) + " AS VARCHAR), '')"
		}
		return strings.Join(parts, " || '|' || ")
	}
	q := "SELECT " + key("l", len(l.pk)) + ", " + key("r", len(r.pk)) + ", __kalla_rule FROM " + rules.MatchTable + " ORDER BY " + leftRid + ", " + rightRid
	rows, err := in.e.conn.QueryContext(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("read trial pairs: %w", err)
	}
	defer rows.Close()
	var out []TrialPair
	for rows.Next() {
		var p TrialPair
		if err := rows.Scan(&p.Left, &p.Right, &p.Rule); err != nil {
			return nil, fmt.Errorf("read trial pairs: %w", err)
		}
		out = append(out, p)
	}
	return out, rows.Err()
}

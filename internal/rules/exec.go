package rules

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"

	"github.com/kalla-recon/kalla/internal/kalla"
)

// DB is where a plan runs: the engine's connection (or a wrapper that
// logs), DuckDB's or a Spark session. Its statements are written in the
// plan's Dialect.
type DB interface {
	// Exec runs one statement; args are the parameters the dialect bound.
	Exec(ctx context.Context, query string, args ...any) error
	// Query runs a query and calls each for every row, in order, until
	// each returns an error.
	Query(ctx context.Context, query string, each func(Row) error) error
}

// Row is one row of a query's result; Scan reads its columns as
// database/sql's Rows.Scan does (integers, floats, strings and their
// sql.Null forms).
type Row interface {
	Scan(dest ...any) error
}

// SQLConn is a database/sql connection (or DB) as SQLDB wraps it.
type SQLConn interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// SQLDB runs a plan over a database/sql connection (DuckDB's driver).
type SQLDB struct{ Conn SQLConn }

// Exec runs one statement.
func (d SQLDB) Exec(ctx context.Context, query string, args ...any) error {
	_, err := d.Conn.ExecContext(ctx, query, args...)
	return err
}

// Query runs a query, calling each for every row.
func (d SQLDB) Query(ctx context.Context, query string, each func(Row) error) error {
	return QuerySQL(ctx, d.Conn, query, each)
}

// QuerySQL runs a query over a database/sql connection, calling each for
// every row, for DB implementations that wrap one.
func QuerySQL(ctx context.Context, conn SQLConn, query string, each func(Row) error) error {
	rows, err := conn.QueryContext(ctx, query)
	if err != nil {
		return err
	}
	for rows.Next() {
		if err := each(rows); err != nil {
			rows.Close()
			return err
		}
	}
	return errors.Join(rows.Err(), rows.Close())
}

// sqlRounds bounds the rounds of mutual-best picking done in SQL. Each
// round takes every edge that is the best of both its units; on real data
// the first round takes nearly all of them. Runs of equally good
// candidates (duplicates) need one round per record, though, so once a
// round removes less than half of the remaining edges the rest is assigned
// in Go, which reads a million edges in about 0.2 s.
//
// Both are variables so tests can force either path.
var (
	sqlRounds     = 8
	minRoundYield = 0.5
)

// Execute runs the passes, then builds the match table, the reasons of the
// unmatched records and the breaks. Errors from the SQL are EINVALID (the
// rules do not fit the data, e.g. a text column that is not a date),
// naming the rule; context errors are returned as they are.
func (p *Plan) Execute(ctx context.Context, db DB) error {
	run := func(what string, qs ...string) error { return execAll(ctx, db, what, qs...) }
	p.records, p.pairs, p.sumsEqual, p.taken, p.ownReason = p.records[:0], p.pairs[:0], map[int]bool{}, "", [2]string{}
	if err := run("rules: prepare the session", p.d.Setup()...); err != nil {
		return err
	}
	for _, ps := range p.passes {
		what := fmt.Sprintf("rules[%d] %q", ps.index, ps.rule.Name)
		// Each side's remainder (or, with sets, the set of its taken records)
		// and its groups are built for both sides at once.
		var sides [2][]string
		for s := range 2 {
			switch {
			case p.lastCopied(ps):
				sides[s] = append(sides[s], p.lastSQL(s)...)
			case ps.index > 0 && p.useSets():
				if ps.grouped[s] {
					sides[s] = append(sides[s], p.takenSQL(s)) // the groups read what is left
				}
			case ps.index > 0:
				sides[s] = append(sides[s], p.remainSQL(s, ps.index, remainTable(s, ps.index))...)
			}
			if ps.grouped[s] {
				sides[s] = append(sides[s], p.groupSQL(ps, s)...)
			}
		}
		if len(sides[0]) > 0 || len(sides[1]) > 0 {
			err := beside(ctx, db,
				func(d DB) error { return execAll(ctx, d, what, sides[0]...) },
				func(d DB) error { return execAll(ctx, d, what, sides[1]...) })
			if err != nil {
				return err
			}
		}
		cand := append(p.candidates(ps), p.d.CreateTableAs(chosenTable, "SELECT * FROM "+edgesTable+" LIMIT 0")...)
		if ps.index > 0 && p.useSets() && !p.lastCopied(ps) {
			// (A pass on the copies tests no set: lastSQL did.)
			cand = append([]string{p.takenSQL(0), p.takenSQL(1)}, cand...)
		}
		if err := run(what, cand...); err != nil {
			return err
		}
		if err := p.assign(ctx, db, run, ps, what, p.order(ps), p.unitsUnique(ps)); err != nil {
			return err
		}
		var n [2]int64
		if err := db.Query(ctx, p.recordsSQL(ps), func(r Row) error { return r.Scan(&n[0], &n[1]) }); err != nil {
			return dataErr(ctx, err, what)
		}
		p.records = append(p.records, n)
		if (ps.grouped[0] || ps.grouped[1]) && ps.tol != nil {
			// o_amount is the difference of the unit pair's amounts.
			var differ int64
			if err := db.Query(ctx, fmt.Sprintf("SELECT count(*) FROM %s WHERE o_amount IS NULL OR o_amount <> 0", chosenTable), func(r Row) error { return r.Scan(&differ) }); err != nil {
				return dataErr(ctx, err, what)
			}
			p.sumsEqual[ps.index] = differ == 0
		}
		pairs, stmts := p.expand(ps)
		p.pairs = append(p.pairs, pairs)
		stmts = append(stmts, p.pairsSQL()...)
		if p.useSets() {
			stmts = append(stmts, p.takenAddSQL(ps.index, pairs)...)
			p.taken = takenTable(ps.index)
		}
		if err := run(what, stmts...); err != nil {
			return err
		}
	}
	if err := run("rules: collect matches", p.matchSQL()...); err != nil {
		return err
	}
	// The reasons and the breaks read the match and write their own tables.
	return beside(ctx, db,
		func(d DB) error { return p.explain(ctx, d) },
		func(d DB) error {
			if q := p.breaksSQL(); q != nil {
				return execAll(ctx, d, "rules: compare matched pairs", q...)
			}
			return nil
		})
}

// execAll runs statements in order on db; a statement's error is EINVALID
// naming what was being done (the rules do not fit the data).
func execAll(ctx context.Context, db DB, what string, qs ...string) error {
	for _, q := range qs {
		if err := db.Exec(ctx, q); err != nil {
			return dataErr(ctx, err, what)
		}
	}
	return nil
}

// dataErr is the error of a plan's statement or query: the context's
// error once cancelled, else EINVALID naming what was being done (the
// rules do not fit the data, e.g. a text that is not a date). A query's
// error is one too: an engine that computes tables lazily (Spark) meets
// the data first when a query reads them.
func dataErr(ctx context.Context, err error, what string) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return kalla.WrapError(kalla.EINVALID, headline{err}, "%s", what)
}

// Forker is a DB that can lend another connection to the same database,
// so that work which does not depend on the main connection's can run
// beside it (each side of a rule, the reasons and the breaks).
type Forker interface {
	DB
	// Fork returns a second connection and the function that releases it.
	Fork(ctx context.Context) (DB, func(), error)
}

// beside runs f on a second connection, when db can lend one, while g runs
// on db; otherwise f, then g. DuckDB runs each statement on all cores, but
// many of these keep them only partly busy. f's error is reported first,
// so the message does not depend on timing.
func beside(ctx context.Context, db DB, f, g func(DB) error) error {
	fk, ok := db.(Forker)
	if !ok {
		if err := f(db); err != nil {
			return err
		}
		return g(db)
	}
	other, release, err := fk.Fork(ctx)
	if err != nil {
		return fmt.Errorf("rules: second connection: %w", err)
	}
	defer release()
	var ferr error
	var wg sync.WaitGroup
	wg.Go(func() { ferr = f(other) })
	gerr := g(db)
	wg.Wait()
	if ferr != nil {
		return ferr
	}
	return gerr
}

// assign chooses among the candidate edges: an edge is taken when it comes
// first, in the given total order, among the edges of both its units; those
// units leave, and the rest is compared again, until no edge is left. This
// takes exactly the edges a greedy pass over all edges in that order would
// take (assignRest is that pass), whatever the number of threads, without
// sorting all edges: each round only orders the edges of each unit.
//
// unique says which side's units are known to appear in one edge at most
// (see unitsUnique); they need not be counted.
func (p *Plan) assign(ctx context.Context, db DB, run func(string, ...string) error, ps *pass, what, order string, unique [2]bool) error {
	cols := p.edgeCols[ps.index]
	// A round's statements are written anew each time: a dialect may name
	// each version of a table (Spark).
	round := func() []string {
		st := p.d.CreateTableAs(pickTable, firstPer(cols, edgesTable, "PARTITION BY a ORDER BY "+order, "PARTITION BY b ORDER BY "+order))
		st = append(st, p.d.InsertInto(chosenTable, "SELECT * FROM "+pickTable)...)
		return append(st, p.d.CreateTableAs(edgesTable, fmt.Sprintf("SELECT e.* FROM %s e %s %s p ON e.a = p.a %s %s q ON e.b = q.b", edgesTable, p.d.AntiJoin(), pickTable, p.d.AntiJoin(), pickTable))...)
	}
	// Most edges compete with nothing: when no unit has two, take them all.
	var n, da, db2 int64
	distinct := [2]string{p.d.CountIDs("a", p.side(0).IDs), p.d.CountIDs("b", p.side(1).IDs)}
	for s := range 2 {
		if unique[s] {
			distinct[s] = "count(*)"
		}
	}
	err := db.Query(ctx, fmt.Sprintf("SELECT count(*), %s, %s FROM %s", distinct[0], distinct[1], edgesTable), func(r Row) error {
		return r.Scan(&n, &da, &db2)
	})
	if err != nil {
		return dataErr(ctx, err, what)
	}
	if n == da && n == db2 {
		// The edges are the choice: rename rather than copy them.
		return run(what, p.d.RenameTable(edgesTable, chosenTable)...)
	}
	for r := 0; n > 0; r++ {
		if r == sqlRounds {
			return p.assignRest(ctx, db, what, order)
		}
		if err := run(what, round()...); err != nil {
			return err
		}
		left, err := count(ctx, db, edgesTable)
		if err != nil {
			return dataErr(ctx, err, what)
		}
		if left > 0 && float64(n-left) < minRoundYield*float64(n) {
			return p.assignRest(ctx, db, what, order)
		}
		n = left
	}
	return nil
}

// assignRest assigns the remaining edges greedily in Go, in order, and
// records the taken edges by their units (an edge's units are unique).
func (p *Plan) assignRest(ctx context.Context, db DB, what, order string) error {
	var took strings.Builder
	usedA, usedB := map[int64]bool{}, map[int64]bool{}
	err := db.Query(ctx, fmt.Sprintf("SELECT a, b FROM %s ORDER BY %s", edgesTable, order), func(r Row) error {
		var a, b int64
		if err := r.Scan(&a, &b); err != nil {
			return err
		}
		if usedA[a] || usedB[b] {
			return nil
		}
		usedA[a], usedB[b] = true, true
		if took.Len() > 0 {
			took.WriteByte(',')
		}
		took.WriteString(strconv.FormatInt(a, 10) + ":" + strconv.FormatInt(b, 10))
		return nil
	})
	if err != nil {
		return fmt.Errorf("%s: read edges: %w", what, err)
	}
	rel, args := p.d.IDPairs(took.String())
	// A dialect that binds the list (DuckDB) inserts in one statement.
	for _, q := range p.d.InsertInto(chosenTable, fmt.Sprintf("SELECT e.* FROM %s e %s %s k ON e.a = k.a AND e.b = k.b", edgesTable, p.d.SemiJoin(), rel)) {
		if err := db.Exec(ctx, q, args...); err != nil {
			return fmt.Errorf("%s: record picks: %w", what, err)
		}
	}
	return nil
}

func count(ctx context.Context, db DB, table string) (int64, error) {
	n, err := scalar(ctx, db, "SELECT count(*) FROM "+table)
	if err != nil {
		return 0, fmt.Errorf("count %s: %w", table, err)
	}
	return n, nil
}

// headline shows only the first line of a database error: DuckDB appends
// the generated SQL, which names Kalla's internals rather than the recipe.
type headline struct{ err error }

func (h headline) Error() string {
	msg, _, _ := strings.Cut(h.err.Error(), "\n")
	return strings.TrimSpace(msg)
}

func (h headline) Unwrap() error { return h.err }

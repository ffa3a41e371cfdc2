package spark

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/kalla-recon/kalla/internal/dialect"
	"github.com/kalla-recon/kalla/internal/engine"
	"github.com/kalla-recon/kalla/internal/kalla"
)

// side is one staged source.
type side struct {
	name    string // "left" or "right"
	view    string // left_src or right_src
	spec    kalla.SourceSpec
	filters []kalla.Filter
	stage   string
	frac    [2]float64
	// table is the cached staging table: the source's columns, typed,
	// plus __kalla_rid, the record's 0-based row in the source.
	table string
	cols  []kalla.Column
	pk    []string
	count int64
	// unique is set once keyWarnings found no NULL and no repeated key.
	unique bool
	// empty names the text columns keyWarnings found without any value
	// (a header-only CSV's): the views show them as untyped NULLs, as
	// DuckDB's engine does.
	empty map[string]bool
}

// ridCol is the staging table's row-id column.
const ridCol = "__kalla_rid"

func qi(name string) string { return dialect.DuckDB.QuoteIdent(name) }

func (s *side) summary() kalla.SummarySource {
	return kalla.SummarySource{Alias: s.spec.Alias, Type: s.spec.SourceType(), URI: kalla.Redact(s.spec.URI),
		PrimaryKey: s.pk, Filters: s.filters, Columns: s.cols}
}

// stage reads one source into a cached table with its row ids, then
// defines left_src/right_src and the alias view over it.
func (r *run) stage(ctx context.Context, s *side) error {
	s.table = "__kalla_" + s.name
	typ := s.spec.SourceType()
	var err error
	switch typ {
	case kalla.SourceCSV, kalla.SourceParquet:
		err = r.stageFile(ctx, s, typ)
	case kalla.SourcePostgres, kalla.SourceMySQL:
		err = r.stageJDBC(ctx, s, typ)
	default:
		err = kalla.Errorf(kalla.EINVALID, "source %s: the Spark engine reads CSV and Parquet files and PostgreSQL and MySQL tables; %q sources are not supported on Spark yet", s.spec.Alias, typ)
	}
	if err != nil {
		return err
	}
	return r.defineViews(ctx, s)
}

// sparkPath turns a source URI into a path Spark reads: s3:// becomes
// s3a://, a local path must be absolute (the cluster does not share
// Kalla's working folder).
func sparkPath(uri string) (string, error) {
	switch {
	case strings.HasPrefix(uri, "s3://"):
		return "s3a://" + strings.TrimPrefix(uri, "s3://"), nil
	case strings.HasPrefix(uri, "s3a://"), strings.HasPrefix(uri, "file:/"):
		return uri, nil
	case strings.HasPrefix(uri, "/"):
		return "file://" + uri, nil
	}
	return "", kalla.Errorf(kalla.EINVALID, "%s is not an absolute path or s3:// URI the Spark cluster can read", kalla.Redact(uri))
}

// stageFile reads a CSV or Parquet file. Rows keep their position in the
// file as row id (what DuckDB reports as the record's row), counted from the
// file's blocks as Spark splits them; filters then drop rows without
// renumbering the others, as on DuckDB.
func (r *run) stageFile(ctx context.Context, s *side, typ string) error {
	path, err := sparkPath(s.spec.URI)
	if err != nil {
		return err
	}
	rd := r.s.sql.Read().Format(typ)
	if typ == kalla.SourceCSV {
		delim := ","
		if c := s.spec.CSV; c != nil && c.Delimiter != "" {
			delim = c.Delimiter
		}
		rd = rd.Option("header", "true").Option("inferSchema", "false").Option("multiLine", "true").
			Option("mode", "FAILFAST").Option("sep", delim).Option("quote", `"`).Option("escape", `"`).
			Option("enforceSchema", "false")
		if c := s.spec.CSV; c != nil {
			switch c.Encoding {
			case kalla.EncodingLatin1:
				rd = rd.Option("encoding", "ISO-8859-1")
			case kalla.EncodingWindows1252:
				rd = rd.Option("encoding", "windows-1252")
			}
			// date_format, timestamp_format and a decimal comma never
			// reach here: precheck refuses them (sparkSourceOptions).
		}
	}
	df, err := rd.Load(path)
	if err != nil {
		return kalla.AsSourceError(sparkError(err), s.name, s.spec.Alias)
	}
	schema, err := df.Schema(ctx)
	if err != nil {
		return kalla.AsSourceError(sparkError(err), s.name, s.spec.Alias)
	}
	if len(schema.Fields) == 0 {
		// A zero-byte file (a failed export) has no header: its columns
		// are unknown. Spark reads it as no columns at all.
		return kalla.AsSourceError(kalla.Errorf(kalla.EINVALID, "%s: the file is empty: a CSV source needs at least a header row", kalla.Redact(s.spec.URI)), s.name, s.spec.Alias)
	}
	names := make([]string, len(schema.Fields))
	for i, f := range schema.Fields {
		names[i] = f.Name
		if strings.HasPrefix(strings.ToLower(f.Name), "__kalla_") {
			return kalla.Errorf(kalla.EINVALID, "source %s: column %q uses the prefix __kalla_, which Kalla reserves", s.spec.Alias, f.Name)
		}
	}
	// Row ids: the rows of one file block are read in order by one task,
	// whose monotonically_increasing_id values are consecutive; a block's
	// first row is the number of rows in the file's earlier blocks. The
	// file's hidden _metadata column resolves on the reader's DataFrame,
	// not through a view. The run's mark makes the cached rows its own.
	df, err = df.SelectExpr(ctx, "*", "_metadata.file_path AS __kalla_f", "_metadata.file_block_start AS __kalla_b", "monotonically_increasing_id() AS __kalla_m",
		sparkString(r.mark())+" AS __kalla_run")
	if err != nil {
		return kalla.AsSourceError(sparkError(err), s.name, s.spec.Alias)
	}
	raw := s.table + "_raw"
	if err := df.CreateTempView(ctx, raw, true, false); err != nil {
		return kalla.AsSourceError(sparkError(err), s.name, s.spec.Alias)
	}
	r.created = append(r.created, raw)
	withID := s.table + "_ids"
	q := fmt.Sprintf(`CACHE LAZY TABLE %s AS SELECT * FROM %s`, qi(withID), qi(raw))
	if err := r.exec(ctx, q); err != nil {
		return kalla.AsSourceError(err, s.name, s.spec.Alias)
	}
	r.created = append(r.created, withID)
	var casts, texts []string
	var declared []declaredExact
	if typ == kalla.SourceCSV {
		types, err := r.csvTypes(ctx, s, withID, names)
		if err != nil {
			return err
		}
		for i, n := range names {
			texts = append(texts, "d."+qi(n))
			exact := false
			for k, given := range s.spec.Schema {
				if scale, ok := kalla.ExactScale(given); ok && strings.EqualFold(k, n) {
					declared = append(declared, declaredExact{name: n, typ: given, scale: scale})
					// Through the decimal the text was proven to fit:
					// exact, and "4.0" becomes the INT 4 as on DuckDB
					// (Spark's ANSI cast refuses it).
					casts = append(casts, fmt.Sprintf("CAST(CAST(trim(d.%s) AS DECIMAL(38,%d)) AS %s) AS %s", qi(n), scale, types[i], qi(n)))
					exact = true
					break // one cast per column, whatever the case of the schema's keys
				}
			}
			switch {
			case exact:
			case types[i] == "STRING":
				casts = append(casts, "d."+qi(n))
			case types[i] == "BIGINT":
				// Through a decimal: "5." and " 5" are integers to
				// DuckDB's cast, not to Spark's ANSI cast to BIGINT.
				casts = append(casts, fmt.Sprintf("CAST(CAST(trim(d.%s) AS DECIMAL(38,0)) AS BIGINT) AS %s", qi(n), qi(n)))
			case types[i] == "DOUBLE", strings.HasPrefix(types[i], "DECIMAL"):
				casts = append(casts, fmt.Sprintf("CAST(trim(d.%s) AS %s) AS %s", qi(n), types[i], qi(n)))
			default:
				casts = append(casts, fmt.Sprintf("CAST(d.%s AS %s) AS %s", qi(n), types[i], qi(n)))
			}
		}
	} else {
		for _, n := range names {
			casts = append(casts, "d."+qi(n))
		}
	}
	typed := s.table + "_typed"
	view := func(cols []string) string {
		return fmt.Sprintf(`CREATE OR REPLACE TEMP VIEW %[1]s AS
WITH g AS (SELECT __kalla_f, __kalla_b, min(__kalla_m) AS m0, count(*) AS n FROM %[2]s GROUP BY __kalla_f, __kalla_b),
o AS (SELECT __kalla_f, __kalla_b, m0, coalesce(sum(n) OVER (PARTITION BY __kalla_f ORDER BY __kalla_b ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0) AS off,
  coalesce(sum(n) OVER (ORDER BY __kalla_f ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING), 0) AS total FROM g)
SELECT %[3]s, o.off + (d.__kalla_m - o.m0) AS %[4]s FROM %[2]s d JOIN o ON d.__kalla_f = o.__kalla_f AND d.__kalla_b = o.__kalla_b`,
			qi(typed), qi(withID), strings.Join(cols, ", "), ridCol)
	}
	if len(declared) > 0 {
		// The text is proven to fit the declared types first, over the
		// view with its row ids: Spark's CAST rounds as DuckDB's does.
		if err := r.exec(ctx, view(texts)); err != nil {
			return kalla.AsSourceError(err, s.name, s.spec.Alias)
		}
		r.created = append(r.created, typed)
		if err := r.checkDeclared(ctx, s, typed, declared); err != nil {
			return err
		}
	}
	if err := r.exec(ctx, view(casts)); err != nil {
		return kalla.AsSourceError(err, s.name, s.spec.Alias)
	}
	if len(declared) == 0 {
		r.created = append(r.created, typed)
	}
	cols, err := r.describe(ctx, typed)
	if err != nil {
		return err
	}
	s.cols = cols
	where, err := sparkWhere(s.spec.Alias, s.filters, cols)
	if err != nil {
		return err
	}
	q = fmt.Sprintf("CACHE LAZY TABLE %s AS SELECT * FROM %s%s", qi(s.table), qi(typed), where)
	if err := r.exec(ctx, q); err != nil {
		if strings.Contains(err.Error(), "CAST") || strings.Contains(err.Error(), "cannot be cast") {
			return kalla.WrapError(kalla.EINVALID, err, "source %s: a value does not fit its column's type (override it with the recipe's schema)", s.spec.Alias)
		}
		return kalla.AsSourceError(err, s.name, s.spec.Alias)
	}
	r.created = append(r.created, s.table)
	return nil
}

// describe lists a view's columns (without the row id) with DuckDB's names
// for their types, as DuckDB's summary shows them.
func (r *run) describe(ctx context.Context, view string) ([]kalla.Column, error) {
	// DESCRIBE gives the full type text (decimal(18,2)); the schema of a
	// DataFrame as spark-connect-go reads it loses precision and scale.
	df, err := r.sql(ctx, "DESCRIBE TABLE "+qi(view))
	if err != nil {
		return nil, err
	}
	rows, err := r.collect(ctx, df, "describe")
	if err != nil {
		return nil, err
	}
	var cols []kalla.Column
	for _, row := range rows {
		v := row.Values()
		if len(v) < 2 {
			continue
		}
		name, _ := v[0].(string)
		typ, _ := v[1].(string)
		if name == "" || name == ridCol || strings.HasPrefix(name, "#") {
			continue
		}
		cols = append(cols, kalla.Column{Name: name, DataType: duckTypeName(typ), EngineType: typ, Nullable: true})
	}
	return cols, nil
}

// duckTypeName maps a Spark type name to DuckDB's name for the same type.
func duckTypeName(t string) string {
	u := strings.ToUpper(strings.ReplaceAll(t, " ", ""))
	switch {
	case u == "BIGINT", u == "INT":
		if u == "INT" {
			return "INTEGER"
		}
		return u
	case u == "STRING":
		return "VARCHAR"
	case u == "LONG":
		return "BIGINT"
	case u == "INTEGER":
		return "INTEGER"
	case u == "SHORT":
		return "SMALLINT"
	case u == "BYTE":
		return "TINYINT"
	case u == "TIMESTAMP_NTZ", u == "TIMESTAMPNTZ": // SQL's name, spark-connect-go's
		return "TIMESTAMP"
	case u == "TIMESTAMP":
		return "TIMESTAMP WITH TIME ZONE"
	}
	return u
}

// defineViews checks the primary key and creates left_src/right_src (the
// columns plus the row id as __kalla_left_rid/__kalla_right_rid) and the
// recipe's alias over them.
func (r *run) defineViews(ctx context.Context, s *side) error {
	s.pk = s.pk[:0]
	for _, k := range s.spec.PrimaryKey {
		i := kalla.FindColumn(s.cols, k)
		if i < 0 {
			return engine.RecipeError(kalla.Errorf(kalla.EINVALID, "sources.%s.primary_key: source %s has no column %q (columns: %s)", s.name, s.spec.Alias, k, kalla.ColumnNames(s.cols)))
		}
		s.pk = append(s.pk, s.cols[i].Name)
	}
	if len(s.pk) == 0 {
		return kalla.Errorf(kalla.EINVALID, "source %s: primary_key is required", s.spec.Alias)
	}
	sel := make([]string, 0, len(s.cols)+1)
	for _, c := range s.cols {
		if s.empty[c.Name] {
			// An untyped NULL binds in any expression, where an empty
			// STRING column would not (DuckDB's engine does the same, and
			// writes such a column of a matched pair as INTEGER).
			sel = append(sel, "NULL AS "+qi(c.Name))
			continue
		}
		sel = append(sel, qi(c.Name))
	}
	sel = append(sel, ridCol+" AS "+qi(engine.RowIDColumn(s.view)))
	if err := r.exec(ctx, fmt.Sprintf("CREATE OR REPLACE TEMP VIEW %s AS SELECT %s FROM %s", qi(s.view), strings.Join(sel, ", "), qi(s.table))); err != nil {
		return err
	}
	r.track(s.view)
	if s.spec.Alias != "" && !strings.EqualFold(s.spec.Alias, s.view) {
		if err := r.exec(ctx, fmt.Sprintf("CREATE OR REPLACE TEMP VIEW %s AS SELECT * FROM %s", qi(s.spec.Alias), qi(s.view))); err != nil {
			return err
		}
		r.track(s.spec.Alias)
	}
	return nil
}

// track notes a view to drop at cleanup, once (defineViews may define a
// side's views again).
func (r *run) track(name string) {
	if !slices.Contains(r.created, name) {
		r.created = append(r.created, name)
	}
}

func columnNames(cols []kalla.Column) string {
	n := make([]string, len(cols))
	for i, c := range cols {
		n[i] = c.Name
	}
	return strings.Join(n, ", ")
}

// keyWarnings counts rows with a NULL in the key and rows sharing a key, as
// DuckDB's engine reports them.
func (r *run) keyWarnings(ctx context.Context, s *side) ([]kalla.Warning, error) {
	keys := make([]string, len(s.pk))
	nulls := make([]string, len(s.pk))
	for i, k := range s.pk {
		keys[i] = qi(k)
		nulls[i] = qi(k) + " IS NULL"
	}
	anyNull := strings.Join(nulls, " OR ")
	// The values of each text column are counted in the same pass, to
	// find the columns with none (see side.empty).
	var text, inner, outer []string
	for _, c := range s.cols {
		if c.DataType == "VARCHAR" {
			text = append(text, c.Name)
			inner = append(inner, fmt.Sprintf(", count(%s) AS __kalla_v%d", qi(c.Name), len(text)))
			outer = append(outer, fmt.Sprintf(", coalesce(sum(__kalla_v%d), 0)", len(text)))
		}
	}
	// One pass: rows per key (a NULL key's rows are a group of their own,
	// counted apart), then the side's count, NULL-key rows and repeated keys.
	q := fmt.Sprintf(`SELECT coalesce(sum(n), 0), coalesce(sum(CASE WHEN k THEN n ELSE 0 END), 0),
  count_if(NOT k AND n > 1), coalesce(sum(CASE WHEN NOT k AND n > 1 THEN n ELSE 0 END), 0)%[4]s
FROM (SELECT %[2]s AS k, count(*) AS n%[5]s FROM %[1]s GROUP BY %[3]s, %[2]s)`,
		qi(s.table), "("+anyNull+")", strings.Join(keys, ", "), strings.Join(outer, ""), strings.Join(inner, ""))
	row, err := r.one(ctx, q)
	if err != nil {
		return nil, kalla.AsSourceError(fmt.Errorf("check %s keys: %w", s.name, err), s.name, s.spec.Alias)
	}
	s.count = toInt64(row[0])
	nullRows, groups, rows := toInt64(row[1]), toInt64(row[2]), toInt64(row[3])
	s.unique = nullRows == 0 && groups == 0
	s.empty = map[string]bool{}
	for i, c := range text {
		if toInt64(row[4+i]) == 0 {
			s.empty[c] = true
		}
	}
	if len(s.empty) > 0 {
		if err := r.defineViews(ctx, s); err != nil {
			return nil, err
		}
	}
	var w []kalla.Warning
	if groups > 0 {
		w = append(w, kalla.Warning{Code: kalla.WarnDuplicateKeys, Side: s.name, Count: rows,
			Message: fmt.Sprintf("%s: %d rows share %d primary key values (%s); each row is kept as its own record", s.spec.Alias, rows, groups, strings.Join(s.pk, ", "))})
	}
	if nullRows > 0 {
		w = append(w, kalla.Warning{Code: kalla.WarnNullKeys, Side: s.name, Count: nullRows,
			Message: fmt.Sprintf("%s: %d rows have a NULL in the primary key (%s); each is kept as its own record", s.spec.Alias, nullRows, strings.Join(s.pk, ", "))})
	}
	return w, nil
}

func toInt64(v any) int64 {
	switch x := v.(type) {
	case int64:
		return x
	case int32:
		return int64(x)
	case int:
		return int64(x)
	case float64:
		return int64(x)
	}
	return 0
}

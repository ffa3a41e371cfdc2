package spark

import (
	"context"
	"fmt"
	"net/url"
	"strconv"
	"strings"

	"github.com/kalla-recon/kalla/internal/dialect"
	"github.com/kalla-recon/kalla/internal/kalla"
)

// jdbcSource is a database table as Spark's JDBC reader reads it: the
// credentials go in the reader's user/password options only, never in SQL
// text, the URL or anything Spark may echo.
type jdbcSource struct {
	d              dialect.Dialect
	url            string // jdbc:...://host:port/db, no credentials
	driver         string
	user, password string
	table          string   // quoted, qualified
	parts          []string // [schema,] name, unquoted
}

// parseJDBC reads a postgres:// or mysql:// source URI.
func parseJDBC(spec kalla.SourceSpec, typ string) (*jdbcSource, error) {
	name := spec.Alias
	u, err := url.Parse(spec.URI)
	if err != nil || u.Host == "" || u.Hostname() == "" {
		return nil, kalla.Errorf(kalla.EINVALID, "source %s: not a valid %s://user:password@host:port/db?table=name URI", name, typ)
	}
	q := u.Query()
	t := strings.TrimSpace(q.Get("table"))
	if t == "" {
		return nil, kalla.Errorf(kalla.EINVALID, "source %s: missing ?table= in the URI", name)
	}
	for k := range q {
		if k != "table" {
			return nil, kalla.Errorf(kalla.EINVALID, "source %s: the Spark engine does not pass the URI parameter %q to the JDBC driver", name, k)
		}
	}
	s := &jdbcSource{}
	if u.User != nil {
		s.user = u.User.Username()
		s.password, _ = u.User.Password()
	}
	db := strings.TrimPrefix(u.Path, "/")
	port := u.Port()
	switch typ {
	case kalla.SourcePostgres:
		s.d, s.driver = dialect.Postgres, "org.postgresql.Driver"
		if port == "" {
			port = "5432"
		}
		s.url = "jdbc:postgresql://" + u.Hostname() + ":" + port + "/" + url.PathEscape(db)
	default:
		s.d, s.driver = dialect.MySQL, "org.mariadb.jdbc.Driver"
		if port == "" {
			port = "3306"
		}
		// The jdbc:mysql scheme makes Spark use its MySQL dialect
		// (backquoted names); the MariaDB driver accepts it when told.
		s.url = "jdbc:mysql://" + u.Hostname() + ":" + port + "/" + url.PathEscape(db) + "?permitMysqlScheme"
	}
	parts, err := s.d.SplitQualified(t)
	if err != nil || len(parts) > 2 {
		return nil, kalla.Errorf(kalla.EINVALID, "source %s: table name %q is not [schema.]name", name, t)
	}
	s.table = s.d.QuoteQualified(parts...)
	s.parts = parts
	return s, nil
}

// literal renders a filter value as a string literal of the source's
// dialect, for SQL that Spark sends to the database (JDBC has no binds):
// Postgres gets an E” literal, whose escapes do not depend on
// standard_conforming_strings; MySQL/MariaDB get backslashes and quotes
// escaped.
func (s *jdbcSource) literal(v string) string {
	if s.d == dialect.Postgres {
		return "E'" + strings.ReplaceAll(strings.ReplaceAll(v, `\`, `\\`), "'", "''") + "'"
	}
	return s.d.QuoteString(v)
}

// where renders the filters for the database, values inlined as escaped
// literals of its dialect.
func (s *jdbcSource) where(source string, filters []kalla.Filter, cols []kalla.Column) (string, error) {
	clause, args, err := s.d.WhereFor(source, filters, cols, 1)
	if err != nil || clause == "" {
		return "", err
	}
	var b strings.Builder
	next := 0
	for i := 0; i < len(clause); i++ {
		c := clause[i]
		switch {
		case c == '"' || c == '`':
			j := strings.IndexByte(clause[i+1:], c)
			for j >= 0 && i+1+j+1 < len(clause) && clause[i+1+j+1] == c {
				k := strings.IndexByte(clause[i+1+j+2:], c)
				if k < 0 {
					j = -1
					break
				}
				j += 2 + k
			}
			if j < 0 {
				return "", fmt.Errorf("filter clause: unterminated identifier")
			}
			b.WriteString(clause[i : i+1+j+1])
			i += j + 1
		case c == '\'':
			return "", fmt.Errorf("filter clause holds a literal; expected parameters only")
		case c == '$' && s.d == dialect.Postgres:
			j := i + 1
			for j < len(clause) && clause[j] >= '0' && clause[j] <= '9' {
				j++
			}
			n, err := strconv.Atoi(clause[i+1 : j])
			if err != nil || n < 1 || n > len(args) {
				return "", fmt.Errorf("filter clause: bad placeholder")
			}
			b.WriteString(s.literal(fmt.Sprint(args[n-1])))
			next++
			i = j - 1
		case c == '?' && s.d == dialect.MySQL:
			if next >= len(args) {
				return "", fmt.Errorf("filter clause: more placeholders than arguments")
			}
			b.WriteString(s.literal(fmt.Sprint(args[next])))
			next++
		default:
			b.WriteByte(c)
		}
	}
	if next != len(args) {
		return "", fmt.Errorf("filter clause: %d placeholders for %d arguments", next, len(args))
	}
	return b.String(), nil
}

// jdbcParts is how many partitions a JDBC read is split into.
const jdbcParts = 4

// Hidden columns of a JDBC read: the hash bucket a non-integer key falls
// in, and the row's place in the table's storage order.
const (
	bucketCol = "__kalla_bucket"
	orderCol  = "__kalla_ord"
)

// bucket is a SQL expression of the database giving each row a bucket in
// [0, jdbcParts) from a hash of its key columns (NULLs hash as absent), so
// Spark's partitioned read (partitionColumn over the bucket, one bucket per
// partition) splits a table whose key is text, a date or composite: each
// partition's query is WHERE bucket = n on the database, never LIMIT or
// OFFSET, and together they read every row once.
func (s *jdbcSource) bucket(keys []string) string {
	parts := make([]string, len(keys))
	for i, k := range keys {
		if s.d == dialect.Postgres {
			parts[i] = s.d.QuoteIdent(k) + "::text"
		} else {
			parts[i] = s.d.QuoteIdent(k)
		}
	}
	if s.d == dialect.Postgres {
		return fmt.Sprintf("mod(abs(hashtext(concat_ws(chr(31), %s))::bigint), %d)", strings.Join(parts, ", "), jdbcParts)
	}
	return fmt.Sprintf("CRC32(CONCAT_WS(CHAR(31), %s)) %% %d", strings.Join(parts, ", "), jdbcParts)
}

// storageOrder returns SQL expressions of the database (BIGINTs) that sort
// a table's rows in the order a plain SELECT * returns them, which is the
// order DuckDB's connectors number them in (_left_row/_right_row):
// PostgreSQL's heap order (ctid: block, then line pointer), which a
// sequential scan follows; MariaDB's InnoDB clustered index (the table's
// PRIMARY KEY, read from information_schema), which a full scan follows,
// numbered by MariaDB in its collation. Nil when the relation has no such
// order to read (a PostgreSQL view or partitioned table, a MariaDB table
// without a primary key, whose scan follows a hidden row id): the caller
// falls back to the recipe's key.
func (r *run) storageOrder(ctx context.Context, src *jdbcSource, read func(string, map[string]string) (string, error)) ([]string, error) {
	if src.d == dialect.Postgres {
		// Only a plain table's (or materialized view's) ctid is unique
		// and in scan order; a view has none, a partitioned table one per
		// partition.
		v, err := read("SELECT relkind::text AS k FROM pg_class WHERE oid = to_regclass("+src.literal(src.table)+")", nil)
		if err != nil {
			return nil, err
		}
		df, err := r.sql(ctx, "SELECT k FROM "+qi(v))
		if err != nil {
			return nil, err
		}
		rows, err := df.Collect(ctx)
		if err != nil {
			return nil, sparkError(err)
		}
		if len(rows) != 1 || (rows[0].At(0) != "r" && rows[0].At(0) != "m") {
			return nil, nil
		}
		return []string{"(ctid::text::point)[0]::bigint", "(ctid::text::point)[1]::bigint"}, nil
	}
	schema := "DATABASE()"
	name := src.parts[len(src.parts)-1]
	if len(src.parts) == 2 {
		schema = src.literal(src.parts[0])
	}
	v, err := read(fmt.Sprintf("SELECT COLUMN_NAME AS c, SEQ_IN_INDEX AS n FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s AND INDEX_NAME = 'PRIMARY'",
		schema, src.literal(name)), nil)
	if err != nil {
		return nil, err
	}
	df, err := r.sql(ctx, "SELECT c FROM "+qi(v)+" ORDER BY n")
	if err != nil {
		return nil, err
	}
	rows, err := df.Collect(ctx)
	if err != nil {
		return nil, sparkError(err)
	}
	var keys []string
	for _, row := range rows {
		c, _ := row.At(0).(string)
		keys = append(keys, src.d.QuoteIdent(c))
	}
	if len(keys) == 0 {
		return nil, nil
	}
	// Numbered by MariaDB, in its collation's order (which Spark's
	// binary string order is not).
	return []string{"ROW_NUMBER() OVER (ORDER BY " + strings.Join(keys, ", ") + ")"}, nil
}

// stageJDBC reads a table through Spark's JDBC source, the filters pushed
// down as the WHERE of the query the database runs. When the first key
// column is an integer the read is split into ranges of it (bounds read
// first, by Spark); otherwise into hash buckets of the key (see bucket).
// Row ids number the rows in the table's storage order (see
// storageOrder), as DuckDB's connectors number them in arrival order.
func (r *run) stageJDBC(ctx context.Context, s *side, typ string) error {
	src, err := parseJDBC(s.spec, typ)
	if err != nil {
		return err
	}
	read := func(query string, parts map[string]string) (string, error) {
		rd := r.s.sql.Read().Format("jdbc").Option("url", src.url).Option("driver", src.driver).
			Option("dbtable", "("+query+") kalla_src").Option("fetchsize", "10000").
			// A timestamp without a time zone (Postgres timestamp, MySQL
			// DATETIME) stays one, as DuckDB's connectors read it; Spark
			// would otherwise make it an instant in the session's zone.
			Option("preferTimestampNTZ", "true")
		if src.user != "" {
			rd = rd.Option("user", src.user)
		}
		if src.password != "" {
			rd = rd.Option("password", src.password)
		}
		for k, v := range parts {
			rd = rd.Option(k, v)
		}
		df, err := rd.Load("")
		if err != nil {
			return "", kalla.AsSourceError(sparkError(err), s.name, s.spec.Alias)
		}
		v := fmt.Sprintf("%s_jdbc%d", s.table, len(r.created))
		if err := df.CreateTempView(ctx, v, true, false); err != nil {
			return "", kalla.AsSourceError(sparkError(err), s.name, s.spec.Alias)
		}
		r.created = append(r.created, v)
		return v, nil
	}
	// The columns first (no rows: the database answers WHERE 1 = 0).
	probe, err := read("SELECT * FROM "+src.table+" WHERE 1 = 0", nil)
	if err != nil {
		return err
	}
	cols, err := r.describe(ctx, probe)
	if err != nil {
		return kalla.AsSourceError(err, s.name, s.spec.Alias)
	}
	for _, c := range cols {
		if strings.HasPrefix(strings.ToLower(c.Name), "__kalla_") {
			return kalla.Errorf(kalla.EINVALID, "source %s: column %q uses the prefix __kalla_, which Kalla reserves", s.spec.Alias, c.Name)
		}
	}
	where, err := src.where(s.spec.Alias, s.filters, cols)
	if err != nil {
		return err
	}
	var pk []string
	for _, k := range s.spec.PrimaryKey {
		i := kalla.FindColumn(cols, k)
		if i < 0 {
			return kalla.Errorf(kalla.EINVALID, "source %s: primary key column %q not found (columns: %s)", s.spec.Alias, k, columnNames(cols))
		}
		pk = append(pk, cols[i].Name)
	}
	if len(pk) == 0 {
		return kalla.Errorf(kalla.EINVALID, "source %s: primary_key is required", s.spec.Alias)
	}
	// Record identity: the row's place in the order the database returns
	// a plain SELECT in (see storageOrder), read as hidden columns and
	// ranked by Spark; the recipe's key when the table has no such order.
	ord, err := r.storageOrder(ctx, src, read)
	if err != nil {
		return kalla.AsSourceError(err, s.name, s.spec.Alias)
	}
	sel := []string{"*"}
	var order []string
	for i, e := range ord {
		name := fmt.Sprintf("%s%d", orderCol, i)
		sel = append(sel, e+" AS "+src.d.QuoteIdent(name))
		order = append(order, qi(name))
	}
	if len(order) == 0 {
		for _, k := range pk {
			order = append(order, qi(k))
		}
	}
	// Partitions: ranges of an integer first key (bounds read first, by
	// Spark), else hash buckets of the whole key (see bucket).
	var parts map[string]string
	if k := cols[kalla.FindColumn(cols, pk[0])]; k.DataType == "BIGINT" || k.DataType == "INTEGER" || k.DataType == "SMALLINT" {
		b, err := read("SELECT min("+src.d.QuoteIdent(pk[0])+") AS lo, max("+src.d.QuoteIdent(pk[0])+") AS hi FROM "+src.table+where, nil)
		if err != nil {
			return err
		}
		row, err := r.one(ctx, "SELECT CAST(lo AS BIGINT), CAST(hi AS BIGINT) FROM "+qi(b))
		if err != nil {
			return kalla.AsSourceError(err, s.name, s.spec.Alias)
		}
		if row[0] != nil && row[1] != nil {
			parts = map[string]string{"partitionColumn": pk[0], "lowerBound": fmt.Sprint(toInt64(row[0])),
				"upperBound": fmt.Sprint(toInt64(row[1]) + 1), "numPartitions": fmt.Sprint(jdbcParts)}
		}
	} else {
		sel = append(sel, src.bucket(pk)+" AS "+src.d.QuoteIdent(bucketCol))
		parts = map[string]string{"partitionColumn": bucketCol, "lowerBound": "0",
			"upperBound": fmt.Sprint(jdbcParts), "numPartitions": fmt.Sprint(jdbcParts)}
	}
	data, err := read("SELECT "+strings.Join(sel, ", ")+" FROM "+src.table+where, parts)
	if err != nil {
		return err
	}
	keep := make([]string, len(cols))
	for i, c := range cols {
		keep[i] = qi(c.Name)
	}
	// The run's mark makes the cached rows its own (see run.mark). Spark
	// 4.0.1 never found two JDBC reads the same plan (their options
	// compare by identity; the postgres case of
	// TestConcurrentRunsOwnTheirData passes without the mark), but that
	// is Spark's detail, not a promise: the mark costs one constant column.
	q := fmt.Sprintf("CACHE LAZY TABLE %s AS SELECT %s, CAST(row_number() OVER (ORDER BY %s) - 1 AS BIGINT) AS %s, %s AS __kalla_run FROM %s",
		qi(s.table), strings.Join(keep, ", "), strings.Join(order, ", "), ridCol, sparkString(r.mark()), qi(data))
	if err := r.exec(ctx, q); err != nil {
		return kalla.AsSourceError(err, s.name, s.spec.Alias)
	}
	r.created = append(r.created, s.table)
	s.cols = cols
	return nil
}

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
	table          string // quoted, qualified
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

// stageJDBC reads a table through Spark's JDBC source, the filters pushed
// down as the WHERE of the query the database runs. When the first key
// column is an integer the read is split into ranges of it (bounds read
// first, by Spark); otherwise one partition reads it. Row ids are the
// records' rank in primary-key order (the DuckDB engine numbers rows in
// the order the database sends them, which for a table loaded in key order
// and not rewritten since is the same).
func (r *run) stageJDBC(ctx context.Context, s *side, typ string) error {
	src, err := parseJDBC(s.spec, typ)
	if err != nil {
		return err
	}
	read := func(query string, parts map[string]string) (string, error) {
		rd := r.s.sql.Read().Format("jdbc").Option("url", src.url).Option("driver", src.driver).
			Option("dbtable", "("+query+") kalla_src").Option("fetchsize", "10000")
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
	query := "SELECT * FROM " + src.table + where
	var pk []string
	for _, k := range s.spec.PrimaryKey {
		i := kalla.FindColumn(cols, k)
		if i < 0 {
			return kalla.Errorf(kalla.EINVALID, "source %s: primary key column %q not found (columns: %s)", s.spec.Alias, k, columnNames(cols))
		}
		pk = append(pk, cols[i].Name)
	}
	parts := map[string]string{}
	if len(pk) > 0 {
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
					"upperBound": fmt.Sprint(toInt64(row[1]) + 1), "numPartitions": "4"}
			}
		}
	}
	data, err := read(query, parts)
	if err != nil {
		return err
	}
	order := make([]string, len(pk))
	for i, k := range pk {
		order[i] = qi(k)
	}
	if len(order) == 0 {
		return kalla.Errorf(kalla.EINVALID, "source %s: primary_key is required", s.spec.Alias)
	}
	q := fmt.Sprintf("CACHE LAZY TABLE %s AS SELECT *, CAST(row_number() OVER (ORDER BY %s) - 1 AS BIGINT) AS %s FROM %s",
		qi(s.table), strings.Join(order, ", "), ridCol, qi(data))
	if err := r.exec(ctx, q); err != nil {
		return kalla.AsSourceError(err, s.name, s.spec.Alias)
	}
	r.created = append(r.created, s.table)
	s.cols = cols
	return nil
}

package rules

import (
	"fmt"
	"regexp/syntax"
	"slices"
	"strings"
	"unicode"

	"github.com/kalla-recon/kalla/internal/dialect"
)

// NewSpark returns the dialect of Apache Spark SQL (4.0), run over Spark
// Connect, for one plan: it names what it creates, and Cleanup drops it.
//
// Spark has no tables of a session's own, so a "table" here is a cached
// temporary view: each version of table t is cached under a name of its
// own (CACHE LAZY TABLE t__k<n> AS ...) and t is a view of the latest. A
// statement may then read the table it replaces, which a view defined by
// name could not (Spark refuses a recursive view), and no view is renamed
// (Spark 4.0.1 cannot cache a query over a renamed temporary view). It has
// no set of row ids either, so what each pass leaves is kept in such
// tables.
//
// Caching is lazy: a version is computed, and kept, by the first query
// that reads it, so a plan's Spark jobs are its queries (counts, the
// report, the outputs) rather than one per table. Each job has a cost of
// its own (scheduling tasks on the executors) that dwarfs small tables;
// a table is never computed twice, since its query's answer does not
// depend on when it runs (total orders everywhere). A data error (a text
// that is not a date) therefore surfaces at the first query reading the
// table, which Execute reports naming the rule as it does a statement's.
//
// With a scratch folder (a URI the cluster writes and reads: file:///dir
// on a folder it shares, s3a://bucket/prefix), each version is instead
// written there as Parquet by the statement that makes it and read back
// as a view of those files. That cuts the version's lineage: a cached view
// keeps the plan of every table under it, and Spark's analyser (which runs
// before a cached plan is substituted) walks that plan again for every
// statement that names the view, once per read (a self-join reads it
// twice), so the plans of a many-pass rules run grew with every table
// made: rules_split_payments (8 x 18 rows) cost 283-631 CPU seconds on the
// Connect driver, nearly all in CheckAnalysis and DeduplicateRelations
// (JFR, Dec 3). A view of Parquet files is a leaf. The caller removes the
// folder after Cleanup.
//
// The plan's SQL needs session settings (Setup): decimal arithmetic that
// keeps every digit (Spark otherwise rounds a product of two wide decimals
// to 6 places), ANSI mode (errors, not NULLs, on bad casts) and UTC, so
// timestamps without time zone never meet a daylight-saving gap; and views
// that keep their analysed plan, which the stacked views need to be cheap.
func NewSpark(scratch string) Dialect {
	return &spark{current: map[string]string{}, scratch: strings.TrimSuffix(scratch, "/")}
}

type spark struct {
	n       int               // versions made
	created []string          // every view made, in order
	current map[string]string // table -> the version it shows
	scratch string            // where versions are written; "" caches them
}

// Cleanup uncaches and drops every view the plan made, newest first. The
// cache manager is shared by every session of the server and releasing a
// session does not uncache what it cached, so a view left cached here
// holds its plan (and a clone of the session) on the driver until the
// server stops. DROP VIEW alone does not uncache these: with it only, 114
// cached tables and 1586 sessions stayed live after a suite (Dec 3).
func (s *spark) Cleanup() []string {
	var out []string
	for i := len(s.created) - 1; i >= 0; i-- {
		out = append(out, "UNCACHE TABLE IF EXISTS "+s.Ident(s.created[i]), "DROP VIEW IF EXISTS "+s.Ident(s.created[i]))
	}
	s.created = nil
	return out
}

func (*spark) Name() string { return "spark" }

func (*spark) Setup() []string {
	return []string{
		"SET spark.sql.decimalOperations.allowPrecisionLoss = false",
		"SET spark.sql.session.timeZone = UTC",
		"SET spark.sql.ansi.enabled = true",
		// A plan stacks views on views; kept as SQL text, each is parsed
		// and analysed again, with all under it, whenever a statement
		// names it (seconds per statement by the end of a plan).
		"SET spark.sql.legacy.storeAnalyzedPlanForView = true",
	}
}

func (*spark) Ident(name string) string      { return dialect.SparkQuoteIdent(name) }
func (*spark) Str(s string) string           { return dialect.SparkQuoteString(s) }
func (*spark) Text(x string) string          { return "CAST(" + x + " AS STRING)" }
func (*spark) TextType() string              { return "STRING" }
func (*spark) Date(x string) string          { return "CAST(" + x + " AS DATE)" }
func (*spark) Timestamp(x string) string     { return "CAST(" + x + " AS TIMESTAMP_NTZ)" }
func (s *spark) Alnum(x string) string       { return s.RegexpRemove(x, `[^\p{L}\p{N}]`) }
func (*spark) Similarity(a, b string) string { return "" }
func (*spark) Contains(h, n string) string   { return "contains(" + h + ", " + n + ")" }
func (*spark) StartsWith(h, n string) string { return "startswith(" + h + ", " + n + ")" }
func (*spark) EndsWith(h, n string) string   { return "endswith(" + h + ", " + n + ")" }
func (*spark) SemiJoin() string              { return "LEFT SEMI JOIN" }

func (*spark) Ordered(query, by string) string { return query }
func (*spark) AntiJoin() string                { return "LEFT ANTI JOIN" }
func (*spark) ArgMin(x, by string) string      { return "min_by(" + x + ", " + by + ")" }

func (*spark) CountIDs(x string, _ int64) string { return "count(DISTINCT " + x + ")" }
func (*spark) IDSet(string, int64) string        { return "" }
func (*spark) IDNotIn(set, x string) string      { panic("rules: spark has no id sets") }
func (*spark) IDUnion(x string) string           { panic("rules: spark has no id sets") }
func (*spark) SetVariable(name, q string) string { panic("rules: spark has no id sets") }
func (*spark) Variable(name string) string       { panic("rules: spark has no id sets") }

// IDPairs writes the list into the statement: Spark Connect's SQL command
// takes no bound parameters here. It holds only digits, colons and commas.
func (s *spark) IDPairs(list string) (string, []any) {
	return "(SELECT CAST(split_part(x, ':', 1) AS BIGINT) AS a, CAST(split_part(x, ':', 2) AS BIGINT) AS b FROM (SELECT explode(split(" + s.Str(list) + ", ',')) AS x))", nil
}

func (s *spark) CreateTableAs(name, query string) []string {
	query = s.resolve(query)
	s.n++
	version := fmt.Sprintf("%s__k%d", name, s.n)
	s.created = append(s.created, version)
	views := s.CreateViewAs(name, "SELECT * FROM "+s.Ident(version))
	s.current[name] = version
	if s.scratch != "" {
		dir := s.Str(s.scratch + "/" + version)
		return append([]string{
			"INSERT OVERWRITE DIRECTORY " + dir + " USING parquet " + query,
			"CREATE OR REPLACE TEMPORARY VIEW " + s.Ident(version) + " USING parquet OPTIONS (path " + dir + ")",
		}, views...)
	}
	return append([]string{"CACHE LAZY TABLE " + s.Ident(version) + " AS " + query}, views...)
}

func (s *spark) CreateViewAs(name, query string) []string {
	if !slices.Contains(s.created, name) {
		s.created = append(s.created, name)
	}
	delete(s.current, name)
	return []string{"CREATE OR REPLACE TEMPORARY VIEW " + s.Ident(name) + " AS " + query}
}

func (s *spark) InsertInto(table, query string) []string {
	return s.CreateTableAs(table, "SELECT * FROM "+s.Ident(table)+" UNION ALL "+query)
}

// resolve names in query the versions the tables it reads show now: Spark
// keeps a cached view's query as text, so a version reading "t" would
// read itself once t shows it. Names in string literals are left alone.
func (s *spark) resolve(query string) string {
	var b strings.Builder
	for i := 0; i < len(query); {
		c := query[i]
		switch {
		case c == '\'':
			j := i + 1
			for j < len(query) && query[j] != '\'' {
				if query[j] == '\\' {
					j++
				}
				j++
			}
			j = min(j+1, len(query))
			b.WriteString(query[i:j])
			i = j
		case c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z':
			j := i + 1
			for j < len(query) && (query[j] == '_' || query[j] >= 'a' && query[j] <= 'z' || query[j] >= 'A' && query[j] <= 'Z' || query[j] >= '0' && query[j] <= '9') {
				j++
			}
			if v, ok := s.current[query[i:j]]; ok {
				b.WriteString(v)
			} else {
				b.WriteString(query[i:j])
			}
			i = j
		default:
			b.WriteByte(c)
			i++
		}
	}
	return b.String()
}

// RenameTable makes to a view of from's current version: from may be
// replaced later, to stays.
func (s *spark) RenameTable(from, to string) []string {
	version, ok := s.current[from]
	if !ok {
		return s.CreateTableAs(to, "SELECT * FROM "+s.Ident(from))
	}
	views := s.CreateViewAs(to, "SELECT * FROM "+s.Ident(version))
	s.current[to] = version
	return views
}

// RegexpRemove hands Spark (java.util.regex) the pattern as RE2 parsed it,
// rewritten in the constructs both read alike (see javaRegexp).
func (s *spark) RegexpRemove(x, pattern string) string {
	re, err := javaRegexp(pattern)
	if err != nil {
		panic("rules: unchecked pattern: " + err.Error())
	}
	return "regexp_replace(" + x + ", " + s.Str(re) + ", '')"
}

func (*spark) Regexp(pattern string) string {
	if _, err := javaRegexp(pattern); err != nil {
		return err.Error()
	}
	return ""
}

// Decimal keeps 38 digits; Setup keeps Spark from dropping decimals of
// products.
func (*spark) Decimal(x string, scale int) string {
	return fmt.Sprintf("CAST(%s AS DECIMAL(38,%d))", x, scale)
}

func (*spark) AddDays(x string, days int, ts bool) string {
	if days == 0 {
		return x
	}
	if ts {
		return fmt.Sprintf("timestampadd(DAY, %d, %s)", days, x)
	}
	return fmt.Sprintf("date_add(%s, %d)", x, days)
}

// DaysBetween counts microseconds for timestamps: the exact difference,
// divided once, is the double DuckDB's difference of epoch seconds gives.
func (*spark) DaysBetween(from, to string, ts bool) string {
	if ts {
		return fmt.Sprintf("(CAST(timestampdiff(MICROSECOND, %s, %s) AS DOUBLE) / 86400000000.0)", from, to)
	}
	return fmt.Sprintf("datediff(%s, %s)", to, from)
}

// Trunc uses trunc for dates (it stays a date; it has no "day", which
// leaves a date as it is) and date_trunc for timestamps.
func (s *spark) Trunc(unit, x string, ts bool) string {
	if ts {
		return "CAST(date_trunc(" + s.Str(unit) + ", " + x + ") AS TIMESTAMP_NTZ)"
	}
	if unit == "day" {
		return x
	}
	return "trunc(" + x + ", " + s.Str(unit) + ")"
}

func (*spark) Format(x string, decimals int) string {
	return fmt.Sprintf("CAST(round(CAST(CAST(%s AS DOUBLE) AS DECIMAL(38,10)), %d) AS STRING)", x, decimals)
}

// TrimRight: Spark's two-argument rtrim reads its arguments the other way
// round from DuckDB's; the standard form is unambiguous.
func (s *spark) TrimRight(x, chars string) string {
	return "trim(TRAILING " + s.Str(chars) + " FROM " + x + ")"
}

// JoinFirst sorts (order, value) pairs: Spark's collect_list keeps no
// order of its own.
func (*spark) JoinFirst(x, order string, n int) string {
	return fmt.Sprintf("array_join(slice(transform(array_sort(collect_list(named_struct('o', %s, 'v', %s))), e -> e.v), 1, %d), ', ')", order, x, n)
}

// Concat: Spark's concat is NULL when a part is.
func (s *spark) Concat(parts ...string) string {
	out := make([]string, len(parts))
	for i, p := range parts {
		out[i] = "coalesce(" + s.Text(p) + ", '')"
	}
	return "concat(" + strings.Join(out, ", ") + ")"
}

// javaRegexp rewrites an RE2 pattern for java.util.regex: it is parsed as
// RE2 parses it and written back with every character and class spelled
// as explicit code points, so RE2-only syntax (POSIX classes, \pN, (?i)
// folding, named groups) means the same to Java, and the anchors Java
// reads differently ($, multi-line ^ and $, \b, \B: Java's line ends and
// word characters are not RE2's) are spelled with \z and lookarounds that
// mean exactly RE2's. An operator it does not know is an error.
func javaRegexp(pattern string) (string, error) {
	re, err := syntax.Parse(pattern, syntax.Perl)
	if err != nil {
		return "", fmt.Errorf("pattern %q: %w", pattern, err)
	}
	var b strings.Builder
	if err := writeJava(&b, re.Simplify()); err != nil {
		return "", fmt.Errorf("pattern %q: %w", pattern, err)
	}
	return b.String(), nil
}

func writeJavaRune(b *strings.Builder, r rune) { fmt.Fprintf(b, `\x{%X}`, r) }

func writeJava(b *strings.Builder, re *syntax.Regexp) error {
	group := func(sub *syntax.Regexp) error {
		b.WriteString("(?:")
		if err := writeJava(b, sub); err != nil {
			return err
		}
		b.WriteString(")")
		return nil
	}
	switch re.Op {
	case syntax.OpNoMatch:
		b.WriteString(`[^\x{0}-\x{10FFFF}]`)
	case syntax.OpEmptyMatch:
		b.WriteString("(?:)")
	case syntax.OpLiteral:
		for _, r := range re.Rune {
			if re.Flags&syntax.FoldCase != 0 {
				b.WriteString("[")
				writeJavaRune(b, r)
				for f := fold(r); f != r; f = fold(f) {
					writeJavaRune(b, f)
				}
				b.WriteString("]")
				continue
			}
			writeJavaRune(b, r)
		}
	case syntax.OpCharClass:
		if len(re.Rune) == 0 {
			b.WriteString(`[^\x{0}-\x{10FFFF}]`)
			break
		}
		b.WriteString("[")
		for i := 0; i+1 < len(re.Rune); i += 2 {
			writeJavaRune(b, re.Rune[i])
			if re.Rune[i+1] != re.Rune[i] {
				b.WriteString("-")
				writeJavaRune(b, re.Rune[i+1])
			}
		}
		b.WriteString("]")
	case syntax.OpAnyCharNotNL:
		b.WriteString(`[^\x{A}]`)
	case syntax.OpAnyChar:
		b.WriteString(`[\x{0}-\x{10FFFF}]`)
	case syntax.OpBeginText:
		b.WriteString(`\A`)
	case syntax.OpEndText:
		// RE2's $ (not multi-line) is the end of the text; Java's $ also
		// matches before a final line break, its \z does not.
		b.WriteString(`\z`)
	case syntax.OpBeginLine:
		// After \n only (Java's ^ also follows \r and others).
		b.WriteString(`(?:\A|(?<=\x{A}))`)
	case syntax.OpEndLine:
		b.WriteString(`(?=\x{A}|\z)`)
	case syntax.OpWordBoundary:
		// RE2's word characters are ASCII [0-9A-Za-z_].
		b.WriteString(`(?:(?<=[0-9A-Za-z_])(?![0-9A-Za-z_])|(?<![0-9A-Za-z_])(?=[0-9A-Za-z_]))`)
	case syntax.OpNoWordBoundary:
		b.WriteString(`(?:(?<=[0-9A-Za-z_])(?=[0-9A-Za-z_])|(?<![0-9A-Za-z_])(?![0-9A-Za-z_]))`)
	case syntax.OpCapture:
		return group(re.Sub[0])
	case syntax.OpStar, syntax.OpPlus, syntax.OpQuest:
		if err := group(re.Sub[0]); err != nil {
			return err
		}
		b.WriteString(map[syntax.Op]string{syntax.OpStar: "*", syntax.OpPlus: "+", syntax.OpQuest: "?"}[re.Op])
		if re.Flags&syntax.NonGreedy != 0 {
			b.WriteString("?")
		}
	case syntax.OpRepeat:
		if err := group(re.Sub[0]); err != nil {
			return err
		}
		if re.Max < 0 {
			fmt.Fprintf(b, "{%d,}", re.Min)
		} else {
			fmt.Fprintf(b, "{%d,%d}", re.Min, re.Max)
		}
		if re.Flags&syntax.NonGreedy != 0 {
			b.WriteString("?")
		}
	case syntax.OpConcat:
		for _, s := range re.Sub {
			if err := group(s); err != nil {
				return err
			}
		}
	case syntax.OpAlternate:
		for i, s := range re.Sub {
			if i > 0 {
				b.WriteString("|")
			}
			if err := group(s); err != nil {
				return err
			}
		}
	default:
		return fmt.Errorf("%v is not supported on Spark", re.Op)
	}
	return nil
}

// fold is the next rune in r's case-folding orbit (unicode.SimpleFold).
func fold(r rune) rune { return unicode.SimpleFold(r) }

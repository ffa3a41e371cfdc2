package engine

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/kalla-recon/kalla/internal/dialect"
	"github.com/kalla-recon/kalla/internal/kalla"
)

// sandbox closes the run's database to everything outside it before any SQL
// Kalla did not write runs on it: the recipe's match SQL, and whatever
// suggest runs on an Inspection. It is called once both sides are staged
// (staging reads the sources with Kalla's own SQL, so it needs the file
// system) and before the first user statement; match and matchRules refuse
// to run on an engine that skipped it. Afterwards DuckDB itself refuses
// every file, URL, extension and setting, so the sandbox holds however the
// SQL is written; checkReads only gives the refusal a clearer message.
//
// writes are the only files the run may still write, each by its exact
// path (the outputs under their temporary names). The settings, each proven
// by sandbox_test.go against DuckDB 2.0 (and before it 1.5):
//   - allowed_paths lists the writes. It must be set before external access
//     goes off: DuckDB refuses to change it afterwards.
//   - enable_external_access = false: no file, URL, ATTACH, COPY, INSTALL or
//     LOAD outside the allowed paths. DuckDB adds the spill folder
//     (temp_directory) to allowed_directories by itself, and spilling keeps
//     working; that folder is private to this database (see Open), so it
//     holds nothing but this run's own blocks. Once off, it cannot be turned
//     on again.
//   - autoload_known_extensions and autoinstall_known_extensions = false,
//     allow_community_extensions = false: no extension loads behind a
//     function name. (autoload could be turned back on without the lock.)
//   - lock_configuration = true: no SET or RESET of any option for the rest
//     of the database's life, on any connection. SET VARIABLE is not an
//     option and keeps working, as Kalla's unmatched-row queries need.
//
// disabled_filesystems = 'LocalFileSystem' is not used: it also stops
// spilling and the output COPY.
func (e *Engine) sandbox(ctx context.Context, writes []string) error {
	if e.sandboxed {
		return nil
	}
	paths := make([]string, len(writes))
	for i, w := range writes {
		abs, err := filepath.Abs(w)
		if err != nil {
			return fmt.Errorf("sandbox: output path %s: %w", w, err)
		}
		// A file left by an earlier, interrupted run under the same name
		// would otherwise be readable by the match SQL.
		if err := os.Remove(abs); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("sandbox: remove stale %s: %w", filepath.Base(abs), err)
		}
		paths[i] = dialect.DuckDB.QuoteString(abs)
	}
	stmts := []string{
		"SET allowed_paths = [" + strings.Join(paths, ", ") + "]",
		"SET enable_external_access = false",
		"SET autoinstall_known_extensions = false",
		"SET autoload_known_extensions = false",
		"SET allow_community_extensions = false",
		"SET lock_configuration = true",
	}
	for _, q := range stmts {
		if _, err := e.exec(ctx, q); err != nil {
			return fmt.Errorf("sandbox: %w", err)
		}
	}
	e.sandboxed = true
	return nil
}

// errNoSandbox is returned by the match of an engine that was not
// sandboxed: a bug in Kalla, never the user's fault.
var errNoSandbox = errors.New("engine: match before sandbox (a bug in Kalla)")

// outputPaths are the temporary names writeOutputs gives the run's files.
func outputPaths(r Run) []string {
	tables := []string{TableMatched, TableUnmatchedLeft, TableUnmatchedRight}
	if len(r.Recipe.Rules) > 0 {
		tables = append(tables, TableBreaks)
	}
	if r.Records {
		tables = append(tables, TableMatchedLeft, TableMatchedRight)
	}
	var out []string
	for _, t := range tables {
		for _, f := range r.Formats {
			out = append(out, partialPath(r.OutDir, t+"."+f))
		}
	}
	return out
}

// partialPath is where the output file name is written before it is
// complete.
func partialPath(dir, name string) string { return kalla.PartialPath(filepath.Join(dir, name)) }

// allowedTableFunctions are the table functions match SQL may call: they
// compute rows and read nothing.
var allowedTableFunctions = map[string]bool{"unnest": true, "range": true, "generate_series": true}

// refusedFunctions are scalar functions that read the database's settings
// or state rather than the rows.
var refusedFunctions = map[string]bool{"current_setting": true, "getenv": true, "getvariable": true}

// checkReads walks the whole parsed match SQL (subqueries, CTEs, joins,
// expressions) and refuses any table other than the two sides' views, their
// aliases and the SQL's own CTEs, any table function that is not a pure
// generator, and functions that read settings. It is the first, readable
// line of the sandbox; DuckDB's own lockdown (see sandbox) is the one that
// holds, since a list of known dangers is never complete.
func checkReads(tree map[string]any, left, right sideNames) error {
	allowed := map[string]bool{}
	for _, n := range []string{left.view, left.alias, right.view, right.alias} {
		if n != "" {
			allowed[strings.ToLower(n)] = true
		}
	}
	refuse := func(what string) error {
		aliases := []string{}
		for _, a := range []string{left.alias, right.alias} {
			if a != "" && !strings.EqualFold(a, left.view) && !strings.EqualFold(a, right.view) {
				aliases = append(aliases, a)
			}
		}
		also := ""
		if len(aliases) > 0 {
			also = " (and the aliases " + strings.Join(aliases, ", ") + ")"
		}
		return kalla.Errorf(kalla.EINVALID, "match_sql: may read only %s and %s%s: %s is not allowed", left.view, right.view, also, what)
	}
	var walk func(x any, ctes map[string]bool) error
	walk = func(x any, ctes map[string]bool) error {
		switch t := x.(type) {
		case []any:
			for _, v := range t {
				if err := walk(v, ctes); err != nil {
					return err
				}
			}
			return nil
		case map[string]any:
			if cm, _ := t["cte_map"].(map[string]any); cm != nil {
				if m, _ := cm["map"].([]any); len(m) > 0 {
					inner := make(map[string]bool, len(ctes)+len(m))
					for k := range ctes {
						inner[k] = true
					}
					for _, entry := range m {
						if kv, _ := entry.(map[string]any); kv != nil {
							if k, _ := kv["key"].(string); k != "" {
								inner[strings.ToLower(k)] = true
							}
						}
					}
					ctes = inner
				}
			}
			typ, _ := t["type"].(string)
			if class, isExpr := t["class"]; isExpr {
				if class == "PARAMETER" {
					// DuckDB would say "incorrect argument count": Kalla
					// binds no value to the match SQL.
					p := "?"
					if id, _ := t["identifier"].(string); id != "" && strings.Trim(id, "0123456789") != "" {
						p = "$" + id
					}
					return kalla.Errorf(kalla.EINVALID, "match_sql: %s is a parameter, and match SQL is given none: write the value itself", p)
				}
				if typ == "FUNCTION" {
					name, _ := t["function_name"].(string)
					if refusedFunctions[strings.ToLower(name)] {
						return refuse(name + "(...)")
					}
				}
			} else {
				switch typ {
				case "BASE_TABLE":
					name, _ := t["table_name"].(string)
					schema, _ := t["schema_name"].(string)
					catalog, _ := t["catalog_name"].(string)
					full := name
					if schema != "" {
						full = schema + "." + full
					}
					if catalog != "" {
						full = catalog + "." + full
					}
					lname := strings.ToLower(name)
					plain := (schema == "" || strings.EqualFold(schema, "main")) && (catalog == "" || strings.EqualFold(catalog, "memory"))
					if !(plain && allowed[lname]) && !(schema == "" && catalog == "" && ctes[lname]) {
						return refuse(fmt.Sprintf("table %q", full))
					}
				case "TABLE_FUNCTION":
					fn, _ := t["function"].(map[string]any)
					name, _ := fn["function_name"].(string)
					if !allowedTableFunctions[strings.ToLower(name)] {
						return refuse(name + "(...)")
					}
				case "SHOW_REF":
					return refuse("DESCRIBE, SHOW or SUMMARIZE")
				}
			}
			keys := make([]string, 0, len(t))
			for k := range t {
				keys = append(keys, k)
			}
			// A fixed order, so the same SQL always names the same culprit.
			sort.Strings(keys)
			for _, k := range keys {
				if err := walk(t[k], ctes); err != nil {
					return err
				}
			}
		}
		return nil
	}
	return walk(tree, nil)
}

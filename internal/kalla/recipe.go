package kalla

import (
	"bytes"
	"encoding/json"
	"fmt"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Source types a recipe side may name. An empty type is inferred from the URI.
const (
	SourceCSV      = "csv"
	SourceParquet  = "parquet"
	SourcePostgres = "postgres"
	SourceMySQL    = "mysql"
)

// Recipe is a reconciliation: two sources and how their records match. The
// JSON form is the original Kalla recipe format.
type Recipe struct {
	RecipeID         string  `json:"recipe_id"`
	Name             string  `json:"name,omitempty"`
	Description      string  `json:"description,omitempty"`
	MatchSQL         string  `json:"match_sql"`
	MatchDescription string  `json:"match_description,omitempty"`
	Sources          Sources `json:"sources"`
}

// Sources holds the two sides of a recipe.
type Sources struct {
	Left  SourceSpec `json:"left"`
	Right SourceSpec `json:"right"`
}

// SourceSpec says where one side's records come from and what identifies a
// record. The match SQL sees the side as left_src/right_src and as Alias.
type SourceSpec struct {
	Alias      string   `json:"alias"`
	Type       string   `json:"type,omitempty"`
	URI        string   `json:"uri"`
	PrimaryKey []string `json:"primary_key"`
	// Schema overrides inferred column types (file sources), column name to
	// DuckDB type, for example {"amount": "DECIMAL(18,2)"}.
	Schema map[string]string `json:"schema,omitempty"`
	// Filters scope the side; they are pushed down to the source for a run.
	Filters []Filter `json:"filters,omitempty"`
	// CSV holds CSV dialect settings for CSV sources.
	CSV *CSVOptions `json:"csv,omitempty"`
}

// CSVOptions are the CSV dialect settings a recipe may give. Kalla reads CSV
// strictly (RFC 4180, a header row, comma delimiter) unless told otherwise.
type CSVOptions struct {
	Delimiter string `json:"delimiter,omitempty"`
	// DateFormat and TimestampFormat read dates written other than ISO
	// 8601, in strftime notation ("%d/%m/%Y"). Without them such columns
	// stay text: 04/03/2026 is the 4th of March or the 3rd of April, and
	// Kalla does not guess.
	DateFormat      string `json:"date_format,omitempty"`
	TimestampFormat string `json:"timestamp_format,omitempty"`
}

var idPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`)
var aliasPattern = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,62}$`)

// ParseRecipe reads a recipe from JSON or YAML (the format is detected from
// the content) and validates it. Unknown fields are rejected, since a
// misspelt field such as "primary_keys" must not be silently ignored.
func ParseRecipe(data []byte) (*Recipe, error) {
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) == 0 {
		return nil, Errorf(EINVALID, "recipe is empty")
	}
	if trimmed[0] != '{' {
		var doc any
		if err := yaml.Unmarshal(data, &doc); err != nil {
			return nil, Errorf(EINVALID, "recipe is neither JSON nor YAML: %v", err)
		}
		j, err := json.Marshal(yamlToJSON(doc))
		if err != nil {
			return nil, Errorf(EINVALID, "recipe YAML: %v", err)
		}
		trimmed = j
	}
	var r Recipe
	dec := json.NewDecoder(bytes.NewReader(trimmed))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		var ke *Error
		if asErr(err, &ke) {
			return nil, ke
		}
		return nil, Errorf(EINVALID, "recipe: %s", jsonErrorText(trimmed, err))
	}
	if err := r.Validate(); err != nil {
		return nil, err
	}
	return &r, nil
}

// yamlToJSON turns YAML maps with interface keys into JSON-compatible maps.
func yamlToJSON(v any) any {
	switch t := v.(type) {
	case map[string]any:
		for k, x := range t {
			t[k] = yamlToJSON(x)
		}
		return t
	case map[any]any:
		m := make(map[string]any, len(t))
		for k, x := range t {
			m[fmt.Sprint(k)] = yamlToJSON(x)
		}
		return m
	case []any:
		for i, x := range t {
			t[i] = yamlToJSON(x)
		}
		return t
	default:
		return v
	}
}

func jsonErrorText(data []byte, err error) string {
	var se *json.SyntaxError
	if asErr(err, &se) {
		line := 1 + bytes.Count(data[:min(int(se.Offset), len(data))], []byte("\n"))
		return fmt.Sprintf("invalid JSON at line %d: %v", line, err)
	}
	var te *json.UnmarshalTypeError
	if asErr(err, &te) {
		return fmt.Sprintf("field %q must be %s, not a JSON %s", te.Field, te.Type, te.Value)
	}
	return strings.TrimPrefix(err.Error(), "json: ")
}

// Validate checks the recipe's fields. It returns an EINVALID error listing
// every problem, each with what to change.
func (r *Recipe) Validate() error {
	var probs []string
	if r.RecipeID == "" {
		probs = append(probs, `"recipe_id" is required (letters, digits, ".", "_", "-")`)
	} else if !idPattern.MatchString(r.RecipeID) {
		probs = append(probs, fmt.Sprintf(`"recipe_id" %q may contain only letters, digits, ".", "_" and "-" (at most 128)`, r.RecipeID))
	}
	if strings.TrimSpace(r.MatchSQL) == "" {
		probs = append(probs, `"match_sql" is required: a SELECT over left_src and right_src`)
	}
	probs = append(probs, r.Sources.Left.problems("left")...)
	probs = append(probs, r.Sources.Right.problems("right")...)
	if r.Sources.Left.Alias != "" && strings.EqualFold(r.Sources.Left.Alias, r.Sources.Right.Alias) {
		probs = append(probs, fmt.Sprintf(`sources.left and sources.right have the same alias %q: give each side its own`, r.Sources.Left.Alias))
	}
	if len(probs) > 0 {
		return Errorf(EINVALID, "invalid recipe:\n  - %s", strings.Join(probs, "\n  - "))
	}
	return nil
}

func (s *SourceSpec) problems(side string) []string {
	var probs []string
	p := "sources." + side
	switch {
	case s.Alias == "":
		probs = append(probs, fmt.Sprintf(`%s.alias is required (a SQL name such as "invoices")`, p))
	case !aliasPattern.MatchString(s.Alias):
		probs = append(probs, fmt.Sprintf(`%s.alias %q must be a plain SQL name: letters, digits and "_", not starting with a digit`, p, s.Alias))
	case strings.EqualFold(s.Alias, "left_src") || strings.EqualFold(s.Alias, "right_src"):
		probs = append(probs, fmt.Sprintf(`%s.alias %q is reserved: left_src and right_src are always defined`, p, s.Alias))
	}
	if strings.TrimSpace(s.URI) == "" {
		probs = append(probs, fmt.Sprintf(`%s.uri is required (a file path, file://, s3://, https://, postgres:// or mysql:// URI)`, p))
	} else if t := s.SourceType(); t == "" {
		probs = append(probs, fmt.Sprintf(`%s.type is required: the type of %s cannot be told from its URI (use csv, parquet, postgres or mysql)`, p, RedactURI(s.URI)))
	} else if t != SourceCSV && t != SourceParquet && t != SourcePostgres && t != SourceMySQL {
		probs = append(probs, fmt.Sprintf(`%s.type %q is not supported (use csv, parquet, postgres or mysql)`, p, s.Type))
	}
	if len(s.PrimaryKey) == 0 {
		probs = append(probs, fmt.Sprintf(`%s.primary_key is required: the column(s) that identify a record, for example ["invoice_id"]`, p))
	}
	seen := map[string]bool{}
	for _, k := range s.PrimaryKey {
		if strings.TrimSpace(k) == "" {
			probs = append(probs, fmt.Sprintf(`%s.primary_key has an empty column name`, p))
		} else if seen[k] {
			probs = append(probs, fmt.Sprintf(`%s.primary_key names %q twice`, p, k))
		}
		seen[k] = true
	}
	keys := make([]string, 0, len(s.Schema))
	for k := range s.Schema {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if strings.TrimSpace(s.Schema[k]) == "" {
			probs = append(probs, fmt.Sprintf(`%s.schema.%s has no type`, p, k))
		}
	}
	for _, f := range s.Filters {
		if err := f.Validate(); err != nil {
			probs = append(probs, fmt.Sprintf("%s.filters: %s", p, ErrorMessage(err)))
		}
	}
	if s.CSV != nil && len([]rune(s.CSV.Delimiter)) > 1 {
		probs = append(probs, fmt.Sprintf(`%s.csv.delimiter must be a single character`, p))
	}
	return probs
}

// SourceType returns the explicit type, or the type implied by the URI's
// scheme or file extension, or "" when it cannot be told.
func (s *SourceSpec) SourceType() string {
	if s.Type != "" {
		t := strings.ToLower(s.Type)
		if t == "postgresql" {
			return SourcePostgres
		}
		return t
	}
	return TypeFromURI(s.URI)
}

// TypeFromURI infers a source type from a URI's scheme or file extension.
func TypeFromURI(uri string) string {
	lower := strings.ToLower(uri)
	switch {
	case strings.HasPrefix(lower, "postgres://"), strings.HasPrefix(lower, "postgresql://"):
		return SourcePostgres
	case strings.HasPrefix(lower, "mysql://"), strings.HasPrefix(lower, "mariadb://"):
		return SourceMySQL
	}
	path := lower
	if i := strings.IndexAny(path, "?#"); i >= 0 && strings.Contains(path, "://") {
		path = path[:i]
	}
	switch strings.TrimSuffix(filepath.Ext(strings.TrimSuffix(path, ".gz")), "") {
	case ".csv", ".tsv", ".txt":
		return SourceCSV
	case ".parquet", ".pq":
		return SourceParquet
	}
	if strings.HasSuffix(path, ".csv.gz") {
		return SourceCSV
	}
	return ""
}

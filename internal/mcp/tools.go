package mcp

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/kalla-recon/kalla/internal/kalla"
)

// Paging of get_results.
const (
	defaultResultRows = 50
	maxResultRows     = 1000
	// maxWait bounds wait_seconds: a client that wants longer calls
	// get_run again.
	maxWait = 3600
)

// Result tables get_results pages through.
const (
	tableMatched        = "matched"
	tableUnmatchedLeft  = "unmatched_left"
	tableUnmatchedRight = "unmatched_right"
	tableBreaks         = "breaks"
)

// FilterArg is one filter condition as tools take it: {column, op, value}.
type FilterArg struct {
	Column string `json:"column" jsonschema:"the source column"`
	Op     string `json:"op" jsonschema:"eq, neq, gt, gte, lt, lte, between, in, like, is_null or is_not_null"`
	Value  any    `json:"value,omitempty" jsonschema:"a string or number; an array of two for between, of several for in; none for is_null and is_not_null"`
}

// RunFiltersArg overrides a recipe's filters per side for one run.
type RunFiltersArg struct {
	Left  []FilterArg `json:"left,omitempty" jsonschema:"filters of the left side"`
	Right []FilterArg `json:"right,omitempty" jsonschema:"filters of the right side"`
}

type noArgs struct{}

type previewArgs struct {
	Source  string      `json:"source,omitempty" jsonschema:"alias of a registered source (see list_sources)"`
	URI     string      `json:"uri,omitempty" jsonschema:"instead of source: a CSV in this server's upload storage (as POST /api/uploads returned it); no other URI is read"`
	Filters []FilterArg `json:"filters,omitempty" jsonschema:"conditions the rows must meet"`
	Limit   *int        `json:"limit,omitempty" jsonschema:"rows to return, 0 to 1000 (default 200; 0 counts only)"`
}

// PairArg is one confirmed example pair.
type PairArg struct {
	Left  string `json:"left" jsonschema:"the left record's key"`
	Right string `json:"right" jsonschema:"the right record's key"`
}

type suggestArgs struct {
	Left     string    `json:"left" jsonschema:"alias of the registered left source"`
	Right    string    `json:"right" jsonschema:"alias of the registered right source"`
	LeftKey  string    `json:"left_key,omitempty" jsonschema:"left key column; detected when omitted"`
	RightKey string    `json:"right_key,omitempty" jsonschema:"right key column; detected when omitted"`
	Pairs    []PairArg `json:"pairs,omitempty" jsonschema:"confirmed example pairs: a left key in several pairs shows a split (1:N), a right key in several a batch (N:1)"`
}

type recipeArgs struct {
	RecipeID string         `json:"recipe_id,omitempty" jsonschema:"id of a stored recipe"`
	Recipe   map[string]any `json:"recipe,omitempty" jsonschema:"instead of recipe_id: a recipe in Kalla's JSON format, such as suggest_recipe returns"`
}

type startRunArgs struct {
	RecipeID    string         `json:"recipe_id,omitempty" jsonschema:"id of a stored recipe"`
	Recipe      map[string]any `json:"recipe,omitempty" jsonschema:"instead of recipe_id: a recipe in Kalla's JSON format, such as suggest_recipe returns"`
	Filters     *RunFiltersArg `json:"filters,omitempty" jsonschema:"per-side filters replacing the recipe's for this run"`
	Engine      string         `json:"engine,omitempty" jsonschema:"duckdb or spark (only when the server has a Spark Connect endpoint); default: the recipe's engine, else duckdb"`
	WaitSeconds int            `json:"wait_seconds,omitempty" jsonschema:"wait up to this many seconds (at most 3600) for the run to finish, reporting progress; 0 returns at once"`
}

type getRunArgs struct {
	RunID       string `json:"run_id" jsonschema:"the run's id, as start_run returned it"`
	WaitSeconds int    `json:"wait_seconds,omitempty" jsonschema:"wait up to this many seconds (at most 3600) for the run to finish, reporting progress; 0 returns at once"`
}

type resultsArgs struct {
	RunID  string `json:"run_id" jsonschema:"a completed run's id"`
	Table  string `json:"table" jsonschema:"matched, unmatched_left, unmatched_right or breaks"`
	Offset int    `json:"offset,omitempty" jsonschema:"records to skip"`
	Limit  int    `json:"limit,omitempty" jsonschema:"records per page, 1 to 1000 (default 50)"`
	Query  string `json:"q,omitempty" jsonschema:"only records where some value contains this text (ignoring case); not for breaks"`
}

type explainArgs struct {
	RunID string `json:"run_id" jsonschema:"a completed run's id"`
	Side  string `json:"side" jsonschema:"left or right"`
	Key   string `json:"key" jsonschema:"the record's primary key value (several key columns: their values joined by |)"`
}

// resultsOut is one page of a run's results, records as objects.
type resultsOut struct {
	RunID      string               `json:"run_id"`
	Table      string               `json:"table"`
	Columns    []string             `json:"columns"`
	Records    []map[string]*string `json:"records"`
	TotalRows  int64                `json:"total_rows"`
	Offset     int                  `json:"offset"`
	Limit      int                  `json:"limit"`
	NextOffset *int                 `json:"next_offset,omitempty"`
	// BreakColumns summarises the break report (table breaks only).
	BreakColumns []breakColumnOut `json:"break_columns,omitempty"`
}

type breakColumnOut struct {
	LeftColumn      string   `json:"left_column"`
	RightColumn     string   `json:"right_column"`
	Compared        int64    `json:"compared"`
	Differing       int64    `json:"differing"`
	MaxDifference   *float64 `json:"max_difference,omitempty"`
	TotalDifference *float64 `json:"total_difference,omitempty"`
}

// explainOut says why one record did or did not match.
type explainOut struct {
	RunID  string `json:"run_id"`
	Side   string `json:"side"`
	Key    string `json:"key"`
	Status string `json:"status" jsonschema:"matched or unmatched"`
	// Reason is the engine's reason (rules recipes), or what a match_sql
	// recipe's outcome means.
	Reason string `json:"reason"`
	// ClosestCandidate is the other side's record that came nearest (its
	// key), when the engine found one.
	ClosestCandidate string             `json:"closest_candidate,omitempty"`
	Record           map[string]*string `json:"record"`
	// CandidateRecords are the closest candidate's record(s) on the other
	// side, as the run's outputs hold them, or the pair(s) the record
	// matched.
	CandidateRecords []map[string]*string `json:"candidate_records,omitempty"`
	CandidateTable   string               `json:"candidate_table,omitempty"`
}

// addTools registers every tool.
func (s *service) addTools(srv *sdk.Server) {
	sdk.AddTool(srv, &sdk.Tool{Name: "list_sources", Description: "List the registered sources: alias, type, URI (credentials masked) and status."},
		tool(s, "list_sources", func(ctx context.Context, id http.Header, _ *sdk.CallToolRequest, _ noArgs) (map[string]any, error) {
			var out map[string]any
			return out, s.call(ctx, id, "GET", "/api/sources", nil, nil, &out)
		}))
	sdk.AddTool(srv, &sdk.Tool{Name: "preview_source", Description: "Show a source's columns, its first rows under optional filters, and how many rows match. Give a registered source's alias, or the URI of a CSV in this server's upload storage."},
		tool(s, "preview_source", s.previewSource))
	sdk.AddTool(srv, &sdk.Tool{Name: "suggest_recipe", Description: "Propose a reconciliation recipe for two registered sources, learned from their data and optional confirmed example pairs: keys, column pairings with evidence, rules from strict to loose (tried on the data). Masked URIs in the recipe stand for the real ones when the recipe is sent back."},
		tool(s, "suggest_recipe", s.suggestRecipe))
	sdk.AddTool(srv, &sdk.Tool{Name: "check_recipe", Description: "Check a recipe (stored by id, or given inline) against its real sources without running it: ok, or the problems; the columns each side has."},
		tool(s, "check_recipe", s.checkRecipe))
	sdk.AddTool(srv, &sdk.Tool{Name: "start_run", Description: "Queue a reconciliation run of a stored recipe (recipe_id) or an inline recipe, optionally with per-side filters and an engine (duckdb, or spark when the server has one). With wait_seconds, wait for it to finish, reporting progress."},
		tool(s, "start_run", s.startRun))
	sdk.AddTool(srv, &sdk.Tool{Name: "get_run", Description: "A run's status, stage and progress; once completed its counts (matched, unmatched per side, match rates), warnings and files. With wait_seconds, wait for it to finish, reporting progress."},
		tool(s, "get_run", s.getRun))
	sdk.AddTool(srv, &sdk.Tool{Name: "get_results", Description: "Page through a completed run's results: matched pairs, unmatched_left or unmatched_right records (with _reason and _closest_candidate for rules recipes), or breaks (matched pairs whose compared values differ)."},
		tool(s, "get_results", s.getResults))
	sdk.AddTool(srv, &sdk.Tool{Name: "explain_record", Description: "Why one record of a completed run did not match (or what it matched): the engine's reason, its closest candidate on the other side and that candidate's record."},
		tool(s, "explain_record", s.explainRecord))
	if s.llm != nil {
		s.addLLMTools(srv)
	}
}

// toolFunc is a tool's handler given the caller's identity.
type toolFunc[In, Out any] func(ctx context.Context, id http.Header, req *sdk.CallToolRequest, in In) (Out, error)

// tool adapts f to the SDK: it resolves the caller's identity, logs the
// call, and turns an error into a tool error whose text is the API's code
// and message (the SDK sets isError), never a protocol error.
func tool[In, Out any](s *service, name string, f toolFunc[In, Out]) sdk.ToolHandlerFor[In, Out] {
	return func(ctx context.Context, req *sdk.CallToolRequest, in In) (*sdk.CallToolResult, Out, error) {
		start := time.Now()
		out, err := f(ctx, s.identity(req.Extra), req, in)
		outcome := "ok"
		if err != nil {
			outcome = "error"
			var ae *apiError
			if errors.As(err, &ae) {
				outcome = ae.Code
			} else {
				err = &apiError{Status: http.StatusInternalServerError, Code: "internal", Message: kalla.Redact(err.Error())}
			}
		}
		s.log.Info("mcp tool call", "tool", name, "outcome", outcome, "ms", time.Since(start).Milliseconds())
		return nil, out, err
	}
}

// filtersJSON turns tool filters into the API's filter objects.
func filtersJSON(fs []FilterArg) []map[string]any {
	out := make([]map[string]any, 0, len(fs))
	for _, f := range fs {
		m := map[string]any{"column": f.Column, "op": f.Op}
		if f.Value != nil {
			m["value"] = f.Value
		}
		out = append(out, m)
	}
	return out
}

// previewAlias names an unregistered upload in a preview's answer.
const previewAlias = "upload"

func (s *service) previewSource(ctx context.Context, id http.Header, _ *sdk.CallToolRequest, in previewArgs) (map[string]any, error) {
	in.Source, in.URI = strings.TrimSpace(in.Source), strings.TrimSpace(in.URI)
	body := map[string]any{"conditions": filtersJSON(in.Filters)}
	if in.Limit != nil {
		body["limit"] = *in.Limit
	}
	alias := in.Source
	switch {
	case in.Source != "" && in.URI != "":
		return nil, invalid("give either source (a registered alias) or uri (an uploaded CSV), not both")
	case in.Source == "" && in.URI == "":
		return nil, invalid("source is required: a registered source's alias (list_sources), or uri for an uploaded CSV")
	case in.URI != "":
		alias = previewAlias
		body["csv_uri"] = in.URI
	}
	var out map[string]any
	err := s.call(ctx, id, "POST", "/api/sources/"+url.PathEscape(alias)+"/load-scoped", nil, body, &out)
	return out, err
}

func (s *service) suggestRecipe(ctx context.Context, id http.Header, _ *sdk.CallToolRequest, in suggestArgs) (map[string]any, error) {
	pairs := make([][]string, 0, len(in.Pairs))
	for _, p := range in.Pairs {
		pairs = append(pairs, []string{p.Left, p.Right})
	}
	body := map[string]any{"left": in.Left, "right": in.Right, "left_key": in.LeftKey, "right_key": in.RightKey, "pairs": pairs}
	var out map[string]any
	err := s.call(ctx, id, "POST", "/api/recipes/suggest", nil, body, &out)
	return out, err
}

// recipeBody returns the recipe a tool names: the stored one (as the API
// shows it, URIs masked, which the API restores) or the inline one.
func (s *service) recipeBody(ctx context.Context, id http.Header, recipeID string, recipe map[string]any) (any, error) {
	switch {
	case recipeID != "" && recipe != nil:
		return nil, invalid("give either recipe_id or recipe, not both")
	case recipeID != "":
		var stored struct {
			Recipe json.RawMessage `json:"recipe"`
		}
		if err := s.call(ctx, id, "GET", "/api/recipes/"+url.PathEscape(recipeID), nil, nil, &stored); err != nil {
			return nil, err
		}
		return stored.Recipe, nil
	case recipe != nil:
		return recipe, nil
	}
	return nil, invalid("give recipe_id (a stored recipe) or recipe (an inline recipe)")
}

func (s *service) checkRecipe(ctx context.Context, id http.Header, _ *sdk.CallToolRequest, in recipeArgs) (map[string]any, error) {
	body, err := s.recipeBody(ctx, id, in.RecipeID, in.Recipe)
	if err != nil {
		return nil, err
	}
	var out map[string]any
	return out, s.call(ctx, id, "POST", "/api/recipes/validate", nil, body, &out)
}

func checkWait(w int) error {
	if w < 0 || w > maxWait {
		return invalid("wait_seconds must be between 0 and %d, not %d", maxWait, w)
	}
	return nil
}

func (s *service) startRun(ctx context.Context, id http.Header, req *sdk.CallToolRequest, in startRunArgs) (map[string]any, error) {
	if err := checkWait(in.WaitSeconds); err != nil {
		return nil, err
	}
	body := map[string]any{}
	switch {
	case in.RecipeID != "" && in.Recipe != nil:
		return nil, invalid("give either recipe_id or recipe, not both")
	case in.RecipeID != "":
		body["recipe_id"] = in.RecipeID
	case in.Recipe != nil:
		body["recipe"] = in.Recipe
	default:
		return nil, invalid("give recipe_id (a stored recipe) or recipe (an inline recipe)")
	}
	if in.Filters != nil {
		f := map[string]any{}
		if in.Filters.Left != nil {
			f["left"] = filtersJSON(in.Filters.Left)
		}
		if in.Filters.Right != nil {
			f["right"] = filtersJSON(in.Filters.Right)
		}
		body["filters"] = f
	}
	if in.Engine != "" {
		// The API checks it: an engine the server does not have is
		// refused before anything is queued, naming those it has.
		body["engine"] = in.Engine
	}
	var queued struct {
		RunID string `json:"run_id"`
	}
	if err := s.call(ctx, id, "POST", "/api/runs", nil, body, &queued); err != nil {
		return nil, err
	}
	return s.runState(ctx, id, req, queued.RunID, in.WaitSeconds)
}

func (s *service) getRun(ctx context.Context, id http.Header, req *sdk.CallToolRequest, in getRunArgs) (map[string]any, error) {
	if err := checkWait(in.WaitSeconds); err != nil {
		return nil, err
	}
	if strings.TrimSpace(in.RunID) == "" {
		return nil, invalid("run_id is required")
	}
	return s.runState(ctx, id, req, in.RunID, in.WaitSeconds)
}

// runState returns the run as GET /api/runs/{id} shows it, after following
// its events for up to wait seconds (until it finishes), each one reported
// as MCP progress when the caller asked for progress.
func (s *service) runState(ctx context.Context, id http.Header, req *sdk.CallToolRequest, runID string, wait int) (map[string]any, error) {
	if wait > 0 {
		wctx, cancel := context.WithTimeout(ctx, time.Duration(wait)*time.Second)
		err := s.follow(wctx, id, req, runID)
		cancel()
		if err != nil && ctx.Err() == nil && !errors.Is(err, context.DeadlineExceeded) {
			return nil, err
		}
	}
	var out map[string]any
	if err := s.call(ctx, id, "GET", "/api/runs/"+url.PathEscape(runID), nil, nil, &out); err != nil {
		return nil, err
	}
	return out, nil
}

var resultTables = []string{tableMatched, tableUnmatchedLeft, tableUnmatchedRight, tableBreaks}

func (s *service) getResults(ctx context.Context, id http.Header, _ *sdk.CallToolRequest, in resultsArgs) (*resultsOut, error) {
	if strings.TrimSpace(in.RunID) == "" {
		return nil, invalid("run_id is required")
	}
	if in.Limit == 0 {
		in.Limit = defaultResultRows
	}
	if in.Limit < 1 || in.Limit > maxResultRows {
		return nil, invalid("limit must be between 1 and %d, not %d", maxResultRows, in.Limit)
	}
	if in.Offset < 0 {
		return nil, invalid("offset must be 0 or more, not %d", in.Offset)
	}
	switch in.Table {
	case tableBreaks:
		if in.Query != "" {
			return nil, invalid("q does not apply to breaks")
		}
		return s.breaks(ctx, id, in)
	case tableMatched, tableUnmatchedLeft, tableUnmatchedRight:
	default:
		return nil, invalid("table %q is not one of %s", in.Table, strings.Join(resultTables, ", "))
	}
	return s.page(ctx, id, in.RunID, in.Table, in.Offset, in.Limit, in.Query)
}

// page reads one page of a results table through the API.
func (s *service) page(ctx context.Context, id http.Header, runID, table string, offset, limit int, q string) (*resultsOut, error) {
	query := url.Values{"offset": {strconv.Itoa(offset)}, "limit": {strconv.Itoa(limit)}}
	if q != "" {
		query.Set("q", q)
	}
	var p struct {
		Columns []struct {
			Name string `json:"name"`
		} `json:"columns"`
		Rows      [][]*string `json:"rows"`
		TotalRows int64       `json:"total_rows"`
	}
	if err := s.call(ctx, id, "GET", "/api/runs/"+url.PathEscape(runID)+"/results/"+table, query, nil, &p); err != nil {
		return nil, err
	}
	out := &resultsOut{RunID: runID, Table: table, Columns: []string{}, Records: []map[string]*string{}, TotalRows: p.TotalRows, Offset: offset, Limit: limit}
	for _, c := range p.Columns {
		out.Columns = append(out.Columns, c.Name)
	}
	for _, row := range p.Rows {
		rec := make(map[string]*string, len(row))
		for i, v := range row {
			if i < len(out.Columns) {
				rec[out.Columns[i]] = v
			}
		}
		out.Records = append(out.Records, rec)
	}
	if next := offset + len(p.Rows); int64(next) < p.TotalRows && len(p.Rows) > 0 {
		out.NextOffset = &next
	}
	return out, nil
}

// summary reads a completed run's summary.json through the API.
func (s *service) summary(ctx context.Context, id http.Header, runID string) (*kalla.Summary, error) {
	var sum kalla.Summary
	if err := s.call(ctx, id, "GET", "/api/runs/"+url.PathEscape(runID)+"/files/summary.json", nil, nil, &sum); err != nil {
		return nil, err
	}
	return &sum, nil
}

// breaks pages through a run's breaks table (one row per differing matched
// pair and compared column, as the run wrote it) through the API, with the
// per-column totals of the run's summary alongside.
func (s *service) breaks(ctx context.Context, id http.Header, in resultsArgs) (*resultsOut, error) {
	sum, err := s.summary(ctx, id, in.RunID)
	if err != nil {
		return nil, err
	}
	if sum.Rules == nil {
		return nil, &apiError{Status: http.StatusConflict, Code: string(kalla.ECONFLICT), Message: "run " + in.RunID + " used a match_sql recipe: break reports come with rules recipes"}
	}
	out, err := s.page(ctx, id, in.RunID, tableBreaks, in.Offset, in.Limit, "")
	if err != nil {
		return nil, err
	}
	out.BreakColumns = []breakColumnOut{}
	for _, b := range sum.Rules.Breaks {
		out.BreakColumns = append(out.BreakColumns, breakColumnOut{LeftColumn: b.LeftColumn, RightColumn: b.RightColumn, Compared: b.Compared, Differing: b.Differing, MaxDifference: b.MaxDifference, TotalDifference: b.TotalDifference})
	}
	return out, nil
}

// runRecipe is the part of GET /api/runs/{id} explain_record reads.
type runRecipe struct {
	Status string       `json:"status"`
	Recipe kalla.Recipe `json:"recipe"`
}

func (s *service) explainRecord(ctx context.Context, id http.Header, _ *sdk.CallToolRequest, in explainArgs) (*explainOut, error) {
	if strings.TrimSpace(in.RunID) == "" {
		return nil, invalid("run_id is required")
	}
	if in.Side != "left" && in.Side != "right" {
		return nil, invalid("side must be left or right, not %q", in.Side)
	}
	if in.Key == "" {
		return nil, invalid("key is required: the record's primary key value")
	}
	var run runRecipe
	if err := s.call(ctx, id, "GET", "/api/runs/"+url.PathEscape(in.RunID), nil, nil, &run); err != nil {
		return nil, err
	}
	own, other, otherSide := run.Recipe.Sources.Left, run.Recipe.Sources.Right, "right"
	if in.Side == "right" {
		own, other, otherSide = other, own, "left"
	}
	if len(own.PrimaryKey) == 0 {
		return nil, invalid("the %s source %q of run %s has no primary key, so its records have no key to name", in.Side, own.Alias, in.RunID)
	}
	out := &explainOut{RunID: in.RunID, Side: in.Side, Key: in.Key}
	rec, err := s.findRecord(ctx, id, in.RunID, "unmatched_"+in.Side, own.PrimaryKey, "", in.Key)
	if err != nil {
		return nil, err
	}
	if rec != nil {
		out.Status, out.Record = "unmatched", rec
		out.Reason = deref(rec["_reason"])
		out.ClosestCandidate = deref(rec["_closest_candidate"])
		if out.Reason == "" {
			out.Reason = "the recipe's match_sql paired no " + otherSide + " record with it (match_sql recipes give no per-record reason)"
		}
		if out.ClosestCandidate != "" {
			// The candidate's record, unmatched itself or taken by another.
			for _, table := range []string{"unmatched_" + otherSide, tableMatched} {
				prefix := ""
				if table == tableMatched {
					prefix = "_" + otherSide + "_"
				}
				cands, err := s.findRecords(ctx, id, in.RunID, table, other.PrimaryKey, prefix, out.ClosestCandidate)
				if err != nil {
					return nil, err
				}
				if len(cands) > 0 {
					out.CandidateRecords, out.CandidateTable = cands, table
					break
				}
			}
		}
		return out, nil
	}
	pairs, err := s.findRecords(ctx, id, in.RunID, tableMatched, own.PrimaryKey, "_"+in.Side+"_", in.Key)
	if err != nil {
		return nil, err
	}
	if len(pairs) == 0 {
		return nil, &apiError{Status: http.StatusNotFound, Code: string(kalla.ENOTFOUND), Message: "run " + in.RunID + " has no " + in.Side + " record with key " + strconv.Quote(in.Key) + " (key columns: " + strings.Join(own.PrimaryKey, ", ") + ")"}
	}
	out.Status, out.Record = "matched", pairs[0]
	out.Reason = "it matched"
	if r := deref(pairs[0]["_rule"]); r != "" {
		out.Reason = "it matched under rule " + strconv.Quote(r)
	}
	out.CandidateRecords, out.CandidateTable = pairs, tableMatched
	return out, nil
}

func deref(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

// findRecord returns the one record of table whose key is key, or nil.
func (s *service) findRecord(ctx context.Context, id http.Header, runID, table string, pk []string, prefix, key string) (map[string]*string, error) {
	recs, err := s.findRecords(ctx, id, runID, table, pk, prefix, key)
	if err != nil || len(recs) == 0 {
		return nil, err
	}
	return recs[0], nil
}

// maxFindRecords bounds the records findRecords returns (a key shared by
// many matched pairs).
const maxFindRecords = 20

// findRecords returns the records of table whose key columns (named with
// prefix, as the matched table names them: _left_<column>) join to key with "|": the API's
// search narrows the table to rows containing the key, and the key columns
// are compared exactly.
func (s *service) findRecords(ctx context.Context, id http.Header, runID, table string, pk []string, prefix, key string) ([]map[string]*string, error) {
	var found []map[string]*string
	q := key
	if parts := strings.Split(key, "|"); len(pk) > 1 && len(parts) == len(pk) {
		q = parts[0] // a row contains each part, not the joined text
	}
	for offset := 0; ; {
		p, err := s.page(ctx, id, runID, table, offset, maxResultRows, q)
		if err != nil {
			return nil, err
		}
		for _, rec := range p.Records {
			if keyOf(rec, pk, prefix) == key {
				found = append(found, rec)
				if len(found) == maxFindRecords {
					return found, nil
				}
			}
		}
		if p.NextOffset == nil {
			return found, nil
		}
		offset = *p.NextOffset
	}
}

// keyOf is a record's key: its key columns' values joined by "|", "" when
// a key column is missing or NULL. A key column is looked up as prefix+name,
// then by name alone, ignoring case.
func keyOf(rec map[string]*string, pk []string, prefix string) string {
	parts := make([]string, len(pk))
	for i, c := range pk {
		v := lookupCol(rec, prefix+c)
		if v == nil && prefix != "" {
			v = lookupCol(rec, c)
		}
		if v == nil {
			return ""
		}
		parts[i] = *v
	}
	return strings.Join(parts, "|")
}

var sep = regexp.MustCompile(`[^a-z0-9]+`)

// lookupCol finds a column by name, ignoring case and the separator
// between an alias and a column (alias.col, alias_col).
func lookupCol(rec map[string]*string, name string) *string {
	if v, ok := rec[name]; ok {
		return v
	}
	want := sep.ReplaceAllString(strings.ToLower(name), "_")
	for k, v := range rec {
		if sep.ReplaceAllString(strings.ToLower(k), "_") == want {
			return v
		}
	}
	return nil
}

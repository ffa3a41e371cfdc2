package mcp_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/kalla-recon/kalla/internal/auth"
	"github.com/kalla-recon/kalla/internal/kalla"
	kallamcp "github.com/kalla-recon/kalla/internal/mcp"
	"github.com/kalla-recon/kalla/internal/server"
	"github.com/kalla-recon/kalla/internal/testenv"
	"github.com/kalla-recon/kalla/internal/testenv/testserver"
)

const testToken = "mcp-test-token"

// scenario is the golden folder whose data and expected outputs the tests
// use: invoices against payments, with one rule (reference, amount and
// currency equal). Its expected outputs were checked by hand.
const scenario = "../engine/testdata/scenarios/rules_exact_1to1"

// env is a real Kalla server (SQLite store, temporary data folder) with
// the scenario's two CSVs registered as sources invoices and payments.
type env struct {
	t        *testing.T
	m        *server.Main
	cfg      server.Config
	fixtures string
}

func newEnv(t *testing.T, edit func(*server.Config)) *env {
	t.Helper()
	fixtures := t.TempDir()
	for _, f := range []string{"left.csv", "right.csv"} {
		b, err := os.ReadFile(filepath.Join(scenario, f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(fixtures, f), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cfg := testserver.Config(t, slog.LevelWarn, fixtures)
	cfg.APIToken = testToken
	if edit != nil {
		edit(&cfg)
	}
	e := &env{t: t, m: testserver.Start(t, cfg), cfg: cfg, fixtures: fixtures}
	e.api("POST", "/api/sources", map[string]string{"alias": "invoices", "uri": filepath.Join(fixtures, "left.csv")}, http.StatusOK)
	e.api("POST", "/api/sources", map[string]string{"alias": "payments", "uri": filepath.Join(fixtures, "right.csv")}, http.StatusOK)
	return e
}

// api calls the server's HTTP API with the token and checks the status.
func (e *env) api(method, path string, body any, want int) []byte {
	e.t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, e.m.URL()+path, rd)
	req.Header.Set("Authorization", "Bearer "+testToken)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		e.t.Fatalf("%s %s: %d, want %d: %s", method, path, resp.StatusCode, want, b)
	}
	return b
}

// progress collects the progress notifications a client receives.
type progress struct {
	mu  sync.Mutex
	got []*sdk.ProgressNotificationParams
	ch  chan struct{}
}

func newProgress() *progress { return &progress{ch: make(chan struct{}, 1000)} }

func (p *progress) handle(_ context.Context, req *sdk.ProgressNotificationClientRequest) {
	p.mu.Lock()
	p.got = append(p.got, req.Params)
	p.mu.Unlock()
	p.ch <- struct{}{}
}

// waitFor waits until a notification satisfies ok; notifications may be
// delivered after the tool's answer.
func (p *progress) waitFor(t *testing.T, ok func(*sdk.ProgressNotificationParams) bool) {
	t.Helper()
	deadline := time.After(60 * time.Second)
	for {
		p.mu.Lock()
		for _, n := range p.got {
			if ok(n) {
				p.mu.Unlock()
				return
			}
		}
		p.mu.Unlock()
		select {
		case <-p.ch:
		case <-deadline:
			t.Fatalf("no such progress notification among %d received", len(p.got))
		}
	}
}

// client is an MCP client session over one transport.
type client struct {
	t    *testing.T
	s    *sdk.ClientSession
	prog *progress
}

// transports runs f over the in-memory transport (server built from the
// API handler with the token, as `kalla mcp` does) and over streamable
// HTTP against the server's /mcp with the token.
func (e *env) transports(t *testing.T, f func(t *testing.T, c *client)) {
	t.Run("inmemory", func(t *testing.T) {
		f(t, e.inMemory(t, kallamcp.Config{API: e.m.API, Token: testToken, LLM: e.cfg.LLM}))
	})
	t.Run("http", func(t *testing.T) {
		c, err := e.httpClient(t, testToken)
		if err != nil {
			t.Fatalf("connect over HTTP: %v", err)
		}
		f(t, c)
	})
}

func (e *env) inMemory(t *testing.T, cfg kallamcp.Config) *client {
	t.Helper()
	ctx := context.Background()
	st, ct := sdk.NewInMemoryTransports()
	ss, err := kallamcp.NewServer(cfg).Connect(ctx, st, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ss.Close() })
	return connect(t, ct)
}

// bearer adds a token to every request.
type bearer struct {
	token string
	extra http.Header
}

func (b bearer) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	if b.token != "" {
		r.Header.Set("Authorization", "Bearer "+b.token)
	}
	for k, v := range b.extra {
		r.Header[k] = v
	}
	return http.DefaultTransport.RoundTrip(r)
}

func (e *env) httpClient(t *testing.T, token string) (*client, error) {
	t.Helper()
	tr := &sdk.StreamableClientTransport{Endpoint: e.m.URL() + "/mcp", HTTPClient: &http.Client{Transport: bearer{token: token}}, MaxRetries: -1}
	return tryConnect(t, tr)
}

func connect(t *testing.T, tr sdk.Transport) *client {
	t.Helper()
	c, err := tryConnect(t, tr)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	return c
}

func tryConnect(t *testing.T, tr sdk.Transport) (*client, error) {
	p := newProgress()
	cl := sdk.NewClient(&sdk.Implementation{Name: "kalla-test", Version: "1"}, &sdk.ClientOptions{ProgressNotificationHandler: p.handle})
	s, err := cl.Connect(context.Background(), tr, nil)
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() { s.Close() })
	return &client{t: t, s: s, prog: p}, nil
}

// call calls a tool and returns its result.
func (c *client) call(name string, args any, token any) *sdk.CallToolResult {
	c.t.Helper()
	p := &sdk.CallToolParams{Name: name, Arguments: args}
	if token != nil {
		p.SetProgressToken(token)
	}
	res, err := c.s.CallTool(context.Background(), p)
	if err != nil {
		c.t.Fatalf("%s: protocol error: %v", name, err)
	}
	return res
}

// ok calls a tool that must succeed and decodes its structured answer.
func (c *client) ok(name string, args any, out any) {
	c.t.Helper()
	c.okProgress(name, args, nil, out)
}

func (c *client) okProgress(name string, args, token, out any) {
	c.t.Helper()
	res := c.call(name, args, token)
	if res.IsError {
		c.t.Fatalf("%s: tool error: %s", name, text(res))
	}
	if out != nil {
		b, _ := json.Marshal(res.StructuredContent)
		if err := json.Unmarshal(b, out); err != nil {
			c.t.Fatalf("%s: decode %s: %v", name, b, err)
		}
	}
}

// fails calls a tool that must fail with a tool error containing want.
func (c *client) fails(name string, args any, want string) {
	c.t.Helper()
	res := c.call(name, args, nil)
	if !res.IsError {
		b, _ := json.Marshal(res.StructuredContent)
		c.t.Fatalf("%s %v: succeeded, want an error containing %q: %s", name, args, want, b)
	}
	if got := text(res); !strings.Contains(got, want) {
		c.t.Errorf("%s %v: error %q does not contain %q", name, args, got, want)
	}
}

func text(res *sdk.CallToolResult) string {
	var parts []string
	for _, c := range res.Content {
		if tc, ok := c.(*sdk.TextContent); ok {
			parts = append(parts, tc.Text)
		}
	}
	return strings.Join(parts, "\n")
}

// readCSV reads a CSV as a header and records keyed by column.
func readCSV(t *testing.T, path string) []map[string]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	var out []map[string]string
	for _, r := range rows[1:] {
		m := map[string]string{}
		for i, c := range rows[0] {
			m[c] = r[i]
		}
		out = append(out, m)
	}
	return out
}

var baseTools = []string{"check_recipe", "explain_record", "get_results", "get_run", "list_sources", "preview_source", "start_run", "suggest_recipe"}

func toolNames(t *testing.T, c *client) []string {
	t.Helper()
	res, err := c.s.ListTools(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, tl := range res.Tools {
		names = append(names, tl.Name)
		b, _ := json.Marshal(tl.InputSchema)
		if !strings.Contains(string(b), `"type":"object"`) {
			t.Errorf("tool %s: input schema is not an object: %s", tl.Name, b)
		}
		if tl.Description == "" {
			t.Errorf("tool %s has no description", tl.Name)
		}
	}
	sort.Strings(names)
	return names
}

func TestToolsListed(t *testing.T) {
	e := newEnv(t, nil)
	e.transports(t, func(t *testing.T, c *client) {
		if got := toolNames(t, c); !slices.Equal(got, baseTools) {
			t.Errorf("tools %v, want %v (no language model configured)", got, baseTools)
		}
	})
}

// runView is the part of a run the tests read.
type runView struct {
	RunID               string `json:"run_id"`
	Status              string `json:"status"`
	Error               string `json:"error"`
	LeftCount           int64  `json:"left_count"`
	RightCount          int64  `json:"right_count"`
	MatchedCount        int64  `json:"matched_count"`
	UnmatchedLeftCount  int64  `json:"unmatched_left_count"`
	UnmatchedRightCount int64  `json:"unmatched_right_count"`
}

type resultsPage struct {
	Columns    []string             `json:"columns"`
	Records    []map[string]*string `json:"records"`
	TotalRows  int64                `json:"total_rows"`
	NextOffset *int                 `json:"next_offset"`
}

// allRecords pages through a results table two records at a time.
func (c *client) allRecords(runID, table string) []map[string]*string {
	c.t.Helper()
	var all []map[string]*string
	offset := 0
	for {
		var p resultsPage
		c.ok("get_results", map[string]any{"run_id": runID, "table": table, "offset": offset, "limit": 2}, &p)
		all = append(all, p.Records...)
		if p.NextOffset == nil {
			if int64(len(all)) != p.TotalRows {
				c.t.Fatalf("%s: paged %d records, total_rows %d", table, len(all), p.TotalRows)
			}
			return all
		}
		offset = *p.NextOffset
	}
}

// goldenRecipe is the scenario's recipe with its files in the fixtures.
func (e *env) goldenRecipe(t *testing.T) map[string]any {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(scenario, "recipe.json"))
	if err != nil {
		t.Fatal(err)
	}
	var r map[string]any
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatal(err)
	}
	srcs := r["sources"].(map[string]any)
	srcs["left"].(map[string]any)["uri"] = filepath.Join(e.fixtures, "left.csv")
	srcs["right"].(map[string]any)["uri"] = filepath.Join(e.fixtures, "right.csv")
	return r
}

// keysOf returns the values of column in records, sorted.
func keysOf(t *testing.T, recs []map[string]*string, column string) []string {
	t.Helper()
	var out []string
	for _, r := range recs {
		v, ok := r[column]
		if !ok || v == nil {
			t.Fatalf("record without %s: %v", column, r)
		}
		out = append(out, *v)
	}
	sort.Strings(out)
	return out
}

func csvKeys(recs []map[string]string, column string) []string {
	var out []string
	for _, r := range recs {
		out = append(out, r[column])
	}
	sort.Strings(out)
	return out
}

// TestGoldenRun runs the scenario's own recipe through start_run (waiting,
// with progress) and checks every table get_results pages through, and
// explain_record, against the scenario's expected outputs.
func TestGoldenRun(t *testing.T) {
	e := newEnv(t, nil)
	want := map[string][]map[string]string{}
	for _, tbl := range []string{"matched", "unmatched_left", "unmatched_right"} {
		want[tbl] = readCSV(t, filepath.Join(scenario, "expected", tbl+".csv"))
	}
	e.transports(t, func(t *testing.T, c *client) {
		var run runView
		c.okProgress("start_run", map[string]any{"recipe": e.goldenRecipe(t), "wait_seconds": 600}, "golden", &run)
		if run.Status != "completed" {
			t.Fatalf("run %s: %s %s", run.RunID, run.Status, run.Error)
		}
		c.prog.waitFor(t, func(n *sdk.ProgressNotificationParams) bool { return n.ProgressToken == "golden" && n.Progress == 1 })
		c.prog.mu.Lock()
		last := -1.0
		for _, n := range c.prog.got {
			if n.Progress <= last {
				t.Errorf("progress went from %v to %v", last, n.Progress)
			}
			last = n.Progress
		}
		c.prog.mu.Unlock()

		if run.LeftCount != 7 || run.RightCount != 6 || run.MatchedCount != int64(len(want["matched"])) ||
			run.UnmatchedLeftCount != int64(len(want["unmatched_left"])) || run.UnmatchedRightCount != int64(len(want["unmatched_right"])) {
			t.Errorf("counts %+v, want matched %d, unmatched %d/%d", run, len(want["matched"]), len(want["unmatched_left"]), len(want["unmatched_right"]))
		}
		matched := c.allRecords(run.RunID, "matched")
		if got, w := keysOf(t, matched, "_left_invoice_id"), csvKeys(want["matched"], "_left_invoice_id"); !slices.Equal(got, w) {
			t.Errorf("matched left keys %v, want %v", got, w)
		}
		for _, side := range []struct{ table, key string }{{"unmatched_left", "invoice_id"}, {"unmatched_right", "payment_id"}} {
			got := c.allRecords(run.RunID, side.table)
			if k, w := keysOf(t, got, side.key), csvKeys(want[side.table], side.key); !slices.Equal(k, w) {
				t.Errorf("%s keys %v, want %v", side.table, k, w)
			}
			for _, w := range want[side.table] {
				for _, g := range got {
					if *g[side.key] == w[side.key] && (g["_reason"] == nil || *g["_reason"] != w["_reason"]) {
						t.Errorf("%s %s: reason %v, want %q", side.table, w[side.key], g["_reason"], w["_reason"])
					}
				}
			}
		}

		// explain_record: an unmatched invoice, with its candidate's record.
		var ex struct {
			Status           string               `json:"status"`
			Reason           string               `json:"reason"`
			ClosestCandidate string               `json:"closest_candidate"`
			CandidateRecords []map[string]*string `json:"candidate_records"`
			CandidateTable   string               `json:"candidate_table"`
		}
		c.ok("explain_record", map[string]any{"run_id": run.RunID, "side": "left", "key": "INV-003"}, &ex)
		if ex.Status != "unmatched" || ex.Reason != "reference matches PAY-103 but amount differs (75.25 vs 75.20)" || ex.ClosestCandidate != "PAY-103" {
			t.Errorf("explain INV-003: %+v", ex)
		}
		if len(ex.CandidateRecords) != 1 || ex.CandidateTable != "unmatched_right" || *ex.CandidateRecords[0]["amount"] != "75.20" {
			t.Errorf("explain INV-003 candidate: %s %v", ex.CandidateTable, ex.CandidateRecords)
		}
		ex.CandidateRecords = nil
		c.ok("explain_record", map[string]any{"run_id": run.RunID, "side": "right", "key": "PAY-101"}, &ex)
		if ex.Status != "matched" || len(ex.CandidateRecords) != 1 || *ex.CandidateRecords[0]["_left_invoice_id"] != "INV-001" {
			t.Errorf("explain PAY-101: %+v", ex)
		}
		c.fails("explain_record", map[string]any{"run_id": run.RunID, "side": "left", "key": "INV-404"}, "not_found: run "+run.RunID+" has no left record with key \"INV-404\"")

		// The break report: the golden rule compares nothing beyond its
		// equalities, so no matched pair differs.
		var br struct {
			TotalRows    int64            `json:"total_rows"`
			BreakColumns []map[string]any `json:"break_columns"`
		}
		c.ok("get_results", map[string]any{"run_id": run.RunID, "table": "breaks"}, &br)
		var sum struct {
			Rules struct {
				Breaks []struct {
					Differing int64 `json:"differing"`
				} `json:"breaks"`
			} `json:"rules"`
		}
		if err := json.Unmarshal(e.api("GET", "/api/runs/"+run.RunID+"/files/summary.json", nil, http.StatusOK), &sum); err != nil {
			t.Fatal(err)
		}
		var n int64
		for _, b := range sum.Rules.Breaks {
			n += b.Differing
		}
		if br.TotalRows != n || len(br.BreakColumns) != len(sum.Rules.Breaks) {
			t.Errorf("breaks: %d records over %d columns, the summary has %d over %d", br.TotalRows, len(br.BreakColumns), n, len(sum.Rules.Breaks))
		}

		// get_run and the run summary resource agree.
		var again runView
		c.ok("get_run", map[string]any{"run_id": run.RunID}, &again)
		if again != run {
			t.Errorf("get_run %+v, start_run answered %+v", again, run)
		}
		rr, err := c.s.ReadResource(context.Background(), &sdk.ReadResourceParams{URI: "kalla://runs/" + run.RunID + "/summary"})
		if err != nil {
			t.Fatal(err)
		}
		var res runView
		if err := json.Unmarshal([]byte(rr.Contents[0].Text), &res); err != nil || res != run {
			t.Errorf("run summary resource %+v (%v), want %+v", res, err, run)
		}
	})
}

// TestSuggestToResults goes from a suggestion to results: suggest_recipe
// with two confirmed pairs, check_recipe, start_run, get_results. Whatever
// rules the suggestion holds, the confirmed pairs must match, every record
// must be in exactly one output, and every matched pair must meet each of
// the suggested rule's eq conditions on the source rows (checked here on
// the CSVs, not by Kalla).
func TestSuggestToResults(t *testing.T) {
	e := newEnv(t, nil)
	left := readCSV(t, filepath.Join(e.fixtures, "left.csv"))
	right := readCSV(t, filepath.Join(e.fixtures, "right.csv"))
	byKey := func(rows []map[string]string, col string) map[string]map[string]string {
		m := map[string]map[string]string{}
		for _, r := range rows {
			m[r[col]] = r
		}
		return m
	}
	lk, rk := byKey(left, "invoice_id"), byKey(right, "payment_id")
	e.transports(t, func(t *testing.T, c *client) {
		var sug struct {
			Recipe   map[string]any   `json:"recipe"`
			Pairings []map[string]any `json:"pairings"`
			Notes    []string         `json:"notes"`
		}
		c.ok("suggest_recipe", map[string]any{"left": "invoices", "right": "payments",
			"pairs": []map[string]string{{"left": "INV-001", "right": "PAY-101"}, {"left": "INV-002", "right": "PAY-102"}}}, &sug)
		if sug.Recipe == nil || len(sug.Pairings) == 0 {
			t.Fatalf("suggestion without a recipe or pairings: %+v", sug)
		}
		var chk struct {
			OK       bool     `json:"ok"`
			Problems []string `json:"problems"`
		}
		c.ok("check_recipe", map[string]any{"recipe": sug.Recipe}, &chk)
		if !chk.OK {
			t.Fatalf("suggested recipe does not check: %v", chk.Problems)
		}
		var run runView
		c.ok("start_run", map[string]any{"recipe": sug.Recipe, "wait_seconds": 600}, &run)
		if run.Status != "completed" {
			t.Fatalf("run: %s %s", run.Status, run.Error)
		}
		matched := c.allRecords(run.RunID, "matched")
		ul := c.allRecords(run.RunID, "unmatched_left")
		ur := c.allRecords(run.RunID, "unmatched_right")
		pairs := map[[2]string]bool{}
		for _, m := range matched {
			pairs[[2]string{*m["_left_invoice_id"], *m["_right_payment_id"]}] = true
		}
		for _, p := range [][2]string{{"INV-001", "PAY-101"}, {"INV-002", "PAY-102"}} {
			if !pairs[p] {
				t.Errorf("confirmed pair %v did not match; matched %v", p, pairs)
			}
		}
		// Each record in exactly one output.
		seenL := map[string]int{}
		for p := range pairs {
			seenL[p[0]]++
		}
		for _, r := range ul {
			seenL[*r["invoice_id"]]++
		}
		for k := range lk {
			if seenL[k] != 1 {
				t.Errorf("invoice %s is in %d outputs", k, seenL[k])
			}
		}
		seenR := map[string]int{}
		for p := range pairs {
			seenR[p[1]]++
		}
		for _, r := range ur {
			seenR[*r["payment_id"]]++
		}
		for k := range rk {
			if seenR[k] != 1 {
				t.Errorf("payment %s is in %d outputs", k, seenR[k])
			}
		}
		// Every pair meets the eq conditions of the rule that matched it.
		rules := map[string][]any{}
		for _, r := range sug.Recipe["rules"].([]any) {
			rm := r.(map[string]any)
			rules[rm["name"].(string)] = rm["conditions"].([]any)
		}
		checked := 0
		for _, m := range matched {
			l, r := lk[*m["_left_invoice_id"]], rk[*m["_right_payment_id"]]
			conds, ok := rules[*m["_rule"]]
			if !ok {
				t.Fatalf("pair matched by unknown rule %s", *m["_rule"])
			}
			for _, cd := range conds {
				cm := cd.(map[string]any)
				if cm["op"] != "eq" || cm["normalize"] != nil || cm["strip_left"] != nil || cm["strip_right"] != nil || cm["truncate"] != nil {
					continue
				}
				if lv, rv := l[cm["left"].(string)], r[cm["right"].(string)]; lv != rv {
					t.Errorf("pair %s/%s under rule %s: %s=%q but %s=%q", l["invoice_id"], r["payment_id"], *m["_rule"], cm["left"], lv, cm["right"], rv)
				}
				checked++
			}
		}
		if checked == 0 {
			t.Errorf("no matched pair was checked against a plain eq condition: rules %v", rules)
		}
		if int64(len(matched)) != run.MatchedCount || int64(len(ul)) != run.UnmatchedLeftCount || int64(len(ur)) != run.UnmatchedRightCount {
			t.Errorf("paged %d/%d/%d records, the run counts %+v", len(matched), len(ul), len(ur), run)
		}
	})
}

func TestPreviewSource(t *testing.T) {
	e := newEnv(t, nil)
	left := readCSV(t, filepath.Join(e.fixtures, "left.csv"))
	wantEUR := 0
	for _, r := range left {
		if r["currency"] == "EUR" {
			wantEUR++
		}
	}
	e.transports(t, func(t *testing.T, c *client) {
		var p struct {
			Columns []struct {
				Name string `json:"name"`
			} `json:"columns"`
			Rows      [][]*string `json:"rows"`
			TotalRows int64       `json:"total_rows"`
		}
		c.ok("preview_source", map[string]any{"source": "invoices", "filters": []map[string]any{{"column": "currency", "op": "eq", "value": "EUR"}}, "limit": 2}, &p)
		if p.TotalRows != int64(wantEUR) || len(p.Rows) != 2 || len(p.Columns) != 5 {
			t.Errorf("preview: %d rows of %d (want 2 of %d), %d columns", len(p.Rows), p.TotalRows, wantEUR, len(p.Columns))
		}
		var list struct {
			Sources []struct {
				Alias string `json:"alias"`
			} `json:"sources"`
		}
		c.ok("list_sources", map[string]any{}, &list)
		if len(list.Sources) != 2 {
			t.Errorf("list_sources: %+v", list)
		}
	})
}

// TestBadArguments: every refusal is a tool error (isError) that says what
// is wrong, in the API's code and words, never a protocol failure.
func TestBadArguments(t *testing.T) {
	e := newEnv(t, nil)
	e.transports(t, func(t *testing.T, c *client) {
		for _, tc := range []struct {
			tool string
			args map[string]any
			want string
		}{
			{"preview_source", map[string]any{}, "invalid: source is required"},
			{"preview_source", map[string]any{"source": "invoices", "uri": "/tmp/x.csv"}, "not both"},
			{"preview_source", map[string]any{"source": "nosuch"}, "not_found: no source is registered as \"nosuch\""},
			{"preview_source", map[string]any{"source": "invoices", "filters": []map[string]any{{"column": "nosuch", "op": "eq", "value": 1}}}, "nosuch"},
			{"preview_source", map[string]any{"source": "invoices", "filters": []map[string]any{{"column": "amount", "op": "around", "value": 1}}}, "around"},
			{"preview_source", map[string]any{"source": "invoices", "limit": -1}, "invalid: limit"},
			// No arbitrary file or URL: only uploads.
			{"preview_source", map[string]any{"uri": "/etc/passwd"}, "upload storage"},
			{"preview_source", map[string]any{"uri": "https://example.com/data.csv"}, "upload storage"},
			{"preview_source", map[string]any{"source": 42}, "validating"},
			{"preview_source", map[string]any{"source": "invoices", "colour": "red"}, "validating"},
			{"suggest_recipe", map[string]any{"left": "invoices", "right": "invoices"}, "invalid: left and right are both"},
			{"suggest_recipe", map[string]any{"left": "invoices", "right": "nosuch"}, "not_found"},
			{"suggest_recipe", map[string]any{"left": "invoices", "right": "payments", "left_key": "nosuch"}, "nosuch"},
			{"check_recipe", map[string]any{}, "invalid: give recipe_id"},
			{"check_recipe", map[string]any{"recipe_id": "nosuch"}, "not_found"},
			{"start_run", map[string]any{}, "invalid: give recipe_id"},
			{"start_run", map[string]any{"recipe_id": "a", "recipe": map[string]any{}}, "not both"},
			{"start_run", map[string]any{"recipe": map[string]any{"recipe_id": "x"}}, "invalid"},
			{"start_run", map[string]any{"recipe_id": "nosuch", "wait_seconds": 99999}, "wait_seconds"},
			{"start_run", map[string]any{"recipe": e.goldenRecipeOutsideRoots(t)}, "invalid"},
			// An engine the server does not have is refused before
			// anything is queued, naming the engines it has.
			{"start_run", map[string]any{"recipe": e.goldenRecipe(t), "engine": "spark"}, `invalid: the run's "engine": engine "spark" is not configured: start kalla with --spark-remote (available: duckdb)`},
			{"start_run", map[string]any{"recipe": e.goldenRecipe(t), "engine": "oracle"}, `invalid: the run's "engine": unknown engine "oracle" (available: duckdb)`},
			{"get_run", map[string]any{"run_id": "nosuch"}, "not_found: no run has id \"nosuch\""},
			{"get_run", map[string]any{}, "validating"},
			{"get_results", map[string]any{"run_id": "nosuch", "table": "matched"}, "not_found"},
			{"get_results", map[string]any{"run_id": "nosuch", "table": "everything"}, "table \"everything\" is not one of"},
			{"get_results", map[string]any{"run_id": "nosuch", "table": "matched", "limit": 5000}, "limit must be between 1 and 1000"},
			{"explain_record", map[string]any{"run_id": "nosuch", "side": "middle", "key": "x"}, "side must be left or right"},
			{"explain_record", map[string]any{"run_id": "nosuch", "side": "left", "key": "x"}, "not_found"},
		} {
			c.fails(tc.tool, tc.args, tc.want)
		}
	})
}

// goldenRecipeOutsideRoots names a file outside the file roots.
func (e *env) goldenRecipeOutsideRoots(t *testing.T) map[string]any {
	r := e.goldenRecipe(t)
	r["sources"].(map[string]any)["left"].(map[string]any)["uri"] = "/etc/passwd"
	return r
}

// TestResources lists and reads the recipe and run resources.
func TestResources(t *testing.T) {
	e := newEnv(t, nil)
	rec := e.goldenRecipe(t)
	e.api("POST", "/api/recipes", rec, http.StatusCreated)
	e.transports(t, func(t *testing.T, c *client) {
		ctx := context.Background()
		lr, err := c.s.ListResources(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		var uris []string
		for _, r := range lr.Resources {
			uris = append(uris, r.URI)
		}
		sort.Strings(uris)
		if !slices.Equal(uris, []string{"kalla://recipes", "kalla://runs"}) {
			t.Errorf("resources %v", uris)
		}
		lt, err := c.s.ListResourceTemplates(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(lt.ResourceTemplates) != 2 {
			t.Errorf("templates: %d", len(lt.ResourceTemplates))
		}
		id := rec["recipe_id"].(string)
		got, err := c.s.ReadResource(ctx, &sdk.ReadResourceParams{URI: "kalla://recipes/" + id})
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(got.Contents[0].Text, `"recipe_id": "`+id+`"`) {
			t.Errorf("recipe resource: %s", got.Contents[0].Text)
		}
		list, err := c.s.ReadResource(ctx, &sdk.ReadResourceParams{URI: "kalla://recipes"})
		if err != nil || !strings.Contains(list.Contents[0].Text, id) {
			t.Errorf("recipes resource: %v %v", list, err)
		}
		if _, err := c.s.ReadResource(ctx, &sdk.ReadResourceParams{URI: "kalla://recipes/nosuch"}); err == nil || !strings.Contains(err.Error(), "not found") {
			t.Errorf("unknown recipe: %v", err)
		}
		// A stored recipe runs by id, as the token's owner could.
		var run runView
		c.ok("start_run", map[string]any{"recipe_id": id, "wait_seconds": 600}, &run)
		if want := int64(len(readCSV(t, filepath.Join(scenario, "expected", "matched.csv")))); run.Status != "completed" || run.MatchedCount != want {
			t.Errorf("run of stored recipe: %+v", run)
		}
		var chk struct {
			OK bool `json:"ok"`
		}
		c.ok("check_recipe", map[string]any{"recipe_id": id}, &chk)
		if !chk.OK {
			t.Errorf("stored recipe does not check")
		}
	})
}

// TestToken: /mcp admits only what the API admits.
func TestToken(t *testing.T) {
	e := newEnv(t, nil)
	for _, token := range []string{"", "wrong"} {
		if _, err := e.httpClient(t, token); err == nil {
			t.Errorf("token %q: connected", token)
		}
	}
	req, _ := http.NewRequest("POST", e.m.URL()+"/mcp", strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"x","version":"1"}}}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(string(b), `"code":"unauthorized"`) {
		t.Errorf("no token: %d %s", resp.StatusCode, b)
	}
	if _, err := e.httpClient(t, testToken); err != nil {
		t.Errorf("right token: %v", err)
	}
	// In-process with a wrong token, every call is the API's refusal.
	c := e.inMemory(t, kallamcp.Config{API: e.m.API, Token: "wrong"})
	c.fails("list_sources", map[string]any{}, "unauthorized: missing or wrong API token")
}

// TestGuard: /mcp is behind the same Host and cross-origin rules as the API.
func TestGuard(t *testing.T) {
	e := newEnv(t, nil)
	init := `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"x","version":"1"}}}`
	for _, tc := range []struct {
		name string
		hdr  map[string]string
		host string
		want int
	}{
		{"rebinding host", nil, "evil.example:80", http.StatusForbidden},
		{"cross-site page", map[string]string{"Sec-Fetch-Site": "cross-site", "Origin": "https://evil.example"}, "", http.StatusForbidden},
		{"foreign origin", map[string]string{"Origin": "https://evil.example"}, "", http.StatusForbidden},
		{"script", nil, "", http.StatusOK},
	} {
		req, _ := http.NewRequest("POST", e.m.URL()+"/mcp", strings.NewReader(init))
		req.Header.Set("Authorization", "Bearer "+testToken)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		for k, v := range tc.hdr {
			req.Header.Set(k, v)
		}
		if tc.host != "" {
			req.Host = tc.host
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("%s: %d, want %d: %s", tc.name, resp.StatusCode, tc.want, b)
		}
		if tc.want == http.StatusForbidden && !strings.Contains(string(b), `"code":"forbidden"`) {
			t.Errorf("%s: body %s", tc.name, b)
		}
		if sid := resp.Header.Get("Mcp-Session-Id"); sid != "" {
			del, _ := http.NewRequest("DELETE", e.m.URL()+"/mcp", nil)
			del.Header.Set("Authorization", "Bearer "+testToken)
			del.Header.Set("Mcp-Session-Id", sid)
			if r, err := http.DefaultClient.Do(del); err == nil {
				r.Body.Close()
			}
		}
	}
}

func ExampleLLMFromEnv() {
	env := map[string]string{kallamcp.EnvLLMURL: "http://localhost:11434/v1"}
	_, err := kallamcp.LLMFromEnv(func(k string) string { return env[k] })
	fmt.Println(err)
	// Output: KALLA_LLM_URL and KALLA_LLM_MODEL go together: set both to use a language model, or neither
}

// TestSecretsStayMasked: a Postgres source's password never reaches the
// assistant (list_sources, suggest_recipe, start_run, get_run), yet the
// masked recipe suggest_recipe returns runs, since the API restores the
// registered source's URI.
func TestSecretsStayMasked(t *testing.T) {
	e := newEnv(t, nil)
	pg := testenv.Postgres(t)
	u, err := url.Parse(pg)
	if err != nil {
		t.Fatal(err)
	}
	password, ok := u.User.Password()
	if !ok || password == "" {
		t.Fatalf("the test database URL has no password to mask")
	}
	stmts := []string{`CREATE TABLE payments (payment_id text, reference text, amount numeric(12,2), currency text, paid_on date)`}
	for _, r := range readCSV(t, filepath.Join(e.fixtures, "right.csv")) {
		stmts = append(stmts, fmt.Sprintf(`INSERT INTO payments VALUES ('%s', '%s', %s, '%s', '%s')`, r["payment_id"], r["reference"], r["amount"], r["currency"], r["paid_on"]))
	}
	pgExec(t, pg, stmts...)
	sep := "?"
	if strings.Contains(pg, "?") {
		sep = "&"
	}
	e.api("POST", "/api/sources", map[string]string{"alias": "pgpayments", "uri": pg + sep + "table=payments"}, http.StatusOK)
	e.transports(t, func(t *testing.T, c *client) {
		clean := func(name string, res *sdk.CallToolResult) {
			t.Helper()
			b, _ := json.Marshal(res)
			if strings.Contains(string(b), password) {
				t.Errorf("%s: the answer carries the database password: %s", name, b)
			}
			if res.IsError {
				t.Fatalf("%s: %s", name, text(res))
			}
		}
		clean("list_sources", c.call("list_sources", map[string]any{}, nil))
		res := c.call("suggest_recipe", map[string]any{"left": "invoices", "right": "pgpayments",
			"pairs": []map[string]string{{"left": "INV-001", "right": "PAY-101"}, {"left": "INV-002", "right": "PAY-102"}}}, nil)
		clean("suggest_recipe", res)
		var sug struct {
			Recipe map[string]any `json:"recipe"`
		}
		b, _ := json.Marshal(res.StructuredContent)
		if err := json.Unmarshal(b, &sug); err != nil {
			t.Fatal(err)
		}
		res = c.call("start_run", map[string]any{"recipe": sug.Recipe, "wait_seconds": 600}, nil)
		clean("start_run", res)
		var run runView
		b, _ = json.Marshal(res.StructuredContent)
		json.Unmarshal(b, &run)
		if run.Status != "completed" || run.RightCount != 6 {
			t.Fatalf("run over the masked recipe: %+v", run)
		}
		clean("get_results", c.call("get_results", map[string]any{"run_id": run.RunID, "table": "matched"}, nil))
	})
}

// pgExec runs statements on the database at uri.
func pgExec(t *testing.T, uri string, stmts ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, uri)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	defer conn.Close(context.Background())
	for _, s := range stmts {
		if _, err := conn.Exec(ctx, s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
}

// TestRoles: a tool call carries its caller's role, over HTTP and
// in-process: a viewer lists sources but may not start a run.
func TestRoles(t *testing.T) {
	e := newEnv(t, nil)
	tok, hash, err := auth.NewToken()
	if err != nil {
		t.Fatal(err)
	}
	if err := e.m.Store.CreateToken(context.Background(), &kalla.APIToken{Name: "vic", Role: kalla.RoleViewer}, hash); err != nil {
		t.Fatal(err)
	}
	hc, err := e.httpClient(t, tok)
	if err != nil {
		t.Fatalf("viewer over HTTP: %v", err)
	}
	for name, c := range map[string]*client{"http": hc, "inmemory": e.inMemory(t, kallamcp.Config{API: e.m.API, Token: tok})} {
		t.Run(name, func(t *testing.T) {
			c.t = t
			c.ok("list_sources", map[string]any{}, nil)
			c.fails("start_run", map[string]any{"recipe_id": "anything"}, "forbidden: vic (viewer) may not POST /api/runs: that needs the preparer role")
		})
	}
}

package mcp

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/kalla-recon/kalla/internal/kalla"
)

// Environment variables of the optional language model.
const (
	EnvLLMURL   = "KALLA_LLM_URL"
	EnvLLMModel = "KALLA_LLM_MODEL"
	EnvLLMKey   = "KALLA_LLM_KEY"
)

// LLMConfig is the optional language model that turns a filter or a rule
// described in words into Kalla's structured form. Kalla never needs it:
// without URL and Model the features are absent.
type LLMConfig struct {
	// URL is an OpenAI-compatible chat completions endpoint (a URL ending
	// in /chat/completions, or a base such as http://localhost:11434/v1
	// to which it is added) or Anthropic's messages endpoint (ending in
	// /messages, or any api.anthropic.com URL).
	URL   string
	Model string
	// Key is sent as "Authorization: Bearer" (OpenAI) or "x-api-key"
	// (Anthropic); empty sends none.
	Key string
	// Timeout bounds one answer; zero means two minutes.
	Timeout time.Duration
}

// LLMFromEnv reads KALLA_LLM_URL, KALLA_LLM_MODEL and KALLA_LLM_KEY.
// Errors: EINVALID when only one of URL and model is set, or the URL is
// not http(s).
func LLMFromEnv(getenv func(string) string) (LLMConfig, error) {
	c := LLMConfig{URL: strings.TrimSpace(getenv(EnvLLMURL)), Model: strings.TrimSpace(getenv(EnvLLMModel)), Key: getenv(EnvLLMKey)}
	if c.URL == "" && c.Model == "" {
		return c, nil
	}
	if c.URL == "" || c.Model == "" {
		return c, kalla.Errorf(kalla.EINVALID, "%s and %s go together: set both to use a language model, or neither", EnvLLMURL, EnvLLMModel)
	}
	u, err := url.Parse(c.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return c, kalla.Errorf(kalla.EINVALID, "%s %s is not an http(s) URL", EnvLLMURL, kalla.Excerpt(kalla.Redact(c.URL)))
	}
	return c, nil
}

// Enabled reports whether a model is configured.
func (c LLMConfig) Enabled() bool { return c.URL != "" && c.Model != "" }

// llmClient asks the configured model one question at a time.
type llmClient struct {
	cfg       LLMConfig
	endpoint  string
	anthropic bool
	http      *http.Client
}

func newLLMClient(cfg LLMConfig) *llmClient {
	if cfg.Timeout <= 0 {
		cfg.Timeout = 2 * time.Minute
	}
	c := &llmClient{cfg: cfg, endpoint: strings.TrimRight(cfg.URL, "/"), http: &http.Client{Timeout: cfg.Timeout}}
	u, _ := url.Parse(c.endpoint)
	switch {
	case strings.HasSuffix(c.endpoint, "/messages"):
		c.anthropic = true
	case u != nil && strings.HasSuffix(u.Hostname(), "anthropic.com"):
		c.anthropic, c.endpoint = true, c.endpoint+"/v1/messages"
	case !strings.HasSuffix(c.endpoint, "/chat/completions"):
		c.endpoint += "/chat/completions"
	}
	return c
}

// ask sends a system prompt and the user's words and returns the model's
// text. Errors: EUNAVAILABLE when the model cannot be reached or answers
// with an error.
func (c *llmClient) ask(ctx context.Context, system, user string) (string, error) {
	var body any
	if c.anthropic {
		body = map[string]any{"model": c.cfg.Model, "max_tokens": 2048, "system": system,
			"messages": []map[string]string{{"role": "user", "content": user}}}
	} else {
		body = map[string]any{"model": c.cfg.Model, "temperature": 0,
			"messages": []map[string]string{{"role": "system", "content": system}, {"role": "user", "content": user}}}
	}
	b, err := json.Marshal(body)
	if err != nil {
		return "", fmt.Errorf("encode model request: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, "POST", c.endpoint, bytes.NewReader(b))
	if err != nil {
		return "", kalla.WrapError(kalla.EUNAVAILABLE, err, "language model request")
	}
	req.Header.Set("Content-Type", "application/json")
	if c.anthropic {
		req.Header.Set("anthropic-version", "2023-06-01")
		if c.cfg.Key != "" {
			req.Header.Set("x-api-key", c.cfg.Key)
		}
	} else if c.cfg.Key != "" {
		req.Header.Set("Authorization", "Bearer "+c.cfg.Key)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return "", kalla.Errorf(kalla.EUNAVAILABLE, "the language model at %s cannot be reached: %s", kalla.Redact(c.endpoint), kalla.Redact(err.Error()))
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return "", kalla.Errorf(kalla.EUNAVAILABLE, "read the language model's answer: %s", err.Error())
	}
	if resp.StatusCode != http.StatusOK {
		return "", kalla.Errorf(kalla.EUNAVAILABLE, "the language model answered %d: %s", resp.StatusCode, kalla.Excerpt(kalla.Redact(string(raw))))
	}
	var out struct {
		Choices []struct {
			Message struct {
				Content string `json:"content"`
			} `json:"message"`
		} `json:"choices"`
		Content []struct {
			Type string `json:"type"`
			Text string `json:"text"`
		} `json:"content"`
	}
	if err := json.Unmarshal(raw, &out); err != nil {
		return "", kalla.Errorf(kalla.EUNAVAILABLE, "the language model's answer is not JSON: %s", kalla.Excerpt(string(raw)))
	}
	var text strings.Builder
	for _, ch := range out.Choices {
		text.WriteString(ch.Message.Content)
	}
	for _, ct := range out.Content {
		if ct.Type == "text" {
			text.WriteString(ct.Text)
		}
	}
	if strings.TrimSpace(text.String()) == "" {
		return "", kalla.Errorf(kalla.EUNAVAILABLE, "the language model gave an empty answer")
	}
	return text.String(), nil
}

// jsonObject returns the JSON object in a model's answer: the text from its
// first "{" to its last "}", so code fences and prose around it do not
// matter.
func jsonObject(answer string) (json.RawMessage, bool) {
	i, j := strings.Index(answer, "{"), strings.LastIndex(answer, "}")
	if i < 0 || j < i {
		return nil, false
	}
	raw := json.RawMessage(answer[i : j+1])
	if !json.Valid(raw) {
		return nil, false
	}
	return raw, true
}

// modelError is a tool error for a model answer Kalla refused.
func modelError(format string, args ...any) error {
	return &apiError{Status: http.StatusBadGateway, Code: string(kalla.EUNAVAILABLE), Message: fmt.Sprintf(format, args...)}
}

type filterTextArgs struct {
	Source string `json:"source" jsonschema:"alias of the registered source to filter"`
	Text   string `json:"text" jsonschema:"the filter in words, such as: payments in EUR above 100 since March 2026"`
}

type filterTextOut struct {
	// Filters are the conditions, checked against the source by the API.
	Filters []FilterArg `json:"filters"`
	// MatchingRows is how many of the source's rows meet them.
	MatchingRows int64 `json:"matching_rows"`
	// Explanation is the conditions in words, one per line, for the user
	// to confirm.
	Explanation string `json:"explanation"`
}

type ruleTextArgs struct {
	RecipeID string         `json:"recipe_id,omitempty" jsonschema:"a stored recipe whose sources the rule relates"`
	Recipe   map[string]any `json:"recipe,omitempty" jsonschema:"instead of recipe_id: a recipe in Kalla's JSON format, such as suggest_recipe returns"`
	Text     string         `json:"text" jsonschema:"the rule in words, such as: same reference, amounts within 1 percent, paid up to 5 days after the invoice"`
}

type ruleTextOut struct {
	// Rule is the structured rule (Kalla's rule format), checked with the
	// recipe.
	Rule map[string]any `json:"rule"`
	// Recipe is the recipe with the rule added after its rules (or as its
	// only rule in place of match_sql), checked against the real sources.
	Recipe map[string]any `json:"recipe"`
	// Check is check_recipe's answer for Recipe.
	Check map[string]any `json:"check"`
	// Explanation is the rule's conditions in words.
	Explanation string `json:"explanation"`
}

// addLLMTools registers the tools that need a language model.
func (s *service) addLLMTools(srv *sdk.Server) {
	sdk.AddTool(srv, &sdk.Tool{Name: "filter_from_text", Description: "Turn a filter described in words into Kalla filter conditions on a registered source, using the configured language model. The conditions are checked by Kalla against the source (columns, operators, values) and counted before they are returned; show them to the user before using them."},
		tool(s, "filter_from_text", s.filterFromText))
	sdk.AddTool(srv, &sdk.Tool{Name: "rule_from_text", Description: "Turn a match rule described in words into a structured Kalla rule for a recipe's two sources, using the configured language model. The rule is checked with the recipe against the real sources before it is returned; show it to the user before running it."},
		tool(s, "rule_from_text", s.ruleFromText))
}

// sourceColumns returns a registered source's columns as "name (type)".
func (s *service) sourceColumns(ctx context.Context, id http.Header, alias string) ([]string, error) {
	var p struct {
		Columns []kalla.Column `json:"columns"`
	}
	if err := s.call(ctx, id, "POST", "/api/sources/"+url.PathEscape(alias)+"/load-scoped", nil, map[string]any{"limit": 1}, &p); err != nil {
		return nil, err
	}
	out := make([]string, len(p.Columns))
	for i, c := range p.Columns {
		out[i] = c.Name + " (" + c.DataType + ")"
	}
	return out, nil
}

func (s *service) filterFromText(ctx context.Context, id http.Header, _ *sdk.CallToolRequest, in filterTextArgs) (*filterTextOut, error) {
	if strings.TrimSpace(in.Source) == "" || strings.TrimSpace(in.Text) == "" {
		return nil, invalid("source and text are required")
	}
	cols, err := s.sourceColumns(ctx, id, in.Source)
	if err != nil {
		return nil, err
	}
	system := "You translate a description of which records to keep into Kalla filter conditions. " +
		"Answer with one JSON object and nothing else: {\"filters\": [{\"column\": ..., \"op\": ..., \"value\": ...}]}. " +
		"Operators: eq, neq, gt, gte, lt, lte (one value), between (an array of two values), in (an array), like (SQL pattern with %), is_null and is_not_null (no value). " +
		"Use only these columns: " + strings.Join(cols, ", ") + ". Dates as YYYY-MM-DD; numbers as JSON numbers. All conditions must hold together."
	answer, err := s.llm.ask(ctx, system, in.Text)
	if err != nil {
		return nil, &apiError{Status: http.StatusBadGateway, Code: string(kalla.ErrorCode(err)), Message: kalla.ErrorMessage(err)}
	}
	raw, ok := jsonObject(answer)
	if !ok {
		return nil, modelError("the language model did not answer with filter conditions: %s", kalla.Excerpt(answer))
	}
	var got struct {
		Filters []FilterArg `json:"filters"`
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&got); err != nil || len(got.Filters) == 0 {
		return nil, modelError("the language model's answer is not a list of filter conditions: %s", kalla.Excerpt(string(raw)))
	}
	// The API checks every condition against the source and counts the
	// rows that meet them all: a condition it refuses is never returned.
	var count struct {
		TotalRows int64 `json:"total_rows"`
	}
	if err := s.call(ctx, id, "POST", "/api/sources/"+url.PathEscape(in.Source)+"/load-scoped", nil,
		map[string]any{"conditions": filtersJSON(got.Filters), "limit": 0}, &count); err != nil {
		return nil, modelError("the language model proposed %s, which Kalla refused: %s", kalla.Excerpt(string(raw)), err.Error())
	}
	lines := make([]string, len(got.Filters))
	for i, f := range got.Filters {
		v, _ := json.Marshal(f.Value)
		lines[i] = f.Column + " " + f.Op
		if f.Value != nil {
			lines[i] += " " + string(v)
		}
	}
	return &filterTextOut{Filters: got.Filters, MatchingRows: count.TotalRows, Explanation: strings.Join(lines, "\n")}, nil
}

func (s *service) ruleFromText(ctx context.Context, id http.Header, _ *sdk.CallToolRequest, in ruleTextArgs) (*ruleTextOut, error) {
	if strings.TrimSpace(in.Text) == "" {
		return nil, invalid("text is required: the rule in words")
	}
	body, err := s.recipeBody(ctx, id, in.RecipeID, in.Recipe)
	if err != nil {
		return nil, err
	}
	b, err := json.Marshal(body)
	if err != nil {
		return nil, fmt.Errorf("encode recipe: %w", err)
	}
	var recipe map[string]any
	if err := json.Unmarshal(b, &recipe); err != nil {
		return nil, invalid("recipe is not a JSON object")
	}
	var check struct {
		OK           bool           `json:"ok"`
		Problems     []string       `json:"problems"`
		LeftColumns  []kalla.Column `json:"left_columns"`
		RightColumns []kalla.Column `json:"right_columns"`
	}
	if err := s.call(ctx, id, "POST", "/api/recipes/validate", nil, recipe, &check); err != nil {
		return nil, err
	}
	if len(check.LeftColumns) == 0 || len(check.RightColumns) == 0 {
		return nil, invalid("the recipe's sources cannot be read, so no rule can be written for them: %s", strings.Join(check.Problems, "; "))
	}
	names := func(cols []kalla.Column) string {
		out := make([]string, len(cols))
		for i, c := range cols {
			out[i] = c.Name + " (" + c.DataType + ")"
		}
		return strings.Join(out, ", ")
	}
	system := "You translate a description of when a left record matches a right record into one Kalla match rule. " +
		"Answer with one JSON object and nothing else: {\"rule\": {\"name\": ..., \"pattern\": \"1:1\", \"conditions\": [...]}}. " +
		"Each condition is {\"op\", \"left\", \"right\"} naming a left and a right column, plus: for eq optional \"normalize\" (trim, casefold, alnum); " +
		"for tolerance \"abs\" (an amount) and/or \"pct\" (0.01 is 1 percent); for date_within \"days\" and optional \"direction\" (both, after, before); " +
		"contains, starts_with, ends_with; fuzzy with \"threshold\" in (0,1]; gt, gte, lt, lte. Patterns: 1:1, 1:N, N:1, N:M. " +
		"Left columns: " + names(check.LeftColumns) + ". Right columns: " + names(check.RightColumns) + "."
	answer, err := s.llm.ask(ctx, system, in.Text)
	if err != nil {
		return nil, &apiError{Status: http.StatusBadGateway, Code: string(kalla.ErrorCode(err)), Message: kalla.ErrorMessage(err)}
	}
	raw, ok := jsonObject(answer)
	if !ok {
		return nil, modelError("the language model did not answer with a rule: %s", kalla.Excerpt(answer))
	}
	var got struct {
		Rule kalla.Rule `json:"rule"`
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&got); err != nil || len(got.Rule.Conditions) == 0 {
		return nil, modelError("the language model's answer is not a rule with conditions: %s", kalla.Excerpt(string(raw)))
	}
	if got.Rule.Name == "" {
		got.Rule.Name = "described"
	}
	var rules []any
	if old, ok := recipe["rules"].([]any); ok {
		rules = old
	}
	delete(recipe, "match_sql")
	recipe["rules"] = append(rules, got.Rule)
	var result map[string]any
	if err := s.call(ctx, id, "POST", "/api/recipes/validate", nil, recipe, &result); err != nil {
		return nil, err
	}
	if ok, _ := result["ok"].(bool); !ok {
		return nil, modelError("the language model proposed the rule %s, which Kalla refused: %v", kalla.Excerpt(string(raw)), result["problems"])
	}
	lines := make([]string, len(got.Rule.Conditions))
	for i, c := range got.Rule.Conditions {
		cb, _ := json.Marshal(c)
		lines[i] = string(cb)
	}
	var rule map[string]any
	rb, err := json.Marshal(got.Rule)
	if err != nil {
		return nil, fmt.Errorf("encode rule: %w", err)
	}
	if err := json.Unmarshal(rb, &rule); err != nil {
		return nil, fmt.Errorf("decode rule: %w", err)
	}
	return &ruleTextOut{Rule: rule, Recipe: recipe, Check: result, Explanation: strings.Join(lines, "\n")}, nil
}

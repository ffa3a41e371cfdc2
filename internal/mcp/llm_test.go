package mcp_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"

	kallamcp "github.com/kalla-recon/kalla/internal/mcp"
	"github.com/kalla-recon/kalla/internal/server"
)

// fakeModel is a language model over HTTP that answers fixed texts: the
// first answer whose trigger the user's words contain. It records what it
// was asked.
type fakeModel struct {
	*httptest.Server
	anthropic bool
	answers   map[string]string

	mu   sync.Mutex
	asks []modelAsk
}

type modelAsk struct {
	path, auth, apiKey, version string
	system, user                string
}

func newFakeModel(t *testing.T, anthropic bool, answers map[string]string) *fakeModel {
	f := &fakeModel{anthropic: anthropic, answers: answers}
	f.Server = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.Close)
	return f
}

func (f *fakeModel) serve(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	var req struct {
		Model    string `json:"model"`
		System   string `json:"system"`
		Messages []struct {
			Role    string `json:"role"`
			Content string `json:"content"`
		} `json:"messages"`
	}
	if err := json.Unmarshal(b, &req); err != nil || req.Model != "fake-model" {
		http.Error(w, `{"error":"bad request"}`, http.StatusBadRequest)
		return
	}
	ask := modelAsk{path: r.URL.Path, auth: r.Header.Get("Authorization"), apiKey: r.Header.Get("x-api-key"), version: r.Header.Get("anthropic-version"), system: req.System}
	for _, m := range req.Messages {
		switch m.Role {
		case "system":
			ask.system = m.Content
		case "user":
			ask.user = m.Content
		}
	}
	f.mu.Lock()
	f.asks = append(f.asks, ask)
	f.mu.Unlock()
	answer := "I cannot help with that."
	for trigger, a := range f.answers {
		if strings.Contains(ask.user, trigger) {
			answer = a
		}
	}
	w.Header().Set("Content-Type", "application/json")
	if f.anthropic {
		json.NewEncoder(w).Encode(map[string]any{"type": "message", "content": []map[string]string{{"type": "text", "text": answer}}})
		return
	}
	json.NewEncoder(w).Encode(map[string]any{"choices": []map[string]any{{"message": map[string]string{"role": "assistant", "content": answer}}}})
}

func (f *fakeModel) last() modelAsk {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.asks[len(f.asks)-1]
}

var modelAnswers = map[string]string{
	"euro invoices over 50": "Here you are:\n```json\n{\"filters\": [{\"column\": \"currency\", \"op\": \"eq\", \"value\": \"EUR\"}, {\"column\": \"amount\", \"op\": \"gt\", \"value\": 50}]}\n```",
	"by colour":             `{"filters": [{"column": "colour", "op": "eq", "value": "red"}]}`,
	"no json":               "Filter on the currency column.",
	"same reference, amounts within ten cents": `{"rule": {"name": "reference_and_amount", "pattern": "1:1", "conditions": [` +
		`{"op": "eq", "left": "invoice_id", "right": "reference"}, {"op": "tolerance", "left": "amount", "right": "amount", "abs": 0.10}]}}`,
	"by shoe size": `{"rule": {"name": "shoes", "conditions": [{"op": "eq", "left": "shoe_size", "right": "reference"}]}}`,
}

func TestLLMTools(t *testing.T) {
	for _, anthropic := range []bool{false, true} {
		name := map[bool]string{false: "openai", true: "anthropic"}[anthropic]
		t.Run(name, func(t *testing.T) {
			model := newFakeModel(t, anthropic, modelAnswers)
			url := model.URL + "/v1"
			if anthropic {
				url = model.URL + "/v1/messages"
			}
			e := newEnv(t, func(c *server.Config) {
				c.LLM = kallamcp.LLMConfig{URL: url, Model: "fake-model", Key: "model-key"}
			})
			left := readCSV(t, filepath.Join(e.fixtures, "left.csv"))
			right := readCSV(t, filepath.Join(e.fixtures, "right.csv"))
			e.transports(t, func(t *testing.T, c *client) {
				want := append(slices.Clone(baseTools), "filter_from_text", "rule_from_text")
				sort.Strings(want)
				if got := toolNames(t, c); !slices.Equal(got, want) {
					t.Errorf("tools %v, want %v", got, want)
				}

				// The filter, checked and counted by Kalla.
				var f struct {
					Filters      []map[string]any `json:"filters"`
					MatchingRows int64            `json:"matching_rows"`
					Explanation  string           `json:"explanation"`
				}
				c.ok("filter_from_text", map[string]any{"source": "invoices", "text": "euro invoices over 50"}, &f)
				wantRows := int64(0)
				for _, r := range left {
					if a, _ := strconv.ParseFloat(r["amount"], 64); r["currency"] == "EUR" && a > 50 {
						wantRows++
					}
				}
				if len(f.Filters) != 2 || f.MatchingRows != wantRows || !strings.Contains(f.Explanation, "currency eq \"EUR\"") {
					t.Errorf("filter_from_text: %+v, want 2 filters meeting %d rows", f, wantRows)
				}
				ask := model.last()
				if !strings.Contains(ask.system, "invoice_id") || !strings.Contains(ask.system, "amount") {
					t.Errorf("the model was not told the columns: %q", ask.system)
				}
				if anthropic {
					if ask.path != "/v1/messages" || ask.apiKey != "model-key" || ask.version == "" {
						t.Errorf("anthropic request: %+v", ask)
					}
				} else if ask.path != "/v1/chat/completions" || ask.auth != "Bearer model-key" {
					t.Errorf("openai request: %+v", ask)
				}
				// A proposal Kalla refuses is never returned.
				c.fails("filter_from_text", map[string]any{"source": "invoices", "text": "by colour"}, "which Kalla refused")
				c.fails("filter_from_text", map[string]any{"source": "invoices", "text": "no json"}, "did not answer with filter conditions")
				c.fails("filter_from_text", map[string]any{"source": "nosuch", "text": "euro invoices over 50"}, "not_found")

				// The rule, checked with the recipe, then run.
				var r struct {
					Rule   map[string]any `json:"rule"`
					Recipe map[string]any `json:"recipe"`
					Check  struct {
						OK bool `json:"ok"`
					} `json:"check"`
				}
				c.ok("rule_from_text", map[string]any{"recipe": e.goldenRecipe(t), "text": "same reference, amounts within ten cents"}, &r)
				if r.Rule["name"] != "reference_and_amount" || !r.Check.OK || len(r.Recipe["rules"].([]any)) != 2 {
					t.Fatalf("rule_from_text: %+v", r)
				}
				c.fails("rule_from_text", map[string]any{"recipe": e.goldenRecipe(t), "text": "by shoe size"}, "which Kalla refused")
				var run runView
				c.ok("start_run", map[string]any{"recipe": r.Recipe, "wait_seconds": 600}, &run)
				// Ground truth from the CSVs: the golden rule (reference,
				// amount, currency equal), then reference equal and
				// amounts within 0.10.
				wantMatched := int64(0)
				for _, l := range left {
					for _, p := range right {
						la, _ := strconv.ParseFloat(l["amount"], 64)
						pa, _ := strconv.ParseFloat(p["amount"], 64)
						if l["invoice_id"] == p["reference"] && (la-pa)*(la-pa) <= 0.10*0.10+1e-9 {
							wantMatched++
						}
					}
				}
				if run.Status != "completed" || run.MatchedCount != wantMatched {
					t.Errorf("run with the described rule: %+v, want %d matched", run, wantMatched)
				}
			})
		})
	}
}

// Package learn turns the matches people made by hand into a proposed rule:
// the records a person matched on a recipe's runs are confirmed example
// pairs, the recipe suggester (package suggest) learns rules from them,
// and the new rules are tried on the last run's records to say what they
// would have matched there. Nothing is saved until a person accepts the
// proposal; the change is then recorded in the audit chain.
//
// Every record is read from the runs' own output files (unmatched_left and
// unmatched_right hold the full records), never from the sources: a source
// may have changed since, and the run's files are the evidence the manual
// matches were made on.
package learn

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/kalla-recon/kalla/internal/connector"
	"github.com/kalla-recon/kalla/internal/duck"
	"github.com/kalla-recon/kalla/internal/engine"
	"github.com/kalla-recon/kalla/internal/kalla"
	"github.com/kalla-recon/kalla/internal/scratch"
	"github.com/kalla-recon/kalla/internal/store"
	"github.com/kalla-recon/kalla/internal/suggest"
)

// ActLearn is the audit action of an accepted proposal.
const ActLearn = "learn_rule"

// Store is what learning needs of the metadata store (*store.Store).
type Store interface {
	GetRun(ctx context.Context, id string) (*kalla.RunRecord, error)
	GetRecipe(ctx context.Context, id string) (*kalla.StoredRecipe, error)
	ListRuns(ctx context.Context, q store.RunQuery) ([]*kalla.RunRecord, error)
	ListExceptions(ctx context.Context, q store.ExceptionQuery) ([]*kalla.ExceptionItem, int64, error)
	SaveRecipeChange(ctx context.Context, c store.RecipeChange) (*kalla.AuditEntry, error)
}

// Inspector stages two opened sources in an embedded DuckDB
// (*recon.Service).
type Inspector interface {
	Inspect(ctx context.Context, leftSpec, rightSpec kalla.SourceSpec, left, right connector.Source, fn func(*engine.Inspection) error) error
}

// Learner proposes and saves rules learned from manual matches.
type Learner struct {
	st     Store
	insp   Inspector
	outDir func(runID string) string
}

// New returns a Learner. outDir says where a run's output files are (the
// server's data folder, runner.OutDir).
func New(st Store, insp Inspector, outDir func(runID string) string) *Learner {
	return &Learner{st: st, insp: insp, outDir: outDir}
}

// Proposal is a recipe change learned from manual matches, and what it
// would have done on the last run.
type Proposal struct {
	// ID names this proposal: accepting it needs the same ID, so a
	// proposal that changed meanwhile (new manual matches, the recipe
	// edited) is not saved unseen.
	ID       string `json:"id"`
	RecipeID string `json:"recipe_id"`
	// RunID is the run the rules were tried on (the recipe's last
	// completed run unless one was named).
	RunID string `json:"run_id"`
	// Base is the digest of the recipe version the proposal changes.
	Base string `json:"base"`
	// Examples are the manual matches learned from, as [left key, right
	// key] pairs, and the runs they were made on.
	Examples    [][2]string `json:"examples"`
	ExampleRuns []string    `json:"example_runs"`
	// NewRules are the rules the proposal appends after the recipe's own.
	NewRules []kalla.Rule `json:"new_rules"`
	// Diff says the change in words, one line each; Before and After are
	// the whole recipe (source URIs redacted).
	Diff   []string      `json:"diff"`
	Before *kalla.Recipe `json:"before"`
	After  *kalla.Recipe `json:"after"`
	// Impact is what the new rules would have matched on the run.
	Impact Impact `json:"impact"`
	// Notes are the suggester's findings.
	Notes []string `json:"notes"`

	// after is the recipe to store on acceptance, real URIs and all.
	after *kalla.Recipe
}

// Impact is what the proposed rules would have matched on a run.
type Impact struct {
	// OpenLeft and OpenRight count the run's records still open.
	OpenLeft  int `json:"open_left"`
	OpenRight int `json:"open_right"`
	// WouldMatch counts the pairs of two still-open records the new rules
	// would match; Confirms the pairs that repeat a person's manual
	// match; Conflicts the pairs that take a record a person decided
	// otherwise (matched with another record, resolved, pending).
	WouldMatch int `json:"would_match"`
	Confirms   int `json:"confirms"`
	Conflicts  int `json:"conflicts"`
	// RuleMatches is how many pairs the recipe's own rules matched on the
	// run; the new rules come after them and only see what they left, so
	// none of those pairs changes.
	RuleMatches int64 `json:"rule_matches"`
	// BreaksExisting is true when a new rule takes a record a person
	// decided otherwise; rule matches are never broken (see RuleMatches).
	BreaksExisting bool           `json:"breaks_existing"`
	Pairs          []ProposedPair `json:"pairs"`
}

// ProposedPair is one pair a new rule would match on the run.
type ProposedPair struct {
	Left      string `json:"left"`
	Right     string `json:"right"`
	Rule      string `json:"rule"`
	LeftItem  int64  `json:"left_item,omitempty"`
	RightItem int64  `json:"right_item,omitempty"`
	// Effect is "match" (both records open), "confirms" (a person matched
	// them together) or "conflict" (a record a person decided otherwise).
	Effect string `json:"effect"`
	Note   string `json:"note,omitempty"`
}

// Accepted is a saved proposal: the recipe's new version and the audit
// entry recording it.
type Accepted struct {
	Proposal *Proposal         `json:"proposal"`
	Audit    *kalla.AuditEntry `json:"audit"`
}

// reasonColumns are the columns a rules run adds to unmatched records:
// not the record's own, so not learned from.
var reasonColumns = []string{"_reason", "_closest_candidate"}

// Propose learns a rule for recipeID from the manual matches on its runs
// and tries it on runID (the recipe's last completed run when empty).
// Either ID may be empty when the other is given. Errors: ENOTFOUND for an
// unknown recipe or run, EINVALID (in words a person can act on) when
// there is nothing to learn from or the suggester finds no rule.
func (l *Learner) Propose(ctx context.Context, recipeID, runID string) (*Proposal, error) {
	var run *kalla.RunRecord
	var err error
	if runID != "" {
		if run, err = l.st.GetRun(ctx, runID); err != nil {
			return nil, err
		}
		if recipeID == "" {
			recipeID = run.RecipeID
		}
		if run.RecipeID != recipeID {
			return nil, kalla.Errorf(kalla.EINVALID, "run %s is a run of recipe %q, not %q", runID, run.RecipeID, recipeID)
		}
		if run.Status != kalla.RunCompleted || run.Summary == nil {
			return nil, kalla.Errorf(kalla.ECONFLICT, "run %s is %s: rules are learned on completed runs", runID, run.Status)
		}
	}
	if recipeID == "" {
		return nil, kalla.Errorf(kalla.EINVALID, "name a recipe or a run to learn from")
	}
	rec, err := l.st.GetRecipe(ctx, recipeID)
	if err != nil {
		return nil, err
	}
	if len(rec.Recipe.Rules) == 0 {
		return nil, kalla.Errorf(kalla.EINVALID, "recipe %q is written as SQL: learning adds rules, so it works on recipes made of rules", recipeID)
	}
	lpk, rpk := rec.Recipe.Sources.Left.PrimaryKey, rec.Recipe.Sources.Right.PrimaryKey
	if len(lpk) != 1 || len(rpk) != 1 {
		return nil, kalla.Errorf(kalla.EINVALID, "recipe %q has a primary key of several columns: learning from manual matches needs one key column per side", recipeID)
	}
	runs, err := l.st.ListRuns(ctx, store.RunQuery{RecipeID: recipeID, Status: kalla.RunCompleted})
	if err != nil {
		return nil, err
	}
	if run == nil {
		if len(runs) == 0 {
			return nil, kalla.Errorf(kalla.EINVALID, "recipe %q has no completed run to learn from", recipeID)
		}
		run = runs[0] // newest first
	}
	p := &Proposal{ID: "", RecipeID: recipeID, RunID: run.ID, Base: store.RecipeDigest(rec.Recipe), Examples: [][2]string{}, ExampleRuns: []string{}, Notes: []string{}}

	// The examples: every manual match on the recipe's runs.
	seen := map[[2]string]bool{}
	learnRuns := []*kalla.RunRecord{}
	for _, r := range runs {
		items, _, err := l.st.ListExceptions(ctx, store.ExceptionQuery{RunID: r.ID, Status: kalla.ExcMatched, Kind: kalla.ExcKindUnmatched})
		if err != nil {
			return nil, err
		}
		groups := map[string][2][]string{}
		var order []string
		for _, it := range items {
			if it.MatchGroup == "" {
				continue
			}
			g, ok := groups[it.MatchGroup]
			if !ok {
				order = append(order, it.MatchGroup)
			}
			if it.Side == "left" {
				g[0] = append(g[0], it.Key)
			} else {
				g[1] = append(g[1], it.Key)
			}
			groups[it.MatchGroup] = g
		}
		for _, name := range order {
			g := groups[name]
			for _, lk := range g[0] {
				for _, rk := range g[1] {
					if pair := [2]string{lk, rk}; !seen[pair] {
						seen[pair] = true
						p.Examples = append(p.Examples, pair)
					}
				}
			}
		}
		if len(order) > 0 {
			p.ExampleRuns = append(p.ExampleRuns, r.ID)
			learnRuns = append(learnRuns, r)
		}
	}
	if len(p.Examples) == 0 {
		return nil, kalla.Errorf(kalla.EINVALID, "nobody has matched records by hand on the runs of recipe %q yet: match a few pairs the rules missed (kalla exceptions act match), then learn from them", recipeID)
	}
	if !slicesContainsRun(learnRuns, run.ID) {
		learnRuns = append(learnRuns, run)
	}

	// A folder this process holds (package scratch): what a killed
	// process left is removed by the next one.
	own, _, err := scratch.Make("", "kalla-learn-")
	if err != nil {
		return nil, fmt.Errorf("learn: %w", err)
	}
	defer own.Remove()
	tmp := own.Path()
	db, err := duck.Open(ctx)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	db.SetMaxOpenConns(1)

	// Learn on the unmatched records of the runs the examples come from.
	var learnFiles [2]string
	for s, side := range []string{"left", "right"} {
		learnFiles[s] = filepath.Join(tmp, "learn_"+side+".parquet")
		if err := l.copyRecords(ctx, db, learnRuns, side, learnFiles[s]); err != nil {
			return nil, err
		}
	}
	specs := [2]kalla.SourceSpec{rec.Recipe.Sources.Left, rec.Recipe.Sources.Right}
	for s := range specs {
		specs[s] = kalla.SourceSpec{Alias: specs[s].Alias, Type: kalla.SourceParquet, URI: learnFiles[s], PrimaryKey: specs[s].PrimaryKey}
	}
	var res *suggest.Result
	err = l.inspect(ctx, specs, func(in *engine.Inspection) error {
		var err error
		res, err = suggest.Suggest(ctx, in, suggest.Options{Left: specs[0], Right: specs[1], LeftKey: lpk[0], RightKey: rpk[0], Pairs: p.Examples})
		return err
	})
	if err != nil {
		if kalla.ErrorCode(err) == kalla.EINVALID {
			return nil, kalla.WrapError(kalla.EINVALID, err, "no rule could be learned from the %d manual matches: %s", len(p.Examples), kalla.ErrorMessage(err))
		}
		return nil, err
	}
	for _, n := range res.Notes {
		p.Notes = append(p.Notes, kalla.Redact(strings.ReplaceAll(n, tmp+string(filepath.Separator), "")))
	}

	// The change: the learned rules the recipe does not have, after its own.
	after := rec.Recipe
	after.Rules = append([]kalla.Rule(nil), rec.Recipe.Rules...)
	names := map[string]bool{}
	for _, r := range rec.Recipe.Rules {
		names[r.Name] = true
	}
	for _, r := range res.Recipe.Rules {
		if same := sameRule(rec.Recipe.Rules, r); same != "" {
			p.Notes = append(p.Notes, fmt.Sprintf("the learned rule %s is the recipe's rule %s already", r.Name, same))
			continue
		}
		name := "learned_" + r.Name
		for i := 2; names[name]; i++ {
			name = fmt.Sprintf("learned_%s_%d", r.Name, i)
		}
		names[name] = true
		r.Name = name
		after.Rules = append(after.Rules, r)
		p.NewRules = append(p.NewRules, r)
	}
	if len(p.NewRules) == 0 {
		return nil, kalla.Errorf(kalla.EINVALID, "the %d manual matches teach no rule the recipe lacks: the rules learned from them (%s) are the recipe's own; the records were probably left unmatched because a rule took their counterparts first", len(p.Examples), ruleNames(res.Recipe.Rules))
	}
	if err := after.Validate(); err != nil {
		return nil, fmt.Errorf("learned recipe is invalid (a bug): %w", err)
	}
	before := rec.Recipe.Redacted()
	afterR := after.Redacted()
	p.Before, p.After = &before, &afterR
	p.Diff = diffLines(rec.Recipe.Rules, p.NewRules)

	if err := l.impact(ctx, db, tmp, run, &rec.Recipe, p); err != nil {
		return nil, err
	}
	h := sha256.New()
	// The ID covers what the reviewer saw: the recipe version, the
	// examples, the rules and what they would do on the run.
	b, _ := json.Marshal(struct {
		Base, Run string
		Examples  [][2]string
		Rules     []kalla.Rule
		Impact    Impact
	}{p.Base, p.RunID, p.Examples, p.NewRules, p.Impact})
	h.Write(b)
	p.ID = hex.EncodeToString(h.Sum(nil))[:16]
	// The stored recipe keeps the real URIs; the proposal shows them
	// redacted.
	p.after = &after
	return p, nil
}

// Accept saves the proposal named id as the recipe's new version, after
// proposing again on the same recipe and run: when the proposal is no
// longer the one reviewed (other manual matches meanwhile, the recipe
// edited) it returns ECONFLICT and saves nothing. The change is appended to
// the audit chain with the run's ID, so it is part of that run's evidence.
func (l *Learner) Accept(ctx context.Context, recipeID, runID, id string, actor kalla.Principal, note string) (*Accepted, error) {
	if strings.TrimSpace(id) == "" {
		return nil, kalla.Errorf(kalla.EINVALID, "proposal id is required: ask for a proposal first and accept it by its id")
	}
	p, err := l.Propose(ctx, recipeID, runID)
	if err != nil {
		return nil, err
	}
	if p.ID != id {
		return nil, kalla.Errorf(kalla.ECONFLICT, "proposal %s is no longer current (now %s): the recipe or the manual matches changed; review the new proposal", id, p.ID)
	}
	rec, err := l.st.GetRecipe(ctx, p.RecipeID)
	if err != nil {
		return nil, err
	}
	rec.Recipe = *p.after
	if note == "" {
		note = fmt.Sprintf("rules %s learned from %d manual matches, tried on run %s (would match %d open pairs)", ruleNames(p.NewRules), len(p.Examples), p.RunID, p.Impact.WouldMatch)
	}
	e, err := l.st.SaveRecipeChange(ctx, store.RecipeChange{Recipe: rec, Base: p.Base, Action: ActLearn, Actor: actor.Name, Role: actor.Role, Note: note, RunID: p.RunID})
	if err != nil {
		return nil, err
	}
	return &Accepted{Proposal: p, Audit: e}, nil
}

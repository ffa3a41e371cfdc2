package kalla

import "time"

// Summary is the record of one completed run: what went in, what matched,
// what did not, how long each stage took, and a checksum of every output so
// the evidence can be verified later. Field names follow the original Kalla
// where it had them; the API reports runs under the same names.
type Summary struct {
	RecipeID            string `json:"recipe_id"`
	RunID               string `json:"run_id,omitempty"`
	Status              string `json:"status"`
	LeftCount           int64  `json:"left_count"`
	RightCount          int64  `json:"right_count"`
	MatchedCount        int64  `json:"matched_count"`
	MatchedLeftRecords  int64  `json:"matched_left_records"`
	MatchedRightRecords int64  `json:"matched_right_records"`
	UnmatchedLeftCount  int64  `json:"unmatched_left_count"`
	UnmatchedRightCount int64  `json:"unmatched_right_count"`
	// MatchRateLeft and MatchRateRight are the matched records' share of each
	// side, 0 when the side is empty.
	MatchRateLeft  float64 `json:"match_rate_left"`
	MatchRateRight float64 `json:"match_rate_right"`

	Sources  SummarySources `json:"sources"`
	Stages   []StageTiming  `json:"stages"`
	Outputs  []OutputFile   `json:"outputs"`
	Warnings []Warning      `json:"warnings"`
	// Rules is set for a rules recipe: per-rule counts and the break report.
	Rules *RulesReport `json:"rules,omitempty"`
	// Amounts is set when Kalla can tell which columns are amounts (see
	// AmountColumns): open and matched totals per side and currency.
	Amounts *Amounts `json:"amounts,omitempty"`

	KallaVersion string `json:"kalla_version"`
	// Engine names the engine that ran (EngineDuckDB, EngineSpark), so
	// the evidence says where its answers were computed.
	Engine        string    `json:"engine,omitempty"`
	EngineVersion string    `json:"engine_version"`
	StartedAt     time.Time `json:"started_at"`
	FinishedAt    time.Time `json:"finished_at"`
	DurationMS    int64     `json:"duration_ms"`
}

// SummarySources describes both sides as they were read.
type SummarySources struct {
	Left  SummarySource `json:"left"`
	Right SummarySource `json:"right"`
}

// SummarySource is one side of a run: where it came from (URI redacted),
// its key and its columns as staged.
type SummarySource struct {
	Alias      string   `json:"alias"`
	Type       string   `json:"type"`
	URI        string   `json:"uri"`
	PrimaryKey []string `json:"primary_key"`
	Filters    []Filter `json:"filters,omitempty"`
	Columns    []Column `json:"columns"`
}

// StageTiming is the wall time of one stage of a run.
type StageTiming struct {
	Name       string `json:"name"`
	DurationMS int64  `json:"duration_ms"`
	// SpillBytes is the most disk DuckDB's spill folder took while the
	// stage ran (sampled every 200 ms; the two staging stages run at once
	// and share one figure). 0: nothing spilled.
	SpillBytes int64 `json:"spill_bytes,omitempty"`
}

// OutputFile is one file a run wrote, with its SHA-256 so a controller can
// verify the evidence has not changed.
type OutputFile struct {
	Name   string `json:"name"`
	Table  string `json:"table"`
	Format string `json:"format"`
	Rows   int64  `json:"rows"`
	Bytes  int64  `json:"bytes"`
	SHA256 string `json:"sha256"`
}

// Warning is something a run found that does not stop it but that a user
// must know, such as duplicate primary keys.
type Warning struct {
	Code    string `json:"code"`
	Side    string `json:"side,omitempty"`
	Message string `json:"message"`
	Count   int64  `json:"count,omitempty"`
}

// Warning codes.
const (
	WarnDuplicateKeys = "duplicate_primary_key"
	WarnNullKeys      = "null_primary_key"
	WarnOuterRows     = "match_rows_without_record"
	WarnRepeatedPairs = "repeated_pair"
	// WarnManyToMany: a preview's match pairs each record with many (a
	// join on a category such as a currency rather than on a reference).
	WarnManyToMany = "many_to_many"
)

package kalla

import (
	"errors"
	"fmt"
)

// Stage names, in the order a run passes them. Every engine reports its
// progress under these names, so the CLI bar, the run queue, the API's
// events and the UI do not depend on which engine ran.
const (
	StageLeft  = "stage_left"
	StageRight = "stage_right"
	StageMatch = "match"
	StageWrite = "write"
)

// Event reports a run's progress.
type Event struct {
	Stage string `json:"stage"`
	// Rows and Total count rows staged for a staging stage (Total is 0 when
	// the source cannot tell its size in advance).
	Rows  int64 `json:"rows"`
	Total int64 `json:"total"`
	// Fraction is the run's overall progress in [0, 1].
	Fraction float64 `json:"fraction"`
	// Done marks the end of the stage.
	Done bool `json:"done"`
}

// Formats an output can be written in.
const (
	FormatParquet = "parquet"
	FormatCSV     = "csv"
)

// Output tables of a run, each written as <table>.<format>.
const (
	TableMatched        = "matched"
	TableUnmatchedLeft  = "unmatched_left"
	TableUnmatchedRight = "unmatched_right"
	// TableBreaks lists the differences within matched pairs; rules
	// recipes only.
	TableBreaks = "breaks"
	// TableMatchedLeft and TableMatchedRight hold the full original records
	// of each side that some matched pair uses, with _left_row/_right_row
	// (row id + 1) to join them to matched: written only when a run asks
	// for records (the results page shows each pair as its two records).
	TableMatchedLeft  = "matched_left"
	TableMatchedRight = "matched_right"
)

// Row-number columns of matched pairs and of the records files: a record's
// row id + 1 on its side.
const (
	LeftRowColumn  = "_left_row"
	RightRowColumn = "_right_row"
)

// SummaryFile is the name of the summary, written last: its presence marks a
// complete set of outputs.
const SummaryFile = "summary.json"

// ErrRecipe marks errors that are the recipe's fault (its SQL, its keys)
// rather than the data's or the system's, whichever engine found them; the
// CLI exits 2 for them. Test with errors.Is.
var ErrRecipe = errors.New("invalid recipe")

// Check is the result of checking a recipe against its real sources
// without running it.
type Check struct {
	// Problems lists everything to fix, each with what to change. Empty
	// means the recipe would run.
	Problems []string `json:"problems"`
	// Columns of each side and of the match output, as far as they could be
	// learned.
	LeftColumns   []Column `json:"left_columns,omitempty"`
	RightColumns  []Column `json:"right_columns,omitempty"`
	OutputColumns []Column `json:"output_columns,omitempty"`
	// Warnings are what would run but is likely wrong: a match SQL that
	// compares every left record with every right record.
	Warnings []string `json:"warnings,omitempty"`
}

// OK reports whether the recipe has no problems.
func (c *Check) OK() bool { return len(c.Problems) == 0 }

// MatchCounts are what a match found, as every engine reports it.
type MatchCounts struct {
	// Pairs are the distinct matched pairs; Repeats the output rows that
	// repeated one; OuterRows the output rows lacking a left or a right.
	Pairs, Repeats, OuterRows int64
	// LeftRecords and RightRecords are the records in at least one pair;
	// LeftCount and RightCount the records staged on each side.
	LeftRecords, RightRecords int64
	LeftCount, RightCount     int64
}

// SetMatchCounts fills the summary's pair and record counts, rates and the
// match's warnings: one wording for every engine, whose summaries must
// agree.
func (s *Summary) SetMatchCounts(c MatchCounts) {
	s.MatchedCount = c.Pairs
	if c.Repeats > 0 {
		s.Warnings = append(s.Warnings, Warning{Code: WarnRepeatedPairs, Count: c.Repeats,
			Message: fmt.Sprintf("the match SQL produced %d rows that repeat an already matched pair; each pair is reported once", c.Repeats)})
	}
	if c.OuterRows > 0 {
		s.Warnings = append(s.Warnings, Warning{Code: WarnOuterRows, Count: c.OuterRows,
			Message: fmt.Sprintf("%d rows of the match output lack a left or a right record (an outer join?); they are not counted as matches", c.OuterRows)})
	}
	s.MatchedLeftRecords, s.MatchedRightRecords = c.LeftRecords, c.RightRecords
	s.UnmatchedLeftCount = c.LeftCount - c.LeftRecords
	s.UnmatchedRightCount = c.RightCount - c.RightRecords
	if c.LeftCount > 0 {
		s.MatchRateLeft = float64(c.LeftRecords) / float64(c.LeftCount)
	}
	if c.RightCount > 0 {
		s.MatchRateRight = float64(c.RightRecords) / float64(c.RightCount)
	}
}

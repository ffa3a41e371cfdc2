package kalla

import "errors"

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
}

// OK reports whether the recipe has no problems.
func (c *Check) OK() bool { return len(c.Problems) == 0 }

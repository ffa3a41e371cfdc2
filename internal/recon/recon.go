package recon

import (
	"context"

	"github.com/kalla-recon/kalla/internal/kalla"
)

// Engine names.
const (
	// DuckDB is the embedded engine, always available.
	DuckDB = kalla.EngineDuckDB
	// Spark hands runs to an Apache Spark cluster through Spark Connect;
	// available only when the process was started with a Spark remote.
	Spark = kalla.EngineSpark
	// Default is the engine used when a caller names none.
	Default = DuckDB
)

// Shared types, defined in package kalla so that an engine needs neither
// internal/engine nor this package's DuckDB implementation to speak them.
type (
	// Event reports a run's progress: its stage, rows staged, overall
	// fraction.
	Event = kalla.Event
	// Check is the result of checking a recipe: its problems and columns.
	Check = kalla.Check
)

// Stage names every engine reports progress under, in run order.
const (
	StageLeft  = kalla.StageLeft
	StageRight = kalla.StageRight
	StageMatch = kalla.StageMatch
	StageWrite = kalla.StageWrite
)

// Output formats and tables, and the summary's file name, as every engine
// writes them.
const (
	FormatParquet       = kalla.FormatParquet
	FormatCSV           = kalla.FormatCSV
	TableMatched        = kalla.TableMatched
	TableUnmatchedLeft  = kalla.TableUnmatchedLeft
	TableUnmatchedRight = kalla.TableUnmatchedRight
	TableBreaks         = kalla.TableBreaks
	TableMatchedLeft    = kalla.TableMatchedLeft
	TableMatchedRight   = kalla.TableMatchedRight
	LeftRowColumn       = kalla.LeftRowColumn
	RightRowColumn      = kalla.RightRowColumn
	SummaryFile         = kalla.SummaryFile
)

// ErrRecipe marks errors that are the recipe's fault (errors.Is); the CLI
// exits 2 for them.
var ErrRecipe = kalla.ErrRecipe

// Engine runs reconciliations. An Engine is made for one job (one run or
// one check) by its Factory and closed after it; Run and Check are not
// called concurrently on one Engine.
//
// An engine reads the sources itself from the resolved specs it is given
// (Job.Recipe.Sources): the DuckDB engine through Kalla's connectors inside
// this process, the Spark engine through Spark's own readers on the
// cluster's executors. The caller never opens a source for the engine.
type Engine interface {
	// Name is the engine's name: "duckdb" or "spark".
	Name() string
	// Run reconciles job's two sources and writes the outputs (matched,
	// unmatched_left, unmatched_right, breaks for rules recipes, then
	// summary.json last) under job.Out, reporting progress to
	// job.Progress; a dry run computes the same summary and writes
	// nothing. A run that fails or is cancelled leaves no summary.
	// Errors: EINVALID for recipe or data problems (ErrRecipe among them,
	// naming the source, column or SQL position at fault), a
	// *kalla.SourceError for a side that cannot be read (EUNAVAILABLE when
	// unreachable, ENOTFOUND when missing), context errors when cancelled,
	// ErrEngineConfig for an engine setting that is wrong.
	Run(ctx context.Context, job Job) (*kalla.Summary, error)
	// Check validates rec against its real sources without running it:
	// each source readable, keys and filters fitting its columns, the
	// match binding against the real schemas. Problems are collected in
	// the Check, not returned as errors; an error means the check itself
	// failed (context errors, ErrEngineConfig, an engine failure).
	Check(ctx context.Context, rec *kalla.Recipe, opt CheckOptions) (*Check, error)
	// Close releases what the engine holds (databases, sessions, temp
	// views, spill folders).
	Close() error
}

// Job is one run to execute.
type Job struct {
	// Recipe is the recipe to run. Its Sources.Left and Right are
	// resolved: each carries the URI to read (with its credentials), type,
	// primary key, schema and CSV options. Credentials must never reach a
	// log, an error, the summary or an output.
	Recipe *kalla.Recipe
	// BaseDir resolves relative local file paths in the specs (a recipe
	// file's folder); empty means the working directory. The summary
	// keeps the URI as the recipe gave it.
	BaseDir string
	// LeftFilters and RightFilters scope the sides; nil means the
	// recipe's own, an empty list none.
	LeftFilters, RightFilters []kalla.Filter
	// LeftTotal and RightTotal are the sides' expected row counts for
	// progress, 0 when unknown.
	LeftTotal, RightTotal int64
	// CountTotals asks the engine to learn the totals itself when it can
	// do so cheaply (database sources), so progress has a meaning.
	CountTotals bool
	// Out is where the outputs go: a local folder, or on the Spark engine
	// an s3://bucket/prefix. Not touched by a dry run.
	Out string
	// Formats lists "parquet" and/or "csv"; empty means parquet.
	Formats []string
	// RunID names the run in the summary.
	RunID string
	// Progress, when set, receives events as the run advances, from any
	// goroutine, never two at once.
	Progress func(Event)
	// DryRun computes everything (matches, reasons, breaks, the summary)
	// but writes nothing.
	DryRun bool
	// Records also writes matched_left and matched_right, the whole
	// records each side's pairs use, for the results page; off by default
	// (it costs about +20 % of a large run).
	Records bool
	// Sample, when positive, runs on the first Sample rows of each side
	// (under its filters, in the source's order) instead of all of them:
	// a recipe preview.
	Sample int64
	// Counted, when set, receives each side's total under its filters
	// ("left" or "right") after a sample run, as a source preview gives it:
	// kind is connector.TotalExact when the count is exact, or
	// connector.TotalAtLeast for a lower bound when counting further was
	// not cheap (ExactTotal asks for the exact count however long it
	// takes); a preview shows what share of a side its sample is.
	Counted func(side string, total int64, kind string)
	// ExactTotal makes Counted's totals exact; see Counted.
	ExactTotal bool
	// TempDir is a local folder the engine may use for scratch data
	// (DuckDB spills there), removed by the caller; empty means the
	// service's.
	TempDir string
	// Admit, when set, is called before the engine takes its memory (for
	// DuckDB: opening its database, after the sources are open) and the
	// release it returns once the engine let it go: the API bounds the
	// engines its previews and validations hold at once with it. An
	// error from Admit (the request ended while waiting) ends the job.
	Admit func(ctx context.Context) (release func(), err error)
}

// CheckOptions qualify a recipe check.
type CheckOptions struct {
	// BaseDir resolves relative local file paths, as Job.BaseDir.
	BaseDir string
	// Refused holds, per side (0 left, 1 right), why the caller refuses
	// to let the side be read (a file-root policy); such a side is not
	// opened and its error is reported as a problem.
	Refused [2]error
	// Admit bounds the engines held at once, as Job.Admit.
	Admit func(ctx context.Context) (release func(), err error)
}

// Factory makes an engine for one job. The service calls it for every Run
// and Check and closes what it returns.
type Factory func(ctx context.Context) (Engine, error)

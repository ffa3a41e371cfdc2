-- 0004_run_engine: a run records the engine it executes on ("duckdb" or
-- "spark"), chosen when it is queued, so that the worker that claims it runs
-- it there and the API and the UI show where its answers were computed.
-- Runs queued before this migration ran on DuckDB: '' reads as the default.

ALTER TABLE runs ADD COLUMN engine TEXT NOT NULL DEFAULT '';

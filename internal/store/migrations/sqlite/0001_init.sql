-- 0001_init: Kalla's metadata tables (SQLite).
--
-- Timestamps are TEXT in UTC, fixed width with microseconds
-- ("2006-01-02T15:04:05.000000Z"), so they sort as text and match what the
-- PostgreSQL schema can hold. JSON documents are TEXT. STRICT tables make
-- SQLite reject a value of the wrong type instead of storing it.

CREATE TABLE sources (
	alias          TEXT PRIMARY KEY,
	uri            TEXT NOT NULL,
	source_type    TEXT NOT NULL DEFAULT '',
	status         TEXT NOT NULL DEFAULT '',
	status_message TEXT NOT NULL DEFAULT '',
	created_at     TEXT NOT NULL,
	updated_at     TEXT NOT NULL
) STRICT;

CREATE TABLE recipes (
	id          TEXT PRIMARY KEY,
	name        TEXT NOT NULL DEFAULT '',
	recipe_json TEXT NOT NULL,
	created_at  TEXT NOT NULL,
	updated_at  TEXT NOT NULL
) STRICT;

-- runs keeps a snapshot of the recipe (recipe_json) rather than a foreign
-- key: a run records what it did even after its recipe is edited or deleted.
CREATE TABLE runs (
	id               TEXT PRIMARY KEY,
	recipe_id        TEXT NOT NULL,
	recipe_json      TEXT NOT NULL,
	filters_json     TEXT,
	callback_url     TEXT NOT NULL DEFAULT '',
	status           TEXT NOT NULL
		CHECK (status IN ('queued', 'running', 'completed', 'failed', 'cancelled')),
	stage            TEXT NOT NULL DEFAULT '',
	progress         REAL NOT NULL DEFAULT 0,
	left_rows        INTEGER NOT NULL DEFAULT 0,
	right_rows       INTEGER NOT NULL DEFAULT 0,
	cancel_requested INTEGER NOT NULL DEFAULT 0 CHECK (cancel_requested IN (0, 1)),
	summary_json     TEXT,
	error            TEXT NOT NULL DEFAULT '',
	out_dir          TEXT NOT NULL DEFAULT '',
	created_at       TEXT NOT NULL,
	started_at       TEXT,
	finished_at      TEXT
) STRICT;

-- runs_status_created serves ClaimRun (the oldest queued run, in creation
-- order) and ListRuns filtered by status.
CREATE INDEX runs_status_created ON runs (status, created_at, id);
-- runs_created serves ListRuns, newest first.
CREATE INDEX runs_created ON runs (created_at, id);
-- runs_recipe_created serves ListRuns filtered by recipe.
CREATE INDEX runs_recipe_created ON runs (recipe_id, created_at, id);

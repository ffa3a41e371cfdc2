-- 0001_init: Kalla's metadata tables (PostgreSQL).
--
-- Timestamps are TIMESTAMPTZ (microsecond precision; the store writes UTC
-- truncated to microseconds). JSON documents are TEXT, as in the SQLite
-- schema, so both backends hand back byte-identical documents.

CREATE TABLE sources (
	alias          TEXT PRIMARY KEY,
	uri            TEXT NOT NULL,
	source_type    TEXT NOT NULL DEFAULT '',
	status         TEXT NOT NULL DEFAULT '',
	status_message TEXT NOT NULL DEFAULT '',
	created_at     TIMESTAMPTZ NOT NULL,
	updated_at     TIMESTAMPTZ NOT NULL
);

CREATE TABLE recipes (
	id          TEXT PRIMARY KEY,
	name        TEXT NOT NULL DEFAULT '',
	recipe_json TEXT NOT NULL,
	created_at  TIMESTAMPTZ NOT NULL,
	updated_at  TIMESTAMPTZ NOT NULL
);

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
	progress         DOUBLE PRECISION NOT NULL DEFAULT 0,
	left_rows        BIGINT NOT NULL DEFAULT 0,
	right_rows       BIGINT NOT NULL DEFAULT 0,
	cancel_requested BOOLEAN NOT NULL DEFAULT FALSE,
	summary_json     TEXT,
	error            TEXT NOT NULL DEFAULT '',
	out_dir          TEXT NOT NULL DEFAULT '',
	created_at       TIMESTAMPTZ NOT NULL,
	started_at       TIMESTAMPTZ,
	finished_at      TIMESTAMPTZ
);

-- runs_status_created serves ClaimRun (the oldest queued run, in creation
-- order, skipping rows other workers hold) and ListRuns filtered by status.
CREATE INDEX runs_status_created ON runs (status, created_at, id);
-- runs_created serves ListRuns, newest first.
CREATE INDEX runs_created ON runs (created_at, id);
-- runs_recipe_created serves ListRuns filtered by recipe.
CREATE INDEX runs_recipe_created ON runs (recipe_id, created_at, id);

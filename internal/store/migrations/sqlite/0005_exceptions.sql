-- 0005_exceptions: the decisions people take on a run's breaks, kept beside
-- the run's immutable output files.
--
-- exception_items: one row per unmatched record and per pair the rules left
-- "suggested", taken from the run's own output files when it completes
-- (row_num is the record's 1-based row in that file). amount keeps the exact
-- decimal text; amount_num is its value for filtering and sorting only.
-- version grows with every change, for optimistic concurrency.
--
-- exception_actions: one row per action a person took (on one item or
-- many). audit_log: one row per item an action touched, with the item
-- before and after; each row carries the SHA-256 of the previous row
-- (prev_hash) and of itself (hash), and audit_head the last sequence number
-- and hash, so a row changed, removed or cut off the end shows when the
-- chain is recomputed. Triggers refuse UPDATE and DELETE on the log.

CREATE TABLE exception_items (
	id           INTEGER PRIMARY KEY,
	run_id       TEXT NOT NULL,
	recipe_id    TEXT NOT NULL,
	kind         TEXT NOT NULL CHECK (kind IN ('unmatched', 'suggested')),
	side         TEXT NOT NULL CHECK (side IN ('left', 'right', 'pair')),
	row_num      INTEGER NOT NULL,
	record_key   TEXT NOT NULL DEFAULT '',
	right_key    TEXT NOT NULL DEFAULT '',
	amount       TEXT NOT NULL DEFAULT '',
	amount_num   REAL,
	right_amount TEXT NOT NULL DEFAULT '',
	difference   TEXT NOT NULL DEFAULT '',
	diff_num     REAL,
	currency     TEXT NOT NULL DEFAULT '',
	record_date  TEXT NOT NULL DEFAULT '',
	age_from     TEXT NOT NULL,
	rule         TEXT NOT NULL DEFAULT '',
	score        REAL,
	reason       TEXT NOT NULL DEFAULT '',
	closest      TEXT NOT NULL DEFAULT '',
	status       TEXT NOT NULL,
	code         TEXT NOT NULL DEFAULT '',
	assignee     TEXT NOT NULL DEFAULT '',
	match_group  TEXT NOT NULL DEFAULT '',
	pending_json TEXT NOT NULL DEFAULT '',
	prepared_by  TEXT NOT NULL DEFAULT '',
	decided_by   TEXT NOT NULL DEFAULT '',
	version      INTEGER NOT NULL DEFAULT 1,
	created_at   TEXT NOT NULL,
	updated_at   TEXT NOT NULL,
	UNIQUE (run_id, side, row_num)
) STRICT;

CREATE INDEX exception_items_run_status ON exception_items (run_id, status, id);
CREATE INDEX exception_items_status ON exception_items (status, id);

CREATE TABLE exception_actions (
	id          INTEGER PRIMARY KEY,
	action      TEXT NOT NULL,
	actor       TEXT NOT NULL,
	role        TEXT NOT NULL,
	code        TEXT NOT NULL DEFAULT '',
	note        TEXT NOT NULL DEFAULT '',
	assignee    TEXT NOT NULL DEFAULT '',
	items       INTEGER NOT NULL,
	result      TEXT NOT NULL,
	created_at  TEXT NOT NULL
) STRICT;

CREATE TABLE audit_log (
	seq         INTEGER PRIMARY KEY,
	at          TEXT NOT NULL,
	actor       TEXT NOT NULL,
	role        TEXT NOT NULL,
	action      TEXT NOT NULL,
	action_id   INTEGER NOT NULL,
	item_id     INTEGER NOT NULL,
	run_id      TEXT NOT NULL,
	before_json TEXT NOT NULL,
	after_json  TEXT NOT NULL,
	note        TEXT NOT NULL DEFAULT '',
	prev_hash   TEXT NOT NULL,
	hash        TEXT NOT NULL
) STRICT;

CREATE INDEX audit_log_item ON audit_log (item_id, seq);

CREATE TABLE audit_head (
	id   INTEGER PRIMARY KEY CHECK (id = 1),
	seq  INTEGER NOT NULL,
	hash TEXT NOT NULL
) STRICT;

CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;

-- 0003_error_code: a failed run records the code of its failure beside the
-- message (resource_exhausted: the machine ran out of memory or disk;
-- invalid: the recipe or the data; unavailable: a source), so the API and
-- the UI can tell a machine that was too small from a recipe to fix.

ALTER TABLE runs ADD COLUMN error_code TEXT NOT NULL DEFAULT '';

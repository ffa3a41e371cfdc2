-- 0002_leases: runs are claimed under a lease that the claiming process's
-- heartbeat extends; a run whose lease expired belongs to a process that
-- died, and any live process fails it (or queues it again).
--
-- lease_owner names the process that claimed the run last and is kept after
-- the run ends (who executed it); attempts counts claims, so a write under an
-- old claim is refused even when the same process claimed the run again.
-- A running run from before this migration has no expiry: it counts as
-- expired.

ALTER TABLE runs ADD COLUMN lease_owner TEXT NOT NULL DEFAULT '';
ALTER TABLE runs ADD COLUMN lease_expires_at TIMESTAMPTZ;
ALTER TABLE runs ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0;
UPDATE runs SET attempts = 1 WHERE started_at IS NOT NULL;
